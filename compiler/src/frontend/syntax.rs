//! Typed views over tree-sitter Python nodes: the only place that knows node kinds and
//! field names, so that lowering code reads as "a class's bases", "a call's arguments".
//!
//! Every accessor returns `Option` (or an empty list): a tree with syntax errors still
//! yields views, only with parts missing.

use std::collections::HashMap;
use std::sync::OnceLock;

use flowc_ir::Span;
use tree_sitter::Node;

/// Field access by name, without tree-sitter's lookup of the name on every call.
pub(crate) trait FieldExt<'t> {
    /// The child in field `name` (`child_by_field_name`, same result).
    fn field(&self, name: &str) -> Option<Node<'t>>;
}

impl<'t> FieldExt<'t> for Node<'t> {
    fn field(&self, name: &str) -> Option<Node<'t>> {
        // `child_by_field_name` compares `name` with every field name of the grammar
        // before it looks at a child: a tenth of the frontend's time on a large flow.
        // The ids are read once; a name the grammar lacks falls back to that lookup.
        static IDS: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
        let ids = IDS.get_or_init(|| {
            let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
            (1..=language.field_count())
                .filter_map(|i| {
                    let id = u16::try_from(i).ok()?;
                    Some((language.field_name_for_id(id)?, id))
                })
                .collect()
        });
        match ids.get(name) {
            Some(&id) => self.child_by_field_id(id),
            None => self.child_by_field_name(name),
        }
    }
}

/// The byte range of a node.
pub(crate) fn span(node: Node<'_>) -> Span {
    Span::new(node.start_byte(), node.end_byte())
}

/// The source text of a node; empty if the range is not valid in `src`.
pub(crate) fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.start_byte()..node.end_byte()).unwrap_or("")
}

/// Named children that are real syntax, not comments (tree-sitter "extras").
pub(crate) fn named_children<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    // By index rather than with a cursor: `named_child` descends through the hidden
    // nodes that hold long lists in a balanced tree, so each lookup is short, while a
    // cursor's step to the next sibling costs several times more.
    (0..node.named_child_count())
        .filter_map(|i| node.named_child(i))
        .filter(|c| !c.is_extra())
        .collect()
}

/// The statements of a block or module, comments left out.
pub(crate) fn statements<'t>(block: Node<'t>) -> Vec<Node<'t>> {
    named_children(block)
}

/// Strip parentheses: `((x))` → `x`, iteratively so deep nesting costs no stack.
pub(crate) fn unparenthesize(mut node: Node<'_>) -> Node<'_> {
    while node.kind() == "parenthesized_expression" {
        match named_children(node).as_slice() {
            [inner] => node = *inner,
            _ => break,
        }
    }
    node
}

/// The docstring expression of a body: its first statement when that is a string.
pub(crate) fn docstring(body: Node<'_>) -> Option<Node<'_>> {
    // Only the first statement matters: a class body of a thousand steps is not listed.
    let first = (0..body.named_child_count())
        .filter_map(|i| body.named_child(i))
        .find(|c| !c.is_extra())?;
    if first.kind() != "expression_statement" {
        return None;
    }
    match named_children(first).as_slice() {
        [expr] if matches!(expr.kind(), "string" | "concatenated_string") => Some(*expr),
        _ => None,
    }
}

/// The definition of `kind` that a top-level statement is, looking through decorators:
/// the statement itself, or the `definition` of a `decorated_definition`.
fn definition<'t>(stmt: Node<'t>, kind: &str) -> Option<Node<'t>> {
    let def = if stmt.kind() == "decorated_definition" {
        stmt.field("definition")?
    } else {
        stmt
    };
    (def.kind() == kind).then_some(def)
}

/// The name identifier of a class or function definition, unless the parser had to
/// invent or replace it.
fn definition_name(def: Node<'_>) -> Option<Node<'_>> {
    def.field("name")
        .filter(|n| !n.is_missing() && n.kind() == "identifier")
}

/// `class Name(bases): body`, possibly under decorators.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassDef<'t> {
    /// The `decorated_definition` when decorated, else the `class_definition`.
    pub(crate) outer: Node<'t>,
    pub(crate) node: Node<'t>,
}

impl<'t> ClassDef<'t> {
    /// A top-level statement as a class definition, if it is one.
    pub(crate) fn cast(stmt: Node<'t>) -> Option<Self> {
        let node = definition(stmt, "class_definition")?;
        Some(ClassDef { outer: stmt, node })
    }

