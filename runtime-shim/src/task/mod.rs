//! Running one task: load the parents' manifests, start the Python harness, serve its
//! artifact reads and writes, store the task's manifest and outcome, and record the
//! attempt in the task's metadata. `flowc-shim task` and `flowc-shim init` are thin
//! wrappers around [`run_task`] and [`run_init`]; a scheduler may call them directly.
//!
//! Parameters follow Metaflow: the run's first task, `<run>/_parameters/0`, stores
//! every parameter's value as an artifact, and every task reads them from there.

pub mod argo;
mod outcome;
mod protocol;
mod session;
pub mod sfn;
pub mod zygote;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::cards;
use crate::store::{
    hash_bytes, now_unix_ms, ArtifactEntry, ArtifactName, AttemptRecord, AttemptStatus, BlobHash,
    BlobStore, CardRef, FlowName, Manifest, MetadataStore, ParentTask, RunId, RunSpec, StepName,
    StoreError, TaskId, TaskMeta, TaskPath, TaskStatus,
};

pub use outcome::{
    read as read_outcome, ForeachFrame, StepStatus, TaskOutcome, Transition, OUTCOME_ARTIFACT,
};
pub use session::{PythonCommand, PYTHON_ENV_VAR};

/// The step name of the task that holds a run's parameters.
pub const PARAMETERS_STEP: &str = "_parameters";

/// The task id of the task that holds a run's parameters.
pub const PARAMETERS_TASK_ID: &str = "0";

/// Everything `flowc-shim task` needs to run one task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub flow_file: PathBuf,
    pub task: TaskPath,
    /// The parent tasks, in the order the join sees them as `inputs`.
    pub parents: Vec<ParentTask>,
    /// This task's position in the foreach its parent split, if the parent did.
    pub split_index: Option<u64>,
    /// The attempt number, from 0.
    pub retry_count: u32,
    /// Attempts beyond the first that `@retry` allows; `@catch` acts on the last.
    pub max_user_code_retries: u32,
    pub tags: Vec<String>,
    pub origin_run_id: Option<RunId>,
}

/// Everything `flowc-shim init` needs to store a run's parameters.
#[derive(Debug, Clone)]
pub struct InitSpec {
    pub flow_file: PathBuf,
    pub flow: FlowName,
    pub run_id: RunId,
    /// Values by parameter name, as the user gave them (strings are converted to the
    /// parameter's type).
    pub params: Map<String, Value>,
}

/// What became of one task attempt.
#[derive(Debug, Clone)]
pub struct TaskReport {
    pub status: StepStatus,
    /// `None` when the harness never reported (it crashed or could not start).
    pub outcome: Option<TaskOutcome>,
    pub attempt: AttemptRecord,
}

impl TaskReport {
    /// Whether the task succeeded (a step whose exception `@catch` handled counts).
    pub fn succeeded(&self) -> bool {
        self.status != StepStatus::Failed
    }
}

/// A task that could not be run or recorded at all (as opposed to a step that failed,
/// which is a [`TaskReport`] with [`StepStatus::Failed`]).
#[derive(Debug)]
pub enum TaskError {
    Store(StoreError),
    /// A bad argument: an input path of another run, a parent without a manifest, ...
    Invalid(String),
    Io(io::Error),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Store(err) => write!(f, "{err}"),
            TaskError::Invalid(message) => f.write_str(message),
            TaskError::Io(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for TaskError {}

impl From<StoreError> for TaskError {
    fn from(err: StoreError) -> Self {
        TaskError::Store(err)
    }
}

impl From<io::Error> for TaskError {
    fn from(err: io::Error) -> Self {
        TaskError::Io(err)
    }
}

/// Parses one `RUN/STEP/TASK` input path, which must belong to `run_id`.
pub fn parse_input_path(text: &str, run_id: &RunId) -> Result<ParentTask, String> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    let [run, step, task] = parts.as_slice() else {
        return Err(format!(
            "input path `{text}` is not of the form RUN/STEP/TASK"
        ));
    };
    if *run != run_id.as_str() {
        return Err(format!(
            "input path `{text}` belongs to run `{run}`, not to this task's run `{run_id}`"
        ));
    }
    let step = StepName::new(step).map_err(|err| format!("input path `{text}`: {err}"))?;
    let task_id = TaskId::new(task).map_err(|err| format!("input path `{text}`: {err}"))?;
    Ok(ParentTask { step, task_id })
}

/// Parses a list of input paths separated by commas, newlines or both (the format of
/// `--input-paths` and of `--input-paths-file`).
pub fn parse_input_paths(text: &str, run_id: &RunId) -> Result<Vec<ParentTask>, String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| parse_input_path(part, run_id))
        .collect()
}

