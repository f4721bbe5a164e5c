//! Container templates (one per step, plus the run's `flowc-shim init`) and the
//! WorkflowTemplate that holds them with the DAGs.

use std::collections::BTreeMap;

use flowc_ir::{Compute, Flow, Parameter as FlowParameter, ParameterType, Step, Value};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, ResourceRequirements, SecretEnvSource,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::graph::{
    self, StepRole, INIT_TEMPLATE, MAIN_TEMPLATE, O_FOREACH_ITEMS, O_NUM_SPLITS, O_SWITCH_STEP,
    O_TASK_ID, P_INPUT_PATHS, P_SPLIT_INDEX, P_TASK_ID,
};
use super::names::{is_dns_subdomain, is_label_value, label_value};
use super::types::{
    Arguments, Backoff, DagTask, DagTemplate, Inputs, Metadata, Outputs, Parameter, RetryStrategy,
    Template, ValueFrom, WorkflowSpec, WorkflowTemplate, WORKFLOWS_API,
};
use super::{ArgoConfig, Identity, LABEL_PREFIX, MAX_DEFAULT_BYTES, SHIM_IN_IMAGE};
use crate::diagnostics::{codes, Diagnostic};

/// Where the init container puts `flowc-shim`, in a volume every container mounts.
const SHIM_DIR: &str = "/flowc/bin";
const SHIM_VOLUME: &str = "flowc-bin";
const SHM_VOLUME: &str = "dshm";
/// The directory `flowc-shim task --argo-outputs DIR` writes its output files to.
pub(crate) const OUTPUT_DIR: &str = "/tmp/flowc/outputs";
/// Output parameter → the file the shim writes it to, under [`OUTPUT_DIR`]:
/// the JSON list of split indexes `[0, 1, ...]` of a foreach, their number, the step a
/// switch chose, and the task's id.
pub(crate) const OUTPUT_FILES: [(&str, &str); 4] = [
    (O_FOREACH_ITEMS, "foreach_items.json"),
    (O_NUM_SPLITS, "num_splits"),
    (O_SWITCH_STEP, "switch_step"),
    (O_TASK_ID, "task_id"),
];
/// A parameter value meaning "not given: use the flow's default", for defaults only
/// the run can evaluate.
pub(crate) const DEFAULT_MARKER: &str = "flowc:default";
/// Prefix of a base64-encoded parameter value. Argo substitutes `{{...}}` in
/// parameter values, so a default holding `{{` travels encoded.
pub(crate) const BASE64_PREFIX: &str = "flowc:base64:";

pub(crate) fn workflow_template(
    flow: &Flow,
    config: &ArgoConfig,
    ids: &Identity,
    diagnostics: &mut Vec<Diagnostic>,
) -> WorkflowTemplate {
    let dags = graph::dags(flow, diagnostics);
    let mut templates = dags.templates;
    templates.extend(exit_templates(flow, config, ids));
    templates.push(init_template(flow, config));
    for step in &flow.steps {
        let role = dags.roles.get(&step.name).cloned().unwrap_or_default();
        templates.push(step_template(flow, step, &role, config, diagnostics));
    }
    let parameters: Vec<Parameter> = flow
        .parameters
        .iter()
        .map(|p| workflow_parameter(p, diagnostics))
        .collect();
    WorkflowTemplate {
        api_version: WORKFLOWS_API.to_owned(),
        kind: "WorkflowTemplate".to_owned(),
        metadata: ids.metadata(&ids.template_name, config),
        spec: WorkflowSpec {
            entrypoint: MAIN_TEMPLATE.to_owned(),
            on_exit: Some(EXIT_TEMPLATE.to_owned()),
            arguments: (!parameters.is_empty()).then_some(Arguments { parameters }),
            service_account_name: config.service_account.clone(),
            workflow_metadata: Some(Metadata {
                labels: ids.labels.clone(),
                annotations: BTreeMap::new(),
            }),
            templates,
        },
    }
}

