//! `@step` methods → IR `Step`s: the step decorator (and its `start=`/`end=` marks),
//! the other decorators, the signature, the docstring and the transition.

use std::collections::HashMap;

use flowc_ir::{FlowSpecView, Span, Step, Value};
use tree_sitter::Node;

use super::decorators::lower_step_decorators;
use super::docstring;
use super::eval::Scope;
use super::flow_class::Context;
use super::raw_decorators::raw_decorator;
use super::syntax::{
    self, named_children, span, statements, text, Argument, DecoratorExpr, FieldExt, FunctionDef,
};
use super::transitions;
use crate::diagnostics::{codes, did_you_mean, Diagnostic};

/// Step names Metaflow rejects (its linter's list) or that would shadow attributes
/// every flow relies on (`FlowSpec`'s non-parameter attributes).
const RESERVED: &[&str] = &[
    "name",
    "next",
    "input",
    "index",
    "cmd",
    "foreach_stack",
    "script_name",
];

/// Metaflow's rule for step names: lowercase ASCII letters, digits and `_`, not
/// starting with `_` (names end up in paths, URLs and orchestrator object names).
fn is_valid_step_name(name: &str) -> bool {
    !name.starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A valid name close to `name`, for the help: `trainModel` → `train_model`.
fn valid_step_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            previous_lower = true;
        } else if !out.ends_with('_') {
            out.push('_');
            previous_lower = false;
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() || trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        format!("step_{trimmed}")
    } else {
        trimmed.to_string()
    }
}

/// The arguments `@step(...)` takes.
const STEP_ARGUMENTS: &[&str] = &["start", "end", "node_info"];

/// A lowered step and the marks its `@step(...)` carried.
#[derive(Debug, Clone)]
pub(crate) struct StepDraft {
    pub(crate) step: Step,
    pub(crate) marked_start: bool,
    pub(crate) marked_end: bool,
}

/// Every step defined directly in one class body, in source order. A name defined
/// twice keeps its first place and its last definition, like a class namespace.
pub(crate) fn lower<'t>(
    cx: &Context<'t, '_>,
    body: Node<'t>,
    scope: &Scope<'t>,
    flow_view: &FlowSpecView,
    inherited_from: Option<&str>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<StepDraft> {
    let mut drafts: Vec<StepDraft> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for stmt in statements(body) {
        let Some(def) = FunctionDef::cast(stmt) else {
            continue;
        };
        let Some(draft) = lower_one(cx, def, scope, flow_view, inherited_from, diagnostics) else {
            continue;
        };
        match by_name.get(&draft.step.name) {
            Some(&first) => {
                let name = &draft.step.name;
                diagnostics.push(
                    Diagnostic::new(
                        &codes::STEP_DUPLICATE,
                        draft.step.name_span,
                        format!("step `{name}` is defined more than once"),
                    )
                    .with_label("defined again here")
                    .with_related(drafts[first].step.name_span, "first defined here")
                    .with_help("rename one of the steps or remove one definition"),
                );
                drafts[first] = draft;
            }
            None => {
                by_name.insert(draft.step.name.clone(), drafts.len());
                drafts.push(draft);
            }
        }
    }
    drafts
}

/// The `@step` decorator's marks, if `deco` is `@step` or `@step(...)`.
fn step_marks(
    cx: &Context<'_, '_>,
    deco: &DecoratorExpr<'_>,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(bool, bool)> {
    if !cx.imports.is(deco.callee, cx.src, "step") {
        return None;
    }
    let mut marks = (false, false);
    let Some(call) = deco.call else {
        return Some(marks);
    };
    for arg in call.arguments() {
        let Argument::Keyword { node, name, value } = arg else {
            diagnostics.push(
                Diagnostic::new(
                    &codes::DECORATOR_UNKNOWN_ATTRIBUTE,
                    span(arg.node()),
                    "`@step(...)` takes only keyword arguments",
                )
                .with_help("write `@step`, `@step(start=True)` or `@step(end=True)`"),
            );
            continue;
        };
        let name = text(name, cx.src);
        let slot = match name {
            "start" => &mut marks.0,
            "end" => &mut marks.1,
            "node_info" => continue,
            other => {
                let help = match did_you_mean(other, STEP_ARGUMENTS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "`@step(...)` takes `start=` and `end=`".into(),
                };
                diagnostics.push(
                    Diagnostic::new(
                        &codes::DECORATOR_UNKNOWN_ATTRIBUTE,
                        span(node),
                        format!("`@step` has no argument `{other}`"),
                    )
                    .with_help(help),
                );
                continue;
            }
        };
        match cx.eval.eval(value, Some(scope)) {
            Value::Bool(b) => *slot = b,
            Value::None => {}
            _ => diagnostics.push(
                Diagnostic::new(
                    &codes::DECORATOR_BAD_VALUE,
                    span(value),
                    format!("`{name}=` of `@step` must be `True` or `False`"),
                )
                .with_help(format!("write `@step({name}=True)`")),
            ),
        }
    }
    Some(marks)
}

