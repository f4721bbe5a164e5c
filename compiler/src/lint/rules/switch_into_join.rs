//! Flags a switch case that leads straight to a join step.
//!
//! Which parents a join waits for must be known before the run; a case that jumps
//! straight to a join makes that depend on the condition. Metaflow refuses it and
//! asks for an unconditional step on that path.
//!
//! ```python
//! @step
//! def check(self):
//!     self.next({"ok": self.join, "retry": self.fix}, condition="status")
//!
//! @step
//! def join(self, inputs):
//!     self.next(self.end)
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::{is_parallel, EdgeKind};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::SWITCH_INTO_JOIN,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for node in g.nodes() {
        for &e in g.out_edges(node) {
            let edge = g.edge(e);
            let (_, to) = g.endpoints(e);
            // A `@parallel` switch is wrong as a whole (`parallel_on_switch`).
            if edge.kind != EdgeKind::Switch
                || is_parallel(g.step(node))
                || to == node
                || !g.step(to).is_join
                || Some(to) == g.end
            {
                continue;
            }
            out.push(
                Diagnostic::new(
                    &codes::SWITCH_INTO_JOIN,
                    edge.target.span,
                    format!(
                        "a case of the switch in step `{}` leads straight to join `{}`",
                        g.name(node),
                        g.name(to)
                    ),
                )
                .with_help(format!(
                    "add an unconditional step on this path, between `{}` and `{}`",
                    g.name(node),
                    g.name(to)
                )),
            );
        }
    }
}
