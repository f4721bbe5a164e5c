//! The static evaluator: folds Python literal expressions into `Value`s without running
//! anything, and keeps everything else visible as `Value::Deferred`.
//!
//! It follows Python's semantics where it folds (true division gives a float, `//` and
//! `%` floor, `**` of ints stays an int) and gives up, rather than guessing, where Python
//! would need arbitrary precision, raise, or run code. Recursion is bounded by
//! `MAX_DEPTH`, so hostile nesting yields `Deferred`, never a stack overflow; folded
//! lists and dicts are bounded by `MAX_NESTING`, so the IR stays readable as JSON.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use flowc_ir::{Span, Value};
use tree_sitter::Node;

use super::syntax::{self, named_children, span, statements, text, Assignment, FieldExt};
use crate::diagnostics::{codes, Diagnostic};

/// Deeper expressions than this are kept as `Deferred`.
const MAX_DEPTH: usize = 200;

/// Lists, tuples and dicts nested deeper than this are kept as `Deferred`. Each level
/// is two levels of IR JSON (the tagged value and its items), and readers of that JSON
/// (`flowc inspect --format json`, external backends) commonly stop at 128 levels.
pub(crate) const MAX_NESTING: usize = 32;

/// Strings and lists built by `*` or `+` larger than this are kept as `Deferred`, so
/// `"x" * 10**12` costs nothing.
const MAX_LEN: usize = 1 << 20;

/// The names a scope (module or class body) binds, and which of them are constants:
/// bound exactly once, by a plain top-level assignment.
#[derive(Debug, Default)]
pub(crate) struct Scope<'t> {
    consts: HashMap<String, Node<'t>>,
    /// Every name bound in the scope, constant or not.
    bound: HashSet<String>,
}

impl<'t> Scope<'t> {
    /// The module scope. `global x` anywhere in the file makes `x` non-constant.
    pub(crate) fn module(root: Node<'t>, src: &str) -> Self {
        let mut scope = Scope::collect(root, src);
        for name in global_names(root, src) {
            scope.consts.remove(&name);
            scope.bound.insert(name);
        }
        scope
    }

    /// A class body's scope: what `Parameter(default=X)` sees first when `X` is a
    /// class-level constant.
    pub(crate) fn class(body: Node<'t>, src: &str) -> Self {
        Scope::collect(body, src)
    }

    /// Whether the scope binds `name` to a top-level `def` (a callable).
    fn collect(block: Node<'t>, src: &str) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut values: HashMap<String, Node<'t>> = HashMap::new();
        let mut others: Vec<String> = Vec::new();
        for stmt in statements(block) {
            if let Some(assign) = Assignment::cast(stmt) {
                // `a = b = 1` binds both names to the innermost value.
                let mut targets = vec![assign.left];
                let mut value = assign.right;
                while value.kind() == "assignment" {
                    match (value.field("left"), value.field("right")) {
                        (Some(l), Some(r)) => {
                            targets.push(l);
                            value = r;
                        }
                        _ => break,
                    }
                }
                for target in targets {
                    if target.kind() == "identifier" {
                        let name = text(target, src).to_string();
                        *counts.entry(name.clone()).or_default() += 1;
                        values.insert(name, value);
                    } else {
                        bound_names(target, src, &mut others);
                    }
                }
            } else {
                binding_names(stmt, src, &mut others);
            }
        }
        let mut scope = Scope::default();
        for name in others {
            counts.insert(name.clone(), usize::MAX);
            scope.bound.insert(name);
        }
        for (name, count) in counts {
            scope.bound.insert(name.clone());
            if count == 1 {
                if let Some(node) = values.remove(&name) {
                    scope.consts.insert(name, node);
                }
            }
        }
        scope
    }

    /// The expression a constant name is bound to.
    pub(crate) fn constant(&self, name: &str) -> Option<Node<'t>> {
        self.consts.get(name).copied()
    }

    pub(crate) fn binds(&self, name: &str) -> bool {
        self.bound.contains(name)
    }
}

/// Names bound by `target` (a pattern): identifiers not under an attribute or subscript.
fn bound_names(target: Node<'_>, src: &str, out: &mut Vec<String>) {
    let mut stack = vec![target];
    while let Some(node) = stack.pop() {
        match node.kind() {
            "identifier" => out.push(text(node, src).to_string()),
            "attribute" | "subscript" => {}
            _ => stack.extend(named_children(node)),
        }
    }
}

