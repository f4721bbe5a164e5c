//! The `argo` target: lowers a checked flow to an Argo Workflows `WorkflowTemplate`,
//! plus a `CronWorkflow` for `@schedule` and an Argo Events `Sensor` for `@trigger` /
//! `@trigger_on_finish`.
//!
//! Every container runs `flowc-shim` (copied into the pod by an init container from
//! the shim image, so any Python image works) on the flow's code package. Run ids are
//! the workflow's name; task ids are derived from the task's place in the graph (`t`,
//! `t-3` for split 3 of a foreach, `t-3-1` nested, `t.r2` for round 2 of a self-loop),
//! so a join names all of its foreach parents with one short range
//! (`RUN/STEP/t-:N`) whatever the width of the fan-out. See `docs/argo.md` for the
//! contract with the shim.

mod events;
mod graph;
mod names;
mod schedule;
mod step;
#[cfg(test)]
mod tests;
pub mod types;

use std::collections::BTreeMap;

use flowc_ir::{Flow, Span};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::diagnostics::{codes, Diagnostic};
use names::{dns_label, label_value, MAX_LABEL};
use types::{CronWorkflow, Sensor, WorkflowTemplate};

/// Kubernetes refuses objects larger than this (etcd's request limit).
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Argo keeps Workflow objects, arguments included, under the same limit; a default
/// this large belongs in a file or an artifact.
const MAX_DEFAULT_BYTES: usize = 256 * 1024;
/// Argo appends an 11-character timestamp to a CronWorkflow's name for each workflow.
const MAX_CRON_NAME: usize = 52;

/// Prefix for labels and annotations flowc sets.
pub(crate) const LABEL_PREFIX: &str = "flowc.dev";

/// The code package the containers run: built and stored by the CLI, named by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePackageRef {
    /// Hex SHA-256 of the package, the name of its blob in the datastore.
    pub hash: String,
    /// The flow file's path inside the package.
    pub entry: String,
}

/// Everything the Argo documents depend on beyond the flow. The CLI fills it from
/// flags, environment variables and `flowc.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoConfig {
    /// The image of steps without `@kubernetes(image=...)`: any image with Python 3.
    pub image: String,
    /// The namespace of every document; none leaves it to `kubectl apply`.
    pub namespace: Option<String>,
    /// The pods' service account, unless a step's `@kubernetes` names one.
    pub service_account: Option<String>,
    /// The datastore root every task reads and writes (`s3://bucket/prefix`).
    pub datastore_root: String,
    /// The image holding `flowc-shim` at [`SHIM_IN_IMAGE`].
    pub shim_image: String,
    /// Labels added to every document and pod.
    pub labels: BTreeMap<String, String>,
    pub code_package: CodePackageRef,
    /// The user whose `@project` branch is used when the decorator names none.
    pub user: Option<String>,
    /// The Argo Events EventSource (a webhook) that carries flowc's events.
    pub event_source: String,
    /// Where a finished run posts its event; `None` for the service Argo Events makes
    /// for the webhook EventSource [`event_source`](Self::event_source) (see
    /// [`default_webhook_url`]).
    pub event_webhook_url: Option<String>,
    /// The flowc version, recorded in an annotation.
    pub flowc_version: String,
}

/// The URL of the webhook EventSource `event_source` inside the cluster: the Service
/// Argo Events creates for it, on the port and endpoint `docs/argo.md` asks for.
pub fn default_webhook_url(event_source: &str) -> String {
    format!(
        "http://{event_source}-eventsource-svc:12000/{}",
        events::WEBHOOK_EVENT
    )
}

/// Where the shim image keeps the binary.
pub const SHIM_IN_IMAGE: &str = "/usr/local/bin/flowc-shim";

/// One manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Document {
    WorkflowTemplate(WorkflowTemplate),
    CronWorkflow(CronWorkflow),
    Sensor(Sensor),
}

