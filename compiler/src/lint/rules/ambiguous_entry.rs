//! Flags a step named `start` (or `end`) when another step is marked
//! `@step(start=True)` (or `@step(end=True)`).
//!
//! Metaflow refuses such a flow: the name and the annotation both claim the entry (or
//! exit), and which one runs first would depend on which rule a reader remembers.
//!
//! ```python
//! class FeatureFlow(FlowSpec):
//!     @step(start=True)
//!     def extract(self):
//!         self.next(self.start)
//!
//!     @step
//!     def start(self):        # named like the entry, but `extract` is the entry
//!         self.next(self.end)
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::AMBIGUOUS_ENTRY,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for (chosen, legacy, role, flag) in [
        (g.start, "start", "entry", "start=True"),
        (g.end, "end", "exit", "end=True"),
    ] {
        let (Some(chosen), Some(named)) = (chosen, g.node(legacy)) else {
            continue;
        };
        if chosen == named {
            continue;
        }
        let marked = g.step(chosen);
        out.push(
            Diagnostic::new(
                &codes::AMBIGUOUS_ENTRY,
                g.step(named).name_span,
                format!(
                    "step `{legacy}` is not the {role} step: `{}` is marked `@step({flag})`",
                    marked.name
                ),
            )
            .with_related(marked.name_span, format!("`{}` is the {role} step", marked.name))
            .with_help(format!(
                "rename `{legacy}`, or remove `{flag}` from `{}` and let `{legacy}` be the {role} step",
                marked.name
            )),
        );
    }
}
