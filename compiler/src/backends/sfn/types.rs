//! The Amazon States Language, AWS Batch and EventBridge Scheduler documents flowc
//! writes, as typed serde structs.
//!
//! Only the fields flowc sets are modelled. Optional fields are skipped when empty,
//! maps are `BTreeMap` (so a state machine's states are sorted by name), and the same
//! flow always serialises to the same bytes. ASL fields are PascalCase; Batch and
//! Scheduler requests use the API's own casing (camelCase and PascalCase).

use std::collections::BTreeMap;

use flowc_ir::PlainJson;
use serde::{Serialize, Serializer};

/// A state machine, or the `ItemProcessor` / branch of a Map or Parallel state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateMachine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

/// A Map state's `ItemProcessor`: a machine with its processing mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemProcessor {
    pub processor_config: ProcessorConfig,
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessorConfig {
    /// `INLINE` or `DISTRIBUTED`.
    pub mode: String,
    /// `STANDARD` for a distributed Map: its children wait on Batch jobs (`.sync`),
    /// which Express workflows cannot do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_type: Option<String>,
}

/// Where a state puts its result: `null` (keep the input as it is) or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultPath {
    Discard,
    At(String),
}

impl Serialize for ResultPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ResultPath::Discard => serializer.serialize_none(),
            ResultPath::At(path) => serializer.serialize_str(path),
        }
    }
}

/// One state, tagged by `Type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "Type")]
pub enum State {
    Task(Box<TaskState>),
    Pass(PassState),
    Choice(ChoiceState),
    Parallel(ParallelState),
    Map(Box<MapState>),
    Fail(FailState),
}

/// How a state ends: the next state, or the end of its machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Transition {
    Next(String),
    End(bool),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub resource: String,
    pub parameters: TaskParameters,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_selector: Option<BTreeMap<String, String>>,
    pub result_path: ResultPath,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<Retrier>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catcher>,
    #[serde(flatten)]
    pub transition: Transition,
}

/// The request a Task state sends: a Batch job, or an S3 object read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TaskParameters {
    SubmitJob(SubmitJob),
    GetObject(GetObject),
}

/// `batch:submitJob.sync` parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubmitJob {
    pub job_name: String,
    pub job_queue: String,
    pub job_definition: String,
    pub container_overrides: ContainerOverrides,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerOverrides {
    /// The whole command, as an intrinsic (`States.Array(...)`) over the state's input.
    #[serde(rename = "Command.$")]
    pub command: String,
}

/// `s3:getObject` parameters (also an `ItemReader`'s).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GetObject {
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// The key, as an intrinsic (`States.Format(...)`) over the state's input.
    #[serde(rename = "Key.$")]
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub result_path: String,
    pub next: String,
}

/// A Pass state: a fixed `Result`, or `Parameters` computed from the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PassState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, PayloadValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<BTreeMap<String, PlainJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_path: Option<ResultPath>,
    /// What of the state's output goes on (the whole output when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_path: Option<String>,
    #[serde(flatten)]
    pub transition: Transition,
}

/// A payload template value: a constant, or (under a key ending in `.$`) a path or
/// intrinsic. The key carries the distinction; the value is what is written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PayloadValue {
    Text(String),
    Int(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChoiceState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub choices: Vec<ChoiceRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChoiceRule {
    pub variable: String,
    pub string_equals: String,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParallelState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub branches: Vec<StateMachine>,
    /// Picks the branches' last tasks out of their outputs, for a join whose parents
    /// are only known at run time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_selector: Option<BTreeMap<String, String>>,
    pub result_path: ResultPath,
    #[serde(flatten)]
    pub transition: Transition,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MapState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub item_processor: ItemProcessor,
    /// Inline Map: where the item list is in the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_path: Option<String>,
    /// Distributed Map: the S3 object holding the item list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_reader: Option<ItemReader>,
    pub item_selector: BTreeMap<String, String>,
    pub max_concurrency: u32,
    /// Distributed Map: where the children's results go, instead of the state's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_writer: Option<ResultWriter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// As [`ParallelState::result_selector`], over the iterations' outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_selector: Option<BTreeMap<String, String>>,
    pub result_path: ResultPath,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catcher>,
    #[serde(flatten)]
    pub transition: Transition,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemReader {
    pub resource: String,
    pub reader_config: ReaderConfig,
    pub parameters: GetObject,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReaderConfig {
    pub input_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultWriter {
    pub resource: String,
    pub parameters: PutObjectPrefix,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PutObjectPrefix {
    #[serde(rename = "Bucket")]
    pub bucket: String,
    #[serde(rename = "Prefix.$")]
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub error: String,
    pub cause: String,
}

/// An AWS Batch `RegisterJobDefinition` request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDefinition {
    pub job_definition_name: String,
    /// Always `container`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Defaults of the `Ref::name` placeholders of the command.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    pub container_properties: ContainerProperties,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<JobTimeout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    pub platform_capabilities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProperties {
    pub image: String,
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    pub resource_requirements: Vec<ResourceRequirement>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fargate_platform_configuration: Option<FargatePlatformConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRequirement {
    /// `VCPU`, `MEMORY` or `GPU`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValuePair {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    /// MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_memory_size: Option<u64>,
    /// MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_swap: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<Tmpfs>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tmpfs {
    pub container_path: String,
    /// MiB.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    pub log_driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralStorage {
    pub size_in_gi_b: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FargatePlatformConfiguration {
    pub platform_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    pub assign_public_ip: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTimeout {
    pub attempt_duration_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    pub attempts: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evaluate_on_exit: Vec<EvaluateOnExit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateOnExit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_reason: Option<String>,
    /// `RETRY` or `EXIT`.
    pub action: String,
}

/// An EventBridge Scheduler `CreateSchedule` request starting the state machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Schedule {
    pub name: String,
    pub description: String,
    pub schedule_expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression_timezone: Option<String>,
    pub flexible_time_window: FlexibleTimeWindow,
    pub state: String,
    pub target: ScheduleTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlexibleTimeWindow {
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleTarget {
    /// The state machine's ARN.
    pub arn: String,
    /// The role the scheduler assumes to call `states:StartExecution`.
    pub role_arn: String,
    /// The execution input: `{}`, so every parameter takes its default.
    pub input: String,
}
