//! Code packages: how a flow's code reaches every task. [`build`] turns the flow file
//! and the files beside it into one deterministic tar archive named by its SHA-256;
//! [`unpack`] (and [`fetch`], which reads the archive from the datastore first) turns it
//! back into a directory a task runs the flow from. Local runs and containers use the
//! same path, so what runs locally is what a container runs.
//!
//! Determinism is the point of the format: the same tree gives byte-identical archive
//! bytes, hence the same hash, whatever the filesystem's listing order, timestamps or
//! owners. Paths are sorted; every header carries mode 0644, uid and gid 0, mtime 0
//! and no owner names. The archive is an uncompressed ustar tar (`tar tf` lists it);
//! the datastore compresses blobs itself.
//!
//! `docs/runtime.md` describes what a package contains and its limits.

mod tar;
mod walk;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{hash_bytes, BlobHash, BlobStore, FlowName, StoreError};

pub use walk::INCLUDED_EXTENSIONS;

/// The directory under a datastore root that holds caches (`<root>/.cache`). Its
/// leading dot keeps it out of the store's listings and distinct from every flow name.
pub const CACHE_DIR: &str = ".cache";

/// The directory under a cache root that holds unpacked packages, one per hash.
const CODE_DIR: &str = "code";

/// Prefix of the staging directories [`unpack`] extracts into before renaming.
const STAGING_PREFIX: &str = ".tmp.";

/// How many of the biggest files a [`PackageError::TooLarge`] names.
const BIGGEST_SHOWN: usize = 5;

/// Size limits for [`build_with`]. A flow's directory is code; a file bigger than this
/// is a data set or a model that belongs in an artifact or object storage, and would
/// otherwise be copied into every run's package silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageLimits {
    /// Files larger than this are left out (and listed in [`CodePackage::skipped`]).
    /// The flow file itself is always included.
    pub max_file_bytes: u64,
    /// A package whose files add up to more than this is an error.
    pub max_total_bytes: u64,
}

impl PackageLimits {
    /// 1 MiB a file, 50 MiB in all.
    pub const DEFAULT: PackageLimits = PackageLimits {
        max_file_bytes: 1 << 20,
        max_total_bytes: 50 << 20,
    };
}

impl Default for PackageLimits {
    fn default() -> Self {
        PackageLimits::DEFAULT
    }
}

/// A built code package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePackage {
    /// The tar archive.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`: the package's name, and its blob's name in the datastore.
    pub hash: BlobHash,
    /// The flow file's path inside the package (its file name: it sits at the top).
    pub entry: String,
    /// Every file in the package, sorted, as archive paths.
    pub files: Vec<String>,
    /// Files with an included extension that were left out, and why, sorted.
    pub skipped: Vec<SkippedFile>,
}

/// A file [`build`] left out although its extension is one a package includes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SkippedFile {
    /// The path relative to the flow's directory.
    pub path: String,
    pub reason: String,
}

/// Why a package could not be built, stored, fetched or unpacked.
#[derive(Debug)]
pub enum PackageError {
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The flow file cannot be the package's entry (not a file, an unusable name).
    FlowFile {
        path: PathBuf,
        reason: String,
    },
    /// The files add up to more than [`PackageLimits::max_total_bytes`].
    TooLarge {
        total: u64,
        limit: u64,
        /// The biggest files, largest first.
        biggest: Vec<(String, u64)>,
    },
    /// The bytes do not hash to the package's name.
    HashMismatch {
        expected: BlobHash,
        actual: BlobHash,
    },
    /// The archive is not one [`build`] could have written (damaged or hand-made).
    Malformed {
        hash: BlobHash,
        reason: String,
    },
    /// An entry would land outside the package directory or is not a regular file.
    Unsafe {
        hash: BlobHash,
        path: String,
        reason: String,
    },
    /// The entry named on the command line is not a file of the package.
    MissingEntry {
        hash: BlobHash,
        entry: String,
    },
    Store(StoreError),
}

