//! Flags a parameter default that does not match the parameter's type.
//!
//! Metaflow converts the default with the declared type when the run starts, so a
//! default that cannot be converted fails every run that does not pass the value, and
//! one that converts lossily (`2.5` for an `int`) silently changes it. The rules
//! follow what Metaflow's command line accepts: a number spelt as a string converts,
//! an `int` default is fine for a `float`, a `JSONType` default is a JSON string or
//! any structured value. Defaults that could not be evaluated statically are left to
//! run time, and `IncludeFile` takes a path.
//!
//! ```python
//! n = Parameter("n", type=int, default="x")
//! ```

use flowc_ir::{Parameter, ParameterKind, ParameterType, Value};

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::PARAM_DEFAULT_TYPE,
    check,
};

/// The strings Metaflow's command line reads as booleans.
const BOOL_WORDS: &[&str] = &[
    "1", "0", "true", "false", "t", "f", "yes", "no", "y", "n", "on", "off",
];

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for p in &cx.flow.parameters {
        let Some(default) = &p.default else {
            continue;
        };
        if let Some(problem) = mismatch(p, default) {
            let what = match shown(default) {
                Some(value) => format!("default `{value}`"),
                None => "the default".to_string(),
            };
            out.push(
                Diagnostic::new(
                    &codes::PARAM_DEFAULT_TYPE,
                    // The whole assignment when the frontend could not tell where the
                    // default was written (an IR from an older producer).
                    p.default_span.unwrap_or(p.span),
                    format!("{what} of parameter `{}` {problem}", p.name),
                )
                .with_help(help(p)),
            );
        }
    }
}

/// A scalar default written back as Python, for the message; `None` for containers,
/// which would make the message unreadable.
fn shown(value: &Value) -> Option<String> {
    match value {
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(format!("{f:?}")),
        Value::Str(s) if s.chars().count() <= 40 && !s.contains('\n') => Some(format!("{s:?}")),
        _ => None,
    }
}

/// `a int` reads wrong: the article a type name takes.
fn article(name: &str) -> &'static str {
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// `an int`, `a str`, `None`.
fn with_article(name: &str) -> String {
    if name == "None" {
        name.to_string()
    } else {
        format!("{} {name}", article(name))
    }
}

/// Why `default` does not fit `p`, as the end of a sentence; `None` when it fits.
fn mismatch(p: &Parameter, default: &Value) -> Option<String> {
    if matches!(default, Value::None | Value::Deferred { .. }) {
        return None;
    }
    let got = with_article(default.type_name());
    if p.kind == ParameterKind::IncludeFile {
        return (!matches!(default, Value::Str(_)))
            .then(|| format!("is {got}, but `IncludeFile` takes a path string"));
    }
    let wrong = |want: &str| Some(format!("is {got}, not {}", with_article(want)));
    match (p.ty, default) {
        (ParameterType::Other, _) => None,
        (ParameterType::Str, Value::Str(_)) => None,
        (ParameterType::Str, _) => wrong("str"),
        (ParameterType::Int, Value::Int(_)) => None,
        (ParameterType::Int, Value::Str(s)) => match s.trim().parse::<i64>() {
            Ok(_) => None,
            Err(_) => Some("is not an int".to_string()),
        },
        (ParameterType::Int, Value::Float(_)) => {
            Some("is a float, which an int parameter would truncate".to_string())
        }
        (ParameterType::Int, _) => wrong("int"),
        (ParameterType::Float, Value::Int(_) | Value::Float(_)) => None,
        (ParameterType::Float, Value::Str(s)) => match s.trim().parse::<f64>() {
            Ok(_) => None,
            Err(_) => Some("is not a float".to_string()),
        },
        (ParameterType::Float, _) => wrong("float"),
        (ParameterType::Bool, Value::Bool(_)) => None,
        (ParameterType::Bool, Value::Int(0 | 1)) => None,
        (ParameterType::Bool, Value::Str(s)) => {
            let word = s.trim().to_lowercase();
            if BOOL_WORDS.contains(&word.as_str()) {
                None
            } else {
                Some("is not a bool".to_string())
            }
        }
        (ParameterType::Bool, _) => wrong("bool"),
        (ParameterType::Json, Value::Str(s)) => {
            match serde_json::from_str::<serde_json::Value>(s) {
                Ok(_) => None,
                Err(e) => Some(format!("is not valid JSON ({e})")),
            }
        }
        (ParameterType::Json, _) => None,
    }
}

fn help(p: &Parameter) -> String {
    match (p.kind, p.ty) {
        (ParameterKind::IncludeFile, _) => {
            "give the path of the file to include, as a string".to_string()
        }
        (_, ParameterType::Json) => {
            "give a JSON string, e.g. `'{\"a\": 1}'`, or a dict or list".to_string()
        }
        (_, ty) => {
            let name = match ty {
                ParameterType::Str => "str",
                ParameterType::Int => "int",
                ParameterType::Float => "float",
                ParameterType::Bool => "bool",
                _ => "matching",
            };
            format!(
                "give {} default, or change `type=` to match the default",
                with_article(name)
            )
        }
    }
}