/// Names a statement other than a plain assignment binds in its scope: augmented and
/// tuple assignments, imports, `def`/`class`, and anything bound inside compound
/// statements (`if`, `for`, `try`, `with`...). Nested function and class bodies are
/// other scopes and are not entered.
fn binding_names(stmt: Node<'_>, src: &str, out: &mut Vec<String>) {
    let mut stack = vec![stmt];
    while let Some(node) = stack.pop() {
        match node.kind() {
            "function_definition" | "class_definition" => {
                if let Some(name) = node.field("name") {
                    out.push(text(name, src).to_string());
                }
            }
            "assignment" | "augmented_assignment" | "for_statement" | "for_in_clause" => {
                if let Some(left) = node.field("left") {
                    bound_names(left, src, out);
                }
                stack.extend(named_children(node));
            }
            "named_expression" => {
                if let Some(name) = node.field("name") {
                    bound_names(name, src, out);
                }
                stack.extend(named_children(node));
            }
            "as_pattern" => {
                if let Some(alias) = node.field("alias") {
                    bound_names(alias, src, out);
                }
                stack.extend(named_children(node));
            }
            "aliased_import" => {
                if let Some(alias) = node.field("alias") {
                    out.push(text(alias, src).to_string());
                }
            }
            "import_statement" | "import_from_statement" => {
                let mut cursor = node.walk();
                for name in node.children_by_field_name("name", &mut cursor) {
                    if name.kind() == "dotted_name" {
                        // `import a.b` binds `a`; `from m import b` binds `b`.
                        let first = if node.kind() == "import_statement" {
                            named_children(name).first().copied()
                        } else {
                            named_children(name).last().copied()
                        };
                        if let Some(first) = first {
                            out.push(text(first, src).to_string());
                        }
                    } else {
                        stack.push(name);
                    }
                }
            }
            "lambda" => {}
            "decorated_definition" => {
                // Decorators bind nothing unless they hold a walrus (`@(d := deco)`);
                // skipping their argument trees matters in a class of many steps.
                for child in named_children(node) {
                    if child.kind() != "decorator" || text(child, src).contains(":=") {
                        stack.push(child);
                    }
                }
            }
            _ => stack.extend(named_children(node)),
        }
    }
}

/// Every name declared `global` anywhere in the file.
fn global_names(root: Node<'_>, src: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Most files have none: skip the walk over the whole tree then.
    if !src.contains("global") {
        return out;
    }
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.kind() == "global_statement" {
            out.extend(
                named_children(node)
                    .into_iter()
                    .filter(|n| n.kind() == "identifier")
                    .map(|n| text(n, src).to_string()),
            );
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return out;
            }
        }
    }
}

/// Folds expressions of one file. Module constants are folded at most once each.
pub(crate) struct Evaluator<'t, 's> {
    src: &'s str,
    module: Scope<'t>,
    /// Each constant's value, with how many lists and dicts deep it is.
    memo: RefCell<HashMap<usize, (Value, usize)>>,
    in_progress: RefCell<HashSet<usize>>,
    /// The spans kept as `Deferred` because they nest deeper than `MAX_NESTING`.
    too_deep: RefCell<HashSet<Span>>,
}

impl<'t, 's> Evaluator<'t, 's> {
    pub(crate) fn new(root: Node<'t>, src: &'s str) -> Self {
        Evaluator {
            src,
            module: Scope::module(root, src),
            memo: RefCell::default(),
            in_progress: RefCell::default(),
            too_deep: RefCell::default(),
        }
    }

