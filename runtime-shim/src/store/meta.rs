//! The metadata documents of the datastore: `run.json`, `task.json` and
//! `manifest.json`, as serde structs.
//!
//! Readers accept unknown fields and defaulted optional ones, so a newer flowc can add
//! a field within one layout version without breaking an older reader; removing or
//! changing the meaning of a field needs a new layout version.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::names::{ArtifactName, BlobHash, FlowName, RunId, StepName, TaskId, TaskPath};

/// Milliseconds since the Unix epoch, the timestamp unit of every metadata file (as in
/// Metaflow's `ts_epoch`). A clock before 1970 reads as 0 rather than failing a task.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A run's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped by a signal (Ctrl-C, SIGTERM) before it finished; `flowc resume` goes on
    /// from where it stopped.
    Killed,
}

/// What the caller supplies to create a run; the store adds the id, status and time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSpec {
    /// Parameter values as the run sees them, by parameter name.
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Hex SHA-256 of the flow's source file.
    pub source_sha256: String,
    /// The flow's IR as `flowc inspect --format json` prints it. Kept as plain JSON so a
    /// run stays readable after the IR changes; parse it with `flowc-ir` when its
    /// `ir_version` matches.
    pub flow_ir: serde_json::Value,
    /// For `flowc resume`: the run this one resumes.
    pub origin_run_id: Option<RunId>,
    /// The run's tags (`flowc run --tag`), in the order given, without duplicates.
    pub tags: Vec<String>,
    /// Who started the run, as Metaflow names it (`METAFLOW_USER`, else the login
    /// name); the client's namespaces are `user:<name>` tags derived from it.
    pub user: Option<String>,
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub flow: FlowName,
    pub run_id: RunId,
    pub status: RunStatus,
    pub created_at_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_unix_ms: Option<u64>,
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    pub source_sha256: String,
    pub flow_ir: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_run_id: Option<RunId>,
    /// The code package every task of the run ran from (`flowc run` records it; a run
    /// started by `flowc-shim init` alone has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_package: Option<CodePackageRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The user name a run records: `METAFLOW_USER`, else the login name, as Metaflow
/// and the harness look it up.
pub fn current_user() -> Option<String> {
    ["METAFLOW_USER", "USER", "USERNAME", "LOGNAME", "SUDO_USER"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|value| !value.is_empty())
}

/// A code package as a run refers to it: the blob's hash and the flow file's path
/// inside the archive (`flowc-shim task --code-package HASH --package-entry ENTRY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodePackageRef {
    pub hash: BlobHash,
    pub entry: String,
}

impl RunMeta {
    /// A new, running run made from `spec`.
    pub fn new(flow: FlowName, run_id: RunId, spec: RunSpec, created_at_unix_ms: u64) -> Self {
        RunMeta {
            flow,
            run_id,
            status: RunStatus::Running,
            created_at_unix_ms,
            finished_at_unix_ms: None,
            parameters: spec.parameters,
            source_sha256: spec.source_sha256,
            flow_ir: spec.flow_ir,
            origin_run_id: spec.origin_run_id,
            code_package: None,
            tags: spec.tags,
            user: spec.user,
        }
    }
}

/// A task's overall state (over all its attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Running,
    Succeeded,
    Failed,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Running,
    Succeeded,
    Failed,
    /// Killed by the scheduler when `@timeout` expired.
    TimedOut,
    /// Killed because the run was interrupted (Ctrl-C, SIGTERM).
    Killed,
}

/// One attempt of a task (the first run, then one per `@retry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Counts from 0; also names the attempt's log files.
    pub attempt: u32,
    pub status: AttemptStatus,
    pub started_at_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_unix_ms: Option<u64>,
    /// The process's exit code, when it exited on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended the process, when one did (Unix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// A parent of a task, in the same run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParentTask {
    pub step: StepName,
    pub task_id: TaskId,
}

/// Where a task cloned by `flowc resume` was copied from: the same step and task id in
/// the run named here. Follow `origin` of that task to reach the one that executed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskOrigin {
    pub run_id: RunId,
    pub task_id: TaskId,
}

/// `task.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// Where the task is: stored flat as `flow`, `run_id`, `step`, `task_id`.
    #[serde(flatten)]
    pub path: TaskPath,
    pub status: TaskStatus,
    #[serde(default)]
    pub parents: Vec<ParentTask>,
    #[serde(default)]
    pub attempts: Vec<AttemptRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<TaskOrigin>,
    /// The HTML cards (`@card`) the task's last attempt rendered, in the order the
    /// decorators are listed. Each is a blob of the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<CardRef>,
}

