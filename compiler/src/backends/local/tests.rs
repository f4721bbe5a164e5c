//! Tests of the local plan: one flow per graph shape, checked through `crate::check`.

use flowc_ir::{LocalPlan, PlainJson, PlanStep, PlanTransition, StepKind};

use super::{local_plan, LocalConfig};
use crate::FrontendOptions;

fn plan(source: &str) -> LocalPlan {
    let checked = crate::check("flow.py", source, &FrontendOptions::default());
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let flow = checked.flow.expect("a flow");
    local_plan(&flow, &LocalConfig::default())
}

fn step<'a>(plan: &'a LocalPlan, name: &str) -> &'a PlanStep {
    plan.step(name).unwrap_or_else(|| panic!("no step {name}"))
}

/// Step name → (kind, joins, parents), in source order.
fn shape(plan: &LocalPlan) -> Vec<(String, StepKind, Option<String>, Vec<String>)> {
    plan.steps
        .iter()
        .map(|s| (s.name.clone(), s.kind, s.joins.clone(), s.parents.clone()))
        .collect()
}

fn row(
    name: &str,
    kind: StepKind,
    joins: Option<&str>,
    parents: &[&str],
) -> (String, StepKind, Option<String>, Vec<String>) {
    (
        name.to_owned(),
        kind,
        joins.map(str::to_owned),
        parents.iter().map(|p| (*p).to_owned()).collect(),
    )
}

const LINEAR: &str = r#"
from metaflow import FlowSpec, Parameter, step, retry, timeout, catch, environment

def compute():
    return 3

class LinearFlow(FlowSpec):
    alpha = Parameter("alpha", type=float, default=0.5, help="Rate")
    name_ = Parameter("name", required=True)
    seed = Parameter("seed", type=int, default=compute())

    @step
    def start(self):
        self.next(self.a)

    @environment(vars={"MODE": "fast", "N": 4, "ON": True})
    @retry(times=2, minutes_between_retries=0)
    @timeout(seconds=30)
    @catch(var="err")
    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn linear_flow_has_kinds_parents_and_no_joins() {
    let plan = plan(LINEAR);
    assert_eq!(plan.flow, "LinearFlow");
    assert_eq!(plan.start_step, "start");
    assert_eq!(
        shape(&plan),
        vec![
            row("start", StepKind::Start, None, &[]),
            row("a", StepKind::Linear, None, &["start"]),
            row("end", StepKind::End, None, &["a"]),
        ]
    );
    assert_eq!(
        step(&plan, "start").next,
        PlanTransition::Linear { to: "a".into() }
    );
    assert_eq!(step(&plan, "end").next, PlanTransition::End);
}

#[test]
fn decorators_become_retry_timeout_catch_and_environment() {
    let plan = plan(LINEAR);
    let a = step(&plan, "a");
    let retry = a.retry.as_ref().expect("retry");
    assert_eq!((retry.times, retry.minutes_between), (2, 0));
    assert_eq!(a.timeout_seconds, Some(30));
    assert_eq!(a.catch.as_ref().and_then(|c| c.var.as_deref()), Some("err"));
    let env: Vec<(&str, &str)> = a
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("MODE", "fast"), ("N", "4"), ("ON", "True")]);
    assert!(step(&plan, "start").retry.is_none());
    assert!(step(&plan, "start").environment.is_empty());
}

#[test]
fn task_commands_carry_placeholders_only_where_they_apply() {
    let plan = plan(LINEAR);
    let start = &step(&plan, "start").command;
    assert_eq!(start[0], "flowc-shim");
    assert_eq!(start[1], "task");
    assert!(start.windows(2).any(|w| w == ["--step", "start"]));
    assert!(start.windows(2).any(|w| w == ["--run-id", "{run_id}"]));
    assert!(!start.iter().any(|a| a == "--input-paths"));
    assert!(!start.iter().any(|a| a == "--split-index"));
    assert!(!start.iter().any(|a| a == "--max-user-code-retries"));
    let a = &step(&plan, "a").command;
    assert!(a
        .windows(2)
        .any(|w| w == ["--input-paths", "{input_paths}"]));
    assert!(a.windows(2).any(|w| w == ["--max-user-code-retries", "2"]));
    assert!(a.windows(2).any(|w| w == ["--env", "MODE=fast"]));
    assert!(a.windows(2).any(|w| w == ["--flow", "LinearFlow"]));
}

#[test]
fn the_configured_shim_starts_every_command() {
    let checked = crate::check("flow.py", LINEAR, &FrontendOptions::default());
    let flow = checked.flow.expect("a flow");
    let config = LocalConfig {
        shim: "/opt/flowc/flowc-shim".into(),
    };
    let plan = local_plan(&flow, &config);
    assert!(plan
        .steps
        .iter()
        .all(|s| s.command[0] == "/opt/flowc/flowc-shim"));
}