impl Document {
    pub fn name(&self) -> &str {
        let meta = match self {
            Document::WorkflowTemplate(d) => &d.metadata,
            Document::CronWorkflow(d) => &d.metadata,
            Document::Sensor(d) => &d.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }

    /// The file `flowc compile -o DIR` writes it to.
    pub fn file_name(&self) -> String {
        let kind = match self {
            Document::WorkflowTemplate(_) => "workflow-template",
            Document::CronWorkflow(_) => "cron-workflow",
            Document::Sensor(_) => "sensor",
        };
        format!("{}.{kind}.yaml", self.name())
    }
}

/// A document and its YAML, or the emitter's error.
pub type Emitted = (Document, Result<String, String>);

/// Lowers a checked flow (one without errors) to its Argo documents: the
/// WorkflowTemplate first, then the CronWorkflow and the Sensor when the flow has
/// `@schedule` or triggers. Pure: the same flow and config give the same documents.
pub fn argo(flow: &Flow, config: &ArgoConfig) -> Result<Vec<Document>, Vec<Diagnostic>> {
    argo_yaml(flow, config).map(|documents| documents.into_iter().map(|(d, _)| d).collect())
}

/// [`argo`], each document with its YAML ([`crate::emit::yaml`]). The size check
/// writes every document anyway, so a caller that then writes them out need not
/// serialise them a second time; for a 100-step flow that is a tenth of the compile.
/// The `Err` of a document's text is the emitter's (a bug in the document types).
pub fn argo_yaml(flow: &Flow, config: &ArgoConfig) -> Result<Vec<Emitted>, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let ids = Identity::new(flow, config);
    let name = ids.template_name.clone();
    if name.len() > MAX_LABEL {
        diagnostics.push(name_too_long(
            flow,
            &ids,
            &name,
            MAX_LABEL,
            &codes::ARGO_NAME_TOO_LONG,
        ));
    }
    let template = step::workflow_template(flow, config, &ids, &mut diagnostics);
    let mut documents = vec![Document::WorkflowTemplate(template)];
    if let Some(schedule) = &flow.spec.schedule {
        if name.len() > MAX_CRON_NAME {
            diagnostics.push(name_too_long(
                flow,
                &ids,
                &name,
                MAX_CRON_NAME,
                &codes::ARGO_CRON_NAME_TOO_LONG,
            ));
        }
        let span = decorator_span(flow, "schedule");
        if let Some(cron) = schedule::cron_workflow(config, &ids, schedule, span, &mut diagnostics)
        {
            documents.push(Document::CronWorkflow(cron));
        }
    }
    if let Some(sensor) = events::sensor(flow, config, &ids) {
        documents.push(Document::Sensor(sensor));
    }
    let mut emitted = Vec::with_capacity(documents.len());
    for document in documents {
        // A document that cannot be serialised is a bug, not a user error; the
        // emitter's error goes to the caller with the document.
        let text = crate::emit::yaml(&document);
        let size = text.as_ref().map_or(0, String::len);
        if size > MAX_DOCUMENT_BYTES {
            diagnostics.push(
                Diagnostic::new(
                    &codes::ARGO_DOCUMENT_TOO_LARGE,
                    flow.name_span,
                    format!(
                        "the {} `{}` is {} KiB, over the {} KiB Kubernetes accepts",
                        document.file_name().split('.').nth(1).unwrap_or("document"),
                        document.name(),
                        size.div_ceil(1024),
                        MAX_DOCUMENT_BYTES / 1024
                    ),
                )
                .with_help("move large parameter defaults and step settings into files the flow reads at run time"),
            );
        }
        emitted.push((document, text));
    }
    if diagnostics.is_empty() {
        Ok(emitted)
    } else {
        crate::diagnostics::sort(&mut diagnostics);
        Err(diagnostics)
    }
}

