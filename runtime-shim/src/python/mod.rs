//! The Python side of a task, embedded in the binary: the harness (`flowc_harness.py`)
//! and the `metaflow` compatibility package. [`install`] writes them once per content
//! hash into a cache directory, which the task puts first on `PYTHONPATH`.
//!
//! Shipping the files inside the binary keeps a container image to one static file plus
//! a Python interpreter, and ties the harness to the exact shim that speaks its protocol.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The embedded files, as (path relative to the install directory, content).
pub(crate) const FILES: &[(&str, &str)] = &[
    ("flowc_harness.py", include_str!("flowc_harness.py")),
    ("metaflow/__init__.py", include_str!("metaflow/__init__.py")),
    ("flowc/__init__.py", include_str!("flowc/__init__.py")),
    ("flowc/client.py", include_str!("flowc/client.py")),
    ("flowc/runner.py", include_str!("flowc/runner.py")),
    (
        "metaflow/client/__init__.py",
        include_str!("metaflow/client/__init__.py"),
    ),
    (
        "metaflow/client/core.py",
        include_str!("metaflow/client/core.py"),
    ),
    (
        "metaflow/client/datastore.py",
        include_str!("metaflow/client/datastore.py"),
    ),
    (
        "metaflow/client/exceptions.py",
        include_str!("metaflow/client/exceptions.py"),
    ),
    (
        "metaflow/runner/__init__.py",
        include_str!("metaflow/runner/__init__.py"),
    ),
    (
        "metaflow/runner/metaflow_runner.py",
        include_str!("metaflow/runner/metaflow_runner.py"),
    ),
    (
        "metaflow/runner/nbrun.py",
        include_str!("metaflow/runner/nbrun.py"),
    ),
    ("metaflow/cards.py", include_str!("metaflow/cards.py")),
    (
        "metaflow/plugins/__init__.py",
        include_str!("metaflow/plugins/__init__.py"),
    ),
    (
        "metaflow/plugins/cards/__init__.py",
        include_str!("metaflow/plugins/cards/__init__.py"),
    ),
    (
        "metaflow/plugins/cards/card_modules/__init__.py",
        include_str!("metaflow/plugins/cards/card_modules/__init__.py"),
    ),
    (
        "metaflow/plugins/cards/card_modules/components.py",
        include_str!("metaflow/plugins/cards/card_modules/components.py"),
    ),
    (
        "metaflow/decorators.py",
        include_str!("metaflow/decorators.py"),
    ),
    (
        "metaflow/exception.py",
        include_str!("metaflow/exception.py"),
    ),
    ("metaflow/flowspec.py", include_str!("metaflow/flowspec.py")),
    (
        "metaflow/metaflow_current.py",
        include_str!("metaflow/metaflow_current.py"),
    ),
    (
        "metaflow/parameters.py",
        include_str!("metaflow/parameters.py"),
    ),
];

/// The environment variable that overrides where the files are installed.
pub const CACHE_DIR_ENV_VAR: &str = "FLOWC_CACHE_DIR";

/// Hex SHA-256 over every embedded path and content: the install directory's key, so
/// two flowc builds with different harnesses never share (or fight over) a directory.
pub(crate) fn content_hash() -> String {
    let mut hasher = Sha256::new();
    for (path, content) in FILES {
        for part in [path.as_bytes(), content.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The default cache directory: `$FLOWC_CACHE_DIR`, else `$XDG_CACHE_HOME/flowc`, else
/// `$HOME/.cache/flowc`, else `flowc-cache` in the system temporary directory.
pub fn default_cache_dir() -> PathBuf {
    let non_empty = |var: &str| std::env::var_os(var).filter(|value| !value.is_empty());
    if let Some(dir) = non_empty(CACHE_DIR_ENV_VAR) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("flowc");
    }
    if let Some(home) = non_empty("HOME") {
        return PathBuf::from(home).join(".cache").join("flowc");
    }
    std::env::temp_dir().join("flowc-cache")
}

/// Makes sure the embedded files exist under `cache_dir` and returns the directory to
/// put on `PYTHONPATH`.
///
/// The files are written into a private temporary directory that is then renamed into
/// place, so a concurrent task sees either no directory or a complete one; when two
/// tasks race, one rename wins and the other's copy is removed.
pub fn install(cache_dir: &Path) -> io::Result<PathBuf> {
    // Absolute, because the harness compares it with its own `__file__` to check that
    // `metaflow` resolved to this copy.
    let cache_dir = &std::path::absolute(cache_dir)?;
    let hash = content_hash();
    let target = cache_dir.join(format!("python-{}", &hash[..16]));
    if target.join(FILES[0].0).is_file() {
        return Ok(target);
    }
    fs::create_dir_all(cache_dir)?;
    // Unique among this process's threads (the counter) and other processes (the pid).
    static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);
    let serial = STAGING_COUNTER.fetch_add(1, Ordering::Relaxed);
    let staging = cache_dir.join(format!(
        ".python-{}.{}.{serial}",
        &hash[..16],
        process::id()
    ));
    let written = write_files(&staging).and_then(|()| match fs::rename(&staging, &target) {
        Ok(()) => Ok(()),
        // Another task installed the same files first: use theirs.
        Err(_) if target.join(FILES[0].0).is_file() => Ok(()),
        Err(err) => Err(err),
    });
    if staging.exists() {
        // Best effort: a leftover staging directory is harmless, only untidy.
        let _ = fs::remove_dir_all(&staging);
    }
    written.map(|()| target)
}

fn write_files(dir: &Path) -> io::Result<()> {
    for (relative, content) in FILES {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, content)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flowc-python-test-{name}-{}", process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn install_writes_every_file_once_and_is_idempotent() {
        let cache = scratch("install");
        let dir = install(&cache).unwrap();
        assert!(dir.starts_with(&cache));
        for (relative, content) in FILES {
            assert_eq!(fs::read_to_string(dir.join(relative)).unwrap(), *content);
        }
        // A second install reuses the directory and leaves no staging directory behind.
        assert_eq!(install(&cache).unwrap(), dir);
        let entries: Vec<_> = fs::read_dir(&cache).unwrap().collect();
        assert_eq!(entries.len(), 1);
        fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn concurrent_installs_agree() {
        let cache = scratch("race");
        let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| install(&cache))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert!(dirs.windows(2).all(|pair| pair[0] == pair[1]));
        assert!(dirs[0].join("metaflow/flowspec.py").is_file());
        fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn content_hash_is_stable_hex() {
        let hash = content_hash();
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, content_hash());
    }
}
