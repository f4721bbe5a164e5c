//! End-to-end tests of `flowc-shim task` and `flowc-shim init`: small flows written to a
//! scratch directory, run task by task as a scheduler would, with the artifacts checked
//! by unpickling what the store holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flowc_shim::store::{
    BlobStore, FlowName, LocalStore, Manifest, MetadataStore, RunId, StepName, TaskId, TaskMeta,
    TaskPath, TaskStatus,
};
use flowc_shim::task::{read_outcome, StepStatus, TaskOutcome};

mod support;

use support::text;

const SHIM: &str = env!("CARGO_BIN_EXE_flowc-shim");

/// A flow file in its own scratch directory, with its own datastore.
struct Fixture {
    dir: PathBuf,
    flow: String,
    run: String,
    python: Option<PathBuf>,
}

fn scratch_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("task-tests")
}

/// Where the tests install the embedded Python files (shared; installs are atomic).
fn cache_dir() -> PathBuf {
    scratch_root().join("cache")
}

impl Fixture {
    fn new(name: &str, flow: &str, source: &str) -> Fixture {
        let dir = support::flow_dir(&scratch_root(), name, source);
        Fixture {
            dir,
            flow: flow.to_owned(),
            run: "1".to_owned(),
            python: None,
        }
    }

    fn flow_file(&self) -> PathBuf {
        self.dir.join("flow.py")
    }

    fn root(&self) -> PathBuf {
        self.dir.join("store")
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(SHIM);
        cmd.arg(subcommand)
            .arg("--flow-file")
            .arg(self.flow_file())
            .args(["--flow", &self.flow, "--run-id", &self.run])
            .arg("--datastore-root")
            .arg(self.root())
            .env("FLOWC_CACHE_DIR", cache_dir())
            .env_remove("FLOWC_PYTHON")
            .current_dir(&self.dir);
        if let Some(python) = &self.python {
            cmd.env("FLOWC_PYTHON", python);
        }
        cmd
    }

    fn init(&self, params_json: &str) -> Output {
        let output = self
            .command("init")
            .args(["--params-json", params_json])
            .output()
            .unwrap();
        assert!(output.status.success(), "init failed:\n{}", text(&output));
        output
    }

    /// Runs one task; `inputs` are `step/task` pairs of the same run.
    fn task(&self, step: &str, task_id: &str, inputs: &[&str], extra: &[&str]) -> Output {
        let mut cmd = self.command("task");
        cmd.args(["--step", step, "--task-id", task_id]);
        if !inputs.is_empty() {
            let paths: Vec<String> = inputs.iter().map(|i| format!("{}/{i}", self.run)).collect();
            cmd.args(["--input-paths", &paths.join(",")]);
        }
        cmd.args(extra).output().unwrap()
    }

    /// Runs a task that must succeed.
    fn ok(&self, step: &str, task_id: &str, inputs: &[&str], extra: &[&str]) -> Output {
        let output = self.task(step, task_id, inputs, extra);
        assert!(
            output.status.success(),
            "task {step}/{task_id} failed:\n{}",
            text(&output)
        );
        output
    }

    fn store(&self) -> LocalStore {
        LocalStore::open(&self.root()).unwrap()
    }

    fn path(&self, step: &str, task_id: &str) -> TaskPath {
        TaskPath::new(
            FlowName::new(&self.flow).unwrap(),
            RunId::new(&self.run).unwrap(),
            StepName::new(step).unwrap(),
            TaskId::new(task_id).unwrap(),
        )
    }

    fn manifest(&self, step: &str, task_id: &str) -> Manifest {
        self.store()
            .read_manifest(&self.path(step, task_id))
            .unwrap()
    }

    fn task_meta(&self, step: &str, task_id: &str) -> TaskMeta {
        self.store().read_task(&self.path(step, task_id)).unwrap()
    }

    fn outcome(&self, step: &str, task_id: &str) -> TaskOutcome {
        let store = self.store();
        let manifest = self.manifest(step, task_id);
        read_outcome(&store, &FlowName::new(&self.flow).unwrap(), &manifest)
            .unwrap()
            .expect("the task recorded its outcome")
    }

