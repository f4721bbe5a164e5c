//! The graph as a Mermaid `flowchart`, for Markdown files and pull requests.
//!
//! Node ids are derived from step names but never equal them: `end` is a Mermaid
//! keyword and would close the chart. Every label is a quoted string with Mermaid's
//! entity codes for the characters that would otherwise end it or be read as HTML.

use std::collections::BTreeSet;
use std::fmt::Write;

use flowc_ir::{Flow, Transition};

use super::{node_type, ordered_steps, NodeType};

/// The flow as `flowchart TD`: one node per step, shaped by its kind, and one edge per
/// transition, labelled with the foreach variable or the switch case value.
pub fn mermaid(flow: &Flow) -> String {
    let order = ordered_steps(flow);
    let known: BTreeSet<&str> = flow.steps.iter().map(|s| s.name.as_str()).collect();
    let mut declared = BTreeSet::new();
    let mut out = String::from("flowchart TD\n");
    for step in &order {
        // A duplicated step name is one node; the frontend reports the duplicate.
        if !declared.insert(step.name.as_str()) {
            continue;
        }
        let (open, close) = shape(node_type(flow, step));
        let _ = writeln!(
            out,
            "    {}{open}\"{}\"{close}",
            node_id(&step.name),
            escape(&step.name)
        );
    }
    for step in &order {
        let from = node_id(&step.name);
        let edge = |out: &mut String, to: &str, label: Option<String>| {
            // An edge to a step that does not exist would make Mermaid invent a node.
            if !known.contains(to) {
                return;
            }
            let _ = match label {
                Some(label) => writeln!(out, "    {from} -->|\"{label}\"| {}", node_id(to)),
                None => writeln!(out, "    {from} --> {}", node_id(to)),
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
                edge(
                    &mut out,
                    &to.step,
                    Some(format!("foreach {}", escape(over))),
                );
            }
            Transition::Switch { cases, .. } => {
                for case in cases {
                    edge(&mut out, &case.target.step, Some(escape(&case.value)));
                }
            }
        }
    }
    out
}

/// Opening and closing brackets of the node shape for each kind of step.
fn shape(kind: Option<NodeType>) -> (&'static str, &'static str) {
    match kind {
        Some(NodeType::Start | NodeType::End) => ("([", "])"),
        Some(NodeType::Linear) | None => ("[", "]"),
        Some(NodeType::Split) => ("[/", "\\]"),
        Some(NodeType::Foreach) => ("[/", "/]"),
        Some(NodeType::SplitSwitch) => ("{{", "}}"),
        Some(NodeType::Join) => ("[\\", "/]"),
    }
}

/// A Mermaid node id for a step: `s_<name>` for ASCII identifiers (the usual case,
/// readable in the source of the chart), `u_<hex of the UTF-8 bytes>` for any other
/// name. The two prefixes keep the two forms from ever colliding.
fn node_id(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("s_{name}")
    } else {
        let mut id = String::from("u_");
        for b in name.bytes() {
            let _ = write!(id, "{b:02x}");
        }
        id
    }
}

/// Text for inside a double-quoted Mermaid label. Mermaid turns `#name;` and `#123;`
/// into HTML entities, which is the only way to write a quote in a label and the safe
/// way to write `<`, `>`, `&` (labels may be rendered as HTML). `#` itself is encoded so
/// user text can never form an entity, `|` so it cannot end an edge label, and a
/// backtick so a label cannot turn into Markdown. Line breaks become spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{flow_of, ALL_KINDS};

    #[test]
    fn draws_every_kind_and_labels_edges() {
        let out = mermaid(&flow_of(ALL_KINDS));
        assert!(out.starts_with("flowchart TD\n"), "{out}");
        for line in [
            "    s_start[/\"start\"\\]",
            "    s_prep[/\"prep\"/]",
            "    s_fork[\\\"fork\"/]",
            "    s_choose{{\"choose\"}}",
            "    s_end([\"end\"])",
            "    s_a[\"a\"]",
            "    s_start --> s_a",
            "    s_start --> s_b",
            "    s_prep -->|\"foreach items\"| s_each",
            "    s_choose -->|\"fast\"| s_quick",
            "    s_choose -->|\"slow\"| s_careful",
            "    s_careful --> s_end",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        // `end` alone is a Mermaid keyword and must never be a node id.
        assert!(!out.lines().any(|l| l.trim_start().starts_with("end")));
    }

    #[test]
    fn escapes_labels() {
        assert_eq!(
            escape("a \"b\" <c> & d|e #f `g`\nh"),
            "a #quot;b#quot; #lt;c#gt; #amp; d#124;e #35;f #96;g#96; h"
        );
        let flow = flow_of(
            r#"
from metaflow import FlowSpec, step

class SwitchFlow(FlowSpec):
    @step
    def start(self):
        self.v = "x"
        self.next({"a<b> \"q\"": self.one, "c|d": self.two}, condition="v")

    @step
    def one(self):
        self.next(self.end)

    @step
    def two(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
        );
        let out = mermaid(&flow);
        assert!(
            out.contains("s_start -->|\"a#lt;b#gt; #quot;q#quot;\"| s_one"),
            "{out}"
        );
        assert!(out.contains("s_start -->|\"c#124;d\"| s_two"), "{out}");
    }

    #[test]
    fn node_ids_are_distinct_and_safe() {
        assert_eq!(node_id("end"), "s_end");
        assert_eq!(node_id("données"), "u_646f6e6ec3a96573");
        assert_ne!(node_id("s_x"), node_id("x"));
    }
}
