//! Flags a parameter whose name Metaflow reserves, or whose attribute clashes with
//! the flow itself.
//!
//! The command-line names below are options Metaflow's `run` command already has, so
//! Metaflow refuses them as parameter names. On the class, an attribute starting with
//! `_` or named like one of `FlowSpec`'s own members (`name`, `input`, `next`, ...) is
//! silently not treated as a parameter, or breaks the flow; an attribute named like a
//! step replaces the step.
//!
//! ```python
//! tags = Parameter("tags", default="")        # --tags is a run option
//! train = Parameter("epochs", default=3)      # hides the step `train`
//! ```

use flowc_ir::Span;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::PARAM_RESERVED_NAME,
    check,
};

/// Options of Metaflow's `run` command (Metaflow 2.19, `parameters.py`). Metaflow
/// also refuses each with `-` written as `_`.
const RESERVED_NAMES: &[&str] = &[
    "params",
    "with",
    "tag",
    "namespace",
    "obj",
    "tags",
    "decospecs",
    "run-id-file",
    "max-num-splits",
    "max-workers",
    "max-log-size",
    "user-namespace",
    "run-id",
    "task-id",
    "runner-attribute-file",
];

/// `FlowSpec`'s own public members, which Metaflow never reads as parameters.
const RESERVED_ATTRS: &[&str] = &[
    "cmd",
    "foreach_stack",
    "index",
    "input",
    "merge_artifacts",
    "name",
    "next",
    "script_name",
];

fn reserved_name(name: &str) -> bool {
    RESERVED_NAMES
        .iter()
        .any(|r| *r == name || r.replace('-', "_") == name)
}

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let flow = cx.flow;
    for p in &flow.parameters {
        if reserved_name(&p.name) {
            out.push(
                Diagnostic::new(
                    &codes::PARAM_RESERVED_NAME,
                    p.name_span,
                    format!("parameter name `{}` is reserved by Metaflow", p.name),
                )
                .with_label(format!("`--{}` is already an option of `run`", p.name))
                .with_help(format!(
                    "choose another name, e.g. `{}_value`",
                    p.name.replace('-', "_")
                )),
            );
        }
    }
    let attrs = flow
        .parameters
        .iter()
        .map(|p| ("parameter", p.attr.as_str(), p.span))
        .chain(
            flow.configs
                .iter()
                .map(|c| ("config", c.attr.as_str(), c.span)),
        );
    for (what, attr, span) in attrs {
        check_attr(cx, what, attr, span, out);
    }
}

fn check_attr(cx: &Context<'_>, what: &str, attr: &str, span: Span, out: &mut Vec<Diagnostic>) {
    let help = "bind it to another attribute name";
    if attr.starts_with('_') {
        out.push(
            Diagnostic::new(
                &codes::PARAM_RESERVED_NAME,
                span,
                format!("{what} attribute `{attr}` starts with `_`, so Metaflow ignores it"),
            )
            .with_help(help),
        );
    } else if RESERVED_ATTRS.contains(&attr) {
        out.push(
            Diagnostic::new(
                &codes::PARAM_RESERVED_NAME,
                span,
                format!("{what} attribute `{attr}` clashes with the flow's own `{attr}`"),
            )
            .with_help(help),
        );
    } else if let Some(step) = cx.graph.node(attr).map(|n| cx.graph.step(n)) {
        out.push(
            Diagnostic::new(
                &codes::PARAM_RESERVED_NAME,
                span,
                format!("{what} attribute `{attr}` has the same name as step `{attr}`"),
            )
            .with_related(step.name_span, "the step is defined here")
            .with_help(help),
        );
    }
}
