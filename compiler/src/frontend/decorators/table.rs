//! The table of every decorator a user can write in Metaflow 2.19: name, where it goes
//! (a step or the flow class), whether it may repeat, and each attribute with its kind
//! and Metaflow's default.
//!
//! This is data, not code per decorator: validation (`check.rs`) walks it generically,
//! and the typed views read their defaults from it so the two never disagree. Metaflow's
//! internal decorators (`argo_workflows_internal`, `step_functions_internal`,
//! `airflow_internal`, `unbounded_test_foreach_internal`) are left out on purpose: the
//! orchestrators attach them, users do not write them.

/// Where a decorator is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Above a `@step` method.
    Step,
    /// Above the `FlowSpec` subclass.
    Flow,
}

impl Scope {
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Scope::Step => "step",
            Scope::Flow => "flow",
        }
    }
}

/// A numeric range an attribute must fall in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bound {
    /// `>= 0`
    NonNegative,
    /// `> 0`
    Positive,
    /// Inclusive range.
    Between(i64, i64),
}

impl Bound {
    pub(crate) fn admits(self, x: f64) -> bool {
        match self {
            Bound::NonNegative => x >= 0.0,
            Bound::Positive => x > 0.0,
            Bound::Between(lo, hi) => x >= lo as f64 && x <= hi as f64,
        }
    }
}

/// What shape of value an attribute takes. Metaflow itself is loose (it calls `int()`
/// on strings), so numeric kinds accept a string that spells the number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// A whole number (or a string of one), within the bound.
    Int(Bound),
    /// An int or float (or a string of one), within the bound.
    Number(Bound),
    Bool,
    Str,
    StrList,
    /// A string or a list of strings (`host_volumes="/a"` or `["/a", "/b"]`).
    StrOrStrList,
    /// A dict of strings to strings.
    StrMap,
    /// A dict with string keys and any values.
    Map,
    /// A dict of strings to strings, or a `"k=v,k2=v2"` string (`node_selector`).
    KeyValues,
    /// A list of dicts (`tolerations`).
    MapList,
    /// A string or a dict (`@trigger(event=...)`, `@trigger_on_finish(flow=...)`).
    StrOrMap,
    /// A list of strings or dicts (`events=`, `flows=`, `@secrets(sources=)`).
    StrOrMapList,
    /// A list of functions or function names (`@exit_hook(on_success=[...])`); function
    /// references are expressions the static reader keeps unevaluated, as expected.
    HookList,
    /// Anything.
    Any,
}

impl Kind {
    /// What the attribute expects, for messages: "expects {description}".
    pub(crate) fn describe(self) -> String {
        let bound = |b: Bound, what: &str| match b {
            Bound::NonNegative => format!("a {what} >= 0"),
            Bound::Positive => format!("a {what} > 0"),
            Bound::Between(lo, hi) => format!("a {what} from {lo} to {hi}"),
        };
        match self {
            Kind::Int(b) => bound(b, "whole number"),
            Kind::Number(b) => bound(b, "number"),
            Kind::Bool => "True or False".to_owned(),
            Kind::Str => "a string".to_owned(),
            Kind::StrList => "a list of strings".to_owned(),
            Kind::StrOrStrList => "a string or a list of strings".to_owned(),
            Kind::StrMap => "a dict of strings to strings".to_owned(),
            Kind::Map => "a dict with string keys".to_owned(),
            Kind::KeyValues => {
                "a dict of strings to strings or a \"key=value,...\" string".to_owned()
            }
            Kind::MapList => "a list of dicts".to_owned(),
            Kind::StrOrMap => "a string or a dict".to_owned(),
            Kind::StrOrMapList => "a list of strings or dicts".to_owned(),
            Kind::HookList => "a list of functions or function names".to_owned(),
            Kind::Any => "a value".to_owned(),
        }
    }
}

/// Metaflow's default for an attribute (with no Metaflow configuration set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DefaultValue {
    None,
    Int(i64),
    Bool(bool),
    Str(&'static str),
    /// `[]`
    EmptyList,
    /// A list of string literals.
    StrList(&'static [&'static str]),
    /// `{}`
    EmptyMap,
}

