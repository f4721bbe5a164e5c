//! End-to-end test of code packages: `flowc-shim package` builds and stores a flow's
//! package, the flow's own directory is deleted, and `init` and `task` run the flow
//! from the package alone with `--code-package`, a sibling module and a data file
//! included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use flowc_shim::store::{hash_bytes, BlobHash, BlobStore, FlowName, LocalStore};

const SHIM: &str = env!("CARGO_BIN_EXE_flowc-shim");

const FLOW: &str = r#"
import json
import os

from metaflow import FlowSpec, step

from helpers import double
from lib.naming import label


class PackagedFlow(FlowSpec):
    @step
    def start(self):
        with open(os.path.join(os.path.dirname(__file__), "conf", "settings.json")) as f:
            self.base = json.load(f)["base"]
        self.x = double(self.base)
        print("flow file:", __file__)
        self.next(self.end)

    @step
    def end(self):
        assert self.x == 42, self.x
        print(label(self.x))


if __name__ == "__main__":
    PackagedFlow()
"#;

/// A scratch directory for one test, removed when it passes.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "package-tests/{name}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, relative: &str, content: &str) {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn shim(scratch: &Scratch, args: &[&str]) -> Output {
    Command::new(SHIM)
        .args(args)
        .env("FLOWC_CACHE_DIR", scratch.0.join("python-cache"))
        .env_remove("FLOWC_PYTHON")
        .env_remove("FLOWC_DATASTORE_ROOT")
        .current_dir(&scratch.0)
        .output()
        .unwrap()
}

fn ok(scratch: &Scratch, args: &[&str]) -> Output {
    let output = shim(scratch, args);
    assert!(
        output.status.success(),
        "`flowc-shim {}` failed:\n{}",
        args.join(" "),
        text(&output)
    );
    output
}

