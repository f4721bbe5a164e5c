//! Tests for decorator lowering: raw decorators built by hand (no parser), checked for
//! the typed views they produce and the diagnostics (code and span) they raise.

use std::collections::BTreeMap;

use flowc_ir::{
    Compute, Decorator, FlowRef, FlowSpecView, PythonEnvManager, ScheduleKind, Span, StepSpec,
    Toleration, Value,
};

use super::{lower_flow_decorators, lower_step_decorators, RawArg, RawDecorator};
use crate::diagnostics::{codes, Diagnostic, Severity};

/// Builds a decorator at byte offset `at`: the decorator spans `at..at+99`, its name
/// `at+1..at+1+len`, and argument `i` spans `arg_span(at, i)`.
struct Deco {
    raw: RawDecorator,
}

fn arg_span(at: usize, i: usize) -> Span {
    Span::new(at + 20 + i * 10, at + 28 + i * 10)
}

fn deco(name: &str, at: usize) -> Deco {
    Deco {
        raw: RawDecorator {
            name: name.to_owned(),
            name_span: Span::new(at + 1, at + 1 + name.len()),
            span: Span::new(at, at + 99),
            args: Vec::new(),
        },
    }
}

impl Deco {
    fn kw(mut self, name: &str, value: Value) -> Self {
        let span = arg_span(self.raw.span.start, self.raw.args.len());
        self.raw.args.push(RawArg {
            name: Some(name.to_owned()),
            span,
            value,
            too_deep: Vec::new(),
        });
        self
    }

    fn pos(mut self, value: Value) -> Self {
        let span = arg_span(self.raw.span.start, self.raw.args.len());
        self.raw.args.push(RawArg {
            name: None,
            span,
            value,
            too_deep: Vec::new(),
        });
        self
    }
}

fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn dict(entries: &[(&str, Value)]) -> Value {
    Value::Dict(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn deferred(text: &str, start: usize) -> Value {
    Value::Deferred {
        source_text: text.to_owned(),
        span: Span::new(start, start + text.len()),
    }
}

fn lower_step(decos: Vec<Deco>) -> (Vec<Decorator>, StepSpec, Vec<Diagnostic>) {
    lower_step_with(decos, &FlowSpecView::default())
}

fn lower_step_with(
    decos: Vec<Deco>,
    flow: &FlowSpecView,
) -> (Vec<Decorator>, StepSpec, Vec<Diagnostic>) {
    let raws: Vec<RawDecorator> = decos.into_iter().map(|d| d.raw).collect();
    let mut diagnostics = Vec::new();
    let (records, spec) = lower_step_decorators(&raws, flow, &mut diagnostics);
    (records, spec, diagnostics)
}

fn lower_flow(decos: Vec<Deco>) -> (Vec<Decorator>, FlowSpecView, Vec<Diagnostic>) {
    let raws: Vec<RawDecorator> = decos.into_iter().map(|d| d.raw).collect();
    let mut diagnostics = Vec::new();
    let (records, view) = lower_flow_decorators(&raws, &mut diagnostics);
    (records, view, diagnostics)
}

fn step_spec(decos: Vec<Deco>) -> StepSpec {
    let (_, spec, diagnostics) = lower_step(decos);
    assert!(
        diagnostics.is_empty(),
        "unexpected diagnostics: {diagnostics:#?}"
    );
    spec
}

fn flow_view(decos: Vec<Deco>) -> FlowSpecView {
    let (_, view, diagnostics) = lower_flow(decos);
    assert!(
        diagnostics.is_empty(),
        "unexpected diagnostics: {diagnostics:#?}"
    );
    view
}

/// The one diagnostic expected, checked for its code and span.
fn only(diagnostics: &[Diagnostic], code: &codes::Code, span: Span) -> Diagnostic {
    assert_eq!(
        diagnostics.len(),
        1,
        "expected one diagnostic: {diagnostics:#?}"
    );
    let d = diagnostics[0].clone();
    assert_eq!(d.code, code.name, "{d:#?}");
    assert_eq!(d.span, span, "{d:#?}");
    d
}

fn step_diags(decos: Vec<Deco>) -> Vec<Diagnostic> {
    lower_step(decos).2
}

fn flow_diags(decos: Vec<Deco>) -> Vec<Diagnostic> {
    lower_flow(decos).2
}

// ---- names, placement, repetition ------------------------------------------------

#[test]
fn unknown_decorator_is_a_warning_and_kept_as_written() {
    let (records, spec, diags) =
        lower_step(vec![deco("my_timer", 0).kw("label", s("x")).pos(int(1))]);
    let d = only(&diags, &codes::DECORATOR_UNKNOWN, Span::new(1, 9));
    assert_eq!(d.severity, Severity::Warning);
    assert!(d.message.contains("`@my_timer`"), "{}", d.message);
    assert_eq!(records.len(), 1);
    assert!(!records[0].known);
    assert_eq!(
        records[0].args,
        BTreeMap::from([("label".to_owned(), s("x"))])
    );
    assert_eq!(records[0].arg_spans.get("label"), Some(&arg_span(0, 0)));
    assert_eq!(spec, StepSpec::default());
}

#[test]
fn unknown_decorator_suggests_a_close_name() {
    let d = only(
        &step_diags(vec![deco("retyr", 0)]),
        &codes::DECORATOR_UNKNOWN,
        Span::new(1, 6),
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `@retry`?"));
    let d = only(
        &step_diags(vec![deco("schedul", 0)]),
        &codes::DECORATOR_UNKNOWN,
        Span::new(1, 8),
    );
    assert_eq!(
        d.help.as_deref(),
        Some("did you mean `@schedule`? it is a flow decorator")
    );
    let d = only(
        &step_diags(vec![deco("telemetry", 0)]),
        &codes::DECORATOR_UNKNOWN,
        Span::new(1, 10),
    );
    assert!(d
        .help
        .as_deref()
        .is_some_and(|h| h.contains("your own decorator")));
}

#[test]
fn known_decorators_are_marked_known_with_keyword_args_only() {
    let (records, _, _) = lower_step(vec![deco("retry", 0).kw("times", int(2)).pos(int(9))]);
    assert!(records[0].known);
    assert_eq!(records[0].name, "retry");
    assert_eq!(records[0].span, Span::new(0, 99));
    assert_eq!(
        records[0].args,
        BTreeMap::from([("times".to_owned(), int(2))])
    );
}

#[test]
fn flow_decorator_on_a_step_is_misplaced() {
    let (records, spec, diags) =
        lower_step(vec![deco("schedule", 0).kw("hourly", Value::Bool(true))]);
    let d = only(&diags, &codes::DECORATOR_MISPLACED, Span::new(1, 9));
    assert!(d.message.contains("flow decorator"), "{}", d.message);
    assert!(records[0].known);
    assert_eq!(spec, StepSpec::default());
}

#[test]
fn step_decorator_on_the_flow_is_misplaced() {
    let d = only(
        &flow_diags(vec![deco("retry", 200)]),
        &codes::DECORATOR_MISPLACED,
        Span::new(201, 206),
    );
    assert_eq!(
        d.help.as_deref(),
        Some("move `@retry` above a `@step` method")
    );
    // Metaflow 2.19 has no flow-level @secrets.
    only(
        &flow_diags(vec![deco("secrets", 0)]),
        &codes::DECORATOR_MISPLACED,
        Span::new(1, 8),
    );
}

#[test]
fn base_and_step_environment_decorators_point_to_each_other() {
    let d = only(
        &step_diags(vec![deco("pypi_base", 0)]),
        &codes::DECORATOR_MISPLACED,
        Span::new(1, 10),
    );
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("use `@pypi` on the step")),
        "{d:?}"
    );
    let d = only(
        &flow_diags(vec![deco("conda", 0)]),
        &codes::DECORATOR_MISPLACED,
        Span::new(1, 6),
    );
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("use `@conda_base` on the flow class")),
        "{d:?}"
    );
}

