//! Choosing the datastore root: `--datastore-root` over `FLOWC_DATASTORE_ROOT` over
//! `.flowc/` in the working directory. A pure function of its inputs, so callers pass
//! the flag, the environment value and the working directory in and tests need not
//! touch the process environment.
//!
//! A root is a local directory or an `s3://bucket/prefix` URL; [`ResolvedRoot::location`]
//! tells which, and URLs are kept as given rather than joined onto the working directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The environment variable that names the datastore root.
pub const ROOT_ENV_VAR: &str = "FLOWC_DATASTORE_ROOT";

/// The root's directory name in the working directory when nothing else is given.
pub const DEFAULT_ROOT_DIR: &str = ".flowc";

/// Which setting chose the root; for messages such as "using datastore `/x` (from
/// FLOWC_DATASTORE_ROOT)".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    Flag,
    Env,
    Default,
}

/// The scheme of object-store roots.
pub const S3_SCHEME: &str = "s3://";

/// The chosen root: a directory, absolute when `cwd` is, or an `s3://` URL kept
/// verbatim in `path` (see [`ResolvedRoot::location`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRoot {
    pub path: PathBuf,
    pub source: RootSource,
}

/// Where a root is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootLocation {
    Local(PathBuf),
    S3(S3Url),
}

/// An `s3://bucket/prefix` root: the store's keys are its layout's relative paths under
/// `prefix/` (or at the top of the bucket when the prefix is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://bucket[/prefix]`. The bucket must follow S3's naming rules closely
    /// enough to be usable in a path-style URL (3–63 of `a-z0-9.-`); the prefix must be
    /// non-empty path segments without `.`/`..`, so keys stay what the layout says.
    pub fn parse(text: &str) -> Result<S3Url, String> {
        let rest = text
            .strip_prefix(S3_SCHEME)
            .ok_or_else(|| format!("datastore root `{text}` does not start with {S3_SCHEME}"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(format!(
                "datastore root `{text}`: `{bucket}` is not a valid S3 bucket name (3 to 63 lowercase letters, digits, `.` or `-`)"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        for segment in prefix.split('/').filter(|_| !prefix.is_empty()) {
            let bad = segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.chars().any(char::is_control);
            if bad {
                return Err(format!(
                    "datastore root `{text}`: the key prefix `{prefix}` has an empty, `.`, `..` or control-character segment"
                ));
            }
        }
        Ok(S3Url {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The object key of `relative` (a `/`-separated path under the root).
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_owned()
        } else if relative.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{S3_SCHEME}{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// Whether `path` is spelled as an object-store URL.
fn is_s3(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|text| text.starts_with(S3_SCHEME))
}

impl ResolvedRoot {
    /// A directory, or a parsed `s3://` URL (an error names what is wrong with it).
    pub fn location(&self) -> Result<RootLocation, String> {
        match self.path.to_str() {
            Some(text) if text.starts_with(S3_SCHEME) => S3Url::parse(text).map(RootLocation::S3),
            _ => Ok(RootLocation::Local(self.path.clone())),
        }
    }
}

/// Picks the datastore root. An empty flag or variable counts as absent (a shell's
/// `FLOWC_DATASTORE_ROOT=` unsets it in effect). A relative path is taken relative to
/// `cwd`, so the subprocesses a scheduler starts in other directories find the same
/// store.
pub fn resolve_root(flag: Option<&Path>, env: Option<&OsStr>, cwd: &Path) -> ResolvedRoot {
    let (chosen, source) = if let Some(flag) = flag.filter(|p| !p.as_os_str().is_empty()) {
        (flag.to_path_buf(), RootSource::Flag)
    } else if let Some(env) = env.filter(|v| !v.is_empty()) {
        (PathBuf::from(env), RootSource::Env)
    } else {
        (PathBuf::from(DEFAULT_ROOT_DIR), RootSource::Default)
    };
    // An object-store URL is not a path: joining it would make `/cwd/s3:/bucket`.
    let path = if is_s3(&chosen) {
        chosen
    } else {
        // `join` keeps an absolute `chosen` as it is.
        cwd.join(chosen)
    };
    ResolvedRoot { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CWD: &str = "/home/u/proj";

    #[test]
    fn flag_wins_over_env_and_default() {
        let root = resolve_root(
            Some(Path::new("/flag")),
            Some(OsStr::new("/env")),
            Path::new(CWD),
        );
        assert_eq!(root.path, Path::new("/flag"));
        assert_eq!(root.source, RootSource::Flag);
    }

    #[test]
    fn env_wins_over_default() {
        let root = resolve_root(None, Some(OsStr::new("/env")), Path::new(CWD));
        assert_eq!(root.path, Path::new("/env"));
        assert_eq!(root.source, RootSource::Env);
    }

    #[test]
    fn default_is_dot_flowc_in_cwd() {
        let root = resolve_root(None, None, Path::new(CWD));
        assert_eq!(root.path, Path::new("/home/u/proj/.flowc"));
        assert_eq!(root.source, RootSource::Default);
    }

    #[test]
    fn empty_values_count_as_absent() {
        let root = resolve_root(Some(Path::new("")), Some(OsStr::new("")), Path::new(CWD));
        assert_eq!(root.source, RootSource::Default);
        let root = resolve_root(Some(Path::new("")), Some(OsStr::new("e")), Path::new(CWD));
        assert_eq!(root.source, RootSource::Env);
    }

    #[test]
    fn s3_roots_are_kept_verbatim_and_parsed() {
        let root = resolve_root(
            Some(Path::new("s3://my-bucket/team/flows/")),
            None,
            Path::new(CWD),
        );
        assert_eq!(root.path, Path::new("s3://my-bucket/team/flows/"));
        let expected = S3Url {
            bucket: "my-bucket".into(),
            prefix: "team/flows".into(),
        };
        assert_eq!(root.location(), Ok(RootLocation::S3(expected.clone())));
        assert_eq!(
            expected.key("F/runs/1/run.json"),
            "team/flows/F/runs/1/run.json"
        );
        assert_eq!(expected.to_string(), "s3://my-bucket/team/flows");
        let env = resolve_root(None, Some(OsStr::new("s3://b12")), Path::new(CWD));
        let RootLocation::S3(bare) = env.location().unwrap() else {
            panic!("expected an S3 root");
        };
        assert_eq!((bare.bucket.as_str(), bare.prefix.as_str()), ("b12", ""));
        assert_eq!(bare.key(".flowc-format"), ".flowc-format");
        let local = resolve_root(Some(Path::new("s3-cache")), None, Path::new(CWD));
        assert_eq!(
            local.location(),
            Ok(RootLocation::Local(PathBuf::from("/home/u/proj/s3-cache")))
        );
    }

    #[test]
    fn bad_s3_urls_say_what_is_wrong() {
        for (text, needle) in [
            ("s3://", "not a valid S3 bucket name"),
            ("s3://Upper/x", "not a valid S3 bucket name"),
            ("s3://b_b/x", "not a valid S3 bucket name"),
            ("s3://bucket/a//b", "segment"),
            ("s3://bucket/a/../b", "segment"),
        ] {
            let err = S3Url::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn relative_paths_are_anchored_at_cwd() {
        let root = resolve_root(Some(Path::new("store")), None, Path::new(CWD));
        assert_eq!(root.path, Path::new("/home/u/proj/store"));
        let root = resolve_root(None, Some(OsStr::new("../s")), Path::new(CWD));
        assert_eq!(root.path, Path::new("/home/u/proj/../s"));
    }
}
