//! The frontend: Python source → flowc IR, with tree-sitter, never importing the file.
//!
//! `parse` never stops at the first problem: it reports syntax errors, then still finds
//! the flow class and lowers everything it can read, so one run shows every mistake.
//! The pieces: `comments` (the text the parser is given), `syntax` (typed views over
//! tree-sitter nodes), `syntax_errors`, `imports` (what refers to Metaflow), `eval`
//! (static evaluation), `flow_class` (finding the flow and merging its bases), `steps`,
//! `transitions`, `parameters`, `raw_decorators`.

mod comments;
pub(crate) mod decorators;
mod docstring;
mod eval;
mod flow_class;
mod imports;
mod parameters;
mod raw_decorators;
mod steps;
mod syntax;
mod syntax_errors;
mod transitions;

use flowc_ir::{Flow, Span};
use sha2::{Digest, Sha256};

use crate::diagnostics::{codes, Diagnostic};

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
pub fn parse(path: &str, text: &str, options: &FrontendOptions) -> Parsed {
    let mut diagnostics = Vec::new();
    let Some(tree) = parse_tree(text) else {
        diagnostics.push(
            Diagnostic::new(
                &codes::SYNTAX_ERROR,
                Span::new(0, 0),
                "the file could not be parsed",
            )
            .with_help("check that the file is Python source"),
        );
        return Parsed {
            flow: None,
            diagnostics,
        };
    };
    let root = tree.root_node();
    syntax_errors::check(root, text, &mut diagnostics);
    let source = flowc_ir::Source {
        path: path.to_string(),
        sha256: sha256_hex(text.as_bytes()),
    };
    let flow = flow_class::lower(root, text, source, options, &mut diagnostics);
    Parsed { flow, diagnostics }
}

/// Parse Python source into a tree-sitter tree whose byte positions index `text`.
/// `None` only if tree-sitter refuses (it does not for any input when no timeout is
/// set), which callers report.
///
/// The parser sees `text` with its comments blanked (see `comments`): the same bytes
/// but for comment text, which the frontend never reads from the tree.
pub(crate) fn parse_tree(text: &str) -> Option<tree_sitter::Tree> {
    let blanked = comments::blank(text);
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .ok()?;
    parser.parse(blanked.as_bytes(), None)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
