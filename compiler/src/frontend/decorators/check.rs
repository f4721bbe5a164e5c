//! Table-driven checks every decorator goes through before its typed view is built:
//! known name, right place, not repeated, keyword arguments only, known attributes,
//! values of the right kind and range, and values that could not be folded.
//!
//! What survives is a `Checked` decorator whose arguments all have the shape the table
//! promises, so the view builders (`step.rs`, `flow.rs`) convert without re-checking
//! types and only add the rules that involve several arguments or decorators.

use std::collections::{BTreeMap, BTreeSet};

use flowc_ir::{Decorator, Span, Value};

use super::table::{self, Attr, DecoratorSpec, DefaultValue, Kind, Scope};
use super::RawDecorator;
use crate::diagnostics::{codes, did_you_mean, Diagnostic};
use crate::frontend::eval::nested_too_deeply;

/// A known decorator in the right place, with its arguments checked.
#[derive(Debug)]
pub(super) struct Checked<'a> {
    pub(super) spec: &'static DecoratorSpec,
    pub(super) raw: &'a RawDecorator,
    /// Arguments that passed every check, by attribute name, with their spans.
    args: BTreeMap<&'static str, (&'a Value, Span)>,
    /// Attributes written explicitly but not usable (deferred or invalid, and already
    /// reported): checks that need their value stay quiet rather than pile on.
    dropped: BTreeSet<&'static str>,
    /// `**kwargs` (or `*args`) was passed: any attribute may have been given.
    unpacked: bool,
}

impl<'a> Checked<'a> {
    pub(super) fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The argument's value as written, if it passed its checks and is not `None`.
    pub(super) fn value(&self, name: &str) -> Option<&'a Value> {
        match self.args.get(name) {
            Some((Value::None, _)) | None => None,
            Some((v, _)) => Some(v),
        }
    }

    /// Was `name` written with a value that could not be used?
    pub(super) fn dropped(&self, name: &str) -> bool {
        self.unpacked || self.dropped.contains(name)
    }

    /// Where the argument was written, or the whole decorator when it was not.
    pub(super) fn span(&self, name: &str) -> Span {
        self.raw
            .args
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .map_or(self.raw.span, |a| a.span)
    }

    fn default(&self, name: &str) -> DefaultValue {
        self.spec
            .attr(name)
            .map_or(DefaultValue::None, |a| a.default)
    }

    pub(super) fn int(&self, name: &str) -> Option<i64> {
        match self.value(name) {
            Some(v) => int_of(v),
            None => match self.default(name) {
                DefaultValue::Int(i) => Some(i),
                _ => None,
            },
        }
    }

    /// `int` for attributes the table bounds to be non-negative.
    pub(super) fn uint(&self, name: &str) -> Option<u64> {
        self.int(name).and_then(|i| u64::try_from(i).ok())
    }

    pub(super) fn number(&self, name: &str) -> Option<f64> {
        match self.value(name) {
            Some(v) => number_of(v),
            None => match self.default(name) {
                DefaultValue::Int(i) => Some(i as f64),
                _ => None,
            },
        }
    }

    /// A flag; `None` written explicitly is falsy, as in Python.
    pub(super) fn flag(&self, name: &str) -> bool {
        match self.args.get(name) {
            Some((Value::Bool(b), _)) => *b,
            Some(_) => false,
            None => matches!(self.default(name), DefaultValue::Bool(true)),
        }
    }

    /// A tri-state flag: `None` unless written as `True` or `False`.
    pub(super) fn explicit_flag(&self, name: &str) -> Option<bool> {
        self.value(name).and_then(Value::as_bool)
    }

    pub(super) fn string(&self, name: &str) -> Option<String> {
        match self.value(name) {
            Some(Value::Str(s)) => Some(s.clone()),
            Some(_) => None,
            None => match self.default(name) {
                DefaultValue::Str(s) => Some(s.to_owned()),
                _ => None,
            },
        }
    }

    /// A string or list of strings, as a list; unevaluated items are left out.
    pub(super) fn strings(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(Value::Str(s)) => vec![s.clone()],
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => match self.default(name) {
                DefaultValue::StrList(items) => items.iter().map(|s| (*s).to_owned()).collect(),
                _ => Vec::new(),
            },
        }
    }

    /// A dict of strings; unevaluated entries are left out.
    pub(super) fn str_map(&self, name: &str) -> BTreeMap<String, String> {
        match self.value(name) {
            Some(Value::Dict(map)) => map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// A dict with any values, unevaluated ones kept as `Deferred`.
    pub(super) fn map(&self, name: &str) -> BTreeMap<String, Value> {
        match self.value(name) {
            Some(Value::Dict(map)) => map.clone(),
            _ => BTreeMap::new(),
        }
    }
}

/// An integer as Metaflow's `int()` would read it: ints, whole floats, and strings
/// spelling either. Booleans are refused: `times=True` is a mistake, not a count.
pub(super) fn int_of(v: &Value) -> Option<i64> {
    let whole =
        |f: f64| (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64);
    match v {
        Value::Int(i) => Some(*i),
        Value::Float(f) => whole(*f),
        Value::Str(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(whole))
        }
        _ => None,
    }
}

