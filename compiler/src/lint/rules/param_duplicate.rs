//! Flags two parameters (or configs) with the same command-line name, or bound to the
//! same class attribute.
//!
//! Names are compared as Metaflow and the orchestrators see them: `--learning-rate`
//! and `--learning_rate` both become the keyword `learning_rate`, and Argo Workflows
//! compares parameter names without case. Two parameters on one attribute are worse:
//! the later assignment silently replaces the first.
//!
//! ```python
//! alpha = Parameter("alpha", default=0.1)
//! beta = Parameter("alpha", default=0.2)     # same --alpha
//! ```

use std::collections::HashMap;

use flowc_ir::Span;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::PARAM_DUPLICATE,
    check,
};

/// A parameter or config, as far as this rule is concerned.
struct Input<'f> {
    what: &'static str,
    attr: &'f str,
    name: &'f str,
    span: Span,
    name_span: Span,
}

/// How Metaflow's command line and the orchestrators tell names apart.
pub(super) fn normalized(name: &str) -> String {
    name.replace('-', "_").to_lowercase()
}

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let flow = cx.flow;
    let inputs = flow
        .parameters
        .iter()
        .map(|p| Input {
            what: "parameter",
            attr: &p.attr,
            name: &p.name,
            span: p.span,
            name_span: p.name_span,
        })
        .chain(flow.configs.iter().map(|c| Input {
            what: "config",
            attr: &c.attr,
            name: &c.name,
            span: c.span,
            name_span: c.span,
        }));
    let mut by_name: HashMap<String, Input<'_>> = HashMap::new();
    let mut by_attr: HashMap<&str, Span> = HashMap::new();
    for input in inputs {
        let first_attr = by_attr.get(input.attr).copied();
        let key = normalized(input.name);
        if let Some(first) = by_name.get(&key) {
            let message = if first.name == input.name {
                format!("{} name `{}` is used twice", input.what, input.name)
            } else {
                format!(
                    "{} name `{}` clashes with {} `{}`",
                    input.what, input.name, first.what, first.name
                )
            };
            out.push(
                Diagnostic::new(&codes::PARAM_DUPLICATE, input.name_span, message)
                    .with_related(
                        first.name_span,
                        format!("`{}` is declared here", first.name),
                    )
                    .with_help(
                        "give each parameter its own name; names differing only in case or in \
                         `-` versus `_` are the same on the command line",
                    ),
            );
        } else if let Some(first) = first_attr {
            out.push(
                Diagnostic::new(
                    &codes::PARAM_DUPLICATE,
                    input.span,
                    format!("attribute `{}` is assigned two parameters", input.attr),
                )
                .with_related(first, "first assigned here")
                .with_help(format!(
                    "the later assignment replaces the first; bind each parameter to its own \
                     attribute, or remove one of the `{}` assignments",
                    input.attr
                )),
            );
        }
        by_attr.entry(input.attr).or_insert(input.span);
        by_name.entry(key).or_insert(input);
    }
}
