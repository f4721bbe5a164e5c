//! Kubernetes names: DNS-1123 labels made from flow and step names, readable, and made
//! unique with a short hash where sanitising or truncating could make two names equal.

use sha2::{Digest, Sha256};

/// The longest DNS-1123 label (and label value) Kubernetes accepts.
pub(crate) const MAX_LABEL: usize = 63;

/// Hex digits of the hash suffix: enough that two names of one flow never collide.
const HASH_LEN: usize = 6;

/// `name` as a DNS-1123 label of at most `max` characters: lower case, with `_`, `.` and
/// every other character a label cannot hold turned into `-`, and no `-` at either end.
/// Step names are Python identifiers, so that alone keeps them apart and readable
/// (`train_model` → `train-model`). When the name had to be cut, lost characters at
/// its ends, or held characters other than letters, digits, `_`, `.` and `-`, a `-` and
/// a hash of the original follow, so that two names never end up equal.
pub(crate) fn dns_label(name: &str, max: usize) -> String {
    let mapped: String = name
        .chars()
        .map(|ch| {
            let ch = ch.to_ascii_lowercase();
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
                ch
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    let plain = name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
    if plain && trimmed.len() == mapped.len() && !trimmed.is_empty() && trimmed.len() <= max {
        return trimmed.to_owned();
    }
    let hash = short_hash(name);
    // `HASH_LEN + 1` characters are kept for `-<hash>`.
    let room = max.saturating_sub(HASH_LEN + 1);
    let head: String = trimmed.chars().take(room).collect();
    let head = head.trim_end_matches('-');
    if head.is_empty() {
        // A name with no usable character at all: the hash alone, starting with a letter.
        format!("x{}", &hash[..HASH_LEN.min(max.saturating_sub(1))])
    } else {
        format!("{head}-{hash}")
    }
}

/// The first hex digits of the SHA-256 of `text`.
pub(crate) fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest
        .iter()
        .take(HASH_LEN.div_ceil(2))
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..HASH_LEN]
        .to_owned()
}

/// True when `name` is a DNS-1123 label of at most `max` characters.
pub(crate) fn is_dns_label(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// True when `name` is a DNS-1123 subdomain (what a Secret's name must be).
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(|part| is_dns_label(part, MAX_LABEL))
}

/// True when `value` may be a Kubernetes label value: at most 63 characters, letters,
/// digits, `-`, `_`, `.`, starting and ending with a letter or digit (or empty).
pub(crate) fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= MAX_LABEL
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && value
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric()))
}

/// `value` made into a label value: characters a label value cannot hold become `-`, and
/// a value that had to change or be cut gets a hash suffix, as in [`dns_label`].
pub(crate) fn label_value(value: &str) -> String {
    if is_label_value(value) {
        return value.to_owned();
    }
    dns_label(value, MAX_LABEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_lower_cased_only() {
        assert_eq!(dns_label("start", MAX_LABEL), "start");
        assert_eq!(dns_label("TrainFlow", MAX_LABEL), "trainflow");
    }

    #[test]
    fn underscores_and_dots_become_dashes() {
        assert_eq!(dns_label("train_model", MAX_LABEL), "train-model");
        assert_eq!(
            dns_label("proj.user.alice.Flow", MAX_LABEL),
            "proj-user-alice-flow"
        );
        assert_eq!(dns_label("a__b", MAX_LABEL), "a--b");
    }

    #[test]
    fn lossy_names_get_a_hash() {
        let a = dns_label("_private", MAX_LABEL);
        assert!(a.starts_with("private-"), "{a}");
        assert_ne!(a, dns_label("private", MAX_LABEL));
        let b = dns_label("caf\u{e9} au lait", MAX_LABEL);
        assert!(
            is_dns_label(&b, MAX_LABEL) && b.starts_with("caf--au-lait-"),
            "{b}"
        );
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let long_a = format!("{}_a", "x".repeat(80));
        let long_b = format!("{}_b", "x".repeat(80));
        let a = dns_label(&long_a, MAX_LABEL);
        let b = dns_label(&long_b, MAX_LABEL);
        assert_eq!(a.len(), MAX_LABEL);
        assert!(is_dns_label(&a, MAX_LABEL) && is_dns_label(&b, MAX_LABEL));
        assert_ne!(a, b);
    }

    #[test]
    fn names_without_usable_characters_still_give_a_label() {
        let name = dns_label("___", MAX_LABEL);
        assert!(is_dns_label(&name, MAX_LABEL), "{name}");
    }

    #[test]
    fn label_values_keep_dots_and_underscores() {
        assert_eq!(label_value("fraud_detection.v2"), "fraud_detection.v2");
        assert!(is_label_value(&label_value("has space")));
        assert!(is_label_value(&label_value(&"y".repeat(90))));
    }
}