impl DefaultValue {
    /// The default as Python source, for help text.
    pub(crate) fn python(self) -> String {
        match self {
            DefaultValue::None => "None".to_owned(),
            DefaultValue::Int(i) => i.to_string(),
            DefaultValue::Bool(true) => "True".to_owned(),
            DefaultValue::Bool(false) => "False".to_owned(),
            DefaultValue::Str(s) => format!("{s:?}"),
            DefaultValue::EmptyList => "[]".to_owned(),
            DefaultValue::StrList(items) => {
                let items: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
                format!("[{}]", items.join(", "))
            }
            DefaultValue::EmptyMap => "{}".to_owned(),
        }
    }
}

/// One attribute of a decorator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) default: DefaultValue,
}

/// One decorator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecoratorSpec {
    pub(crate) name: &'static str,
    pub(crate) scope: Scope,
    /// Metaflow's `allow_multiple`: may the decorator appear several times on one
    /// step (or the flow)?
    pub(crate) allow_multiple: bool,
    /// In Metaflow's own order, which is also the order positional arguments would
    /// map to when the help suggests the keyword form.
    pub(crate) attrs: &'static [Attr],
}

impl DecoratorSpec {
    pub(crate) fn attr(&self, name: &str) -> Option<&'static Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub(crate) fn attr_names(&self) -> impl Iterator<Item = &'static str> + Clone + '_ {
        self.attrs.iter().map(|a| a.name)
    }
}

/// The decorator named `name`, whatever its scope.
pub(crate) fn lookup(name: &str) -> Option<&'static DecoratorSpec> {
    DECORATORS.iter().find(|d| d.name == name)
}

const fn attr(name: &'static str, kind: Kind, default: DefaultValue) -> Attr {
    Attr {
        name,
        kind,
        default,
    }
}

use Bound::{Between, NonNegative, Positive};
use DefaultValue as D;

/// The most retries Metaflow allows: `MAX_ATTEMPTS` (6) minus the first attempt and
/// the `@catch` fallback task.
pub(crate) const MAX_RETRIES: i64 = 4;

const CATCH: &[Attr] = &[
    attr("var", Kind::Str, D::None),
    attr("print_exception", Kind::Bool, D::Bool(true)),
];

const TIMEOUT: &[Attr] = &[
    attr("seconds", Kind::Int(NonNegative), D::Int(0)),
    attr("minutes", Kind::Int(NonNegative), D::Int(0)),
    attr("hours", Kind::Int(NonNegative), D::Int(0)),
];

const ENVIRONMENT: &[Attr] = &[attr("vars", Kind::Map, D::EmptyMap)];

const SECRETS: &[Attr] = &[
    attr("sources", Kind::StrOrMapList, D::EmptyList),
    attr("role", Kind::Str, D::None),
    attr("allow_override", Kind::Bool, D::Bool(false)),
];

const RETRY: &[Attr] = &[
    attr("times", Kind::Int(Between(0, MAX_RETRIES)), D::Int(3)),
    attr("minutes_between_retries", Kind::Int(NonNegative), D::Int(2)),
];

const RESOURCES: &[Attr] = &[
    attr("cpu", Kind::Number(Positive), D::Int(1)),
    attr("gpu", Kind::Int(NonNegative), D::None),
    attr("disk", Kind::Int(Positive), D::None),
    attr("memory", Kind::Int(Positive), D::Int(4096)),
    attr("shared_memory", Kind::Int(Positive), D::None),
];

