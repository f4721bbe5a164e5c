//! Syntax errors: turns tree-sitter's ERROR and MISSING nodes into diagnostics that say
//! what was expected or unexpected, with a span on the token at fault.
//!
//! tree-sitter recovers from errors by wrapping what it could not parse in an ERROR
//! node, which is often much larger than the mistake. So instead of pointing at the
//! whole node, this looks inside it for the usual culprits: an unbalanced bracket, a
//! block header without its `:`, or else the first stray token.

use flowc_ir::Span;
use tree_sitter::Node;

use super::syntax::{span, text};
use crate::diagnostics::{codes, Diagnostic};

/// More syntax errors than this in one file are noise: the first ones say enough.
const MAX_REPORTED: usize = 20;

/// Keywords that open a block and need a `:` at the end of their header line.
const BLOCK_KEYWORDS: &[(&str, &str)] = &[
    ("def", "function header"),
    ("class", "class header"),
    ("if", "`if` condition"),
    ("elif", "`elif` condition"),
    ("else", "`else`"),
    ("for", "`for` header"),
    ("while", "`while` condition"),
    ("try", "`try`"),
    ("except", "`except` clause"),
    ("finally", "`finally`"),
    ("with", "`with` header"),
];

/// Every syntax problem in the tree, outermost ERROR nodes only, in source order.
pub(crate) fn check(root: Node<'_>, src: &str, diagnostics: &mut Vec<Diagnostic>) {
    if !root.has_error() {
        return;
    }
    let mut reported = 0;
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if reported >= MAX_REPORTED {
            break;
        }
        if node.is_error() {
            diagnostics.push(error_node(node, src));
            reported += 1;
            continue;
        }
        if node.is_missing() {
            diagnostics.push(missing_node(node));
            reported += 1;
            continue;
        }
        if !node.has_error() {
            continue;
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        // Reversed so the stack yields children in source order.
        stack.extend(children.into_iter().rev());
    }
}

fn missing_node(node: Node<'_>) -> Diagnostic {
    let at = Span::new(node.start_byte(), node.start_byte());
    let what = if node.is_named() {
        node.kind().replace('_', " ")
    } else {
        format!("`{}`", node.kind())
    };
    Diagnostic::new(&codes::SYNTAX_MISSING, at, format!("missing {what}"))
        .with_label(format!("expected {what} here"))
        .with_help(format!("insert {what}"))
}

/// One token inside an ERROR node.
#[derive(Clone, Copy)]
struct Token<'t> {
    node: Node<'t>,
    /// Whether the token is a direct child of the ERROR node (not part of a subtree
    /// that parsed).
    direct: bool,
}

fn error_node(node: Node<'_>, src: &str) -> Diagnostic {
    let tokens = leaves(node);
    if let Some(d) = unbalanced_bracket(&tokens, src) {
        return d;
    }
    if let Some(d) = header_without_colon(&tokens, src) {
        return d;
    }
    let stray = tokens
        .iter()
        .find(|t| t.direct && !t.node.is_named())
        .or_else(|| tokens.first());
    match stray {
        Some(t) => {
            let shown = shorten(text(t.node, src));
            Diagnostic::new(
                &codes::SYNTAX_ERROR,
                span(t.node),
                format!("unexpected `{shown}`"),
            )
            .with_label("not valid Python here")
            .with_help("fix the syntax: the file must be valid Python")
        }
        None => Diagnostic::new(&codes::SYNTAX_ERROR, span(node), "invalid syntax")
            .with_label("not valid Python here")
            .with_help("fix the syntax: the file must be valid Python"),
    }
}

/// The leaf tokens of an ERROR node, iteratively.
fn leaves<'t>(error: Node<'t>) -> Vec<Token<'t>> {
    let mut out = Vec::new();
    let mut stack: Vec<(Node<'t>, bool)> = Vec::new();
    let mut cursor = error.walk();
    let children: Vec<Node<'t>> = error.children(&mut cursor).collect();
    stack.extend(children.into_iter().rev().map(|c| (c, true)));
    while let Some((node, direct)) = stack.pop() {
        if node.is_extra() {
            continue;
        }
        // Strings are one token for bracket counting: their content may hold brackets.
        if node.child_count() == 0 || node.kind() == "string" {
            out.push(Token { node, direct });
            continue;
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'t>> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev().map(|c| (c, false)));
    }
    out
}

fn closer_of(open: &str) -> &'static str {
    match open {
        "(" => ")",
        "[" => "]",
        _ => "}",
    }
}

