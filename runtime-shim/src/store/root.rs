//! Choosing the datastore root: `--datastore-root` over `FLOWC_DATASTORE_ROOT` over
//! `.flowc/` in the working directory. A pure function of its inputs, so callers pass
//! the flag, the environment value and the working directory in and tests need not
//! touch the process environment.

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

/// The chosen root, always absolute when `cwd` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRoot {
    pub path: PathBuf,
    pub source: RootSource,
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
    ResolvedRoot {
        // `join` keeps an absolute `chosen` as it is.
        path: cwd.join(chosen),
        source,
    }
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
    fn relative_paths_are_anchored_at_cwd() {
        let root = resolve_root(Some(Path::new("store")), None, Path::new(CWD));
        assert_eq!(root.path, Path::new("/home/u/proj/store"));
        let root = resolve_root(None, Some(OsStr::new("../s")), Path::new(CWD));
        assert_eq!(root.path, Path::new("/home/u/proj/../s"));
    }
}