#[test]
fn repeated_decorator_is_a_duplicate_with_the_first_labelled() {
    let (records, spec, diags) = lower_step(vec![
        deco("retry", 0).kw("times", int(1)),
        deco("retry", 100).kw("times", int(4)),
    ]);
    let d = only(&diags, &codes::DECORATOR_DUPLICATE, Span::new(100, 199));
    assert_eq!(d.related.len(), 1);
    assert_eq!(d.related[0].span, Span::new(0, 99));
    assert_eq!(records.len(), 2, "both stay in the IR as written");
    assert_eq!(
        spec.retry.map(|r| r.times),
        Some(1),
        "the first one is interpreted"
    );
}

#[test]
fn repeated_flow_decorator_is_a_duplicate() {
    let diags = flow_diags(vec![
        deco("project", 0).kw("name", s("a")),
        deco("project", 100).kw("name", s("b")),
    ]);
    only(&diags, &codes::DECORATOR_DUPLICATE, Span::new(100, 199));
}

#[test]
fn several_cards_are_allowed_but_not_with_the_same_id() {
    let spec = step_spec(vec![
        deco("card", 0),
        deco("card", 100).kw("id", s("metrics")),
    ]);
    assert_eq!(spec.cards.len(), 2);
    let diags = step_diags(vec![
        deco("card", 0).kw("id", s("metrics")),
        deco("card", 100)
            .kw("type", s("blank"))
            .kw("id", s("metrics")),
    ]);
    let d = only(&diags, &codes::DECORATOR_DUPLICATE, arg_span(100, 1));
    assert_eq!(d.related[0].span, arg_span(0, 0));
}

// ---- arguments ---------------------------------------------------------------------

#[test]
fn unknown_attribute_suggests_the_close_one() {
    let d = only(
        &step_diags(vec![deco("retry", 0).kw("tims", int(2))]),
        &codes::DECORATOR_UNKNOWN_ATTRIBUTE,
        arg_span(0, 0),
    );
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.help.as_deref(), Some("did you mean `times`?"));
}

#[test]
fn unknown_attribute_lists_the_valid_ones_when_nothing_is_close() {
    let d = only(
        &step_diags(vec![deco("retry", 0).kw("backoff", int(2))]),
        &codes::DECORATOR_UNKNOWN_ATTRIBUTE,
        arg_span(0, 0),
    );
    assert_eq!(
        d.help.as_deref(),
        Some("`@retry` takes `times`, `minutes_between_retries`")
    );
    let d = only(
        &step_diags(vec![deco("parallel", 0).kw("num", int(2))]),
        &codes::DECORATOR_UNKNOWN_ATTRIBUTE,
        arg_span(0, 0),
    );
    assert_eq!(d.help.as_deref(), Some("`@parallel` takes no arguments"));
}