/// The path of a run's parameters task.
pub fn parameters_task(flow: &FlowName, run_id: &RunId) -> TaskPath {
    // Both names are constants that pass validation.
    TaskPath::new(
        flow.clone(),
        run_id.clone(),
        StepName::new(PARAMETERS_STEP).unwrap_or_else(|_| unreachable!()),
        TaskId::new(PARAMETERS_TASK_ID).unwrap_or_else(|_| unreachable!()),
    )
}

/// Runs one task of a flow and records it. `Ok` whenever the attempt could be
/// recorded, whether the step succeeded or not.
pub fn run_task<S>(
    store: &S,
    python: &PythonCommand,
    spec: &TaskSpec,
) -> Result<TaskReport, TaskError>
where
    S: BlobStore + MetadataStore + ?Sized,
{
    let path = &spec.task;
    let started = begin_attempt(store, path, &spec.parents, spec.retry_count)?;
    let prepared = prepare_inputs(store, spec);
    let (init, known) = match prepared {
        Ok(ready) => ready,
        Err(message) => {
            eprintln!("flowc-shim: task {path} cannot start: {message}");
            return finish_attempt(store, path, spec, started, None, None);
        }
    };
    let end = session::run(store, &path.flow, python, &init, known)?;
    finish_session(store, path, spec, started, end)
}

/// Stores a run's parameter values as the artifacts of `<run>/_parameters/0`, creating
/// the run's metadata if no scheduler created it yet.
pub fn run_init<S>(
    store: &S,
    python: &PythonCommand,
    spec: &InitSpec,
) -> Result<TaskReport, TaskError>
where
    S: BlobStore + MetadataStore + ?Sized,
{
    ensure_run(store, spec)?;
    let path = parameters_task(&spec.flow, &spec.run_id);
    let task_spec = TaskSpec {
        flow_file: spec.flow_file.clone(),
        task: path.clone(),
        parents: Vec::new(),
        split_index: None,
        retry_count: 0,
        max_user_code_retries: 0,
        tags: Vec::new(),
        origin_run_id: None,
    };
    let started = begin_attempt(store, &path, &[], 0)?;
    let init = json!({
        "op": "init",
        "mode": "init",
        "flow_file": absolute(&spec.flow_file),
        "flow": spec.flow.as_str(),
        "run_id": spec.run_id.as_str(),
        "task_id": PARAMETERS_TASK_ID,
        "params": Value::Object(spec.params.clone()),
    });
    let end = session::run(store, &path.flow, python, &init, HashMap::new())?;
    finish_session(store, &path, &task_spec, started, end)
}

