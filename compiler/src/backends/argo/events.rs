//! `@trigger` / `@trigger_on_finish` → an Argo Events `Sensor` that submits the
//! WorkflowTemplate when every named event has arrived, copying event fields into the
//! flow's parameters.
//!
//! Events reach the sensor through one webhook EventSource (`ArgoConfig::event_source`,
//! event `flowc`), as JSON `{"payload": {"name": <event>, <field>: <value>, ...}}`; the
//! dependencies filter on the name. A finished flow is the event
//! `<project>.<branch>.<Flow>.finished`, or `<Flow>.finished` outside a project.

use std::collections::BTreeSet;

use flowc_ir::Flow;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::step::encoded_default;
use super::types::{
    ArgoWorkflowTrigger, Arguments, ArtifactLocation, DataFilter, EventDependency, EventFilters,
    Parameter, Sensor, SensorPodTemplate, SensorSpec, TemplateRef, Trigger, TriggerParameter,
    TriggerParameterSource, TriggerTemplate, Workflow, WorkflowRefSpec, WORKFLOWS_API,
};
use super::{ArgoConfig, Identity};

/// The event name inside the webhook EventSource.
pub(crate) const WEBHOOK_EVENT: &str = "flowc";
const EVENTS_API: &str = "argoproj.io/v1alpha1";

/// One event the sensor waits for, and the parameters it sets (flow parameter → field).
struct Wanted {
    event: String,
    parameters: Vec<(String, String)>,
}

pub(crate) fn sensor(flow: &Flow, config: &ArgoConfig, ids: &Identity) -> Option<Sensor> {
    let mut wanted = Vec::new();
    for trigger in &flow.spec.triggers {
        for event in &trigger.events {
            wanted.push(Wanted {
                event: event.name.clone(),
                parameters: event
                    .parameters
                    .iter()
                    .map(|(param, field)| (param.clone(), field.clone()))
                    .collect(),
            });
        }
    }
    for on_finish in &flow.spec.trigger_on_finish {
        for upstream in &on_finish.flows {
            let qualified = match (&upstream.project, &upstream.branch, &ids.project) {
                (Some(project), Some(branch), _) => {
                    format!("{project}.{branch}.{}", upstream.name)
                }
                (Some(project), None, Some((_, branch))) => {
                    format!("{project}.{branch}.{}", upstream.name)
                }
                (None, _, Some((project, branch))) => {
                    format!("{project}.{branch}.{}", upstream.name)
                }
                _ => upstream.name.clone(),
            };
            wanted.push(Wanted {
                event: format!("{qualified}.finished"),
                parameters: Vec::new(),
            });
        }
    }
    if wanted.is_empty() {
        return None;
    }
    let mut used = BTreeSet::new();
    let mut dependencies = Vec::new();
    let mut workflow_parameters: Vec<Parameter> = Vec::new();
    let mut trigger_parameters = Vec::new();
    for want in &wanted {
        // Dependency names appear in `conditions`, a boolean expression where `-` would
        // read as minus: they keep to letters, digits and `_`.
        let base = dependency_name(&want.event);
        let mut dep = base.clone();
        let mut n = 2;
        while !used.insert(dep.clone()) {
            dep = format!("{base}_{n}");
            n += 1;
        }
        dependencies.push(EventDependency {
            name: dep.clone(),
            event_source_name: config.event_source.clone(),
            event_name: WEBHOOK_EVENT.to_owned(),
            filters: Some(EventFilters {
                data: vec![DataFilter {
                    path: "body.payload.name".to_owned(),
                    ty: "string".to_owned(),
                    value: vec![want.event.clone()],
                }],
            }),
        });
        for (param, field) in &want.parameters {
            let Some(flow_param) = flow
                .parameters
                .iter()
                .find(|p| &p.name == param || &p.attr == param)
            else {
                continue;
            };
            let index = match workflow_parameters
                .iter()
                .position(|p| p.name == flow_param.name)
            {
                Some(index) => index,
                None => {
                    workflow_parameters.push(Parameter::value(
                        &flow_param.name,
                        encoded_default(flow_param).unwrap_or_default(),
                    ));
                    workflow_parameters.len() - 1
                }
            };
            trigger_parameters.push(TriggerParameter {
                src: TriggerParameterSource {
                    dependency_name: dep.clone(),
                    data_key: format!("body.payload.{field}"),
                    value: encoded_default(flow_param),
                },
                dest: format!("spec.arguments.parameters.{index}.value"),
            });
        }
    }
    let conditions = (dependencies.len() > 1).then(|| {
        dependencies
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(" && ")
    });
    let workflow = Workflow {
        api_version: WORKFLOWS_API.to_owned(),
        kind: "Workflow".to_owned(),
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ids.template_name)),
            namespace: config.namespace.clone(),
            labels: Some(ids.labels.clone()),
            ..ObjectMeta::default()
        },
        spec: WorkflowRefSpec {
            workflow_template_ref: TemplateRef {
                name: ids.template_name.clone(),
            },
            arguments: (!workflow_parameters.is_empty()).then_some(Arguments {
                parameters: workflow_parameters,
            }),
        },
    };
    Some(Sensor {
        api_version: EVENTS_API.to_owned(),
        kind: "Sensor".to_owned(),
        metadata: ids.metadata(&ids.template_name, config),
        spec: SensorSpec {
            dependencies,
            triggers: vec![Trigger {
                template: TriggerTemplate {
                    name: ids.template_name.clone(),
                    conditions,
                    argo_workflow: ArgoWorkflowTrigger {
                        operation: "submit".to_owned(),
                        source: ArtifactLocation { resource: workflow },
                        parameters: trigger_parameters,
                    },
                },
            }],
            template: config
                .service_account
                .as_ref()
                .map(|account| SensorPodTemplate {
                    service_account_name: account.clone(),
                }),
        },
    })
}

/// `on_<event>` with every character but ASCII letters and digits turned into `_`.
fn dependency_name(event: &str) -> String {
    let mut name = "on_".to_owned();
    for ch in event.chars() {
        if ch.is_ascii_alphanumeric() {
            name.push(ch.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_end_matches('_').to_owned()
}
