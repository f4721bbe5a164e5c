//! The plain-text graph: each step with its decorators, docstring and successors, in
//! graph order, as `metaflow ... show` lists a flow (in a layout of our own).

use std::collections::BTreeSet;
use std::fmt::Write;

use flowc_ir::{Flow, Step, Transition};

use super::{doc_of, node_type, ordered_steps, printable};

const INDENT: &str = "    ";

/// The flow as readable text: the flow's name and docstring, then one block per step.
pub fn text(flow: &Flow) -> String {
    let known: BTreeSet<&str> = flow.steps.iter().map(|s| s.name.as_str()).collect();
    let mut out = String::new();
    out.push_str(&printable(&flow.name));
    out.push('\n');
    if let Some(doc) = doc_of(flow.doc.as_deref()) {
        push_indented(&mut out, &doc);
    }
    for step in ordered_steps(flow) {
        out.push('\n');
        step_block(&mut out, flow, step, &known);
    }
    out
}

fn step_block(out: &mut String, flow: &Flow, step: &Step, known: &BTreeSet<&str>) {
    for decorator in &step.decorators {
        let _ = writeln!(out, "@{}", printable(&decorator.name));
    }
    let kind = node_type(flow, step).map_or("no transition", |t| t.as_str());
    let _ = writeln!(out, "Step {} ({kind})", printable(&step.name));
    if let Some(doc) = doc_of(step.doc.as_deref()) {
        push_indented(out, &doc);
    }
    let target = |name: &str| -> String {
        if known.contains(name) {
            printable(name)
        } else {
            format!("{} (unknown step)", printable(name))
        }
    };
    match &step.transition {
        // The exit step ends the run; any other step without `self.next` is an error
        // that `check` reports, and showing it here helps to see where the graph stops.
        Transition::End if step.name == flow.end_step => {}
        Transition::End => {
            let _ = writeln!(out, "{INDENT}=> (no self.next)");
        }
        Transition::Linear { to } => {
            let _ = writeln!(out, "{INDENT}=> {}", target(&to.step));
        }
        Transition::Branch { to } => {
            let names: Vec<String> = to.iter().map(|t| target(&t.step)).collect();
            let _ = writeln!(out, "{INDENT}=> {} (in parallel)", names.join(", "));
        }
        Transition::Foreach { to, over, .. } => {
            let _ = writeln!(
                out,
                "{INDENT}=> {} (one task for each item of self.{})",
                target(&to.step),
                printable(over)
            );
        }
        Transition::Switch { on, cases, .. } => {
            for case in cases {
                let _ = writeln!(
                    out,
                    "{INDENT}=> {} if self.{} == {:?}",
                    target(&case.target.step),
                    printable(on),
                    case.value
                );
            }
        }
    }
}

fn push_indented(out: &mut String, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{INDENT}{}", printable(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{flow_of, ALL_KINDS};

    #[test]
    fn lists_steps_with_docs_and_successors() {
        let out = text(&flow_of(ALL_KINDS));
        assert!(
            out.starts_with("KindsFlow\n    Every kind of node.\n"),
            "{out}"
        );
        assert!(out.contains("Step start (split)\n    Entry.\n    => a, b (in parallel)\n"));
        assert!(out.contains("Step fork (join)\n    => prep\n"));
        assert!(out
            .contains("Step prep (foreach)\n    => each (one task for each item of self.items)\n"));
        assert!(out.contains(
            "    => quick if self.mode == \"fast\"\n    => careful if self.mode == \"slow\"\n"
        ));
        assert!(out.contains("Step end (end)\n    Exit.\n"));
        assert!(!out.contains("Step end (end)\n    Exit.\n    =>"));
    }

    #[test]
    fn shows_decorators_and_escapes_control_characters() {
        let flow = flow_of(
            "from metaflow import FlowSpec, step, retry\n\n\
             class F(FlowSpec):\n    @retry\n    @step\n    def start(self):\n        \
             \"\"\"Say \u{1b}[31mred\u{1b}[0m.\"\"\"\n        self.next(self.end)\n\n    \
             @step\n    def end(self):\n        pass\n",
        );
        let out = text(&flow);
        assert!(out.contains("@retry\nStep start (start)\n"), "{out}");
        assert!(!out.contains('\u{1b}'), "{out:?}");
        assert!(out.contains("\\u{1b}[31mred"), "{out}");
    }
}
