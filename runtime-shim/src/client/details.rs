//! The detailed views of one run, step or task, as `flowc show` prints them. Unlike
//! listings these read every task's metadata of what they show.
//!
//! Serialised field names are the documented JSON of `flowc show --format json`
//! (`docs/inspect.md`); times are ISO-8601 UTC strings.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{AttemptRecord, AttemptStatus, CodePackageRef, RunStatus, TaskMeta, TaskStatus};

use super::summary::{iso, iso_opt, RunSummary};

/// A step's state over its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// In the flow's graph, but no task of it has started (a later step of a failed or
    /// running run).
    NotStarted,
    Running,
    Succeeded,
    Failed,
}

/// One step of a run, counted over its tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOverview {
    pub name: String,
    pub status: StepStatus,
    pub tasks: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub running: usize,
    /// The first attempt start of any task of the step.
    #[serde(serialize_with = "iso_opt")]
    pub started_at: Option<u64>,
    /// The last attempt end, once every task has finished.
    #[serde(serialize_with = "iso_opt")]
    pub finished_at: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// A run with its parameters and steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetails {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub parameters: BTreeMap<String, serde_json::Value>,
    pub code_package: Option<CodePackageRef>,
    /// Every step of the flow's graph in source order, then any step found in the store
    /// that the graph does not name.
    #[serde(rename = "steps")]
    pub step_details: Vec<StepOverview>,
    pub task_count: usize,
    pub failed_task_count: usize,
}

/// One task in a step's listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskOverview {
    pub task_id: String,
    pub pathspec: String,
    pub status: TaskStatus,
    pub attempts: usize,
    #[serde(serialize_with = "iso_opt")]
    pub started_at: Option<u64>,
    #[serde(serialize_with = "iso_opt")]
    pub finished_at: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// A step with its tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDetails {
    pub flow: String,
    pub run_id: String,
    pub step: String,
    pub pathspec: String,
    pub run_status: RunStatus,
    pub status: StepStatus,
    #[serde(serialize_with = "iso_opt")]
    pub started_at: Option<u64>,
    #[serde(serialize_with = "iso_opt")]
    pub finished_at: Option<u64>,
    pub duration_ms: Option<u64>,
    /// Ordered like the store lists them: integer ids numerically.
    pub tasks: Vec<TaskOverview>,
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptInfo {
    pub attempt: u32,
    pub status: AttemptStatus,
    #[serde(serialize_with = "iso")]
    pub started_at: u64,
    #[serde(serialize_with = "iso_opt")]
    pub finished_at: Option<u64>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

impl From<&AttemptRecord> for AttemptInfo {
    fn from(record: &AttemptRecord) -> Self {
        AttemptInfo {
            attempt: record.attempt,
            status: record.status,
            started_at: record.started_at_unix_ms,
            finished_at: record.finished_at_unix_ms,
            duration_ms: record
                .finished_at_unix_ms
                .map(|end| end.saturating_sub(record.started_at_unix_ms)),
            exit_code: record.exit_code,
            signal: record.signal,
        }
    }
}

/// One artifact of a task, from its manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactInfo {
    pub name: String,
    /// The Python type, as the harness recorded it (`builtins.dict`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// How the bytes encode the value (`pickle-v4`, `json`).
    pub encoding: String,
    /// The blob's SHA-256.
    pub hash: String,
}

/// A task with its attempts and artifacts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskDetails {
    pub flow: String,
    pub run_id: String,
    pub step: String,
    pub task_id: String,
    pub pathspec: String,
    pub status: TaskStatus,
    #[serde(serialize_with = "iso_opt")]
    pub started_at: Option<u64>,
    #[serde(serialize_with = "iso_opt")]
    pub finished_at: Option<u64>,
    pub duration_ms: Option<u64>,
    /// Pathspecs of the parent tasks, in the order the task records them.
    pub parents: Vec<String>,
    /// For a task `flowc resume` reused: the pathspec of the task it was copied from.
    pub origin: Option<String>,
    pub attempts: Vec<AttemptInfo>,
    /// By name.
    pub artifacts: Vec<ArtifactInfo>,
}

