//! Unit tests of code packages: what a build includes, that it is deterministic, and
//! that unpacking checks the hash and refuses every entry that could escape.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::*;

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "flowc-package-unit-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, relative: &str, content: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const FLOW: &[u8] = b"from metaflow import FlowSpec, step\nimport helpers\n";

/// The files of a small project, as (path, content).
fn project() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("flow.py", FLOW.to_vec()),
        ("helpers.py", b"def double(x):\n    return 2 * x\n".to_vec()),
        ("conf/settings.yaml", b"alpha: 0.5\n".to_vec()),
        ("conf/deep/query.sql", b"select 1;\n".to_vec()),
        ("lib/__init__.py", Vec::new()),
        ("lib/model.py", vec![b'#'; 3000]),
        ("requirements.txt", b"numpy\n".to_vec()),
    ]
}

fn set_mtime(path: &Path, seconds: u64) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .unwrap();
}

#[test]
fn same_tree_gives_identical_bytes_whatever_the_creation_order_and_mtimes() {
    let first = Scratch::new("det-a");
    for (index, (path, content)) in project().iter().enumerate() {
        let written = first.write(path, content);
        set_mtime(&written, 1_000_000 + index as u64);
    }
    let second = Scratch::new("det-b");
    for (index, (path, content)) in project().iter().rev().enumerate() {
        let written = second.write(path, content);
        set_mtime(&written, 1_700_000_000 - 977 * index as u64);
    }
    let a = build(&first.path().join("flow.py")).unwrap();
    let b = build(&second.path().join("flow.py")).unwrap();
    assert_eq!(a.hash, b.hash);
    assert!(a.bytes == b.bytes, "archives differ");
    assert_eq!(a.hash, hash_bytes(&a.bytes));
    assert_eq!(a.entry, "flow.py");
    assert_eq!(
        a.files,
        [
            "conf/deep/query.sql",
            "conf/settings.yaml",
            "flow.py",
            "helpers.py",
            "lib/__init__.py",
            "lib/model.py",
            "requirements.txt",
        ]
    );

    // Changing one byte of one file changes the hash.
    second.write("helpers.py", b"def double(x):\n    return 3 * x\n");
    let c = build(&second.path().join("flow.py")).unwrap();
    assert_ne!(c.hash, a.hash);
}

#[test]
fn caches_environments_build_output_hidden_files_and_other_types_are_left_out() {
    let dir = Scratch::new("exclude");
    dir.write("flow.py", FLOW);
    dir.write("helpers.py", b"X = 1\n");
    dir.write("__pycache__/helpers.cpython-311.pyc", b"\0");
    dir.write("pkg/__pycache__/x.py", b"");
    dir.write(".git/config.txt", b"[core]\n");
    dir.write(".env", b"SECRET=1\n");
    dir.write(".hidden.py", b"");
    dir.write(".flowc/TrainFlow/runs/1/run.json", b"{}");
    dir.write("store/.flowc-format", b"{}");
    dir.write("store/TrainFlow/runs/1/run.json", b"{}");
    dir.write("env/pyvenv.cfg", b"home = /usr\n");
    dir.write("env/lib/site.py", b"");
    dir.write("node_modules/x/index.json", b"{}");
    dir.write("target/debug/build.json", b"{}");
    dir.write("model.pkl", b"\x80\x04");
    dir.write("notes.md", b"# notes\n");
    dir.write("big.json", &vec![b' '; 2 << 20]);
    dir.write("pkg/util.py", b"Y = 2\n");

    let package = build(&dir.path().join("flow.py")).unwrap();
    assert_eq!(package.files, ["flow.py", "helpers.py", "pkg/util.py"]);
    assert_eq!(package.skipped.len(), 1, "{:?}", package.skipped);
    assert_eq!(package.skipped[0].path, "big.json");
    assert!(
        package.skipped[0].reason.contains("over the 1.0 MiB limit"),
        "{:?}",
        package.skipped
    );
}