#[test]
fn parameters_keep_plain_defaults_and_deferred_expressions() {
    let plan = plan(LINEAR);
    let names: Vec<&str> = plan.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["alpha", "name", "seed"]);
    let alpha = &plan.parameters[0];
    assert_eq!(alpha.default, Some(PlainJson::Float(0.5)));
    assert_eq!(alpha.help.as_deref(), Some("Rate"));
    assert!(!alpha.required);
    let name = &plan.parameters[1];
    assert!(name.required);
    assert_eq!(name.attr, "name_");
    assert_eq!(name.default, None);
    let seed = &plan.parameters[2];
    assert_eq!(seed.default, None);
    assert_eq!(seed.default_expression.as_deref(), Some("compute()"));
}

#[test]
fn branch_join_closes_the_branch() {
    let plan = plan(
        r#"
from metaflow import FlowSpec, step

class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
    );
    assert_eq!(
        shape(&plan),
        vec![
            row("start", StepKind::Start, None, &[]),
            row("a", StepKind::Linear, None, &["start"]),
            row("b", StepKind::Linear, None, &["start"]),
            row("join", StepKind::Join, Some("start"), &["a", "b"]),
            row("end", StepKind::End, None, &["join"]),
        ]
    );
    assert_eq!(
        step(&plan, "start").next,
        PlanTransition::Branch {
            to: vec!["a".into(), "b".into()]
        }
    );
}

const NESTED_FOREACH: &str = r#"
from metaflow import FlowSpec, step

class NestedFlow(FlowSpec):
    @step
    def start(self):
        self.xs = [1, 2]
        self.next(self.outer, foreach="xs")

    @step
    def outer(self):
        self.ys = [1, 2, 3]
        self.next(self.inner, foreach="ys")

    @step
    def inner(self):
        self.next(self.join_inner)

    @step
    def join_inner(self, inputs):
        self.next(self.join_outer)

    @step
    def join_outer(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn foreach_and_nested_foreach_joins_close_the_innermost_split() {
    let plan = plan(NESTED_FOREACH);
    assert_eq!(
        shape(&plan),
        vec![
            row("start", StepKind::Start, None, &[]),
            row("outer", StepKind::Foreach, None, &["start"]),
            row("inner", StepKind::Linear, None, &["outer"]),
            row("join_inner", StepKind::Join, Some("outer"), &["inner"]),
            row("join_outer", StepKind::Join, Some("start"), &["join_inner"]),
            row("end", StepKind::End, None, &["join_outer"]),
        ]
    );
    assert_eq!(
        step(&plan, "start").next,
        PlanTransition::Foreach {
            to: "outer".into(),
            over: "xs".into()
        }
    );
    // Only the first step of each foreach body takes a split index.
    let takes_split = |name: &str| {
        step(&plan, name)
            .command
            .iter()
            .any(|a| a == "--split-index")
    };
    assert!(takes_split("outer"));
    assert!(takes_split("inner"));
    assert!(!takes_split("join_inner"));
    assert!(!takes_split("end"));
}

#[test]
fn switch_steps_are_split_switch_and_open_no_split() {
    let plan = plan(
        r#"
from metaflow import FlowSpec, step

class SwitchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.route, self.other)

    @step
    def route(self):
        self.mode = "x"
        self.next({"x": self.x, "y": self.y}, condition="mode")

    @step
    def x(self):
        self.next(self.merge)

    @step
    def y(self):
        self.next(self.merge)

    @step
    def merge(self):
        self.next(self.join)

    @step
    def other(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#,
    );
    assert_eq!(step(&plan, "route").kind, StepKind::SplitSwitch);
    assert_eq!(step(&plan, "merge").parents, ["x", "y"]);
    assert_eq!(step(&plan, "join").joins.as_deref(), Some("start"));
    assert_eq!(step(&plan, "join").parents, ["merge", "other"]);
    let PlanTransition::Switch { on, cases } = &step(&plan, "route").next else {
        panic!("route is a switch");
    };
    assert_eq!(on, "mode");
    let cases: Vec<(&str, &str)> = cases
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(cases, [("x", "x"), ("y", "y")]);
}

#[test]
fn recursive_switch_lists_itself_as_a_parent() {
    let plan = plan(
        r#"
from metaflow import FlowSpec, step

class LoopFlow(FlowSpec):
    @step
    def start(self):
        self.n = 0
        self.next(self.train)

    @step
    def train(self):
        self.n += 1
        self.status = "done" if self.n > 2 else "again"
        self.next({"again": self.train, "done": self.end}, condition="status")

    @step
    def end(self):
        pass
"#,
    );
    assert_eq!(
        shape(&plan),
        vec![
            row("start", StepKind::Start, None, &[]),
            row("train", StepKind::SplitSwitch, None, &["start", "train"]),
            row("end", StepKind::End, None, &["train"]),
        ]
    );
}

#[test]
fn the_plan_is_deterministic_and_round_trips_through_json() {
    let first = serde_json::to_string_pretty(&plan(NESTED_FOREACH)).expect("json");
    let second = serde_json::to_string_pretty(&plan(NESTED_FOREACH)).expect("json");
    assert_eq!(first, second);
    let back: LocalPlan = serde_json::from_str(&first).expect("plan");
    assert_eq!(back, plan(NESTED_FOREACH));
}
