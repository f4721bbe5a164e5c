//! Flags a flow without an entry step.
//!
//! Every run begins at the start step: the step named `start`, or the one marked
//! `@step(start=True)`. Without it nothing can run, and no other graph fact (what is
//! reachable, which split is open where) means anything, so the graph rules that need
//! an entry stay silent until this is fixed.
//!
//! ```python
//! class TrainFlow(FlowSpec):
//!     @step
//!     def begin(self):        # not `start`, and not marked @step(start=True)
//!         self.next(self.end)
//!
//!     @step
//!     def end(self):
//!         pass
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::MISSING_START,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    // An empty name means the frontend found several steps marked
    // `@step(start=True)` and reported that: the flow has no single start to miss.
    let flow = cx.flow;
    if cx.graph.start.is_some() || flow.start_step.is_empty() {
        return;
    }
    let wanted = flow.start_step.as_str();
    out.push(
        Diagnostic::new(
            &codes::MISSING_START,
            flow.name_span,
            format!("flow `{}` has no start step `{wanted}`", flow.name),
        )
        .with_label("no start step in this flow")
        .with_help(
            "add the entry step, `@step def start(self): ...`, or mark one step with \
             `@step(start=True)`",
        ),
    );
}
