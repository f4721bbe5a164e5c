//! One AWS Batch `RegisterJobDefinition` request per step, and one for the run's
//! `flowc-shim init`: image, the `flowc-shim` command (with `Ref::` placeholders, so
//! the definitions also run alone under `--target batch`), resources, roles,
//! environment, timeout, retries and platform.

use std::collections::BTreeMap;

use flowc_ir::{BatchCompute, Compute, Flow, Resources, Step, Transition, Value};

use super::types::{
    ContainerProperties, EphemeralStorage, EvaluateOnExit, FargatePlatformConfiguration,
    JobDefinition, JobTimeout, KeyValuePair, LinuxParameters, LogConfiguration,
    NetworkConfiguration, ResourceRequirement, RetryStrategy, Tmpfs,
};
use super::{check_job_name, Identity, Platform, SfnConfig};
use crate::diagnostics::{codes, Diagnostic};

/// The job definition name suffix of the run's `flowc-shim init` (no step name holds
/// a `-`, so it never collides with a step's).
pub(crate) const INIT_JOB: &str = "flowc-init";
/// Batch's shortest attempt timeout.
const MIN_ATTEMPT_SECONDS: u64 = 60;
/// Batch's most attempts of one job.
const MAX_ATTEMPTS: u32 = 10;
/// Where `@batch(use_tmpfs=True)` mounts the tmpfs when no path is given (Metaflow's).
const DEFAULT_TMPFS_PATH: &str = "/metaflow_temp";
/// The log drivers a Batch container may use (`LogConfiguration.logDriver`).
const LOG_DRIVERS: [&str; 8] = [
    "awslogs",
    "awsfirelens",
    "fluentd",
    "gelf",
    "journald",
    "json-file",
    "splunk",
    "syslog",
];
/// Fargate's ephemeral storage range, GiB.
const FARGATE_STORAGE_GIB: (u64, u64) = (21, 200);

/// Fargate's vCPU values and the memory (MiB) each allows, from AWS Batch's
/// `ResourceRequirement` documentation: (vCPU as written, vCPU, first, last, step).
const FARGATE_SIZES: [(&str, f64, u64, u64, u64); 7] = [
    ("0.25", 0.25, 512, 2048, 512),
    ("0.5", 0.5, 1024, 4096, 1024),
    ("1", 1.0, 2048, 8192, 1024),
    ("2", 2.0, 4096, 16384, 1024),
    ("4", 4.0, 8192, 30720, 1024),
    ("8", 8.0, 16384, 61440, 4096),
    ("16", 16.0, 32768, 122880, 8192),
];

/// What the command of a step's job depends on.
pub(crate) struct CommandShape {
    pub(crate) is_start: bool,
    pub(crate) is_foreach_body: bool,
    pub(crate) writes_outputs: bool,
}

