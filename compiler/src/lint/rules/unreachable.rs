//! Flags a step that no path from the start step reaches.
//!
//! Such a step never runs: usually a transition names the wrong step, or the step is
//! left over. A step is not reported when only a misspelt target leads to it (the
//! typo is reported once, by `unknown_step`), nor when the flow has no start step, nor
//! while a reachable step lacks its `self.next(...)`: the missing transition most
//! likely leads to the steps that look unreachable.
//!
//! ```python
//! @step
//! def start(self):
//!     self.next(self.end)
//!
//! @step
//! def cleanup(self):           # nothing calls self.next(self.cleanup)
//!     self.next(self.end)
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::UNREACHABLE,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    let Some(start) = g.start else {
        return;
    };
    let stops_early = g
        .topo
        .iter()
        .any(|&n| Some(n) != g.end && matches!(g.step(n).transition, Transition::End));
    if stops_early {
        return;
    }
    for node in g.nodes() {
        if g.reachable[node.index()] {
            continue;
        }
        let step = g.step(node);
        out.push(
            Diagnostic::new(
                &codes::UNREACHABLE,
                step.name_span,
                format!(
                    "step `{}` cannot be reached from the start step `{}`",
                    step.name,
                    g.name(start)
                ),
            )
            .with_help(format!(
                "call `self.next(self.{})` from the step that should run before it, or remove `{}`",
                step.name, step.name
            )),
        );
    }
}