#[test]
fn positional_arguments_are_refused_with_the_keyword_form() {
    let (_, spec, diags) = lower_step(vec![deco("retry", 0).pos(int(3))]);
    let d = only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 0));
    assert_eq!(
        d.help.as_deref(),
        Some("write it as a keyword argument, e.g. `@retry(times=3)`")
    );
    assert_eq!(spec.retry.map(|r| r.times), Some(3), "the default applies");
    let d = only(
        &step_diags(vec![deco("parallel", 0).pos(int(2))]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
    assert!(d
        .help
        .as_deref()
        .is_some_and(|h| h.contains("takes no arguments")));
}

#[test]
fn unpacked_arguments_warn_and_silence_missing_value_checks() {
    let (_, view, diags) = lower_flow(vec![deco("project", 0).pos(deferred("**PROJECT", 30))]);
    let d = only(&diags, &codes::VALUE_DEFERRED, Span::new(30, 39));
    assert!(
        d.message.starts_with("`@project(**PROJECT)`"),
        "{}",
        d.message
    );
    assert_eq!(view.project, None);
}

#[test]
fn repeated_keyword_is_a_syntax_error() {
    let diags = step_diags(vec![deco("retry", 0)
        .kw("times", int(1))
        .kw("times", int(2))]);
    let d = only(&diags, &codes::SYNTAX_ERROR, arg_span(0, 1));
    assert_eq!(d.related[0].span, arg_span(0, 0));
}

#[test]
fn out_of_range_and_wrong_kind_values_are_bad_values() {
    let cases: Vec<(Deco, &str)> = vec![
        (
            deco("retry", 0).kw("times", int(-1)),
            "whole number from 0 to 4",
        ),
        (
            deco("retry", 0).kw("times", int(5)),
            "whole number from 0 to 4",
        ),
        (
            deco("retry", 0).kw("times", Value::Bool(true)),
            "whole number",
        ),
        (deco("resources", 0).kw("cpu", int(0)), "number > 0"),
        (
            deco("resources", 0).kw("memory", s("lots")),
            "got `\"lots\"`",
        ),
        (
            deco("resources", 0).kw("memory", Value::Float(1.5)),
            "whole number > 0",
        ),
        (
            deco("timeout", 0).kw("minutes", int(-1)),
            "whole number >= 0",
        ),
        (
            deco("catch", 0).kw("print_exception", s("yes")),
            "True or False",
        ),
        (deco("environment", 0).kw("vars", list(vec![])), "a dict"),
        (deco("batch", 0).kw("swappiness", int(100)), "from 0 to 99"),
        (
            deco("kubernetes", 0).kw("port", int(70000)),
            "from 1 to 65535",
        ),
        (deco("pypi", 0).kw("python", Value::Float(3.1)), "a string"),
        (
            deco("pypi", 0).kw("packages", dict(&[("numpy", Value::Float(1.26))])),
            "strings to strings",
        ),
        (deco("retry", 0).kw("times", Value::None), "got `None`"),
    ];
    for (d, fragment) in cases {
        let diags = step_diags(vec![d]);
        let d = only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 0));
        assert!(
            d.message.contains(fragment),
            "{} lacks {fragment}",
            d.message
        );
    }
}