impl PackageError {
    fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PackageError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
            PackageError::FlowFile { path, reason } => {
                write!(f, "flow file `{}` {reason}", path.display())
            }
            PackageError::TooLarge {
                total,
                limit,
                biggest,
            } => {
                write!(
                    f,
                    "the code package would hold {} of files, over the {} limit; the biggest: ",
                    human_size(*total),
                    human_size(*limit)
                )?;
                for (index, (path, size)) in biggest.iter().enumerate() {
                    let sep = if index == 0 { "" } else { ", " };
                    write!(f, "{sep}{path} ({})", human_size(*size))?;
                }
                write!(
                    f,
                    "; move data files out of the flow's directory (store them as artifacts \
                     or in object storage), or into a hidden directory, which is never packaged"
                )
            }
            PackageError::HashMismatch { expected, actual } => write!(
                f,
                "code package {expected} is damaged: its bytes hash to {actual}"
            ),
            PackageError::Malformed { hash, reason } => {
                write!(f, "code package {hash} is not a valid package: {reason}")
            }
            PackageError::Unsafe { hash, path, reason } => write!(
                f,
                "code package {hash} was refused: entry `{path}` {reason}"
            ),
            PackageError::MissingEntry { hash, entry } => write!(
                f,
                "code package {hash} has no file `{entry}` (check --package-entry)"
            ),
            PackageError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for PackageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PackageError::Io { source, .. } => Some(source),
            PackageError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl From<StoreError> for PackageError {
    fn from(err: StoreError) -> Self {
        PackageError::Store(err)
    }
}

/// `1.5 MiB`-style sizes for messages.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("GiB"))
}

/// Checks a path inside a package: relative, `/`-separated, no empty, `.` or `..`
/// component, no NUL or backslash (a separator elsewhere), short enough for a header.
pub(crate) fn check_relative(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("its path is empty");
    }
    if path.starts_with('/') {
        return Err("its path is absolute");
    }
    if path.contains('\0') || path.contains('\\') {
        return Err("its path holds a NUL or a backslash");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("its path has an empty, `.` or `..` component");
    }
    if !tar::fits(path) {
        return Err("its path is too long for a ustar header (at most 100 bytes of file name and 255 in all)");
    }
    Ok(())
}

/// Builds the code package of `flow_file` with the default [`PackageLimits`].
pub fn build(flow_file: &Path) -> Result<CodePackage, PackageError> {
    build_with(flow_file, &PackageLimits::DEFAULT)
}

/// Builds the code package of `flow_file`: the flow file, plus every file with one of
/// the [`INCLUDED_EXTENSIONS`] under its directory, recursively, except hidden files
/// and directories, `__pycache__`, `node_modules`, `target`, virtualenvs (directories
/// holding `pyvenv.cfg`), datastores (holding `.flowc-format`), files over
/// `limits.max_file_bytes`, and symlinks that lead out of the directory.
pub fn build_with(flow_file: &Path, limits: &PackageLimits) -> Result<CodePackage, PackageError> {
    let flow_error = |reason: &str| PackageError::FlowFile {
        path: flow_file.to_path_buf(),
        reason: reason.to_owned(),
    };
    let meta = fs::metadata(flow_file).map_err(|err| PackageError::io("read", flow_file, err))?;
    if !meta.is_file() {
        return Err(flow_error("is not a file"));
    }
    let absolute = std::path::absolute(flow_file)
        .map_err(|err| PackageError::io("resolve", flow_file, err))?;
    let entry = absolute
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| flow_error("has a name that is not UTF-8"))?
        .to_owned();
    check_relative(&entry)
        .map_err(|reason| flow_error(&format!("cannot be packaged: {reason}")))?;
    let dir = absolute
        .parent()
        .ok_or_else(|| flow_error("has no parent directory"))?;
    let root = fs::canonicalize(dir).map_err(|err| PackageError::io("resolve", dir, err))?;

    let (mut found, mut skipped) = walk::collect(&root, &entry, limits)?;
    found.push(walk::Found {
        path: entry.clone(),
        source: absolute.clone(),
        size: meta.len(),
    });
    found.sort_by(|a, b| a.path.cmp(&b.path));
    check_total(
        found.iter().map(|file| (file.path.as_str(), file.size)),
        limits,
    )?;

    let mut contents = Vec::with_capacity(found.len());
    for file in found {
        let data =
            fs::read(&file.source).map_err(|err| PackageError::io("read", &file.source, err))?;
        // A file that grew since it was listed is judged by what was actually read.
        if file.path != entry && data.len() as u64 > limits.max_file_bytes {
            skipped.push(SkippedFile {
                reason: format!(
                    "it is {}, over the {} limit for one file",
                    human_size(data.len() as u64),
                    human_size(limits.max_file_bytes)
                ),
                path: file.path,
            });
            continue;
        }
        contents.push((file.path, data));
    }
    check_total(
        contents
            .iter()
            .map(|(path, data)| (path.as_str(), data.len() as u64)),
        limits,
    )?;
    skipped.sort();

    let capacity: usize = contents
        .iter()
        .map(|(_, data)| tar::BLOCK + data.len().next_multiple_of(tar::BLOCK))
        .sum::<usize>()
        + 2 * tar::BLOCK;
    let mut bytes = Vec::with_capacity(capacity);
    for (path, data) in &contents {
        // Every path passed `check_relative`, which includes `tar::fits`.
        if !tar::append_file(&mut bytes, path, data) {
            return Err(PackageError::FlowFile {
                path: flow_file.to_path_buf(),
                reason: format!("cannot be packaged: `{path}` does not fit in a tar header"),
            });
        }
    }
    tar::finish(&mut bytes);
    Ok(CodePackage {
        hash: hash_bytes(&bytes),
        bytes,
        entry,
        files: contents.into_iter().map(|(path, _)| path).collect(),
        skipped,
    })
}

