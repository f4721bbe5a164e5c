//! End-to-end tests of the warm interpreter: tasks forked from a zygote
//! (`flowc-shim task --zygote`) store what spawned tasks store, are isolated from each
//! other, stream their output through the shim, report their real exit status (a
//! killed process group included), die with their shim, and fall back to starting
//! Python when the zygote is gone.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use flowc_shim::store::{
    BlobStore, FlowName, LocalStore, Manifest, MetadataStore, RunId, StepName, TaskId, TaskPath,
};
use flowc_shim::task::zygote::{Zygote, ZygoteConfig};
use rustix::process::{kill_process_group, test_kill_process, Pid, Signal};

mod support;

use support::text;

const SHIM: &str = env!("CARGO_BIN_EXE_flowc-shim");

fn scratch_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zygote-tests")
}

/// Shared by the shims and the zygotes of these tests: a zygote serves only tasks that
/// use the harness it runs.
fn cache_dir() -> PathBuf {
    scratch_root().join("cache")
}

/// A flow file in a scratch directory, with one datastore per `root` name.
struct Fixture {
    dir: PathBuf,
    flow: String,
}

impl Fixture {
    fn new(name: &str, flow: &str, source: &str) -> Fixture {
        let dir = support::flow_dir(&scratch_root(), name, source);
        Fixture {
            dir,
            flow: flow.to_owned(),
        }
    }

    fn flow_file(&self) -> PathBuf {
        self.dir.join("flow.py")
    }

    fn root(&self, store: &str) -> PathBuf {
        self.dir.join(store)
    }

    fn zygote(&self, preload: bool) -> Zygote {
        Zygote::start(&ZygoteConfig {
            cache_dir: Some(cache_dir()),
            flow_file: Some(self.flow_file()),
            preload_flow: preload,
            ..ZygoteConfig::default()
        })
        .expect("the zygote starts")
    }

    /// `flowc-shim SUBCOMMAND` for run 1 in datastore `store`, through `zygote` if any.
    fn command(&self, subcommand: &str, store: &str, zygote: Option<&Path>) -> Command {
        let mut cmd = Command::new(SHIM);
        cmd.arg(subcommand)
            .arg("--flow-file")
            .arg(self.flow_file())
            .args(["--flow", &self.flow, "--run-id", "1"])
            .arg("--datastore-root")
            .arg(self.root(store))
            .env("FLOWC_CACHE_DIR", cache_dir())
            .env_remove("FLOWC_PYTHON")
            .current_dir(&self.dir);
        if let Some(socket) = zygote {
            cmd.arg("--zygote").arg(socket);
        }
        cmd
    }

    fn task_command(
        &self,
        store: &str,
        zygote: Option<&Path>,
        step: &str,
        task_id: &str,
        inputs: &[&str],
    ) -> Command {
        let mut cmd = self.command("task", store, zygote);
        cmd.args(["--step", step, "--task-id", task_id]);
        if !inputs.is_empty() {
            let paths: Vec<String> = inputs.iter().map(|i| format!("1/{i}")).collect();
            cmd.args(["--input-paths", &paths.join(",")]);
        }
        cmd
    }

    fn init(&self, store: &str, zygote: Option<&Path>) {
        let output = self.command("init", store, zygote).output().unwrap();
        assert!(output.status.success(), "init failed:\n{}", text(&output));
        assert_no_fallback(zygote, &output);
    }

