//! The Argo Workflows and Argo Events objects flowc writes, as typed serde structs.
//!
//! Only the fields flowc sets are modelled. Every optional field is skipped when empty,
//! maps are `BTreeMap`, and field order follows the Argo documentation, so the same flow
//! always serialises to the same bytes. Kubernetes parts are `k8s-openapi` types.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Toleration, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

pub(crate) const WORKFLOWS_API: &str = "argoproj.io/v1alpha1";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplate {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: WorkflowSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    pub entrypoint: String,
    /// The template run when the workflow ends, whatever its outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Labels and annotations of the Workflow objects submitted from the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_metadata: Option<Metadata>,
    pub templates: Vec<Template>,
}

/// Labels and annotations of a pod or a submitted workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Metadata {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Arguments {
    pub parameters: Vec<Parameter>,
}

/// A parameter: of the workflow, of a template's inputs or outputs, or a task argument.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

impl Parameter {
    pub(crate) fn named(name: &str) -> Self {
        Parameter {
            name: name.to_owned(),
            ..Parameter::default()
        }
    }

    pub(crate) fn value(name: &str, value: impl Into<String>) -> Self {
        Parameter {
            name: name.to_owned(),
            value: Some(value.into()),
            ..Parameter::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ValueFrom {
    /// A file the container wrote (container templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// An expression over the tasks (DAG templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// The value when the file is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Inputs {
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Outputs {
    pub parameters: Vec<Parameter>,
}

/// One template: a DAG or a container, never both.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag: Option<DagTemplate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DagTemplate {
    pub tasks: Vec<DagTask>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTask {
    pub name: String,
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Argo's dependency expression (`a.Succeeded && b.Succeeded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_param: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    pub limit: u32,
    pub retry_policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Backoff {
    /// A Go duration (`120s`).
    pub duration: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflow {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: CronWorkflowSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflowSpec {
    /// A list (not the older `schedule` string), which both the v3.7 and v4 schemas take.
    pub schedules: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub concurrency_policy: String,
    pub workflow_spec: WorkflowRefSpec,
}

/// A workflow spec that only points at a template.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRefSpec {
    pub workflow_template_ref: TemplateRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateRef {
    pub name: String,
}

/// A Workflow object, as a Sensor trigger creates it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: WorkflowRefSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sensor {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: SensorSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorSpec {
    pub dependencies: Vec<EventDependency>,
    pub triggers: Vec<Trigger>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<SensorPodTemplate>,
}

/// The sensor pod's settings: the account that may create workflows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SensorPodTemplate {
    pub service_account_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDependency {
    pub name: String,
    pub event_source_name: String,
    pub event_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<EventFilters>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventFilters {
    pub data: Vec<DataFilter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataFilter {
    pub path: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub value: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    pub template: TriggerTemplate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerTemplate {
    pub name: String,
    /// Which dependencies must be met: `a && b`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
    pub argo_workflow: ArgoWorkflowTrigger,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgoWorkflowTrigger {
    pub operation: String,
    pub source: ArtifactLocation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<TriggerParameter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactLocation {
    pub resource: Workflow,
}

/// Copies one value of an event into the workflow object the trigger creates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerParameter {
    pub src: TriggerParameterSource,
    /// A path into the workflow object (`spec.arguments.parameters.0.value`).
    pub dest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerParameterSource {
    pub dependency_name: String,
    pub data_key: String,
    /// The value when the event does not carry the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