/// A flow parameter as a workflow argument. The value is the text `flowc-shim init
/// --param` reads: strings as they are, other values as JSON.
fn workflow_parameter(param: &FlowParameter, diagnostics: &mut Vec<Diagnostic>) -> Parameter {
    let value = encoded_default(param);
    if let Some(text) = &value {
        if text.len() > MAX_DEFAULT_BYTES {
            diagnostics.push(
                Diagnostic::new(
                    &codes::ARGO_DEFAULT_TOO_LARGE,
                    param.span,
                    format!(
                        "the default of parameter `{}` is {} bytes, over the {MAX_DEFAULT_BYTES} a workflow argument may hold",
                        param.name,
                        text.len()
                    ),
                )
                .with_help("read large values from a file (IncludeFile) or the datastore"),
            );
        }
    }
    Parameter {
        name: param.name.clone(),
        value,
        description: param.help.clone(),
        value_from: None,
    }
}

/// A parameter's default as a workflow argument's value; `None` for a required
/// parameter without default, which the submitter must give.
pub(crate) fn encoded_default(param: &FlowParameter) -> Option<String> {
    let text = match &param.default {
        None if param.required => return None,
        None | Some(Value::Deferred { .. }) => return Some(DEFAULT_MARKER.to_owned()),
        Some(value) => parameter_text(value, param.ty),
    };
    Some(encode(text))
}

/// [`encoded_default`]'s treatment of a string default, for tests.
#[cfg(test)]
pub(crate) fn encoded_default_text_for_tests(text: &str) -> String {
    encode(text.to_owned())
}

fn encode(text: String) -> String {
    if text.contains("{{") || text.starts_with("flowc:") {
        format!("{BASE64_PREFIX}{}", base64(text.as_bytes()))
    } else {
        text
    }
}

fn parameter_text(value: &Value, ty: ParameterType) -> String {
    match (value, ty) {
        (Value::Str(text), _) => text.clone(),
        _ => value
            .to_plain_json()
            .and_then(|json| serde_json::to_string(&json).ok())
            .unwrap_or_default(),
    }
}

/// Standard base64 with padding (RFC 4648), for [`BASE64_PREFIX`] values.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The shim's own arguments every task and the init share.
fn shim_common(flow: &Flow, config: &ArgoConfig) -> Vec<String> {
    vec![
        "--code-package".to_owned(),
        config.code_package.hash.clone(),
        "--package-entry".to_owned(),
        config.code_package.entry.clone(),
        "--flow".to_owned(),
        flow.name.clone(),
        "--run-id".to_owned(),
        "{{workflow.name}}".to_owned(),
        "--datastore-root".to_owned(),
        config.datastore_root.clone(),
    ]
}

