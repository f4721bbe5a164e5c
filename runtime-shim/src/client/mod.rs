//! The read side of the datastore: resolving paths such as `TrainFlow/latest/train/3`,
//! listing runs, and describing a run, a step or a task. `flowc runs`, `flowc show`,
//! `flowc logs` and `flowc artifact get` are thin renderings of what this returns.
//!
//! Listing is built to stay fast as runs pile up: it reads each run's `run.json` once
//! and nothing else. The detailed views read the metadata of what they describe.
//! Errors never stop at "not found": they say what does exist, and the nearest name.

mod details;
mod error;
mod path;
mod summary;
pub mod time;

use std::path::Path;

use crate::store::{
    ArtifactEntry, ArtifactName, FlowName, LocalStore, MetadataStore, RunId, StepName, StoreError,
    TaskMeta, TaskPath, TaskStatus,
};

pub use details::{
    ArtifactInfo, AttemptInfo, RunDetails, StepDetails, StepOverview, StepStatus, TaskDetails,
    TaskOverview,
};
pub use error::{ClientError, Missing};
pub use path::{InvalidPath, PathSpec, RunSelector, LATEST};
pub use summary::RunSummary;

use summary::SummaryRead;

/// Shorthand for results of the read API.
pub type ClientResult<T> = Result<T, ClientError>;

/// What a resolved path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Flow(FlowName),
    Run(FlowName, RunId),
    Step(FlowName, RunId, StepName),
    Task(TaskPath),
}

/// Runs found by a listing, newest first, and the runs whose `run.json` could not be
/// read (each error names its file).
#[derive(Debug)]
pub struct RunListing {
    pub runs: Vec<RunSummary>,
    pub unreadable: Vec<StoreError>,
}

/// Read access to one datastore.
#[derive(Debug, Clone)]
pub struct Client {
    store: LocalStore,
}

impl Client {
    /// Opens the datastore at `root`. A directory that is not a datastore fails with the
    /// store's own message; nothing is ever created.
    pub fn open(root: &Path) -> ClientResult<Client> {
        Ok(Client {
            store: LocalStore::open(root)?,
        })
    }

    pub fn store(&self) -> &LocalStore {
        &self.store
    }

    fn within_store(&self) -> String {
        format!("datastore `{}`", self.store.root().display())
    }

    /// Fails unless the flow has a directory in the store, listing the flows that do.
    fn require_flow(&self, flow: &FlowName) -> ClientResult<()> {
        if self.store.layout().flow_dir(flow).is_dir() {
            return Ok(());
        }
        Err(ClientError::Unknown {
            what: Missing::Flow,
            name: flow.to_string(),
            within: self.within_store(),
            existing: self
                .store
                .list_flows()?
                .iter()
                .map(ToString::to_string)
                .collect(),
        })
    }

    /// Runs of `flow` (every flow when `None`), newest first.
    pub fn list_runs(&self, flow: Option<&FlowName>) -> ClientResult<RunListing> {
        let flows = match flow {
            Some(flow) => {
                self.require_flow(flow)?;
                vec![flow.clone()]
            }
            None => self.store.list_flows()?,
        };
        let mut runs = Vec::new();
        let mut unreadable = Vec::new();
        for flow in &flows {
            let (found, problems) = summary::read_flow_summaries(self.store.layout(), flow)?;
            runs.extend(found);
            unreadable.extend(problems);
        }
        runs.sort_by(summary::newest_first);
        Ok(RunListing { runs, unreadable })
    }

    /// The run a selector names. `latest` is the newest readable run by creation time.
    pub fn resolve_run(&self, flow: &FlowName, run: &RunSelector) -> ClientResult<RunSummary> {
        self.require_flow(flow)?;
        match run {
            RunSelector::Latest => {
                let listing = self.list_runs(Some(flow))?;
                listing.runs.into_iter().next().ok_or_else(|| {
                    // Runs that exist but cannot be read are the better explanation.
                    match listing.unreadable.into_iter().next() {
                        Some(err) => ClientError::Store(err),
                        None => ClientError::Unknown {
                            what: Missing::Run,
                            name: LATEST.to_owned(),
                            within: format!("flow {flow}"),
                            existing: Vec::new(),
                        },
                    }
                })
            }
            RunSelector::Id(id) => match summary::read_summary(self.store.layout(), flow, id)? {
                SummaryRead::Found(summary) => Ok(summary),
                SummaryRead::Absent => {
                    let listing = self.list_runs(Some(flow))?;
                    Err(ClientError::Unknown {
                        what: Missing::Run,
                        name: id.to_string(),
                        within: format!("flow {flow}"),
                        existing: listing.runs.iter().map(|r| r.run_id.to_string()).collect(),
                    })
                }
            },
        }
    }