fn run_args<'a>(hash: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--code-package",
        hash,
        "--package-entry",
        "flow.py",
        "--flow",
        "PackagedFlow",
        "--run-id",
        "1",
        "--datastore-root",
        "store",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_flow_runs_from_its_code_package_after_its_directory_is_deleted() {
    let scratch = Scratch::new("runs");
    scratch.write("project/flow.py", FLOW);
    scratch.write("project/helpers.py", "def double(v):\n    return 2 * v\n");
    scratch.write("project/lib/__init__.py", "");
    scratch.write(
        "project/lib/naming.py",
        "def label(v):\n    return 'x is %d' % v\n",
    );
    scratch.write("project/conf/settings.json", "{\"base\": 21}\n");
    scratch.write("project/__pycache__/stale.py", "raise SystemExit(9)\n");

    let built = ok(
        &scratch,
        &[
            "package",
            "--flow-file",
            "project/flow.py",
            "--flow",
            "PackagedFlow",
            "--datastore-root",
            "store",
            "--output",
            "package.tar",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
    let hash = report["hash"].as_str().unwrap().to_owned();
    assert_eq!(report["entry"], "flow.py");
    assert_eq!(
        report["files"],
        serde_json::json!([
            "conf/settings.json",
            "flow.py",
            "helpers.py",
            "lib/__init__.py",
            "lib/naming.py"
        ])
    );
    let archive = std::fs::read(scratch.0.join("package.tar")).unwrap();
    assert_eq!(report["size"], archive.len());
    assert_eq!(hash_bytes(&archive).to_hex(), hash);
    // The datastore holds the same bytes, as a blob of the flow.
    let store = LocalStore::open(&scratch.0.join("store")).unwrap();
    let flow = FlowName::new("PackagedFlow").unwrap();
    let blob_hash = BlobHash::parse(&hash).unwrap();
    assert_eq!(store.get(&flow, &blob_hash).unwrap(), archive);

    // An ordinary tar reader agrees on the contents.
    let listed = Command::new("python3")
        .args([
            "-c",
            "import sys, tarfile; print(' '.join(tarfile.open(sys.argv[1]).getnames()))",
            "package.tar",
        ])
        .current_dir(&scratch.0)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "conf/settings.json flow.py helpers.py lib/__init__.py lib/naming.py"
    );

    // The text form prints the hash alone, and building again changes nothing.
    let again = ok(
        &scratch,
        &[
            "package",
            "--flow-file",
            "project/flow.py",
            "--flow",
            "PackagedFlow",
            "--datastore-root",
            "store",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout), format!("{hash}\n"));

    std::fs::remove_dir_all(scratch.0.join("project")).unwrap();

    let mut init = vec!["init"];
    init.extend(run_args(&hash, &[]));
    ok(&scratch, &init);
    let mut start = vec!["task"];
    start.extend(run_args(&hash, &["--step", "start", "--task-id", "1"]));
    let started = ok(&scratch, &start);
    let unpacked = scratch
        .0
        .join("store/.cache/code")
        .join(&hash)
        .join("flow.py");
    assert!(
        String::from_utf8_lossy(&started.stdout)
            .contains(&format!("flow file: {}", unpacked.display())),
        "{}",
        text(&started)
    );

    let mut end = vec!["task"];
    end.extend(run_args(
        &hash,
        &[
            "--step",
            "end",
            "--task-id",
            "2",
            "--input-paths",
            "1/start/1",
        ],
    ));
    let ended = ok(&scratch, &end);
    assert!(
        String::from_utf8_lossy(&ended.stdout).contains("x is 42"),
        "{}",
        text(&ended)
    );
}

#[test]
fn a_missing_package_or_entry_is_reported_and_nothing_runs() {
    let scratch = Scratch::new("missing");
    scratch.write("project/flow.py", FLOW);
    let absent = "0".repeat(64);
    let mut args = vec!["task"];
    args.extend(run_args(&absent, &["--step", "start", "--task-id", "1"]));
    let output = shim(&scratch, &args);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not found"), "{stderr}");

    let built = ok(
        &scratch,
        &[
            "package",
            "--flow-file",
            "project/flow.py",
            "--flow",
            "PackagedFlow",
            "--datastore-root",
            "store",
        ],
    );
    let hash = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    let mut args = vec!["task"];
    args.extend(run_args(&hash, &["--step", "start", "--task-id", "1"]));
    let entry = args.iter().position(|arg| *arg == "flow.py").unwrap();
    args[entry] = "../project/flow.py";
    let output = shim(&scratch, &args);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("has no file `../project/flow.py` (check --package-entry)"),
        "{stderr}"
    );
    assert!(!Path::new(&scratch.0.join("store/PackagedFlow/runs/1")).exists());
}

#[test]
fn usage_errors_exit_with_status_2() {
    let scratch = Scratch::new("usage");
    scratch.write("project/flow.py", FLOW);
    // Storing needs the flow's name; writing a file alone does not.
    let output = shim(&scratch, &["package", "--flow-file", "project/flow.py"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--flow NAME is needed"));
    ok(
        &scratch,
        &[
            "package",
            "--flow-file",
            "project/flow.py",
            "--output",
            "p.tar",
        ],
    );
    assert!(scratch.0.join("p.tar").is_file());
    assert!(!scratch.0.join(".flowc").exists(), "nothing was stored");

    // --code-package and --flow-file exclude each other; the entry is required.
    let hash = "0".repeat(64);
    for extra in [vec!["--flow-file", "project/flow.py"], vec![]] {
        let mut args = vec!["task", "--code-package", &hash];
        if !extra.is_empty() {
            args.extend(["--package-entry", "flow.py"]);
        }
        args.extend(extra);
        args.extend([
            "--flow",
            "PackagedFlow",
            "--run-id",
            "1",
            "--step",
            "start",
            "--task-id",
            "1",
        ]);
        let output = shim(&scratch, &args);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    }

    let output = shim(
        &scratch,
        &[
            "package",
            "--flow-file",
            "project/missing.py",
            "--output",
            "p.tar",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}
