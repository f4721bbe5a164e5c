//! Flags a step that takes `inputs` but is not the join of a split.
//!
//! Only the step where the branches of a split meet receives `inputs`; anywhere else
//! Metaflow refuses the step, and a run would hand it one parent where it expects
//! several. The end step can never be a join.
//!
//! ```python
//! @step
//! def start(self):
//!     self.next(self.train)
//!
//! @step
//! def train(self, inputs):      # nothing splits before it
//!     self.next(self.end)
//! ```

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::rules::split_word;
use crate::lint::splits::{Finding, NotJoin};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::INPUTS_NOT_JOIN,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for finding in &cx.splits.findings {
        let Finding::InputsNotJoin { step, reason } = finding else {
            continue;
        };
        let s = g.step(*step);
        // More than one parameter after `self` is a bad signature, which the frontend
        // reports; whether the step was meant as a join is anyone's guess.
        if s.params.len() > 1 {
            continue;
        }
        let plain = format!("declare it as `def {}(self):`", s.name);
        let (message, help) = match reason {
            NotJoin::NoSplit => (
                format!(
                    "step `{}` takes `inputs` but is not the join of a split",
                    s.name
                ),
                format!("{plain}: only the step where the branches of a split meet takes `inputs`"),
            ),
            NotJoin::OneBranch { split, branch } => (
                format!(
                    "step `{}` takes `inputs` but only branch `{}` of {} `{}` leads to it",
                    s.name,
                    g.name(*branch),
                    split_word(g, *split),
                    g.name(*split)
                ),
                format!(
                    "{plain}, and join every branch of `{}` in one step",
                    g.name(*split)
                ),
            ),
            NotJoin::End => (
                format!(
                    "the end step `{}` takes `inputs`, but it cannot be a join",
                    s.name
                ),
                format!("add a join step before `{}` and {plain}", s.name),
            ),
        };
        out.push(Diagnostic::new(&codes::INPUTS_NOT_JOIN, s.params_span, message).with_help(help));
    }
}
