//! Flags a split (branch or foreach) that is not closed by exactly one join of that
//! same split, nested splits included.
//!
//! Each branch of a split runs as its own task; the join is the one step where they
//! meet again, and it waits for all of them. A branch that skips the join, a join that
//! merges steps from different splits, a split closed by two joins, or an end step
//! reached with a split still open would all leave a run waiting or merge the wrong
//! tasks. A switch is not a split: exactly one case runs, and its cases may meet again
//! at any step without a join, as in Metaflow.
//!
//! ```python
//! @step
//! def start(self):
//!     self.next(self.a, self.b)
//!
//! @step
//! def a(self):
//!     self.next(self.join)
//!
//! @step
//! def b(self):
//!     self.next(self.end)      # branch `b` skips the join
//!
//! @step
//! def join(self, inputs):
//!     self.next(self.end)
//! ```

use petgraph::graph::NodeIndex;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::graph::{next_span, StepGraph};
use crate::lint::rules::{quoted_list, split_word};
use crate::lint::splits::{Finding, Part};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::UNBALANCED_JOIN,
    check,
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for finding in &cx.splits.findings {
        let d = match finding {
            Finding::Unclosed { split, end } => unclosed(g, *split, *end),
            Finding::MissingBranches {
                join,
                split,
                missing,
            } => missing_branches(g, *join, *split, missing),
            Finding::JoinedTwice {
                split,
                first,
                second,
            } => joined_twice(g, *split, *first, *second),
            Finding::Mixed {
                step,
                is_join,
                parts,
            } => mixed(g, *step, *is_join, parts),
            _ => continue,
        };
        out.push(d);
    }
}

/// "split `start`" / "foreach `start`".
fn split_name(g: &StepGraph<'_>, split: NodeIndex) -> String {
    format!("{} `{}`", split_word(g, split), g.name(split))
}

fn unclosed(g: &StepGraph<'_>, split: NodeIndex, end: NodeIndex) -> Diagnostic {
    Diagnostic::new(
        &codes::UNBALANCED_JOIN,
        next_span(g.step(split)),
        format!(
            "{} is not joined before the end step `{}`",
            split_name(g, split),
            g.name(end)
        ),
    )
    .with_label("the split starts here")
    .with_related(
        g.step(end).name_span,
        format!(
            "the end step is reached with `{}` still open",
            g.name(split)
        ),
    )
    .with_help(format!(
        "add a join step, `def join(self, inputs):`, where the branches of `{}` meet before `{}`",
        g.name(split),
        g.name(end)
    ))
}

fn missing_branches(
    g: &StepGraph<'_>,
    join: NodeIndex,
    split: NodeIndex,
    missing: &[NodeIndex],
) -> Diagnostic {
    let noun = if missing.len() == 1 {
        "branch"
    } else {
        "branches"
    };
    Diagnostic::new(
        &codes::UNBALANCED_JOIN,
        g.step(join).name_span,
        format!(
            "join `{}` does not merge {noun} {} of {}",
            g.name(join),
            quoted_list(missing.iter().map(|&n| g.name(n))),
            split_name(g, split)
        ),
    )
    .with_related(
        next_span(g.step(split)),
        format!("`{}` splits here", g.name(split)),
    )
    .with_help(format!(
        "make every branch of `{}` lead to `{}`",
        g.name(split),
        g.name(join)
    ))
}

fn joined_twice(
    g: &StepGraph<'_>,
    split: NodeIndex,
    first: NodeIndex,
    second: NodeIndex,
) -> Diagnostic {
    Diagnostic::new(
        &codes::UNBALANCED_JOIN,
        g.step(second).name_span,
        format!(
            "{} is joined twice, by `{}` and `{}`",
            split_name(g, split),
            g.name(first),
            g.name(second)
        ),
    )
    .with_related(
        next_span(g.step(split)),
        format!("`{}` splits here", g.name(split)),
    )
    .with_related(g.step(first).name_span, "first joined here")
    .with_help(format!(
        "let the branches of `{}` meet at a single join step",
        g.name(split)
    ))
}

fn mixed(g: &StepGraph<'_>, step: NodeIndex, is_join: bool, parts: &[Part]) -> Diagnostic {
    let mut described: Vec<String> = Vec::new();
    let mut splits: Vec<NodeIndex> = Vec::new();
    for part in parts {
        let text = match part.frame {
            Some((split, branch)) => {
                if !splits.contains(&split) {
                    splits.push(split);
                }
                format!("`{}` of {}", g.name(branch), split_name(g, split))
            }
            None => format!("`{}` outside any split", g.name(part.parent)),
        };
        if !described.contains(&text) {
            described.push(text);
        }
    }
    let what = if is_join { "join" } else { "step" };
    let mut d = Diagnostic::new(
        &codes::UNBALANCED_JOIN,
        g.step(step).name_span,
        format!(
            "{what} `{}` merges steps from different splits ({})",
            g.name(step),
            described.join(", ")
        ),
    )
    .with_help(
        "join each split on its own: the branches of the innermost split meet at their \
         own join before anything merges with steps outside it",
    );
    for split in splits {
        d = d.with_related(
            next_span(g.step(split)),
            format!("`{}` splits here", g.name(split)),
        );
    }
    d
}
