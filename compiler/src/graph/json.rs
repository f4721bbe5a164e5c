//! The graph as JSON, for tools and for comparing flowc's reading of a flow with
//! Metaflow's own (`type` uses Metaflow's node type names exactly).
//!
//! The document is built as a `serde_json::Value` and printed with its infallible
//! `Display`, so rendering has no error path.

use std::collections::BTreeMap;

use flowc_ir::{Flow, Step, Transition};
use serde_json::{Map, Value};

use super::{doc_of, node_type, ordered_steps, NodeType};

/// `{"flow", "start", "end", "steps": [{"name", "type", "out", "foreach", "switch",
/// "is_join", "doc"}]}`, steps in graph order, pretty-printed, ending in a newline.
pub fn json(flow: &Flow) -> String {
    let steps: Vec<Value> = ordered_steps(flow)
        .into_iter()
        .map(|step| step_json(flow, step))
        .collect();
    let mut doc = Map::new();
    doc.insert("flow".into(), flow.name.clone().into());
    doc.insert("start".into(), flow.start_step.clone().into());
    doc.insert("end".into(), flow.end_step.clone().into());
    doc.insert("steps".into(), Value::Array(steps));
    format!("{:#}\n", Value::Object(doc))
}

fn step_json(flow: &Flow, step: &Step) -> Value {
    let out: Vec<Value> = step
        .transition
        .targets()
        .into_iter()
        .map(|t| Value::from(t.step.clone()))
        .collect();
    let foreach = match &step.transition {
        Transition::Foreach { over, .. } => Value::from(over.clone()),
        _ => Value::Null,
    };
    let switch = match &step.transition {
        Transition::Switch { on, cases, .. } => {
            // Case values are keys, as in Metaflow's `switch_cases` dict; a repeated
            // value (which Python's dict would also collapse) keeps the last target.
            let cases: BTreeMap<&str, Value> = cases
                .iter()
                .map(|c| (c.value.as_str(), Value::from(c.target.step.clone())))
                .collect();
            let mut switch = Map::new();
            switch.insert("condition".into(), on.clone().into());
            switch.insert(
                "cases".into(),
                Value::Object(cases.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
            );
            Value::Object(switch)
        }
        _ => Value::Null,
    };
    let mut entry = Map::new();
    entry.insert("name".into(), step.name.clone().into());
    entry.insert(
        "type".into(),
        node_type(flow, step).map_or(Value::Null, |t| NodeType::as_str(t).into()),
    );
    entry.insert("out".into(), Value::Array(out));
    entry.insert("foreach".into(), foreach);
    entry.insert("switch".into(), switch);
    entry.insert("is_join".into(), step.is_join.into());
    entry.insert(
        "doc".into(),
        doc_of(step.doc.as_deref()).map_or(Value::Null, Value::from),
    );
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{flow_of, ALL_KINDS};

    fn parsed(flow: &Flow) -> Value {
        serde_json::from_str(&json(flow)).expect("graph JSON parses")
    }

    fn step<'a>(doc: &'a Value, name: &str) -> &'a Value {
        doc["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .unwrap_or_else(|| panic!("no step {name} in {doc:#}"))
    }

    #[test]
    fn describes_every_step() {
        let doc = parsed(&flow_of(ALL_KINDS));
        assert_eq!(doc["flow"], "KindsFlow");
        assert_eq!(doc["start"], "start");
        assert_eq!(doc["end"], "end");
        assert_eq!(doc["steps"].as_array().map(Vec::len), Some(11));

        let start = step(&doc, "start");
        assert_eq!(start["type"], "split");
        assert_eq!(start["out"], serde_json::json!(["a", "b"]));
        assert_eq!(start["doc"], "Entry.");
        assert_eq!(start["foreach"], Value::Null);
        assert_eq!(start["switch"], Value::Null);

        let fork = step(&doc, "fork");
        assert_eq!(fork["type"], "join");
        assert_eq!(fork["is_join"], true);
        assert_eq!(fork["foreach"], Value::Null);

        let prep = step(&doc, "prep");
        assert_eq!(prep["type"], "foreach");
        assert_eq!(prep["foreach"], "items");
        assert_eq!(prep["is_join"], false);
        assert_eq!(prep["out"], serde_json::json!(["each"]));

        let choose = step(&doc, "choose");
        assert_eq!(choose["type"], "split-switch");
        assert_eq!(
            choose["switch"],
            serde_json::json!({"condition": "mode", "cases": {"fast": "quick", "slow": "careful"}})
        );

        let end = step(&doc, "end");
        assert_eq!(end["type"], "end");
        assert_eq!(end["out"], serde_json::json!([]));
        assert_eq!(end["doc"], "Exit.");
        assert_eq!(step(&doc, "a")["doc"], Value::Null);
    }

    #[test]
    fn keeps_user_text_intact() {
        let flow = flow_of(
            r#"
from metaflow import FlowSpec, step

class TextFlow(FlowSpec):
    @step
    def start(self):
        """Quote " and <tag> and
        a second line."""
        self.v = "x"
        self.next({"a\"b": self.one, "<c>": self.two}, condition="v")

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
        let doc = parsed(&flow);
        let start = step(&doc, "start");
        assert_eq!(start["doc"], "Quote \" and <tag> and\na second line.");
        assert_eq!(start["switch"]["cases"]["a\"b"], "one");
        assert_eq!(start["switch"]["cases"]["<c>"], "two");
    }
}
