//! Checks on the IR: graph rules and cross-cutting rules, one rule a file under `rules/`.
//!
//! `run` builds the step graph (`graph`) and the split/join analysis (`splits`) once,
//! then runs every rule of `RULES` in order over them. A rule never recomputes a
//! whole-graph fact of its own: the shared model keeps `run` linear in the flow's size.

mod graph;
mod rules;
mod splits;
#[cfg(test)]
mod tests;

use flowc_ir::Flow;

use crate::diagnostics::{Code, Diagnostic};

use graph::StepGraph;
use splits::SplitAnalysis;

/// What every rule reads.
pub(crate) struct Context<'f> {
    pub(crate) flow: &'f Flow,
    pub(crate) graph: StepGraph<'f>,
    pub(crate) splits: SplitAnalysis,
}

/// One check, with the one code it reports.
pub(crate) struct Rule {
    pub(crate) code: &'static Code,
    pub(crate) check: fn(&Context<'_>, &mut Vec<Diagnostic>),
}

/// Every rule, in the order they run. Rules that establish facts (the entry and exit
/// exist, targets are known) come before rules that rely on them.
pub(crate) const RULES: &[Rule] = &[
    rules::missing_start::RULE,
    rules::missing_end::RULE,
    rules::ambiguous_entry::RULE,
    rules::end_has_transition::RULE,
    rules::missing_transition::RULE,
    rules::unknown_step::RULE,
    rules::duplicate_branch::RULE,
    rules::switch_too_few_cases::RULE,
    rules::start_has_incoming::RULE,
    rules::cycle::RULE,
    rules::unreachable::RULE,
    rules::join_is_split::RULE,
    rules::split_into_join::RULE,
    rules::switch_into_join::RULE,
    rules::join_without_inputs::RULE,
    rules::inputs_not_join::RULE,
    rules::unbalanced_join::RULE,
    rules::parallel_not_joined::RULE,
    rules::parallel_on_switch::RULE,
    rules::catch_on_split::RULE,
    rules::multiple_compute::RULE,
    rules::param_duplicate::RULE,
    rules::param_reserved_name::RULE,
    rules::param_default_type::RULE,
    rules::param_no_default::RULE,
    rules::schedule_required_parameter::RULE,
];

/// Run every rule on `flow`.
pub fn run(flow: &Flow) -> Vec<Diagnostic> {
    let graph = StepGraph::build(flow);
    let splits = SplitAnalysis::run(&graph);
    let cx = Context {
        flow,
        graph,
        splits,
    };
    let mut out = Vec::new();
    for rule in RULES {
        let before = out.len();
        (rule.check)(&cx, &mut out);
        debug_assert!(
            out[before..].iter().all(|d| d.code == rule.code.name),
            "a rule reported a code other than its own ({})",
            rule.code.name
        );
    }
    out
}