    /// Resolves every part of `spec`, checking each exists.
    pub fn resolve(&self, spec: &PathSpec) -> ClientResult<Target> {
        let flow = spec.flow.clone();
        let Some(run) = &spec.run else {
            self.require_flow(&flow)?;
            return Ok(Target::Flow(flow));
        };
        let run_id = self.resolve_run(&flow, run)?.run_id;
        let Some(step) = &spec.step else {
            return Ok(Target::Run(flow, run_id));
        };
        let steps = self.store.list_steps(&flow, &run_id)?;
        if !steps.contains(step) {
            return Err(ClientError::Unknown {
                what: Missing::Step,
                name: step.to_string(),
                within: format!("run {flow}/{run_id}"),
                existing: steps
                    .iter()
                    .filter(|s| !s.as_str().starts_with('_'))
                    .map(ToString::to_string)
                    .collect(),
            });
        }
        let Some(task_id) = &spec.task else {
            return Ok(Target::Step(flow, run_id, step.clone()));
        };
        let tasks = self.store.list_tasks(&flow, &run_id, step)?;
        if !tasks.contains(task_id) {
            return Err(ClientError::Unknown {
                what: Missing::Task,
                name: task_id.to_string(),
                within: format!("step {flow}/{run_id}/{step}"),
                existing: tasks.iter().map(ToString::to_string).collect(),
            });
        }
        Ok(Target::Task(TaskPath::new(
            flow,
            run_id,
            step.clone(),
            task_id.clone(),
        )))
    }

    /// Resolves `spec` to one task: a task path, or a step path whose step has exactly
    /// one task (`TrainFlow/latest/end`).
    pub fn resolve_task(&self, spec: &PathSpec) -> ClientResult<TaskPath> {
        match self.resolve(spec)? {
            Target::Task(task) => Ok(task),
            Target::Step(flow, run_id, step) => {
                let tasks = self.store.list_tasks(&flow, &run_id, &step)?;
                match tasks.as_slice() {
                    [only] => Ok(TaskPath::new(flow, run_id, step, only.clone())),
                    _ => Err(ClientError::NotOneTask {
                        step: format!("{flow}/{run_id}/{step}"),
                        tasks: tasks
                            .iter()
                            .map(|t| format!("{flow}/{run_id}/{step}/{t}"))
                            .collect(),
                    }),
                }
            }
            Target::Run(flow, run_id) => Err(ClientError::InvalidPath(InvalidPath {
                path: spec.to_string(),
                reason: format!("it names run {flow}/{run_id}, not a task"),
            })),
            Target::Flow(flow) => Err(ClientError::InvalidPath(InvalidPath {
                path: spec.to_string(),
                reason: format!("it names flow {flow}, not a task"),
            })),
        }
    }

    /// A run with its parameters and per-step task counts. Reads every `task.json` of
    /// the run.
    pub fn run_details(&self, flow: &FlowName, run_id: &RunId) -> ClientResult<RunDetails> {
        let summary = self.resolve_run(flow, &RunSelector::Id(run_id.clone()))?;
        let meta = self.store.read_run(flow, run_id)?;
        let stored = self.store.list_steps(flow, run_id)?;
        // Graph order first, then steps the graph does not know (a run of an older
        // version of the flow, or one made without its IR), by name. Of those, names
        // starting with `_` are the runtime's own (`_parameters`), as in Metaflow.
        let mut names: Vec<String> = summary.steps.clone();
        for step in &stored {
            if !step.as_str().starts_with('_') && !names.iter().any(|n| n == step.as_str()) {
                names.push(step.to_string());
            }
        }
        let mut step_details = Vec::with_capacity(names.len());
        let mut task_count = 0;
        let mut failed_task_count = 0;
        for name in &names {
            let tasks = match StepName::new(name) {
                Ok(step) if stored.contains(&step) => self.step_tasks(flow, run_id, &step)?,
                _ => Vec::new(),
            };
            let overview = details::step_overview(name, &tasks);
            task_count += overview.tasks;
            failed_task_count += overview.failed;
            step_details.push(overview);
        }
        Ok(RunDetails {
            summary,
            parameters: meta.parameters,
            code_package: meta.code_package,
            step_details,
            task_count,
            failed_task_count,
        })
    }

