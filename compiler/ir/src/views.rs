//! Typed, normalised readings of the decorators: what the backends and the runtime use.
//!
//! Units are fixed here once: memory and disk in MB, times in seconds, CPU in cores.
//! Values the static evaluator could not fold stay visible as `Value::Deferred` where
//! a field can carry one; numeric fields that were deferred are `None` and the frontend
//! reports them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Value;

/// Everything a step's decorators say, normalised.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepSpec {
    /// Effective resources: the larger of `@resources` and the compute decorator's own
    /// values, as Metaflow does, with Metaflow's defaults (1 CPU, 4096 MB) applied.
    pub resources: Resources,
    pub retry: Option<Retry>,
    pub catch: Option<Catch>,
    pub timeout: Option<Timeout>,
    pub compute: Compute,
    pub environment: Environment,
    /// `@pypi` / `@conda` on the step, merged over the flow's `@pypi_base` / `@conda_base`.
    pub python_env: Option<PythonEnv>,
    pub secrets: Secrets,
    pub cards: Vec<Card>,
    /// `@parallel`: the step runs as a gang of tasks.
    pub parallel: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu: f64,
    pub memory_mb: u64,
    pub gpu: Option<u64>,
    pub disk_mb: Option<u64>,
    pub shared_memory_mb: Option<u64>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu: 1.0,
            memory_mb: 4096,
            gpu: None,
            disk_mb: None,
            shared_memory_mb: None,
        }
    }
}

/// `@retry(times=3, minutes_between_retries=2)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    pub times: u32,
    pub minutes_between: u32,
}

/// `@catch(var=None, print_exception=True)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catch {
    pub var: Option<String>,
    pub print_exception: bool,
}

/// `@timeout(seconds=, minutes=, hours=)`, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    pub seconds: u64,
}

/// Where the step runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Compute {
    #[default]
    Local,
    Batch(BatchCompute),
    Kubernetes(KubernetesCompute),
}

/// `@batch(...)`: the fields backends use; every argument stays on the `Decorator` too.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BatchCompute {
    pub image: Option<String>,
    pub queue: Option<String>,
    pub iam_role: Option<String>,
    pub execution_role: Option<String>,
    pub max_swap: Option<u64>,
    pub swappiness: Option<u64>,
    pub use_tmpfs: bool,
    pub tmpfs_size_mb: Option<u64>,
    pub tmpfs_path: Option<String>,
    pub inferentia: u64,
    pub trainium: u64,
    pub efa: u64,
    pub host_volumes: Vec<String>,
    pub efs_volumes: Vec<String>,
    pub ephemeral_storage_gb: Option<u64>,
    pub log_driver: Option<String>,
    pub log_options: Vec<String>,
    pub privileged: bool,
    pub aws_batch_tags: BTreeMap<String, String>,
}

/// `@kubernetes(...)`: the fields backends use; every argument stays on the `Decorator` too.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KubernetesCompute {
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    pub image_pull_secrets: Vec<String>,
    pub service_account: Option<String>,
    pub namespace: Option<String>,
    pub secrets: Vec<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub gpu_vendor: String,
    pub use_tmpfs: bool,
    pub tmpfs_size_mb: Option<u64>,
    pub tmpfs_path: Option<String>,
    pub persistent_volume_claims: BTreeMap<String, String>,
    pub port: Option<u16>,
    pub compute_pool: Option<String>,
    pub qos: String,
}

/// A Kubernetes toleration, as `@kubernetes(tolerations=[{...}])` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Toleration {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub value: Option<String>,
    pub effect: Option<String>,
    pub toleration_seconds: Option<i64>,
}

/// `@environment(vars={...})`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Environment {
    pub vars: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PythonEnvManager {
    Pypi,
    Conda,
}

/// `@pypi` / `@conda` (step) over `@pypi_base` / `@conda_base` (flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonEnv {
    pub manager: PythonEnvManager,
    pub packages: BTreeMap<String, String>,
    pub python: Option<String>,
    pub disabled: bool,
}

/// `@secrets(sources=[...], role=None)`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Secrets {
    pub sources: Vec<String>,
    pub role: Option<String>,
}

/// `@card(type="default", id=None, options={}, timeout=45)`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    #[serde(rename = "type")]
    pub ty: String,
    pub id: Option<String>,
    pub options: BTreeMap<String, Value>,
    pub timeout_seconds: u64,
}

/// Everything the flow-level decorators say, normalised.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlowSpecView {
    pub schedule: Option<Schedule>,
    pub triggers: Vec<Trigger>,
    pub trigger_on_finish: Vec<TriggerOnFinish>,
    pub project: Option<Project>,
    /// `@pypi_base` / `@conda_base`.
    pub python_env: Option<PythonEnv>,
    /// Flow-wide `@secrets` applied to every step is expressed on the steps; this is
    /// the flow decorator as written.
    pub secrets: Option<Secrets>,
}

/// `@schedule(cron=None, hourly=False, daily=True, weekly=False, timezone=None)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "expression", rename_all = "snake_case")]
pub enum ScheduleKind {
    /// An AWS-style cron expression as written (5 or 6 fields).
    Cron(String),
    Hourly,
    Daily,
    Weekly,
}

/// `@trigger(event=...)` / `@trigger(events=[...])`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trigger {
    pub events: Vec<EventTrigger>,
    pub options: BTreeMap<String, Value>,
}

/// One event that starts the flow; `parameters` maps flow parameter → event field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventTrigger {
    pub name: String,
    pub parameters: BTreeMap<String, String>,
}

/// `@trigger_on_finish(flow=...)` / `(flows=[...])`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TriggerOnFinish {
    pub flows: Vec<FlowRef>,
    pub options: BTreeMap<String, Value>,
}

/// A flow named by `@trigger_on_finish`: `"project.branch.Flow"` or a dict.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlowRef {
    pub name: String,
    pub project: Option<String>,
    pub branch: Option<String>,
}

/// `@project(name=..., branch=None, production=False)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    pub branch: Option<String>,
    pub production: bool,
}