#[test]
fn bad_value_help_names_the_default() {
    let d = only(
        &step_diags(vec![deco("retry", 0).kw("times", int(-1))]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
    assert_eq!(
        d.help.as_deref(),
        Some("give `times` a whole number from 0 to 4; Metaflow's default is `times=3`")
    );
}

#[test]
fn numbers_written_as_strings_are_accepted() {
    let spec = step_spec(vec![deco("resources", 0)
        .kw("cpu", s("0.5"))
        .kw("memory", s("16000"))
        .kw("gpu", int(1))]);
    assert_eq!(spec.resources.cpu, 0.5);
    assert_eq!(spec.resources.memory_mb, 16000);
    assert_eq!(spec.resources.gpu, Some(1));
    let spec = step_spec(vec![deco("retry", 0).kw("times", s("2"))]);
    assert_eq!(spec.retry.map(|r| r.times), Some(2));
}

#[test]
fn none_means_unset_where_the_default_is_none() {
    let spec = step_spec(vec![
        deco("resources", 0).kw("gpu", Value::None),
        deco("catch", 100).kw("var", Value::None),
    ]);
    assert_eq!(spec.resources.gpu, None);
    assert_eq!(spec.catch.and_then(|c| c.var), None);
}

#[test]
fn deferred_argument_warns_and_the_view_keeps_the_default() {
    let (records, spec, diags) = lower_step(vec![
        deco("resources", 0).kw("memory", deferred("compute_memory()", 30))
    ]);
    let d = only(&diags, &codes::VALUE_DEFERRED, Span::new(30, 46));
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(
        d.message,
        "`@resources(memory=...)`: `compute_memory()` cannot be evaluated statically; it is kept as an expression"
    );
    assert_eq!(spec.resources.memory_mb, 4096);
    assert!(records[0]
        .args
        .get("memory")
        .is_some_and(Value::is_deferred));
}

#[test]
fn deferred_items_inside_a_dict_warn_and_stay_in_the_view() {
    let vars = dict(&[("A", s("1")), ("TOKEN", deferred("os.environ['T']", 50))]);
    let (_, spec, diags) = lower_step(vec![deco("environment", 0).kw("vars", vars)]);
    only(&diags, &codes::VALUE_DEFERRED, Span::new(50, 65));
    assert_eq!(spec.environment.vars.get("A"), Some(&s("1")));
    assert!(spec
        .environment
        .vars
        .get("TOKEN")
        .is_some_and(Value::is_deferred));
}

#[test]
fn deferred_timeout_part_does_not_claim_a_missing_duration() {
    let (_, spec, diags) =
        lower_step(vec![deco("timeout", 0).kw("hours", deferred("HOURS()", 40))]);
    only(&diags, &codes::VALUE_DEFERRED, Span::new(40, 47));
    assert_eq!(spec.timeout, None);
}

// ---- step views --------------------------------------------------------------------

#[test]
fn retry_and_catch_apply_metaflow_defaults() {
    let spec = step_spec(vec![deco("retry", 0), deco("catch", 100)]);
    let retry = spec.retry.as_ref().map(|r| (r.times, r.minutes_between));
    assert_eq!(retry, Some((3, 2)));
    let catch = spec
        .catch
        .as_ref()
        .map(|c| (c.var.clone(), c.print_exception));
    assert_eq!(catch, Some((None, true)));
    let spec = step_spec(vec![
        deco("retry", 0)
            .kw("times", int(0))
            .kw("minutes_between_retries", int(10)),
        deco("catch", 100)
            .kw("var", s("err"))
            .kw("print_exception", Value::Bool(false)),
    ]);
    assert_eq!(
        spec.retry.map(|r| (r.times, r.minutes_between)),
        Some((0, 10))
    );
    assert_eq!(
        spec.catch.map(|c| (c.var, c.print_exception)),
        Some((Some("err".to_owned()), false))
    );
}

#[test]
fn timeout_is_summed_to_seconds() {
    let spec = step_spec(vec![deco("timeout", 0)
        .kw("hours", int(1))
        .kw("minutes", int(1))
        .kw("seconds", int(5))]);
    assert_eq!(spec.timeout.map(|t| t.seconds), Some(3665));
}

#[test]
fn timeout_without_a_duration_is_refused() {
    let (_, spec, diags) = lower_step(vec![deco("timeout", 0).kw("seconds", int(0))]);
    only(&diags, &codes::DECORATOR_BAD_VALUE, Span::new(0, 99));
    assert_eq!(spec.timeout, None);
}

#[test]
fn local_resources_come_from_resources_alone() {
    let spec = step_spec(vec![]);
    assert_eq!((spec.resources.cpu, spec.resources.memory_mb), (1.0, 4096));
    assert_eq!(spec.compute, Compute::Local);
    let spec = step_spec(vec![deco("resources", 0)
        .kw("cpu", int(8))
        .kw("memory", int(32000))
        .kw("disk", int(50000))
        .kw("shared_memory", int(1024))]);
    assert_eq!(spec.resources.cpu, 8.0);
    assert_eq!(spec.resources.memory_mb, 32000);
    assert_eq!(spec.resources.disk_mb, Some(50000));
    assert_eq!(spec.resources.shared_memory_mb, Some(1024));
}

#[test]
fn batch_resources_are_the_larger_of_resources_and_batch() {
    let spec = step_spec(vec![
        deco("resources", 0)
            .kw("cpu", int(2))
            .kw("memory", int(8000))
            .kw("disk", int(9000)),
        deco("batch", 100)
            .kw("cpu", int(4))
            .kw("memory", int(2000))
            .kw("gpu", int(1)),
    ]);
    assert_eq!(spec.resources.cpu, 4.0);
    assert_eq!(spec.resources.memory_mb, 8000);
    assert_eq!(spec.resources.gpu, Some(1));
    assert_eq!(
        spec.resources.disk_mb, None,
        "AWS Batch has no disk setting"
    );
    // Without @resources, @batch's own values stand even below the defaults.
    let spec = step_spec(vec![deco("batch", 0)
        .kw("cpu", s("0.25"))
        .kw("memory", int(512))]);
    assert_eq!((spec.resources.cpu, spec.resources.memory_mb), (0.25, 512));
    // With @resources, its defaults (1 CPU, 4096 MB) count in the maximum.
    let spec = step_spec(vec![
        deco("resources", 0),
        deco("batch", 100).kw("memory", int(512)),
    ]);
    assert_eq!(spec.resources.memory_mb, 4096);
}

#[test]
fn kubernetes_resources_take_the_maximum_and_resources_gpu_wins() {
    let spec = step_spec(vec![
        deco("kubernetes", 0)
            .kw("cpu", int(2))
            .kw("gpu", int(4))
            .kw("shared_memory", int(100)),
        deco("resources", 100)
            .kw("cpu", int(1))
            .kw("memory", int(16000))
            .kw("gpu", int(1)),
    ]);
    assert_eq!(spec.resources.cpu, 2.0);
    assert_eq!(spec.resources.memory_mb, 16000);
    assert_eq!(
        spec.resources.gpu,
        Some(1),
        "@resources(gpu=) replaces @kubernetes(gpu=)"
    );
    assert_eq!(spec.resources.shared_memory_mb, Some(100));
    assert_eq!(
        spec.resources.disk_mb,
        Some(10240),
        "Kubernetes' own disk default"
    );
}

#[test]
fn batch_view_reads_every_field() {
    let spec = step_spec(vec![deco("batch", 0)
        .kw("image", s("python:3.11"))
        .kw("queue", s("gpu-queue"))
        .kw("memory", int(8000))
        .kw("use_tmpfs", Value::Bool(true))
        .kw("trainium", int(2))
        .kw("host_volumes", s("/data"))
        .kw("efs_volumes", list(vec![s("fs-1"), s("fs-2")]))
        .kw("log_options", list(vec![s("awslogs-group:g")]))
        .kw("aws_batch_tags", dict(&[("team", s("ml"))]))
        .kw("ephemeral_storage", int(50))
        .kw("privileged", Value::Bool(true))]);
    let Compute::Batch(b) = spec.compute else {
        panic!("expected batch compute, got {:?}", spec.compute)
    };
    assert_eq!(b.image.as_deref(), Some("python:3.11"));
    assert_eq!(b.queue.as_deref(), Some("gpu-queue"));
    assert!(b.use_tmpfs);
    assert_eq!(b.tmpfs_size_mb, Some(4000), "half of the effective memory");
    assert_eq!(b.tmpfs_path.as_deref(), Some("/metaflow_temp"));
    assert_eq!(
        (b.inferentia, b.trainium),
        (2, 2),
        "trainium is an alias of inferentia"
    );
    assert_eq!(b.host_volumes, ["/data"]);
    assert_eq!(b.efs_volumes, ["fs-1", "fs-2"]);
    assert_eq!(b.log_options, ["awslogs-group:g"]);
    assert_eq!(b.aws_batch_tags.get("team").map(String::as_str), Some("ml"));
    assert_eq!(b.ephemeral_storage_gb, Some(50));
    assert!(b.privileged);
}

#[test]
fn batch_rules_across_arguments() {
    let diags = step_diags(vec![deco("batch", 0)
        .kw("inferentia", int(1))
        .kw("trainium", int(1))]);
    let d = only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 1));
    assert_eq!(d.related[0].span, arg_span(0, 0));
    let diags = step_diags(vec![deco("batch", 0).kw("tmpfs_path", s("tmp"))]);
    only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 0));
    let diags = step_diags(vec![deco("batch", 0).kw("ephemeral_storage", int(10))]);
    only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 0));
}

