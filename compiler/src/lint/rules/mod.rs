//! The lint rules, one a file, each named after what it flags. The registry that
//! orders them is `RULES` in `lint/mod.rs`.

pub(super) mod ambiguous_entry;
pub(super) mod catch_on_split;
pub(super) mod cycle;
pub(super) mod duplicate_branch;
pub(super) mod end_has_transition;
pub(super) mod inputs_not_join;
pub(super) mod join_is_split;
pub(super) mod join_without_inputs;
pub(super) mod missing_end;
pub(super) mod missing_start;
pub(super) mod missing_transition;
pub(super) mod multiple_compute;
pub(super) mod parallel_not_joined;
pub(super) mod parallel_on_switch;
pub(super) mod param_default_type;
pub(super) mod param_duplicate;
pub(super) mod param_no_default;
pub(super) mod param_reserved_name;
pub(super) mod schedule_required_parameter;
pub(super) mod split_into_join;
pub(super) mod start_has_incoming;
pub(super) mod switch_into_join;
pub(super) mod switch_too_few_cases;
pub(super) mod unbalanced_join;
pub(super) mod unknown_step;
pub(super) mod unreachable;

use flowc_ir::Transition;
use petgraph::graph::NodeIndex;

use super::graph::StepGraph;

/// What to call the split a step opens, for messages: `split` or `foreach`.
fn split_word(graph: &StepGraph<'_>, split: NodeIndex) -> &'static str {
    match graph.step(split).transition {
        Transition::Branch { .. } => "split",
        Transition::Foreach { .. } => "foreach",
        // A plain transition that opens a split is the fan-out into a @parallel step.
        _ => "parallel split",
    }
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b` and `c` ``.
fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}
