//! Import resolution: which local names and module aliases refer to Metaflow, so that
//! `FS`, `mf.FlowSpec` and `metaflow.FlowSpec` all read as `FlowSpec`, and `@r` after
//! `from metaflow import retry as r` reads as `retry`.

use std::collections::{HashMap, HashSet};

use tree_sitter::Node;

use super::syntax::{named_children, statements, text, FieldExt};

/// Compound statements whose bodies still run at module level (`try: import ...`).
const MODULE_LEVEL_BLOCKS: &[&str] = &[
    "if_statement",
    "try_statement",
    "with_statement",
    "else_clause",
    "elif_clause",
    "except_clause",
    "finally_clause",
    "block",
];

/// What the module's imports bind.
#[derive(Debug, Default)]
pub(crate) struct Imports {
    /// Local name → the Metaflow name it was imported as (`FS` → `FlowSpec`).
    metaflow_names: HashMap<String, String>,
    /// Local names bound to something imported from elsewhere.
    foreign_names: HashSet<String>,
    /// Local names bound to the `metaflow` module or one of its submodules.
    metaflow_modules: HashSet<String>,
}

impl Imports {
    /// Read every import at module level (including inside `if`/`try` blocks there).
    pub(crate) fn collect(root: Node<'_>, src: &str) -> Self {
        let mut imports = Imports::default();
        let mut stack: Vec<Node<'_>> = statements(root).into_iter().rev().collect();
        while let Some(stmt) = stack.pop() {
            match stmt.kind() {
                "import_statement" => imports.import(stmt, src),
                "import_from_statement" => imports.import_from(stmt, src),
                kind if MODULE_LEVEL_BLOCKS.contains(&kind) => {
                    stack.extend(named_children(stmt).into_iter().rev());
                }
                _ => {}
            }
        }
        imports
    }

    fn import(&mut self, stmt: Node<'_>, src: &str) {
        let mut cursor = stmt.walk();
        for name in stmt.children_by_field_name("name", &mut cursor) {
            let (module, alias) = match name.kind() {
                "aliased_import" => (
                    name.field("name"),
                    name.field("alias").map(|a| text(a, src)),
                ),
                _ => (Some(name), None),
            };
            let Some(module) = module else { continue };
            let module = text(module, src);
            let is_metaflow = is_metaflow_module(module);
            // `import a.b` binds `a`; `import a.b as c` binds `c` to `a.b`.
            let local = alias.unwrap_or_else(|| module.split('.').next().unwrap_or(module));
            let local = local.trim().to_string();
            if is_metaflow {
                self.foreign_names.remove(&local);
                self.metaflow_modules.insert(local);
            } else {
                self.metaflow_modules.remove(&local);
                self.foreign_names.insert(local);
            }
        }
    }

    fn import_from(&mut self, stmt: Node<'_>, src: &str) {
        let Some(module) = stmt.field("module_name") else {
            return;
        };
        let is_metaflow = module.kind() == "dotted_name" && is_metaflow_module(text(module, src));
        let mut cursor = stmt.walk();
        for name in stmt.children_by_field_name("name", &mut cursor) {
            let (imported, alias) = match name.kind() {
                "aliased_import" => (
                    name.field("name").map(|n| text(n, src)),
                    name.field("alias").map(|a| text(a, src)),
                ),
                _ => (Some(text(name, src)), None),
            };
            let Some(imported) = imported else { continue };
            let local = alias.unwrap_or(imported).to_string();
            self.metaflow_modules.remove(&local);
            if is_metaflow {
                self.foreign_names.remove(&local);
                self.metaflow_names.insert(local, imported.to_string());
            } else {
                self.metaflow_names.remove(&local);
                self.foreign_names.insert(local);
            }
        }
    }