    pub(crate) fn module_scope(&self) -> &Scope<'t> {
        &self.module
    }

    /// Fold `node`, looking names up in `class` (a class body) first, then the module.
    pub(crate) fn eval(&self, node: Node<'t>, class: Option<&Scope<'t>>) -> Value {
        self.eval_at(node, class, 0, 0)
    }

    /// The spans of the `Deferred` values in `value` that were kept because their
    /// lists or dicts nest more than `MAX_NESTING` levels deep, for the warning to say
    /// so rather than call them uncomputable.
    pub(crate) fn too_deep_in(&self, value: &Value) -> Vec<Span> {
        let too_deep = self.too_deep.borrow();
        if too_deep.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::Deferred { span, .. } if too_deep.contains(span) => out.push(*span),
                Value::List(items) => stack.extend(items),
                Value::Dict(map) => stack.extend(map.values()),
                _ => {}
            }
        }
        out.sort();
        out
    }

    /// `node` kept as `Deferred` because it would nest too deeply.
    fn too_deep_at(&self, node: Node<'_>) -> Value {
        self.too_deep.borrow_mut().insert(span(node));
        self.deferred(node)
    }

    fn deferred(&self, node: Node<'_>) -> Value {
        Value::Deferred {
            source_text: text(node, self.src).to_string(),
            span: span(node),
        }
    }

    /// Fold `node`, `depth` expressions and `nesting` lists or dicts deep.
    fn eval_at(
        &self,
        node: Node<'t>,
        class: Option<&Scope<'t>>,
        depth: usize,
        nesting: usize,
    ) -> Value {
        if depth > MAX_DEPTH || node.has_error() {
            return self.deferred(node);
        }
        let folded = match node.kind() {
            "integer" => parse_int(text(node, self.src)).map(Value::Int),
            "float" => parse_float(text(node, self.src)).map(Value::Float),
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "none" => Some(Value::None),
            "string" => self.string(node).map(Value::Str),
            "concatenated_string" => named_children(node)
                .into_iter()
                .map(|s| self.string(s))
                .collect::<Option<String>>()
                .map(Value::Str),
            "parenthesized_expression" => match named_children(node).as_slice() {
                [inner] => return self.eval_with_use_site(*inner, node, class, depth, nesting),
                _ => None,
            },
            "list" | "tuple" | "dictionary" if nesting >= MAX_NESTING => {
                return self.too_deep_at(node)
            }
            "list" | "tuple" => self.sequence(node, class, depth, nesting),
            "dictionary" => self.dictionary(node, class, depth, nesting),
            "unary_operator" => self.unary(node, class, depth, nesting),
            "not_operator" => node
                .field("argument")
                .map(|a| self.eval_at(a, class, depth + 1, nesting))
                .and_then(|v| truthy(&v))
                .map(|b| Value::Bool(!b)),
            "binary_operator" => self.binary(node, class, depth, nesting),
            "identifier" => return self.name(node, class, depth, nesting),
            _ => None,
        };
        folded.unwrap_or_else(|| self.deferred(node))
    }

    /// Evaluate `inner`; if it cannot be folded, report the whole `outer` as deferred.
    fn eval_with_use_site(
        &self,
        inner: Node<'t>,
        outer: Node<'t>,
        class: Option<&Scope<'t>>,
        depth: usize,
        nesting: usize,
    ) -> Value {
        match self.eval_at(inner, class, depth + 1, nesting) {
            Value::Deferred {
                span: inner_span, ..
            } => {
                // Too deep inside stays too deep around its parentheses.
                if self.too_deep.borrow().contains(&inner_span) {
                    self.too_deep_at(outer)
                } else {
                    self.deferred(outer)
                }
            }
            v => v,
        }
    }

    /// A constant's value, folded once on its own (`nesting` 0), then checked against
    /// the nesting of each place it is used.
    fn name(
        &self,
        node: Node<'t>,
        class: Option<&Scope<'t>>,
        depth: usize,
        nesting: usize,
    ) -> Value {
        let name = text(node, self.src);
        let (binding, scope) = match class {
            Some(c) if c.binds(name) => (c.constant(name), class),
            _ => (self.module.constant(name), None),
        };
        let Some(value_node) = binding else {
            return self.deferred(node);
        };
        let key = value_node.id();
        let memo = self.memo.borrow().get(&key).cloned();
        let (value, levels) = match memo {
            Some(memo) => memo,
            None => {
                // A name bound (transitively) to itself is not a constant.
                if !self.in_progress.borrow_mut().insert(key) {
                    return self.deferred(node);
                }
                let value = self.eval_at(value_node, scope, depth + 1, 0);
                self.in_progress.borrow_mut().remove(&key);
                let levels = nesting_levels(&value);
                self.memo.borrow_mut().insert(key, (value.clone(), levels));
                (value, levels)
            }
        };
        if nesting + levels > MAX_NESTING {
            return self.too_deep_at(node);
        }
        at_use_site(value, || self.deferred(node))
    }

    fn sequence(
        &self,
        node: Node<'t>,
        class: Option<&Scope<'t>>,
        depth: usize,
        nesting: usize,
    ) -> Option<Value> {
        let mut items = Vec::new();
        for item in named_children(node) {
            if matches!(
                item.kind(),
                "list_splat" | "parenthesized_list_splat" | "yield"
            ) {
                return None;
            }
            items.push(self.eval_at(item, class, depth + 1, nesting + 1));
        }
        Some(Value::List(items))
    }

    fn dictionary(
        &self,
        node: Node<'t>,
        class: Option<&Scope<'t>>,
        depth: usize,
        nesting: usize,
    ) -> Option<Value> {
        let mut map = BTreeMap::new();
        for pair in named_children(node) {
            if pair.kind() != "pair" {
                return None;
            }
            let key = self.eval_at(pair.field("key")?, class, depth + 1, nesting + 1);
            let Value::Str(key) = key else {
                return None;
            };
            let value = self.eval_at(pair.field("value")?, class, depth + 1, nesting + 1);
            map.insert(key, value);
        }
        Some(Value::Dict(map))
    }

    fn unary(
        &self,
        node: Node<'t>,
        class: Option<&Scope<'t>>,
        depth: usize,
        nesting: usize,
    ) -> Option<Value> {
        let op = text(node.field("operator")?, self.src);
        let arg = self.eval_at(node.field("argument")?, class, depth + 1, nesting);
        match (op, arg) {
            ("-", Value::Float(f)) => Some(Value::Float(-f)),
            ("+", Value::Float(f)) => Some(Value::Float(f)),
            (op, v) => {
                let i = int_of(&v)?;
                match op {
                    "-" => i.checked_neg().map(Value::Int),
                    "+" => Some(Value::Int(i)),
                    "~" => Some(Value::Int(!i)),
                    _ => None,
                }
            }
        }
    }

    /// `a + b`, `a * n`: a list built this way nests no deeper than its operands.
    fn binary(
        &self,
        node: Node<'t>,
        class: Option<&Scope<'t>>,
        depth: usize,
        nesting: usize,
    ) -> Option<Value> {
        let op = text(node.field("operator")?, self.src);
        let left = self.eval_at(node.field("left")?, class, depth + 1, nesting);
        let right = self.eval_at(node.field("right")?, class, depth + 1, nesting);
        binary_op(op, &left, &right)
    }

    /// The value of one string literal; `None` for bytes, f-strings with placeholders
    /// and escapes that cannot be decoded here.
    fn string(&self, node: Node<'_>) -> Option<String> {
        if node.kind() != "string" {
            return None;
        }
        let parts = named_children(node);
        let start = parts.first().filter(|n| n.kind() == "string_start")?;
        let prefix = text(*start, self.src)
            .trim_end_matches(['"', '\''])
            .to_ascii_lowercase();
        if prefix.contains('b') || prefix.contains('t') {
            return None;
        }
        if parts.iter().any(|p| p.kind() == "interpolation") {
            return None;
        }
        let end = parts
            .last()
            .filter(|n| n.kind() == "string_end" && !n.is_missing())
            .map_or(node.end_byte(), |n| n.start_byte());
        let body = self.src.get(start.end_byte()..end.max(start.end_byte()))?;
        let body = if prefix.contains('f') {
            body.replace("{{", "{").replace("}}", "}")
        } else {
            body.to_string()
        };
        if prefix.contains('r') {
            Some(body)
        } else {
            unescape(&body)
        }
    }
}