/// A number as Metaflow's `float()` would read it (`cpu="0.5"` included).
pub(super) fn number_of(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Str(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// A short Python-like rendering of a value for messages.
pub(super) fn show(v: &Value) -> String {
    let text = match v {
        Value::None => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Str(s) => format!("{s:?}"),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::Dict(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k:?}: {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Deferred { source_text, .. } => source_text.clone(),
    };
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX - 3).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// A `DECORATOR_BAD_VALUE` error about `@deco(attr=...)` on that argument's span.
pub(super) fn bad_value(c: &Checked<'_>, attr: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&codes::DECORATOR_BAD_VALUE, c.span(attr), message)
}

/// Check every decorator of one step (or of the flow). Returns the IR records, one
/// per decorator as written, and the checked known ones (first of each duplicate).
pub(super) fn check_all<'a>(
    decorators: &'a [RawDecorator],
    scope: Scope,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<Decorator>, Vec<Checked<'a>>) {
    let mut records = Vec::with_capacity(decorators.len());
    let mut checked = Vec::new();
    let mut first_seen: BTreeMap<&str, Span> = BTreeMap::new();
    for raw in decorators {
        let spec = table::lookup(&raw.name);
        records.push(as_written(raw, spec.is_some()));
        let Some(spec) = spec else {
            diagnostics.push(unknown_decorator(raw, scope));
            continue;
        };
        if spec.scope != scope {
            diagnostics.push(misplaced(raw, spec));
            continue;
        }
        if let Some(first) = first_seen.get(spec.name) {
            if !spec.allow_multiple {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::DECORATOR_DUPLICATE,
                        raw.span,
                        format!("`@{}` is used twice on this {}", spec.name, scope.noun()),
                    )
                    .with_label("second use")
                    .with_related(*first, "first used here")
                    .with_help(format!(
                        "Metaflow allows `@{}` once per {}; keep one and merge their arguments",
                        spec.name,
                        scope.noun()
                    )),
                );
                continue;
            }
        } else {
            first_seen.insert(spec.name, raw.span);
        }
        checked.push(check_args(raw, spec, diagnostics));
    }
    (records, checked)
}

fn as_written(raw: &RawDecorator, known: bool) -> Decorator {
    let mut args = BTreeMap::new();
    let mut arg_spans = BTreeMap::new();
    for arg in &raw.args {
        if let Some(name) = &arg.name {
            // A repeated keyword is a Python syntax error; the first one is kept.
            if !args.contains_key(name) {
                args.insert(name.clone(), arg.value.clone());
                arg_spans.insert(name.clone(), arg.span);
            }
        }
    }
    Decorator {
        name: raw.name.clone(),
        args,
        arg_spans,
        span: raw.span,
        known,
    }
}

