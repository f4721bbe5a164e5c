//! Flags a cycle in the step graph.
//!
//! A flow is a DAG: a cycle would run forever or leave its join waiting. The one
//! loop Metaflow allows is a switch case that targets its own step (recursion with a
//! condition that eventually picks another case); loops back to the start step are
//! reported by `start_has_incoming`. Each cycle is shown as a path, with the caret on
//! the transition that closes it.
//!
//! ```python
//! @step
//! def train(self):
//!     self.next(self.evaluate)
//!
//! @step
//! def evaluate(self):
//!     self.next(self.train)    # train -> evaluate -> train
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::CYCLE,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for back in &g.back_edges {
        let path: Vec<&str> = back.path.iter().map(|&n| g.name(n)).collect();
        let (from, to) = g.endpoints(back.edge);
        let mut d = Diagnostic::new(
            &codes::CYCLE,
            g.edge(back.edge).target.span,
            format!("the steps form a cycle: {}", path.join(" -> ")),
        )
        .with_label(format!(
            "`{}` leads back to `{}` here",
            g.name(from),
            g.name(to)
        ))
        .with_help(
            "break the cycle: a step may only loop through a switch case that targets \
             the step itself",
        );
        if from != to {
            d = d.with_related(g.step(to).name_span, "the cycle starts here");
        }
        out.push(d);
    }
}