const BATCH: &[Attr] = &[
    attr("cpu", Kind::Number(Positive), D::None),
    attr("gpu", Kind::Int(NonNegative), D::None),
    attr("memory", Kind::Int(Positive), D::None),
    attr("image", Kind::Str, D::None),
    attr("queue", Kind::Str, D::None),
    attr("iam_role", Kind::Str, D::None),
    attr("execution_role", Kind::Str, D::None),
    attr("shared_memory", Kind::Int(Positive), D::None),
    attr("max_swap", Kind::Int(NonNegative), D::None),
    // Metaflow accepts 0 to 99 (it checks `< 100`).
    attr("swappiness", Kind::Int(Between(0, 99)), D::None),
    attr("inferentia", Kind::Int(NonNegative), D::None),
    attr("trainium", Kind::Int(NonNegative), D::None),
    attr("efa", Kind::Int(NonNegative), D::None),
    attr("host_volumes", Kind::StrOrStrList, D::None),
    attr("efs_volumes", Kind::StrOrStrList, D::None),
    attr("use_tmpfs", Kind::Bool, D::Bool(false)),
    attr("aws_batch_tags", Kind::StrMap, D::None),
    attr("tmpfs_tempdir", Kind::Bool, D::Bool(true)),
    attr("tmpfs_size", Kind::Int(Positive), D::None),
    attr("tmpfs_path", Kind::Str, D::Str("/metaflow_temp")),
    // AWS Fargate's ephemeral storage range, in GiB.
    attr("ephemeral_storage", Kind::Int(Between(21, 200)), D::None),
    attr("log_driver", Kind::Str, D::None),
    attr("log_options", Kind::StrOrStrList, D::None),
    attr("executable", Kind::Str, D::None),
    attr("privileged", Kind::Bool, D::Bool(false)),
];

const KUBERNETES: &[Attr] = &[
    attr("cpu", Kind::Number(Positive), D::Int(1)),
    attr("memory", Kind::Int(Positive), D::Int(4096)),
    attr("disk", Kind::Int(Positive), D::Int(10240)),
    attr("image", Kind::Str, D::None),
    attr("image_pull_policy", Kind::Str, D::None),
    attr("image_pull_secrets", Kind::StrList, D::None),
    attr("service_account", Kind::Str, D::None),
    attr("secrets", Kind::StrOrStrList, D::None),
    attr("node_selector", Kind::KeyValues, D::None),
    attr("namespace", Kind::Str, D::None),
    attr("gpu", Kind::Int(NonNegative), D::None),
    attr("gpu_vendor", Kind::Str, D::None),
    attr("tolerations", Kind::MapList, D::None),
    attr("labels", Kind::StrMap, D::None),
    attr("annotations", Kind::StrMap, D::None),
    attr("use_tmpfs", Kind::Bool, D::None),
    attr("tmpfs_tempdir", Kind::Bool, D::Bool(true)),
    attr("tmpfs_size", Kind::Int(Positive), D::None),
    attr("tmpfs_path", Kind::Str, D::Str("/metaflow_temp")),
    attr("persistent_volume_claims", Kind::StrMap, D::None),
    attr("shared_memory", Kind::Int(Positive), D::None),
    attr("port", Kind::Int(Between(1, 65535)), D::None),
    attr("compute_pool", Kind::Str, D::None),
    attr("executable", Kind::Str, D::None),
    attr(
        "hostname_resolution_timeout",
        Kind::Int(NonNegative),
        D::Int(600),
    ),
    attr("qos", Kind::Str, D::Str("burstable")),
    attr("extended_resources", Kind::StrMap, D::EmptyMap),
    attr("security_context", Kind::Map, D::None),
];

const CARD: &[Attr] = &[
    attr("type", Kind::Str, D::Str("default")),
    attr("options", Kind::Map, D::EmptyMap),
    attr("scope", Kind::Str, D::Str("task")),
    attr("rank", Kind::Str, D::None),
    attr("timeout", Kind::Int(NonNegative), D::Int(45)),
    attr("id", Kind::Str, D::None),
    attr("save_errors", Kind::Bool, D::Bool(true)),
    attr("customize", Kind::Bool, D::Bool(false)),
    attr("refresh_interval", Kind::Int(Positive), D::Int(5)),
];

const PYTORCH_PARALLEL: &[Attr] = &[attr("master_port", Kind::Int(Between(1, 65535)), D::None)];

const PYPI: &[Attr] = &[
    attr("packages", Kind::StrMap, D::EmptyMap),
    attr("python", Kind::Str, D::None),
    attr("disabled", Kind::Bool, D::None),
];

const CONDA: &[Attr] = &[
    attr("packages", Kind::StrMap, D::EmptyMap),
    // Deprecated spelling of `packages`, merged under it.
    attr("libraries", Kind::StrMap, D::EmptyMap),
    attr("python", Kind::Str, D::None),
    attr("disabled", Kind::Bool, D::None),
];

