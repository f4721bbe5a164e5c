//! Flags `@parallel` on a switch step.
//!
//! The tasks of a `@parallel` gang end at one join that collects them all; when the
//! step chooses its next step at run time, that join is not known before the run, and
//! Metaflow refuses the flow. A switch can follow the join instead.
//!
//! ```python
//! @parallel
//! @step
//! def train(self):
//!     self.next({"ok": self.collect, "retry": self.train_again}, condition="status")
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::{is_parallel, next_span};
use crate::lint::rules::catch_on_split::decorator;
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::PARALLEL_ON_SWITCH,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for step in &cx.flow.steps {
        if !matches!(step.transition, Transition::Switch { .. }) || !is_parallel(step) {
            continue;
        }
        let at = decorator(step, "parallel").map_or(step.name_span, |d| d.span);
        out.push(
            Diagnostic::new(
                &codes::PARALLEL_ON_SWITCH,
                at,
                format!(
                    "`@parallel` step `{}` cannot choose its next step with a switch",
                    step.name
                ),
            )
            .with_label("a gang of tasks must end at one join")
            .with_related(next_span(step), "the switch")
            .with_help(format!(
                "end `{}` with `self.next(self.<join>)` to a join step, and switch after that join",
                step.name
            )),
        );
    }
}
