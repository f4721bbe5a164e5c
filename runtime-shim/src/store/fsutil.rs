//! Crash-safe filesystem primitives: temporary files that clean up after themselves,
//! atomic replace-by-rename, and directory creation that survives a power cut.
//!
//! The rule everything here follows: a file appears under its final name only once its
//! bytes are on disk (`fsync` of the file, then `rename`, then `fsync` of the directory
//! that holds the new name). A reader therefore sees either nothing or the whole file,
//! never a prefix of it, even across a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{StoreError, StoreResult};

/// Every temporary file the store creates starts with this. Valid names never start
/// with `.`, so listings can skip these and they never collide with real entries.
pub(crate) const TEMP_PREFIX: &str = ".tmp.";

/// Distinguishes temporary files created by threads of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file, removed on drop unless [`TempFile::persist`] renamed it.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates a new, empty temporary file in `dir` (which must exist). The name holds
    /// the process id, a per-process counter and the clock, and the file is opened with
    /// `create_new`, so two writers can never share one.
    pub(crate) fn create_in(dir: &Path) -> StoreResult<TempFile> {
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{TEMP_PREFIX}{}.{}.{nanos}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    })
                }
                // A leftover from a crashed process that had our pid: pick another name.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(StoreError::io("create temporary file", path, err)),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file. Only `None` after `persist`, which consumes `self`, so this never
    /// fails in practice; the error keeps it panic-free all the same.
    pub(crate) fn file(&mut self) -> StoreResult<&mut File> {
        let path = &self.path;
        self.file.as_mut().ok_or_else(|| {
            StoreError::io(
                "write temporary file",
                path.clone(),
                io::Error::other("file already closed"),
            )
        })
    }

    /// Flushes the file's data to disk and closes it.
    pub(crate) fn sync(&mut self) -> StoreResult<()> {
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(|err| StoreError::io("fsync", self.path.clone(), err))?;
        }
        Ok(())
    }

    /// Syncs the file and renames it to `dest` (same filesystem), replacing whatever is
    /// there. Does not sync `dest`'s directory; callers that need the new name to be
    /// durable call [`sync_dir`].
    pub(crate) fn persist(mut self, dest: &Path) -> StoreResult<()> {
        self.sync()?;
        fs::rename(&self.path, dest).map_err(|err| StoreError::io("rename into", dest, err))?;
        // The name is gone from the temporary path: nothing for `Drop` to remove.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        drop(self.file.take());
        if !self.path.as_os_str().is_empty() {
            // Best effort: this runs on error paths, where the first error is the one
            // worth reporting; a leftover temporary file is ignored by every reader.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Flushes a directory's entries (new names, renames) to disk.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| StoreError::io("fsync directory", dir, err))
}

/// Directories cannot be opened for fsync on this platform; renames are durable once
/// the file system commits them.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> StoreResult<()> {
    Ok(())
}

/// Writes `bytes` to `dest` atomically and durably: temp file in the same directory,
/// fsync, rename, fsync of the directory. `dest`'s directory must exist.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> StoreResult<()> {
    write_atomic_unsynced_name(dest, bytes)?;
    sync_dir(parent_of(dest))
}

/// Like [`write_atomic`] without the final fsync of the directory: whatever is under
/// `dest` is always whole, but the new name may be lost in a crash until the directory
/// is synced. For a file that a later [`write_atomic`] into the same directory makes
/// durable (several renames, one directory fsync), or whose loss is harmless.
pub(crate) fn write_atomic_unsynced_name(dest: &Path, bytes: &[u8]) -> StoreResult<()> {
    let mut temp = TempFile::create_in(parent_of(dest))?;
    let temp_path = temp.path().to_path_buf();
    temp.file()?
        .write_all(bytes)
        .map_err(|err| StoreError::io("write", temp_path, err))?;
    temp.persist(dest)
}

/// Like `fs::create_dir_all`, but each directory it creates is made durable by syncing
/// its parent, so metadata written below it cannot vanish in a crash together with the
/// directory. Safe against concurrent creators.
pub(crate) fn create_dir_all_durable(dir: &Path) -> StoreResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // Collect the missing ancestors, outermost last.
    let mut missing = Vec::new();
    let mut cursor = dir;
    while !cursor.as_os_str().is_empty() && !cursor.is_dir() {
        missing.push(cursor);
        match cursor.parent() {
            Some(parent) => cursor = parent,
            None => break,
        }
    }
    for path in missing.into_iter().rev() {
        match fs::create_dir(path) {
            Ok(()) => sync_dir(parent_of(path))?,
            // Another writer created it between our check and now: fine.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(err) => return Err(StoreError::io("create directory", path, err)),
        }
    }
    Ok(())
}

/// The directory holding `path`; `.` for a bare file name.
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::TestDir;

    #[test]
    fn atomic_write_leaves_only_the_final_file() {
        let dir = TestDir::new("fsutil-atomic");
        let dest = dir.path().join("x.json");
        write_atomic(&dest, b"one").unwrap();
        write_atomic(&dest, b"two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
    }

    #[test]
    fn dropped_temp_file_is_removed() {
        let dir = TestDir::new("fsutil-drop");
        let path = {
            let mut temp = TempFile::create_in(dir.path()).unwrap();
            temp.file().unwrap().write_all(b"partial").unwrap();
            temp.path().to_path_buf()
        };
        assert!(path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(TEMP_PREFIX));
        assert!(!path.exists());
    }

    #[test]
    fn temp_files_never_share_a_name() {
        let dir = TestDir::new("fsutil-unique");
        let a = TempFile::create_in(dir.path()).unwrap();
        let b = TempFile::create_in(dir.path()).unwrap();
        assert_ne!(a.path(), b.path());
    }

    #[test]
    fn create_dir_all_durable_builds_nested_and_tolerates_existing() {
        let dir = TestDir::new("fsutil-mkdir");
        let nested = dir.path().join("a/b/c");
        create_dir_all_durable(&nested).unwrap();
        assert!(nested.is_dir());
        create_dir_all_durable(&nested).unwrap();
        fs::write(dir.path().join("file"), b"").unwrap();
        let err = create_dir_all_durable(&dir.path().join("file/sub")).unwrap_err();
        assert!(err.to_string().contains("cannot create directory"), "{err}");
    }
}