impl CodePackage {
    /// Writes the archive to `dest` atomically: a temporary file beside it, flushed,
    /// then renamed, so `dest` never holds part of a package.
    pub fn write_to(&self, dest: &Path) -> Result<(), PackageError> {
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let name = dest
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(
            "{STAGING_PREFIX}{name}.{}.{}",
            std::process::id(),
            STAGING_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut file| {
                file.write_all(&self.bytes)?;
                file.sync_all()
            })
            .map_err(|err| PackageError::io("write", &temp, err))
            .and_then(|()| {
                fs::rename(&temp, dest).map_err(|err| PackageError::io("write", dest, err))
            });
        if written.is_err() {
            // Best effort: the first error is the one worth reporting.
            let _ = fs::remove_file(&temp);
        }
        written
    }
}

/// Distinguishes the staging paths of one process's threads.
static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

fn check_total<'a>(
    files: impl Iterator<Item = (&'a str, u64)>,
    limits: &PackageLimits,
) -> Result<(), PackageError> {
    let mut sizes: Vec<(&str, u64)> = files.collect();
    let total: u64 = sizes.iter().map(|(_, size)| size).sum();
    if total <= limits.max_total_bytes {
        return Ok(());
    }
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    Err(PackageError::TooLarge {
        total,
        limit: limits.max_total_bytes,
        biggest: sizes
            .into_iter()
            .take(BIGGEST_SHOWN)
            .map(|(path, size)| (path.to_owned(), size))
            .collect(),
    })
}

/// The cache root under a datastore root: `<root>/.cache`.
pub fn cache_root(datastore_root: &Path) -> PathBuf {
    datastore_root.join(CACHE_DIR)
}

/// Where [`unpack`] puts the package `hash`: `<cache_root>/code/<hash>`.
pub fn package_dir(cache_root: &Path, hash: &BlobHash) -> PathBuf {
    cache_root.join(CODE_DIR).join(hash.to_hex())
}

/// Returns the unpacked directory of package `hash`, reading the package from `store`
/// (as a blob of `flow`) and unpacking it only when this cache does not hold it yet.
pub fn fetch<S: BlobStore + ?Sized>(
    store: &S,
    flow: &FlowName,
    hash: &BlobHash,
    cache_root: &Path,
) -> Result<PathBuf, PackageError> {
    let dir = package_dir(cache_root, hash);
    if dir.is_dir() {
        return Ok(dir);
    }
    let bytes = store.get(flow, hash)?;
    unpack(&bytes, hash, cache_root)
}

/// The path of `entry` inside the unpacked package `dir`, checked to be a package path
/// naming a file there.
pub fn entry_path(dir: &Path, hash: &BlobHash, entry: &str) -> Result<PathBuf, PackageError> {
    let missing = || PackageError::MissingEntry {
        hash: *hash,
        entry: entry.to_owned(),
    };
    check_relative(entry).map_err(|_| missing())?;
    let path = dir.join(entry);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        _ => Err(missing()),
    }
}

