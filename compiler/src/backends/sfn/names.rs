//! Names AWS accepts (Batch job and job definition names, schedule names) and the
//! intrinsic-function text (`States.Format`, `States.Array`) the states are built from.

use sha2::{Digest, Sha256};

/// The longest job definition or job name AWS Batch accepts.
pub(crate) const MAX_BATCH_NAME: usize = 128;
/// The longest state name Step Functions accepts.
pub(crate) const MAX_STATE_NAME: usize = 80;

/// Hex digits of the hash suffix of a name that had to change.
const HASH_LEN: usize = 6;

/// `name` as a Batch name: letters, digits, `-` and `_`, starting with a letter or
/// digit. `.` becomes `-` (project branches such as `user.alice`); any other character
/// outside the set also becomes `-`, and then a `-` and a hash of the original follow,
/// so two names never end up equal. The result is never cut: a name over
/// [`MAX_BATCH_NAME`] is reported rather than silently made different from what the
/// user types in `aws batch`.
pub(crate) fn batch_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' {
                ch
            } else {
                '-'
            }
        })
        .collect();
    let plain = name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
        && mapped.starts_with(|c: char| c.is_ascii_alphanumeric());
    if plain {
        return mapped;
    }
    let head = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = short_hash(name);
    if head.is_empty() {
        format!("x{hash}")
    } else {
        format!("{head}-{hash}")
    }
}

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One argument of an intrinsic function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    /// A string literal, escaped as intrinsics require.
    Lit(String),
    /// A path (`$.run_id`, `$$.Execution.Name`) or a nested intrinsic, written as is.
    Expr(String),
}

impl Arg {
    pub(crate) fn lit(text: impl Into<String>) -> Arg {
        Arg::Lit(text.into())
    }

    pub(crate) fn path(path: impl Into<String>) -> Arg {
        Arg::Expr(path.into())
    }

    fn write(&self) -> String {
        match self {
            Arg::Lit(text) => quote(text),
            Arg::Expr(expr) => expr.clone(),
        }
    }
}

/// `text` as an intrinsic string literal: in single quotes, with `'`, `{`, `}` and `\`
/// escaped by a backslash.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for ch in text.chars() {
        if matches!(ch, '\'' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('\'');
    out
}

/// `States.Format(template, args...)`. `parts` alternate literal text and arguments:
/// each `Arg::Expr` becomes a `{}` placeholder, each `Arg::Lit` is escaped into the
/// template itself, so the template needs no placeholder arithmetic by the caller.
pub(crate) fn format(parts: &[Arg]) -> String {
    let mut template = String::new();
    let mut args = Vec::new();
    for part in parts {
        match part {
            Arg::Lit(text) => template.push_str(text),
            Arg::Expr(expr) => {
                template.push('\u{0}');
                args.push(expr.clone());
            }
        }
    }
    // Escape the literal text, then turn the markers into placeholders.
    let quoted = quote(&template).replace('\u{0}', "{}");
    let mut out = format!("States.Format({quoted}");
    for arg in args {
        out.push_str(", ");
        out.push_str(&arg);
    }
    out.push(')');
    out
}

/// `States.Array(items...)`.
pub(crate) fn array(items: &[Arg]) -> String {
    let items: Vec<String> = items.iter().map(Arg::write).collect();
    format!("States.Array({})", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_and_dots_become_dashes() {
        assert_eq!(batch_name("TrainFlow-train_model"), "TrainFlow-train_model");
        assert_eq!(batch_name("fraud.prod.Flow-start"), "fraud-prod-Flow-start");
    }

    #[test]
    fn lossy_names_get_a_hash_and_stay_distinct() {
        let a = batch_name("caf\u{e9} flow");
        let b = batch_name("caf\u{e8} flow");
        assert!(a.starts_with("caf--flow-"), "{a}");
        assert_ne!(a, b);
        assert!(batch_name("_x").starts_with("x-"));
        assert!(batch_name("___").starts_with('x'));
    }

    #[test]
    fn literals_escape_what_intrinsics_reserve() {
        assert_eq!(quote("a'b{c}\\d"), r"'a\'b\{c\}\\d'");
    }

    #[test]
    fn format_puts_a_placeholder_per_path() {
        let text = format(&[
            Arg::path("$.run_id"),
            Arg::lit("/train/"),
            Arg::path("$.task_id"),
        ]);
        assert_eq!(text, "States.Format('{}/train/{}', $.run_id, $.task_id)");
        let braces = format(&[Arg::lit("{x}"), Arg::path("$.a")]);
        assert_eq!(braces, r"States.Format('\{x\}{}', $.a)");
    }

    #[test]
    fn arrays_quote_literals_and_keep_expressions() {
        assert_eq!(
            array(&[Arg::lit("task"), Arg::path("$.run_id")]),
            "States.Array('task', $.run_id)"
        );
    }
}
