//! Flags a switch with fewer than two cases.
//!
//! A switch chooses one step among several; with one case there is nothing to choose
//! and the condition artifact is read for nothing. Metaflow requires at least two.
//!
//! ```python
//! @step
//! def route(self):
//!     self.next({"csv": self.parse_csv}, condition="fmt")
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::next_span;
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::SWITCH_TOO_FEW_CASES,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for node in g.nodes() {
        let step = g.step(node);
        let Transition::Switch { cases, .. } = &step.transition else {
            continue;
        };
        if cases.len() >= 2 {
            continue;
        }
        let count = match cases.len() {
            0 => "no cases".to_string(),
            _ => "only one case".to_string(),
        };
        let help = match cases.first() {
            Some(case) => format!(
                "add another case, or write `self.next(self.{})` for a single next step",
                case.target.step
            ),
            None => {
                "give the switch at least two cases, `{\"a\": self.x, \"b\": self.y}`".to_string()
            }
        };
        out.push(
            Diagnostic::new(
                &codes::SWITCH_TOO_FEW_CASES,
                next_span(step),
                format!("the switch in step `{}` has {count}", step.name),
            )
            .with_help(help),
        );
    }
}
