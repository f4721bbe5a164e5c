//! Flags a `self.next(...)` target that names no step.
//!
//! The run would fail when it reaches the transition. Each unknown target is reported
//! once, here; the graph the other rules read has no edge for it, and reachability
//! follows the suggested step so a typo does not also make every later step
//! "unreachable".
//!
//! ```python
//! @step
//! def train(self):
//!     self.next(self.evalute)   # the step is `evaluate`
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::UNKNOWN_STEP,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for unknown in &g.unknown {
        let name = &unknown.target.step;
        let help = match unknown.suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "define the step with `@step def {name}(self): ...`, or name an existing step"
            ),
        };
        out.push(
            Diagnostic::new(
                &codes::UNKNOWN_STEP,
                unknown.target.span,
                format!(
                    "step `{}` names unknown step `{name}`",
                    g.name(unknown.from)
                ),
            )
            .with_label("no step with this name")
            .with_help(help),
        );
    }
}
