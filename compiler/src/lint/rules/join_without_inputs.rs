//! Flags a step where several branches of a split meet but that does not take
//! `inputs`.
//!
//! Such a step is a join by the shape of the graph, but written as a plain step it
//! cannot see the artifacts of each branch, and Metaflow does not treat it as the
//! split's join. Declaring `inputs` is the fix. (Steps where the cases of a switch
//! meet are not joins: only one case runs.)
//!
//! ```python
//! @step
//! def start(self):
//!     self.next(self.a, self.b)
//!
//! # `a` and `b` both lead here
//! @step
//! def join(self):              # should be `def join(self, inputs):`
//!     self.next(self.end)
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::rules::{quoted_list, split_word};
use crate::lint::splits::Finding;
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::JOIN_WITHOUT_INPUTS,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for finding in &cx.splits.findings {
        let Finding::JoinWithoutInputs {
            step,
            split,
            branches,
        } = finding
        else {
            continue;
        };
        let s = g.step(*step);
        out.push(
            Diagnostic::new(
                &codes::JOIN_WITHOUT_INPUTS,
                s.name_span,
                format!(
                    "step `{}` joins branches {} of {} `{}` but does not take `inputs`",
                    s.name,
                    quoted_list(branches.iter().map(|&b| g.name(b))),
                    split_word(g, *split),
                    g.name(*split)
                ),
            )
            .with_related(s.params_span, "no `inputs` parameter")
            .with_help(format!("declare it as `def {}(self, inputs):`", s.name)),
        );
    }
}