/// The names and labels every document of one flow shares.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// `<flow>`, or `<project>-<branch>-<flow>` under `@project`, as a DNS-1123 label.
    /// May exceed 63 characters: `argo` reports that rather than cutting a name the
    /// user types in `argo submit`.
    pub(crate) template_name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    /// `@project`'s name and branch, for the Sensor's event names.
    pub(crate) project: Option<(String, String)>,
}

impl Identity {
    /// The event a finished run of this flow publishes, which `@trigger_on_finish`
    /// sensors wait for: `<project>.<branch>.<Flow>.finished`, or `<Flow>.finished`.
    pub(crate) fn finish_event(&self, flow: &Flow) -> String {
        match &self.project {
            Some((project, branch)) => format!("{project}.{branch}.{}.finished", flow.name),
            None => format!("{}.finished", flow.name),
        }
    }

    fn new(flow: &Flow, config: &ArgoConfig) -> Self {
        let project = flow.spec.project.as_ref().map(|project| {
            let branch = match (&project.branch, project.production) {
                (Some(branch), true) => format!("prod.{branch}"),
                (None, true) => "prod".to_owned(),
                (Some(branch), false) => format!("test.{branch}"),
                (None, false) => format!("user.{}", config.user.as_deref().unwrap_or("unknown")),
            };
            (project.name.clone(), branch)
        });
        let full = match &project {
            Some((name, branch)) => format!("{name}.{branch}.{}", flow.name),
            None => flow.name.clone(),
        };
        let template_name = dns_label(&full, usize::MAX);
        let mut labels = config.labels.clone();
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            "flowc".to_owned(),
        );
        labels.insert(format!("{LABEL_PREFIX}/flow"), label_value(&flow.name));
        let mut annotations = BTreeMap::new();
        annotations.insert(format!("{LABEL_PREFIX}/flow-name"), flow.name.clone());
        annotations.insert(
            format!("{LABEL_PREFIX}/flowc-version"),
            config.flowc_version.clone(),
        );
        annotations.insert(
            format!("{LABEL_PREFIX}/source-sha256"),
            flow.source.sha256.clone(),
        );
        annotations.insert(
            format!("{LABEL_PREFIX}/code-package"),
            config.code_package.hash.clone(),
        );
        if let Some((name, branch)) = &project {
            labels.insert(format!("{LABEL_PREFIX}/project"), label_value(name));
            labels.insert(format!("{LABEL_PREFIX}/branch"), label_value(branch));
            annotations.insert(format!("{LABEL_PREFIX}/project-name"), name.clone());
            annotations.insert(format!("{LABEL_PREFIX}/branch-name"), branch.clone());
        }
        Identity {
            template_name,
            labels,
            annotations,
            project,
        }
    }

    /// Metadata of a top-level document.
    pub(crate) fn metadata(&self, name: &str, config: &ArgoConfig) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: config.namespace.clone(),
            labels: Some(self.labels.clone()),
            annotations: Some(self.annotations.clone()),
            ..ObjectMeta::default()
        }
    }
}

fn name_too_long(
    flow: &Flow,
    ids: &Identity,
    name: &str,
    max: usize,
    code: &crate::diagnostics::Code,
) -> Diagnostic {
    let (span, help) = match &ids.project {
        Some(_) => (
            decorator_span(flow, "project"),
            "shorten the project or branch name, or the flow class name",
        ),
        None => (flow.name_span, "shorten the flow class name"),
    };
    let what = if max == MAX_CRON_NAME {
        "CronWorkflow"
    } else {
        "WorkflowTemplate"
    };
    Diagnostic::new(
        code,
        span,
        format!(
            "the {what} name `{name}` is {} characters, over the {max} Kubernetes and Argo accept",
            name.len()
        ),
    )
    .with_help(help)
}

/// The span of the flow decorator `name`, or the class name when it is not written.
pub(crate) fn decorator_span(flow: &Flow, name: &str) -> Span {
    flow.flow_decorators
        .iter()
        .find(|d| d.name == name)
        .map_or(flow.name_span, |d| d.span)
}
