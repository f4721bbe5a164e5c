//! `flowc show PATH`: a flow's runs, a run (status, timings, parameters, steps with task
//! counts), a step (its tasks) or a task (attempts, timings, artifacts with type, size
//! and a short preview of the value).

use flowc_shim::client::time::{human_duration, human_utc};
use flowc_shim::client::{
    Client, ClientError, PathSpec, RunDetails, StepDetails, StepStatus, Target, TaskDetails,
};
use flowc_shim::store::{AttemptStatus, BlobStore, FlowName, TaskPath, TaskStatus};
use serde::Serialize;
use serde_json::Value;

use super::artifact;
use super::runs::{self, human_size, status_word, table, CommonArgs, Format};
use super::{Outcome, Status, Terminal};

/// Artifacts up to this size get a value preview; larger ones are not read.
const PREVIEW_MAX_BYTES: u64 = 64 * 1024;

/// Characters of a value preview.
const PREVIEW_WIDTH: usize = 50;

/// Show a flow's runs, a run, a step or a task.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Flow, Flow/RUN, Flow/RUN/step or Flow/RUN/step/TASK (RUN may be `latest`).
    #[arg(value_name = "PATH")]
    path: String,
    #[command(flatten)]
    common: CommonArgs,
}

/// The JSON of every `show`: what was shown (`flow`, `run`, `step`, `task`) and its
/// fields.
#[derive(Serialize)]
struct Shown<T: Serialize> {
    kind: &'static str,
    #[serde(flatten)]
    details: T,
}

pub(crate) fn run(args: &Args, _terminal: &Terminal) -> Outcome {
    let client = match runs::open(&args.common) {
        Ok(client) => client,
        Err(outcome) => return outcome,
    };
    match show(&client, &args.path, args.common.format) {
        Ok((stdout, stderr)) => Outcome {
            stdout,
            stderr,
            status: Status::Ok,
        },
        Err(err) => runs::failure(&err),
    }
}

/// The rendering (stdout, stderr) of what `path` names.
fn show(client: &Client, path: &str, format: Format) -> Result<(String, String), ClientError> {
    let spec = PathSpec::parse(path)?;
    match client.resolve(&spec)? {
        Target::Flow(flow) => show_flow(client, &flow, format),
        Target::Run(flow, run_id) => {
            let details = client.run_details(&flow, &run_id)?;
            Ok(match format {
                Format::Json => (json("run", &details), String::new()),
                Format::Text => (run_text(&details), String::new()),
            })
        }
        Target::Step(flow, run_id, step) => {
            let details = client.step_details(&flow, &run_id, &step)?;
            Ok(match format {
                Format::Json => (json("step", &details), String::new()),
                Format::Text => (step_text(&details), String::new()),
            })
        }
        Target::Task(task) => show_task(client, &task, format),
    }
}

fn json<T: Serialize>(kind: &'static str, details: T) -> String {
    runs::to_json(&Shown { kind, details })
}

fn show_flow(
    client: &Client,
    flow: &FlowName,
    format: Format,
) -> Result<(String, String), ClientError> {
    let listing = client.list_runs(Some(flow))?;
    let stderr: String = listing
        .unreadable
        .iter()
        .map(|err| format!("warning: skipped a run: {err}\n"))
        .collect();
    let stdout = match format {
        Format::Json => json(
            "flow",
            serde_json::json!({ "flow": flow.as_str(), "runs": listing.runs }),
        ),
        Format::Text => format!(
            "flow {flow}: {}\n\n{}",
            plural(listing.runs.len(), "run"),
            runs::text_table(&listing.runs)
        ),
    };
    Ok((stdout, stderr))
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `label  value` lines under a heading, labels padded to one width.
fn facts(heading: &str, rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = format!("{heading}\n");
    for (key, value) in rows {
        text.push_str(&format!("  {key:width$}  {value}\n"));
    }
    text
}

fn time_or_dash(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{} UTC", human_utc(ms)))
}

fn duration_or_dash(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), human_duration)
}

fn step_status_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::NotStarted => "not started",
        StepStatus::Running => "running",
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
    }
}

fn task_status_word(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Running => "running",
        TaskStatus::Succeeded => "succeeded",
        TaskStatus::Failed => "failed",
    }
}

fn attempt_status_word(status: AttemptStatus) -> &'static str {
    match status {
        AttemptStatus::Running => "running",
        AttemptStatus::Succeeded => "succeeded",
        AttemptStatus::Failed => "failed",
        AttemptStatus::TimedOut => "timed out",
        AttemptStatus::Killed => "killed",
    }
}

fn run_text(details: &RunDetails) -> String {
    let run = &details.summary;
    let mut rows = vec![
        ("status", status_word(run.status).to_owned()),
        ("started", time_or_dash(Some(run.started_at))),
        ("finished", time_or_dash(run.finished_at)),
        ("duration", duration_or_dash(run.duration_ms)),
        (
            "tasks",
            format!(
                "{} ({} failed)",
                details.task_count, details.failed_task_count
            ),
        ),
    ];
    if let Some(origin) = &run.origin_run_id {
        rows.push(("resumes", format!("{}/{origin}", run.flow)));
    }
    let mut text = facts(&format!("run {}", run.pathspec), &rows);
    text.push('\n');
    if details.parameters.is_empty() {
        text.push_str("parameters: none\n");
    } else {
        let params: Vec<(&str, String)> = details
            .parameters
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_string()))
            .collect();
        text.push_str(&facts("parameters", &params));
    }
    text.push('\n');
    let rows: Vec<Vec<String>> = details
        .step_details
        .iter()
        .map(|step| {
            vec![
                step.name.clone(),
                step_status_word(step.status).to_owned(),
                step.tasks.to_string(),
                step.failed.to_string(),
                duration_or_dash(step.duration_ms),
            ]
        })
        .collect();
    text.push_str(&table(
        &["STEP", "STATUS", "TASKS", "FAILED", "DURATION"],
        &rows,
    ));
    text
}