/// The warning for a value kept as `Deferred` because it nests deeper than
/// `MAX_NESTING`; `message` names where the value is written.
pub(crate) fn nested_too_deeply(at: Span, message: String) -> Diagnostic {
    Diagnostic::new(&codes::VALUE_DEFERRED, at, message)
        .with_label(format!("more than {MAX_NESTING} lists or dicts deep"))
        .with_help(format!(
            "flowc folds lists and dicts up to {MAX_NESTING} levels deep; flatten the value, \
             or build it in the step's code"
        ))
}

/// How many lists and dicts deep `value` is: `1` is 0, `[1]` is 1, `[{"k": []}]` is 3.
/// Folded values are at most `MAX_NESTING` deep, so the walk is short.
fn nesting_levels(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0)];
    while let Some((v, level)) = stack.pop() {
        match v {
            Value::List(items) => stack.extend(items.iter().map(|i| (i, level + 1))),
            Value::Dict(map) => stack.extend(map.values().map(|i| (i, level + 1))),
            _ => {}
        }
        deepest = deepest.max(level + usize::from(matches!(v, Value::List(_) | Value::Dict(_))));
    }
    deepest
}

/// A name's value, or the use site as `Deferred` when the bound value is deferred.
fn at_use_site(value: Value, deferred: impl FnOnce() -> Value) -> Value {
    if value.is_deferred() {
        deferred()
    } else {
        value
    }
}

/// Python truthiness of a folded value.
fn truthy(v: &Value) -> Option<bool> {
    Some(match v {
        Value::None => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Dict(d) => !d.is_empty(),
        Value::Deferred { .. } => return None,
    })
}

/// Ints and bools (Python's `bool` is an `int`).
fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        other => int_of(other).map(|i| i as f64),
    }
}

fn finite(f: f64) -> Option<Value> {
    f.is_finite().then_some(Value::Float(f))
}

