//! Flags a `@parallel` step that does not lead straight to a join step.
//!
//! A `@parallel` step runs as a gang of tasks started by `num_parallel`; the gang
//! ends at a join that collects every task. Metaflow requires that join to be the
//! step right after the `@parallel` one.
//!
//! ```python
//! @parallel
//! @step
//! def train(self):
//!     self.next(self.report)       # `report` must be `def report(self, inputs):`
//! ```

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::{is_parallel, next_span};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::PARALLEL_NOT_JOINED,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for node in g.nodes() {
        let step = g.step(node);
        // A missing or unknown transition is reported by its own rule, and so is a
        // switch (`parallel_on_switch`).
        if !is_parallel(step)
            || g.is_dead_end(node)
            || matches!(step.transition, Transition::Switch { .. })
        {
            continue;
        }
        let Some(&first) = g.out_edges(node).first() else {
            continue;
        };
        let (_, next) = g.endpoints(first);
        if g.out_edges(node).len() == 1 && g.step(next).is_join {
            continue;
        }
        out.push(
            Diagnostic::new(
                &codes::PARALLEL_NOT_JOINED,
                next_span(step),
                format!(
                    "`@parallel` step `{}` leads to `{}`, which is not a join",
                    step.name,
                    g.name(next)
                ),
            )
            .with_help(format!(
                "end `{}` with `self.next(self.<join>)` to a step declared as `def <join>(self, inputs):`",
                step.name
            )),
        );
    }
}
