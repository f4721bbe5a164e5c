//! End-to-end tests of `flowc run`, `flowc resume` and `flowc compile --target local`:
//! the built `flowc` drives the built `flowc-shim` and a real Python interpreter. Every
//! fixture flow that can run on this machine runs and its artifacts are checked;
//! failure paths (exceptions, retries, `@catch`, `@timeout`, killed tasks, corrupt
//! blobs, concurrent runs, bad parameters) each have a test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use flowc_shim::store::{
    BlobHash, BlobStore, FlowName, LocalStore, MetadataStore, RunId, StepName, TaskId, TaskMeta,
    TaskPath,
};
use serde_json::{json, Value};

#[allow(dead_code)]
mod support;

use support::{describe, flowc, flowc_command, python, text, Scratch};

/// `flowc run FILE --datastore-root ROOT` in the scratch directory.
fn run_in_store(scratch: &Scratch, file: &Path, root: &Path) -> Output {
    flowc(
        &scratch.dir,
        &[
            "run",
            file.to_str().unwrap(),
            "--datastore-root",
            root.to_str().unwrap(),
        ],
    )
}

fn assert_ok(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
}

/// The run id from the summary's last line.
fn run_id(output: &Output) -> String {
    let stderr = text(&output.stderr);
    stderr
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("run id: "))
        .unwrap_or_else(|| panic!("no run id in:\n{}", describe(output)))
        .to_owned()
}

/// Read access to a run's store.
struct Run {
    store: LocalStore,
    flow: FlowName,
    run: RunId,
}

impl Run {
    fn open(root: &Path, flow: &str, run: &str) -> Run {
        Run {
            store: LocalStore::open(root).expect("open store"),
            flow: FlowName::new(flow).expect("flow name"),
            run: RunId::new(run).expect("run id"),
        }
    }

    fn tasks(&self, step: &str) -> Vec<TaskMeta> {
        let step = StepName::new(step).expect("step name");
        let ids = match self.store.list_tasks(&self.flow, &self.run, &step) {
            Ok(ids) => ids,
            Err(_) => return Vec::new(),
        };
        ids.into_iter()
            .map(|id| {
                self.store
                    .read_task(&self.path(step.as_str(), id.as_str()))
                    .expect("task.json")
            })
            .collect()
    }

    fn path(&self, step: &str, task: &str) -> TaskPath {
        TaskPath::new(
            self.flow.clone(),
            self.run.clone(),
            StepName::new(step).expect("step"),
            TaskId::new(task).expect("task"),
        )
    }

    /// An artifact of the only task of `step`, unpickled by Python and given back as
    /// JSON (tuples become lists; anything JSON cannot hold becomes its `repr`).
    fn artifact(&self, step: &str, name: &str) -> Value {
        let tasks = self.tasks(step);
        assert_eq!(tasks.len(), 1, "step `{step}` should have one task");
        self.task_artifact(&tasks[0].path, name)
    }

    fn task_artifact(&self, task: &TaskPath, name: &str) -> Value {
        let manifest = self.store.read_manifest(task).expect("manifest");
        let entry = manifest
            .artifacts
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("task {task} has no artifact `{name}`"));
        let bytes = self.store.get(&self.flow, &entry.hash).expect("blob");
        unpickle(&bytes)
    }

    fn meta(&self) -> Value {
        let meta = self
            .store
            .read_run(&self.flow, &self.run)
            .expect("run.json");
        serde_json::to_value(meta).expect("json")
    }
}

fn unpickle(bytes: &[u8]) -> Value {
    let mut child = Command::new(python())
        .args([
            "-c",
            "import json, pickle, sys; \
             print(json.dumps(pickle.loads(sys.stdin.buffer.read()), default=repr))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write pickle");
    let out = child.wait_with_output().expect("python");
    assert!(out.status.success(), "unpickling failed");
    serde_json::from_slice(&out.stdout).expect("json from python")
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/flows/valid")
}

/// Fixture flows that cannot run here, with the reason.
const SKIPPED: &[(&str, &str)] = &[("pypi_env.py", "imports pandas, which @pypi would install")];

/// Extra arguments a fixture needs (a required parameter, a choice of flow).
fn fixture_args(name: &str) -> &'static [&'static str] {
    match name {
        // `labels` is left at its default, which its separator splits into a list.
        "parameters_all.py" => &["--dataset", "v3"],
        "multiple_flows.py" => &["--flow", "TrainFlow"],
        _ => &[],
    }
}