const SCHEDULE: &[Attr] = &[
    attr("cron", Kind::Str, D::None),
    attr("weekly", Kind::Bool, D::Bool(false)),
    attr("daily", Kind::Bool, D::Bool(true)),
    attr("hourly", Kind::Bool, D::Bool(false)),
    attr("timezone", Kind::Str, D::None),
];

const PROJECT: &[Attr] = &[
    attr("name", Kind::Str, D::None),
    attr("production", Kind::Bool, D::Bool(false)),
    attr("branch", Kind::Str, D::None),
];

const TRIGGER: &[Attr] = &[
    attr("event", Kind::StrOrMap, D::None),
    attr("events", Kind::StrOrMapList, D::EmptyList),
    attr("options", Kind::Map, D::EmptyMap),
];

const TRIGGER_ON_FINISH: &[Attr] = &[
    attr("flow", Kind::StrOrMap, D::None),
    attr("flows", Kind::StrOrMapList, D::EmptyList),
    attr("options", Kind::Map, D::EmptyMap),
];

const EXIT_HOOK: &[Attr] = &[
    attr("on_success", Kind::HookList, D::EmptyList),
    attr("on_error", Kind::HookList, D::EmptyList),
    attr("options", Kind::Map, D::EmptyMap),
];

const AIRFLOW_S3_KEY_SENSOR: &[Attr] = &[
    attr("timeout", Kind::Int(NonNegative), D::Int(3600)),
    attr("poke_interval", Kind::Int(NonNegative), D::Int(60)),
    attr("mode", Kind::Str, D::Str("reschedule")),
    attr("exponential_backoff", Kind::Bool, D::Bool(true)),
    attr("pool", Kind::Str, D::None),
    attr("soft_fail", Kind::Bool, D::Bool(false)),
    attr("name", Kind::Str, D::None),
    attr("description", Kind::Str, D::None),
    attr("bucket_key", Kind::StrOrStrList, D::None),
    attr("bucket_name", Kind::Str, D::None),
    attr("wildcard_match", Kind::Bool, D::Bool(false)),
    attr("aws_conn_id", Kind::Str, D::None),
    attr("verify", Kind::Any, D::None),
];

const AIRFLOW_EXTERNAL_TASK_SENSOR: &[Attr] = &[
    attr("timeout", Kind::Int(NonNegative), D::Int(3600)),
    attr("poke_interval", Kind::Int(NonNegative), D::Int(60)),
    attr("mode", Kind::Str, D::Str("reschedule")),
    attr("exponential_backoff", Kind::Bool, D::Bool(true)),
    attr("pool", Kind::Str, D::None),
    attr("soft_fail", Kind::Bool, D::Bool(false)),
    attr("name", Kind::Str, D::None),
    attr("description", Kind::Str, D::None),
    attr("external_dag_id", Kind::Str, D::None),
    attr("external_task_ids", Kind::StrList, D::None),
    attr("allowed_states", Kind::StrList, D::StrList(&["success"])),
    attr("failed_states", Kind::StrList, D::None),
    // A `datetime.timedelta`: always an expression to the static reader.
    attr("execution_delta", Kind::Any, D::None),
    attr("check_existence", Kind::Bool, D::Bool(true)),
];

const fn step(name: &'static str, attrs: &'static [Attr]) -> DecoratorSpec {
    DecoratorSpec {
        name,
        scope: Scope::Step,
        allow_multiple: false,
        attrs,
    }
}

const fn flow(name: &'static str, attrs: &'static [Attr]) -> DecoratorSpec {
    DecoratorSpec {
        name,
        scope: Scope::Flow,
        allow_multiple: false,
        attrs,
    }
}

const fn multiple(spec: DecoratorSpec) -> DecoratorSpec {
    DecoratorSpec {
        allow_multiple: true,
        ..spec
    }
}