/// Start, end and duration of a task over its attempts: from the first attempt's start
/// to the last one's end, the end only once the task is no longer running.
pub(crate) fn task_timing(meta: &TaskMeta) -> (Option<u64>, Option<u64>, Option<u64>) {
    let started = meta.attempts.iter().map(|a| a.started_at_unix_ms).min();
    let finished = if meta.status == TaskStatus::Running {
        None
    } else {
        meta.attempts
            .iter()
            .filter_map(|a| a.finished_at_unix_ms)
            .max()
    };
    let duration = match (started, finished) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => None,
    };
    (started, finished, duration)
}

/// Counts a step's tasks into its overview.
pub(crate) fn step_overview(name: &str, tasks: &[TaskMeta]) -> StepOverview {
    let count = |status| tasks.iter().filter(|t| t.status == status).count();
    let (succeeded, failed, running) = (
        count(TaskStatus::Succeeded),
        count(TaskStatus::Failed),
        count(TaskStatus::Running),
    );
    let status = if tasks.is_empty() {
        StepStatus::NotStarted
    } else if failed > 0 {
        StepStatus::Failed
    } else if running > 0 {
        StepStatus::Running
    } else {
        StepStatus::Succeeded
    };
    let timings: Vec<_> = tasks.iter().map(task_timing).collect();
    let started_at = timings.iter().filter_map(|t| t.0).min();
    let finished_at = if running > 0 || tasks.is_empty() {
        None
    } else {
        timings.iter().filter_map(|t| t.1).max()
    };
    let duration_ms = match (started_at, finished_at) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => None,
    };
    StepOverview {
        name: name.to_owned(),
        status,
        tasks: tasks.len(),
        succeeded,
        failed,
        running,
        started_at,
        finished_at,
        duration_ms,
    }
}

/// A task's line in a step listing.
pub(crate) fn task_overview(meta: &TaskMeta) -> TaskOverview {
    let (started_at, finished_at, duration_ms) = task_timing(meta);
    TaskOverview {
        task_id: meta.path.task_id.as_str().to_owned(),
        pathspec: meta.path.to_string(),
        status: meta.status,
        attempts: meta.attempts.len(),
        started_at,
        finished_at,
        duration_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FlowName, RunId, StepName, TaskId, TaskPath};

    fn task(id: &str, status: TaskStatus, attempts: &[(u64, Option<u64>)]) -> TaskMeta {
        let path = TaskPath::new(
            FlowName::new("F").unwrap(),
            RunId::new("1").unwrap(),
            StepName::new("train").unwrap(),
            TaskId::new(id).unwrap(),
        );
        let mut meta = TaskMeta::new(path, Vec::new());
        meta.status = status;
        for (n, (start, end)) in attempts.iter().enumerate() {
            meta.attempts.push(AttemptRecord {
                attempt: u32::try_from(n).unwrap(),
                status: AttemptStatus::Failed,
                started_at_unix_ms: *start,
                finished_at_unix_ms: *end,
                exit_code: Some(1),
                signal: None,
            });
        }
        meta
    }

    #[test]
    fn a_task_spans_its_attempts() {
        let meta = task(
            "2",
            TaskStatus::Succeeded,
            &[(100, Some(150)), (200, Some(260))],
        );
        assert_eq!(task_timing(&meta), (Some(100), Some(260), Some(160)));
        let running = task("3", TaskStatus::Running, &[(100, Some(150)), (200, None)]);
        assert_eq!(task_timing(&running), (Some(100), None, None));
    }

    #[test]
    fn a_step_fails_if_any_task_failed_and_finishes_when_all_did() {
        let tasks = [
            task("2", TaskStatus::Succeeded, &[(10, Some(20))]),
            task("3", TaskStatus::Failed, &[(12, Some(40))]),
        ];
        let overview = step_overview("train", &tasks);
        assert_eq!(overview.status, StepStatus::Failed);
        assert_eq!(
            (overview.tasks, overview.succeeded, overview.failed),
            (2, 1, 1)
        );
        assert_eq!(overview.duration_ms, Some(30));

        let running = [
            task("2", TaskStatus::Succeeded, &[(10, Some(20))]),
            task("3", TaskStatus::Running, &[(12, None)]),
        ];
        let overview = step_overview("train", &running);
        assert_eq!(overview.status, StepStatus::Running);
        assert_eq!(overview.finished_at, None);

        let none = step_overview("end", &[]);
        assert_eq!(none.status, StepStatus::NotStarted);
        assert_eq!(none.started_at, None);
    }
}
