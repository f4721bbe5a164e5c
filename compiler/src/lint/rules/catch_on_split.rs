//! Flags `@catch` on a foreach step or a switch step.
//!
//! Metaflow refuses both when the run starts: a foreach split that fails and is
//! caught has no list of items to fan out over, and a caught switch step may not have
//! recorded the artifact its condition reads, so neither can go on safely. Put the
//! risky work in a step of its own before the split and catch there.
//!
//! ```python
//! @catch(var="failure")
//! @step
//! def start(self):
//!     self.shards = load_shards()
//!     self.next(self.train, foreach="shards")   # a foreach step cannot be caught
//! ```

use flowc_ir::{Decorator, Step, Transition};

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::next_span;
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::CATCH_ON_SPLIT,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for step in &cx.flow.steps {
        let kind = match step.transition {
            Transition::Foreach { .. } => "a foreach",
            Transition::Switch { .. } => "a switch",
            _ => continue,
        };
        let Some(catch) = decorator(step, "catch") else {
            continue;
        };
        out.push(
            Diagnostic::new(
                &codes::CATCH_ON_SPLIT,
                catch.span,
                format!(
                    "`@catch` cannot be used on step `{}`, {kind} step",
                    step.name
                ),
            )
            .with_label("not supported here")
            .with_related(next_span(step), format!("`{}` is {kind} step", step.name))
            .with_help(format!(
                "move the work that may fail into a step before `{}` and put `@catch` there",
                step.name
            )),
        );
    }
}

/// The step's decorator `name`, as written.
pub(super) fn decorator<'f>(step: &'f Step, name: &str) -> Option<&'f Decorator> {
    step.decorators.iter().find(|d| d.name == name)
}