/// What each fixture's run must have produced: (step, artifact, value).
fn fixture_expectations(name: &str) -> Vec<(&'static str, &'static str, Value)> {
    match name {
        "branch_switch_join.py" => vec![
            ("decide", "approved", json!(true)),
            ("decide", "rows", json!(250)),
        ],
        "foreach_loop_body.py" => vec![(
            "compare",
            "rounds_by_candidate",
            json!([[1, 1], [2, 2], [3, 3]]),
        )],
        "foreach_switch_join.py" => vec![(
            "gather",
            "scores",
            json!({"s0": 1, "s1": 6, "s2": 1, "s3": 1, "s4": 6}),
        )],
        "switch_multi_step_cases.py" => vec![(
            "train",
            "model",
            json!({"rows": 900, "features": ["age", "spend"]}),
        )],
        "annotated_entry_exit.py" => vec![(
            "publish",
            "features",
            json!({"2024-05-01": 10, "2024-05-02": 10}),
        )],
        "branch_foreach_training.py" => vec![
            ("best_trial", "best", json!([1.0 - 1.0 / 6.0, 5])),
            ("end", "lift", json!(1.0 - 1.0 / 6.0 - 0.5)),
        ],
        "branch_join.py" => vec![
            ("end", "best_model", json!("boosted")),
            ("end", "best_score", json!(0.81)),
            (
                "choose",
                "labels",
                json!((0..20).map(|x| x % 2).collect::<Vec<_>>()),
            ),
        ],
        "cards.py" => vec![(
            "report",
            "kpis",
            json!({"dau": 120_000, "retention_d7": 0.41}),
        )],
        "compute_decorators.py" => vec![("end", "index_size", json!(64))],
        "conda_env.py" => vec![("end", "bam_files", json!(["S1.bam", "S2.bam"]))],
        "foreach_join.py" => vec![
            ("end", "best_lr", json!(0.1)),
            ("end", "max_epochs", json!(10)),
        ],
        "import_module_alias.py" => vec![("end", "at_risk", json!([]))],
        "import_plain.py" => vec![(
            "end",
            "counts",
            json!((0..7)
                .map(|d| (format!("day-{d}"), json!(5)))
                .collect::<serde_json::Map<_, _>>()),
        )],
        "import_renamed.py" => vec![("end", "horizon", json!(28))],
        "inheritance.py" => vec![
            ("start", "catalogue", json!("staging.recs_catalogue")),
            ("end", "environment_name", json!("staging")),
        ],
        "linear_hello.py" => vec![(
            "end",
            "total_clicks",
            json!((1..100).map(|i| i * 3).sum::<i64>()),
        )],
        "multiple_flows.py" => vec![("end", "history", json!([1.0, 0.5, 1.0 / 3.0]))],
        "nested_foreach.py" => vec![(
            "end",
            "report",
            json!({
                "baseline": {"us": 0.7 + 0.01 * 2.0, "eu": 0.7 + 0.01 * 2.0, "apac": 0.7 + 0.01 * 4.0},
                "candidate": {"us": 0.7 + 0.01 * 2.0, "eu": 0.7 + 0.01 * 2.0, "apac": 0.7 + 0.01 * 4.0},
            }),
        )],
        "out_of_order.py" => vec![("end", "window", json!(12))],
        "parameters_all.py" => vec![
            (
                "end",
                "config",
                json!({"model": "ctr-v2", "epochs": 10, "lr": 0.01 / 10.0, "gpu": false,
                       "layers": {"hidden": [256, 128], "dropout": 0.2}}),
            ),
            ("end", "dataset", json!("v3")),
            ("end", "labels", json!(["nightly", "ctr"])),
            ("end", "shuffle", json!(true)),
        ],
        "scheduled_project.py" => vec![
            ("start", "window", json!(30)),
            ("end", "precision_at_1pct", json!(0.93)),
        ],
        "switch_converge.py" => vec![("validate", "n_rows", json!(1000))],
        "switch_recursion.py" => vec![("end", "round", json!(5)), ("end", "loss", json!(0.03125))],
        "switch_three_way_in_branch.py" => {
            vec![("end", "summary", json!(["trees", {"rows": 1_000_000}]))]
        }
        "triggered_event.py" => vec![("end", "table", json!("warehouse.orders"))],
        "triggered_on_finish.py" => vec![("end", "published", json!(["fraud"]))],
        _ => Vec::new(),
    }
}

/// Task counts per step where the graph shape decides them.
fn fixture_task_counts(name: &str) -> Vec<(&'static str, usize)> {
    match name {
        "branch_foreach_training.py" => vec![("trial", 4), ("best_trial", 1), ("compare", 1)],
        "foreach_join.py" => vec![("train", 4), ("pick", 1)],
        "import_plain.py" => vec![("aggregate", 7)],
        "nested_foreach.py" => vec![("per_model", 2), ("evaluate", 6), ("join_regions", 2)],
        "switch_converge.py" => vec![("read_parquet", 1), ("parse_csv", 0)],
        "switch_recursion.py" => vec![("train", 5), ("report", 1)],
        "switch_three_way_in_branch.py" => {
            vec![
                ("fit_trees", 1),
                ("fit_linear", 0),
                ("fit_deep", 0),
                ("combine", 1),
            ]
        }
        _ => Vec::new(),
    }
}

