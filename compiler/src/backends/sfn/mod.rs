//! The `sfn` and `batch` targets: lower a checked flow to an AWS Step Functions state
//! machine (Amazon States Language), one AWS Batch job definition per step
//! (`RegisterJobDefinition` requests), and an EventBridge Scheduler schedule for
//! `@schedule`.
//!
//! Every step is a `Task` state submitting a Batch job (`batch:submitJob.sync`) whose
//! command runs `flowc-shim task` on the flow's code package. The run id is the
//! execution's name; task ids follow the task's place in the graph as on Argo (`t`,
//! `t-3` for split 3 of a foreach, `t-3-1` nested, `t.r2` for round 2 of a
//! self-looping switch), so a foreach join names every parent with one range
//! (`RUN/STEP/t-:N`). What a task decides at run time (a foreach's items, a switch's
//! choice) the shim leaves in the datastore (`task --write-outputs`), where the Map's
//! `ItemReader` and `s3:getObject` states read it. See `docs/sfn.md`.

mod jobdef;
mod names;
mod schedule;
mod states;
#[cfg(test)]
mod tests;
pub mod types;

use std::collections::BTreeMap;

use flowc_ir::{Flow, Span};
use serde::Serialize;

pub use crate::backends::argo::CodePackageRef;
use crate::diagnostics::{codes, Diagnostic};
use names::{batch_name, MAX_BATCH_NAME};
use types::{JobDefinition, Schedule, StateMachine};

/// Step Functions refuses definitions larger than this.
const MAX_DEFINITION_BYTES: usize = 1024 * 1024;

/// Where the Batch jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Platform {
    #[default]
    Ec2,
    Fargate,
}

/// How a foreach fans out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapMode {
    /// A distributed Map reading the item list from S3: any width, each split a
    /// child execution.
    #[default]
    Distributed,
    /// An inline Map over the item list read into the state: for small fan-outs (the
    /// list and the execution history stay within the state's limits).
    Inline,
}

/// Everything the documents depend on beyond the flow. The CLI fills it from flags,
/// environment variables and `flowc.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfnConfig {
    /// The image of steps without `@batch(image=...)`: Python 3 and `flowc-shim`.
    pub image: String,
    /// Where `flowc-shim` is in the image.
    pub shim_path: String,
    /// The job queue of steps without `@batch(queue=...)`; the state machine's only.
    pub job_queue: String,
    /// The jobs' IAM role (ARN), unless `@batch(iam_role=...)` names one.
    pub job_role: Option<String>,
    /// The role ECS uses to pull the image and write logs (ARN); Fargate needs one.
    pub execution_role: Option<String>,
    /// The datastore root every task reads and writes: `s3://bucket/prefix`.
    pub datastore_root: String,
    /// Region and account of the state machine, for the schedule's target ARN.
    pub region: Option<String>,
    pub account: Option<String>,
    /// The role EventBridge Scheduler assumes to start executions (ARN).
    pub schedule_role: Option<String>,
    pub platform: Platform,
    pub map_mode: MapMode,
    /// The most splits of one foreach running at once; `None` leaves it to AWS.
    pub max_concurrency: Option<u32>,
    /// The expected number of splits of foreach steps, by step name, where the user
    /// knows it: an inline Map wider than it can run is then reported.
    pub foreach_widths: BTreeMap<String, u64>,
    pub code_package: CodePackageRef,
    /// The user whose `@project` branch is used when the decorator names none.
    pub user: Option<String>,
    /// The flowc version, recorded in the state machine's comment.
    pub flowc_version: String,
}

/// Inline Maps run at most this many iterations at once, whatever `MaxConcurrency`.
pub const INLINE_MAP_CONCURRENCY: u32 = 40;

/// Everything `--target sfn` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SfnDocuments {
    /// `<flow>`, or `<project>-<branch>-<flow>` under `@project`: the name to create the
    /// state machine under, and the prefix of every job definition.
    pub name: String,
    pub state_machine: StateMachine,
    pub job_definitions: Vec<JobDefinition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// Lowers a checked flow to its state machine, job definitions and schedule. Pure:
