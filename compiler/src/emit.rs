//! The one place that turns documents into text: YAML for Kubernetes manifests, JSON
//! for everything else. Changing the YAML crate touches only this file.
//!
//! The YAML writer is `serde_norway`, the maintained continuation of `serde_yaml`
//! (archived and deprecated upstream): the same serializer and data model, so block
//! style, stable key order (ours come from structs and `BTreeMap`s) and YAML 1.2-safe
//! quoting of strings that would otherwise read as numbers, booleans or null (`"1"`,
//! `"true"`, `"null"`, `"0o7"`). It does not take `serde_yml`'s route of rewriting the
//! emitter, and it is a plain dependency with no build step.

use serde::Serialize;

/// `value` as one YAML document (no `---` line), ending in a newline.
pub fn yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    serde_norway::to_string(value).map_err(|err| err.to_string())
}

/// Several documents as one YAML stream, each started by `---`.
pub fn yaml_stream<T: Serialize>(values: &[T]) -> Result<String, String> {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        out.push_str(&yaml(value)?);
    }
    Ok(out)
}

/// `value` as pretty-printed JSON, ending in a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|err| err.to_string())?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted_and_round_trip() {
        let tricky = [
            "1", "0.5", "true", "no", "null", "~", "a: b", "- x", "{{x}}", "'q\"", "l1\nl2", "#c",
            "",
        ];
        let map: BTreeMap<String, String> = tricky
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("k{i:02}"), (*s).to_owned()))
            .collect();
        let text = yaml(&map).unwrap();
        let back: BTreeMap<String, String> = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, map, "{text}");
        assert!(text.contains("k00: '1'"), "{text}");
        assert!(text.contains("k02: 'true'"), "{text}");
    }

    #[test]
    fn a_stream_separates_documents() {
        let text = yaml_stream(&[BTreeMap::from([("a", 1)]), BTreeMap::from([("b", 2)])]).unwrap();
        assert_eq!(text, "---\na: 1\n---\nb: 2\n");
    }
}