    fn names(&self, step: &str, task_id: &str) -> Vec<String> {
        self.manifest(step, task_id)
            .artifacts
            .keys()
            .map(|name| name.as_str().to_owned())
            .collect()
    }

    /// `repr()` of a stored artifact, unpickled by Python.
    fn value(&self, step: &str, task_id: &str, artifact: &str) -> String {
        let manifest = self.manifest(step, task_id);
        let entry = manifest
            .artifacts
            .iter()
            .find(|(name, _)| name.as_str() == artifact)
            .map(|(_, entry)| entry)
            .unwrap_or_else(|| panic!("{step}/{task_id} has no artifact `{artifact}`"));
        let bytes = self
            .store()
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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The 1-based line of the first line of `source` containing `needle`.
fn line_of(source: &str, needle: &str) -> usize {
    source
        .lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in source"))
}

const LINEAR: &str = r#"
from metaflow import FlowSpec, Parameter, step


class LinearFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @step
    def start(self):
        self.x = 1
        self.items = ["a", "b"]
        self._scratch = "not persisted"
        self.next(self.a)

    @step
    def a(self):
        assert self.x == 1, self.x
        self.items.append("c")
        self.y = self.x + self.alpha
        self.next(self.end)

    @step
    def end(self):
        assert self.y == 1.25, self.y
        assert not hasattr(self, "_scratch")


if __name__ == "__main__":
    LinearFlow()
"#;

#[test]
fn artifacts_flow_along_edges_and_private_names_are_not_persisted() {
    let f = Fixture::new("linear", "LinearFlow", LINEAR);
    f.init(r#"{"alpha": "0.25"}"#);
    assert_eq!(f.value("_parameters", "0", "alpha"), "0.25");
    f.ok("start", "1", &[], &[]);
    f.ok("a", "2", &["start/1"], &[]);
    f.ok("end", "3", &["a/2"], &[]);

    assert_eq!(f.value("a", "2", "y"), "1.25");
    // Inherited unchanged, re-stored when mutated, parameters passed down.
    assert_eq!(f.value("a", "2", "x"), "1");
    assert_eq!(f.value("a", "2", "items"), "['a', 'b', 'c']");
    assert_eq!(f.value("start", "1", "items"), "['a', 'b']");
    assert_eq!(f.value("end", "3", "alpha"), "0.25");
    let names = f.names("start", "1");
    assert!(!names.iter().any(|n| n == "_scratch"), "{names:?}");
    assert_eq!(
        f.manifest("a", "2")
            .artifacts
            .iter()
            .find(|(n, _)| n.as_str() == "x")
            .unwrap()
            .1,
        f.manifest("start", "1")
            .artifacts
            .iter()
            .find(|(n, _)| n.as_str() == "x")
            .unwrap()
            .1,
        "an unchanged artifact is passed on by hash"
    );

    let start = f.outcome("start", "1");
    assert_eq!(start.status, StepStatus::Ok);
    assert_eq!(start.transition.unwrap().targets(), ["a"]);
    assert_eq!(f.outcome("end", "3").transition, None);

    let meta = f.task_meta("a", "2");
    assert_eq!(meta.status, TaskStatus::Succeeded);
    assert_eq!(meta.parents.len(), 1);
    assert_eq!(meta.attempts.len(), 1);
    assert_eq!(meta.attempts[0].exit_code, Some(0));
    assert!(meta.attempts[0].finished_at_unix_ms >= Some(meta.attempts[0].started_at_unix_ms));
}

const BRANCH: &str = r#"
from metaflow import FlowSpec, step


class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.shared = "same"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.x = 1
        self.only_a = "from a"
        self.next(self.join)

    @step
    def b(self):
        self.x = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = inputs.a.x + inputs.b.x
        self.by_index = [inputs[0].x, inputs[1].x]
        self.count = len(inputs)
        self.merge_artifacts(inputs, exclude=["x"])
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn branch_join_reads_inputs_by_step_name_and_merges() {
    let f = Fixture::new("branch", "BranchFlow", BRANCH);
    f.init("{}");
    f.ok("start", "1", &[], &[]);
    let start = f.outcome("start", "1");
    assert_eq!(start.transition.unwrap().targets(), ["a", "b"]);
    f.ok("a", "2", &["start/1"], &[]);
    f.ok("b", "3", &["start/1"], &[]);
    f.ok("join", "4", &["a/2", "b/3"], &[]);
    assert_eq!(f.value("join", "4", "total"), "3");
    assert_eq!(f.value("join", "4", "by_index"), "[1, 2]");
    assert_eq!(f.value("join", "4", "count"), "2");
    assert_eq!(f.value("join", "4", "shared"), "'same'");
    assert_eq!(f.value("join", "4", "only_a"), "'from a'");
    assert!(!f.names("join", "4").iter().any(|n| n == "x"));
}

const MERGE_CONFLICT: &str = r#"
from metaflow import FlowSpec, step


class ConflictFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.v = 1
        self.next(self.join)

    @step
    def b(self):
        self.v = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.merge_artifacts(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn merge_artifacts_conflict_fails_naming_the_artifact() {
    let f = Fixture::new("conflict", "ConflictFlow", MERGE_CONFLICT);
    f.init("{}");
    f.ok("start", "1", &[], &[]);
    f.ok("a", "2", &["start/1"], &[]);
    f.ok("b", "3", &["start/1"], &[]);
    let output = f.task("join", "4", &["a/2", "b/3"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let err = stderr(&output);
    assert!(err.contains("UnhandledInMergeArtifactsException"), "{err}");
    assert!(
        err.contains("values differ between its inputs: [v]"),
        "{err}"
    );
    let line = line_of(MERGE_CONFLICT, "self.merge_artifacts(inputs)");
    assert!(err.contains(&format!("line {line}, in join")), "{err}");
    assert_eq!(f.task_meta("join", "4").status, TaskStatus::Failed);
}

const FOREACH: &str = r#"
from metaflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.letters = ["p", "q", "r"]
        self.next(self.body, foreach="letters")

    @step
    def body(self):
        self.out = "%s%d" % (self.input, self.index)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.outs = [inp.out for inp in inputs]
        self.seen = [inp.input for inp in inputs]
        self.index_after_join = self.index
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn foreach_records_splits_and_children_get_their_input() {
    let f = Fixture::new("foreach", "ForeachFlow", FOREACH);
    f.init("{}");
    f.ok("start", "1", &[], &[]);
    let start = f.outcome("start", "1");
    assert_eq!(start.foreach_splits(), Some(3));
    for index in 0..3 {
        let task = format!("b{index}");
        f.ok(
            "body",
            &task,
            &["start/1"],
            &["--split-index", &index.to_string()],
        );
        let stack = f.outcome("body", &task).foreach_stack;
        assert_eq!(stack.len(), 1);
        assert_eq!((stack[0].index, stack[0].num_splits), (index, 3));
        assert_eq!(stack[0].var, "letters");
    }
    assert_eq!(f.value("body", "b1", "out"), "'q1'");
    f.ok("join", "j", &["body/b0", "body/b1", "body/b2"], &[]);
    assert_eq!(f.value("join", "j", "outs"), "['p0', 'q1', 'r2']");
    assert_eq!(f.value("join", "j", "seen"), "['p', 'q', 'r']");
    assert_eq!(f.value("join", "j", "index_after_join"), "None");
    assert!(f.outcome("join", "j").foreach_stack.is_empty());

    // A child without its split index, or a join missing a split, is refused clearly.
    let output = f.task("body", "bx", &["start/1"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("needs a split index"),
        "{}",
        text(&output)
    );
    let output = f.task("join", "j2", &["body/b0", "body/b1"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("expected 3 inputs, one per split, but got 2"),
        "{}",
        text(&output)
    );
}

const NESTED: &str = r#"
from metaflow import FlowSpec, step


class NestedFlow(FlowSpec):
    @step
    def start(self):
        self.outer = ["a", "b"]
        self.next(self.mid, foreach="outer")

    @step
    def mid(self):
        self.inner = [10, 20, 30]
        self.next(self.leaf, foreach="inner")

    @step
    def leaf(self):
        self.stack = self.foreach_stack()
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.stacks = [inp.stack for inp in inputs]
        # As in Metaflow, a join inherits nothing: the outer list is gone until merged.
        self.before_merge = self.foreach_stack()
        self.merge_artifacts(inputs, include=["outer"])
        self.after_merge = self.foreach_stack()
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.n = len(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn nested_foreach_keeps_a_stack_of_frames() {
    let f = Fixture::new("nested", "NestedFlow", NESTED);
    f.init("{}");
    f.ok("start", "1", &[], &[]);
    for (i, mid) in ["m0", "m1"].iter().enumerate() {
        f.ok("mid", mid, &["start/1"], &["--split-index", &i.to_string()]);
        assert_eq!(f.outcome("mid", mid).foreach_splits(), Some(3));
    }
    for (i, mid) in ["m0", "m1"].iter().enumerate() {
        let mut leaves = Vec::new();
        for j in 0..3 {
            let leaf = format!("l{i}{j}");
            let parent = format!("mid/{mid}");
            f.ok(
                "leaf",
                &leaf,
                &[&parent],
                &["--split-index", &j.to_string()],
            );
            leaves.push(format!("leaf/{leaf}"));
        }
        let inputs: Vec<&str> = leaves.iter().map(String::as_str).collect();
        f.ok("inner_join", &format!("ij{i}"), &inputs, &[]);
    }
    assert_eq!(f.value("leaf", "l12", "stack"), "[(1, 2, 'b'), (2, 3, 30)]");
    assert_eq!(f.value("leaf", "l01", "stack"), "[(0, 2, 'a'), (1, 3, 20)]");
    assert_eq!(
        f.value("inner_join", "ij1", "before_merge"),
        "[(1, 2, None)]"
    );
    assert_eq!(f.value("inner_join", "ij1", "after_merge"), "[(1, 2, 'b')]");
    assert_eq!(
        f.value("inner_join", "ij1", "stacks"),
        "[[(1, 2, 'b'), (0, 3, 10)], [(1, 2, 'b'), (1, 3, 20)], [(1, 2, 'b'), (2, 3, 30)]]"
    );
    let stack = f.outcome("inner_join", "ij1").foreach_stack;
    assert_eq!(stack.len(), 1);
    assert_eq!((stack[0].step.as_str(), stack[0].index), ("mid", 1));
    f.ok(
        "outer_join",
        "oj",
        &["inner_join/ij0", "inner_join/ij1"],
        &[],
    );
    assert_eq!(f.value("outer_join", "oj", "n"), "2");
    assert!(f.outcome("outer_join", "oj").foreach_stack.is_empty());
}

const PARAMS: &str = r#"
from metaflow import FlowSpec, JSONType, Parameter, step


class ParamFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.1, help="learning rate")
    count = Parameter("count", type=int, required=True)
    config = Parameter("config", type=JSONType, default='{"k": 1}')
    LIMIT = 7

    @step
    def start(self):
        self.seen = (self.alpha, self.count, self.config, self.LIMIT)
        self.next(self.end)

    @step
    def end(self):
        self.alpha = 2.0
"#;

#[test]
fn parameters_are_readable_everywhere_and_read_only() {
    let f = Fixture::new("params", "ParamFlow", PARAMS);
    f.init(r#"{"count": "3"}"#);
    f.ok("start", "1", &[], &[]);
    assert_eq!(f.value("start", "1", "seen"), "(0.1, 3, {'k': 1}, 7)");
    assert_eq!(f.value("start", "1", "count"), "3");
    let output = f.task("end", "2", &["start/1"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let err = stderr(&output);
    assert!(err.contains("parameter `alpha` is read-only"), "{err}");
    let line = line_of(PARAMS, "self.alpha = 2.0");
    assert!(err.contains(&format!("line {line}, in end")), "{err}");

    // Missing required parameters and unknown names are refused by `init`.
    let g = Fixture::new("params-missing", "ParamFlow", PARAMS);
    let output = g
        .command("init")
        .args(["--params-json", "{}"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("parameter `count` is required"),
        "{}",
        text(&output)
    );
    let output = g
        .command("init")
        .args(["--params-json", r#"{"count": 1, "beta": 2}"#])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no parameter `beta`"),
        "{}",
        text(&output)
    );
}

const FAILING: &str = r#"
from metaflow import FlowSpec, step


def helper(n):
    return n / 0


class FailFlow(FlowSpec):
    @step
    def start(self):
        self.before = "kept"
        helper(1)
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn failing_step_exits_non_zero_with_the_users_traceback() {
    let f = Fixture::new("failing", "FailFlow", FAILING);
    f.init("{}");
    let output = f.task("start", "1", &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let err = stderr(&output);
    let flow_file = f.flow_file();
    let call = line_of(FAILING, "helper(1)");
    let raise = line_of(FAILING, "return n / 0");
    assert!(
        err.contains(&format!(
            "File \"{}\", line {call}, in start",
            flow_file.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("line {raise}, in helper")), "{err}");
    assert!(err.contains("ZeroDivisionError: division by zero"), "{err}");
    assert!(
        !err.contains("flowc_harness.py"),
        "harness frames leak:\n{err}"
    );
    assert!(
        !err.contains("metaflow/flowspec.py"),
        "package frames leak:\n{err}"
    );

    let meta = f.task_meta("start", "1");
    assert_eq!(meta.status, TaskStatus::Failed);
    assert_eq!(meta.attempts[0].exit_code, Some(1));
    // What the step stored before failing is kept for inspection.
    assert_eq!(f.value("start", "1", "before"), "'kept'");
    assert_eq!(f.outcome("start", "1").status, StepStatus::Failed);

    // With a retry left, the task stays running for the next attempt.
    let output = f.task("start", "2", &[], &["--max-user-code-retries", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(f.task_meta("start", "2").status, TaskStatus::Running);
}

const CATCH: &str = r#"
from metaflow import FlowSpec, catch, retry, step


class CatchFlow(FlowSpec):
    @catch(var="err", print_exception=False)
    @retry(times=1)
    @step
    def start(self):
        self.partial = 1
        raise ValueError("boom")
        self.next(self.end)

    @step
    def end(self):
        assert "ValueError" in self.err.type, self.err.type
        assert self.err.exception == "boom"
"#;

#[test]
fn catch_stores_the_exception_and_the_task_succeeds() {
    let f = Fixture::new("catch", "CatchFlow", CATCH);
    f.init("{}");
    // Before the last attempt, @catch lets the failure through so @retry can act.
    let output = f.task("start", "1", &[], &["--max-user-code-retries", "1"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let output = f.ok(
        "start",
        "1",
        &[],
        &["--retry-count", "1", "--max-user-code-retries", "1"],
    );
    assert!(!stderr(&output).contains("Traceback"), "{}", text(&output));
    let outcome = f.outcome("start", "1");
    assert_eq!(outcome.status, StepStatus::Caught);
    assert_eq!(outcome.transition, None);
    let meta = f.task_meta("start", "1");
    assert_eq!(meta.status, TaskStatus::Succeeded);
    assert_eq!(meta.attempts.len(), 2);
    assert_eq!(f.value("start", "1", "partial"), "1");
    assert!(f
        .value("start", "1", "err")
        .contains("builtins.ValueError: boom"));
    f.ok("end", "2", &["start/1"], &[]);
}

const CURRENT: &str = r#"
import os

import metaflow
from metaflow import FlowSpec, current, environment, step


class CurrentFlow(FlowSpec):
    @environment(vars={"FLOWC_TEST_VAR": "from-decorator"})
    @step
    def start(self):
        self.info = {
            "flow_name": current.flow_name,
            "run_id": current.run_id,
            "step_name": current.step_name,
            "task_id": current.task_id,
            "retry_count": current.retry_count,
            "origin_run_id": current.origin_run_id,
            "is_running_flow": current.is_running_flow,
            "tags": current.tags,
            "pathspec": current.pathspec,
            "username": current.username,
        }
        self.env = (os.environ.get("FLOWC_TEST_VAR"), os.environ.get("FROM_FLAG"))
        self.metaflow_file = metaflow.__file__
        self.level = "high"
        self.next({"high": self.high, "low": self.low}, condition="level")

    @step
    def high(self):
        self.next(self.end)

    @step
    def low(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn current_environment_and_switch_choice() {
    let f = Fixture::new("current", "CurrentFlow", CURRENT);
    f.init("{}");
    let output = f
        .command("task")
        .args(["--step", "start", "--task-id", "7", "--retry-count", "2"])
        .args([
            "--max-user-code-retries",
            "3",
            "--tag",
            "nightly",
            "--tag",
            "team:ml",
        ])
        .args(["--origin-run-id", "0", "--env", "FROM_FLAG=yes"])
        .env("METAFLOW_USER", "tester")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let info = f.value("start", "7", "info");
    for expected in [
        "'flow_name': 'CurrentFlow'",
        "'run_id': '1'",
        "'step_name': 'start'",
        "'task_id': '7'",
        "'retry_count': 2",
        "'origin_run_id': '0'",
        "'is_running_flow': True",
        "'tags': ['nightly', 'team:ml']",
        "'pathspec': 'CurrentFlow/1/start/7'",
        "'username': 'tester'",
    ] {
        assert!(info.contains(expected), "{expected} not in {info}");
    }
    assert_eq!(f.value("start", "7", "env"), "('from-decorator', 'yes')");
    let outcome = f.outcome("start", "7");
    assert_eq!(outcome.switch_choice(), Some("high"));
    let metaflow_file = f.value("start", "7", "metaflow_file");
    assert!(
        metaflow_file.contains(&cache_dir().display().to_string()),
        "{metaflow_file}"
    );
}

const SHADOW: &str = r#"
import metaflow
from metaflow import FlowSpec, step


class ShadowFlow(FlowSpec):
    @step
    def start(self):
        self.where = metaflow.__file__
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

/// The embedded package wins over an installed Metaflow. The check runs with the
/// interpreter of a Metaflow virtualenv where there is one, and with `python3` always.
#[test]
fn embedded_metaflow_shadows_an_installed_one() {
    let mut pythons = vec![None];
    let mfvenv = Path::new("/tmp/mfvenv/bin/python");
    if mfvenv.exists() {
        pythons.push(Some(mfvenv.to_path_buf()));
    } else {
        eprintln!(
            "note: {} is absent; checked with python3 only",
            mfvenv.display()
        );
    }
    for python in pythons {
        let mut f = Fixture::new("shadow", "ShadowFlow", SHADOW);
        f.python = python.clone();
        f.init("{}");
        f.ok("start", "1", &[], &[]);
        let where_ = f.value("start", "1", "where");
        assert!(
            where_.contains(&cache_dir().display().to_string()),
            "with {python:?}, metaflow resolved to {where_}"
        );
    }
}

const STRAY: &str = r#"
from metaflow import FlowSpec, step


class StrayFlow(FlowSpec):
    @step
    def start(self):
        self.unpicklable = lambda: 1
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn unpicklable_artifact_and_unknown_step_fail_clearly() {
    let f = Fixture::new("stray", "StrayFlow", STRAY);
    f.init("{}");
    let output = f.task("start", "1", &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        stderr(&output)
            .contains("artifact `unpicklable` of type builtins.function cannot be pickled"),
        "{}",
        text(&output)
    );
    let output = f.task("nope", "2", &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("flow `StrayFlow` has no step `nope`"),
        "{}",
        text(&output)
    );
    let output = f.task("end", "3", &["start/99"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("has no manifest"),
        "{}",
        text(&output)
    );
}