/// One binary operation with Python semantics, or `None` when it cannot be folded.
fn binary_op(op: &str, left: &Value, right: &Value) -> Option<Value> {
    match (left, right) {
        (Value::Str(a), Value::Str(b)) if op == "+" => {
            (a.len() + b.len() <= MAX_LEN).then(|| Value::Str(format!("{a}{b}")))
        }
        (Value::List(a), Value::List(b)) if op == "+" => (a.len() + b.len() <= MAX_LEN)
            .then(|| Value::List(a.iter().chain(b).cloned().collect())),
        (Value::Str(s), n) | (n, Value::Str(s)) if op == "*" => {
            let times = usize::try_from(int_of(n)?.max(0)).ok()?;
            (s.len().checked_mul(times)? <= MAX_LEN).then(|| Value::Str(s.repeat(times)))
        }
        (Value::List(l), n) | (n, Value::List(l)) if op == "*" => {
            let times = usize::try_from(int_of(n)?.max(0)).ok()?;
            (l.len().checked_mul(times)? <= MAX_LEN)
                .then(|| Value::List(std::iter::repeat_n(l, times).flatten().cloned().collect()))
        }
        _ => match (int_of(left), int_of(right)) {
            (Some(a), Some(b)) => int_op(op, a, b),
            _ => float_op(op, float_of(left)?, float_of(right)?),
        },
    }
}

fn int_op(op: &str, a: i64, b: i64) -> Option<Value> {
    match op {
        "+" => a.checked_add(b).map(Value::Int),
        "-" => a.checked_sub(b).map(Value::Int),
        "*" => a.checked_mul(b).map(Value::Int),
        "/" => (b != 0).then(|| a as f64 / b as f64).and_then(finite),
        "//" => floor_div(a, b).map(Value::Int),
        "%" => floor_mod(a, b).map(Value::Int),
        "**" if b >= 0 => a.checked_pow(u32::try_from(b).ok()?).map(Value::Int),
        // A negative exponent gives a float; 0 ** -1 raises.
        "**" => (a != 0).then(|| (a as f64).powf(b as f64)).and_then(finite),
        "<<" if (0..63).contains(&b) => a.checked_mul(1i64 << b).map(Value::Int),
        ">>" if b >= 0 => Some(Value::Int(a >> b.min(63))),
        "&" => Some(Value::Int(a & b)),
        "|" => Some(Value::Int(a | b)),
        "^" => Some(Value::Int(a ^ b)),
        _ => None,
    }
}

/// Python's `//` on ints: rounds towards negative infinity.
fn floor_div(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    let r = a.checked_rem(b)?;
    Some(if r != 0 && ((r < 0) != (b < 0)) {
        q - 1
    } else {
        q
    })
}

/// Python's `%` on ints: the result has the divisor's sign.
fn floor_mod(a: i64, b: i64) -> Option<i64> {
    let r = a.checked_rem(b)?;
    Some(if r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    })
}

fn float_op(op: &str, a: f64, b: f64) -> Option<Value> {
    match op {
        "+" => finite(a + b),
        "-" => finite(a - b),
        "*" => finite(a * b),
        "/" => (b != 0.0).then(|| a / b).and_then(finite),
        "//" => float_divmod(a, b).and_then(|(d, _)| finite(d)),
        "%" => float_divmod(a, b).and_then(|(_, m)| finite(m)),
        "**" => {
            // Python raises for 0.0 ** negative and gives a complex for a negative base
            // with a fractional exponent; neither is a value here.
            if (a == 0.0 && b < 0.0) || (a < 0.0 && b.fract() != 0.0) {
                None
            } else {
                finite(a.powf(b))
            }
        }
        _ => None,
    }
}

/// Python's float `divmod`, as CPython computes it (floor division and modulo).
fn float_divmod(a: f64, b: f64) -> Option<(f64, f64)> {
    if b == 0.0 {
        return None;
    }
    let mut m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(b);
    }
    let floordiv = if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 {
            f + 1.0
        } else {
            f
        }
    } else {
        0.0f64.copysign(a / b)
    };
    Some((floordiv, m))
}

/// A Python integer literal (`1_000`, `0x1F`, `0o17`, `0b101`), if it fits in an i64.
fn parse_int(literal: &str) -> Option<i64> {
    let digits: String = literal.chars().filter(|c| *c != '_').collect();
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ => (10, lower.as_str()),
    };
    // `l` (Python 2 longs) and `j` (imaginary) suffixes are not ints; from_str_radix
    // rejects them, and signs, which a literal never has.
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    i64::from_str_radix(body, radix).ok()
}