    pub(crate) fn name(&self) -> Option<Node<'t>> {
        definition_name(self.node)
    }

    /// Positional base expressions; `metaclass=...` and other keywords are left out.
    pub(crate) fn bases(&self) -> Vec<Node<'t>> {
        let Some(args) = self.node.field("superclasses") else {
            return Vec::new();
        };
        named_children(args)
            .into_iter()
            .filter(|n| {
                !matches!(
                    n.kind(),
                    "keyword_argument" | "list_splat" | "dictionary_splat" | "ERROR"
                )
            })
            .collect()
    }

    pub(crate) fn body(&self) -> Option<Node<'t>> {
        self.node.field("body").filter(|b| b.kind() == "block")
    }

    pub(crate) fn decorators(&self) -> Vec<DecoratorExpr<'t>> {
        decorators_of(self.outer)
    }
}

/// `def name(params): body`, possibly under decorators.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FunctionDef<'t> {
    pub(crate) outer: Node<'t>,
    pub(crate) node: Node<'t>,
}

impl<'t> FunctionDef<'t> {
    pub(crate) fn cast(stmt: Node<'t>) -> Option<Self> {
        let node = definition(stmt, "function_definition")?;
        Some(FunctionDef { outer: stmt, node })
    }

    pub(crate) fn name(&self) -> Option<Node<'t>> {
        definition_name(self.node)
    }

    pub(crate) fn parameters(&self) -> Option<Node<'t>> {
        self.node
            .field("parameters")
            .filter(|p| p.kind() == "parameters")
    }

    pub(crate) fn body(&self) -> Option<Node<'t>> {
        self.node.field("body").filter(|b| b.kind() == "block")
    }

    /// Decorators top to bottom.
    pub(crate) fn decorators(&self) -> Vec<DecoratorExpr<'t>> {
        decorators_of(self.outer)
    }
}

fn decorators_of(outer: Node<'_>) -> Vec<DecoratorExpr<'_>> {
    if outer.kind() != "decorated_definition" {
        return Vec::new();
    }
    named_children(outer)
        .into_iter()
        .filter(|n| n.kind() == "decorator")
        .filter_map(DecoratorExpr::cast)
        .collect()
}

/// One `@expr` line: `@name`, `@mod.name`, `@name(...)`, `@mod.name(...)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecoratorExpr<'t> {
    /// The `decorator` node.
    pub(crate) node: Node<'t>,
    /// What is called or referenced: `name` / `mod.name` (or another expression).
    pub(crate) callee: Node<'t>,
    /// The call, when the decorator has parentheses.
    pub(crate) call: Option<Call<'t>>,
}

impl<'t> DecoratorExpr<'t> {
    fn cast(node: Node<'t>) -> Option<Self> {
        let expr = unparenthesize(*named_children(node).first()?);
        match Call::cast(expr) {
            Some(call) => Some(DecoratorExpr {
                node,
                callee: call.function()?,
                call: Some(call),
            }),
            None => Some(DecoratorExpr {
                node,
                callee: expr,
                call: None,
            }),
        }
    }

    /// From `@` to the end of the expression (the node itself may include the newline).
    pub(crate) fn span(&self) -> Span {
        let end = self
            .call
            .map(|c| c.node.end_byte())
            .unwrap_or_else(|| self.callee.end_byte());
        Span::new(self.node.start_byte(), end.max(self.node.start_byte()))
    }
}

/// `function(arguments)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'t> {
    pub(crate) node: Node<'t>,
}

impl<'t> Call<'t> {
    pub(crate) fn cast(node: Node<'t>) -> Option<Self> {
        (node.kind() == "call").then_some(Call { node })
    }

    pub(crate) fn function(&self) -> Option<Node<'t>> {
        self.node.field("function")
    }

    pub(crate) fn arguments(&self) -> Vec<Argument<'t>> {
        let Some(args) = self.node.field("arguments") else {
            return Vec::new();
        };
        if args.kind() == "generator_expression" {
            return vec![Argument::Positional(args)];
        }
        named_children(args)
            .into_iter()
            .filter_map(|n| match n.kind() {
                "keyword_argument" => Some(Argument::Keyword {
                    node: n,
                    name: n.field("name")?,
                    value: n.field("value")?,
                }),
                "list_splat" | "dictionary_splat" => Some(Argument::Splat(n)),
                "ERROR" => None,
                _ => Some(Argument::Positional(n)),
            })
            .collect()
    }
}