fn flow_name(output_dir: &Path, file: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "compile",
        file.to_str().expect("utf-8"),
        "--target",
        "local",
    ];
    if let Some(pos) = extra.iter().position(|a| *a == "--flow") {
        args.extend_from_slice(&extra[pos..pos + 2]);
    }
    let out = flowc(output_dir, &args);
    assert_ok(&out);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan json");
    plan["flow"].as_str().expect("flow name").to_owned()
}

#[test]
fn every_runnable_fixture_flow_runs_with_the_right_artifacts() {
    let scratch = Scratch::new("fixtures");
    let dir = fixtures_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".py"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "fixtures: {names:?}");
    let mut ran = 0;
    for name in &names {
        if SKIPPED.iter().any(|(skip, _)| skip == name) {
            continue;
        }
        let file = dir.join(name);
        let root = scratch.store();
        let extra = fixture_args(name);
        let mut args = vec![
            "run",
            file.to_str().expect("utf-8"),
            "--datastore-root",
            root.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        // The fixture's own directory, for relative IncludeFile defaults.
        let out = flowc(&dir, &args);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", describe(&out));
        let flow = flow_name(&dir, &file, extra);
        let run = Run::open(&root, &flow, &run_id(&out));
        assert_eq!(run.meta()["status"], "succeeded", "{name}");
        for (step, artifact, expected) in fixture_expectations(name) {
            let actual = run.artifact(step, artifact);
            assert_json_close(&actual, &expected, &format!("{name}: {step}.{artifact}"));
        }
        for (step, count) in fixture_task_counts(name) {
            assert_eq!(run.tasks(step).len(), count, "{name}: tasks of `{step}`");
        }
        ran += 1;
    }
    assert_eq!(ran, names.len() - SKIPPED.len());
    // Every expectation table names a fixture that exists.
    for name in &names {
        let skipped = SKIPPED.iter().any(|(skip, _)| skip == name);
        assert!(
            skipped || !fixture_expectations(name).is_empty(),
            "fixture {name} has no expected artifacts"
        );
    }
}

/// JSON equality with floats compared to 1e-9.
fn assert_json_close(actual: &Value, expected: &Value, what: &str) {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (
                a.as_f64().unwrap_or(f64::NAN),
                e.as_f64().unwrap_or(f64::NAN),
            );
            assert!((a - e).abs() < 1e-9, "{what}: {a} != {e}");
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{what}: {actual} != {expected}");
            for (a, e) in a.iter().zip(e) {
                assert_json_close(a, e, what);
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(e), "{what}: {actual} != {expected}");
            for (k, e) in e {
                assert_json_close(&a[k], e, what);
            }
        }
        _ => assert_eq!(actual, expected, "{what}"),
    }
}

const FAILING: &str = r#"from metaflow import FlowSpec, step


class FailFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.boom)

    @step
    def boom(self):
        raise ValueError("the data is bad")
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn a_failing_step_exits_non_zero_with_the_users_traceback() {
    let scratch = Scratch::new("fail");
    let file = scratch.file("fail_flow.py", FAILING);
    let root = scratch.store();
    let out = run_in_store(&scratch, &file, &root);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("fail_flow.py\", line 12"), "{stderr}");
    assert!(stderr.contains("ValueError: the data is bad"), "{stderr}");
    assert!(stderr.contains("step `boom` failed"), "{stderr}");
    assert!(stderr.contains("/boom/2/attempt-0.stderr"), "{stderr}");
    // Output lines carry the task's pathspec.
    let id = run_id(&out);
    assert!(stderr.contains(&format!("[{id}/boom/")), "{stderr}");
    let run = Run::open(&root, "FailFlow", &id);
    assert_eq!(run.meta()["status"], "failed");
    assert!(run.tasks("end").is_empty(), "nothing runs after a failure");
}

#[test]
fn retry_succeeds_on_a_later_attempt() {
    let scratch = Scratch::new("retry");
    let counter = scratch.dir.join("attempts");
    let file = scratch.file(
        "retry_flow.py",
        &format!(
            r#"from metaflow import FlowSpec, retry, step

COUNTER = {counter:?}


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=3, minutes_between_retries=0)
    @step
    def flaky(self):
        with open(COUNTER, "a") as f:
            f.write("x")
        with open(COUNTER) as f:
            n = len(f.read())
        if n < 3:
            raise RuntimeError("attempt %d fails" % n)
        self.attempts = n
        self.next(self.end)

    @step
    def end(self):
        pass
"#
        ),
    );
    let root = scratch.store();
    let out = run_in_store(&scratch, &file, &root);
    assert_ok(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("failed (exit status 1); retry 1 of 3"),
        "{stderr}"
    );
    let run = Run::open(&root, "RetryFlow", &run_id(&out));
    assert_eq!(run.artifact("end", "attempts"), json!(3));
    let flaky = &run.tasks("flaky")[0];
    let statuses: Vec<String> = flaky
        .attempts
        .iter()
        .map(|a| {
            serde_json::to_value(a.status)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["failed", "failed", "succeeded"]);
}

