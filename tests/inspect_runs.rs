//! End-to-end tests of `flowc runs`, `flowc show`, `flowc logs` and `flowc artifact
//! get`: real `flowc run`s of a fixture flow and of a flow written here fill a
//! datastore, and the built `flowc` reads it back in text and JSON. Error paths (unknown
//! names, corrupt or truncated metadata, a missing blob, a directory that is not a
//! datastore) each have a test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use flowc_shim::store::{BlobStore, FlowName, LocalStore, MetadataStore, RunId, StepName};
use serde_json::{json, Value};

#[allow(dead_code)]
mod support;

use support::{describe, flowc, flowc_command, python, text, Scratch};

/// A flow with plain values, a class instance, bytes, a foreach and output on both
/// streams.
const INSPECT_FLOW: &str = r#"
import sys

from metaflow import FlowSpec, Parameter, step


class Point:
    def __init__(self, x):
        self.x = x


class InspectFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @step
    def start(self):
        self.numbers = [1, 2, 3]
        self.config = {"lr": 0.1, "layers": (2, 3), "tags": {"b", "a"}, 7: None}
        self.point = Point(3)
        self.blob = b"\x00\x01"
        self.items = ["a", "b"]
        print("hello from start")
        print("a warning", file=sys.stderr)
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.letter = self.input.upper()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.letters = sorted(i.letter for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("done", self.alpha)


if __name__ == "__main__":
    InspectFlow()
"#;

fn assert_status(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", describe(output)))
}

/// A datastore with three runs, made once for every read-only test: `InspectFlow/1`
/// (alpha 0.5), the fixture `ModelZooFlow/1`, then `InspectFlow/2` (alpha 0.7).
struct Shared {
    root: PathBuf,
    dir: PathBuf,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect_runs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create shared directory");
        let flow = dir.join("inspect_flow.py");
        std::fs::write(&flow, INSPECT_FLOW).expect("write flow");
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/flows/valid/branch_join.py");
        let root = dir.join("store");
        let root_arg = root.to_str().expect("utf-8 path");
        for (file, extra) in [
            (flow.as_path(), &[][..]),
            (fixture.as_path(), &[][..]),
            (flow.as_path(), &["--alpha", "0.7"][..]),
        ] {
            let mut args = vec!["run", file.to_str().expect("utf-8 path")];
            args.extend(["--datastore-root", root_arg]);
            args.extend(extra);
            let out = flowc(&dir, &args);
            assert_status(&out, 0);
            // Creation times order `latest`; keep them apart.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Shared { root, dir }
    })
}

/// `flowc ARGS --datastore-root <shared store>`.
fn inspect(args: &[&str]) -> Output {
    let shared = shared();
    let mut all = args.to_vec();
    all.extend([
        "--datastore-root",
        shared.root.to_str().expect("utf-8 path"),
    ]);
    flowc(&shared.dir, &all)
}

/// A private copy of the shared store, for tests that damage it.
fn copy_of_shared(scratch: &Scratch) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            let dest = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy(&entry.path(), &dest);
            } else {
                std::fs::copy(entry.path(), &dest).expect("copy");
            }
        }
    }
    let root = scratch.dir.join("store");
    copy(&shared().root, &root);
    root
}

fn inspect_at(root: &Path, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--datastore-root", root.to_str().expect("utf-8 path")]);
    flowc(root.parent().expect("parent"), &all)
}

/// The pathspec of the only task of a step, from `flowc show STEP --format json`.
fn only_task(step: &str) -> String {
    let value = json_of(&inspect(&["show", step, "--format", "json"]));
    let tasks = value["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1, "{value}");
    tasks[0]["pathspec"].as_str().expect("pathspec").to_owned()
}

#[test]
fn runs_lists_every_flow_newest_first() {
    let out = inspect(&["runs"]);
    assert_status(&out, 0);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("RUN "), "{stdout}");
    for header in ["STATUS", "STARTED (UTC)", "DURATION", "STEPS"] {
        assert!(lines[0].contains(header), "{stdout}");
    }
    let ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["InspectFlow/2", "ModelZooFlow/1", "InspectFlow/1"]);
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(first[1], "succeeded");
    assert_eq!(
        first.last().copied(),
        Some("4"),
        "InspectFlow has four steps"
    );

    let limited = inspect(&["runs", "--limit", "1"]);
    assert_status(&limited, 0);
    assert_eq!(text(&limited.stdout).lines().count(), 2);
    assert!(text(&limited.stderr).contains("showing the newest 1 of 3 runs"));
}