    /// The metadata of every task of a step, in the store's task order.
    fn step_tasks(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        step: &StepName,
    ) -> ClientResult<Vec<TaskMeta>> {
        let ids = self.store.list_tasks(flow, run_id, step)?;
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let path = TaskPath::new(flow.clone(), run_id.clone(), step.clone(), id);
            tasks.push(self.store.read_task(&path)?);
        }
        Ok(tasks)
    }

    /// A step with its tasks.
    pub fn step_details(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        step: &StepName,
    ) -> ClientResult<StepDetails> {
        let run = self.resolve_run(flow, &RunSelector::Id(run_id.clone()))?;
        let tasks = self.step_tasks(flow, run_id, step)?;
        let overview = details::step_overview(step.as_str(), &tasks);
        Ok(StepDetails {
            flow: flow.to_string(),
            run_id: run_id.to_string(),
            step: step.to_string(),
            pathspec: format!("{flow}/{run_id}/{step}"),
            run_status: run.status,
            status: overview.status,
            started_at: overview.started_at,
            finished_at: overview.finished_at,
            duration_ms: overview.duration_ms,
            tasks: tasks.iter().map(details::task_overview).collect(),
        })
    }

    /// A task's metadata (`task.json`).
    pub fn read_task(&self, task: &TaskPath) -> ClientResult<TaskMeta> {
        Ok(self.store.read_task(task)?)
    }

    /// A task's artifacts, by name. A task that has not succeeded may have no manifest
    /// (it failed before storing any): that reads as no artifacts. A succeeded task
    /// always has one, so its absence is an error naming the file.
    pub fn artifacts(&self, meta: &TaskMeta) -> ClientResult<Vec<(ArtifactName, ArtifactEntry)>> {
        match self.store.read_manifest(&meta.path) {
            Ok(manifest) => Ok(manifest.artifacts.into_iter().collect()),
            Err(StoreError::NotFound { .. }) if meta.status != TaskStatus::Succeeded => {
                Ok(Vec::new())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// A task with its attempts and artifacts.
    pub fn task_details(&self, task: &TaskPath) -> ClientResult<TaskDetails> {
        let meta = self.read_task(task)?;
        let artifacts = self
            .artifacts(&meta)?
            .into_iter()
            .map(|(name, entry)| ArtifactInfo {
                name: name.to_string(),
                type_name: entry.type_name,
                size: entry.size,
                encoding: entry.encoding,
                hash: entry.hash.to_hex(),
            })
            .collect();
        let (started_at, finished_at, duration_ms) = details::task_timing(&meta);
        let flow = &task.flow;
        let run_id = &task.run_id;
        Ok(TaskDetails {
            flow: flow.to_string(),
            run_id: run_id.to_string(),
            step: task.step.to_string(),
            task_id: task.task_id.to_string(),
            pathspec: task.to_string(),
            status: meta.status,
            started_at,
            finished_at,
            duration_ms,
            parents: meta
                .parents
                .iter()
                .map(|p| format!("{flow}/{run_id}/{}/{}", p.step, p.task_id))
                .collect(),
            origin: meta
                .origin
                .as_ref()
                .map(|o| format!("{flow}/{}/{}/{}", o.run_id, task.step, o.task_id)),
            attempts: meta.attempts.iter().map(AttemptInfo::from).collect(),
            artifacts,
        })
    }

    /// One artifact's manifest entry; an unknown name lists the task's artifacts.
    pub fn artifact_entry(&self, task: &TaskPath, name: &str) -> ClientResult<ArtifactEntry> {
        let meta = self.read_task(task)?;
        let artifacts = self.artifacts(&meta)?;
        artifacts
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, entry)| entry.clone())
            .ok_or_else(|| ClientError::Unknown {
                what: Missing::Artifact,
                name: name.to_owned(),
                within: format!("task {task}"),
                existing: artifacts.iter().map(|(n, _)| n.to_string()).collect(),
            })
    }
}

#[cfg(test)]
mod tests;
