//! What Argo Workflows needs from a task beyond its exit status: output files Argo
//! reads into output parameters (`task --argo-outputs DIR`), the compact form of a
//! foreach join's input paths (a range, or the list of tasks its splits ended in), and the parameter values `init --param` receives.
//!
//! The files, each written without a trailing newline:
//!
//! | file | content |
//! |---|---|
//! | `foreach_items.json` | the split indexes of a foreach, `[0,1,...,N-1]`; `[]` otherwise |
//! | `num_splits` | `N`; `0` for a step that is not a foreach |
//! | `switch_step` | the step a switch chose; empty otherwise |
//! | `task_id` | the task's id |

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::TaskOutcome;

/// The most splits one range may name: a bound on what a malformed argument can make
/// the shim allocate, far above any fan-out a cluster runs.
pub const MAX_RANGE: u64 = 10_000_000;

/// A parameter value meaning "not given": the flow's default applies.
pub const DEFAULT_MARKER: &str = "flowc:default";
/// Prefix of a base64-encoded parameter value (the compiler encodes defaults holding
/// `{{`, which Argo would otherwise substitute).
pub const BASE64_PREFIX: &str = "flowc:base64:";

/// Writes the output files into `dir` (created if needed).
pub fn write_outputs(dir: &Path, task_id: &str, outcome: Option<&TaskOutcome>) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let splits = outcome.and_then(TaskOutcome::foreach_splits).unwrap_or(0);
    let mut items = String::from("[");
    for index in 0..splits {
        if index > 0 {
            items.push(',');
        }
        let _ = write!(items, "{index}");
    }
    items.push(']');
    std::fs::write(dir.join("foreach_items.json"), items)?;
    std::fs::write(dir.join("num_splits"), splits.to_string())?;
    let choice = outcome.and_then(TaskOutcome::switch_choice).unwrap_or("");
    std::fs::write(dir.join("switch_step"), choice)?;
    std::fs::write(dir.join("task_id"), task_id)?;
    Ok(())
}

/// Expands every range `RUN/STEP/PREFIX:N` in a list of input paths into the `N`
/// paths `RUN/STEP/PREFIX0` … `RUN/STEP/PREFIX<N-1>`, in index order; other entries are
/// kept. A foreach join thus names any number of parents in one short argument, since
/// the body's tasks have ids `<prefix><split index>`. (`:` cannot occur in a task id.)
///
/// A foreach join whose body does not always end in the same step gets instead
/// `RUN/["STEP/TASK", ...]`: the run, then the JSON list Argo gathers from each split's
/// `last-task` output, in split order.
pub fn expand_input_ranges(text: &str) -> Result<String, String> {
    if let Some(paths) = gathered_paths(text)? {
        return Ok(paths);
    }
    let mut out = Vec::new();
    for item in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let Some((prefix, count)) = item.rsplit_once(':') else {
            out.push(item.to_owned());
            continue;
        };
        let count: u64 = count.parse().map_err(|_| {
            format!("input path range `{item}` does not end in `:<number of splits>`")
        })?;
        if count > MAX_RANGE {
            return Err(format!(
                "input path range `{item}` names more than {MAX_RANGE} tasks"
            ));
        }
        if prefix.matches('/').count() != 2 {
            return Err(format!(
                "input path range `{item}` is not RUN/STEP/PREFIX:N"
            ));
        }
        out.extend((0..count).map(|index| format!("{prefix}{index}")));
    }
    Ok(out.join(","))
}

/// The paths of a `RUN/["STEP/TASK", ...]` argument, comma-separated; `None` for any
/// other form.
fn gathered_paths(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    let Some((run, list)) = text.split_once('/') else {
        return Ok(None);
    };
    if !list.starts_with('[') || run.contains([',', '[']) {
        return Ok(None);
    }
    let tasks: Vec<String> = serde_json::from_str(list)
        .map_err(|err| format!("input paths `{text}` are not RUN/[\"STEP/TASK\", ...]: {err}"))?;
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        if task.matches('/').count() != 1 || task.contains(',') {
            return Err(format!("input path `{task}` in `{text}` is not STEP/TASK"));
        }
        out.push(format!("{run}/{task}"));
    }
    Ok(Some(out.join(",")))
}

