//! Step decorators → `StepSpec`: effective resources, compute, retry, catch, timeout,
//! environment, Python environment, secrets, cards, and the rules Metaflow enforces
//! across several decorators of one step.

use std::collections::BTreeMap;

use flowc_ir::{
    BatchCompute, Card, Catch, Compute, Environment, FlowSpecView, KubernetesCompute, PythonEnv,
    PythonEnvManager, Resources, Retry, Secrets, StepSpec, Timeout, Toleration, Value,
};

use super::check::{bad_value, int_of, parse_key_values, show, Checked};
use super::python_env;
use crate::diagnostics::{codes, Diagnostic};

/// Metaflow's defaults for a step without `@resources` or a compute decorator.
const DEFAULT_CPU: f64 = 1.0;
const DEFAULT_MEMORY_MB: u64 = 4096;
/// `@kubernetes`' own disk default, in MB.
const KUBERNETES_DEFAULT_DISK_MB: u64 = 10240;
/// Metaflow refuses shorter `@timeout`s on AWS Batch and Kubernetes.
const REMOTE_MIN_TIMEOUT_SECONDS: u64 = 60;
/// The node label Metaflow sets for `@kubernetes(compute_pool=...)`.
const COMPUTE_POOL_LABEL: &str = "outerbounds.co/compute-pool";
/// The fields of a Kubernetes `V1Toleration`, as Metaflow accepts them.
const TOLERATION_KEYS: &[&str] = &["effect", "key", "operator", "toleration_seconds", "value"];