/// A closing bracket with no opener, or an opener never closed.
fn unbalanced_bracket(tokens: &[Token<'_>], src: &str) -> Option<Diagnostic> {
    let mut open: Vec<Node<'_>> = Vec::new();
    for t in tokens {
        if t.node.is_missing() {
            continue;
        }
        match text(t.node, src) {
            "(" | "[" | "{" => open.push(t.node),
            close @ (")" | "]" | "}") => {
                let matches = open
                    .last()
                    .is_some_and(|o| closer_of(text(*o, src)) == close);
                if matches {
                    open.pop();
                } else {
                    return Some(
                        Diagnostic::new(
                            &codes::SYNTAX_ERROR,
                            span(t.node),
                            format!("unexpected `{close}`"),
                        )
                        .with_label("this bracket closes nothing")
                        .with_help(format!("remove this `{close}` or add its opening bracket")),
                    );
                }
            }
            _ => {}
        }
    }
    let unclosed = *open.first()?;
    let close = closer_of(text(unclosed, src));
    Some(
        Diagnostic::new(
            &codes::SYNTAX_MISSING,
            span(unclosed),
            format!("missing `{close}`"),
        )
        .with_label(format!("this `{}` is never closed", text(unclosed, src)))
        .with_help(format!("add the closing `{close}`")),
    )
}

/// `def f(self)` / `if x` / `class A(B)` at the start of an ERROR node without a `:`
/// on that line.
fn header_without_colon(tokens: &[Token<'_>], src: &str) -> Option<Diagnostic> {
    let (index, what) = tokens.iter().enumerate().find_map(|(i, t)| {
        BLOCK_KEYWORDS
            .iter()
            .find(|(kw, _)| !t.node.is_named() && t.node.kind() == *kw)
            .map(|(_, what)| (i, *what))
    })?;
    let keyword = tokens[index].node;
    let line = keyword.start_position().row;
    let header: Vec<&Token<'_>> = tokens[index..]
        .iter()
        .take_while(|t| t.node.start_position().row == line)
        .collect();
    if header.iter().any(|t| text(t.node, src) == ":") {
        return None;
    }
    let last = header.last()?.node;
    let at = Span::new(last.end_byte(), last.end_byte());
    Some(
        Diagnostic::new(
            &codes::SYNTAX_ERROR,
            at,
            format!("expected `:` after {what}"),
        )
        .with_label("expected `:` here")
        .with_help("end the line with `:` and indent the block below it"),
    )
}

/// The first line of a token, at most 30 characters, for messages.
fn shorten(token: &str) -> String {
    let line = token.lines().next().unwrap_or("");
    let mut short: String = line.chars().take(30).collect();
    if short.len() < token.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse_tree;

    fn errors(src: &str) -> Vec<(&'static str, String, String)> {
        let tree = parse_tree(src).expect("tree");
        let mut out = Vec::new();
        check(tree.root_node(), src, &mut out);
        out.into_iter()
            .map(|d| (d.code, d.message, src[d.span.start..d.span.end].to_string()))
            .collect()
    }

    #[test]
    fn valid_code_has_no_syntax_errors() {
        assert!(errors("def f(self):\n    return (1, [2], {3: 4})\n").is_empty());
    }

    #[test]
    fn extra_closing_parenthesis() {
        let e = errors("x = foo(1, 2))\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, codes::SYNTAX_ERROR.name);
        assert_eq!(e[0].1, "unexpected `)`");
        assert_eq!(e[0].2, ")");
    }

    #[test]
    fn unclosed_parenthesis() {
        let src = "x = foo(1, 2\n";
        let e = errors(src);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, codes::SYNTAX_MISSING.name);
        assert_eq!(e[0].1, "missing `)`");
        assert_eq!(e[0].2, "(");
    }

    #[test]
    fn unclosed_next_call_inside_a_flow() {
        let src = "class A(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.end\n\n    @step\n    def end(self):\n        pass\n";
        let e = errors(src);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].1, "missing `)`");
        let tree = parse_tree(src).expect("tree");
        let mut d = Vec::new();
        check(tree.root_node(), src, &mut d);
        assert_eq!(d[0].span.start, src.find("next(").expect("next") + 4);
    }

    #[test]
    fn function_header_without_colon() {
        let src = "def f(self)\n    pass\n";
        let e = errors(src);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, codes::SYNTAX_ERROR.name);
        assert_eq!(e[0].1, "expected `:` after function header");
        let tree = parse_tree(src).expect("tree");
        let mut d = Vec::new();
        check(tree.root_node(), src, &mut d);
        assert_eq!(d[0].span, Span::new(11, 11));
    }

    #[test]
    fn if_without_colon() {
        let e = errors("if x\n    y = 1\n");
        assert_eq!(e[0].1, "expected `:` after `if` condition");
    }

    #[test]
    fn stray_token() {
        let e = errors("x = = 3\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].1, "unexpected `=`");
        assert_eq!(e[0].2, "=");
    }

    #[test]
    fn missing_token() {
        let src = "def f(:\n  pass\n";
        let tree = parse_tree(src).expect("tree");
        let mut d = Vec::new();
        check(tree.root_node(), src, &mut d);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, codes::SYNTAX_MISSING.name);
        assert_eq!(d[0].message, "missing `)`");
        assert_eq!(d[0].span, Span::new(6, 6));
    }

    #[test]
    fn garbage_is_bounded() {
        let src = ")\n".repeat(1000);
        let e = errors(&src);
        assert!(!e.is_empty() && e.len() <= MAX_REPORTED);
        let binary: String = (0u8..=255).map(char::from).cycle().take(5000).collect();
        let _ = errors(&binary);
    }
}