#[test]
fn symlinks_inside_are_packaged_as_files_and_outside_ones_are_skipped() {
    let outside = Scratch::new("outside");
    outside.write("secret.py", b"TOKEN = 'x'\n");
    let dir = Scratch::new("links");
    dir.write("flow.py", FLOW);
    dir.write("real/impl.py", b"VALUE = 7\n");
    std::os::unix::fs::symlink(dir.path().join("real/impl.py"), dir.path().join("alias.py"))
        .unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.py"), dir.path().join("leak.py"))
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("again")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.py"), dir.path().join("dangling.py")).unwrap();

    let package = build(&dir.path().join("flow.py")).unwrap();
    assert_eq!(package.files, ["alias.py", "flow.py", "real/impl.py"]);
    let skipped: Vec<&str> = package.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(skipped, ["again", "dangling.py", "leak.py"]);
    let leak = &package.skipped[2];
    assert!(
        leak.reason.contains("outside the flow's directory"),
        "{leak:?}"
    );

    // The link became a plain file with the target's content.
    let cache = Scratch::new("links-cache");
    let unpacked = unpack(&package.bytes, &package.hash, cache.path()).unwrap();
    let alias = unpacked.join("alias.py");
    assert!(!fs::symlink_metadata(&alias).unwrap().is_symlink());
    assert_eq!(fs::read(alias).unwrap(), b"VALUE = 7\n");
}

#[test]
fn the_flow_file_is_always_included_and_must_be_a_file() {
    let dir = Scratch::new("entry");
    dir.write(".flow", &vec![b'#'; 3 << 20]);
    let package = build(&dir.path().join(".flow")).unwrap();
    assert_eq!(package.files, [".flow"]);
    assert_eq!(package.entry, ".flow");

    let err = build(dir.path()).unwrap_err();
    assert!(err.to_string().ends_with("is not a file"), "{err}");
    let err = build(&dir.path().join("missing.py")).unwrap_err();
    assert!(err.to_string().starts_with("cannot read `"), "{err}");
}

#[test]
fn over_the_total_limit_is_an_error_naming_the_biggest_files() {
    let dir = Scratch::new("total");
    dir.write("flow.py", FLOW);
    dir.write("data/a.json", &vec![b'a'; 900]);
    dir.write("data/b.json", &vec![b'b'; 700]);
    dir.write("data/c.txt", &vec![b'c'; 800]);
    let limits = PackageLimits {
        max_file_bytes: 1000,
        max_total_bytes: 2000,
    };
    let err = build_with(&dir.path().join("flow.py"), &limits).unwrap_err();
    match &err {
        PackageError::TooLarge {
            total,
            limit,
            biggest,
        } => {
            assert_eq!(*total, 2400 + FLOW.len() as u64);
            assert_eq!(*limit, 2000);
            let names: Vec<&str> = biggest.iter().map(|(path, _)| path.as_str()).collect();
            assert_eq!(
                names,
                ["data/a.json", "data/c.txt", "data/b.json", "flow.py"]
            );
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with("the code package would hold 2.4 KiB of files, over the 2.0 KiB limit; the biggest: data/a.json (900 bytes), data/c.txt (800 bytes)"),
        "{message}"
    );

    let roomy = PackageLimits {
        max_file_bytes: 1000,
        max_total_bytes: 4000,
    };
    assert_eq!(
        build_with(&dir.path().join("flow.py"), &roomy)
            .unwrap()
            .files
            .len(),
        4
    );
}

#[test]
fn unpack_round_trips_every_file() {
    let dir = Scratch::new("round");
    for (path, content) in project() {
        dir.write(path, &content);
    }
    let package = build(&dir.path().join("flow.py")).unwrap();
    let cache = Scratch::new("round-cache");
    let unpacked = unpack(&package.bytes, &package.hash, cache.path()).unwrap();
    assert_eq!(unpacked, package_dir(cache.path(), &package.hash));
    assert_eq!(
        unpacked,
        cache.path().join("code").join(package.hash.to_hex())
    );
    for (path, content) in project() {
        assert_eq!(fs::read(unpacked.join(path)).unwrap(), content, "{path}");
    }
    assert_eq!(
        entry_path(&unpacked, &package.hash, "flow.py").unwrap(),
        unpacked.join("flow.py")
    );
    for bad in ["missing.py", "../flow.py", "conf", ""] {
        let err = entry_path(&unpacked, &package.hash, bad).unwrap_err();
        assert!(
            matches!(err, PackageError::MissingEntry { .. }),
            "{bad}: {err}"
        );
    }
    // Unpacking again reuses the directory; no staging directory is left behind.
    assert_eq!(
        unpack(&package.bytes, &package.hash, cache.path()).unwrap(),
        unpacked
    );
    let names: Vec<_> = fs::read_dir(cache.path().join("code"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from(package.hash.to_hex())]);
}

/// An archive of hand-made headers, as a hostile or broken producer could write it.
fn crafted(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, typeflag, link, data) in entries {
        out.extend_from_slice(&tar::header(path, data.len() as u64, *typeflag, link).unwrap());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(tar::BLOCK), 0);
    }
    tar::finish(&mut out);
    out
}

