//! Flags a flow without an exit step.
//!
//! A run finishes at the end step: the step named `end`, or the one marked
//! `@step(end=True)`. When it is missing, the steps that have no `self.next(...)` are
//! the likely candidates, so they are pointed at here instead of each being reported
//! as a step missing its transition.
//!
//! ```python
//! class TrainFlow(FlowSpec):
//!     @step
//!     def start(self):
//!         self.next(self.finish)
//!
//!     @step
//!     def finish(self):       # not `end`, and not marked @step(end=True)
//!         pass
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::MISSING_END,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    // An empty name means the frontend found several steps marked
    // `@step(end=True)` and reported that: the flow has no single end to miss.
    let flow = cx.flow;
    if cx.graph.end.is_some() || flow.end_step.is_empty() {
        return;
    }
    let wanted = flow.end_step.as_str();
    let mut diagnostic = Diagnostic::new(
        &codes::MISSING_END,
        flow.name_span,
        format!("flow `{}` has no end step `{wanted}`", flow.name),
    )
    .with_label("no end step in this flow")
    .with_help(
        "add the exit step, `@step def end(self): ...`, or mark one step with \
         `@step(end=True)`",
    );
    for node in cx.graph.nodes() {
        let step = cx.graph.step(node);
        if matches!(step.transition, Transition::End) && step.transition_span.is_none() {
            diagnostic = diagnostic.with_related(
                step.name_span,
                format!(
                    "`{}` has no `self.next(...)`: is it meant to be the end step?",
                    step.name
                ),
            );
        }
    }
    out.push(diagnostic);
}