/// Verifies that `bytes` hash to `hash` and extracts them into
/// `<cache_root>/code/<hash>/`, returning that directory.
///
/// Nothing is written unless every entry is a regular file whose path stays inside the
/// directory. Extraction goes to a private staging directory that is renamed into
/// place once every file is on disk, so a concurrent task sees either no directory or
/// a complete one; when several tasks race, one rename wins and the others reuse its
/// result. An existing directory is reused without being read.
pub fn unpack(bytes: &[u8], hash: &BlobHash, cache_root: &Path) -> Result<PathBuf, PackageError> {
    let actual = hash_bytes(bytes);
    if actual != *hash {
        return Err(PackageError::HashMismatch {
            expected: *hash,
            actual,
        });
    }
    let files = checked_entries(bytes, hash)?;
    let target = package_dir(cache_root, hash);
    if target.is_dir() {
        return Ok(target);
    }
    let code_dir = cache_root.join(CODE_DIR);
    fs::create_dir_all(&code_dir).map_err(|err| PackageError::io("create", &code_dir, err))?;
    // Unique among this process's threads (the counter) and other processes (the pid).
    let staging = code_dir.join(format!(
        "{STAGING_PREFIX}{}.{}.{}",
        &hash.to_hex()[..16],
        std::process::id(),
        STAGING_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = extract(&staging, &files).and_then(|()| match fs::rename(&staging, &target) {
        Ok(()) => sync_dir(&code_dir),
        // Another task put the same package in place first: use theirs.
        Err(_) if target.is_dir() => Ok(()),
        Err(err) => Err(PackageError::io("move into place", &target, err)),
    });
    if staging.exists() {
        // Best effort: a leftover staging directory is ignored by every reader.
        let _ = fs::remove_dir_all(&staging);
    }
    result.map(|()| target)
}

/// Parses the archive and checks every entry before anything is written.
fn checked_entries<'a>(
    bytes: &'a [u8],
    hash: &BlobHash,
) -> Result<Vec<(String, &'a [u8])>, PackageError> {
    let entries = tar::entries(bytes).map_err(|reason| PackageError::Malformed {
        hash: *hash,
        reason,
    })?;
    let refuse = |path: &str, reason: String| PackageError::Unsafe {
        hash: *hash,
        path: path.to_owned(),
        reason,
    };
    let mut files = Vec::with_capacity(entries.len());
    let mut seen = BTreeSet::new();
    for entry in entries {
        let kind = match entry.typeflag {
            tar::REGULAR | 0 => None,
            b'1' => Some("a hard link"),
            b'2' => Some("a symbolic link"),
            b'3' | b'4' => Some("a device"),
            b'5' => Some("a directory entry"),
            b'6' => Some("a FIFO"),
            _ => Some("an extension or unknown entry type"),
        };
        if let Some(kind) = kind {
            return Err(refuse(
                &entry.path,
                format!("is {kind}; a code package holds regular files only"),
            ));
        }
        check_relative(&entry.path).map_err(|reason| refuse(&entry.path, reason.to_owned()))?;
        // Belt and braces: the standard library's reading of the path must agree.
        if !Path::new(&entry.path)
            .components()
            .all(|part| matches!(part, Component::Normal(_)))
        {
            return Err(refuse(
                &entry.path,
                "would escape the package directory".to_owned(),
            ));
        }
        if !seen.insert(entry.path.clone()) {
            return Err(refuse(&entry.path, "appears twice".to_owned()));
        }
        files.push((entry.path, entry.data));
    }
    // A file may not also be a directory of another entry (`a` and `a/b.py`).
    for (path, _) in &files {
        let mut at = 0;
        while let Some(found) = path.get(at..).and_then(|rest| rest.find('/')) {
            let ancestor = path.get(..at + found).unwrap_or_default();
            if seen.contains(ancestor) {
                return Err(refuse(
                    path,
                    format!("lies below `{ancestor}`, which is a file"),
                ));
            }
            at += found + 1;
        }
    }
    Ok(files)
}

/// Writes the checked files under `staging` (which must not exist) and flushes them,
/// and every directory made, to disk before the caller renames `staging` into place:
/// a crash must never leave a complete-looking package with empty files.
fn extract(staging: &Path, files: &[(String, &[u8])]) -> Result<(), PackageError> {
    fs::create_dir(staging).map_err(|err| PackageError::io("create", staging, err))?;
    let mut dirs = BTreeSet::from([staging.to_path_buf()]);
    for (path, data) in files {
        let dest = staging.join(path);
        if let Some(parent) = dest.parent() {
            if !dirs.contains(parent) {
                fs::create_dir_all(parent)
                    .map_err(|err| PackageError::io("create", parent, err))?;
                let mut cursor = parent;
                while cursor != staging && dirs.insert(cursor.to_path_buf()) {
                    match cursor.parent() {
                        Some(up) => cursor = up,
                        None => break,
                    }
                }
            }
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(|err| PackageError::io("create", &dest, err))?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(|err| PackageError::io("write", &dest, err))?;
    }
    // Deepest first, so each directory's own entry is flushed after its contents.
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), PackageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| PackageError::io("flush directory", dir, err))
}

#[cfg(test)]
mod tests;