pub(super) fn lower(
    checked: &[Checked<'_>],
    flow: &FlowSpecView,
    diagnostics: &mut Vec<Diagnostic>,
) -> StepSpec {
    let find = |name: &str| checked.iter().find(|c| c.name() == name);
    // Two compute decorators are reported by the lint from the IR; the first wins here.
    let compute = checked
        .iter()
        .find(|c| matches!(c.name(), "batch" | "kubernetes"));
    let resources = resources(find("resources"), compute);
    let timeout = find("timeout").and_then(|c| timeout(c, diagnostics));
    let spec = StepSpec {
        compute: compute.map_or(Compute::Local, |c| match c.name() {
            "batch" => Compute::Batch(batch(c, resources.memory_mb, diagnostics)),
            _ => Compute::Kubernetes(kubernetes(c, diagnostics)),
        }),
        resources,
        retry: find("retry").map(retry),
        catch: find("catch").map(|c| Catch {
            var: c.string("var"),
            print_exception: c.flag("print_exception"),
        }),
        timeout,
        environment: Environment {
            vars: find("environment")
                .map(|c| c.map("vars"))
                .unwrap_or_default(),
        },
        python_env: python_env::for_step(
            find("pypi"),
            find("conda"),
            flow.python_env.as_ref(),
            diagnostics,
        ),
        secrets: find("secrets")
            .map(|c| secrets(c, diagnostics))
            .unwrap_or_default(),
        cards: cards(checked, diagnostics),
        parallel: find("parallel").is_some() || find("pytorch_parallel").is_some(),
    };
    cross_checks(checked, &spec, diagnostics);
    spec
}

fn retry(c: &Checked<'_>) -> Retry {
    let to_u32 =
        |i: Option<i64>, default: u32| i.and_then(|i| u32::try_from(i).ok()).unwrap_or(default);
    Retry {
        times: to_u32(c.int("times"), 3),
        minutes_between: to_u32(c.int("minutes_between_retries"), 2),
    }
}

/// `@timeout` summed to seconds. `None` when the sum is zero, which Metaflow refuses
/// ("Specify a duration for @timeout") unless a part could not be read.
fn timeout(c: &Checked<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<Timeout> {
    let part = |name: &str, unit: u64| c.uint(name).unwrap_or(0).saturating_mul(unit);
    let seconds = part("hours", 3600)
        .saturating_add(part("minutes", 60))
        .saturating_add(part("seconds", 1));
    if seconds > 0 {
        return Some(Timeout { seconds });
    }
    if !["seconds", "minutes", "hours"].iter().any(|n| c.dropped(n)) {
        diagnostics.push(
            Diagnostic::new(
                &codes::DECORATOR_BAD_VALUE,
                c.raw.span,
                "`@timeout` needs a duration",
            )
            .with_label("no duration")
            .with_help("give `seconds`, `minutes` or `hours`, e.g. `@timeout(minutes=30)`"),
        );
    }
    None
}

fn positive_mb(c: Option<&Checked<'_>>, name: &str) -> Option<u64> {
    c.and_then(|c| c.uint(name))
}

fn max_opt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b > a { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The resources a task actually gets, following Metaflow: with a compute decorator,
/// each of cpu/memory (and disk on Kubernetes) is the larger of `@resources` and the
/// compute decorator's own value; on Kubernetes an explicit `@resources(gpu=,
/// shared_memory=)` replaces the decorator's. Without one, `@resources` alone counts.
fn resources(res: Option<&Checked<'_>>, compute: Option<&Checked<'_>>) -> Resources {
    let res_cpu = res.and_then(|r| r.number("cpu"));
    let res_memory = positive_mb(res, "memory");
    match compute {
        None => Resources {
            cpu: res_cpu.unwrap_or(DEFAULT_CPU),
            memory_mb: res_memory.unwrap_or(DEFAULT_MEMORY_MB),
            gpu: positive_mb(res, "gpu"),
            disk_mb: positive_mb(res, "disk"),
            shared_memory_mb: positive_mb(res, "shared_memory"),
        },
        Some(c) if c.name() == "batch" => Resources {
            cpu: max_opt(res_cpu, c.number("cpu")).unwrap_or(DEFAULT_CPU),
            memory_mb: max_opt(res_memory, c.uint("memory")).unwrap_or(DEFAULT_MEMORY_MB),
            gpu: max_opt(positive_mb(res, "gpu"), c.uint("gpu")),
            // AWS Batch has no disk setting: Metaflow ignores `@resources(disk=...)` there.
            disk_mb: None,
            shared_memory_mb: max_opt(positive_mb(res, "shared_memory"), c.uint("shared_memory")),
        },
        Some(c) => Resources {
            cpu: max_opt(res_cpu, c.number("cpu")).unwrap_or(DEFAULT_CPU),
            memory_mb: max_opt(res_memory, c.uint("memory")).unwrap_or(DEFAULT_MEMORY_MB),
            gpu: positive_mb(res, "gpu").or_else(|| c.uint("gpu")),
            disk_mb: max_opt(positive_mb(res, "disk"), c.uint("disk"))
                .or(Some(KUBERNETES_DEFAULT_DISK_MB)),
            shared_memory_mb: positive_mb(res, "shared_memory").or_else(|| c.uint("shared_memory")),
        },
    }
}

/// tmpfs is mounted when asked for, or when only a size is given; the size defaults
/// to half the memory, and the path to Metaflow's.
fn tmpfs(
    c: &Checked<'_>,
    memory_mb: u64,
    diagnostics: &mut Vec<Diagnostic>,
) -> (bool, Option<u64>, Option<String>) {
    if let Some(path) = c.value("tmpfs_path").and_then(Value::as_str) {
        if !path.starts_with('/') {
            diagnostics.push(
                bad_value(
                    c,
                    "tmpfs_path",
                    format!(
                        "`@{}(tmpfs_path=...)` must be an absolute path, got `{path}`",
                        c.name()
                    ),
                )
                .with_label("relative path")
                .with_help(format!(
                    "write it from the root, e.g. `tmpfs_path=\"/{path}\"`"
                )),
            );
        }
    }
    let size = c.uint("tmpfs_size");
    let used = c.flag("use_tmpfs") || size.is_some();
    if !used {
        return (false, None, None);
    }
    (
        true,
        Some(size.unwrap_or(memory_mb / 2)),
        c.string("tmpfs_path"),
    )
}

fn batch(c: &Checked<'_>, memory_mb: u64, diagnostics: &mut Vec<Diagnostic>) -> BatchCompute {
    if c.value("inferentia").is_some() && c.value("trainium").is_some() {
        diagnostics.push(
            bad_value(
                c,
                "trainium",
                "`@batch` takes `inferentia` or `trainium`, not both",
            )
            .with_label("second accelerator count")
            .with_related(c.span("inferentia"), "`inferentia` given here")
            .with_help("`trainium` is another name for `inferentia`; keep one"),
        );
    }
    let (use_tmpfs, tmpfs_size_mb, tmpfs_path) = tmpfs(c, memory_mb, diagnostics);
    BatchCompute {
        image: c.string("image"),
        queue: c.string("queue"),
        iam_role: c.string("iam_role"),
        execution_role: c.string("execution_role"),
        max_swap: c.uint("max_swap"),
        swappiness: c.uint("swappiness"),
        use_tmpfs,
        tmpfs_size_mb,
        tmpfs_path,
        // Metaflow treats `trainium` as an alias and requests `inferentia` devices.
        inferentia: c
            .uint("inferentia")
            .or_else(|| c.uint("trainium"))
            .unwrap_or(0),
        trainium: c.uint("trainium").unwrap_or(0),
        efa: c.uint("efa").unwrap_or(0),
        host_volumes: c.strings("host_volumes"),
        efs_volumes: c.strings("efs_volumes"),
        ephemeral_storage_gb: c.uint("ephemeral_storage"),
        log_driver: c.string("log_driver"),
        log_options: c.strings("log_options"),
        privileged: c.flag("privileged"),
        aws_batch_tags: c.str_map("aws_batch_tags"),
    }
}

fn kubernetes(c: &Checked<'_>, diagnostics: &mut Vec<Diagnostic>) -> KubernetesCompute {
    let qos = c
        .string("qos")
        .unwrap_or_else(|| "burstable".to_owned())
        .to_lowercase();
    if !matches!(qos.as_str(), "burstable" | "guaranteed") {
        diagnostics.push(
            bad_value(
                c,
                "qos",
                format!("`@kubernetes(qos=...)` must be a Kubernetes QoS class, got `{qos}`"),
            )
            .with_label("unknown QoS class")
            .with_help("use `qos=\"Burstable\"` or `qos=\"Guaranteed\"`"),
        );
    }
    let gpu_vendor = c
        .string("gpu_vendor")
        .unwrap_or_else(|| "nvidia".to_owned())
        .to_lowercase();
    if !matches!(gpu_vendor.as_str(), "nvidia" | "amd") {
        diagnostics.push(
            bad_value(
                c,
                "gpu_vendor",
                format!(
                    "`@kubernetes(gpu_vendor=...)` must be `nvidia` or `amd`, got `{gpu_vendor}`"
                ),
            )
            .with_label("unsupported GPU vendor")
            .with_help("Metaflow supports `gpu_vendor=\"nvidia\"` and `gpu_vendor=\"amd\"`"),
        );
    }
    let mut node_selector = match c.value("node_selector") {
        Some(Value::Str(text)) => parse_key_values(text).unwrap_or_default(),
        _ => c.str_map("node_selector"),
    };
    if let Some(pool) = c.string("compute_pool") {
        node_selector.insert(COMPUTE_POOL_LABEL.to_owned(), pool);
    }
    let labels = c.str_map("labels");
    for (key, value) in &labels {
        if !is_label_value(value) {
            diagnostics.push(
                bad_value(c, "labels", format!("`@kubernetes(labels=...)`: `{value}` (for `{key}`) is not a valid label value"))
                    .with_label("invalid label value")
                    .with_help(
                        "a label value is empty or at most 63 characters of letters, digits, `-`, `_` and `.`, \
                         starting and ending with a letter or digit",
                    ),
            );
        }
    }
    // Metaflow sizes the default tmpfs from the decorator's own memory, before
    // `@resources` is taken into account.
    let own_memory = c.uint("memory").unwrap_or(DEFAULT_MEMORY_MB);
    let (use_tmpfs, tmpfs_size_mb, tmpfs_path) = tmpfs(c, own_memory, diagnostics);
    KubernetesCompute {
        image: c.string("image"),
        image_pull_policy: c.string("image_pull_policy"),
        image_pull_secrets: c.strings("image_pull_secrets"),
        service_account: c.string("service_account"),
        namespace: c.string("namespace"),
        secrets: c.strings("secrets"),
        node_selector,
        tolerations: tolerations(c, diagnostics),
        labels,
        annotations: c.str_map("annotations"),
        gpu_vendor,
        use_tmpfs,
        tmpfs_size_mb,
        tmpfs_path,
        persistent_volume_claims: c.str_map("persistent_volume_claims"),
        port: c.int("port").and_then(|p| u16::try_from(p).ok()),
        compute_pool: c.string("compute_pool"),
        qos,
    }
}

/// Kubernetes' label value syntax, which Metaflow checks before submitting.
fn is_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let bytes = value.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    bytes.len() <= 63
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn tolerations(c: &Checked<'_>, diagnostics: &mut Vec<Diagnostic>) -> Vec<Toleration> {
    let Some(Value::List(items)) = c.value("tolerations") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Dict(fields) = item else { continue };
        let mut problems = Vec::new();
        let text = |key: &str, problems: &mut Vec<String>| match fields.get(key) {
            None | Some(Value::None) | Some(Value::Deferred { .. }) => None,
            Some(Value::Str(s)) => Some(s.clone()),
            Some(other) => {
                problems.push(format!("`{key}` must be a string, got `{}`", show(other)));
                None
            }
        };
        let toleration = Toleration {
            key: text("key", &mut problems),
            operator: text("operator", &mut problems),
            value: text("value", &mut problems),
            effect: text("effect", &mut problems),
            toleration_seconds: match fields.get("toleration_seconds") {
                None | Some(Value::None) | Some(Value::Deferred { .. }) => None,
                Some(v) => {
                    let secs = int_of(v);
                    if secs.is_none() {
                        problems.push(format!(
                            "`toleration_seconds` must be a whole number, got `{}`",
                            show(v)
                        ));
                    }
                    secs
                }
            },
        };
        for key in fields
            .keys()
            .filter(|k| !TOLERATION_KEYS.contains(&k.as_str()))
        {
            problems.push(format!("`{key}` is not a toleration field"));
        }
        if problems.is_empty() {
            out.push(toleration);
        }
        for problem in problems {
            diagnostics.push(
                bad_value(
                    c,
                    "tolerations",
                    format!("`@kubernetes(tolerations=...)`: {problem}"),
                )
                .with_label("invalid toleration")
                .with_help(format!(
                    "a toleration is a dict with {}",
                    TOLERATION_KEYS
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    out
}

/// `@secrets(sources=[...])`: strings as written (`"type.id"` or `"id"`); a dict source
/// is written back in that form from its `type` and `id`.
fn secrets(c: &Checked<'_>, diagnostics: &mut Vec<Diagnostic>) -> Secrets {
    let mut sources = Vec::new();
    if let Some(Value::List(items)) = c.value("sources") {
        for item in items {
            match item {
                Value::Str(s) => sources.push(s.clone()),
                Value::Dict(fields) if fields.values().any(Value::is_deferred) => {}
                Value::Dict(fields) => {
                    let id = fields.get("id").and_then(Value::as_str);
                    let ty = match fields.get("type") {
                        None => Ok(None),
                        Some(Value::Str(ty)) => Ok(Some(ty)),
                        Some(_) => Err(()),
                    };
                    match (id, ty) {
                        (Some(id), Ok(Some(ty))) => sources.push(format!("{ty}.{id}")),
                        (Some(id), Ok(None)) => sources.push(id.to_owned()),
                        _ => diagnostics.push(
                            bad_value(
                                c,
                                "sources",
                                format!(
                                    "`@secrets(sources=...)`: `{}` needs a string `id` (and a string `type`, if any)",
                                    show(item)
                                ),
                            )
                            .with_label("invalid secret source")
                            .with_help("e.g. `{\"type\": \"aws-secrets-manager\", \"id\": \"db-password\"}`"),
                        ),
                    }
                }
                _ => {}
            }
        }
    }
    Secrets {
        sources,
        role: c.string("role"),
    }
}

fn cards(checked: &[Checked<'_>], diagnostics: &mut Vec<Diagnostic>) -> Vec<Card> {
    let mut out = Vec::new();
    let mut ids: BTreeMap<String, flowc_ir::Span> = BTreeMap::new();
    for c in checked.iter().filter(|c| c.name() == "card") {
        let id = c.string("id");
        if let Some(id) = &id {
            if let Some(first) = ids.get(id) {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::DECORATOR_DUPLICATE,
                        c.span("id"),
                        format!("two `@card` decorators on this step have id `{id}`"),
                    )
                    .with_label("repeated card id")
                    .with_related(*first, "first used here")
                    .with_help(
                        "give each `@card` its own `id`, so that `current.card[id]` can find it",
                    ),
                );
            } else {
                ids.insert(id.clone(), c.span("id"));
            }
        }
        out.push(Card {
            ty: c.string("type").unwrap_or_else(|| "default".to_owned()),
            id,
            options: c.map("options"),
            timeout_seconds: c.uint("timeout").unwrap_or(45),
        });
    }
    out
}

/// Rules Metaflow enforces between decorators of one step (beyond two compute
/// decorators, which the lint reports).
fn cross_checks(checked: &[Checked<'_>], spec: &StepSpec, diagnostics: &mut Vec<Diagnostic>) {
    let find = |name: &str| checked.iter().find(|c| c.name() == name);
    let compute = checked
        .iter()
        .find(|c| matches!(c.name(), "batch" | "kubernetes"));
    if let (Some(t), Some(timeout), Some(compute)) =
        (spec.timeout.as_ref(), find("timeout"), compute)
    {
        if t.seconds < REMOTE_MIN_TIMEOUT_SECONDS {
            diagnostics.push(
                Diagnostic::new(
                    &codes::DECORATOR_BAD_VALUE,
                    timeout.raw.span,
                    format!(
                        "`@timeout` of {} seconds is too short for `@{}`",
                        t.seconds,
                        compute.name()
                    ),
                )
                .with_label("shorter than 60 seconds")
                .with_related(compute.raw.span, "runs remotely because of this")
                .with_help(
                    "Metaflow needs a timeout of at least 60 seconds on AWS Batch and Kubernetes",
                ),
            );
        }
    }
    if let (Some(catch), Some(k8s)) = (find("catch"), find("kubernetes")) {
        if spec.parallel && compute.is_some_and(|c| c.name() == "kubernetes") {
            diagnostics.push(
                Diagnostic::new(
                    &codes::DECORATOR_BAD_VALUE,
                    catch.raw.span,
                    "`@catch` cannot be combined with `@parallel` on Kubernetes",
                )
                .with_label("not supported with @parallel")
                .with_related(k8s.raw.span, "runs on Kubernetes because of this")
                .with_help("remove `@catch`, or handle errors inside the step"),
            );
        }
    }
}

/// The manager a step decorator selects.
pub(super) fn manager_of(name: &str) -> PythonEnvManager {
    if name.starts_with("conda") {
        PythonEnvManager::Conda
    } else {
        PythonEnvManager::Pypi
    }
}

/// A Python environment as one decorator writes it (`libraries` merged under
/// `packages`, which wins).
pub(super) fn python_env_of(c: &Checked<'_>) -> PythonEnv {
    let mut packages = c.str_map("libraries");
    packages.extend(c.str_map("packages"));
    PythonEnv {
        manager: manager_of(c.name()),
        packages,
        python: c.string("python"),
        disabled: c.explicit_flag("disabled").unwrap_or(false),
    }
}
