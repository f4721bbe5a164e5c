//! Flags a transition into the start step.
//!
//! The start step runs once, first, with the flow's parameters; nothing may lead back
//! to it, not even a switch case looping to it (Metaflow allows that recursion on any
//! other step). Such an edge is reported here rather than as a cycle.
//!
//! ```python
//! @step
//! def train(self):
//!     self.next(self.start)
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::START_HAS_INCOMING,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    let Some(start) = g.start else {
        return;
    };
    for node in g.nodes() {
        for &e in g.out_edges(node) {
            if g.endpoints(e).1 != start {
                continue;
            }
            out.push(
                Diagnostic::new(
                    &codes::START_HAS_INCOMING,
                    g.edge(e).target.span,
                    format!(
                        "step `{}` leads back to the start step `{}`",
                        g.name(node),
                        g.name(start)
                    ),
                )
                .with_help(
                    "the start step is the entry of the flow and nothing may lead to it; \
                     move the work to repeat into its own step",
                ),
            );
        }
    }
}
