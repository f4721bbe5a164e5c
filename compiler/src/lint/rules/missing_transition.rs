//! Flags a step, other than the end step, that does not end with `self.next(...)`.
//!
//! Without a transition the run stops at that step and every step after it never
//! runs. (When the flow has no end step at all, `missing_end` points at these steps
//! instead: one of them is probably the end.)
//!
//! ```python
//! @step
//! def train(self):
//!     self.model = fit()
//!     # no self.next(...): the run stops here
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::has_unread_transition;
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::MISSING_TRANSITION,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    if g.end.is_none() {
        return;
    }
    for node in g.nodes() {
        let step = g.step(node);
        // An unreadable `self.next(...)` is the frontend's to report.
        if Some(node) == g.end
            || !matches!(step.transition, Transition::End)
            || has_unread_transition(step)
        {
            continue;
        }
        out.push(
            Diagnostic::new(
                &codes::MISSING_TRANSITION,
                step.name_span,
                format!("step `{}` does not call `self.next(...)`", step.name),
            )
            .with_help(
                "end the step with `self.next(self.<next>)`, naming the step that runs after it",
            ),
        );
    }
}