#[test]
fn kubernetes_view_reads_selectors_tolerations_and_pools() {
    let spec = step_spec(vec![deco("kubernetes", 0)
        .kw("node_selector", s("kubernetes.io/arch=amd64,tier=gpu"))
        .kw("compute_pool", s("big"))
        .kw(
            "tolerations",
            list(vec![dict(&[
                ("key", s("gpu")),
                ("operator", s("Exists")),
                ("effect", s("NoSchedule")),
                ("toleration_seconds", int(30)),
            ])]),
        )
        .kw("secrets", s("db-creds"))
        .kw("labels", dict(&[("team", s("ml-platform"))]))
        .kw("qos", s("Guaranteed"))
        .kw("gpu_vendor", s("AMD"))
        .kw("tmpfs_size", int(1000))
        .kw("port", int(8080))]);
    let Compute::Kubernetes(k) = spec.compute else {
        panic!("expected kubernetes compute, got {:?}", spec.compute)
    };
    assert_eq!(
        k.node_selector,
        BTreeMap::from([
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("outerbounds.co/compute-pool".to_owned(), "big".to_owned()),
            ("tier".to_owned(), "gpu".to_owned()),
        ])
    );
    assert_eq!(
        k.tolerations,
        [Toleration {
            key: Some("gpu".to_owned()),
            operator: Some("Exists".to_owned()),
            value: None,
            effect: Some("NoSchedule".to_owned()),
            toleration_seconds: Some(30),
        }]
    );
    assert_eq!(k.secrets, ["db-creds"]);
    assert_eq!(k.qos, "guaranteed");
    assert_eq!(k.gpu_vendor, "amd");
    assert!(k.use_tmpfs, "a tmpfs size alone turns tmpfs on");
    assert_eq!(k.tmpfs_size_mb, Some(1000));
    assert_eq!(k.port, Some(8080));
    assert_eq!(
        k.labels.get("team").map(String::as_str),
        Some("ml-platform")
    );
}

#[test]
fn kubernetes_defaults() {
    let spec = step_spec(vec![
        deco("kubernetes", 0).kw("use_tmpfs", Value::Bool(true))
    ]);
    let Compute::Kubernetes(k) = spec.compute else {
        panic!("expected kubernetes compute")
    };
    assert_eq!(k.qos, "burstable");
    assert_eq!(k.gpu_vendor, "nvidia");
    assert_eq!(k.tmpfs_size_mb, Some(2048));
    assert!(k.node_selector.is_empty());
}

#[test]
fn kubernetes_rules_report_on_the_argument() {
    let cases = vec![
        deco("kubernetes", 0).kw("qos", s("BestEffort")),
        deco("kubernetes", 0).kw("gpu_vendor", s("intel")),
        deco("kubernetes", 0).kw("labels", dict(&[("x", s("-bad-"))])),
        deco("kubernetes", 0).kw("node_selector", s("novalue")),
        deco("kubernetes", 0).kw("tolerations", list(vec![dict(&[("keys", s("gpu"))])])),
        deco("kubernetes", 0).kw(
            "tolerations",
            list(vec![dict(&[("toleration_seconds", s("soon"))])]),
        ),
        deco("kubernetes", 0).kw("cpu", int(-2)),
    ];
    for case in cases {
        only(
            &step_diags(vec![case]),
            &codes::DECORATOR_BAD_VALUE,
            arg_span(0, 0),
        );
    }
}

#[test]
fn environment_vars_keep_their_values() {
    let spec = step_spec(vec![
        deco("environment", 0).kw("vars", dict(&[("N", int(3)), ("MODE", s("fast"))]))
    ]);
    assert_eq!(
        spec.environment.vars,
        BTreeMap::from([("MODE".to_owned(), s("fast")), ("N".to_owned(), int(3))])
    );
}