#[test]
fn catch_stores_the_exception_and_the_flow_goes_on() {
    let scratch = Scratch::new("catch");
    let file = scratch.file(
        "catch_flow.py",
        r#"from metaflow import FlowSpec, catch, step


class CatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.risky)

    @catch(var="problem")
    @step
    def risky(self):
        self.partial = 1
        raise KeyError("missing column")
        self.next(self.after)

    @step
    def after(self):
        self.caught_type = self.problem.type
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
    );
    let root = scratch.store();
    let out = run_in_store(&scratch, &file, &root);
    assert_ok(&out);
    let run = Run::open(&root, "CatchFlow", &run_id(&out));
    let caught = run.artifact("end", "caught_type");
    assert!(
        caught.as_str().is_some_and(|t| t.contains("KeyError")),
        "{caught}"
    );
    assert!(text(&out.stderr).contains("exception caught by @catch"));
}

#[test]
fn timeout_kills_the_step_and_the_processes_it_started() {
    // Through the warm interpreter (the task runs in a session of its own, forked by
    // the zygote) and with Python started by the shim (the task is in the shim's group).
    for mode in [None, Some("--no-warm-interpreter")] {
        check_timeout(mode);
    }
}

fn check_timeout(mode: Option<&str>) {
    let scratch = Scratch::new(&format!("timeout{}", mode.map_or("", |_| "-cold")));
    let pid_file = scratch.dir.join("child.pid");
    let file = scratch.file(
        "timeout_flow.py",
        &format!(
            r#"import os, subprocess, time
from metaflow import FlowSpec, step, timeout

PID_FILE = {pid_file:?}


class TimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    @timeout(seconds=2)
    @step
    def slow(self):
        child = subprocess.Popen(["sleep", "300"])
        with open(PID_FILE + ".tmp", "w") as f:
            f.write("%d %d" % (os.getpid(), child.pid))
        os.rename(PID_FILE + ".tmp", PID_FILE)
        time.sleep(300)
        self.next(self.end)

    @step
    def end(self):
        pass
"#
        ),
    );
    let root = scratch.store();
    let started = Instant::now();
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--datastore-root",
        root.to_str().unwrap(),
    ];
    args.extend(mode);
    let out = flowc(&scratch.dir, &args);
    assert_eq!(out.status.code(), Some(1), "{mode:?}: {}", describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        text(&out.stderr).contains("timed out after 2s"),
        "{}",
        describe(&out)
    );
    let pids = std::fs::read_to_string(&pid_file).expect("the step started its child");
    // The step's process and the grandchild were in the task's process group: gone (or
    // zombies being reaped).
    for pid in pids.split_whitespace() {
        assert_dies(pid);
    }
    let run = Run::open(&root, "TimeoutFlow", &run_id(&out));
    let slow = &run.tasks("slow")[0];
    let status = serde_json::to_value(slow.attempts[0].status).unwrap();
    assert_eq!(status, "timed_out", "{mode:?}");
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .is_ok_and(|stat| !stat.contains(") Z "))
}

/// Waits up to 10 s for process `pid` to be gone.
fn assert_dies(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} survived");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live processes whose command line mentions `dir` (shims name the store, the zygote
/// and the tasks it forks name the unpacked code package under it).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| alive(pid))
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(&needle)
                .then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}

