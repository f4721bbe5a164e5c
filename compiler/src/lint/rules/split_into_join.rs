//! Flags a branch or foreach that leads straight to a join step.
//!
//! A branch needs a step of its own to run before its join: a foreach followed
//! directly by its join has nothing to run for each item, and a branch that is its
//! own join makes the join wait for itself. Metaflow refuses both.
//!
//! ```python
//! @step
//! def start(self):
//!     self.items = [1, 2, 3]
//!     self.next(self.join, foreach="items")
//!
//! @step
//! def join(self, inputs):
//!     self.next(self.end)
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::next_span;
use crate::lint::rules::split_word;
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::SPLIT_INTO_JOIN,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for node in g.nodes() {
        for &e in g.out_edges(node) {
            let edge = g.edge(e);
            let (_, to) = g.endpoints(e);
            // The end step taking `inputs` is reported on its own.
            if !edge.kind.opens_split() || !g.step(to).is_join || Some(to) == g.end {
                continue;
            }
            out.push(
                Diagnostic::new(
                    &codes::SPLIT_INTO_JOIN,
                    edge.target.span,
                    format!(
                        "{} `{}` leads straight to join `{}`",
                        split_word(g, node),
                        g.name(node),
                        g.name(to)
                    ),
                )
                .with_related(next_span(g.step(node)), "the split")
                .with_help(format!(
                    "add a step between `{}` and `{}`: each branch needs a step of its own",
                    g.name(node),
                    g.name(to)
                )),
            );
        }
    }
}