    /// The Metaflow name `expr` refers to: `FlowSpec` for `FlowSpec`, `FS` (imported
    /// as), `metaflow.FlowSpec` or `mf.FlowSpec`. A bare name imported from nowhere is
    /// taken at its word, so `from metaflow import *` and a file that forgot
    /// `from metaflow import step` still read.
    pub(crate) fn metaflow_name<'s>(&'s self, expr: Node<'_>, src: &'s str) -> Option<&'s str> {
        match expr.kind() {
            "identifier" => {
                let name = text(expr, src);
                if let Some(imported) = self.metaflow_names.get(name) {
                    Some(imported)
                } else if self.foreign_names.contains(name) || self.metaflow_modules.contains(name)
                {
                    None
                } else {
                    Some(name)
                }
            }
            "attribute" => {
                let object = expr.field("object")?;
                let attr = expr.field("attribute")?;
                self.is_metaflow_module_expr(object, src)
                    .then(|| text(attr, src))
            }
            _ => None,
        }
    }

    /// Whether `expr` (`metaflow`, `mf`, `metaflow.plugins`) names a Metaflow module.
    fn is_metaflow_module_expr(&self, mut expr: Node<'_>, src: &str) -> bool {
        // Walk down `a.b.c` to its root `a`, iteratively.
        while expr.kind() == "attribute" {
            match expr.field("object") {
                Some(object) => expr = object,
                None => return false,
            }
        }
        expr.kind() == "identifier" && self.metaflow_modules.contains(text(expr, src))
    }

    /// The local name the Metaflow object `name` was imported under, if it was (the
    /// first in alphabetical order when there are several, to stay deterministic).
    pub(crate) fn local_name(&self, name: &str) -> Option<&str> {
        self.metaflow_names
            .iter()
            .filter(|(_, imported)| imported.as_str() == name)
            .map(|(local, _)| local.as_str())
            .min()
    }

    /// Whether `expr` is the Metaflow object `name` (e.g. `step`, `Parameter`).
    pub(crate) fn is(&self, expr: Node<'_>, src: &str, name: &str) -> bool {
        self.metaflow_name(expr, src) == Some(name)
    }

    /// The name a decorator is known by: its Metaflow name when it comes from Metaflow,
    /// else the last component as written (`@mylib.audit` → `audit`).
    pub(crate) fn decorator_name<'s>(&'s self, callee: Node<'_>, src: &'s str) -> &'s str {
        if let Some(name) = self.metaflow_name(callee, src) {
            return name;
        }
        match callee.kind() {
            "attribute" => callee
                .field("attribute")
                .map_or_else(|| text(callee, src), |a| text(a, src)),
            _ => text(callee, src),
        }
    }
}

fn is_metaflow_module(dotted: &str) -> bool {
    dotted == "metaflow" || dotted.starts_with("metaflow.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse_tree;
    use crate::frontend::syntax::Assignment;

    /// Resolve the right-hand side of the last assignment in `src`.
    fn resolve(src: &str) -> Option<String> {
        let tree = parse_tree(src).expect("tree");
        let root = tree.root_node();
        let imports = Imports::collect(root, src);
        let last = *statements(root).last().expect("statement");
        let assign = Assignment::cast(last).expect("assignment");
        imports.metaflow_name(assign.right, src).map(str::to_string)
    }

    #[test]
    fn resolves_every_import_form() {
        assert_eq!(
            resolve("from metaflow import FlowSpec\nx = FlowSpec\n").as_deref(),
            Some("FlowSpec")
        );
        assert_eq!(
            resolve("from metaflow import FlowSpec as FS\nx = FS\n").as_deref(),
            Some("FlowSpec")
        );
        assert_eq!(
            resolve("import metaflow\nx = metaflow.FlowSpec\n").as_deref(),
            Some("FlowSpec")
        );
        assert_eq!(
            resolve("import metaflow as mf\nx = mf.step\n").as_deref(),
            Some("step")
        );
        assert_eq!(
            resolve("import metaflow.plugins\nx = metaflow.plugins.retry\n").as_deref(),
            Some("retry")
        );
        assert_eq!(
            resolve("from metaflow import (retry as r,\n  step)\nx = r\n").as_deref(),
            Some("retry")
        );
        assert_eq!(resolve("try:\n    from metaflow import Parameter as P\nexcept ImportError:\n    pass\nx = P\n").as_deref(), Some("Parameter"));
        assert_eq!(
            resolve("from metaflow import *\nx = FlowSpec\n").as_deref(),
            Some("FlowSpec")
        );
    }

    #[test]
    fn foreign_names_are_not_metaflow() {
        assert_eq!(resolve("from mylib import FlowSpec\nx = FlowSpec\n"), None);
        assert_eq!(resolve("import mylib as mf\nx = mf.FlowSpec\n"), None);
        assert_eq!(resolve("import metaflow as mf\nx = other.FlowSpec\n"), None);
        assert_eq!(resolve("import metaflow\nx = metaflow\n"), None);
        // Re-imported from elsewhere later: the last import wins.
        assert_eq!(
            resolve("from metaflow import step\nfrom other import step\nx = step\n"),
            None
        );
        // An unimported bare name is taken at its word.
        assert_eq!(resolve("x = step\n").as_deref(), Some("step"));
    }

    #[test]
    fn decorator_names_drop_module_prefixes() {
        let src = "import metaflow as mf\nimport mylib\nfrom metaflow import retry as r\na = mf.retry\nb = mylib.audit\nc = r\nd = custom\n";
        let tree = parse_tree(src).expect("tree");
        let root = tree.root_node();
        let imports = Imports::collect(root, src);
        let names: Vec<&str> = statements(root)[3..]
            .iter()
            .map(|s| imports.decorator_name(Assignment::cast(*s).expect("assign").right, src))
            .collect();
        assert_eq!(names, ["retry", "audit", "retry", "custom"]);
    }
}
