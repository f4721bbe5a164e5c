//! Flags a split that names the same step twice.
//!
//! `self.next(self.a, self.a)` opens two branches that are the same step; its join
//! would wait for two inputs from one task. Metaflow rejects it at the join.
//!
//! ```python
//! @step
//! def start(self):
//!     self.next(self.fit, self.fit)
//! ```

use std::collections::HashSet;

use flowc_ir::Transition;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::DUPLICATE_BRANCH,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for node in g.nodes() {
        let step = g.step(node);
        let Transition::Branch { to } = &step.transition else {
            continue;
        };
        let mut seen: HashSet<&str> = HashSet::new();
        for target in to {
            if seen.insert(target.step.as_str()) {
                continue;
            }
            let first = to.iter().find(|t| t.step == target.step).map(|t| t.span);
            let mut d = Diagnostic::new(
                &codes::DUPLICATE_BRANCH,
                target.span,
                format!("split `{}` names step `{}` twice", step.name, target.step),
            )
            .with_help("name each branch once; to run a step several times, use a foreach");
            if let Some(first) = first {
                d = d.with_related(first, "first named here");
            }
            out.push(d);
        }
    }
}
