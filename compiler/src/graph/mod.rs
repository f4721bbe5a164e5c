//! Renderings of a flow's step graph: text (like Metaflow's `show`), Mermaid, DOT, JSON.
//!
//! Every renderer is a pure function of the IR. They share two things defined here: the
//! node type of each step, in Metaflow's vocabulary, and the order steps are listed in
//! (entry first, each step before the steps it leads to), so the four outputs agree with
//! each other and with `metaflow ... show`.
//!
//! The renderers never fail and never panic, even on a flow with errors (unknown
//! targets, cycles, unreachable steps): unknown targets are drawn as edges to nothing
//! in the text form and skipped where a node must exist, cycles are cut where the
//! traversal meets them, and unreachable steps are listed after the reachable ones.

mod dot;
mod json;
mod mermaid;
mod text;

use std::collections::BTreeMap;

use flowc_ir::{Flow, Step, Transition};

pub use dot::dot;
pub use json::json;
pub use mermaid::mermaid;
pub use text::text;

/// What role a step plays in the graph, named as Metaflow's `FlowGraph` names it, so
/// that the JSON rendering can be compared with Metaflow's own reading of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum NodeType {
    /// The entry step, when its own transition is linear.
    Start,
    /// One successor, no `inputs`.
    Linear,
    /// `self.next(self.a, self.b)`: a static branch.
    Split,
    /// `self.next(self.a, foreach="items")`.
    Foreach,
    /// `self.next({"x": self.a, ...}, condition="var")`.
    SplitSwitch,
    /// Takes `inputs` and has one successor.
    Join,
    /// The exit step (also a single-step flow's only step).
    End,
}

impl NodeType {
    /// The exact string Metaflow uses for `DAGNode.type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NodeType::Start => "start",
            NodeType::Linear => "linear",
            NodeType::Split => "split",
            NodeType::Foreach => "foreach",
            NodeType::SplitSwitch => "split-switch",
            NodeType::Join => "join",
            NodeType::End => "end",
        }
    }
}

/// The node type Metaflow would give `step` in `flow`.
///
/// The step's own transition decides first (as `DAGNode._parse` does): a switch is
/// `split-switch`, a foreach `foreach`, several targets `split`, one target `join` when
/// the step takes `inputs` and `linear` otherwise. Then the flow's ends override it (as
/// `FlowGraph._identify_start_end` does): the exit step is always `end`, and the entry
/// step becomes `start` only when it was linear or had no valid transition, so a start
/// step that splits keeps `split` or `foreach`. A step with no transition that is not
/// an end has no type at all (`None`), which Metaflow also leaves unset.
pub(crate) fn node_type(flow: &Flow, step: &Step) -> Option<NodeType> {
    let own = match &step.transition {
        Transition::End => None,
        Transition::Linear { .. } => Some(linear_or_join(step)),
        Transition::Branch { to } => match to.len() {
            0 => None,
            1 => Some(linear_or_join(step)),
            _ => Some(NodeType::Split),
        },
        Transition::Foreach { .. } => Some(NodeType::Foreach),
        Transition::Switch { cases, .. } if cases.is_empty() => None,
        Transition::Switch { .. } => Some(NodeType::SplitSwitch),
    };
    if step.name == flow.end_step {
        return Some(NodeType::End);
    }
    if step.name == flow.start_step && matches!(own, None | Some(NodeType::Linear)) {
        return Some(NodeType::Start);
    }
    own
}

fn linear_or_join(step: &Step) -> NodeType {
    if step.is_join {
        NodeType::Join
    } else {
        NodeType::Linear
    }
}