#[test]
fn step_python_env_merges_over_the_flow_base() {
    let flow = flow_view(vec![deco("pypi_base", 0)
        .kw(
            "packages",
            dict(&[("pandas", s("2.2.0")), ("numpy", s("1.26.0"))]),
        )
        .kw("python", s("3.11"))]);
    let base = flow.python_env.clone();
    assert_eq!(
        base.as_ref().map(|e| e.manager),
        Some(PythonEnvManager::Pypi)
    );
    // A step without @pypi gets the base environment.
    let (_, spec, diags) = lower_step_with(vec![], &flow);
    assert!(diags.is_empty());
    assert_eq!(spec.python_env, base);
    // The step's packages win; python falls back to the base.
    let (_, spec, diags) = lower_step_with(
        vec![deco("pypi", 0).kw(
            "packages",
            dict(&[("numpy", s("2.0.0")), ("torch", s("2.3.0"))]),
        )],
        &flow,
    );
    assert!(diags.is_empty(), "{diags:#?}");
    let env = spec.python_env.expect("an environment");
    assert_eq!(env.packages.get("numpy").map(String::as_str), Some("2.0.0"));
    assert_eq!(
        env.packages.get("pandas").map(String::as_str),
        Some("2.2.0")
    );
    assert_eq!(env.packages.get("torch").map(String::as_str), Some("2.3.0"));
    assert_eq!(env.python.as_deref(), Some("3.11"));
    assert!(!env.disabled);
    let (_, spec, _) = lower_step_with(
        vec![deco("pypi", 0).kw("disabled", Value::Bool(true))],
        &flow,
    );
    assert!(spec.python_env.is_some_and(|e| e.disabled));
}

#[test]
fn conda_libraries_merge_under_packages() {
    let spec = step_spec(vec![deco("conda", 0)
        .kw("libraries", dict(&[("a", s("1")), ("b", s("1"))]))
        .kw("packages", dict(&[("b", s("2"))]))
        .kw("python", s("3.10"))]);
    let env = spec.python_env.expect("an environment");
    assert_eq!(env.manager, PythonEnvManager::Conda);
    assert_eq!(
        env.packages,
        BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned())
        ])
    );
    assert_eq!(env.python.as_deref(), Some("3.10"));
}

#[test]
fn pypi_and_conda_packages_cannot_mix() {
    let diags = step_diags(vec![
        deco("pypi", 0).kw("packages", dict(&[("a", s("1"))])),
        deco("conda", 100).kw("packages", dict(&[("b", s("1"))])),
    ]);
    let d = only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(100, 0));
    assert_eq!(d.related[0].span, Span::new(0, 99));
    let diags = flow_diags(vec![
        deco("pypi_base", 0).kw("packages", dict(&[("a", s("1"))])),
        deco("conda_base", 100).kw("packages", dict(&[("b", s("1"))])),
    ]);
    only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(100, 0));
    // A flow-wide conda base with a step's own pypi packages mixes too.
    let flow = flow_view(vec![
        deco("conda_base", 0).kw("packages", dict(&[("b", s("1"))]))
    ]);
    let (_, _, diags) = lower_step_with(
        vec![deco("pypi", 200).kw("packages", dict(&[("a", s("1"))]))],
        &flow,
    );
    only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(200, 0));
}

#[test]
fn secrets_sources_and_role() {
    let spec = step_spec(vec![deco("secrets", 0)
        .kw(
            "sources",
            list(vec![
                s("db-password"),
                dict(&[("type", s("aws-secrets-manager")), ("id", s("api-key"))]),
            ]),
        )
        .kw("role", s("arn:aws:iam::1:role/x"))]);
    assert_eq!(
        spec.secrets.sources,
        ["db-password", "aws-secrets-manager.api-key"]
    );
    assert_eq!(spec.secrets.role.as_deref(), Some("arn:aws:iam::1:role/x"));
}

#[test]
fn secret_source_dict_needs_an_id() {
    let diags = step_diags(vec![deco("secrets", 0).kw(
        "sources",
        list(vec![dict(&[("type", s("aws-secrets-manager"))])]),
    )]);
    only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 0));
}

#[test]
fn cards_apply_defaults() {
    let spec = step_spec(vec![
        deco("card", 0),
        deco("card", 100)
            .kw("type", s("blank"))
            .kw("id", s("plots"))
            .kw("options", dict(&[("rows", int(3))]))
            .kw("timeout", int(120)),
    ]);
    assert_eq!(spec.cards[0].ty, "default");
    assert_eq!(spec.cards[0].id, None);
    assert_eq!(spec.cards[0].timeout_seconds, 45);
    assert_eq!(spec.cards[1].ty, "blank");
    assert_eq!(spec.cards[1].id.as_deref(), Some("plots"));
    assert_eq!(spec.cards[1].options.get("rows"), Some(&int(3)));
    assert_eq!(spec.cards[1].timeout_seconds, 120);
}

#[test]
fn parallel_decorators_mark_the_step() {
    assert!(step_spec(vec![deco("parallel", 0)]).parallel);
    assert!(
        step_spec(vec![
            deco("pytorch_parallel", 0).kw("master_port", int(29500))
        ])
        .parallel
    );
    assert!(!step_spec(vec![deco("retry", 0)]).parallel);
}

#[test]
fn short_timeout_on_remote_compute_is_refused() {
    let diags = step_diags(vec![
        deco("timeout", 0).kw("seconds", int(30)),
        deco("kubernetes", 100),
    ]);
    let d = only(&diags, &codes::DECORATOR_BAD_VALUE, Span::new(0, 99));
    assert_eq!(d.related[0].span, Span::new(100, 199));
    assert!(
        step_diags(vec![deco("timeout", 0).kw("seconds", int(30))]).is_empty(),
        "fine locally"
    );
}