fn unknown_decorator(raw: &RawDecorator, scope: Scope) -> Diagnostic {
    let here = table::DECORATORS
        .iter()
        .filter(|d| d.scope == scope)
        .map(|d| d.name);
    let elsewhere = table::DECORATORS
        .iter()
        .filter(|d| d.scope != scope)
        .map(|d| d.name);
    let help = if let Some(name) = did_you_mean(&raw.name, here) {
        format!("did you mean `@{name}`?")
    } else if let Some(name) = did_you_mean(&raw.name, elsewhere) {
        let other = if scope == Scope::Step {
            Scope::Flow
        } else {
            Scope::Step
        };
        format!("did you mean `@{name}`? it is a {} decorator", other.noun())
    } else {
        "if this is your own decorator, nothing needs to change: flowc keeps it as written but cannot interpret it"
            .to_owned()
    };
    Diagnostic::new(
        &codes::DECORATOR_UNKNOWN,
        raw.name_span,
        format!("unknown {} decorator `@{}`", scope.noun(), raw.name),
    )
    .with_label("not a Metaflow decorator")
    .with_help(help)
}

fn misplaced(raw: &RawDecorator, spec: &DecoratorSpec) -> Diagnostic {
    // The step/flow pairs Metaflow offers for the same feature.
    const PAIRS: &[(&str, &str)] = &[("pypi", "pypi_base"), ("conda", "conda_base")];
    let counterpart = PAIRS.iter().find_map(|(step, flow)| match spec.scope {
        Scope::Step if *step == spec.name => Some(*flow),
        Scope::Flow if *flow == spec.name => Some(*step),
        _ => None,
    });
    let (wrong, right) = match spec.scope {
        Scope::Step => ("the flow class", "above a `@step` method"),
        Scope::Flow => ("a step", "above the flow class"),
    };
    let help = match (counterpart, spec.scope) {
        (Some(other), Scope::Step) => format!(
            "use `@{other}` on the flow class, or move `@{}` {right}",
            spec.name
        ),
        (Some(other), Scope::Flow) => format!(
            "use `@{other}` on the step, or move `@{}` {right}",
            spec.name
        ),
        (None, _) => format!("move `@{}` {right}", spec.name),
    };
    Diagnostic::new(
        &codes::DECORATOR_MISPLACED,
        raw.name_span,
        format!(
            "`@{}` is a {} decorator and cannot be used on {wrong}",
            spec.name,
            spec.scope.noun()
        ),
    )
    .with_label(format!("{} decorator", spec.scope.noun()))
    .with_help(help)
}