#[test]
fn unpack_refuses_entries_that_could_escape_and_writes_nothing() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            crafted(&[("ok.py", b'0', "", b"1"), ("../evil.py", b'0', "", b"x")]),
            "entry `../evil.py` its path has an empty, `.` or `..` component",
        ),
        (
            crafted(&[("a/../../evil.py", b'0', "", b"x")]),
            "`..` component",
        ),
        (crafted(&[("/etc/evil.py", b'0', "", b"x")]), "is absolute"),
        (
            crafted(&[("link", b'2', "/etc", b""), ("link/passwd", b'0', "", b"x")]),
            "entry `link` is a symbolic link",
        ),
        (
            crafted(&[("hard", b'1', "/etc/passwd", b"")]),
            "entry `hard` is a hard link",
        ),
        (crafted(&[("tty", b'3', "", b"")]), "is a device"),
        (crafted(&[("fifo", b'6', "", b"")]), "is a FIFO"),
        (
            crafted(&[("pax", b'x', "", b"30 path=../../etc/evil.py\n")]),
            "extension or unknown entry type",
        ),
        (
            crafted(&[("dup.py", b'0', "", b"1"), ("dup.py", b'0', "", b"2")]),
            "appears twice",
        ),
        (
            crafted(&[("a", b'0', "", b"1"), ("a/b.py", b'0', "", b"2")]),
            "lies below `a`, which is a file",
        ),
    ];
    let cache = Scratch::new("hostile");
    for (archive, expected) in cases {
        let hash = hash_bytes(&archive);
        let err = unpack(&archive, &hash, cache.path()).unwrap_err();
        assert!(matches!(err, PackageError::Unsafe { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!package_dir(cache.path(), &hash).exists());
    }
    assert!(!cache.path().join("code").exists(), "nothing was written");
    assert!(!std::env::temp_dir().join("evil.py").exists());
}

#[test]
fn unpack_refuses_bytes_that_do_not_match_the_hash_or_are_not_a_tar() {
    let dir = Scratch::new("mismatch");
    dir.write("flow.py", FLOW);
    let package = build(&dir.path().join("flow.py")).unwrap();
    let cache = Scratch::new("mismatch-cache");

    let mut tampered = package.bytes.clone();
    let last_data = tar::BLOCK + 3;
    tampered[last_data] ^= 0x20;
    let err = unpack(&tampered, &package.hash, cache.path()).unwrap_err();
    match &err {
        PackageError::HashMismatch { expected, actual } => {
            assert_eq!(*expected, package.hash);
            assert_eq!(*actual, hash_bytes(&tampered));
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    assert!(err.to_string().contains("is damaged"), "{err}");

    let garbage = b"definitely not a tar archive".repeat(40);
    let err = unpack(&garbage, &hash_bytes(&garbage), cache.path()).unwrap_err();
    assert!(matches!(err, PackageError::Malformed { .. }), "{err}");
    assert!(!cache.path().join("code").exists());
}

#[test]
fn four_threads_unpacking_the_same_package_agree() {
    let dir = Scratch::new("race");
    for (path, content) in project() {
        dir.write(path, &content);
    }
    let package = build(&dir.path().join("flow.py")).unwrap();
    let cache = Scratch::new("race-cache");
    let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| unpack(&package.bytes, &package.hash, cache.path())))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap().unwrap())
            .collect()
    });
    assert!(dirs.iter().all(|dir| *dir == dirs[0]));
    for (path, content) in project() {
        assert_eq!(fs::read(dirs[0].join(path)).unwrap(), content, "{path}");
    }
    let names: Vec<_> = fs::read_dir(cache.path().join("code"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "staging directories left behind: {names:?}");
}

#[test]
fn sizes_read_well_in_messages() {
    assert_eq!(human_size(0), "0 bytes");
    assert_eq!(human_size(1023), "1023 bytes");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(50 << 20), "50.0 MiB");
}