/// One argument of a call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Argument<'t> {
    Positional(Node<'t>),
    Keyword {
        /// The whole `name=value`.
        node: Node<'t>,
        name: Node<'t>,
        value: Node<'t>,
    },
    /// `*args` or `**kwargs`.
    Splat(Node<'t>),
}

impl<'t> Argument<'t> {
    pub(crate) fn node(&self) -> Node<'t> {
        match self {
            Argument::Positional(n) | Argument::Splat(n) => *n,
            Argument::Keyword { node, .. } => *node,
        }
    }
}

/// `target = value` (optionally annotated) as a statement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Assignment<'t> {
    pub(crate) node: Node<'t>,
    pub(crate) left: Node<'t>,
    pub(crate) right: Node<'t>,
}

impl<'t> Assignment<'t> {
    /// A statement that is a single `x = value` assignment.
    pub(crate) fn cast(stmt: Node<'t>) -> Option<Self> {
        if stmt.kind() != "expression_statement" {
            return None;
        }
        let [node] = named_children(stmt)[..] else {
            return None;
        };
        if node.kind() != "assignment" {
            return None;
        }
        Some(Assignment {
            node,
            left: node.field("left")?,
            right: node.field("right")?,
        })
    }

    /// The bound name, when the target is a plain identifier.
    pub(crate) fn target_name<'s>(&self, src: &'s str) -> Option<&'s str> {
        (self.left.kind() == "identifier").then(|| text(self.left, src))
    }
}

/// `self.<name>`: the step name and the node, if `node` is that shape.
pub(crate) fn self_attribute<'s>(node: Node<'_>, src: &'s str) -> Option<&'s str> {
    if node.kind() != "attribute" {
        return None;
    }
    let object = node.field("object")?;
    let attr = node.field("attribute")?;
    (object.kind() == "identifier" && text(object, src) == "self" && !attr.is_missing())
        .then(|| text(attr, src))
}

/// Whether `call` is `self.next(...)`.
pub(crate) fn is_self_next(call: Call<'_>, src: &str) -> bool {
    call.function()
        .and_then(|f| self_attribute(f, src))
        .is_some_and(|name| name == "next")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse_tree;

    #[test]
    fn field_finds_what_child_by_field_name_finds() {
        let src = "import a.b as c\nfrom m import (x as y)\n@d(k=1)\nclass K(B, metaclass=M):\n    \
                   def f(self, p: int = 2, *a, **k) -> None:\n        x = y = [i for i in r if i]\n        \
                   return -x[1:2] + f'{z!r:>3}' if not q else lambda v: v.w\n";
        let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        let names: Vec<&str> = (1..=language.field_count())
            .filter_map(|i| language.field_name_for_id(u16::try_from(i).ok()?))
            .collect();
        assert!(names.len() > 20, "{names:?}");
        let tree = parse_tree(src).expect("tree");
        let mut stack = vec![tree.root_node()];
        let mut found = 0;
        while let Some(node) = stack.pop() {
            for name in names.iter().chain(&["no_such_field"]) {
                let by_name = node.child_by_field_name(name);
                assert_eq!(node.field(name), by_name, "{name} of {}", node.kind());
                found += usize::from(by_name.is_some());
            }
            stack.extend((0..node.child_count()).filter_map(|i| node.child(i)));
        }
        assert!(found > 30, "only {found} fields found");
    }

    #[test]
    fn named_children_leave_out_comments_and_keep_order() {
        // A comment in the uncertain part of a file (after a nested f-string quote) is
        // still in the tree; it is not a statement.
        let src = "x = f\"{d[\"k\"]}\"\n# kept\ny = 1\nz = 2\n";
        let tree = parse_tree(src).expect("tree");
        let kinds: Vec<&str> = statements(tree.root_node())
            .iter()
            .map(|n| text(*n, src))
            .collect();
        assert_eq!(kinds, ["x = f\"{d[\"k\"]}\"", "y = 1", "z = 2"]);
        let long = "x = 1\n".repeat(3000);
        let tree = parse_tree(&long).expect("tree");
        let all = statements(tree.root_node());
        assert_eq!(all.len(), 3000);
        assert!(all.windows(2).all(|w| w[0].end_byte() <= w[1].start_byte()));
    }
}