fn ensure_run<S: MetadataStore + ?Sized>(store: &S, spec: &InitSpec) -> Result<(), TaskError> {
    match store.read_run(&spec.flow, &spec.run_id) {
        Ok(_) => return Ok(()),
        Err(StoreError::NotFound { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    // The hash only describes the run; the harness reports an unreadable file itself.
    let source_sha256 = std::fs::read(&spec.flow_file)
        .map(|bytes| hash_bytes(&bytes).to_hex())
        .unwrap_or_default();
    let run_spec = RunSpec {
        parameters: spec.params.clone().into_iter().collect(),
        source_sha256,
        flow_ir: Value::Null,
        origin_run_id: None,
        tags: Vec::new(),
        user: crate::store::current_user(),
    };
    match store.create_run_with_id(&spec.flow, &spec.run_id, run_spec) {
        // Another process (a scheduler, a concurrent init) created it meanwhile.
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Records a running attempt in `task.json` and returns its start time.
fn begin_attempt<S: MetadataStore + ?Sized>(
    store: &S,
    path: &TaskPath,
    parents: &[ParentTask],
    attempt: u32,
) -> Result<u64, TaskError> {
    let mut meta = match store.read_task(path) {
        Ok(meta) => meta,
        Err(StoreError::NotFound { .. }) => TaskMeta::new(path.clone(), parents.to_vec()),
        Err(err) => return Err(err.into()),
    };
    let started = now_unix_ms();
    meta.status = TaskStatus::Running;
    meta.parents = parents.to_vec();
    // A re-run of the same attempt (a scheduler restarted) replaces its record.
    meta.attempts.retain(|record| record.attempt != attempt);
    meta.attempts.push(AttemptRecord {
        attempt,
        status: AttemptStatus::Running,
        started_at_unix_ms: started,
        finished_at_unix_ms: None,
        exit_code: None,
        signal: None,
    });
    meta.attempts.sort_by_key(|record| record.attempt);
    store.write_task_running(&meta)?;
    Ok(started)
}

/// Reads the parameters and parents' manifests and builds the harness's `init`.
fn prepare_inputs<S>(
    store: &S,
    spec: &TaskSpec,
) -> Result<(Value, HashMap<BlobHash, ArtifactEntry>), String>
where
    S: BlobStore + MetadataStore + ?Sized,
{
    let path = &spec.task;
    let mut known = HashMap::new();
    let params_path = parameters_task(&path.flow, &path.run_id);
    let parameters = match store.read_manifest(&params_path) {
        Ok(manifest) => manifest,
        // A run without `init`: the harness reports any parameter the flow then lacks.
        Err(StoreError::NotFound { .. }) => Manifest::default(),
        Err(err) => return Err(format!("cannot read the run's parameters: {err}")),
    };
    let parameters = entries_json(&parameters, &mut known, |name| name != OUTCOME_ARTIFACT);

    let mut inputs = Vec::with_capacity(spec.parents.len());
    for parent in &spec.parents {
        let parent_path = TaskPath::new(
            path.flow.clone(),
            path.run_id.clone(),
            parent.step.clone(),
            parent.task_id.clone(),
        );
        let manifest = store.read_manifest(&parent_path).map_err(|err| match err {
            StoreError::NotFound { .. } => {
                format!("parent task {parent_path} has no manifest (has it run and succeeded?)")
            }
            other => format!("cannot read the manifest of parent task {parent_path}: {other}"),
        })?;
        let parent_outcome = outcome::read(store, &path.flow, &manifest)
            .map_err(|err| format!("parent task {parent_path}: {err}"))?;
        let (stack, split) = match &parent_outcome {
            Some(found) => (
                serde_json::to_value(&found.foreach_stack).unwrap_or(Value::Null),
                match &found.transition {
                    Some(Transition::Foreach {
                        foreach_var,
                        num_splits,
                        ..
                    }) => json!({"var": foreach_var, "num_splits": num_splits}),
                    _ => Value::Null,
                },
            ),
            None => (json!([]), Value::Null),
        };
        inputs.push(json!({
            "pathspec": format!("{}/{}/{}", path.run_id, parent.step, parent.task_id),
            "step": parent.step.as_str(),
            "task_id": parent.task_id.as_str(),
            "artifacts": entries_json(&manifest, &mut known, |name| name != OUTCOME_ARTIFACT),
            "foreach_stack": stack,
            "foreach": split,
        }));
    }
    let init = json!({
        "op": "init",
        "mode": "task",
        "flow_file": absolute(&spec.flow_file),
        "flow": path.flow.as_str(),
        "step": path.step.as_str(),
        "run_id": path.run_id.as_str(),
        "task_id": path.task_id.as_str(),
        "split_index": spec.split_index,
        "retry_count": spec.retry_count,
        "max_user_code_retries": spec.max_user_code_retries,
        "origin_run_id": spec.origin_run_id.as_ref().map(RunId::as_str),
        "tags": spec.tags,
        "parameters": parameters,
        "inputs": inputs,
    });
    Ok((init, known))
}

/// A manifest's entries as the harness sees them, noting each blob in `known`.
fn entries_json(
    manifest: &Manifest,
    known: &mut HashMap<BlobHash, ArtifactEntry>,
    keep: impl Fn(&str) -> bool,
) -> Value {
    let mut out = Map::new();
    for (name, entry) in &manifest.artifacts {
        if !keep(name.as_str()) {
            continue;
        }
        known.insert(entry.hash, entry.clone());
        out.insert(
            name.as_str().to_owned(),
            json!({"hash": entry.hash.to_hex(), "type": entry.type_name, "size": entry.size}),
        );
    }
    Value::Object(out)
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// Turns the harness's report into the task's manifest and final metadata.
fn finish_session<S>(
    store: &S,
    path: &TaskPath,
    spec: &TaskSpec,
    started: u64,
    end: session::SessionEnd,
) -> Result<TaskReport, TaskError>
where
    S: BlobStore + MetadataStore + ?Sized,
{
    if let Some(problem) = &end.problem {
        eprintln!("flowc-shim: task {path}: {problem}");
    }
    let exit = Some((end.exit_code(), end.signal()));
    let Some(done) = end.done else {
        return finish_attempt(store, path, spec, started, None, exit);
    };
    let mut manifest = Manifest::default();
    let mut status = done.status;
    for (name, reported) in &done.artifacts {
        let entry = ArtifactName::new(name).ok().zip(
            BlobHash::parse(&reported.hash)
                .ok()
                .and_then(|hash| end.known.get(&hash)),
        );
        match entry {
            Some((name, entry)) => {
                manifest.artifacts.insert(name, entry.clone());
            }
            None => {
                eprintln!(
                    "flowc-shim: task {path}: the harness reported artifact `{name}` with a blob it never stored"
                );
                status = StepStatus::Failed;
            }
        }
    }
    if let (StepStatus::Failed, Some(error)) = (status, &done.error) {
        // The harness printed the traceback; this line makes the cause greppable in logs.
        eprintln!(
            "flowc-shim: task {path} failed: {}: {}",
            error.type_name,
            error.message.lines().next().unwrap_or_default()
        );
    }
    let task_outcome = TaskOutcome {
        status,
        transition: if status == StepStatus::Ok {
            done.transition
        } else {
            None
        },
        foreach_stack: done.foreach_stack,
    };
    outcome::record(store, &path.flow, &mut manifest, &task_outcome)?;
    store.write_manifest(path, &manifest)?;
    let cards = match &done.cards {
        Some(report) => {
            let finished = cards::FinishedTask {
                path,
                attempt: spec.retry_count,
                status,
                started_at_unix_ms: started,
                manifest: &manifest,
            };
            cards::render_and_store(store, &finished, report)
        }
        None => Vec::new(),
    };
    finish_attempt_with_cards(store, path, spec, started, Some(task_outcome), exit, cards)
}

/// Records the attempt's end in `task.json`, for an attempt that rendered no card.
fn finish_attempt<S: MetadataStore + ?Sized>(
    store: &S,
    path: &TaskPath,
    spec: &TaskSpec,
    started: u64,
    task_outcome: Option<TaskOutcome>,
    exit: Option<(Option<i32>, Option<i32>)>,
) -> Result<TaskReport, TaskError> {
    finish_attempt_with_cards(store, path, spec, started, task_outcome, exit, Vec::new())
}

/// Records the attempt's end in `task.json`, with the cards it rendered (the cards of
/// an earlier attempt are replaced: `cards` are always the last attempt's).
fn finish_attempt_with_cards<S: MetadataStore + ?Sized>(
    store: &S,
    path: &TaskPath,
    spec: &TaskSpec,
    started: u64,
    task_outcome: Option<TaskOutcome>,
    exit: Option<(Option<i32>, Option<i32>)>,
    cards: Vec<CardRef>,
) -> Result<TaskReport, TaskError> {
    let status = task_outcome
        .as_ref()
        .map_or(StepStatus::Failed, |found| found.status);
    let succeeded = status != StepStatus::Failed;
    let (exit_code, signal) = exit.unwrap_or((None, None));
    let attempt = AttemptRecord {
        attempt: spec.retry_count,
        status: if succeeded {
            AttemptStatus::Succeeded
        } else {
            AttemptStatus::Failed
        },
        started_at_unix_ms: started,
        finished_at_unix_ms: Some(now_unix_ms()),
        exit_code,
        signal,
    };
    let mut meta = match store.read_task(path) {
        Ok(meta) => meta,
        Err(StoreError::NotFound { .. }) => TaskMeta::new(path.clone(), spec.parents.clone()),
        Err(err) => return Err(err.into()),
    };
    meta.attempts
        .retain(|record| record.attempt != spec.retry_count);
    meta.attempts.push(attempt.clone());
    meta.attempts.sort_by_key(|record| record.attempt);
    meta.cards = cards;
    meta.status = if succeeded {
        TaskStatus::Succeeded
    } else if spec.retry_count < spec.max_user_code_retries {
        // `@retry` will start another attempt.
        TaskStatus::Running
    } else {
        TaskStatus::Failed
    };
    store.write_task(&meta)?;
    Ok(TaskReport {
        status,
        outcome: task_outcome,
        attempt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunId {
        RunId::new("12").unwrap()
    }

    #[test]
    fn input_paths_parse_with_commas_and_newlines() {
        let parents = parse_input_paths("12/a/1, 12/b/2\n12/c/x-3\n", &run()).unwrap();
        let names: Vec<String> = parents
            .iter()
            .map(|p| format!("{}:{}", p.step, p.task_id))
            .collect();
        assert_eq!(names, ["a:1", "b:2", "c:x-3"]);
        assert!(parse_input_paths("", &run()).unwrap().is_empty());
    }

    #[test]
    fn input_paths_of_another_run_or_malformed_are_rejected() {
        let err = parse_input_path("13/a/1", &run()).unwrap_err();
        assert!(err.contains("belongs to run `13`"), "{err}");
        let err = parse_input_path("12/a", &run()).unwrap_err();
        assert!(err.contains("RUN/STEP/TASK"), "{err}");
        let err = parse_input_path("12/../1", &run()).unwrap_err();
        assert!(err.contains("invalid step name"), "{err}");
    }

    #[test]
    fn parameters_task_path_is_fixed() {
        let path = parameters_task(&FlowName::new("F").unwrap(), &run());
        assert_eq!(path.to_string(), "F/12/_parameters/0");
    }
}