/// The init container that copies the shim into the pod, and the volume it fills.
fn shim_init(config: &ArgoConfig) -> (Container, Volume) {
    let container = Container {
        name: "flowc-shim".to_owned(),
        image: Some(config.shim_image.clone()),
        command: Some(vec![
            "cp".to_owned(),
            SHIM_IN_IMAGE.to_owned(),
            format!("{SHIM_DIR}/flowc-shim"),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: SHIM_VOLUME.to_owned(),
            mount_path: SHIM_DIR.to_owned(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let volume = Volume {
        name: SHIM_VOLUME.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    (container, volume)
}

fn shim_mount() -> VolumeMount {
    VolumeMount {
        name: SHIM_VOLUME.to_owned(),
        mount_path: SHIM_DIR.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The exit handler: when the run succeeded, it posts the flow's finish event to the
/// webhook EventSource, for the sensors of `@trigger_on_finish` flows.
pub(crate) const EXIT_TEMPLATE: &str = "flowc-exit";
const PUBLISH_TEMPLATE: &str = "flowc-publish-finished";
/// Posts `argv[2]` (JSON) to `argv[1]`. Publishing is best effort: a cluster without
/// Argo Events must not see every run fail in its exit handler, so an error is logged
/// and the exit status stays 0.
const PUBLISH_SCRIPT: &str = "\
import sys, urllib.request
try:
    request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={'Content-Type': 'application/json'})
    urllib.request.urlopen(request, timeout=30).read()
    print('published', sys.argv[2])
except Exception as exc:
    print('flowc: could not publish the finish event to %s: %s' % (sys.argv[1], exc), file=sys.stderr)
";

fn exit_templates(flow: &Flow, config: &ArgoConfig, ids: &Identity) -> [Template; 2] {
    let url = config
        .event_webhook_url
        .clone()
        .unwrap_or_else(|| super::default_webhook_url(&config.event_source));
    // The body the sensors filter on (`body.payload.name`); the run id lets a
    // downstream flow find the run that finished.
    let payload = serde_json::json!({
        "payload": {
            "name": ids.finish_event(flow),
            "flow_name": flow.name,
            "run_id": "{{workflow.name}}",
        }
    });
    let exit = Template {
        name: EXIT_TEMPLATE.to_owned(),
        dag: Some(DagTemplate {
            tasks: vec![DagTask {
                name: "publish-finished".to_owned(),
                template: PUBLISH_TEMPLATE.to_owned(),
                when: Some("'{{workflow.status}}' == 'Succeeded'".to_owned()),
                ..DagTask::default()
            }],
        }),
        ..Template::default()
    };
    let mut labels = BTreeMap::new();
    labels.insert(format!("{LABEL_PREFIX}/step"), "_finished".to_owned());
    let publish = Template {
        name: PUBLISH_TEMPLATE.to_owned(),
        metadata: Some(Metadata {
            labels,
            annotations: BTreeMap::new(),
        }),
        container: Some(Container {
            name: "main".to_owned(),
            image: Some(config.image.clone()),
            command: Some(vec!["python3".to_owned()]),
            args: Some(vec![
                "-c".to_owned(),
                PUBLISH_SCRIPT.to_owned(),
                url,
                payload.to_string(),
            ]),
            ..Container::default()
        }),
        ..Template::default()
    };
    [exit, publish]
}

/// `flowc-shim init`: stores the run's parameters before `start`.
fn init_template(flow: &Flow, config: &ArgoConfig) -> Template {
    let mut args = vec!["init".to_owned()];
    args.extend(shim_common(flow, config));
    for param in &flow.parameters {
        args.push("--param".to_owned());
        args.push(format!(
            "{}={{{{workflow.parameters.{}}}}}",
            param.name, param.name
        ));
    }
    let (init, volume) = shim_init(config);
    let mut labels = BTreeMap::new();
    labels.insert(format!("{LABEL_PREFIX}/step"), "_parameters".to_owned());
    Template {
        name: INIT_TEMPLATE.to_owned(),
        metadata: Some(Metadata {
            labels,
            annotations: BTreeMap::new(),
        }),
        init_containers: vec![init],
        container: Some(Container {
            name: "main".to_owned(),
            image: Some(config.image.clone()),
            command: Some(vec![format!("{SHIM_DIR}/flowc-shim")]),
            args: Some(args),
            volume_mounts: Some(vec![shim_mount()]),
            ..Container::default()
        }),
        volumes: vec![volume],
        ..Template::default()
    }
}

/// The container template of one step.
fn step_template(
    flow: &Flow,
    step: &Step,
    role: &StepRole,
    config: &ArgoConfig,
    diagnostics: &mut Vec<Diagnostic>,
) -> Template {
    let spec = &step.spec;
    let kubernetes = match &spec.compute {
        Compute::Kubernetes(k) => Some(k),
        _ => None,
    };
    let mut args = vec!["task".to_owned()];
    args.extend(shim_common(flow, config));
    args.extend([
        "--step".to_owned(),
        step.name.clone(),
        "--task-id".to_owned(),
        format!("{{{{inputs.parameters.{P_TASK_ID}}}}}"),
    ]);
    let mut inputs = vec![Parameter::named(P_TASK_ID)];
    if !role.is_start {
        inputs.push(Parameter::named(P_INPUT_PATHS));
        args.push("--input-paths".to_owned());
        args.push(format!("{{{{inputs.parameters.{P_INPUT_PATHS}}}}}"));
    }
    if role.is_foreach_body {
        // Given to the first step of a foreach body only; a default keeps the template
        // callable from the loop template, which passes none.
        inputs.push(Parameter::named(P_SPLIT_INDEX));
        args.push("--split-index".to_owned());
        args.push(format!("{{{{inputs.parameters.{P_SPLIT_INDEX}}}}}"));
    }
    if let Some(retry) = &spec.retry {
        args.extend([
            "--retry-count".to_owned(),
            "{{retries}}".to_owned(),
            "--max-user-code-retries".to_owned(),
            retry.times.to_string(),
        ]);
    }
    let mut outputs = Vec::new();
    let mut wanted: Vec<&str> = Vec::new();
    if role.is_foreach {
        wanted.extend([O_FOREACH_ITEMS, O_NUM_SPLITS]);
    }
    if role.is_switch {
        wanted.push(O_SWITCH_STEP);
    }
    if role.is_self_loop {
        wanted.push(O_TASK_ID);
    }
    if !wanted.is_empty() {
        args.extend(["--argo-outputs".to_owned(), OUTPUT_DIR.to_owned()]);
        for (name, file) in OUTPUT_FILES {
            if wanted.contains(&name) {
                outputs.push(Parameter {
                    value_from: Some(ValueFrom {
                        path: Some(format!("{OUTPUT_DIR}/{file}")),
                        ..ValueFrom::default()
                    }),
                    ..Parameter::named(name)
                });
            }
        }
    }

    let env: Vec<EnvVar> = spec
        .environment
        .vars
        .iter()
        .filter_map(|(key, value)| {
            let text = env_text(value)?;
            Some(EnvVar {
                name: key.clone(),
                value: Some(text),
                ..EnvVar::default()
            })
        })
        .collect();
    let mut secrets: Vec<&String> = spec.secrets.sources.iter().collect();
    if let Some(k) = kubernetes {
        secrets.extend(k.secrets.iter());
    }
    secrets.sort();
    secrets.dedup();
    let mut env_from = Vec::new();
    for secret in secrets {
        if !is_dns_subdomain(secret) {
            let from = if spec.secrets.sources.contains(secret) {
                "secrets"
            } else {
                "kubernetes"
            };
            diagnostics.push(
                Diagnostic::new(
                    &codes::ARGO_INVALID_NAME,
                    step_decorator_span(step, from),
                    format!(
                        "secret `{secret}` of step `{}` is not a Kubernetes Secret name",
                        step.name
                    ),
                )
                .with_help("name a Kubernetes Secret: lower-case letters, digits, `-` and `.`"),
            );
            continue;
        }
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: secret.clone(),
                ..SecretEnvSource::default()
            }),
            ..EnvFromSource::default()
        });
    }

    let resources = &spec.resources;
    let mut requests = BTreeMap::new();
    requests.insert("cpu".to_owned(), Quantity(cpu_quantity(resources.cpu)));
    requests.insert(
        "memory".to_owned(),
        Quantity(format!("{}Mi", resources.memory_mb)),
    );
    if let Some(disk) = resources.disk_mb {
        requests.insert(
            "ephemeral-storage".to_owned(),
            Quantity(format!("{disk}Mi")),
        );
    }
    let mut limits = BTreeMap::new();
    if let Some(gpu) = resources.gpu.filter(|g| *g > 0) {
        let vendor = kubernetes
            .map(|k| k.gpu_vendor.to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "nvidia".to_owned());
        limits.insert(format!("{vendor}.com/gpu"), Quantity(gpu.to_string()));
    }

    let (init, shim_volume) = shim_init(config);
    let mut volumes = vec![shim_volume];
    let mut mounts = vec![shim_mount()];
    if let Some(shm) = resources.shared_memory_mb {
        volumes.push(Volume {
            name: SHM_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                size_limit: Some(Quantity(format!("{shm}Mi"))),
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: SHM_VOLUME.to_owned(),
            mount_path: "/dev/shm".to_owned(),
            ..VolumeMount::default()
        });
    }

    let mut labels = BTreeMap::new();
    labels.insert(format!("{LABEL_PREFIX}/step"), label_value(&step.name));
    let mut annotations = BTreeMap::new();
    if let Some(k) = kubernetes {
        for (key, value) in &k.labels {
            if !is_label_value(value) {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::ARGO_INVALID_NAME,
                        step_decorator_span(step, "kubernetes"),
                        format!("label `{key}` of step `{}` has a value Kubernetes rejects", step.name),
                    )
                    .with_help("use at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit"),
                );
                continue;
            }
            labels.insert(key.clone(), value.clone());
        }
        annotations.extend(k.annotations.clone());
    }

    let image = kubernetes
        .and_then(|k| k.image.clone())
        .unwrap_or_else(|| config.image.clone());
    let container = Container {
        name: "main".to_owned(),
        image: Some(image),
        image_pull_policy: kubernetes.and_then(|k| k.image_pull_policy.clone()),
        command: Some(vec![format!("{SHIM_DIR}/flowc-shim")]),
        args: Some(args),
        env: (!env.is_empty()).then_some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            limits: (!limits.is_empty()).then_some(limits),
            ..ResourceRequirements::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    Template {
        name: graph::step_name(&step.name),
        metadata: Some(Metadata {
            labels,
            annotations,
        }),
        inputs: Some(Inputs { parameters: inputs }),
        outputs: (!outputs.is_empty()).then_some(Outputs {
            parameters: outputs,
        }),
        init_containers: vec![init],
        container: Some(container),
        volumes,
        node_selector: kubernetes
            .map(|k| k.node_selector.clone())
            .unwrap_or_default(),
        tolerations: kubernetes
            .map(|k| k.tolerations.iter().map(toleration).collect())
            .unwrap_or_default(),
        service_account_name: kubernetes.and_then(|k| k.service_account.clone()),
        retry_strategy: spec.retry.as_ref().map(|retry| RetryStrategy {
            limit: retry.times,
            retry_policy: "Always".to_owned(),
            backoff: (retry.minutes_between > 0).then(|| Backoff {
                duration: format!("{}s", u64::from(retry.minutes_between) * 60),
            }),
        }),
        active_deadline_seconds: spec.timeout.as_ref().map(|t| t.seconds),
        ..Template::default()
    }
}

/// The span of the step's decorator `name` (which wrote the value at fault), or the
/// step's name when the value came from elsewhere.
fn step_decorator_span(step: &Step, name: &str) -> flowc_ir::Span {
    step.decorators
        .iter()
        .find(|d| d.name == name)
        .map_or(step.name_span, |d| d.span)
}

fn toleration(t: &flowc_ir::Toleration) -> Toleration {
    Toleration {
        key: t.key.clone(),
        operator: t.operator.clone(),
        value: t.value.clone(),
        effect: t.effect.clone(),
        toleration_seconds: t.toleration_seconds,
    }
}

/// A CPU request as Kubernetes writes it: whole cores as an integer, fractions in
/// millicores (`0.5` → `500m`).
fn cpu_quantity(cpu: f64) -> String {
    if cpu.fract() == 0.0 && (0.0..1e12).contains(&cpu) {
        format!("{}", cpu as u64)
    } else {
        format!("{}m", (cpu * 1000.0).round().max(1.0) as u64)
    }
}

/// An `@environment` value as the process sees it (Python's `str()`); `None` for
/// values only the run can evaluate, which the harness sets itself.
fn env_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
            format!("{f:.1}")
        }
        Value::Float(f) => f.to_string(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        _ => return None,
    })
}