/// A Python float literal; imaginary literals and overflow to infinity are not folded.
fn parse_float(literal: &str) -> Option<f64> {
    let digits: String = literal.chars().filter(|c| *c != '_').collect();
    if digits.ends_with(['j', 'J']) {
        return None;
    }
    digits.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Decode the backslash escapes of a non-raw Python string body.
fn unescape(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        match e {
            '\n' => {}
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '0'..='7' => {
                let mut code = e.to_digit(8)?;
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(code)?);
            }
            'x' | 'u' | 'U' => {
                let width = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut code = 0u32;
                for _ in 0..width {
                    code = code * 16 + chars.next()?.to_digit(16)?;
                }
                out.push(char::from_u32(code)?);
            }
            // `\N{NAME}` needs the Unicode name table; keep the string deferred.
            'N' => return None,
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Whether `node` is written as a string literal (possibly implicitly concatenated or
/// parenthesised), as opposed to a name or expression that happens to fold to a string.
pub(crate) fn is_string_literal(node: Node<'_>) -> bool {
    matches!(
        syntax::unparenthesize(node).kind(),
        "string" | "concatenated_string"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse_tree;

    /// Evaluate the right-hand side of the last statement `x = <expr>` of `src`.
    fn eval_last(src: &str) -> Value {
        let tree = parse_tree(src).expect("tree");
        let root = tree.root_node();
        let ev = Evaluator::new(root, src);
        let last = *statements(root).last().expect("statement");
        let assign = Assignment::cast(last).expect("assignment");
        ev.eval(assign.right, None)
    }

    fn eval(expr: &str) -> Value {
        eval_last(&format!("x = {expr}\n"))
    }

    fn deferred_text(v: &Value) -> Option<&str> {
        match v {
            Value::Deferred { source_text, .. } => Some(source_text),
            _ => None,
        }
    }

    #[test]
    fn folds_literals() {
        assert_eq!(eval("1_000"), Value::Int(1000));
        assert_eq!(eval("0x1F"), Value::Int(31));
        assert_eq!(eval("0o17"), Value::Int(15));
        assert_eq!(eval("0b101"), Value::Int(5));
        assert_eq!(eval("1.5"), Value::Float(1.5));
        assert_eq!(eval("1e3"), Value::Float(1000.0));
        assert_eq!(eval("1."), Value::Float(1.0));
        assert_eq!(eval(".5"), Value::Float(0.5));
        assert_eq!(eval("True"), Value::Bool(true));
        assert_eq!(eval("False"), Value::Bool(false));
        assert_eq!(eval("None"), Value::None);
        assert!(eval("2j").is_deferred());
        assert!(eval("99999999999999999999").is_deferred());
    }

    #[test]
    fn folds_strings() {
        assert_eq!(eval("'a' \"b\""), Value::Str("ab".into()));
        assert_eq!(eval(r#"r"a\nb""#), Value::Str("a\\nb".into()));
        assert_eq!(
            eval(r#""a\tb\x41\u00e9\101""#),
            Value::Str("a\tbAéA".into())
        );
        assert_eq!(
            eval("\"\"\"line1\nline2\"\"\""),
            Value::Str("line1\nline2".into())
        );
        assert_eq!(eval("f'{{x}}'"), Value::Str("{x}".into()));
        assert_eq!(eval("u'é'"), Value::Str("é".into()));
        assert_eq!(deferred_text(&eval("b'x'")), Some("b'x'"));
        assert_eq!(deferred_text(&eval("f'{name}'")), Some("f'{name}'"));
        assert!(eval(r#""\N{BULLET}""#).is_deferred());
        assert_eq!(eval("'ab' + 'c'"), Value::Str("abc".into()));
        assert_eq!(eval("'ab' * 2"), Value::Str("abab".into()));
        assert_eq!(eval("2 * 'ab'"), Value::Str("abab".into()));
        assert_eq!(eval("'ab' * -1"), Value::Str(String::new()));
        assert!(eval("'ab' * 10**12").is_deferred());
    }

    #[test]
    fn folds_arithmetic_with_python_semantics() {
        assert_eq!(eval("7 / 2"), Value::Float(3.5));
        assert_eq!(eval("4 / 2"), Value::Float(2.0));
        assert_eq!(eval("-7 // 2"), Value::Int(-4));
        assert_eq!(eval("7 // -2"), Value::Int(-4));
        assert_eq!(eval("-7 % 3"), Value::Int(2));
        assert_eq!(eval("7 % -3"), Value::Int(-2));
        assert_eq!(eval("-7.0 // 2"), Value::Float(-4.0));
        assert_eq!(eval("-7.0 % 2"), Value::Float(1.0));
        assert_eq!(eval("2 ** 10"), Value::Int(1024));
        assert_eq!(eval("2 ** -1"), Value::Float(0.5));
        assert_eq!(eval("1 + 2 * 3 - 4"), Value::Int(3));
        assert_eq!(eval("(1 + 2) * 3"), Value::Int(9));
        assert_eq!(eval("-(3)"), Value::Int(-3));
        assert_eq!(eval("+2.5"), Value::Float(2.5));
        assert_eq!(eval("not 0"), Value::Bool(true));
        assert_eq!(eval("True + 1"), Value::Int(2));
        assert_eq!(eval("1 + 0.5"), Value::Float(1.5));
        assert_eq!(eval("1024 * 1024 * 4"), Value::Int(4_194_304));
    }

    #[test]
    fn overflow_and_division_by_zero_are_deferred() {
        assert!(eval("2 ** 64").is_deferred());
        assert!(eval("9223372036854775807 + 1").is_deferred());
        assert!(eval("-9223372036854775807 - 2").is_deferred());
        assert!(eval("1 / 0").is_deferred());
        assert!(eval("1 // 0").is_deferred());
        assert!(eval("1 % 0").is_deferred());
        assert!(eval("1.0 / 0.0").is_deferred());
        assert!(eval("0.0 ** -1").is_deferred());
        assert!(eval("10.0 ** 400").is_deferred());
        assert!(eval("2 ** 100000000000").is_deferred());
    }

    #[test]
    fn folds_collections() {
        assert_eq!(
            eval("[1, (2, 3), 'a']"),
            Value::List(vec![
                Value::Int(1),
                Value::List(vec![Value::Int(2), Value::Int(3)]),
                Value::Str("a".into())
            ])
        );
        let mut map = BTreeMap::new();
        map.insert("a".to_string(), Value::Int(1));
        map.insert("b".to_string(), Value::List(vec![]));
        assert_eq!(eval("{'a': 1, 'b': []}"), Value::Dict(map));
        assert!(eval("{1: 'a'}").is_deferred());
        assert!(eval("{**other}").is_deferred());
        assert!(eval("[*xs]").is_deferred());
        assert_eq!(
            eval("[1] * 2 + [3]"),
            Value::List(vec![Value::Int(1), Value::Int(1), Value::Int(3)])
        );
        // A deferred element keeps the rest of the list readable.
        let v = eval("[1, os.getcwd()]");
        let Value::List(items) = v else {
            panic!("expected a list, got {v:?}")
        };
        assert_eq!(items[0], Value::Int(1));
        assert_eq!(deferred_text(&items[1]), Some("os.getcwd()"));
    }

    #[test]
    fn keeps_what_it_cannot_fold_as_deferred_with_span() {
        let src = "import os\nx = os.environ['HOME']\n";
        let v = eval_last(src);
        let Value::Deferred { source_text, span } = v else {
            panic!("expected deferred, got {v:?}")
        };
        assert_eq!(source_text, "os.environ['HOME']");
        assert_eq!(&src[span.start..span.end], "os.environ['HOME']");
        assert!(eval("lambda ctx: 1").is_deferred());
        assert!(eval("[i for i in range(3)]").is_deferred());
        assert!(eval("f(1)").is_deferred());
        assert!(eval("1 + f(1)").is_deferred());
        assert!(eval("{1, 2}").is_deferred());
    }

    #[test]
    fn resolves_module_constants_bound_once() {
        assert_eq!(eval_last("A = 2\nB = A * 3\nx = B + 1\n"), Value::Int(7));
        assert_eq!(eval_last("x = B\nB = 'late'\n"), Value::Str("late".into()));
        assert_eq!(eval_last("A = B = 4\nx = A + B\n"), Value::Int(8));
        // Bound twice, in a branch, in a loop, augmented, or declared global: not constant.
        assert!(eval_last("A = 1\nA = 2\nx = A\n").is_deferred());
        assert!(eval_last("A = 1\nif c:\n    A = 2\nx = A\n").is_deferred());
        assert!(eval_last("A = 1\nfor A in r:\n    pass\nx = A\n").is_deferred());
        assert!(eval_last("A = 1\nA += 1\nx = A\n").is_deferred());
        assert!(eval_last("A = 1\ndef f():\n    global A\n    A = 3\nx = A\n").is_deferred());
        assert!(eval_last("A = 1\nimport A\nx = A\n").is_deferred());
        // Cycles and unknown names.
        assert!(eval_last("A = B\nB = A\nx = A\n").is_deferred());
        let v = eval_last("A = os.sep\nx = A\n");
        assert_eq!(deferred_text(&v), Some("A"));
    }

    #[test]
    fn resolves_class_constants_first() {
        let src = "A = 1\nclass F:\n    A = 10\n    B = A + 1\n    x = B\n";
        let tree = parse_tree(src).expect("tree");
        let root = tree.root_node();
        let ev = Evaluator::new(root, src);
        let class = syntax::ClassDef::cast(statements(root)[1]).expect("class");
        let body = class.body().expect("body");
        let scope = Scope::class(body, src);
        let assign = Assignment::cast(*statements(body).last().expect("x")).expect("assign");
        assert_eq!(ev.eval(assign.right, Some(&scope)), Value::Int(11));
    }

    #[test]
    fn deep_nesting_is_deferred_not_a_stack_overflow() {
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        let v = eval(&deep);
        assert!(v == Value::Int(1) || v.is_deferred());
        let sum = format!("x = 1{}\n", " + 1".repeat(5000));
        assert!(eval_last(&sum).is_deferred());
        let negs = format!("x = {}1\n", "-".repeat(5000));
        assert!(eval_last(&negs).is_deferred());
        // Past the depth bound the innermost lists are deferred; the outer ones remain.
        let lists = format!("x = {}{}\n", "[".repeat(3000), "]".repeat(3000));
        assert!(matches!(eval_last(&lists), Value::List(_)));
    }

    /// Folds the last `x = <expr>` of `src`, with the spans kept for nesting too deeply.
    fn eval_nesting(src: &str) -> (Value, Vec<String>) {
        let tree = parse_tree(src).expect("tree");
        let root = tree.root_node();
        let ev = Evaluator::new(root, src);
        let last = *statements(root).last().expect("statement");
        let value = ev.eval(Assignment::cast(last).expect("assignment").right, None);
        let spans = ev.too_deep_in(&value);
        let texts = spans
            .iter()
            .map(|s| src[s.start..s.end].to_string())
            .collect();
        (value, texts)
    }

    fn lists(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn lists_and_dicts_fold_up_to_the_nesting_bound() {
        let (v, too_deep) = eval_nesting(&format!("x = {}\n", lists(MAX_NESTING)));
        assert_eq!(nesting_levels(&v), MAX_NESTING);
        assert!(too_deep.is_empty());
        let (v, too_deep) = eval_nesting(&format!("x = {}\n", lists(MAX_NESTING + 3)));
        assert_eq!(nesting_levels(&v), MAX_NESTING);
        assert_eq!(too_deep, [lists(3)]);
        // Dicts and tuples count alike; the deferred part is the innermost collection.
        let dicts = format!("{}1{}", "{'k': [".repeat(20), "]}".repeat(20));
        let (v, too_deep) = eval_nesting(&format!("x = {dicts}\n"));
        assert_eq!(nesting_levels(&v), MAX_NESTING);
        assert_eq!(too_deep.len(), 1);
        assert!(too_deep[0].starts_with("{'k': ["), "{too_deep:?}");
        // Parentheses do not count, and the deferred part is reported with them.
        let (_, too_deep) = eval_nesting(&format!(
            "x = [{}]\n",
            "([".repeat(40) + "1" + &"])".repeat(40)
        ));
        assert_eq!(too_deep.len(), 1);
        assert!(too_deep[0].starts_with("(["));
        // `+` and `*` build no deeper lists than their operands.
        let (v, too_deep) = eval_nesting(&format!("x = {0} + {0} * 2\n", lists(MAX_NESTING)));
        assert!(matches!(&v, Value::List(items) if items.len() == 3));
        assert!(too_deep.is_empty());
    }

    #[test]
    fn constants_are_checked_where_they_are_used() {
        let inner = lists(MAX_NESTING - 1);
        // Within the bound at two levels of use, past it at three.
        let (v, too_deep) = eval_nesting(&format!("A = {inner}\nx = [A]\n"));
        assert_eq!(nesting_levels(&v), MAX_NESTING);
        assert!(too_deep.is_empty());
        let (v, too_deep) = eval_nesting(&format!("A = {inner}\nx = [[A], A]\n"));
        assert_eq!(too_deep, ["A"]);
        let Value::List(items) = v else {
            panic!("expected a list, got {v:?}")
        };
        assert_eq!(deferred_text(&items[0]), None);
        assert_eq!(nesting_levels(&items[1]), MAX_NESTING - 1);
        // A deferred value for another reason is not called too deep.
        let (v, too_deep) = eval_nesting("x = [f(1)]\n");
        assert!(matches!(v, Value::List(_)));
        assert!(too_deep.is_empty());
    }

    #[test]
    fn literal_detection() {
        let src = "x = ('a' 'b')\n";
        let tree = parse_tree(src).expect("tree");
        let assign = Assignment::cast(statements(tree.root_node())[0]).expect("assign");
        assert!(is_string_literal(assign.right));
    }
}
