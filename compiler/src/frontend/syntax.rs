//! Typed views over tree-sitter Python nodes: the only place that knows node kinds and
//! field names, so that lowering code reads as "a class's bases", "a call's arguments".
//!
//! Every accessor returns `Option` (or an empty list): a tree with syntax errors still
//! yields views, only with parts missing.

use flowc_ir::Span;
use tree_sitter::Node;

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
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
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
    let first = *statements(body).first()?;
    if first.kind() != "expression_statement" {
        return None;
    }
    match named_children(first).as_slice() {
        [expr] if matches!(expr.kind(), "string" | "concatenated_string") => Some(*expr),
        _ => None,
    }
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
        match stmt.kind() {
            "class_definition" => Some(ClassDef {
                outer: stmt,
                node: stmt,
            }),
            "decorated_definition" => {
                let def = stmt.child_by_field_name("definition")?;
                (def.kind() == "class_definition").then_some(ClassDef {
                    outer: stmt,
                    node: def,
                })
            }
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> Option<Node<'t>> {
        self.node
            .child_by_field_name("name")
            .filter(|n| !n.is_missing() && n.kind() == "identifier")
    }

    /// Positional base expressions; `metaclass=...` and other keywords are left out.
    pub(crate) fn bases(&self) -> Vec<Node<'t>> {
        let Some(args) = self.node.child_by_field_name("superclasses") else {
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
        self.node
            .child_by_field_name("body")
            .filter(|b| b.kind() == "block")
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
        match stmt.kind() {
            "function_definition" => Some(FunctionDef {
                outer: stmt,
                node: stmt,
            }),
            "decorated_definition" => {
                let def = stmt.child_by_field_name("definition")?;
                (def.kind() == "function_definition").then_some(FunctionDef {
                    outer: stmt,
                    node: def,
                })
            }
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> Option<Node<'t>> {
        self.node
            .child_by_field_name("name")
            .filter(|n| !n.is_missing() && n.kind() == "identifier")
    }

    pub(crate) fn parameters(&self) -> Option<Node<'t>> {
        self.node
            .child_by_field_name("parameters")
            .filter(|p| p.kind() == "parameters")
    }

    pub(crate) fn body(&self) -> Option<Node<'t>> {
        self.node
            .child_by_field_name("body")
            .filter(|b| b.kind() == "block")
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
        self.node.child_by_field_name("function")
    }

    pub(crate) fn arguments(&self) -> Vec<Argument<'t>> {
        let Some(args) = self.node.child_by_field_name("arguments") else {
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
                    name: n.child_by_field_name("name")?,
                    value: n.child_by_field_name("value")?,
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
            left: node.child_by_field_name("left")?,
            right: node.child_by_field_name("right")?,
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
    let object = node.child_by_field_name("object")?;
    let attr = node.child_by_field_name("attribute")?;
    (object.kind() == "identifier" && text(object, src) == "self" && !attr.is_missing())
        .then(|| text(attr, src))
}

/// Whether `call` is `self.next(...)`.
pub(crate) fn is_self_next(call: Call<'_>, src: &str) -> bool {
    call.function()
        .and_then(|f| self_attribute(f, src))
        .is_some_and(|name| name == "next")
}