/// One rendered card of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRef {
    /// The `id=` of the `@card` decorator, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The card type (`default`, `blank`, ...).
    #[serde(rename = "type")]
    pub card_type: String,
    /// The blob holding the self-contained HTML page.
    pub hash: BlobHash,
    /// Size of the HTML in bytes.
    pub size: u64,
}

impl TaskMeta {
    /// A running task with no attempts yet.
    pub fn new(path: TaskPath, parents: Vec<ParentTask>) -> Self {
        TaskMeta {
            path,
            status: TaskStatus::Running,
            parents,
            attempts: Vec::new(),
            origin: None,
            cards: Vec::new(),
        }
    }
}

/// One artifact in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactEntry {
    pub hash: BlobHash,
    /// The Python type of the value, as the harness reports it (e.g. `builtins.dict`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Size of the uncompressed bytes.
    pub size: u64,
    /// How the uncompressed bytes encode the value, e.g. `pickle-v4`. Storage
    /// compression is not part of it: every blob is a zstd stream.
    pub encoding: String,
}

/// `manifest.json`: the artifacts a task produced, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub artifacts: BTreeMap<ArtifactName, ArtifactEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> TaskPath {
        TaskPath::new(
            FlowName::new("F").unwrap(),
            RunId::new("1").unwrap(),
            StepName::new("start").unwrap(),
            TaskId::new("2").unwrap(),
        )
    }

    #[test]
    fn task_meta_is_flat_json_with_stable_keys() {
        let mut meta = TaskMeta::new(path(), Vec::new());
        meta.attempts.push(AttemptRecord {
            attempt: 0,
            status: AttemptStatus::TimedOut,
            started_at_unix_ms: 5,
            finished_at_unix_ms: Some(9),
            exit_code: None,
            signal: Some(9),
        });
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "flow": "F", "run_id": "1", "step": "start", "task_id": "2",
                "status": "running", "parents": [],
                "attempts": [{"attempt": 0, "status": "timed_out", "started_at_unix_ms": 5,
                              "finished_at_unix_ms": 9, "signal": 9}],
            })
        );
        let back: TaskMeta = serde_json::from_value(json).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn task_meta_rejects_a_traversing_step_name() {
        let json = serde_json::json!({
            "flow": "F", "run_id": "1", "step": "../../x", "task_id": "2", "status": "running",
        });
        let err = serde_json::from_value::<TaskMeta>(json).unwrap_err();
        assert!(err.to_string().contains("invalid step name"), "{err}");
    }

    #[test]
    fn manifest_uses_type_key_and_validates_names_and_hashes() {
        let hash = BlobHash::from_bytes([7; 32]);
        let mut manifest = Manifest::default();
        manifest.artifacts.insert(
            ArtifactName::new("model").unwrap(),
            ArtifactEntry {
                hash,
                type_name: "builtins.dict".into(),
                size: 3,
                encoding: "pickle-v4".into(),
            },
        );
        let text = serde_json::to_string(&manifest).unwrap();
        assert!(text.contains("\"type\":\"builtins.dict\""), "{text}");
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), manifest);

        let bad_name = text.replace("\"model\"", "\"../model\"");
        assert!(serde_json::from_str::<Manifest>(&bad_name).is_err());
        let bad_hash = text.replace(&hash.to_hex(), "ABC");
        assert!(serde_json::from_str::<Manifest>(&bad_hash).is_err());
    }

    #[test]
    fn run_meta_tolerates_unknown_fields() {
        let json = serde_json::json!({
            "flow": "F", "run_id": "1", "status": "failed", "created_at_unix_ms": 1,
            "source_sha256": "ab", "flow_ir": {"ir_version": 1}, "added_later": true,
        });
        let meta: RunMeta = serde_json::from_value(json).unwrap();
        assert_eq!(meta.status, RunStatus::Failed);
        assert!(meta.parameters.is_empty());
        assert_eq!(meta.code_package, None);
    }

    #[test]
    fn run_meta_records_its_code_package_and_a_killed_status() {
        let mut meta = RunMeta::new(
            FlowName::new("F").unwrap(),
            RunId::new("3").unwrap(),
            RunSpec::default(),
            1,
        );
        meta.status = RunStatus::Killed;
        meta.code_package = Some(CodePackageRef {
            hash: BlobHash::from_bytes([1; 32]),
            entry: "flow.py".into(),
        });
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["status"], "killed");
        assert_eq!(
            json["code_package"],
            serde_json::json!({"hash": "01".repeat(32), "entry": "flow.py"})
        );
        let back: RunMeta = serde_json::from_value(json).unwrap();
        assert_eq!(back, meta);
        let attempt = serde_json::to_value(AttemptStatus::Killed).unwrap();
        assert_eq!(attempt, "killed");
    }
}