fn lower_one<'t>(
    cx: &Context<'t, '_>,
    def: FunctionDef<'t>,
    scope: &Scope<'t>,
    flow_view: &FlowSpecView,
    inherited_from: Option<&str>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<StepDraft> {
    let decorators = def.decorators();
    let mut marks = None;
    let mut raw = Vec::new();
    for deco in &decorators {
        match step_marks(cx, deco, scope, diagnostics) {
            Some(m) => marks = Some(m),
            None => raw.push(raw_decorator(
                deco,
                cx.src,
                &cx.imports,
                &cx.eval,
                Some(scope),
            )),
        }
    }
    let (marked_start, marked_end) = marks?;
    let name_node = def.name()?;
    let name = text(name_node, cx.src).to_string();
    if RESERVED.contains(&name.as_str()) {
        diagnostics.push(
            Diagnostic::new(
                &codes::STEP_RESERVED_NAME,
                span(name_node),
                format!("`{name}` is a reserved word and cannot name a step"),
            )
            .with_label("reserved")
            .with_help(format!("rename the step, e.g. `{name}_step`")),
        );
    } else if !is_valid_step_name(&name) {
        diagnostics.push(
            Diagnostic::new(
                &codes::STEP_INVALID_NAME,
                span(name_node),
                format!("`{name}` is not a valid step name"),
            )
            .with_label("Metaflow refuses this name")
            .with_help(format!(
                "use only lowercase letters, digits and `_`, not starting with `_`: e.g. `{}`",
                valid_step_name(&name)
            )),
        );
    }
    let (params, params_span, positional) = signature(def, &name, cx.src, diagnostics);
    let (decorators, spec) = lower_step_decorators(&raw, flow_view, diagnostics);
    let body = def.body();
    let doc = body
        .and_then(syntax::docstring)
        .and_then(|d| cx.eval.eval(d, None).as_str().and_then(docstring::clean));
    let (transition, transition_span) = match body {
        Some(body) => transitions::lower(body, &name, cx.src, &cx.eval, diagnostics),
        None => (flowc_ir::Transition::End, None),
    };
    Some(StepDraft {
        step: Step {
            name,
            doc,
            span: span(def.outer),
            name_span: span(name_node),
            decorators,
            spec,
            params,
            params_span,
            is_join: positional >= 2,
            transition,
            transition_span,
            inherited_from: inherited_from.map(str::to_string),
        },
        marked_start,
        marked_end,
    })
}

/// The step's parameters after `self`, the parameter list's span and how many plain
/// positional parameters it takes (`self` included). Reports anything but `(self)` and
/// `(self, inputs)`.
fn signature(
    def: FunctionDef<'_>,
    step: &str,
    src: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<String>, Span, usize) {
    let Some(params) = def.parameters() else {
        let at = def.name().map_or_else(|| span(def.node), span);
        return (Vec::new(), Span::new(at.end, at.end), 0);
    };
    let mut names = Vec::new();
    let mut unsupported: Option<Node<'_>> = None;
    for p in named_children(params) {
        let name = match p.kind() {
            "identifier" => Some(p),
            "default_parameter" | "typed_default_parameter" => p.field("name"),
            "typed_parameter" => named_children(p)
                .into_iter()
                .find(|c| c.kind() == "identifier"),
            _ => None,
        };
        match name.filter(|n| n.kind() == "identifier") {
            Some(n) => names.push(text(n, src).to_string()),
            None => {
                unsupported.get_or_insert(p);
            }
        }
    }
    let params_span = span(params);
    let problem = if let Some(p) = unsupported {
        Some(format!(
            "step `{step}` takes `{}`, but a step takes only `self` and, for a join, `inputs`",
            text(p, src)
        ))
    } else if names.is_empty() {
        Some(format!("step `{step}` does not take `self`"))
    } else if names.len() > 2 {
        Some(format!(
            "step `{step}` takes {} parameters, but a step takes `self` and, for a join, `inputs`",
            names.len()
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        diagnostics.push(
            Diagnostic::new(&codes::STEP_BAD_SIGNATURE, params_span, message)
                .with_label("step parameters")
                .with_help("write `def step(self):`, or `def join(self, inputs):` for a join"),
        );
    }
    let positional = names.len();
    (names.into_iter().skip(1).collect(), params_span, positional)
}