/// Every job definition: the init's first, then one per step in source order.
pub(crate) fn job_definitions(
    flow: &Flow,
    config: &SfnConfig,
    ids: &Identity,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<JobDefinition> {
    let mut out = vec![init_definition(flow, config, ids, diagnostics)];
    let body_starts: Vec<&str> = flow
        .steps
        .iter()
        .filter_map(|s| match &s.transition {
            Transition::Foreach { to, .. } => Some(to.step.as_str()),
            _ => None,
        })
        .collect();
    for step in &flow.steps {
        let shape = CommandShape {
            is_start: step.name == flow.start_step,
            is_foreach_body: body_starts.contains(&step.name.as_str()),
            writes_outputs: writes_outputs(step),
        };
        out.push(step_definition(
            flow,
            step,
            &shape,
            config,
            ids,
            diagnostics,
        ));
    }
    out
}

/// Whether the state machine reads the step's outputs (a foreach or a switch).
pub(crate) fn writes_outputs(step: &Step) -> bool {
    matches!(
        step.transition,
        Transition::Foreach { .. } | Transition::Switch { .. }
    )
}

/// The shim's arguments every task and the init share, after the subcommand.
pub(crate) fn shim_common(flow: &Flow, config: &SfnConfig) -> Vec<String> {
    vec![
        "--code-package".to_owned(),
        config.code_package.hash.clone(),
        "--package-entry".to_owned(),
        config.code_package.entry.clone(),
        "--flow".to_owned(),
        flow.name.clone(),
        "--datastore-root".to_owned(),
        config.datastore_root.clone(),
    ]
}

fn init_definition(
    flow: &Flow,
    config: &SfnConfig,
    ids: &Identity,
    diagnostics: &mut Vec<Diagnostic>,
) -> JobDefinition {
    let name = ids.job_name(INIT_JOB);
    check_job_name(&name, flow.name_span, diagnostics);
    let mut command = vec![config.shim_path.clone(), "init".to_owned()];
    command.extend(shim_common(flow, config));
    command.extend(
        [
            "--run-id",
            "Ref::run_id",
            "--params-json",
            "Ref::params_json",
        ]
        .map(str::to_owned),
    );
    let mut definition = base_definition(
        name,
        command,
        container(config, None, &Resources::default(), flow, None, diagnostics),
        config,
    );
    definition
        .parameters
        .insert("params_json".to_owned(), "{}".to_owned());
    definition
}

fn step_definition(
    flow: &Flow,
    step: &Step,
    shape: &CommandShape,
    config: &SfnConfig,
    ids: &Identity,
    diagnostics: &mut Vec<Diagnostic>,
) -> JobDefinition {
    let name = ids.job_name(&step.name);
    check_job_name(&name, step.name_span, diagnostics);
    let spec = &step.spec;
    let batch = match &spec.compute {
        Compute::Batch(b) => Some(b),
        _ => None,
    };
    let mut command = vec![config.shim_path.clone(), "task".to_owned()];
    command.extend(shim_common(flow, config));
    command.extend([
        "--step".to_owned(),
        step.name.clone(),
        "--run-id".to_owned(),
        "Ref::run_id".to_owned(),
        "--task-id".to_owned(),
        "Ref::task_id".to_owned(),
    ]);
    if !shape.is_start {
        command.extend(["--input-paths".to_owned(), "Ref::input_paths".to_owned()]);
    }
    if shape.is_foreach_body {
        command.extend(["--split-index".to_owned(), "Ref::split_index".to_owned()]);
    }
    let mut parameters = BTreeMap::new();
    if let Some(retry) = &spec.retry {
        command.extend([
            "--retry-count".to_owned(),
            "Ref::retry_count".to_owned(),
            "--max-user-code-retries".to_owned(),
            retry.times.to_string(),
        ]);
        parameters.insert("retry_count".to_owned(), "0".to_owned());
    }
    if shape.writes_outputs {
        command.push("--write-outputs".to_owned());
    }
    let properties = container(
        config,
        batch,
        &spec.resources,
        flow,
        Some(step),
        diagnostics,
    );
    let mut definition = base_definition(name, command, properties, config);
    definition.parameters = parameters;
    definition.timeout = spec.timeout.as_ref().map(|t| JobTimeout {
        attempt_duration_seconds: t.seconds.max(MIN_ATTEMPT_SECONDS),
    });
    // User-code failures are retried by the state machine's `Retry`, which counts the
    // attempts for the shim; Batch itself only retries jobs whose host went away
    // (a reclaimed Spot instance), which never ran the attempt to its end.
    definition.retry_strategy = spec.retry.as_ref().map(|retry| RetryStrategy {
        attempts: retry.times.saturating_add(1).min(MAX_ATTEMPTS),
        evaluate_on_exit: vec![
            EvaluateOnExit {
                on_status_reason: Some("Host EC2*".to_owned()),
                on_reason: None,
                action: "RETRY".to_owned(),
            },
            EvaluateOnExit {
                on_status_reason: None,
                on_reason: Some("*".to_owned()),
                action: "EXIT".to_owned(),
            },
        ],
    });
    if let Some(b) = batch {
        if !b.aws_batch_tags.is_empty() {
            definition.tags = b.aws_batch_tags.clone();
            definition.propagate_tags = Some(true);
        }
    }
    definition
}

fn base_definition(
    name: String,
    command: Vec<String>,
    mut properties: ContainerProperties,
    config: &SfnConfig,
) -> JobDefinition {
    properties.command = command;
    JobDefinition {
        job_definition_name: name,
        kind: "container".to_owned(),
        parameters: BTreeMap::new(),
        container_properties: properties,
        timeout: None,
        retry_strategy: None,
        platform_capabilities: vec![match config.platform {
            Platform::Ec2 => "EC2".to_owned(),
            Platform::Fargate => "FARGATE".to_owned(),
        }],
        propagate_tags: None,
        tags: BTreeMap::new(),
    }
}

/// The container of a step (or of the init, `step` `None`), without its command.
fn container(
    config: &SfnConfig,
    batch: Option<&BatchCompute>,
    resources: &Resources,
    flow: &Flow,
    step: Option<&Step>,
    diagnostics: &mut Vec<Diagnostic>,
) -> ContainerProperties {
    let span = step.map_or(flow.name_span, |s| s.name_span);
    let what = step.map_or_else(
        || "the run's init job".to_owned(),
        |s| format!("step `{}`", s.name),
    );
    let fargate = config.platform == Platform::Fargate;
    let mut report = |code: &crate::diagnostics::Code, message: String, help: &str| {
        diagnostics.push(Diagnostic::new(code, span, message).with_help(help));
    };
    let mut requirements = Vec::new();
    let gpu = resources.gpu.filter(|g| *g > 0);
    if fargate {
        match fargate_size(resources.cpu, resources.memory_mb) {
            Some((vcpu, memory)) => {
                requirements.push(requirement("VCPU", vcpu.to_owned()));
                requirements.push(requirement("MEMORY", memory.to_string()));
            }
            None => report(
                &codes::RESOURCES_OUT_OF_RANGE,
                format!(
                    "{what} asks for {} vCPU and {} MB, more than a Fargate job can have (16 vCPU, 120 GB)",
                    resources.cpu, resources.memory_mb
                ),
                "lower @resources, or run on EC2 (platform = \"ec2\")",
            ),
        }
        if gpu.is_some() {
            report(
                &codes::RESOURCES_OUT_OF_RANGE,
                format!("{what} asks for GPUs, which Fargate does not have"),
                "run on EC2 (platform = \"ec2\") with a GPU compute environment",
            );
        }
    } else {
        // EC2 jobs take whole vCPUs; a fraction is rounded up, as Metaflow does.
        let vcpu = resources.cpu.ceil().max(1.0);
        requirements.push(requirement("VCPU", format!("{}", vcpu as u64)));
        requirements.push(requirement(
            "MEMORY",
            resources.memory_mb.max(4).to_string(),
        ));
        if let Some(gpu) = gpu {
            requirements.push(requirement("GPU", gpu.to_string()));
        }
    }

    let mut linux = LinuxParameters {
        shared_memory_size: resources.shared_memory_mb,
        ..LinuxParameters::default()
    };
    if let Some(b) = batch {
        linux.max_swap = b.max_swap;
        linux.swappiness = b.swappiness;
        if b.use_tmpfs || b.tmpfs_size_mb.is_some() {
            linux.tmpfs.push(Tmpfs {
                container_path: b
                    .tmpfs_path
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TMPFS_PATH.to_owned()),
                // Metaflow's default: half the job's memory.
                size: b.tmpfs_size_mb.unwrap_or(resources.memory_mb / 2).max(1),
            });
        }
        let unsupported: Vec<&str> = [
            ("inferentia", b.inferentia > 0),
            ("trainium", b.trainium > 0),
            ("efa", b.efa > 0),
            ("host_volumes", !b.host_volumes.is_empty()),
            ("efs_volumes", !b.efs_volumes.is_empty()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if !unsupported.is_empty() {
            report(
                &codes::UNSUPPORTED_OPTION,
                format!(
                    "{what} sets @batch({}), which the Batch target does not express yet",
                    unsupported.join(", ")
                ),
                "remove the option, or run the step with `flowc run`",
            );
        }
    }
    let has_linux = linux != LinuxParameters::default();
    if fargate && has_linux {
        report(
            &codes::UNSUPPORTED_OPTION,
            format!(
                "{what} asks for shared memory, swap or a tmpfs, which Fargate jobs cannot have"
            ),
            "remove shared_memory / max_swap / swappiness / use_tmpfs, or run on EC2",
        );
    }
    let privileged = batch.is_some_and(|b| b.privileged);
    if fargate && privileged {
        report(
            &codes::UNSUPPORTED_OPTION,
            format!("{what} asks for a privileged container, which Fargate does not run"),
            "remove privileged=True, or run on EC2",
        );
    }
    let mut ephemeral = None;
    let storage_gib = batch
        .and_then(|b| b.ephemeral_storage_gb)
        .or_else(|| resources.disk_mb.map(|mb| mb.div_ceil(1024)));
    if let (true, Some(gib)) = (fargate, storage_gib) {
        let (low, high) = FARGATE_STORAGE_GIB;
        if (low..=high).contains(&gib) {
            ephemeral = Some(EphemeralStorage { size_in_gi_b: gib });
        } else if gib > high {
            report(
                &codes::RESOURCES_OUT_OF_RANGE,
                format!(
                    "{what} asks for {gib} GiB of disk, over the {high} GiB a Fargate job can have"
                ),
                "lower the disk request, or run on EC2",
            );
        }
        // Below the range, Fargate's default 20 GiB already covers the request.
    }

    if let Some(driver) = batch.and_then(|b| b.log_driver.as_deref()) {
        if !LOG_DRIVERS.contains(&driver) {
            report(
                &codes::UNSUPPORTED_OPTION,
                format!(
                    "{what} sets @batch(log_driver=\"{driver}\"), which AWS Batch does not know"
                ),
                &format!("use one of {}", LOG_DRIVERS.join(", ")),
            );
        }
    }
    let log_configuration = batch.and_then(|b| {
        let driver = b.log_driver.clone()?;
        let options = b
            .log_options
            .iter()
            .filter_map(|option| option.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Some(LogConfiguration {
            log_driver: driver,
            options,
        })
    });
    let environment = step
        .map(|s| {
            s.spec
                .environment
                .vars
                .iter()
                .filter_map(|(name, value)| {
                    Some(KeyValuePair {
                        name: name.clone(),
                        value: env_text(value)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ContainerProperties {
        image: batch
            .and_then(|b| b.image.clone())
            .unwrap_or_else(|| config.image.clone()),
        command: Vec::new(),
        job_role_arn: batch
            .and_then(|b| b.iam_role.clone())
            .or_else(|| config.job_role.clone()),
        execution_role_arn: batch
            .and_then(|b| b.execution_role.clone())
            .or_else(|| config.execution_role.clone()),
        resource_requirements: requirements,
        environment,
        linux_parameters: (has_linux && !fargate).then_some(linux),
        privileged: (privileged && !fargate).then_some(true),
        log_configuration,
        ephemeral_storage: ephemeral,
        fargate_platform_configuration: fargate.then(|| FargatePlatformConfiguration {
            platform_version: "LATEST".to_owned(),
        }),
        // Without a public IP a Fargate job in a public subnet cannot pull its image.
        network_configuration: fargate.then(|| NetworkConfiguration {
            assign_public_ip: "ENABLED".to_owned(),
        }),
    }
}

fn requirement(kind: &str, value: String) -> ResourceRequirement {
    ResourceRequirement {
        kind: kind.to_owned(),
        value,
    }
}

/// The smallest Fargate size with at least `cpu` vCPUs and `memory_mb` MiB: Fargate
/// takes only the listed combinations, so a request is rounded up to one.
pub(crate) fn fargate_size(cpu: f64, memory_mb: u64) -> Option<(&'static str, u64)> {
    FARGATE_SIZES
        .iter()
        .filter(|(_, vcpu, ..)| *vcpu >= cpu)
        .find_map(|&(text, _, first, last, step)| {
            let memory = if memory_mb <= first {
                first
            } else {
                first + (memory_mb - first).div_ceil(step) * step
            };
            (memory <= last).then_some((text, memory))
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_sizes_round_up_to_a_valid_combination() {
        assert_eq!(fargate_size(1.0, 4096), Some(("1", 4096)));
        assert_eq!(fargate_size(0.25, 100), Some(("0.25", 512)));
        assert_eq!(fargate_size(1.0, 9000), Some(("2", 9216)));
        assert_eq!(fargate_size(4.0, 8 * 1024), Some(("4", 8192)));
        assert_eq!(fargate_size(3.0, 1000), Some(("4", 8192)));
        assert_eq!(fargate_size(8.0, 20000), Some(("8", 20480)));
        assert_eq!(fargate_size(17.0, 1024), None);
        assert_eq!(fargate_size(16.0, 200_000), None);
    }
}
