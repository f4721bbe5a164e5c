//! The graph in Graphviz DOT, for `dot -Tsvg`.
//!
//! Node ids are the step names as quoted DOT strings, so they are stable across runs
//! and readable; every string (ids, labels, tooltips) goes through one escaping
//! function. Plain quoted labels are used rather than record or HTML labels, in which
//! `<`, `>`, `{`, `|` from user text would be markup.

use std::collections::BTreeSet;
use std::fmt::Write;

use flowc_ir::{Flow, Transition};

use super::{doc_of, node_type, ordered_steps, NodeType};

/// The flow as a `digraph`: one node per step, labelled with its name and kind and
/// shaped by the kind, its docstring as the tooltip, and one edge per transition.
pub fn dot(flow: &Flow) -> String {
    let order = ordered_steps(flow);
    let known: BTreeSet<&str> = flow.steps.iter().map(|s| s.name.as_str()).collect();
    let mut declared = BTreeSet::new();
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&flow.name));
    let _ = writeln!(out, "    label={};", quote(&flow.name));
    out.push_str("    labelloc=t;\n");
    out.push_str("    node [fontname=\"Helvetica\"];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
    for step in &order {
        if !declared.insert(step.name.as_str()) {
            continue;
        }
        let kind = node_type(flow, step);
        let kind_name = kind.map_or("no transition", NodeType::as_str);
        let mut attrs = vec![
            format!("label={}", quote(&format!("{}\n({kind_name})", step.name))),
            format!("shape={}", shape(kind)),
        ];
        if matches!(kind, Some(NodeType::Start | NodeType::End)) {
            attrs.push("style=rounded".to_string());
        }
        if let Some(doc) = doc_of(step.doc.as_deref()) {
            attrs.push(format!("tooltip={}", quote(&doc)));
        }
        let _ = writeln!(out, "    {} [{}];", quote(&step.name), attrs.join(", "));
    }
    for step in &order {
        let from = quote(&step.name);
        let edge = |out: &mut String, to: &str, label: Option<String>| {
            // Graphviz would invent a node for a step that does not exist.
            if !known.contains(to) {
                return;
            }
            let _ = match label {
                Some(label) => writeln!(
                    out,
                    "    {from} -> {} [label={}];",
                    quote(to),
                    quote(&label)
                ),
                None => writeln!(out, "    {from} -> {};", quote(to)),
            };
        };
        match &step.transition {
            Transition::End => {}
            Transition::Linear { to } => edge(&mut out, &to.step, None),
            Transition::Branch { to } => {
                for t in to {
                    edge(&mut out, &t.step, None);
                }
            }
            Transition::Foreach { to, over, .. } => {
                edge(&mut out, &to.step, Some(format!("foreach {over}")));
            }
            Transition::Switch { cases, .. } => {
                for case in cases {
                    edge(&mut out, &case.target.step, Some(case.value.clone()));
                }
            }
        }
    }
    out.push_str("}\n");
    out
}

fn shape(kind: Option<NodeType>) -> &'static str {
    match kind {
        Some(NodeType::Start | NodeType::End | NodeType::Linear) | None => "box",
        Some(NodeType::Split) => "trapezium",
        Some(NodeType::Foreach) => "parallelogram",
        Some(NodeType::SplitSwitch) => "hexagon",
        Some(NodeType::Join) => "invtrapezium",
    }
}

/// A DOT double-quoted string. Inside one only `"` and `\` are special, but `\` also
/// starts Graphviz's label escapes (`\N`, `\l`, ...), so it is doubled; line breaks
/// become `\n` (centred lines) and other control characters are dropped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{flow_of, ALL_KINDS};

    #[test]
    fn draws_nodes_and_edges() {
        let out = dot(&flow_of(ALL_KINDS));
        assert!(out.starts_with("digraph \"KindsFlow\" {\n"), "{out}");
        assert!(out.ends_with("}\n"));
        for line in [
            "    \"start\" [label=\"start\\n(split)\", shape=trapezium, tooltip=\"Entry.\"];",
            "    \"prep\" [label=\"prep\\n(foreach)\", shape=parallelogram];",
            "    \"fork\" [label=\"fork\\n(join)\", shape=invtrapezium];",
            "    \"choose\" [label=\"choose\\n(split-switch)\", shape=hexagon];",
            "    \"end\" [label=\"end\\n(end)\", shape=box, style=rounded, tooltip=\"Exit.\"];",
            "    \"start\" -> \"a\";",
            "    \"start\" -> \"b\";",
            "    \"prep\" -> \"each\" [label=\"foreach items\"];",
            "    \"choose\" -> \"quick\" [label=\"fast\"];",
            "    \"choose\" -> \"careful\" [label=\"slow\"];",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }

    #[test]
    fn quotes_user_text() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("one\r\ntwo\nthree\u{7}"), "\"one\\ntwo\\nthree\"");
        assert_eq!(quote("<b>{x}|y"), "\"<b>{x}|y\"");
        let flow = flow_of(
            r#"
from metaflow import FlowSpec, step

class DocFlow(FlowSpec):
    @step
    def start(self):
        """Say "hi" to C:\\temp.

        Second line.
        """
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
        );
        let out = dot(&flow);
        assert!(
            out.contains("tooltip=\"Say \\\"hi\\\" to C:\\\\temp.\\n\\nSecond line.\""),
            "{out}"
        );
    }
}
