//! Flags a step with more than one compute decorator (`@batch` and `@kubernetes`).
//!
//! A task runs on one platform; Metaflow refuses a step that asks for two, and a
//! backend could only guess which one was meant.
//!
//! ```python
//! @batch(cpu=4)
//! @kubernetes(cpu=4)
//! @step
//! def train(self):
//!     self.next(self.end)
//! ```

use flowc_ir::Decorator;

use crate::diagnostics::{codes, Diagnostic};
use crate::lint::{Context, Rule};

pub(crate) const RULE: Rule = Rule {
    code: &codes::MULTIPLE_COMPUTE,
    check,
};

/// The decorators that choose where a step's tasks run.
const COMPUTE: &[&str] = &["batch", "kubernetes"];

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cx.graph;
    for node in g.nodes() {
        let step = g.step(node);
        let mut first: Option<&Decorator> = None;
        for deco in &step.decorators {
            if !COMPUTE.contains(&deco.name.as_str()) {
                continue;
            }
            match first {
                None => first = Some(deco),
                // The same decorator twice is `decorator::duplicate`, reported elsewhere.
                Some(f) if f.name == deco.name => {}
                Some(f) => out.push(
                    Diagnostic::new(
                        &codes::MULTIPLE_COMPUTE,
                        deco.span,
                        format!(
                            "step `{}` has both `@{}` and `@{}`",
                            step.name, f.name, deco.name
                        ),
                    )
                    .with_related(f.span, format!("`@{}` is already here", f.name))
                    .with_help("keep one compute decorator: a step's tasks run on one platform"),
                ),
            }
        }
    }
}
