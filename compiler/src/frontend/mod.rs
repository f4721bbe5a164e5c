//! The frontend: Python source → flowc IR, with tree-sitter, never importing the file.

pub(crate) mod decorators;

use flowc_ir::Flow;

use crate::diagnostics::Diagnostic;

/// Choices the user makes about how to read a file.
#[derive(Debug, Clone, Default)]
pub struct FrontendOptions {
    /// The flow class to read when the file defines several (`--flow NAME`).
    pub flow: Option<String>,
}

/// What the frontend found: the flow (if one could be read) and every diagnostic.
#[derive(Debug)]
pub struct Parsed {
    pub flow: Option<Flow>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse `text` (the file at `path`) into the IR.
pub fn parse(_path: &str, _text: &str, _options: &FrontendOptions) -> Parsed {
    Parsed {
        flow: None,
        diagnostics: Vec::new(),
    }
}
