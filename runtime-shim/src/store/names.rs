//! Validated names (flow, run id, step, task id, artifact) and blob hashes: the only
//! values that are ever joined onto a datastore path.
//!
//! Every string that reaches the filesystem passes through one of these types first, so
//! a name like `../x`, `/etc`, `a/b` or one holding a NUL can never escape the store's
//! root or address a file the store did not write. Serde goes through the same checks,
//! so a tampered `task.json` cannot smuggle a bad name past them either.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted name, in bytes. Filesystems cap one path component at 255 bytes;
/// 200 leaves room and still fits every orchestrator-supplied id we know of (Argo
/// workflow names, Step Functions execution names, AWS Batch job ids).
pub const MAX_NAME_LEN: usize = 200;

/// What kind of name failed validation; used to word errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Flow,
    RunId,
    Step,
    TaskId,
    Artifact,
}

impl NameKind {
    fn describe(self) -> &'static str {
        match self {
            NameKind::Flow => "flow name",
            NameKind::RunId => "run id",
            NameKind::Step => "step name",
            NameKind::TaskId => "task id",
            NameKind::Artifact => "artifact name",
        }
    }
}

/// A rejected name or hash, with the value and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    /// `None` for a blob hash.
    pub kind: Option<NameKind>,
    pub value: String,
    pub reason: &'static str,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.kind.map_or("blob hash", NameKind::describe);
        // `{:?}` so that control characters, NUL and empty strings are visible.
        write!(f, "invalid {what} {:?}: {}", self.value, self.reason)
    }
}

impl std::error::Error for InvalidName {}

