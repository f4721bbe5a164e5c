//! Helpers shared by the integration tests that run flows for real: where the
//! workspace, the Python interpreter and `flowc-shim` are, a scratch directory per
//! test, running `flowc` the way a user would, storing a code package, and reading a
//! run's contents back from a local store for comparison.
//!
//! Each test file is its own crate and uses only some of these, hence the
//! `#[allow(dead_code)]` on each `mod support;`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use flowc::backends::argo::CodePackageRef;
use flowc::FrontendOptions;
use flowc_ir::Flow;
use flowc_shim::store::{FlowName, LocalStore, MetadataStore, RunId, StepName, TaskPath};
use serde_json::Value as Json;

/// The workspace root (the parent of `compiler/`), where the fixtures live.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compiler/ has a parent directory")
        .to_path_buf()
}

/// The real interpreter behind `python3` (a pyenv shim adds 0.4 s to every task).
pub(crate) fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed to run flows");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    })
}

/// `(name, relative path, options)` of every valid fixture flow, sorted.
pub(crate) fn fixtures() -> Vec<(String, String, FrontendOptions)> {
    let dir = workspace_root().join("fixtures/flows/valid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/flows/valid is readable")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut options = FrontendOptions::default();
            for line in text.lines().take_while(|l| l.starts_with('#')) {
                if let Some(flow) = line
                    .trim_start_matches('#')
                    .trim()
                    .strip_prefix("flowc: --flow ")
                {
                    options.flow = Some(flow.trim().to_owned());
                }
            }
            (
                file.trim_end_matches(".py").to_owned(),
                format!("fixtures/flows/valid/{file}"),
                options,
            )
        })
        .collect()
}

/// The flow of the fixture at `rel_path`, asserted to check without errors.
pub(crate) fn checked(rel_path: &str, options: &FrontendOptions) -> Flow {
    let text = std::fs::read_to_string(workspace_root().join(rel_path)).unwrap();
    let checked = flowc::check(rel_path, &text, options);
    assert!(
        !checked.has_errors(),
        "{rel_path}: {:?}",
        checked.diagnostics
    );
    checked.flow.expect("a checked flow")
}

/// `flowc-shim`, beside `flowc` in the target directory (a workspace build makes it)
/// unless `FLOWC_SHIM` names it.
pub(crate) fn shim() -> PathBuf {
    if let Some(path) = std::env::var_os("FLOWC_SHIM") {
        return PathBuf::from(path);
    }
    let beside = Path::new(env!("CARGO_BIN_EXE_flowc")).with_file_name("flowc-shim");
    assert!(
        beside.is_file(),
        "{} is missing: build it with `cargo build -p flowc-shim` or set FLOWC_SHIM",
        beside.display()
    );
    beside
}

/// A directory of its own for one test, removed when the test ends.
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
}

impl Scratch {
    /// `flowc-<test crate>-<pid>-<test>` under the temporary directory: the crate name
    /// keeps test binaries that run at the same time, and reuse test names, apart.
    pub(crate) fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "flowc-{}-{}-{test}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch { dir }
    }

    /// Writes `text` to `name` in the scratch directory; its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }

    /// The datastore root a test's runs go to.
    pub(crate) fn store(&self) -> PathBuf {
        self.dir.join("store")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `flowc-<test crate>-<name>-<pid>` under the temporary directory, emptied; unlike
/// [`Scratch`] it stays after the test, which removes it once it passes.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flowc-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// `flowc ARGS` in `cwd`, ready to run: plain output, this build's shim and
/// interpreter, no datastore root from the caller's environment, no stdin.
pub(crate) fn flowc_command(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowc"));
    command
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("FLOWC_SHIM", shim())
        .env("FLOWC_PYTHON", python())
        .env_remove("FLOWC_DATASTORE_ROOT")
        .stdin(Stdio::null());
    command
}

/// [`flowc_command`] run to completion.
pub(crate) fn flowc(cwd: &Path, args: &[&str]) -> Output {
    flowc_command(cwd, args).output().expect("run flowc")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A process's exit status and both streams, for assertion messages.
pub(crate) fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Stores the flow's code package in `store` with `flowc-shim package`; its reference.
pub(crate) fn package(flow_file: &Path, flow: &str, store: &Path) -> CodePackageRef {
    let out = Command::new(shim())
        .args(["package", "--flow-file"])
        .arg(flow_file)
        .args(["--flow", flow, "--datastore-root"])
        .arg(store)
        .args(["--format", "json"])
        .output()
        .expect("flowc-shim package runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Json = serde_json::from_slice(&out.stdout).expect("package report");
    CodePackageRef {
        hash: report["hash"].as_str().expect("hash").to_owned(),
        entry: report["entry"].as_str().expect("entry").to_owned(),
    }
}

/// `flowc run FLOW_FILE RUN_ARGS --datastore-root STORE` in the scratch directory,
/// asserted to succeed (`what` names the flow in the failure message); the run id.
pub(crate) fn flowc_run_id(
    scratch: &Scratch,
    flow_file: &Path,
    run_args: &[&str],
    store: &Path,
    what: &str,
) -> String {
    let out = flowc_command(&scratch.dir, &["run"])
        .arg(flow_file)
        .args(run_args)
        .arg("--datastore-root")
        .arg(store)
        .output()
        .expect("flowc runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: flowc run failed\n{stderr}");
    stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("run id: "))
        .expect("run id")
        .to_owned()
}

/// Per step: each task's artifacts as sorted `name=hash` lines, the tasks sorted (task
/// ids differ between the two runs; what the tasks hold must not).
pub(crate) type RunContents = BTreeMap<String, Vec<Vec<String>>>;

/// What [`contents`] makes of a task without a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingManifest {
    /// The test fails: every task of the runs it compares stores its artifacts.
    Fail,
    /// The task reads as `(no manifest)`: a task that failed before storing anything
    /// is still a task of the run.
    Record,
}

/// The contents of run `run` of `flow` in the local store at `store`.
pub(crate) fn contents(
    store: &Path,
    flow: &str,
    run: &str,
    missing: MissingManifest,
) -> RunContents {
    let store = LocalStore::open(store).expect("open store");
    let flow = FlowName::new(flow).expect("flow name");
    let run = RunId::new(run).expect("run id");
    let mut out = RunContents::new();
    for step in store.list_steps(&flow, &run).expect("steps") {
        let mut tasks = Vec::new();
        for task in store.list_tasks(&flow, &run, &step).expect("tasks") {
            let path = TaskPath::new(
                flow.clone(),
                run.clone(),
                StepName::new(step.as_str()).expect("step name"),
                task,
            );
            let mut artifacts: Vec<String> = match store.read_manifest(&path) {
                Ok(manifest) => manifest
                    .artifacts
                    .iter()
                    .map(|(name, entry)| format!("{name}={}", entry.hash))
                    .collect(),
                Err(e) if missing == MissingManifest::Fail => panic!("manifest: {e:?}"),
                Err(_) => vec!["(no manifest)".to_owned()],
            };
            artifacts.sort();
            tasks.push(artifacts);
        }
        tasks.sort();
        out.insert(step.as_str().to_owned(), tasks);
    }
    out
}