/// Every decorator flowc knows, step decorators first, each group in Metaflow's
/// registration order.
pub(crate) const DECORATORS: &[DecoratorSpec] = &[
    step("catch", CATCH),
    step("timeout", TIMEOUT),
    step("environment", ENVIRONMENT),
    step("secrets", SECRETS),
    step("parallel", &[]),
    step("retry", RETRY),
    step("resources", RESOURCES),
    step("batch", BATCH),
    step("kubernetes", KUBERNETES),
    multiple(step("card", CARD)),
    step("pytorch_parallel", PYTORCH_PARALLEL),
    step("pypi", PYPI),
    step("conda", CONDA),
    flow("schedule", SCHEDULE),
    flow("project", PROJECT),
    flow("trigger", TRIGGER),
    flow("trigger_on_finish", TRIGGER_ON_FINISH),
    flow("pypi_base", PYPI),
    flow("conda_base", CONDA),
    multiple(flow("exit_hook", EXIT_HOOK)),
    multiple(flow(
        "airflow_external_task_sensor",
        AIRFLOW_EXTERNAL_TASK_SENSOR,
    )),
    multiple(flow("airflow_s3_key_sensor", AIRFLOW_S3_KEY_SENSOR)),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_and_attributes_are_unique() {
        let mut names = BTreeSet::new();
        for deco in DECORATORS {
            assert!(
                names.insert(deco.name),
                "decorator `{}` listed twice",
                deco.name
            );
            let mut attrs = BTreeSet::new();
            for a in deco.attrs {
                assert!(
                    attrs.insert(a.name),
                    "`@{}({})` listed twice",
                    deco.name,
                    a.name
                );
            }
        }
    }

    #[test]
    fn defaults_fit_their_kinds() {
        for deco in DECORATORS {
            for a in deco.attrs {
                let fits = match (a.kind, a.default) {
                    (_, DefaultValue::None) => true,
                    (Kind::Int(b) | Kind::Number(b), DefaultValue::Int(i)) => b.admits(i as f64),
                    (Kind::Bool, DefaultValue::Bool(_)) => true,
                    (Kind::Str, DefaultValue::Str(_)) => true,
                    (
                        Kind::StrList | Kind::StrOrStrList | Kind::StrOrMapList | Kind::HookList,
                        DefaultValue::EmptyList,
                    ) => true,
                    (Kind::StrList | Kind::StrOrStrList, DefaultValue::StrList(_)) => true,
                    (Kind::StrMap | Kind::Map | Kind::KeyValues, DefaultValue::EmptyMap) => true,
                    _ => false,
                };
                assert!(
                    fits,
                    "`@{}({})` default does not fit its kind",
                    deco.name, a.name
                );
            }
        }
    }

    #[test]
    fn scopes_follow_metaflow() {
        for name in [
            "retry",
            "resources",
            "batch",
            "kubernetes",
            "card",
            "secrets",
            "pypi",
            "conda",
        ] {
            assert_eq!(lookup(name).map(|d| d.scope), Some(Scope::Step), "{name}");
        }
        for name in [
            "schedule",
            "project",
            "trigger",
            "trigger_on_finish",
            "pypi_base",
            "conda_base",
            "exit_hook",
        ] {
            assert_eq!(lookup(name).map(|d| d.scope), Some(Scope::Flow), "{name}");
        }
        assert!(lookup("argo_workflows_internal").is_none());
        let multiples: Vec<&str> = DECORATORS
            .iter()
            .filter(|d| d.allow_multiple)
            .map(|d| d.name)
            .collect();
        assert_eq!(
            multiples,
            [
                "card",
                "exit_hook",
                "airflow_external_task_sensor",
                "airflow_s3_key_sensor"
            ]
        );
    }

    #[test]
    fn defaults_match_metaflow() {
        let retry = lookup("retry")
            .and_then(|d| d.attr("times"))
            .map(|a| a.default);
        assert_eq!(retry, Some(DefaultValue::Int(3)));
        let daily = lookup("schedule")
            .and_then(|d| d.attr("daily"))
            .map(|a| a.default);
        assert_eq!(daily, Some(DefaultValue::Bool(true)));
        let disk = lookup("kubernetes")
            .and_then(|d| d.attr("disk"))
            .map(|a| a.default);
        assert_eq!(disk, Some(DefaultValue::Int(10240)));
        assert_eq!(
            DefaultValue::StrList(&["success"]).python(),
            "[\"success\"]"
        );
    }
}