/// The steps in the order the renderings list them: a depth-first reverse postorder
/// from the entry step, visiting targets in the order they are written, so every step
/// comes before the steps it leads to (back edges of a cycle excepted) and the branches
/// of a split appear in source order. Steps the traversal cannot reach follow, in
/// source order.
///
/// The traversal is iterative: a flow with thousands of linear steps must not exhaust
/// the stack.
pub(crate) fn ordered_steps(flow: &Flow) -> Vec<&Step> {
    let index = step_index(flow);
    let mut visited = vec![false; flow.steps.len()];
    let mut postorder = Vec::with_capacity(flow.steps.len());

    if let Some(&root) = index.get(flow.start_step.as_str()) {
        // Each frame is a step and the successors it has still to visit, in source
        // order; popping from the end visits them last-written first.
        let successors = |i: usize| -> Vec<usize> {
            flow.steps.get(i).map_or_else(Vec::new, |step| {
                step.transition
                    .targets()
                    .iter()
                    .filter_map(|t| index.get(t.step.as_str()).copied())
                    .collect()
            })
        };
        visited[root] = true;
        let mut stack = vec![(root, successors(root))];
        while let Some((node, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) if !visited[next] => {
                    visited[next] = true;
                    let frame = (next, successors(next));
                    stack.push(frame);
                }
                Some(_) => {}
                None => {
                    postorder.push(*node);
                    stack.pop();
                }
            }
        }
    }

    // Siblings were visited last-written first, so in reverse postorder they come out
    // in the order they are written.
    let mut order: Vec<&Step> = postorder
        .iter()
        .rev()
        .filter_map(|&i| flow.steps.get(i))
        .collect();
    order.extend(
        flow.steps
            .iter()
            .zip(&visited)
            .filter(|(_, seen)| !**seen)
            .map(|(step, _)| step),
    );
    order
}

/// Step name → index of its first definition. Later duplicates (an error the frontend
/// reports) stay in the listing but are never the target of an edge.
fn step_index(flow: &Flow) -> BTreeMap<&str, usize> {
    let mut index = BTreeMap::new();
    for (i, step) in flow.steps.iter().enumerate() {
        index.entry(step.name.as_str()).or_insert(i);
    }
    index
}

/// A docstring as Python's `inspect.cleandoc` gives it: surrounding blank lines
/// removed, the first line stripped, and the common indentation of the other lines
/// taken away. Applying it to an already clean docstring changes nothing.
pub(crate) fn clean_doc(doc: &str) -> String {
    let mut lines = doc.lines();
    let first = lines.next().unwrap_or_default().trim();
    let rest: Vec<&str> = lines.collect();
    // Indentation is counted in ASCII blanks only, so cutting it off is always on a
    // character boundary.
    let leading = |l: &str| l.bytes().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let indent = rest
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| leading(l))
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = Vec::with_capacity(rest.len() + 1);
    out.push(first);
    for line in &rest {
        let cut = leading(line).min(indent);
        out.push(line.get(cut..).unwrap_or_default().trim_end());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let start = out.iter().position(|l| !l.is_empty()).unwrap_or(out.len());
    out[start..].join("\n")
}

/// The docstring of a step or flow, cleaned, or `None` when there is none or it is blank.
pub(crate) fn doc_of(doc: Option<&str>) -> Option<String> {
    doc.map(clean_doc).filter(|d| !d.is_empty())
}

/// User text made safe for a terminal: control characters (an escape sequence hidden
/// in a docstring, a stray carriage return) are shown escaped instead of acting.
/// Shared by the text renderer and `flowc inspect`, which print user text as is.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{check, FrontendOptions};

    /// Read an inline flow through the real frontend; the test fails if it has errors.
    pub(crate) fn flow_of(source: &str) -> Flow {
        let checked = check("flow.py", source, &FrontendOptions::default());
        assert!(
            !checked.has_errors(),
            "test flow has errors: {:#?}",
            checked.diagnostics
        );
        checked.flow.expect("test flow should be read")
    }

    /// Branch, foreach, switch and a join of each: every node type but `end`-as-start.
    pub(crate) const ALL_KINDS: &str = r#"
from metaflow import FlowSpec, step

class KindsFlow(FlowSpec):
    """Every kind of node."""

    @step
    def start(self):
        """Entry."""
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.fork)

    @step
    def b(self):
        self.next(self.fork)

    @step
    def fork(self, inputs):
        self.next(self.prep)

    @step
    def prep(self):
        self.items = [1, 2]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.next(self.choose)

    @step
    def choose(self):
        self.mode = "fast"
        self.next({"fast": self.quick, "slow": self.careful}, condition="mode")

    @step
    def quick(self):
        self.next(self.end)

    @step
    def careful(self):
        self.next(self.end)

    @step
    def end(self):
        """Exit."""
