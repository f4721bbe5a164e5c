//! Checks on the IR: graph rules and cross-cutting rules, one rule a file under `rules/`.

use flowc_ir::Flow;

use crate::diagnostics::Diagnostic;

/// Run every rule on `flow`.
pub fn run(_flow: &Flow) -> Vec<Diagnostic> {
    Vec::new()
}