    /// Runs a task that must succeed; through a zygote, it must not have fallen back.
    fn ok(
        &self,
        store: &str,
        zygote: Option<&Path>,
        step: &str,
        task_id: &str,
        inputs: &[&str],
    ) -> Output {
        let output = self
            .task_command(store, zygote, step, task_id, inputs)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "task {step}/{task_id} failed:\n{}",
            text(&output)
        );
        assert_no_fallback(zygote, &output);
        output
    }

    fn store(&self, store: &str) -> LocalStore {
        LocalStore::open(&self.root(store)).unwrap()
    }

    fn path(&self, step: &str, task_id: &str) -> TaskPath {
        TaskPath::new(
            FlowName::new(&self.flow).unwrap(),
            RunId::new("1").unwrap(),
            StepName::new(step).unwrap(),
            TaskId::new(task_id).unwrap(),
        )
    }

    fn manifest(&self, store: &str, step: &str, task_id: &str) -> Manifest {
        self.store(store)
            .read_manifest(&self.path(step, task_id))
            .unwrap()
    }

    /// `repr()` of a stored artifact, unpickled by Python.
    fn value(&self, store: &str, step: &str, task_id: &str, artifact: &str) -> String {
        let manifest = self.manifest(store, step, task_id);
        let entry = manifest
            .artifacts
            .iter()
            .find(|(name, _)| name.as_str() == artifact)
            .map(|(_, entry)| entry)
            .unwrap_or_else(|| panic!("{step}/{task_id} has no artifact `{artifact}`"));
        let bytes = self
            .store(store)
            .get(&FlowName::new(&self.flow).unwrap(), &entry.hash)
            .unwrap();
        support::unpickle_repr(&cache_dir(), &bytes)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn assert_no_fallback(zygote: Option<&Path>, output: &Output) {
    if zygote.is_some() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("unavailable"),
            "the task fell back to starting Python:\n{}",
            text(output)
        );
    }
}

/// Waits until `path` holds a line, and returns it.
fn wait_for_line(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text.trim().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "`{}` never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pid(raw: &str) -> Pid {
    Pid::from_raw(raw.parse().unwrap()).unwrap()
}

/// Whether a process still exists (zombies of a dead parent are reaped by init).
fn alive(pid: Pid) -> bool {
    test_kill_process(pid).is_ok()
}

const BRANCHY: &str = r#"
from metaflow import FlowSpec, Parameter, step


class BranchyFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @step
    def start(self):
        self.items = ["a", "b", "c"]
        self.blob = bytes(range(256)) * 1000
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.doubled = self.input * 2
        self.sizes = {"n": len(self.blob), "alpha": self.alpha}
        self.next(self.join)

    @step
    def join(self, inputs):
        self.all = sorted(inp.doubled for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        self.done = True
"#;

#[test]
fn forked_tasks_store_the_same_manifests_as_spawned_tasks() {
    let fx = Fixture::new("same-manifests", "BranchyFlow", BRANCHY);
    let zygote = fx.zygote(true);
    for (store, socket) in [("spawned", None), ("forked", Some(zygote.socket_path()))] {
        fx.init(store, socket);
        fx.ok(store, socket, "start", "1", &[]);
        for split in 0..3 {
            let id = (10 + split).to_string();
            let mut cmd = fx.task_command(store, socket, "fan", &id, &["start/1"]);
            let output = cmd
                .args(["--split-index", &split.to_string()])
                .output()
                .unwrap();
            assert!(output.status.success(), "fan failed:\n{}", text(&output));
            assert_no_fallback(socket, &output);
        }
        fx.ok(store, socket, "join", "20", &["fan/10", "fan/11", "fan/12"]);
        fx.ok(store, socket, "end", "30", &["join/20"]);
    }
    let tasks = [
        ("_parameters", "0"),
        ("start", "1"),
        ("fan", "10"),
        ("fan", "11"),
        ("fan", "12"),
        ("join", "20"),
        ("end", "30"),
    ];
    for (step, task_id) in tasks {
        let spawned = fx.manifest("spawned", step, task_id);
        let forked = fx.manifest("forked", step, task_id);
        assert!(
            !spawned.artifacts.is_empty(),
            "{step}/{task_id} stored nothing"
        );
        assert_eq!(spawned, forked, "manifests of {step}/{task_id} differ");
    }
    assert_eq!(
        fx.value("forked", "join", "20", "all"),
        "['aa', 'bb', 'cc']"
    );
}

const STATEFUL: &str = r#"
import os
import random
from metaflow import FlowSpec, step

# Runs once per process that executes this file: in a zygote that preloads it, once.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imports.log"), "a") as log:
    log.write("%d\n" % os.getpid())

SEEN = []
MODE = os.environ.get("ZYGOTE_TEST_MODE", "unset")


class StateFlow(FlowSpec):
    counter = 0

    @step
    def start(self):
        SEEN.append(1)
        StateFlow.counter += 1
        os.environ["LEAKED"] = "yes"
        self.seen = len(SEEN)
        self.counter_seen = StateFlow.counter
        self.leaked_before = os.environ.get("LEAKED_FROM_EARLIER")
        os.environ["LEAKED_FROM_EARLIER"] = "yes"
        self.mode = MODE
        self.pid = os.getpid()
        self.ppid = os.getppid()
        self.own_group = os.getpgid(0) == os.getpid()
        self.draw = random.random()
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn every_forked_task_starts_from_the_pristine_zygote() {
    let fx = Fixture::new("isolation", "StateFlow", STATEFUL);
    let zygote = fx.zygote(true);
    let socket = Some(zygote.socket_path());
    assert_eq!(
        zygote.info().preloaded.as_deref(),
        Some(fx.flow_file().as_path())
    );
    fx.init("s", socket);
    let mut pids = Vec::new();
    let mut draws = Vec::new();
    for task_id in ["1", "2", "3"] {
        fx.ok("s", socket, "start", task_id, &[]);
        assert_eq!(fx.value("s", "start", task_id, "seen"), "1");
        assert_eq!(fx.value("s", "start", task_id, "counter_seen"), "1");
        assert_eq!(fx.value("s", "start", task_id, "leaked_before"), "None");
        assert_eq!(fx.value("s", "start", task_id, "own_group"), "True");
        assert_eq!(fx.value("s", "start", task_id, "mode"), "'unset'");
        // Forked by the zygote, not started by the shim.
        assert_eq!(
            fx.value("s", "start", task_id, "ppid"),
            zygote.pid().to_string()
        );
        pids.push(fx.value("s", "start", task_id, "pid"));
        draws.push(fx.value("s", "start", task_id, "draw"));
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "each task is a process of its own");
    draws.sort();
    draws.dedup();
    assert_eq!(draws.len(), 3, "each task has random state of its own");
    // The module ran once, in the zygote: the tasks used the preloaded module.
    let imports = std::fs::read_to_string(fx.dir.join("imports.log")).unwrap();
    assert_eq!(
        imports.lines().collect::<Vec<_>>(),
        [zygote.pid().to_string()]
    );
}

#[test]
fn an_environment_the_preload_did_not_see_reloads_the_flow() {
    let fx = Fixture::new("env-reload", "StateFlow", STATEFUL);
    let zygote = fx.zygote(true);
    let socket = Some(zygote.socket_path());
    fx.init("s", socket);
    let output = fx
        .task_command("s", socket, "start", "1", &[])
        .args(["--env", "ZYGOTE_TEST_MODE=fast"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_no_fallback(socket, &output);
    // Module-level code saw the task's environment, as in a fresh interpreter.
    assert_eq!(fx.value("s", "start", "1", "mode"), "'fast'");
    let imports = std::fs::read_to_string(fx.dir.join("imports.log")).unwrap();
    assert_eq!(
        imports.lines().count(),
        2,
        "the task executed the flow file again"
    );
}

const SLOW: &str = r#"
import os
import sys
import time
from metaflow import FlowSpec, step


class SlowFlow(FlowSpec):
    @step
    def start(self):
        here = os.path.dirname(os.path.abspath(__file__))
        print("first line from the step", flush=True)
        sys.stderr.write("a line on stderr\n")
        sys.stderr.flush()
        os.system("echo from a subprocess")
        with open(os.path.join(here, "pid.tmp"), "w") as out:
            out.write("%d\n" % os.getpgid(0))
        os.rename(os.path.join(here, "pid.tmp"), os.path.join(here, "pid"))
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(here, "go")):
            if time.time() > deadline:
                raise RuntimeError("never told to go")
            time.sleep(0.01)
        print("last line from the step")
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn output_of_a_forked_task_streams_through_the_shim() {
    let fx = Fixture::new("streams", "SlowFlow", SLOW);
    let zygote = fx.zygote(false);
    let socket = Some(zygote.socket_path());
    fx.init("s", socket);
    let mut child = fx
        .task_command("s", socket, "start", "1", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // Read while the step still runs: it waits for `go`.
    assert_eq!(first, "first line from the step\n");
    wait_for_line(&fx.dir.join("pid"));
    std::fs::write(fx.dir.join("go"), "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(rest, "from a subprocess\nlast line from the step\n");
    assert!(stderr.contains("a line on stderr\n"), "{stderr}");
    assert!(!stderr.contains("unavailable"), "{stderr}");
}

#[test]
fn killing_the_task_group_records_the_signal() {
    let fx = Fixture::new("killed", "SlowFlow", SLOW);
    let zygote = fx.zygote(true);
    let socket = Some(zygote.socket_path());
    fx.init("s", socket);
    let child = fx
        .task_command("s", socket, "start", "1", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let group = pid(&wait_for_line(&fx.dir.join("pid")));
    kill_process_group(group, Signal::KILL).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let meta = fx.store("s").read_task(&fx.path("start", "1")).unwrap();
    let attempt = meta.attempts.last().unwrap();
    assert_eq!(attempt.signal, Some(9), "{meta:?}");
    assert_eq!(attempt.exit_code, None);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("killed by signal 9"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_killed_shim_takes_its_forked_task_with_it() {
    let fx = Fixture::new("shim-killed", "SlowFlow", SLOW);
    let zygote = fx.zygote(true);
    let socket = Some(zygote.socket_path());
    fx.init("s", socket);
    // As the scheduler does on `@timeout`: the shim leads a group, and the group dies.
    let mut shim = std::os::unix::process::CommandExt::process_group(
        &mut fx.task_command("s", socket, "start", "1", &[]),
        0,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let task = pid(&wait_for_line(&fx.dir.join("pid")));
    assert!(alive(task));
    kill_process_group(pid(&shim.id().to_string()), Signal::KILL).unwrap();
    shim.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(task) {
        assert!(
            Instant::now() < deadline,
            "the forked task outlived its shim"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn without_a_zygote_tasks_start_python_themselves() {
    let fx = Fixture::new("fallback", "StateFlow", STATEFUL);
    let zygote = fx.zygote(true);
    let socket = zygote.socket_path().to_path_buf();
    fx.init("s", Some(&socket));
    fx.ok("s", Some(&socket), "start", "1", &[]);
    drop(zygote);
    assert!(!socket.exists(), "the zygote's socket outlived it");
    let output = fx
        .task_command("s", Some(&socket), "start", "2", &[])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("unavailable").count(),
        1,
        "one note about the fallback:\n{stderr}"
    );
    // A process of its own, started by the shim: the module ran again.
    assert_eq!(fx.value("s", "start", "2", "seen"), "1");
    let imports = std::fs::read_to_string(fx.dir.join("imports.log")).unwrap();
    assert_eq!(imports.lines().count(), 2);
    let meta = fx.store("s").read_task(&fx.path("start", "2")).unwrap();
    assert_eq!(meta.attempts.last().unwrap().exit_code, Some(0));
}

#[test]
fn a_zygote_of_another_harness_is_refused_and_the_task_still_runs() {
    let fx = Fixture::new("other-harness", "StateFlow", STATEFUL);
    // Same embedded files, another installation directory: a different harness as far
    // as the zygote can tell.
    let other = Zygote::start(&ZygoteConfig {
        cache_dir: Some(fx.dir.join("other-cache")),
        ..ZygoteConfig::default()
    })
    .unwrap();
    fx.init("s", None);
    let output = fx
        .task_command("s", Some(other.socket_path()), "start", "1", &[])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unavailable") && stderr.contains("not in"),
        "{stderr}"
    );
    assert_ne!(fx.value("s", "start", "1", "ppid"), other.pid().to_string());
}

#[test]
fn a_failing_step_reports_its_exit_code_through_the_zygote() {
    let source = r#"
from metaflow import FlowSpec, step


class FailFlow(FlowSpec):
    @step
    def start(self):
        raise ValueError("boom")

    @step
    def end(self):
        pass
"#;
    let fx = Fixture::new("failing", "FailFlow", source);
    let zygote = fx.zygote(true);
    fx.init("s", Some(zygote.socket_path()));
    let output = fx
        .task_command("s", Some(zygote.socket_path()), "start", "1", &[])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_no_fallback(Some(zygote.socket_path()), &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ValueError: boom"), "{stderr}");
    let meta = fx.store("s").read_task(&fx.path("start", "1")).unwrap();
    let attempt = meta.attempts.last().unwrap();
    assert_eq!((attempt.exit_code, attempt.signal), (Some(1), None));
}