/// The value an `init --param NAME=VALUE` stands for: `None` for [`DEFAULT_MARKER`],
/// the decoded text for a [`BASE64_PREFIX`] value, the text itself otherwise.
pub fn decode_param_value(text: &str) -> Result<Option<String>, String> {
    if text == DEFAULT_MARKER {
        return Ok(None);
    }
    let Some(encoded) = text.strip_prefix(BASE64_PREFIX) else {
        return Ok(Some(text.to_owned()));
    };
    let bytes = base64_decode(encoded).ok_or_else(|| format!("`{text}` is not valid base64"))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("`{text}` does not decode to UTF-8 text"))
}

/// Standard base64 (RFC 4648) with padding.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks(4);
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_in_index_order_and_other_paths_stay() {
        assert_eq!(
            expand_input_ranges("wf-1/train/t-0-:3").unwrap(),
            "wf-1/train/t-0-0,wf-1/train/t-0-1,wf-1/train/t-0-2"
        );
        assert_eq!(
            expand_input_ranges("wf/a/t,wf/b/t").unwrap(),
            "wf/a/t,wf/b/t"
        );
        assert_eq!(expand_input_ranges("wf/a/t-:0").unwrap(), "");
    }

    #[test]
    fn gathered_task_lists_name_the_run_once() {
        assert_eq!(
            expand_input_ranges(r#"wf-1/["a/t-0","b/t-1","a/t-2.r3"]"#).unwrap(),
            "wf-1/a/t-0,wf-1/b/t-1,wf-1/a/t-2.r3"
        );
        assert_eq!(expand_input_ranges("wf-1/[]").unwrap(), "");
        assert!(expand_input_ranges(r#"wf-1/["a/t/0"]"#).is_err());
        assert!(expand_input_ranges(r#"wf-1/["a/t-0""#).is_err());
        assert!(expand_input_ranges(r#"wf-1/[1]"#).is_err());
    }

    #[test]
    fn malformed_ranges_are_refused() {
        assert!(expand_input_ranges("wf/a/t-:x").is_err());
        assert!(expand_input_ranges("a/t-:2").is_err());
        assert!(expand_input_ranges("wf/a/t-:99999999999").is_err());
    }

    #[test]
    fn parameter_values_decode() {
        assert_eq!(decode_param_value("0.3").unwrap().as_deref(), Some("0.3"));
        assert_eq!(decode_param_value(DEFAULT_MARKER).unwrap(), None);
        assert_eq!(
            decode_param_value("flowc:base64:e3t3b3JrZmxvdy5uYW1lfX0=")
                .unwrap()
                .as_deref(),
            Some("{{workflow.name}}")
        );
        assert_eq!(
            decode_param_value("flowc:base64:Zmxvd2M6eA==")
                .unwrap()
                .as_deref(),
            Some("flowc:x")
        );
        assert!(decode_param_value("flowc:base64:not base64").is_err());
        assert!(decode_param_value("flowc:base64:QQ=A").is_err());
    }

    #[test]
    fn outputs_of_a_foreach_and_a_switch() {
        let dir = std::env::temp_dir().join(format!("flowc-argo-split-{}", std::process::id()));
        let foreach: TaskOutcome = serde_json::from_value(serde_json::json!({
            "status": "ok",
            "transition": {"kind": "foreach", "targets": ["train"], "foreach_var": "xs", "num_splits": 3},
        }))
        .unwrap();
        write_outputs(&dir, "t", Some(&foreach)).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("foreach_items.json"), "[0,1,2]");
        assert_eq!(read("num_splits"), "3");
        let switch: TaskOutcome = serde_json::from_value(serde_json::json!({
            "status": "ok",
            "transition": {"kind": "switch", "targets": ["fit_deep"], "condition": "bucket", "case": "large"},
        }))
        .unwrap();
        write_outputs(&dir, "t.r2", Some(&switch)).unwrap();
        assert_eq!(read("switch_step"), "fit_deep");
        assert_eq!(read("num_splits"), "0");
        assert_eq!(read("task_id"), "t.r2");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn outputs_of_a_plain_task_say_there_is_no_split_and_no_choice() {
        let dir = std::env::temp_dir().join(format!("flowc-argo-outputs-{}", std::process::id()));
        write_outputs(&dir, "t-3", None).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("foreach_items.json"), "[]");
        assert_eq!(read("num_splits"), "0");
        assert_eq!(read("switch_step"), "");
        assert_eq!(read("task_id"), "t-3");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
