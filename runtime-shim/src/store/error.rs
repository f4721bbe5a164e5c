//! The one error type of the datastore. Every message names the file or directory and
//! says what is wrong with it, so a user reading it can act without a debugger.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::names::{BlobHash, InvalidName};

/// Shorthand for results of datastore operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// What is wrong with a corrupt blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// The file decompressed cleanly but its bytes hash to something else: a flipped
    /// bit, or a file copied in under the wrong name.
    HashMismatch { actual: BlobHash },
    /// The file is not a complete zstd stream: truncated (a crash of a writer that did
    /// not go through the store, a full disk, an interrupted copy) or not zstd at all.
    Undecodable { reason: String },
}

/// Everything that can go wrong in the datastore.
#[derive(Debug)]
pub enum StoreError {
    /// An operating-system call failed. `action` is a verb phrase ("read", "create
    /// directory", ...).
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A blob, run or task that was asked for does not exist. `what` names it
    /// ("blob 3fa2…", "run.json of run 12", ...).
    NotFound { what: String, path: PathBuf },
    /// A blob's content does not match its name.
    Corrupt {
        path: PathBuf,
        expected: BlobHash,
        actual: Corruption,
    },
    /// A metadata file exists but is not what the store wrote (bad JSON, missing field,
    /// stored under the wrong run or task).
    InvalidMetadata { path: PathBuf, reason: String },
    /// A name or hash given to the store is not allowed to touch a path.
    InvalidName(InvalidName),
    /// The root holds no `FORMAT` file, so it is not (yet) a datastore.
    NotADatastore { root: PathBuf },
    /// The root was written by a newer flowc with a layout this build does not know.
    UnsupportedLayout {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// Something the store was asked to create already exists.
    AlreadyExists { what: String, path: PathBuf },
    /// Run-id allocation lost the race too many times in a row.
    RunIdsExhausted { path: PathBuf, attempts: u32 },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
            StoreError::NotFound { what, path } => {
                write!(f, "{what} not found (looked for `{}`)", path.display())
            }
            StoreError::Corrupt {
                path,
                expected,
                actual,
            } => {
                write!(f, "blob `{}` is corrupt: ", path.display())?;
                match actual {
                    Corruption::HashMismatch { actual } => write!(
                        f,
                        "its content has sha256 {actual}, but the store expects {expected}"
                    )?,
                    Corruption::Undecodable { reason } => write!(
                        f,
                        "it is not a complete zstd stream ({reason}); the file is truncated or was not written by flowc"
                    )?,
                }
                write!(
                    f,
                    "; delete the file and re-run the task that produced it (the store never overwrites an existing blob)"
                )
            }
            StoreError::InvalidMetadata { path, reason } => write!(
                f,
                "metadata file `{}` is invalid: {reason}",
                path.display()
            ),
            StoreError::InvalidName(err) => err.fmt(f),
            StoreError::NotADatastore { root } => write!(
                f,
                "`{}` is not a flowc datastore (it has no FORMAT file); check --datastore-root / FLOWC_DATASTORE_ROOT, or run a flow to create one",
                root.display()
            ),
            StoreError::UnsupportedLayout {
                path,
                found,
                supported,
            } => write!(
                f,
                "datastore layout version {found} in `{}` is newer than this flowc supports (version {supported}); upgrade flowc to read this datastore",
                path.display()
            ),
            StoreError::AlreadyExists { what, path } => {
                write!(f, "{what} already exists at `{}`", path.display())
            }
            StoreError::RunIdsExhausted { path, attempts } => write!(
                f,
                "could not allocate a run id under `{}` after {attempts} attempts; another process keeps creating runs, or the directory is unwritable",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::InvalidName(err) => Some(err),
            _ => None,
        }
    }
}

impl From<InvalidName> for StoreError {
    fn from(err: InvalidName) -> Self {
        StoreError::InvalidName(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(byte: u8) -> BlobHash {
        BlobHash::from_bytes([byte; 32])
    }

    #[test]
    fn corrupt_message_names_file_both_hashes_and_the_fix() {
        let err = StoreError::Corrupt {
            path: PathBuf::from("/s/F/data/aa/aaaa"),
            expected: hash(0xaa),
            actual: Corruption::HashMismatch { actual: hash(0xbb) },
        };
        let text = err.to_string();
        assert!(
            text.starts_with("blob `/s/F/data/aa/aaaa` is corrupt"),
            "{text}"
        );
        assert!(text.contains(&"bb".repeat(32)), "{text}");
        assert!(text.contains(&"aa".repeat(32)), "{text}");
        assert!(text.contains("delete the file"), "{text}");
    }

    #[test]
    fn io_error_keeps_its_source() {
        let err = StoreError::io(
            "read",
            "/x/run.json",
            io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(err.to_string(), "cannot read `/x/run.json`: denied");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn layout_message_says_to_upgrade() {
        let err = StoreError::UnsupportedLayout {
            path: PathBuf::from(".flowc/FORMAT"),
            found: 7,
            supported: 1,
        };
        let text = err.to_string();
        assert!(text.contains("version 7"), "{text}");
        assert!(text.contains("upgrade flowc"), "{text}");
    }
}