#[test]
fn resume_after_a_killed_task_reuses_the_tasks_that_succeeded() {
    let scratch = Scratch::new("resume");
    let log = scratch.dir.join("executed");
    let marker = scratch.dir.join("killed-once");
    let file = scratch.file(
        "resume_flow.py",
        &format!(
            r#"import os, signal
from metaflow import FlowSpec, Parameter, current, step

LOG = {log:?}
MARKER = {marker:?}


def note(name):
    with open(LOG, "a") as f:
        f.write(name + "\n")


class ResumeFlow(FlowSpec):
    alpha = Parameter("alpha", type=int, default=1)

    @step
    def start(self):
        note("start")
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        note("work")
        self.value = self.input * self.alpha
        self.next(self.gather)

    @step
    def gather(self, inputs):
        note("gather")
        if not os.path.exists(MARKER):
            open(MARKER, "w").close()
            # The whole task dies at once: shim and interpreter.
            os.killpg(os.getpgrp(), signal.SIGKILL)
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        note("end")
        self.origin = current.origin_run_id
"#
        ),
    );
    let root = scratch.store();
    let root_arg = root.to_str().unwrap();
    let out = flowc(
        &scratch.dir,
        &[
            "run",
            file.to_str().unwrap(),
            "--datastore-root",
            root_arg,
            "--alpha",
            "7",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("SIGKILL"), "{}", describe(&out));
    let first = run_id(&out);

    let out = flowc(
        &scratch.dir,
        &[
            "resume",
            file.to_str().unwrap(),
            &first,
            "--datastore-root",
            root_arg,
        ],
    );
    assert_ok(&out);
    let second = run_id(&out);
    assert_ne!(first, second);
    let run = Run::open(&root, "ResumeFlow", &second);
    assert_eq!(run.meta()["origin_run_id"], json!(first));
    // The parameter of the origin run carries over.
    assert_eq!(run.artifact("gather", "total"), json!(42));
    assert_eq!(run.artifact("end", "origin"), json!(first));
    // start and the three work tasks were cloned, not run again.
    for step in ["start", "work"] {
        for task in run.tasks(step) {
            let origin = task
                .origin
                .as_ref()
                .unwrap_or_else(|| panic!("{step} was re-run"));
            assert_eq!(origin.run_id.as_str(), first);
            assert_eq!(origin.task_id, task.path.task_id);
        }
    }
    assert_eq!(run.tasks("work").len(), 3);
    assert!(run.tasks("gather")[0].origin.is_none());
    let executed = std::fs::read_to_string(&log).unwrap();
    let count = |name: &str| executed.lines().filter(|l| *l == name).count();
    assert_eq!(
        (count("start"), count("work"), count("gather"), count("end")),
        (1, 3, 2, 1)
    );
    assert!(
        text(&out.stderr).contains("cloned from run"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_corrupted_blob_is_reported_when_read() {
    let scratch = Scratch::new("corrupt");
    let file = scratch.file(
        "corrupt_flow.py",
        r#"from metaflow import FlowSpec, step


class CorruptFlow(FlowSpec):
    @step
    def start(self):
        self.payload = "precious data " * 100
        self.next(self.use)

    @step
    def use(self):
        self.size = len(self.payload)
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
    );
    let root = scratch.store();
    let root_arg = root.to_str().unwrap();
    let out = flowc(
        &scratch.dir,
        &["run", file.to_str().unwrap(), "--datastore-root", root_arg],
    );
    assert_ok(&out);
    let first = run_id(&out);
    let run = Run::open(&root, "CorruptFlow", &first);
    let start = &run.tasks("start")[0];
    let manifest = run.store.read_manifest(&start.path).unwrap();
    let entry = manifest
        .artifacts
        .iter()
        .find(|(n, _)| n.as_str() == "payload")
        .map(|(_, e)| e.clone())
        .unwrap();
    let blob = run.store.layout().blob_path(&run.flow, &entry.hash);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let out = flowc(
        &scratch.dir,
        &[
            "resume",
            file.to_str().unwrap(),
            &first,
            "--step",
            "use",
            "--datastore-root",
            root_arg,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert!(stderr.contains("step `use` failed"), "{stderr}");
}

#[test]
fn two_concurrent_runs_on_one_store_do_not_interfere() {
    let scratch = Scratch::new("concurrent");
    let file = scratch.file(
        "wide_flow.py",
        r#"from metaflow import FlowSpec, step


class WideFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(4))
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
    );
    let root = scratch.store();
    let args = [
        "run",
        file.to_str().unwrap(),
        "--datastore-root",
        root.to_str().unwrap(),
    ];
    let children: Vec<_> = (0..2)
        .map(|_| {
            flowc_command(&scratch.dir, &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start flowc")
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("flowc"))
        .collect();
    let ids: Vec<String> = outputs
        .iter()
        .map(|out| {
            assert_ok(out);
            run_id(out)
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        let run = Run::open(&root, "WideFlow", id);
        assert_eq!(run.artifact("join", "total"), json!(14));
        assert_eq!(run.meta()["status"], "succeeded");
    }
}

#[test]
fn a_foreach_wider_than_max_num_splits_fails_clearly() {
    let scratch = Scratch::new("splits");
    let file = scratch.file(
        "fan_flow.py",
        r#"from metaflow import FlowSpec, step


class FanFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(5))
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
    );
    let root = scratch.store();
    let out = flowc(
        &scratch.dir,
        &[
            "run",
            file.to_str().unwrap(),
            "--datastore-root",
            root.to_str().unwrap(),
            "--max-num-splits",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("made 5 splits, more than --max-num-splits 3"),
        "{stderr}"
    );
    let run = Run::open(&root, "FanFlow", &run_id(&out));
    assert!(run.tasks("each").is_empty());
}

const PARAMS: &str = r#"from metaflow import FlowSpec, Parameter, step


class ParamFlow(FlowSpec):
    alpha = Parameter("alpha", type=float, default=0.5, help="Learning rate")
    n_rounds = Parameter("n-rounds", type=int, default=3)
    dataset = Parameter("dataset", required=True, help="Dataset version")

    @step
    def start(self):
        self.seen = [self.alpha, self.n_rounds, self.dataset]
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn parameters_are_passed_as_in_metaflow() {
    let scratch = Scratch::new("params");
    let file = scratch.file("param_flow.py", PARAMS);
    let root = scratch.store();
    let id_file = scratch.dir.join("run-id");
    let out = flowc(
        &scratch.dir,
        &[
            "run",
            file.to_str().unwrap(),
            "--alpha",
            "0.3",
            "--n-rounds=8",
            "--dataset",
            "v2",
            "--datastore-root",
            root.to_str().unwrap(),
            "--run-id-file",
            id_file.to_str().unwrap(),
            "--max-workers",
            "1",
        ],
    );
    assert_ok(&out);
    let id = std::fs::read_to_string(&id_file).unwrap();
    assert_eq!(id, run_id(&out));
    let run = Run::open(&root, "ParamFlow", &id);
    assert_eq!(run.artifact("end", "seen"), json!([0.3, 8, "v2"]));
    assert_eq!(
        run.meta()["parameters"],
        json!({"alpha": 0.3, "n-rounds": 8, "dataset": "v2"})
    );
}

#[test]
fn bad_parameters_are_usage_errors() {
    let scratch = Scratch::new("badparams");
    let file = scratch.file("param_flow.py", PARAMS);
    let path = file.to_str().unwrap();
    let out = flowc(
        &scratch.dir,
        &["run", path, "--alpah", "0.3", "--dataset", "v"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("did you mean `--alpha`?"),
        "{}",
        describe(&out)
    );
    let out = flowc(&scratch.dir, &["run", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`--dataset` is required"),
        "{}",
        describe(&out)
    );
    let out = flowc(
        &scratch.dir,
        &["run", path, "--dataset", "v", "--n-rounds", "many"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("takes an int, not `many`"),
        "{}",
        describe(&out)
    );
    // Nothing ran: no store was made.
    assert!(!scratch.dir.join(".flowc").exists());
}

#[test]
fn help_lists_the_flows_parameters() {
    let scratch = Scratch::new("help");
    let file = scratch.file("param_flow.py", PARAMS);
    let out = flowc(&scratch.dir, &["run", file.to_str().unwrap(), "--help"]);
    assert_ok(&out);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("--max-workers"), "{stdout}");
    assert!(stdout.contains("Parameters of ParamFlow:"), "{stdout}");
    assert!(stdout.contains("--alpha FLOAT"), "{stdout}");
    assert!(stdout.contains("Learning rate [default: 0.5]"), "{stdout}");
    assert!(stdout.contains("--n-rounds INT"), "{stdout}");
    assert!(stdout.contains("Dataset version [required]"), "{stdout}");
}

#[test]
fn a_flow_with_errors_is_not_run() {
    let scratch = Scratch::new("invalid");
    let file = scratch.file(
        "bad_flow.py",
        r#"from metaflow import FlowSpec, step


class BadFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.missing)

    @step
    def end(self):
        pass
"#,
    );
    let out = flowc(&scratch.dir, &["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("missing"), "{}", describe(&out));
    assert!(!scratch.dir.join(".flowc").exists());
}

#[test]
fn the_default_store_is_dot_flowc_unless_the_environment_says_otherwise() {
    let scratch = Scratch::new("root");
    let file = scratch.file("param_flow.py", PARAMS);
    let path = file.to_str().unwrap();
    let out = flowc(&scratch.dir, &["run", path, "--dataset", "v"]);
    assert_ok(&out);
    assert!(scratch.dir.join(".flowc").is_dir());
    let env_root = scratch.dir.join("from-env");
    let out = flowc_command(&scratch.dir, &["run", path, "--dataset", "v"])
        .env("FLOWC_DATASTORE_ROOT", &env_root)
        .output()
        .unwrap();
    assert_ok(&out);
    let run = Run::open(&env_root, "ParamFlow", &run_id(&out));
    assert_eq!(run.meta()["status"], "succeeded");
}

#[test]
fn compile_target_local_writes_the_plan() {
    let scratch = Scratch::new("compile");
    let file = fixtures_dir().join("foreach_join.py");
    let out = flowc(
        &scratch.dir,
        &["compile", file.to_str().unwrap(), "--target", "local"],
    );
    assert_ok(&out);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(plan["flow"], "SweepFlow");
    let steps = plan["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["start", "train", "pick", "end"]);
    let train = &steps[1];
    assert_eq!(train["retry"], json!({"times": 2, "minutes_between": 1}));
    assert_eq!(train["catch"]["var"], "train_error");
    assert_eq!(steps[2]["kind"], "join");
    assert_eq!(steps[2]["joins"], "start");
    assert_eq!(
        steps[0]["next"],
        json!({"kind": "foreach", "to": "train", "over": "learning_rates"})
    );

    let dir = scratch.dir.join("out");
    let out = flowc(
        &scratch.dir,
        &[
            "compile",
            file.to_str().unwrap(),
            "--target",
            "local",
            "-o",
            dir.to_str().unwrap(),
        ],
    );
    assert_ok(&out);
    let written = std::fs::read_to_string(dir.join("SweepFlow.local.json")).unwrap();
    let again: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(again, plan);

    let out = flowc(
        &scratch.dir,
        &["compile", file.to_str().unwrap(), "--target", "argo"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_wide_join_gets_its_inputs_from_a_file_in_split_order() {
    let scratch = Scratch::new("widejoin");
    let file = scratch.file(
        "wide_join_flow.py",
        r#"from metaflow import FlowSpec, step


class WideJoinFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(65))
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.value = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.order = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
    );
    let root = scratch.store();
    let out = run_in_store(&scratch, &file, &root);
    assert_ok(&out);
    let run = Run::open(&root, "WideJoinFlow", &run_id(&out));
    assert_eq!(
        run.artifact("join", "order"),
        json!((0..65).collect::<Vec<_>>())
    );
    let join = &run.tasks("join")[0];
    assert_eq!(join.parents.len(), 65);
    let listed = run
        .store
        .layout()
        .task_dir(&join.path)
        .join("input-paths.0.txt");
    assert_eq!(std::fs::read_to_string(listed).unwrap().lines().count(), 65);
}

#[test]
fn tasks_run_from_the_code_package_the_run_records() {
    let scratch = Scratch::new("package");
    scratch.file("helper.py", "VALUE = 41\n");
    let flow = |broken: bool| {
        format!(
            r#"import helper
from metaflow import FlowSpec, step

BROKEN = {}


class PackagedFlow(FlowSpec):
    @step
    def start(self):
        self.where = __file__
        self.value = helper.VALUE + 1
        self.next(self.check)

    @step
    def check(self):
        if BROKEN:
            raise RuntimeError("a bug")
        self.where = __file__
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
            if broken { "True" } else { "False" }
        )
    };
    let file = scratch.file("packaged_flow.py", &flow(true));
    let root = scratch.store();
    let root_arg = root.to_str().unwrap();
    let out = flowc(
        &scratch.dir,
        &["run", file.to_str().unwrap(), "--datastore-root", root_arg],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let first = run_id(&out);
    let run = Run::open(&root, "PackagedFlow", &first);
    let package = run.meta()["code_package"].clone();
    assert_eq!(package["entry"], "packaged_flow.py", "{package}");
    let hash = package["hash"].as_str().expect("hash").to_owned();
    // The package is a blob of the flow: a tar holding the flow file and its helper.
    let blob = run
        .store
        .get(&run.flow, &BlobHash::parse(&hash).expect("blob hash"))
        .expect("the package is stored");
    let listing = String::from_utf8_lossy(&blob);
    assert!(listing.contains("packaged_flow.py") && listing.contains("helper.py"));
    // The task ran the packaged copy, which imported the packaged helper.
    let unpacked = root
        .join(".cache/code")
        .join(&hash)
        .join("packaged_flow.py");
    assert_eq!(
        run.artifact("start", "where"),
        json!(unpacked.to_str().unwrap())
    );
    assert_eq!(run.artifact("start", "value"), json!(42));

    // Fixed: the resume runs the current code, from a package of its own.
    std::fs::write(&file, flow(false)).unwrap();
    let out = flowc(
        &scratch.dir,
        &[
            "resume",
            file.to_str().unwrap(),
            &first,
            "--datastore-root",
            root_arg,
        ],
    );
    assert_ok(&out);
    let resumed = Run::open(&root, "PackagedFlow", &run_id(&out));
    let new_hash = resumed.meta()["code_package"]["hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    assert_ne!(new_hash, hash);
    let where_now = resumed.artifact("check", "where");
    assert!(
        where_now.as_str().is_some_and(|w| w.contains(&new_hash)),
        "{where_now}"
    );
    // `start` was cloned from the first run, with what it saw then.
    assert_eq!(
        resumed.artifact("start", "where"),
        json!(unpacked.to_str().unwrap())
    );
}

const WARM: &str = r#"import os, sys
from metaflow import FlowSpec, environment, step

LOADED_IN = os.getpid()
AT_IMPORT = os.environ.get("FLOWC_TEST_SETTING")


class WarmFlow(FlowSpec):
    @step
    def start(self):
        self.seen = (os.getpid(), LOADED_IN, sys.executable)
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.seen = (os.getpid(), LOADED_IN, sys.executable)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen_all = [i.seen for i in inputs]
        self.next(self.configured)

    @environment(vars={"FLOWC_TEST_SETTING": "on"})
    @step
    def configured(self):
        self.setting = (AT_IMPORT, os.environ.get("FLOWC_TEST_SETTING"))
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn python_is_resolved_once_and_tasks_fork_from_the_warm_interpreter() {
    let scratch = Scratch::new("warm");
    let file = scratch.file("warm_flow.py", WARM);
    let starts = scratch.dir.join("wrapper-starts");
    // A wrapper like a pyenv shim: counts its starts, then runs the real interpreter.
    let wrapper = scratch.file(
        "python-wrapper",
        &format!(
            "#!/bin/sh\necho started >> '{}'\nexec '{}' \"$@\"\n",
            starts.display(),
            python()
        ),
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let root = scratch.store();
    let run_with = |extra: &[&str]| {
        let mut args = vec![
            "run",
            file.to_str().unwrap(),
            "--datastore-root",
            root.to_str().unwrap(),
            "--python",
            wrapper.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = flowc(&scratch.dir, &args);
        assert_ok(&out);
        assert!(
            !text(&out.stderr).contains("unavailable"),
            "{}",
            describe(&out)
        );
        Run::open(&root, "WarmFlow", &run_id(&out))
    };
    let seen = |run: &Run| -> Vec<Value> {
        let mut all = vec![run.artifact("start", "seen")];
        all.extend(
            run.artifact("join", "seen_all")
                .as_array()
                .expect("list")
                .iter()
                .cloned(),
        );
        all
    };

    let warm = run_with(&[]);
    let starts_of = || std::fs::read_to_string(&starts).unwrap().lines().count();
    assert_eq!(starts_of(), 1, "the wrapper runs once per run");
    let tasks = seen(&warm);
    assert_eq!(tasks.len(), 4);
    let zygote = tasks[0][1].clone();
    for task in &tasks {
        // Module-level code ran once, in the zygote; each task is a process of its own.
        assert_eq!(task[1], zygote, "{tasks:?}");
        assert_ne!(task[0], zygote, "{tasks:?}");
        assert_eq!(task[2], json!(python()), "{tasks:?}");
    }
    // `@environment` reaches the step and, the module being loaded anew for it, the
    // module-level code too.
    assert_eq!(warm.artifact("configured", "setting"), json!(["on", "on"]));

    let cold = run_with(&["--no-warm-interpreter"]);
    assert_eq!(starts_of(), 2);
    for task in seen(&cold) {
        // Every task's interpreter ran the module itself.
        assert_eq!(task[0], task[1], "{task}");
        assert_eq!(task[2], json!(python()));
    }
    assert_eq!(cold.artifact("configured", "setting"), json!(["on", "on"]));
}

#[test]
fn ctrl_c_kills_the_tasks_records_the_run_as_killed_and_resume_finishes_it() {
    let scratch = Scratch::new("sigint");
    let slow = scratch.file("slow", "");
    let pids = scratch.dir.join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let file = scratch.file(
        "nap_flow.py",
        &format!(
            r#"import os, subprocess, time
from metaflow import FlowSpec, step

SLOW = {slow:?}
PIDS = {pids:?}


class NapFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.nap, foreach="items")

    @step
    def nap(self):
        if os.path.exists(SLOW):
            child = subprocess.Popen(["sleep", "300"])
            path = os.path.join(PIDS, str(self.index))
            with open(path + ".tmp", "w") as f:
                f.write("%d %d" % (os.getpid(), child.pid))
            os.rename(path + ".tmp", path)
            time.sleep(300)
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass
"#
        ),
    );
    let root = scratch.store();
    let child = flowc_command(
        &scratch.dir,
        &[
            "run",
            file.to_str().unwrap(),
            "--datastore-root",
            root.to_str().unwrap(),
            "--max-workers",
            "2",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start flowc");
    let deadline = Instant::now() + Duration::from_secs(120);
    let pid_files = [pids.join("0"), pids.join("1")];
    while !pid_files.iter().all(|f| f.exists()) {
        assert!(Instant::now() < deadline, "the naps never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("flowc");
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    let id = run_id(&out);
    let hint = stderr
        .lines()
        .find_map(|line| line.split_once(" (2 tasks killed); go on with: flowc "))
        .map(|(head, command)| {
            assert_eq!(head, format!("run {id} interrupted"));
            command.to_owned()
        })
        .unwrap_or_else(|| panic!("no resume command in:\n{stderr}"));

    let run = Run::open(&root, "NapFlow", &id);
    assert_eq!(run.meta()["status"], "killed");
    let naps = run.tasks("nap");
    assert_eq!(naps.len(), 2);
    for nap in &naps {
        assert_eq!(serde_json::to_value(nap.status).unwrap(), "failed");
        assert_eq!(
            serde_json::to_value(nap.attempts[0].status).unwrap(),
            "killed"
        );
    }
    // Nothing of the run is left: not the steps, the processes they started, the
    // shims or the warm interpreter.
    for pid_file in &pid_files {
        for pid in std::fs::read_to_string(pid_file)
            .unwrap()
            .split_whitespace()
        {
            assert_dies(pid);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_mentioning(&scratch.dir);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The printed command goes on from where the run stopped.
    std::fs::remove_file(&slow).unwrap();
    let args: Vec<&str> = hint.split_whitespace().collect();
    assert_eq!(args[..3], ["resume", file.to_str().unwrap(), id.as_str()]);
    let out = flowc(&scratch.dir, &args);
    assert_ok(&out);
    let resumed = Run::open(&root, "NapFlow", &run_id(&out));
    assert_eq!(resumed.meta()["status"], "succeeded");
    assert_eq!(resumed.artifact("join", "total"), json!(30));
    assert!(
        resumed.tasks("start")[0].origin.is_some(),
        "start is reused"
    );
}
