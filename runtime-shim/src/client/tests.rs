//! Unit tests of the read API against stores built through the store's own writers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::*;
use crate::store::{
    AttemptRecord, AttemptStatus, BlobStore, Manifest, ParentTask, RunMeta, RunSpec, RunStatus,
    TaskId, TaskOrigin,
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh datastore under the temp dir, removed when the test ends.
struct TestStore {
    dir: PathBuf,
    store: LocalStore,
}

impl TestStore {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "flowc-client-unit-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = LocalStore::open_or_create(&dir).unwrap();
        TestStore { dir, store }
    }

    fn client(&self) -> Client {
        Client::open(&self.dir).unwrap()
    }

    /// A run of `flow` whose IR lists `steps`, created at `created` and with `status`.
    fn run(&self, flow: &str, steps: &[&str], created: u64, status: RunStatus) -> RunMeta {
        let flow = FlowName::new(flow).unwrap();
        let spec = RunSpec {
            parameters: [("alpha".to_owned(), json!(0.5))].into(),
            source_sha256: "00".into(),
            flow_ir: json!({
                "ir_version": 1,
                "steps": steps.iter().map(|s| json!({"name": s, "span": [0, 1]})).collect::<Vec<_>>(),
            }),
            origin_run_id: None,
            ..RunSpec::default()
        };
        let mut meta = self.store.create_run(&flow, spec).unwrap();
        meta.created_at_unix_ms = created;
        meta.status = status;
        if status != RunStatus::Running {
            meta.finished_at_unix_ms = Some(created + 1_500);
        }
        self.store.write_run(&meta).unwrap();
        meta
    }

    fn task(&self, run: &RunMeta, step: &str, id: &str, status: TaskStatus) -> TaskMeta {
        let path = TaskPath::new(
            run.flow.clone(),
            run.run_id.clone(),
            StepName::new(step).unwrap(),
            TaskId::new(id).unwrap(),
        );
        let mut meta = TaskMeta::new(path, Vec::new());
        meta.status = status;
        meta.attempts.push(AttemptRecord {
            attempt: 0,
            status: match status {
                TaskStatus::Succeeded => AttemptStatus::Succeeded,
                TaskStatus::Failed => AttemptStatus::Failed,
                TaskStatus::Running => AttemptStatus::Running,
            },
            started_at_unix_ms: 1_000,
            finished_at_unix_ms: (status != TaskStatus::Running).then_some(1_250),
            exit_code: (status != TaskStatus::Running)
                .then_some(i32::from(status == TaskStatus::Failed)),
            signal: None,
        });
        if status == TaskStatus::Succeeded {
            self.store
                .write_manifest(&meta.path, &Manifest::default())
                .unwrap();
        }
        self.store.write_task(&meta).unwrap();
        meta
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spec(text: &str) -> PathSpec {
    PathSpec::parse(text).unwrap()
}

#[test]
fn listing_is_newest_first_across_flows_and_skips_runs_being_created() {
    let t = TestStore::new("listing");
    t.run("AFlow", &["start", "end"], 3_000, RunStatus::Succeeded);
    t.run("AFlow", &["start", "end"], 1_000, RunStatus::Failed);
    t.run("BFlow", &["start", "mid", "end"], 2_000, RunStatus::Running);
    // A run directory without run.json yet: not listed, not an error.
    std::fs::create_dir_all(t.dir.join("BFlow/runs/99")).unwrap();
    // A stray file and a temporary name in runs/: ignored.
    std::fs::write(t.dir.join("BFlow/runs/notes.txt"), "x").unwrap();
    std::fs::write(t.dir.join("BFlow/runs/.tmp.1"), "x").unwrap();

    let listing = t.client().list_runs(None).unwrap();
    assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
    let order: Vec<String> = listing.runs.iter().map(|r| r.pathspec.clone()).collect();
    assert_eq!(order, ["AFlow/1", "BFlow/1", "AFlow/2"]);
    let first = &listing.runs[0];
    assert_eq!(first.status, RunStatus::Succeeded);
    assert_eq!(first.duration_ms, Some(1_500));
    assert_eq!(first.steps, ["start", "end"]);
    let running = &listing.runs[1];
    assert_eq!((running.finished_at, running.duration_ms), (None, None));

    let only_b = t
        .client()
        .list_runs(Some(&FlowName::new("BFlow").unwrap()))
        .unwrap();
    assert_eq!(only_b.runs.len(), 1);
}

#[test]
fn a_corrupt_run_json_is_reported_by_file_and_the_others_still_list() {
    let t = TestStore::new("corrupt");
    t.run("F", &["start"], 1_000, RunStatus::Succeeded);
    let broken = t.run("F", &["start"], 2_000, RunStatus::Succeeded);
    let path = t.store.layout().run_meta_path(&broken.flow, &broken.run_id);
    std::fs::write(&path, "{\"flow\": \"F\", \"run_").unwrap();

    let listing = t.client().list_runs(None).unwrap();
    assert_eq!(listing.runs.len(), 1);
    assert_eq!(listing.unreadable.len(), 1);
    let message = listing.unreadable[0].to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");

    // Asking for the broken run by id names the file too.
    let err = t.client().resolve(&spec("F/2")).unwrap_err();
    assert!(
        matches!(err, ClientError::Store(StoreError::InvalidMetadata { .. })),
        "{err}"
    );
    // `latest` falls back on the newest readable run.
    let latest = t.client().resolve(&spec("F/latest")).unwrap();
    assert_eq!(
        latest,
        Target::Run(FlowName::new("F").unwrap(), RunId::new("1").unwrap())
    );
}

#[test]
fn a_run_json_stored_under_another_id_is_refused() {
    let t = TestStore::new("moved");
    let run = t.run("F", &["start"], 1_000, RunStatus::Succeeded);
    let from = t.store.layout().run_dir(&run.flow, &run.run_id);
    std::fs::rename(&from, from.with_file_name("7")).unwrap();
    let err = t.client().resolve(&spec("F/7")).unwrap_err().to_string();
    assert!(
        err.contains("it describes run F/1 but is stored as run F/7"),
        "{err}"
    );
}

#[test]
fn latest_is_the_newest_by_creation_not_by_id() {
    let t = TestStore::new("latest");
    t.run("F", &["start"], 5_000, RunStatus::Succeeded);
    t.run("F", &["start"], 1_000, RunStatus::Succeeded);
    let target = t.client().resolve(&spec("F/latest")).unwrap();
    assert_eq!(
        target,
        Target::Run(FlowName::new("F").unwrap(), RunId::new("1").unwrap())
    );
}

#[test]
fn unknown_names_list_what_exists() {
    let t = TestStore::new("unknown");
    let run = t.run(
        "TrainFlow",
        &["start", "train", "end"],
        1_000,
        RunStatus::Failed,
    );
    t.task(&run, "start", "1", TaskStatus::Succeeded);
    t.task(&run, "train", "2", TaskStatus::Failed);
    let client = t.client();

    let err = client.resolve(&spec("TrianFlow")).unwrap_err().to_string();
    assert!(
        err.contains("has no flow `TrianFlow`; did you mean `TrainFlow`?"),
        "{err}"
    );
    let err = client
        .resolve(&spec("TrainFlow/4"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "flow TrainFlow has no run `4`; runs are: 1");
    let err = client
        .resolve(&spec("TrainFlow/1/trian"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "run TrainFlow/1 has no step `trian`; did you mean `train`? Steps are: start, train"
    );
    let err = client
        .resolve(&spec("TrainFlow/1/train/9"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "step TrainFlow/1/train has no task `9`; tasks are: 2");
    let err = client
        .resolve(&spec("Other/latest"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no flow `Other`; flows are: TrainFlow"),
        "{err}"
    );

    let empty = TestStore::new("no-runs");
    std::fs::create_dir_all(empty.dir.join("F/runs")).unwrap();
    let err = empty
        .client()
        .resolve(&spec("F/latest"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "flow F has no run `latest` (it has no runs at all)");
}

#[test]
fn a_step_path_resolves_to_its_only_task() {
    let t = TestStore::new("one-task");
    let run = t.run("F", &["start", "fan"], 1_000, RunStatus::Succeeded);
    t.task(&run, "start", "1", TaskStatus::Succeeded);
    t.task(&run, "fan", "2", TaskStatus::Succeeded);
    t.task(&run, "fan", "10", TaskStatus::Succeeded);
    let client = t.client();
    let task = client.resolve_task(&spec("F/latest/start")).unwrap();
    assert_eq!(task.to_string(), "F/1/start/1");
    let err = client
        .resolve_task(&spec("F/1/fan"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "step F/1/fan has 2 tasks; name one of them: F/1/fan/2, F/1/fan/10"
    );
    let err = client.resolve_task(&spec("F/1")).unwrap_err().to_string();
    assert!(err.contains("it names run F/1, not a task"), "{err}");
}

#[test]
fn run_details_count_tasks_per_step_in_graph_order() {
    let t = TestStore::new("details");
    let run = t.run("F", &["start", "train", "end"], 1_000, RunStatus::Failed);
    t.task(&run, "start", "1", TaskStatus::Succeeded);
    t.task(&run, "train", "2", TaskStatus::Succeeded);
    t.task(&run, "train", "3", TaskStatus::Failed);
    // A step the graph does not name (an older version of the flow), and one of the
    // runtime's own, which is not shown.
    t.task(&run, "legacy", "4", TaskStatus::Succeeded);
    t.task(&run, "_parameters", "0", TaskStatus::Succeeded);

    let details = t.client().run_details(&run.flow, &run.run_id).unwrap();
    let steps: Vec<(&str, StepStatus, usize, usize)> = details
        .step_details
        .iter()
        .map(|s| (s.name.as_str(), s.status, s.tasks, s.failed))
        .collect();
    assert_eq!(
        steps,
        [
            ("start", StepStatus::Succeeded, 1, 0),
            ("train", StepStatus::Failed, 2, 1),
            ("end", StepStatus::NotStarted, 0, 0),
            ("legacy", StepStatus::Succeeded, 1, 0),
        ]
    );
    assert_eq!((details.task_count, details.failed_task_count), (4, 1));
    assert_eq!(details.parameters.get("alpha"), Some(&json!(0.5)));

    let json = serde_json::to_value(&details).unwrap();
    assert_eq!(json["pathspec"], "F/1");
    assert_eq!(json["started_at"], "1970-01-01T00:00:01.000Z");
    assert_eq!(json["finished_at"], "1970-01-01T00:00:02.500Z");
    assert_eq!(json["steps"][1]["status"], "failed");
    assert_eq!(json["steps"][2]["started_at"], serde_json::Value::Null);

    let step = t
        .client()
        .step_details(&run.flow, &run.run_id, &StepName::new("train").unwrap())
        .unwrap();
    let ids: Vec<&str> = step.tasks.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["2", "3"]);
    assert_eq!(step.status, StepStatus::Failed);
}

#[test]
fn task_details_show_attempts_artifacts_parents_and_origin() {
    let t = TestStore::new("task");
    let run = t.run("F", &["start", "end"], 1_000, RunStatus::Succeeded);
    let mut meta = t.task(&run, "end", "2", TaskStatus::Succeeded);
    let blob = t.store.put(&run.flow, b"\x80\x04K\x07.").unwrap();
    let mut manifest = Manifest::default();
    manifest.artifacts.insert(
        ArtifactName::new("x").unwrap(),
        ArtifactEntry {
            hash: blob.hash,
            type_name: "builtins.int".into(),
            size: blob.size,
            encoding: "pickle-v4".into(),
        },
    );
    t.store.write_manifest(&meta.path, &manifest).unwrap();
    meta.parents.push(ParentTask {
        step: StepName::new("start").unwrap(),
        task_id: TaskId::new("1").unwrap(),
    });
    meta.origin = Some(TaskOrigin {
        run_id: RunId::new("0").unwrap(),
        task_id: TaskId::new("2").unwrap(),
    });
    t.store.write_task(&meta).unwrap();

    let client = t.client();
    let details = client.task_details(&meta.path).unwrap();
    assert_eq!(details.parents, ["F/1/start/1"]);
    assert_eq!(details.origin.as_deref(), Some("F/0/end/2"));
    assert_eq!(details.attempts.len(), 1);
    assert_eq!(details.attempts[0].exit_code, Some(0));
    assert_eq!(details.duration_ms, Some(250));
    assert_eq!(details.artifacts.len(), 1);
    assert_eq!(details.artifacts[0].type_name, "builtins.int");
    assert_eq!(details.artifacts[0].size, 5);

    let entry = client.artifact_entry(&meta.path, "x").unwrap();
    assert_eq!(
        client.store().get(&run.flow, &entry.hash).unwrap(),
        b"\x80\x04K\x07."
    );
    let err = client
        .artifact_entry(&meta.path, "y")
        .unwrap_err()
        .to_string();
    assert_eq!(err, "task F/1/end/2 has no artifact `y`; artifacts are: x");
}

#[test]
fn a_missing_manifest_is_an_error_only_for_a_succeeded_task() {
    let t = TestStore::new("manifest");
    let run = t.run("F", &["start"], 1_000, RunStatus::Failed);
    let failed = t.task(&run, "start", "1", TaskStatus::Failed);
    assert!(t
        .client()
        .task_details(&failed.path)
        .unwrap()
        .artifacts
        .is_empty());

    let done = t.task(&run, "start", "2", TaskStatus::Succeeded);
    let manifest = t.store.layout().manifest_path(&done.path);
    std::fs::remove_file(&manifest).unwrap();
    let err = t.client().task_details(&done.path).unwrap_err().to_string();
    assert!(err.contains(&manifest.display().to_string()), "{err}");
}

#[test]
fn a_truncated_task_json_names_the_file() {
    let t = TestStore::new("truncated-task");
    let run = t.run("F", &["start"], 1_000, RunStatus::Succeeded);
    let task = t.task(&run, "start", "1", TaskStatus::Succeeded);
    let path = t.store.layout().task_meta_path(&task.path);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = t
        .client()
        .run_details(&run.flow, &run.run_id)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("metadata file `{}` is invalid", path.display())),
        "{err}"
    );
}

#[test]
fn a_directory_that_is_not_a_datastore_gets_the_stores_message() {
    let dir = std::env::temp_dir().join(format!("flowc-client-unit-{}-plain", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = Client::open(Path::new(&dir)).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("is not a flowc datastore"), "{err}");
}