fn check_args<'a>(
    raw: &'a RawDecorator,
    spec: &'static DecoratorSpec,
    diagnostics: &mut Vec<Diagnostic>,
) -> Checked<'a> {
    let mut args = BTreeMap::new();
    let mut dropped = BTreeSet::new();
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    let mut unpacked = false;
    for (i, arg) in raw.args.iter().enumerate() {
        if let (None, Value::Deferred { source_text, span }) = (&arg.name, &arg.value) {
            if source_text.starts_with('*') {
                // `@resources(**RESOURCES)` is valid Python; its keys are unknown here.
                diagnostics.push(deferred_unpacking(spec, source_text, *span));
                unpacked = true;
                continue;
            }
        }
        let Some(name) = arg.name.as_deref() else {
            // Suggest the attribute at the same position among the positional ones.
            let index = raw.args[..i].iter().filter(|a| a.name.is_none()).count();
            diagnostics.push(positional_argument(spec, index, &arg.value, arg.span));
            continue;
        };
        if let Some(first) = seen.get(name) {
            diagnostics.push(
                Diagnostic::new(
                    &codes::SYNTAX_ERROR,
                    arg.span,
                    format!(
                        "keyword argument `{name}` is repeated in `@{}(...)`",
                        spec.name
                    ),
                )
                .with_label("repeated")
                .with_related(*first, "first given here")
                .with_help("Python refuses a repeated keyword argument; keep one"),
            );
            continue;
        }
        seen.insert(name, arg.span);
        let Some(attr) = spec.attr(name) else {
            diagnostics.push(unknown_attribute(spec, name, arg.span));
            continue;
        };
        if let Value::Deferred { source_text, span } = &arg.value {
            let too_deep = arg.too_deep.contains(span);
            diagnostics.push(deferred(spec, attr.name, source_text, *span, too_deep));
            dropped.insert(attr.name);
            continue;
        }
        if !fits(attr, &arg.value) {
            let default = match attr.default {
                DefaultValue::None => "it has no default".to_owned(),
                d => format!("Metaflow's default is `{}={}`", attr.name, d.python()),
            };
            diagnostics.push(
                Diagnostic::new(
                    &codes::DECORATOR_BAD_VALUE,
                    arg.span,
                    format!(
                        "`@{}({}=...)` expects {}, got `{}`",
                        spec.name,
                        attr.name,
                        attr.kind.describe(),
                        show(&arg.value)
                    ),
                )
                .with_label(format!("not {}", attr.kind.describe()))
                .with_help(format!(
                    "give `{}` {}; {default}",
                    attr.name,
                    attr.kind.describe()
                )),
            );
            dropped.insert(attr.name);
            continue;
        }
        // Unevaluated pieces inside a list or dict stay in the value; say so once each.
        let mut nested = Vec::new();
        collect_deferred(&arg.value, attr.kind == Kind::HookList, &mut nested);
        for (text, span) in nested {
            let too_deep = arg.too_deep.contains(&span);
            diagnostics.push(deferred(spec, attr.name, text, span, too_deep));
        }
        args.insert(attr.name, (&arg.value, arg.span));
    }
    Checked {
        spec,
        raw,
        args,
        dropped,
        unpacked,
    }
}

