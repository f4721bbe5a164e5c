//! flowc: reads Metaflow-style Python flows statically into the flowc IR, checks them,
//! and lowers them to orchestrator documents.
//!
//! The pipeline is `frontend::parse` (source → IR + diagnostics), then `lint::run`
//! (graph and cross-cutting rules on the IR). `check` runs both; it is the one entry
//! point the CLI, the tests and the benchmarks use.

pub mod backends;
pub mod diagnostics;
pub mod emit;
pub mod frontend;
pub mod graph;
pub mod lint;

use diagnostics::Diagnostic;
use flowc_ir::Flow;

pub use frontend::FrontendOptions;

/// The result of reading and checking one flow file.
#[derive(Debug)]
pub struct Checked {
    /// The flow, when the file defines one that could be read. It may still have errors.
    pub flow: Option<Flow>,
    /// Every diagnostic, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Read `text` (the contents of the file at `path`) and check it. Never panics and never
/// stops at the first problem: every diagnostic found is returned.
pub fn check(path: &str, text: &str, options: &FrontendOptions) -> Checked {
    let parsed = frontend::parse(path, text, options);
    let mut diagnostics = parsed.diagnostics;
    if let Some(flow) = &parsed.flow {
        diagnostics.extend(lint::run(flow));
    }
    diagnostics::sort(&mut diagnostics);
    diagnostics.dedup();
    Checked {
        flow: parsed.flow,
        diagnostics,
    }
}
