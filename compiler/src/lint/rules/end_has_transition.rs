//! Flags an end step that calls `self.next(...)`.
//!
//! The end step is where a run finishes; a transition out of it would either be
//! ignored or make the flow run past its end.
//!
//! ```python
//! @step
//! def end(self):
//!     self.next(self.report)  # the end step has no next step
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::next_span;
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::END_HAS_TRANSITION,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let Some(end) = cx.graph.end else {
        return;
    };
    let step = cx.graph.step(end);
    // An unreadable call is still a call: the end step must not have one.
    if matches!(step.transition, Transition::End) && step.transition_span.is_none() {
        return;
    }
    out.push(
        Diagnostic::new(
            &codes::END_HAS_TRANSITION,
            next_span(step),
            format!("the end step `{}` calls `self.next(...)`", step.name),
        )
        .with_help(format!(
            "remove the `self.next(...)` call: the flow finishes at `{}`",
            step.name
        )),
    );
}
