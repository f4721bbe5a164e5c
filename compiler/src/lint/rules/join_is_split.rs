//! Flags a join step that also splits (a branch, a foreach or a switch).
//!
//! Metaflow gives a step one role: a join merges its inputs, a split starts new
//! branches. A step doing both is refused; a step between them fixes it.
//!
//! ```python
//! @step
//! def join(self, inputs):
//!     self.next(self.a, self.b)
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::{next_span, EdgeKind};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::JOIN_IS_SPLIT,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for node in g.nodes() {
        let step = g.step(node);
        if !step.is_join || Some(node) == g.end {
            continue;
        }
        let splits = match &step.transition {
            Transition::Foreach { .. } | Transition::Switch { .. } => true,
            Transition::Branch { .. } => g
                .out_edges(node)
                .iter()
                .any(|&e| g.edge(e).kind == EdgeKind::Branch),
            _ => false,
        };
        if !splits {
            continue;
        }
        out.push(
            Diagnostic::new(
                &codes::JOIN_IS_SPLIT,
                next_span(step),
                format!("join `{}` also splits", step.name),
            )
            .with_related(step.params_span, "it takes `inputs`, so it is a join")
            .with_help(format!(
                "end `{}` with `self.next(self.<step>)` and move the split into that new step",
                step.name
            )),
        );
    }
}