fn positional_argument(
    spec: &DecoratorSpec,
    index: usize,
    value: &Value,
    span: Span,
) -> Diagnostic {
    let help = match spec.attrs.get(index) {
        _ if spec.attrs.is_empty() => format!(
            "`@{}` takes no arguments; write `@{}`",
            spec.name, spec.name
        ),
        Some(attr) => format!(
            "write it as a keyword argument, e.g. `@{}({}={})`",
            spec.name,
            attr.name,
            show(value)
        ),
        None => format!(
            "write it as a keyword argument: one of {}",
            spec.attr_names()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Diagnostic::new(
        &codes::DECORATOR_BAD_VALUE,
        span,
        format!("`@{}` takes keyword arguments only", spec.name),
    )
    .with_label("positional argument")
    .with_help(help)
}

fn unknown_attribute(spec: &DecoratorSpec, name: &str, span: Span) -> Diagnostic {
    let help = if spec.attrs.is_empty() {
        format!("`@{}` takes no arguments", spec.name)
    } else if let Some(close) = did_you_mean(name, spec.attr_names()) {
        format!("did you mean `{close}`?")
    } else {
        format!(
            "`@{}` takes {}",
            spec.name,
            spec.attr_names()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Diagnostic::new(
        &codes::DECORATOR_UNKNOWN_ATTRIBUTE,
        span,
        format!("`@{}` has no attribute `{name}`", spec.name),
    )
    .with_label("unknown attribute")
    .with_help(help)
}

fn deferred(
    spec: &DecoratorSpec,
    attr: &str,
    source_text: &str,
    span: Span,
    too_deep: bool,
) -> Diagnostic {
    if too_deep {
        return nested_too_deeply(
            span,
            format!(
                "`@{}({attr}=...)`: this value is nested too deeply to fold; it is kept as \
                 an expression",
                spec.name
            ),
        );
    }
    Diagnostic::new(
        &codes::VALUE_DEFERRED,
        span,
        format!(
            "`@{}({attr}=...)`: `{source_text}` cannot be evaluated statically; it is kept as an expression",
            spec.name
        ),
    )
    .with_label("not a constant")
    .with_help(
        "flowc reads the flow without running it; use a literal or a module-level constant \
         so that every target can check and use the value",
    )
}

fn deferred_unpacking(spec: &DecoratorSpec, source_text: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::VALUE_DEFERRED,
        span,
        format!(
            "`@{}({source_text})`: `{source_text}` cannot be evaluated statically; its arguments are kept as an expression",
            spec.name
        ),
    )
    .with_label("not a constant")
    .with_help(format!(
        "write the arguments out, e.g. `@{}(name=value)`, so that flowc can check and use them",
        spec.name
    ))
}

/// Does `value` have the shape `attr` takes? Unevaluated items inside lists and dicts
/// are accepted here (and reported separately).
fn fits(attr: &Attr, value: &Value) -> bool {
    fn str_or_deferred(v: &Value) -> bool {
        matches!(v, Value::Str(_) | Value::Deferred { .. })
    }
    fn all_items(v: &Value, f: fn(&Value) -> bool) -> bool {
        matches!(v, Value::List(items) if items.iter().all(|i| f(i) || i.is_deferred()))
    }
    fn str_map(v: &Value) -> bool {
        matches!(v, Value::Dict(map) if map.values().all(str_or_deferred))
    }
    if matches!(value, Value::None) {
        // Python's None means "not given" where the default is None, and is falsy
        // for flags; elsewhere Metaflow would fail on it.
        return attr.default == DefaultValue::None || attr.kind == Kind::Bool;
    }
    match attr.kind {
        Kind::Int(bound) => int_of(value).is_some_and(|i| bound.admits(i as f64)),
        Kind::Number(bound) => number_of(value).is_some_and(|n| bound.admits(n)),
        Kind::Bool => matches!(value, Value::Bool(_)),
        Kind::Str => matches!(value, Value::Str(_)),
        Kind::StrList => all_items(value, str_or_deferred),
        Kind::StrOrStrList => matches!(value, Value::Str(_)) || all_items(value, str_or_deferred),
        Kind::StrMap => str_map(value),
        Kind::Map => matches!(value, Value::Dict(_)),
        Kind::KeyValues => match value {
            Value::Str(s) => parse_key_values(s).is_ok(),
            other => str_map(other),
        },
        Kind::MapList => all_items(value, |i| matches!(i, Value::Dict(_))),
        Kind::StrOrMap => matches!(value, Value::Str(_) | Value::Dict(_)),
        Kind::StrOrMapList => all_items(value, |i| matches!(i, Value::Str(_) | Value::Dict(_))),
        Kind::HookList => all_items(value, str_or_deferred),
        Kind::Any => true,
    }
}

fn collect_deferred<'v>(
    value: &'v Value,
    functions_expected: bool,
    out: &mut Vec<(&'v str, Span)>,
) {
    match value {
        Value::Deferred { source_text, span } => out.push((source_text, *span)),
        Value::List(items) => {
            for item in items {
                // A hook list holds function references, which are never constants.
                if !(functions_expected && item.is_deferred()) {
                    collect_deferred(item, false, out);
                }
            }
        }
        Value::Dict(map) => map.values().for_each(|v| collect_deferred(v, false, out)),
        _ => {}
    }
}

/// Parse Kubernetes' `"k=v,k2=v2"` form (`@kubernetes(node_selector=...)`): every item
/// needs a `=`, and keys are unique, as Metaflow's parser demands.
pub(super) fn parse_key_values(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in text.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("`{item}` is not of the form key=value"));
        };
        if out.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!("key `{key}` is given twice"));
        }
    }
    Ok(out)
}