#[test]
fn catch_with_parallel_on_kubernetes_is_refused() {
    let diags = step_diags(vec![
        deco("catch", 0),
        deco("parallel", 100),
        deco("kubernetes", 200),
    ]);
    let d = only(&diags, &codes::DECORATOR_BAD_VALUE, Span::new(0, 99));
    assert_eq!(d.related[0].span, Span::new(200, 299));
    assert!(step_diags(vec![deco("catch", 0), deco("parallel", 100)]).is_empty());
}

#[test]
fn two_compute_decorators_are_left_to_the_lint() {
    let (_, spec, diags) = lower_step(vec![deco("batch", 0), deco("kubernetes", 100)]);
    assert!(diags.is_empty(), "{diags:#?}");
    assert!(
        matches!(spec.compute, Compute::Batch(_)),
        "the first one wins"
    );
}

// ---- flow views ----------------------------------------------------------------

#[test]
fn schedule_follows_metaflow_precedence() {
    let kind = |d: Deco| flow_view(vec![d]).schedule.map(|s| s.kind);
    assert_eq!(kind(deco("schedule", 0)), Some(ScheduleKind::Daily));
    assert_eq!(
        kind(deco("schedule", 0).kw("hourly", Value::Bool(true))),
        Some(ScheduleKind::Hourly)
    );
    assert_eq!(
        kind(deco("schedule", 0).kw("weekly", Value::Bool(true))),
        Some(ScheduleKind::Weekly)
    );
    assert_eq!(
        kind(deco("schedule", 0).kw("cron", s("0 6 * * ? *"))),
        Some(ScheduleKind::Cron("0 6 * * ? *".to_owned()))
    );
    assert_eq!(
        kind(deco("schedule", 0).kw("daily", Value::Bool(false))),
        None
    );
    let view = flow_view(vec![deco("schedule", 0).kw("timezone", s("Europe/Paris"))]);
    assert_eq!(
        view.schedule.and_then(|s| s.timezone).as_deref(),
        Some("Europe/Paris")
    );
}

#[test]
fn unreadable_cron_gives_no_schedule_rather_than_the_daily_default() {
    let (records, view, diags) =
        lower_flow(vec![deco("schedule", 0).kw("cron", deferred("CRON()", 30))]);
    only(&diags, &codes::VALUE_DEFERRED, Span::new(30, 36));
    assert_eq!(view.schedule, None);
    assert!(records[0].args.get("cron").is_some_and(Value::is_deferred));
}

#[test]
fn schedule_cron_needs_five_or_six_fields() {
    let d = only(
        &flow_diags(vec![deco("schedule", 0).kw("cron", s("0 6 * *"))]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
    assert!(d.message.contains("4 fields"), "{}", d.message);
}

#[test]
fn schedule_with_two_schedules_reports_the_ignored_one() {
    let diags = flow_diags(vec![deco("schedule", 0)
        .kw("cron", s("0 6 * * *"))
        .kw("daily", Value::Bool(true))]);
    let d = only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 1));
    assert_eq!(d.related[0].span, arg_span(0, 0));
    let diags = flow_diags(vec![deco("schedule", 0)
        .kw("hourly", Value::Bool(true))
        .kw("weekly", Value::Bool(true))]);
    only(&diags, &codes::DECORATOR_BAD_VALUE, arg_span(0, 0));
}