"#;

    fn types(flow: &Flow) -> Vec<(String, Option<&'static str>)> {
        ordered_steps(flow)
            .into_iter()
            .map(|s| (s.name.clone(), node_type(flow, s).map(NodeType::as_str)))
            .collect()
    }

    #[test]
    fn classifies_like_metaflow() {
        let flow = flow_of(ALL_KINDS);
        let got = types(&flow);
        let want: Vec<(String, Option<&str>)> = [
            ("start", "split"),
            ("a", "linear"),
            ("b", "linear"),
            ("fork", "join"),
            ("prep", "foreach"),
            ("each", "linear"),
            ("gather", "join"),
            ("choose", "split-switch"),
            ("quick", "linear"),
            ("careful", "linear"),
            ("end", "end"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), Some(*t)))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn linear_start_is_start_and_linear_join_is_join() {
        let flow = flow_of(
            r#"
from metaflow import FlowSpec, step

class JoinFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.x, self.y)

    @step
    def x(self):
        self.next(self.j)

    @step
    def y(self):
        self.next(self.j)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
        );
        let got: BTreeMap<String, Option<&str>> = types(&flow).into_iter().collect();
        assert_eq!(got["start"], Some("split"));
        assert_eq!(got["j"], Some("join"));
        assert_eq!(got["end"], Some("end"));

        let linear = flow_of(
            r#"
from metaflow import FlowSpec, step

class LinearFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
        );
        assert_eq!(
            types(&linear),
            vec![
                ("start".to_string(), Some("start")),
                ("end".to_string(), Some("end"))
            ]
        );
    }

    #[test]
    fn a_single_step_is_the_end() {
        // Metaflow makes the only step both entry and exit, and calls it `end`.
        let flow = flow_of(
            "from metaflow import FlowSpec, step\n\n\
             class One(FlowSpec):\n    @step\n    def only(self):\n        pass\n",
        );
        assert_eq!(types(&flow), vec![("only".to_string(), Some("end"))]);
    }

    #[test]
    fn order_puts_every_step_before_its_successors() {
        let flow = flow_of(ALL_KINDS);
        let order: Vec<&str> = ordered_steps(&flow)
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let pos = |n: &str| order.iter().position(|o| *o == n).expect("listed");
        for step in &flow.steps {
            for t in step.transition.targets() {
                assert!(
                    pos(&step.name) < pos(&t.step),
                    "{} -> {}",
                    step.name,
                    t.step
                );
            }
        }
        assert_eq!(order.len(), flow.steps.len());
    }

    #[test]
    fn renders_a_broken_graph_without_inventing_steps() {
        // A cycle, a step nothing reaches, and a target that does not exist: `check`
        // rejects this flow, but the renderers must still terminate and stay truthful.
        let checked = check(
            "broken.py",
            r#"
from metaflow import FlowSpec, step

class BrokenFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.b)

    @step
    def b(self):
        self.next(self.a)

    @step
    def orphan(self):
        self.next(self.ghost)

    @step
    def end(self):
        pass
"#,
            &FrontendOptions::default(),
        );
        assert!(checked.has_errors());
        let flow = checked.flow.expect("the flow is still read");
        let order: Vec<&str> = ordered_steps(&flow)
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(order, ["start", "a", "b", "orphan", "end"]);

        assert!(text(&flow).contains("Step orphan (linear)\n    => ghost (unknown step)\n"));
        assert!(!mermaid(&flow).contains("ghost"));
        assert!(!dot(&flow).contains("ghost"));
        assert!(mermaid(&flow).contains("    s_b --> s_a\n"));
        let graph: serde_json::Value = serde_json::from_str(&json(&flow)).expect("JSON");
        assert_eq!(graph["steps"][3]["out"], serde_json::json!(["ghost"]));
    }

    #[test]
    fn cleans_docstrings_like_python() {
        assert_eq!(
            clean_doc("  Title.\n\n        Body line.\n          indented\n    "),
            "Title.\n\nBody line.\n  indented"
        );
        assert_eq!(clean_doc("\n    Only body.\n    "), "Only body.");
        assert_eq!(
            clean_doc("Already clean.\nTwo lines."),
            "Already clean.\nTwo lines."
        );
        assert_eq!(doc_of(Some("   \n  ")), None);
    }
}