/// Checks one name against its rule, and the length limit of [`MAX_NAME_LEN`] bytes.
///
/// Flow, step and artifact names are Python identifiers (ASCII only): they come from a
/// class, a method and an attribute, and a stricter rule means a step can never be
/// named like a file the store keeps beside it (`run.json`). Run and task ids may also
/// hold `.` and `-`, as orchestrator ids do, but may not start with either: that
/// excludes `.` and `..`, keeps every id distinct from the store's dot-prefixed
/// temporary and format files, and stops an id from looking like a command-line option
/// when it is passed to a subprocess.
fn check_name(kind: NameKind, value: &str) -> Result<(), InvalidName> {
    let fail = |reason| {
        Err(InvalidName {
            kind: Some(kind),
            value: value.to_owned(),
            reason,
        })
    };
    let identifier = !matches!(kind, NameKind::RunId | NameKind::TaskId);
    let Some(first) = value.bytes().next() else {
        return fail("it is empty");
    };
    if value.len() > MAX_NAME_LEN {
        return fail("it is longer than 200 bytes");
    }
    if identifier {
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return fail("it must start with an ASCII letter or `_`");
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return fail("only ASCII letters, digits and `_` are allowed (no `/`, `.`, spaces or control characters)");
        }
    } else {
        if !(first.is_ascii_alphanumeric() || first == b'_') {
            return fail("it must start with an ASCII letter, digit or `_`");
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return fail("only ASCII letters, digits, `_`, `.` and `-` are allowed (no `/`, `\\`, spaces or control characters)");
        }
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Validates `value`; see the module docs for the rule.
            pub fn new(value: &str) -> Result<Self, InvalidName> {
                check_name($kind, value)?;
                Ok($ty(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidName;

            fn try_from(value: String) -> Result<Self, InvalidName> {
                check_name($kind, &value)?;
                Ok($ty(value))
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A flow's name (the `FlowSpec` subclass's name): the top directory under the root.
    FlowName,
    NameKind::Flow
);
name_type!(
    /// A run's id: an integer allocated by the local store, or an orchestrator's id.
    RunId,
    NameKind::RunId
);
name_type!(
    /// A step's name.
    StepName,
    NameKind::Step
);
name_type!(
    /// A task's id, unique within its run.
    TaskId,
    NameKind::TaskId
);
name_type!(
    /// An artifact's name (`self.<name> = ...` in the step).
    ArtifactName,
    NameKind::Artifact
);

/// The SHA-256 of a blob's uncompressed bytes; its textual form is 64 lowercase hex
/// digits, which is also the blob's file name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobHash([u8; 32]);

impl BlobHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        BlobHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 lowercase hex digits. Uppercase is rejected rather than folded so that
    /// one hash has exactly one spelling, and so one file name.
    pub fn parse(text: &str) -> Result<Self, InvalidName> {
        let fail = |reason| {
            Err(InvalidName {
                kind: None,
                value: text.to_owned(),
                reason,
            })
        };
        if text.len() != 64 {
            return fail("a blob hash is exactly 64 lowercase hex digits");
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(hi), Some(lo)) => *slot = hi << 4 | lo,
                _ => return fail("a blob hash is exactly 64 lowercase hex digits"),
            }
        }
        Ok(BlobHash(out))
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl TryFrom<String> for BlobHash {
    type Error = InvalidName;

    fn try_from(value: String) -> Result<Self, InvalidName> {
        BlobHash::parse(&value)
    }
}

impl From<BlobHash> for String {
    fn from(hash: BlobHash) -> String {
        hash.to_hex()
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

/// The full address of one task: `<flow>/<run_id>/<step>/<task_id>`, Metaflow's
/// "pathspec".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskPath {
    pub flow: FlowName,
    pub run_id: RunId,
    pub step: StepName,
    pub task_id: TaskId,
}

impl TaskPath {
    pub fn new(flow: FlowName, run_id: RunId, step: StepName, task_id: TaskId) -> Self {
        TaskPath {
            flow,
            run_id,
            step,
            task_id,
        }
    }
}

impl fmt::Display for TaskPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.flow, self.run_id, self.step, self.task_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["start", "TrainFlow", "_private", "x9", "FORMAT"] {
            assert!(StepName::new(ok).is_ok(), "{ok} should be a step name");
            assert!(FlowName::new(ok).is_ok(), "{ok} should be a flow name");
            assert!(
                ArtifactName::new(ok).is_ok(),
                "{ok} should be an artifact name"
            );
        }
        for ok in ["12", "argo-wf.x_1", "a-", "9.9", "sfn-3f2a"] {
            assert!(RunId::new(ok).is_ok(), "{ok} should be a run id");
            assert!(TaskId::new(ok).is_ok(), "{ok} should be a task id");
        }
        assert!(RunId::new(&"r".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn rejects_names_that_could_leave_the_directory() {
        let bad = [
            "", ".", "..", "../x", "a/b", "/etc", "a\\b", "a\0b", ".hidden", "-rf", "a b", "naïve",
            "tab\t",
        ];
        for value in bad {
            let err = TaskId::new(value).expect_err(value);
            assert_eq!(err.kind, Some(NameKind::TaskId));
            assert_eq!(err.value, value);
            assert!(RunId::new(value).is_err(), "{value:?}");
            assert!(StepName::new(value).is_err(), "{value:?}");
            assert!(FlowName::new(value).is_err(), "{value:?}");
            assert!(ArtifactName::new(value).is_err(), "{value:?}");
        }
        assert!(FlowName::new(&"f".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(TaskId::new(&"1".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn identifiers_exclude_dots_dashes_and_leading_digits() {
        for bad in ["run.json", "a-b", "9lives", "x.y"] {
            assert!(StepName::new(bad).is_err(), "{bad}");
            assert!(ArtifactName::new(bad).is_err(), "{bad}");
            assert!(FlowName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_message_names_kind_value_and_rule() {
        let err = RunId::new("../x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid run id \"../x\": it must start with an ASCII letter, digit or `_`"
        );
        let err = FlowName::new("a\0b").unwrap_err();
        assert!(err.to_string().contains("\"a\\0b\""), "{err}");
        assert!(err.to_string().contains("no `/`"), "{err}");
        assert_eq!(
            ArtifactName::new("").unwrap_err().to_string(),
            "invalid artifact name \"\": it is empty"
        );
    }

    #[test]
    fn serde_applies_the_same_rules() {
        let ok: StepName = serde_json::from_str("\"train\"").unwrap();
        assert_eq!(ok.as_str(), "train");
        let err = serde_json::from_str::<StepName>("\"../../etc\"").unwrap_err();
        assert!(err.to_string().contains("invalid step name"), "{err}");
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"train\"");
    }

    #[test]
    fn hash_round_trips_and_rejects_other_spellings() {
        let hex = "00ff10a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8";
        let hash = BlobHash::parse(hex).unwrap();
        assert_eq!(hash.to_hex(), hex);
        assert_eq!(hash.as_bytes()[1], 0xff);
        assert_eq!(
            serde_json::from_str::<BlobHash>(&format!("\"{hex}\"")).unwrap(),
            hash
        );
        for bad in [
            "",
            &hex[..63],
            &format!("{hex}0"),
            &hex.to_uppercase(),
            &format!("../{}", &hex[3..]),
            &format!("{}g", &hex[..63]),
        ] {
            let err = BlobHash::parse(bad).unwrap_err();
            assert_eq!(err.kind, None);
            assert!(err.to_string().starts_with("invalid blob hash"), "{err}");
        }
    }

    #[test]
    fn task_path_displays_as_pathspec() {
        let path = TaskPath::new(
            FlowName::new("F").unwrap(),
            RunId::new("3").unwrap(),
            StepName::new("start").unwrap(),
            TaskId::new("1").unwrap(),
        );
        assert_eq!(path.to_string(), "F/3/start/1");
    }
}
