//! Choosing what goes into a code package: a walk of the flow file's directory that
//! keeps Python sources and the small data and configuration files a flow reads beside
//! them, and leaves out what is never code (caches, virtualenvs, build output, other
//! tools' trees, datastores) or should not travel (hidden files such as `.env`).

use std::fs;
use std::path::{Path, PathBuf};

use super::{check_relative, PackageError, PackageLimits, SkippedFile};
use crate::store::FORMAT_FILE;

/// File extensions a package includes (compared case-insensitively). Python sources,
/// and the formats flows commonly read next to their code: configuration, SQL,
/// small lookup tables.
pub const INCLUDED_EXTENSIONS: &[&str] = &[
    "py", "json", "yaml", "yml", "toml", "cfg", "ini", "txt", "sql",
];

/// Directory names never descended into: byte-code caches, JavaScript dependencies and
/// Cargo's build output. Hidden directories (`.git`, `.venv`, `.flowc`) are skipped by
/// their leading dot.
const EXCLUDED_DIRS: &[&str] = &["__pycache__", "node_modules", "target"];

/// A file marking a directory as a Python virtual environment (PEP 405), whatever the
/// directory's name.
const VENV_MARKER: &str = "pyvenv.cfg";

/// A file chosen for the package.
#[derive(Debug)]
pub(crate) struct Found {
    /// Relative, `/`-separated, validated.
    pub(crate) path: String,
    /// Where to read it (through a symlink, for a link that stays inside the root).
    pub(crate) source: PathBuf,
    /// Size when listed; the content read later is checked again.
    pub(crate) size: u64,
}

/// Walks `root` (canonical) and returns the files to package, unsorted, and the ones
/// left out that a user may have expected to see included. `entry` (the flow file,
/// which the caller adds itself) is not returned.
pub(crate) fn collect(
    root: &Path,
    entry: &str,
    limits: &PackageLimits,
) -> Result<(Vec<Found>, Vec<SkippedFile>), PackageError> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    // (directory on disk, its relative path with a trailing `/`, or "" for the root)
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(err) if prefix.is_empty() => {
                return Err(PackageError::io("list directory", &dir, err))
            }
            // A subdirectory this user may not read (a mounted volume, another user's
            // output) should not block packaging; it is reported instead.
            Err(err) => {
                skipped.push(SkippedFile {
                    path: prefix.trim_end_matches('/').to_owned(),
                    reason: format!("the directory cannot be listed ({err})"),
                });
                continue;
            }
        };
        for item in listing {
            let item = item.map_err(|err| PackageError::io("list directory", &dir, err))?;
            let disk_path = item.path();
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                skipped.push(SkippedFile {
                    path: format!("{prefix}{}", item.file_name().to_string_lossy()),
                    reason: "its name is not UTF-8".to_owned(),
                });
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let relative = format!("{prefix}{name}");
            if relative == entry {
                continue;
            }
            let kind = item
                .file_type()
                .map_err(|err| PackageError::io("inspect", &disk_path, err))?;
            let (is_dir, is_file, size) = if kind.is_symlink() {
                match resolve_link(root, &disk_path) {
                    Ok(target) => {
                        if target.is_dir() {
                            if !is_excluded_dir(&name, &disk_path) {
                                skipped.push(SkippedFile {
                                    path: relative,
                                    reason: "symlinked directories are not followed".to_owned(),
                                });
                            }
                            continue;
                        }
                        let meta = fs::metadata(&target)
                            .map_err(|err| PackageError::io("inspect", &target, err))?;
                        (false, meta.is_file(), meta.len())
                    }
                    Err(reason) => {
                        if has_included_extension(&name) {
                            skipped.push(SkippedFile {
                                path: relative,
                                reason,
                            });
                        }
                        continue;
                    }
                }
            } else if kind.is_dir() {
                (true, false, 0)
            } else {
                let meta = item
                    .metadata()
                    .map_err(|err| PackageError::io("inspect", &disk_path, err))?;
                (false, kind.is_file(), meta.len())
            };
            if is_dir {
                if !is_excluded_dir(&name, &disk_path) {
                    pending.push((disk_path, format!("{relative}/")));
                }
                continue;
            }
            // Sockets, FIFOs and devices are never code.
            if !is_file || !has_included_extension(&name) {
                continue;
            }
            if let Err(reason) = check_relative(&relative) {
                skipped.push(SkippedFile {
                    path: relative,
                    reason: reason.to_owned(),
                });
                continue;
            }
            if size > limits.max_file_bytes {
                skipped.push(SkippedFile {
                    path: relative,
                    reason: format!(
                        "it is {}, over the {} limit for one file",
                        super::human_size(size),
                        super::human_size(limits.max_file_bytes)
                    ),
                });
                continue;
            }
            found.push(Found {
                path: relative,
                source: disk_path,
                size,
            });
        }
    }
    Ok((found, skipped))
}

/// Where a symlink points, if that is inside `root`; otherwise why it is left out.
fn resolve_link(root: &Path, link: &Path) -> Result<PathBuf, String> {
    let target = fs::canonicalize(link)
        .map_err(|err| format!("it is a symlink that cannot be followed ({err})"))?;
    if target.starts_with(root) {
        Ok(target)
    } else {
        Err(format!(
            "it is a symlink to `{}`, outside the flow's directory",
            target.display()
        ))
    }
}

fn is_excluded_dir(name: &str, path: &Path) -> bool {
    EXCLUDED_DIRS.contains(&name)
        || path.join(VENV_MARKER).is_file()
        // A datastore kept beside the flow holds metadata files that look like JSON
        // configuration; they are run output, never code.
        || path.join(FORMAT_FILE).is_file()
}

fn has_included_extension(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            INCLUDED_EXTENSIONS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(ext))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_matched_case_insensitively_and_only_as_extensions() {
        assert!(has_included_extension("helper.py"));
        assert!(has_included_extension("CONFIG.YAML"));
        assert!(has_included_extension("queries.sql"));
        assert!(!has_included_extension("model.pkl"));
        assert!(!has_included_extension("py"));
        assert!(!has_included_extension("notes.py.bak"));
    }
}