/// the same flow and config give the same documents.
pub fn sfn(flow: &Flow, config: &SfnConfig) -> Result<SfnDocuments, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let ids = Identity::new(flow, config);
    let job_definitions = jobdef::job_definitions(flow, config, &ids, &mut diagnostics);
    let state_machine = states::state_machine(flow, config, &ids, &mut diagnostics);
    let schedule = flow
        .spec
        .schedule
        .as_ref()
        .and_then(|s| schedule::schedule(flow, config, &ids, s, &mut diagnostics));
    // A definition that cannot be serialised is a bug; the CLI reports it on writing.
    let size = crate::emit::json(&state_machine).map_or(0, |text| text.len());
    if size > MAX_DEFINITION_BYTES {
        diagnostics.push(
            Diagnostic::new(
                &codes::DEFINITION_TOO_LARGE,
                flow.name_span,
                format!(
                    "the state machine of `{}` is {size} bytes, over the {MAX_DEFINITION_BYTES} bytes Step Functions accepts",
                    flow.name
                ),
            )
            .with_help("move large parameter defaults into files the flow reads at run time, or split the flow"),
        );
    }
    finish(
        diagnostics,
        SfnDocuments {
            name: ids.name,
            state_machine,
            job_definitions,
            schedule,
        },
    )
}

/// Everything `--target batch` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchDocuments {
    /// As [`SfnDocuments::name`].
    pub name: String,
    /// The run's init first, then one per step in source order.
    pub job_definitions: Vec<JobDefinition>,
}

/// The job definitions alone (`--target batch`): the same ones `sfn` writes.
pub fn batch(flow: &Flow, config: &SfnConfig) -> Result<BatchDocuments, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let ids = Identity::new(flow, config);
    let job_definitions = jobdef::job_definitions(flow, config, &ids, &mut diagnostics);
    finish(
        diagnostics,
        BatchDocuments {
            name: ids.name,
            job_definitions,
        },
    )
}

fn finish<T>(mut diagnostics: Vec<Diagnostic>, value: T) -> Result<T, Vec<Diagnostic>> {
    if diagnostics.is_empty() {
        Ok(value)
    } else {
        crate::diagnostics::sort(&mut diagnostics);
        Err(diagnostics)
    }
}

/// The names every document of one flow shares, and where the datastore is.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) bucket: String,
    /// The key prefix of the datastore root, without slashes at either end.
    pub(crate) prefix: String,
}

impl Identity {
    fn new(flow: &Flow, config: &SfnConfig) -> Self {
        let full = match &flow.spec.project {
            Some(project) => {
                let branch = match (&project.branch, project.production) {
                    (Some(branch), true) => format!("prod.{branch}"),
                    (None, true) => "prod".to_owned(),
                    (Some(branch), false) => format!("test.{branch}"),
                    (None, false) => {
                        format!("user.{}", config.user.as_deref().unwrap_or("unknown"))
                    }
                };
                format!("{}.{branch}.{}", project.name, flow.name)
            }
            None => flow.name.clone(),
        };
        let (bucket, prefix) = split_s3_root(&config.datastore_root);
        Identity {
            name: batch_name(&full),
            bucket,
            prefix,
        }
    }

    /// The job definition (and job) name of a step: `<name>-<step>`.
    pub(crate) fn job_name(&self, step: &str) -> String {
        batch_name(&format!("{}-{step}", self.name))
    }

    /// The S3 key of a datastore path under the root, made of literal and run-time
    /// parts (`<prefix>/<Flow>/runs/<run>/<step>/<task>/...`).
    pub(crate) fn key_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

/// `s3://bucket/some/prefix` as (`bucket`, `some/prefix`). The CLI accepts only such
/// roots for these targets; anything else is kept whole as the bucket so the
/// documents still show what was given.
pub fn split_s3_root(root: &str) -> (String, String) {
    let rest = root.strip_prefix("s3://").unwrap_or(root);
    match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket.to_owned(), prefix.trim_matches('/').to_owned()),
        None => (rest.to_owned(), String::new()),
    }
}

/// The span of the flow decorator `name`, or the class name when it is not written.
pub(crate) fn decorator_span(flow: &Flow, name: &str) -> Span {
    flow.flow_decorators
        .iter()
        .find(|d| d.name == name)
        .map_or(flow.name_span, |d| d.span)
}

/// A job definition name over Batch's limit, reported on the step (or the class).
pub(crate) fn check_job_name(name: &str, span: Span, diagnostics: &mut Vec<Diagnostic>) {
    if name.len() > MAX_BATCH_NAME {
        diagnostics.push(
            Diagnostic::new(
                &codes::JOB_NAME_TOO_LONG,
                span,
                format!(
                    "the job definition name `{name}` is {} characters, over the {MAX_BATCH_NAME} AWS Batch accepts",
                    name.len()
                ),
            )
            .with_help("shorten the step name, the flow class name, or the @project name and branch"),
        );
    }
}