#[test]
fn runs_json_has_the_documented_fields() {
    let out = inspect(&["runs", "InspectFlow", "--format", "json"]);
    assert_status(&out, 0);
    let value = json_of(&out);
    let runs = value["runs"].as_array().expect("runs array");
    assert_eq!(runs.len(), 2);
    assert_eq!(value["unreadable"], json!([]));
    let newest = &runs[0];
    assert_eq!(newest["pathspec"], "InspectFlow/2");
    assert_eq!(newest["flow"], "InspectFlow");
    assert_eq!(newest["run_id"], "2");
    assert_eq!(newest["status"], "succeeded");
    assert_eq!(newest["steps"], json!(["start", "fan", "join", "end"]));
    assert_eq!(newest["origin_run_id"], Value::Null);
    let started = newest["started_at"].as_str().expect("started_at");
    let finished = newest["finished_at"].as_str().expect("finished_at");
    for stamp in [started, finished] {
        // 2026-11-26T08:34:41.127Z
        assert_eq!(stamp.len(), 24, "{stamp}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
    }
    assert!(started <= finished);
    assert!(newest["duration_ms"].as_u64().is_some());
}

#[test]
fn show_a_run_with_parameters_and_step_counts() {
    let out = inspect(&["show", "InspectFlow/latest"]);
    assert_status(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("run InspectFlow/2\n"), "{stdout}");
    assert!(stdout.contains("  status    succeeded\n"), "{stdout}");
    assert!(stdout.contains("  tasks     5 (0 failed)\n"), "{stdout}");
    assert!(stdout.contains("parameters\n  alpha  0.7\n"), "{stdout}");
    let fan = stdout
        .lines()
        .find(|l| l.starts_with("fan "))
        .unwrap_or_else(|| panic!("no fan row:\n{stdout}"));
    let cells: Vec<&str> = fan.split_whitespace().collect();
    assert_eq!(&cells[..4], ["fan", "succeeded", "2", "0"], "{fan}");
    assert!(!stdout.contains("_parameters"), "{stdout}");

    let value = json_of(&inspect(&["show", "InspectFlow/2", "--format", "json"]));
    assert_eq!(value["kind"], "run");
    assert_eq!(value["pathspec"], "InspectFlow/2");
    assert_eq!(value["parameters"], json!({"alpha": 0.7}));
    assert_eq!(
        (
            value["task_count"].as_u64(),
            value["failed_task_count"].as_u64()
        ),
        (Some(5), Some(0))
    );
    let steps: Vec<(&str, u64)> = value["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default(),
                s["tasks"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(steps, [("start", 1), ("fan", 2), ("join", 1), ("end", 1)]);
}

#[test]
fn show_a_step_lists_its_tasks() {
    let out = inspect(&["show", "InspectFlow/1/fan"]);
    assert_status(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("step InspectFlow/1/fan\n"), "{stdout}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("InspectFlow/1/fan/"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");

    let value = json_of(&inspect(&["show", "InspectFlow/1/fan", "--format", "json"]));
    assert_eq!(value["kind"], "step");
    assert_eq!(value["status"], "succeeded");
    let tasks = value["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 2);
    assert!(tasks
        .iter()
        .all(|t| t["status"] == "succeeded" && t["attempts"] == 1));
}

#[test]
fn show_a_task_with_attempts_and_artifact_previews() {
    let start = only_task("InspectFlow/1/start");
    let out = inspect(&["show", &start]);
    assert_status(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(&format!("task {start}\n")), "{stdout}");
    assert!(stdout.contains("exit 0"), "{stdout}");
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("numbers")[1], "builtins.list");
    assert_eq!(row("numbers").last().map(String::as_str), Some("[1,2,3]"));
    // Not JSON-able: type and size, no value.
    let point = row("point");
    assert!(point[1].ends_with(".Point"), "{point:?}");
    assert_eq!(point.len(), 4, "type, size and unit only: {point:?}");
    assert!(!stdout.contains("_foreach_stack"), "{stdout}");

    let value = json_of(&inspect(&["show", &start, "--format", "json"]));
    assert_eq!(value["kind"], "task");
    assert_eq!(value["status"], "succeeded");
    assert_eq!(value["step"], "start");
    let attempts = value["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["exit_code"], 0);
    assert_eq!(attempts[0]["status"], "succeeded");
    let artifacts = value["artifacts"].as_array().expect("artifacts");
    let numbers = artifacts
        .iter()
        .find(|a| a["name"] == "numbers")
        .expect("numbers");
    assert_eq!(numbers["type"], "builtins.list");
    assert_eq!(numbers["encoding"], "pickle-v4");
    assert_eq!(numbers["preview"], "[1,2,3]");
    assert_eq!(numbers["hash"].as_str().map(str::len), Some(64));
    let point = artifacts
        .iter()
        .find(|a| a["name"] == "point")
        .expect("point");
    assert_eq!(point["preview"], Value::Null);
    // Internal artifacts are listed in JSON.
    assert!(artifacts.iter().any(|a| a["name"] == "_foreach_stack"));

    let join = only_task("InspectFlow/1/join");
    let join = json_of(&inspect(&["show", &join, "--format", "json"]));
    assert_eq!(join["parents"].as_array().map(Vec::len), Some(2));
}

#[test]
fn show_a_flow_lists_its_runs() {
    let out = inspect(&["show", "ModelZooFlow"]);
    assert_status(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("flow ModelZooFlow: 1 run\n"), "{stdout}");
    assert!(stdout.contains("ModelZooFlow/1  succeeded"), "{stdout}");
}

#[test]
fn artifact_get_prints_plain_values_as_json() {
    let out = inspect(&["artifact", "get", "InspectFlow/1/start", "config"]);
    assert_status(&out, 0);
    assert_eq!(
        json_of(&out),
        json!({"lr": 0.1, "layers": [2, 3], "tags": ["a", "b"], "7": null})
    );
    let out = inspect(&[
        "artifact",
        "get",
        "InspectFlow/latest/join",
        "letters",
        "--format",
        "json",
    ]);
    assert_status(&out, 0);
    let value = json_of(&out);
    assert_eq!(value["value"], json!(["A", "B"]));
    assert_eq!(value["type"], "builtins.list");
    assert_eq!(value["encoding"], "pickle-v4");
    assert!(value["pathspec"]
        .as_str()
        .unwrap_or_default()
        .starts_with("InspectFlow/2/join/"));
}

#[test]
fn artifact_get_refuses_what_json_cannot_hold_and_points_at_raw() {
    for (name, reason) in [("point", ".Point`"), ("blob", "bytes")] {
        let out = inspect(&["artifact", "get", "InspectFlow/1/start", name]);
        assert_status(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("is not JSON-able"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(stderr.contains("--raw"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = inspect(&[
        "artifact",
        "get",
        "InspectFlow/1/start",
        "point",
        "--format",
        "json",
    ]);
    assert_status(&out, 2);
    let value = json_of(&out);
    assert_eq!(value["value"], Value::Null);
    assert!(value["not_json_able"]
        .as_str()
        .unwrap_or_default()
        .contains("Point"));
}

#[test]
fn artifact_get_raw_writes_the_stored_pickle() {
    let shared = shared();
    let out = inspect(&["artifact", "get", "InspectFlow/1/start", "point", "--raw"]);
    assert_status(&out, 0);
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    // The bytes are exactly the stored blob, uncompressed.
    let store = LocalStore::open(&shared.root).expect("store");
    let flow = FlowName::new("InspectFlow").expect("flow");
    let run = RunId::new("1").expect("run");
    let step = StepName::new("start").expect("step");
    let task_id = store
        .list_tasks(&flow, &run, &step)
        .expect("tasks")
        .remove(0);
    let task = flowc_shim::store::TaskPath::new(flow.clone(), run, step, task_id);
    let manifest = store.read_manifest(&task).expect("manifest");
    let entry = manifest
        .artifacts
        .iter()
        .find(|(n, _)| n.as_str() == "point")
        .map(|(_, e)| e.clone())
        .expect("point");
    assert_eq!(out.stdout, store.get(&flow, &entry.hash).expect("blob"));
    assert_eq!(
        out.stdout.first(),
        Some(&0x80),
        "a pickle starts with PROTO"
    );

    // Python reads the raw bytes of a plain value back to the value.
    let out = inspect(&["artifact", "get", "InspectFlow/1/start", "numbers", "--raw"]);
    assert_status(&out, 0);
    let mut child = Command::new(python())
        .args([
            "-c",
            "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&out.stdout)
        .expect("write");
    let printed = child.wait_with_output().expect("python");
    assert_eq!(text(&printed.stdout).trim(), "[1, 2, 3]");
}

#[test]
fn logs_print_each_stream_and_follow_ends_on_a_finished_task() {
    let out = inspect(&["logs", "InspectFlow/1/start"]);
    assert_status(&out, 0);
    assert_eq!(text(&out.stdout), "hello from start\n");
    let out = inspect(&["logs", "InspectFlow/1/start", "--stderr"]);
    assert_status(&out, 0);
    assert!(
        text(&out.stdout).contains("a warning\n"),
        "{}",
        describe(&out)
    );
    let out = inspect(&["logs", "InspectFlow/latest/end", "--attempt", "0"]);
    assert_status(&out, 0);
    assert_eq!(text(&out.stdout), "done 0.7\n");

    let started = std::time::Instant::now();
    let out = inspect(&["logs", "InspectFlow/1/end", "--follow"]);
    assert_status(&out, 0);
    assert_eq!(text(&out.stdout), "done 0.5\n");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "follow did not stop"
    );

    let value = json_of(&inspect(&["logs", "InspectFlow/1/end", "--format", "json"]));
    assert_eq!(
        value,
        json!({"pathspec": value["pathspec"], "attempt": 0, "stream": "stdout", "text": "done 0.5\n"})
    );

    let out = inspect(&["logs", "InspectFlow/1/end", "--attempt", "4"]);
    assert_status(&out, 2);
    assert!(text(&out.stderr).contains("has no attempt 4; its attempts are: 0"));
}

#[test]
fn unknown_names_exit_2_and_say_what_exists() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["runs", "InspectFlw"],
            "has no flow `InspectFlw`; did you mean `InspectFlow`?",
        ),
        (
            &["show", "InspectFlow/9"],
            "flow InspectFlow has no run `9`; runs are: 2, 1",
        ),
        (
            &["show", "InspectFlow/1/fann"],
            "did you mean `fan`? Steps are:",
        ),
        (
            &["logs", "InspectFlow/1/fan"],
            "step InspectFlow/1/fan has 2 tasks; name one of them:",
        ),
        (
            &["artifact", "get", "InspectFlow/1/start", "numbrs"],
            "did you mean `numbers`?",
        ),
        (
            &["show", "InspectFlow/1/start/999"],
            "has no task `999`; tasks are:",
        ),
        (&["show", "InspectFlow/1/../x"], "invalid path"),
    ];
    for (args, expected) in cases {
        let out = inspect(args);
        assert_status(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_corrupt_run_json_is_named_and_the_other_runs_still_list() {
    let scratch = Scratch::new("corrupt-run");
    let root = copy_of_shared(&scratch);
    let broken = root.join("InspectFlow/runs/2/run.json");
    std::fs::write(&broken, "{\"flow\": \"InspectFlow\", \"run_id").expect("corrupt");

    let out = inspect_at(&root, &["runs"]);
    assert_status(&out, 0);
    assert_eq!(text(&out.stdout).lines().count(), 3, "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&broken.display().to_string()), "{stderr}");
    let value = json_of(&inspect_at(&root, &["runs", "--format", "json"]));
    assert_eq!(value["unreadable"].as_array().map(Vec::len), Some(1));

    let out = inspect_at(&root, &["show", "InspectFlow/2"]);
    assert_status(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("metadata file `{}` is invalid", broken.display())),
        "{stderr}"
    );
}

#[test]
fn a_truncated_task_json_is_named() {
    let scratch = Scratch::new("truncated-task");
    let root = copy_of_shared(&scratch);
    let step_dir = root.join("InspectFlow/runs/1/start");
    let task_dir = std::fs::read_dir(&step_dir)
        .expect("step dir")
        .filter_map(Result::ok)
        .find(|e| e.path().is_dir())
        .expect("a task")
        .path();
    let task_json = task_dir.join("task.json");
    let bytes = std::fs::read(&task_json).expect("read");
    std::fs::write(&task_json, &bytes[..bytes.len() / 2]).expect("truncate");
    for args in [
        &["show", "InspectFlow/1"][..],
        &["show", "InspectFlow/1/start"],
        &["logs", "InspectFlow/1/start"],
    ] {
        let out = inspect_at(&root, args);
        assert_status(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "metadata file `{}` is invalid",
                task_json.display()
            )),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_blob_is_named() {
    let scratch = Scratch::new("missing-blob");
    let root = copy_of_shared(&scratch);
    let start = only_task("InspectFlow/1/start");
    let raw = inspect_at(&root, &["show", &start, "--format", "json"]);
    let value = json_of(&raw);
    let hash = value["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "numbers"))
        .and_then(|a| a["hash"].as_str())
        .expect("hash")
        .to_owned();
    let blob = root.join("InspectFlow/data").join(&hash[..2]).join(&hash);
    std::fs::remove_file(&blob).expect("remove blob");

    let out = inspect_at(
        &root,
        &["artifact", "get", "InspectFlow/1/start", "numbers"],
    );
    assert_status(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not found"), "{stderr}");
    assert!(stderr.contains(&blob.display().to_string()), "{stderr}");
    let out = inspect_at(
        &root,
        &["artifact", "get", "InspectFlow/1/start", "numbers", "--raw"],
    );
    assert_status(&out, 2);
    assert!(text(&out.stderr).contains(&hash), "{}", describe(&out));
    // `show` still shows the task, with a warning for the value it could not preview.
    let out = inspect_at(&root, &["show", &start]);
    assert_status(&out, 0);
    assert!(
        text(&out.stderr).contains("artifact `numbers` cannot be read"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_directory_that_is_not_a_datastore_gets_the_stores_message() {
    let scratch = Scratch::new("not-a-store");
    let plain = scratch.dir.join("plain");
    std::fs::create_dir_all(&plain).expect("mkdir");
    for args in [
        &["runs"][..],
        &["show", "F/1"],
        &["logs", "F/1/start/1"],
        &["artifact", "get", "F/1/start/1", "x"],
    ] {
        let out = inspect_at(&plain, args);
        assert_status(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is not a flowc datastore"),
            "{args:?}: {stderr}"
        );
    }
    // The default root is `.flowc` in the working directory.
    let out = flowc(&scratch.dir, &["runs"]);
    assert_status(&out, 2);
    assert!(text(&out.stderr).contains(".flowc"), "{}", describe(&out));
}

#[test]
fn logs_follow_streams_a_running_task_until_it_finishes() {
    let scratch = Scratch::new("follow");
    let flow = scratch.dir.join("slow.py");
    std::fs::write(
        &flow,
        "import time\n\
         from metaflow import FlowSpec, step\n\n\
         class SlowFlow(FlowSpec):\n\
         \x20   @step\n\
         \x20   def start(self):\n\
         \x20       print(\"first\", flush=True)\n\
         \x20       time.sleep(2)\n\
         \x20       print(\"second\", flush=True)\n\
         \x20       self.next(self.end)\n\n\
         \x20   @step\n\
         \x20   def end(self):\n\
         \x20       pass\n",
    )
    .expect("write flow");
    let root = scratch.dir.join("store");
    let mut run = flowc_command(
        &scratch.dir,
        &["run", flow.to_str().expect("utf-8"), "--datastore-root"],
    )
    .arg(&root)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start flowc run");
    // Wait for the start task to be recorded as running.
    let step_dir = root.join("SlowFlow/runs/1/start");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let running = loop {
        let task_json = std::fs::read_dir(&step_dir)
            .ok()
            .and_then(|entries| entries.filter_map(Result::ok).next())
            .map(|entry| entry.path().join("task.json"));
        let status = task_json
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .map(|meta| meta["status"].clone());
        if let Some(status) = status {
            break status == "running";
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the start task never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = inspect_at(&root, &["logs", "SlowFlow/latest/start", "--follow"]);
    let _ = run.wait();
    assert_status(&out, 0);
    assert!(running, "the task finished before `logs --follow` started");
    assert_eq!(text(&out.stdout), "first\nsecond\n");
}