fn step_text(details: &StepDetails) -> String {
    let rows = [
        ("status", step_status_word(details.status).to_owned()),
        ("run", status_word(details.run_status).to_owned()),
        ("started", time_or_dash(details.started_at)),
        ("finished", time_or_dash(details.finished_at)),
        ("duration", duration_or_dash(details.duration_ms)),
    ];
    let mut text = facts(&format!("step {}", details.pathspec), &rows);
    text.push('\n');
    let rows: Vec<Vec<String>> = details
        .tasks
        .iter()
        .map(|task| {
            vec![
                task.pathspec.clone(),
                task_status_word(task.status).to_owned(),
                task.attempts.to_string(),
                task.started_at.map_or_else(|| "-".to_owned(), human_utc),
                duration_or_dash(task.duration_ms),
            ]
        })
        .collect();
    text.push_str(&table(
        &["TASK", "STATUS", "ATTEMPTS", "STARTED (UTC)", "DURATION"],
        &rows,
    ));
    text
}

/// A preview of each artifact's value (by position in `details.artifacts`), and
/// warnings for blobs that could not be read.
fn previews(
    client: &Client,
    task: &TaskPath,
    details: &TaskDetails,
) -> (Vec<Option<String>>, String) {
    let mut warnings = String::new();
    let mut out = Vec::with_capacity(details.artifacts.len());
    for info in &details.artifacts {
        if info.size > PREVIEW_MAX_BYTES {
            out.push(None);
            continue;
        }
        let entry = match client.artifact_entry(task, &info.name) {
            Ok(entry) => entry,
            Err(err) => {
                warnings.push_str(&format!("warning: {err}\n"));
                out.push(None);
                continue;
            }
        };
        match client.store().get(&task.flow, &entry.hash) {
            Ok(bytes) => out.push(artifact::preview(&entry, &bytes, PREVIEW_WIDTH)),
            Err(err) => {
                warnings.push_str(&format!(
                    "warning: artifact `{}` cannot be read: {err}\n",
                    info.name
                ));
                out.push(None);
            }
        }
    }
    (out, warnings)
}

fn show_task(
    client: &Client,
    task: &TaskPath,
    format: Format,
) -> Result<(String, String), ClientError> {
    let details = client.task_details(task)?;
    let (previews, warnings) = previews(client, task, &details);
    let stdout = match format {
        Format::Json => {
            let mut value = serde_json::to_value(&details).unwrap_or(Value::Null);
            if let Some(artifacts) = value.get_mut("artifacts").and_then(Value::as_array_mut) {
                for (artifact, preview) in artifacts.iter_mut().zip(&previews) {
                    if let Some(object) = artifact.as_object_mut() {
                        object.insert(
                            "preview".to_owned(),
                            preview.clone().map_or(Value::Null, Value::String),
                        );
                    }
                }
            }
            json("task", value)
        }
        Format::Text => task_text(&details, &previews),
    };
    Ok((stdout, warnings))
}

fn task_text(details: &TaskDetails, previews: &[Option<String>]) -> String {
    let mut rows = vec![
        ("status", task_status_word(details.status).to_owned()),
        ("started", time_or_dash(details.started_at)),
        ("finished", time_or_dash(details.finished_at)),
        ("duration", duration_or_dash(details.duration_ms)),
    ];
    if !details.parents.is_empty() {
        rows.push(("parents", details.parents.join(", ")));
    }
    if let Some(origin) = &details.origin {
        rows.push(("reused from", origin.clone()));
    }
    let mut text = facts(&format!("task {}", details.pathspec), &rows);
    text.push('\n');
    if details.attempts.is_empty() {
        text.push_str("attempts: none yet\n");
    } else {
        let rows: Vec<Vec<String>> = details
            .attempts
            .iter()
            .map(|attempt| {
                let ending = match (attempt.exit_code, attempt.signal) {
                    (Some(code), _) => format!("exit {code}"),
                    (None, Some(signal)) => format!("signal {signal}"),
                    (None, None) => "-".to_owned(),
                };
                vec![
                    attempt.attempt.to_string(),
                    attempt_status_word(attempt.status).to_owned(),
                    human_utc(attempt.started_at),
                    duration_or_dash(attempt.duration_ms),
                    ending,
                ]
            })
            .collect();
        text.push_str(&table(
            &["ATTEMPT", "STATUS", "STARTED (UTC)", "DURATION", "ENDED"],
            &rows,
        ));
    }
    text.push('\n');
    // Names starting with `_` are the runtime's own bookkeeping (the foreach stack,
    // the task's outcome record); JSON lists them, the table keeps to the user's.
    let mut internal = 0;
    let mut rows = Vec::new();
    for (info, preview) in details.artifacts.iter().zip(previews) {
        if info.name.starts_with('_') {
            internal += 1;
            continue;
        }
        rows.push(vec![
            info.name.clone(),
            info.type_name.clone(),
            human_size(info.size),
            preview.clone().unwrap_or_default(),
        ]);
    }
    if rows.is_empty() {
        text.push_str("artifacts: none\n");
    } else {
        text.push_str(&table(&["ARTIFACT", "TYPE", "SIZE", "VALUE"], &rows));
    }
    if internal > 0 {
        text.push_str(&format!(
            "({} of the runtime's own, named `_…`, not shown; --format json lists them)\n",
            plural(internal, "artifact")
        ));
    }
    text
}