#[test]
fn project_reads_and_checks_its_name() {
    let view = flow_view(vec![deco("project", 0)
        .kw("name", s("fraud_model"))
        .kw("branch", s("exp_1"))
        .kw("production", Value::Bool(true))]);
    let p = view.project.expect("a project");
    assert_eq!(
        (p.name.as_str(), p.branch.as_deref(), p.production),
        ("fraud_model", Some("exp_1"), true)
    );

    only(
        &flow_diags(vec![deco("project", 0)]),
        &codes::DECORATOR_BAD_VALUE,
        Span::new(0, 99),
    );
    let d = only(
        &flow_diags(vec![deco("project", 0).kw("name", s("Fraud-Model"))]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
    assert_eq!(d.help.as_deref(), Some("e.g. `name=\"fraud_model\"`"));
    only(
        &flow_diags(vec![deco("project", 0)
            .kw("name", s("a"))
            .kw("branch", s("my.branch"))]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 1),
    );
    only(
        &flow_diags(vec![deco("project", 0).kw("name", s(&"x".repeat(129)))]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
}

#[test]
fn trigger_reads_every_event_form() {
    let view = flow_view(vec![deco("trigger", 0).kw("event", s("data_updated"))]);
    assert_eq!(view.triggers[0].events[0].name, "data_updated");
    let view = flow_view(vec![deco("trigger", 0)
        .kw(
            "events",
            list(vec![
                dict(&[
                    ("name", s("a")),
                    ("parameters", dict(&[("alpha", s("field_a"))])),
                ]),
                dict(&[
                    ("name", s("b")),
                    (
                        "parameters",
                        list(vec![s("beta"), list(vec![s("gamma"), s("field_g")])]),
                    ),
                ]),
            ]),
        )
        .kw(
            "options",
            dict(&[("reset_at", dict(&[("cron", s("0 0 * * *"))]))]),
        )]);
    let t = &view.triggers[0];
    assert_eq!(
        t.events[0].parameters,
        BTreeMap::from([("alpha".to_owned(), "field_a".to_owned())])
    );
    assert_eq!(
        t.events[1].parameters,
        BTreeMap::from([
            ("beta".to_owned(), "beta".to_owned()),
            ("gamma".to_owned(), "field_g".to_owned())
        ])
    );
    assert!(t.options.contains_key("reset_at"));
}

#[test]
fn trigger_rules() {
    let both = deco("trigger", 0)
        .kw("event", s("a"))
        .kw("events", list(vec![s("b")]));
    let d = only(
        &flow_diags(vec![both]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 1),
    );
    assert_eq!(d.related[0].span, arg_span(0, 0));
    only(
        &flow_diags(vec![deco("trigger", 0)]),
        &codes::DECORATOR_BAD_VALUE,
        Span::new(0, 99),
    );
    only(
        &flow_diags(vec![
            deco("trigger", 0).kw("events", list(vec![s("a"), s("a")]))
        ]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
    only(
        &flow_diags(vec![
            deco("trigger", 0).kw("event", dict(&[("parameters", dict(&[]))]))
        ]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
    only(
        &flow_diags(vec![
            deco("trigger", 0).kw("event", dict(&[("name", s("a")), ("parameters", int(3))]))
        ]),
        &codes::DECORATOR_BAD_VALUE,
        arg_span(0, 0),
    );
}

#[test]
fn deferred_trigger_events_warn_without_claiming_none_were_given() {
    let (_, view, diags) = lower_flow(vec![
        deco("trigger", 0).kw("events", deferred("make_events()", 40))
    ]);
    only(&diags, &codes::VALUE_DEFERRED, Span::new(40, 53));
    assert!(view.triggers.is_empty());
}

#[test]
fn trigger_on_finish_reads_every_flow_form() {
    let flows = |d: Deco| flow_view(vec![d]).trigger_on_finish[0].flows.clone();
    assert_eq!(
        flows(deco("trigger_on_finish", 0).kw("flow", s("TrainFlow"))),
        [FlowRef {
            name: "TrainFlow".to_owned(),
            project: None,
            branch: None
        }]
    );
    assert_eq!(
        flows(deco("trigger_on_finish", 0).kw("flow", s("fraud.user.alice.TrainFlow"))),
        [FlowRef {
            name: "TrainFlow".to_owned(),
            project: Some("fraud".to_owned()),
            branch: Some("user.alice".to_owned())
        }]
    );
    assert_eq!(
        flows(deco("trigger_on_finish", 0).kw(
            "flows",
            list(vec![
                s("A"),
                dict(&[
                    ("name", s("B")),
                    ("project", s("p")),
                    ("project_branch", s("prod"))
                ])
            ])
        )),
        [
            FlowRef {
                name: "A".to_owned(),
                ..FlowRef::default()
            },
            FlowRef {
                name: "B".to_owned(),
                project: Some("p".to_owned()),
                branch: Some("prod".to_owned())
            }
        ]
    );
}

#[test]
fn trigger_on_finish_rules() {
    for value in [
        s("proj.TrainFlow"),
        s("Train-Flow"),
        dict(&[("project", s("p"))]),
        dict(&[("name", s("p.b.Flow"))]),
    ] {
        only(
            &flow_diags(vec![deco("trigger_on_finish", 0).kw("flow", value)]),
            &codes::DECORATOR_BAD_VALUE,
            arg_span(0, 0),
        );
    }
    only(
        &flow_diags(vec![deco("trigger_on_finish", 0)]),
        &codes::DECORATOR_BAD_VALUE,
        Span::new(0, 99),
    );
}

#[test]
fn exit_hook_needs_a_hook_and_accepts_function_references() {
    only(
        &flow_diags(vec![deco("exit_hook", 0)]),
        &codes::DECORATOR_BAD_VALUE,
        Span::new(0, 99),
    );
    let diags = flow_diags(vec![
        deco("exit_hook", 0).kw("on_error", list(vec![deferred("notify", 30)])),
        deco("exit_hook", 100).kw("on_success", list(vec![s("celebrate")])),
    ]);
    assert!(
        diags.is_empty(),
        "function references are expected here: {diags:#?}"
    );
}

#[test]
fn flow_python_env_prefers_the_manager_with_packages() {
    let view = flow_view(vec![
        deco("pypi_base", 0).kw("python", s("3.12")),
        deco("conda_base", 100).kw("packages", dict(&[("numpy", s("1.26"))])),
    ]);
    let env = view.python_env.expect("an environment");
    assert_eq!(env.manager, PythonEnvManager::Conda);
    assert_eq!(env.python.as_deref(), Some("3.12"));
}

#[test]
fn airflow_sensors_are_known_flow_decorators_that_may_repeat() {
    let diags = flow_diags(vec![
        deco("airflow_s3_key_sensor", 0).kw("bucket_key", s("s3://b/k")),
        deco("airflow_s3_key_sensor", 100).kw("bucket_key", list(vec![s("s3://b/j")])),
        deco("airflow_external_task_sensor", 200).kw("external_dag_id", s("upstream")),
    ]);
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn lowering_is_deterministic() {
    let build = || {
        lower_step(vec![
            deco("kubernetes", 0).kw("labels", dict(&[("b", s("2")), ("a", s("1"))])),
            deco("retyr", 100),
            deco("resources", 200).kw("memory", s("lots")),
        ])
    };
    let (r1, s1, d1) = build();
    let (r2, s2, d2) = build();
    assert_eq!((r1, s1, d1), (r2, s2, d2));
}
