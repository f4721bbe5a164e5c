//! Tests for the lint rules, on flows built by hand with `FlowBuilder` so that they do
//! not depend on the frontend. Every span the builder hands out is distinct, so a test
//! can check that a diagnostic points at the right thing.

use std::collections::BTreeMap;

use flowc_ir::{
    Config, Decorator, Flow, FlowSpecView, Parameter, ParameterKind, ParameterType, Schedule,
    ScheduleKind, Source, Span, Step, StepSpec, SwitchCase, Target, Transition, Value, IR_VERSION,
};

use super::run;
use crate::diagnostics::{self, codes, Code, Diagnostic};

/// How a step hands over, written the short way.
enum Next {
    End,
    To(&'static str),
    Branch(Vec<&'static str>),
    Foreach(&'static str),
    Switch(Vec<(&'static str, &'static str)>),
}

fn next(to: &'static str) -> Next {
    Next::To(to)
}

fn branch<const N: usize>(to: [&'static str; N]) -> Next {
    Next::Branch(to.to_vec())
}

fn foreach(to: &'static str) -> Next {
    Next::Foreach(to)
}

fn switch<const N: usize>(cases: [(&'static str, &'static str); N]) -> Next {
    Next::Switch(cases.to_vec())
}

fn end() -> Next {
    Next::End
}

/// Builds a `Flow` with distinct fake spans.
struct FlowBuilder {
    flow: Flow,
    pos: usize,
}

impl FlowBuilder {
    fn new() -> Self {
        let mut b = FlowBuilder {
            flow: Flow {
                ir_version: IR_VERSION,
                name: "TestFlow".into(),
                doc: None,
                span: Span::default(),
                name_span: Span::default(),
                source: Source {
                    path: "flow.py".into(),
                    sha256: String::new(),
                },
                start_step: "start".into(),
                end_step: "end".into(),
                parameters: Vec::new(),
                configs: Vec::new(),
                flow_decorators: Vec::new(),
                spec: FlowSpecView::default(),
                steps: Vec::new(),
            },
            pos: 0,
        };
        b.flow.span = b.span();
        b.flow.name_span = b.span();
        b
    }

    fn span(&mut self) -> Span {
        let s = Span::new(self.pos, self.pos + 4);
        self.pos += 10;
        s
    }

    fn target(&mut self, step: &str) -> Target {
        Target {
            step: step.into(),
            span: self.span(),
        }
    }

    fn add(mut self, name: &str, is_join: bool, next: Next) -> Self {
        let span = self.span();
        let name_span = self.span();
        let params_span = self.span();
        let transition = match next {
            Next::End => Transition::End,
            Next::To(to) => Transition::Linear {
                to: self.target(to),
            },
            Next::Branch(to) => Transition::Branch {
                to: to.into_iter().map(|t| self.target(t)).collect(),
            },
            Next::Foreach(to) => Transition::Foreach {
                to: self.target(to),
                over: "items".into(),
                over_span: self.span(),
            },
            Next::Switch(cases) => Transition::Switch {
                on: "choice".into(),
                on_span: self.span(),
                cases: cases
                    .into_iter()
                    .map(|(value, to)| SwitchCase {
                        value: value.into(),
                        target: self.target(to),
                    })
                    .collect(),
            },
        };
        let transition_span = (!matches!(transition, Transition::End)).then(|| self.span());
        self.flow.steps.push(Step {
            name: name.into(),
            doc: None,
            span,
            name_span,
            decorators: Vec::new(),
            spec: StepSpec::default(),
            params: if is_join {
                vec!["inputs".into()]
            } else {
                Vec::new()
            },
            params_span,
            is_join,
            transition,
            transition_span,
            inherited_from: None,
        });
        self
    }

    fn step(self, name: &str, next: Next) -> Self {
        self.add(name, false, next)
    }

    fn join(self, name: &str, next: Next) -> Self {
        self.add(name, true, next)
    }

    fn entry(mut self, start: &str, end: &str) -> Self {
        self.flow.start_step = start.into();
        self.flow.end_step = end.into();
        self
    }

    fn decorate(mut self, step: &str, decorator: &str) -> Self {
        let span = self.span();
        let parallel = decorator == "parallel";
        if let Some(s) = self.flow.steps.iter_mut().find(|s| s.name == step) {
            s.decorators.push(Decorator {
                name: decorator.into(),
                args: BTreeMap::new(),
                arg_spans: BTreeMap::new(),
                span,
                known: true,
            });
            s.spec.parallel |= parallel;
        }
        self
    }

    /// Changes step `name` in place, for what the short forms do not cover.
    fn edit(mut self, name: &str, edit: impl FnOnce(&mut Step)) -> Self {
        if let Some(s) = self.flow.steps.iter_mut().find(|s| s.name == name) {
            edit(s);
        }
        self
    }

    /// A parameter bound to `attr`, named `name`, with no default; `edit` adjusts it.
    fn param(mut self, attr: &str, name: &str, edit: impl FnOnce(&mut Parameter)) -> Self {
        let mut p = Parameter {
            attr: attr.into(),
            name: name.into(),
            kind: ParameterKind::Parameter,
            ty: ParameterType::Str,
            default: None,
            help: None,
            required: false,
            show_default: true,
            separator: None,
            is_text: true,
            span: self.span(),
            name_span: self.span(),
            default_span: None,
            inherited_from: None,
        };
        edit(&mut p);
        self.flow.parameters.push(p);
        self
    }

    fn config(mut self, attr: &str, name: &str) -> Self {
        let span = self.span();
        self.flow.configs.push(Config {
            attr: attr.into(),
            name: name.into(),
            default: None,
            default_value: None,
            required: false,
            help: None,
            span,
            inherited_from: None,
        });
        self
    }

    fn schedule(mut self) -> Self {
        let span = self.span();
        self.flow.flow_decorators.push(Decorator {
            name: "schedule".into(),
            args: BTreeMap::new(),
            arg_spans: BTreeMap::new(),
            span,
            known: true,
        });
        self.flow.spec.schedule = Some(Schedule {
            kind: ScheduleKind::Daily,
            timezone: None,
        });
        self
    }

    fn build(self) -> Flow {
        self.flow
    }
}

fn lint(flow: &Flow) -> Vec<Diagnostic> {
    let mut d = run(flow);
    diagnostics::sort(&mut d);
    d
}

fn step<'f>(flow: &'f Flow, name: &str) -> &'f Step {
    flow.step(name).unwrap_or_else(|| panic!("no step {name}"))
}

/// The span of the target `to` in `from`'s transition (the first one written).
fn target_span(flow: &Flow, from: &str, to: &str) -> Span {
    step(flow, from)
        .transition
        .targets()
        .into_iter()
        .find(|t| t.step == to)
        .map(|t| t.span)
        .unwrap_or_else(|| panic!("{from} does not name {to}"))
}

fn next_span(flow: &Flow, name: &str) -> Span {
    step(flow, name).transition_span.expect("a transition")
}

/// Asserts that the flow produces exactly one diagnostic, with `code`, and returns it.
fn only(flow: &Flow, code: &Code) -> Diagnostic {
    let d = lint(flow);
    assert_eq!(
        d.iter().map(|d| d.code).collect::<Vec<_>>(),
        vec![code.name],
        "{d:#?}"
    );
    d.into_iter().next().expect("one diagnostic")
}

fn assert_clean(flow: &Flow) {
    let d = lint(flow);
    assert!(d.is_empty(), "expected no diagnostics, got {d:#?}");
}

fn assert_message(d: &Diagnostic, text: &str) {
    assert!(
        d.message.contains(text),
        "message {:?} does not contain {text:?}",
        d.message
    );
}

// ---- valid flows -------------------------------------------------------------------

fn linear() -> FlowBuilder {
    FlowBuilder::new()
        .step("start", next("a"))
        .step("a", next("end"))
        .step("end", end())
}

fn branch_join() -> FlowBuilder {
    FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("join"))
        .step("b", next("join"))
        .join("join", next("end"))
        .step("end", end())
}

#[test]
fn valid_flows_have_no_diagnostics() {
    assert_clean(&linear().build());
    assert_clean(&branch_join().build());
    // foreach
    assert_clean(
        &FlowBuilder::new()
            .step("start", foreach("work"))
            .step("work", next("join"))
            .join("join", next("end"))
            .step("end", end())
            .build(),
    );
    // nested foreach, with a branch inside
    assert_clean(
        &FlowBuilder::new()
            .step("start", foreach("outer"))
            .step("outer", foreach("inner"))
            .step("inner", branch(["x", "y"]))
            .step("x", next("join_xy"))
            .step("y", next("join_xy"))
            .join("join_xy", next("join_inner"))
            .join("join_inner", next("join_outer"))
            .join("join_outer", next("end"))
            .step("end", end())
            .build(),
    );
    // switch whose cases meet at a plain step
    assert_clean(
        &FlowBuilder::new()
            .step("start", switch([("csv", "parse"), ("parquet", "read")]))
            .step("parse", next("validate"))
            .step("read", next("validate"))
            .step("validate", next("end"))
            .step("end", end())
            .build(),
    );
    // switch whose cases go to different places, one straight to end
    assert_clean(
        &FlowBuilder::new()
            .step("start", switch([("a", "a"), ("b", "end")]))
            .step("a", next("end"))
            .step("end", end())
            .build(),
    );
    // recursive switch
    assert_clean(
        &FlowBuilder::new()
            .step("start", next("train"))
            .step("train", switch([("again", "train"), ("done", "report")]))
            .step("report", next("end"))
            .step("end", end())
            .build(),
    );
    // a switch inside a branch, its cases meeting before the join
    assert_clean(
        &FlowBuilder::new()
            .step("start", branch(["a", "b"]))
            .step("a", switch([("x", "p"), ("y", "q")]))
            .step("p", next("r"))
            .step("q", next("r"))
            .step("r", next("join"))
            .step("b", next("join"))
            .join("join", next("end"))
            .step("end", end())
            .build(),
    );
    // @parallel through a plain transition (num_parallel)
    assert_clean(
        &FlowBuilder::new()
            .step("start", next("train"))
            .step("train", next("gather"))
            .join("gather", next("end"))
            .step("end", end())
            .decorate("train", "parallel")
            .build(),
    );
    // annotated entry and exit
    assert_clean(
        &FlowBuilder::new()
            .step("extract", next("publish"))
            .step("publish", end())
            .entry("extract", "publish")
            .build(),
    );
    // a single step that is both entry and exit
    assert_clean(
        &FlowBuilder::new()
            .step("only", end())
            .entry("only", "only")
            .build(),
    );
    // parameters of every kind, well formed
    assert_clean(
        &linear()
            .param("alpha", "alpha", |p| {
                p.ty = ParameterType::Float;
                p.default = Some(Value::Int(1));
            })
            .param("n", "num-rows", |p| {
                p.ty = ParameterType::Int;
                p.default = Some(Value::Str("10".into()));
            })
            .param("cfg", "cfg", |p| {
                p.ty = ParameterType::Json;
                p.default = Some(Value::Str("{\"a\": [1, 2]}".into()));
            })
            .param("flag", "flag", |p| {
                p.ty = ParameterType::Bool;
                p.default = Some(Value::Str("yes".into()));
            })
            .param("day", "day", |p| p.required = true)
            .param("data", "data", |p| {
                p.kind = ParameterKind::IncludeFile;
                p.default = Some(Value::Str("data.csv".into()));
            })
            .config("settings", "settings")
            .build(),
    );
}

// ---- entry and exit ----------------------------------------------------------------

#[test]
fn missing_start_is_reported_once_without_unreachable_steps() {
    let flow = FlowBuilder::new()
        .step("begin", next("a"))
        .step("a", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::MISSING_START);
    assert_eq!(d.span, flow.name_span);
    assert_message(&d, "no start step `start`");
    assert!(d
        .help
        .as_deref()
        .is_some_and(|h| h.contains("@step def start(self)")));
}

#[test]
fn several_marked_entries_leave_no_entry_to_miss() {
    // The frontend reports several `@step(start=True)` and leaves the name empty:
    // no graph rule guesses an entry then.
    let flow = FlowBuilder::new()
        .step("a", next("merge"))
        .step("b", next("merge"))
        .step("merge", next("end"))
        .step("end", end())
        .entry("", "end")
        .build();
    assert_clean(&flow);
    let flow = FlowBuilder::new()
        .step("start", next("end"))
        .step("end", end())
        .step("other", end())
        .entry("start", "")
        .build();
    assert_clean(&flow);
}

#[test]
fn missing_end_points_at_steps_without_transition() {
    let flow = FlowBuilder::new()
        .step("start", next("finish"))
        .step("finish", end())
        .build();
    let d = only(&flow, &codes::MISSING_END);
    assert_eq!(d.span, flow.name_span);
    assert_eq!(d.related.len(), 1);
    assert_eq!(d.related[0].span, step(&flow, "finish").name_span);
}

#[test]
fn ambiguous_entry_when_start_is_annotated_elsewhere() {
    let flow = FlowBuilder::new()
        .step("extract", next("start"))
        .step("start", next("end"))
        .step("end", end())
        .entry("extract", "end")
        .build();
    let d = only(&flow, &codes::AMBIGUOUS_ENTRY);
    assert_eq!(d.span, step(&flow, "start").name_span);
    assert_message(&d, "`extract` is marked `@step(start=True)`");
    // Near miss: annotated entry and no step named `start`.
    assert_clean(
        &FlowBuilder::new()
            .step("extract", next("end"))
            .step("end", end())
            .entry("extract", "end")
            .build(),
    );
}

#[test]
fn end_with_transition() {
    let flow = FlowBuilder::new()
        .step("start", next("end"))
        .step("end", next("report"))
        .step("report", end())
        .build();
    let d = lint(&flow);
    let d = d
        .iter()
        .find(|d| d.code == codes::END_HAS_TRANSITION.name)
        .expect("end-has-transition");
    assert_eq!(d.span, next_span(&flow, "end"));
    assert_message(d, "the end step `end` calls `self.next(...)`");
}

#[test]
fn missing_transition() {
    let flow = FlowBuilder::new()
        .step("start", next("a"))
        .step("a", end())
        .step("end", end())
        .build();
    // `end` looks unreachable only because `a` stops early: reported once.
    let d = only(&flow, &codes::MISSING_TRANSITION);
    assert_eq!(d.span, step(&flow, "a").name_span);
    assert!(d
        .help
        .as_deref()
        .is_some_and(|h| h.contains("self.next(self.<next>)")));
}

#[test]
fn unreadable_transition_is_left_to_the_frontend() {
    // `self.next("a")`: the frontend reports it and keeps the call's span.
    let flow = FlowBuilder::new()
        .step("start", end())
        .step("a", next("end"))
        .step("end", end())
        .edit("start", |s| s.transition_span = Some(Span::new(900, 910)))
        .build();
    assert_clean(&flow);
    // The end step must not call `self.next(...)`, readable or not.
    let flow = linear()
        .edit("end", |s| s.transition_span = Some(Span::new(900, 910)))
        .build();
    let d = only(&flow, &codes::END_HAS_TRANSITION);
    assert_eq!(d.span, Span::new(900, 910));
}

// ---- targets, cycles, reachability --------------------------------------------------

#[test]
fn unknown_step_suggests_and_does_not_cascade() {
    let flow = FlowBuilder::new()
        .step("start", next("evalute"))
        .step("evaluate", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNKNOWN_STEP);
    assert_eq!(d.span, target_span(&flow, "start", "evalute"));
    assert_message(&d, "step `start` names unknown step `evalute`");
    assert_eq!(d.help.as_deref(), Some("did you mean `evaluate`?"));
}

#[test]
fn unknown_step_inside_a_branch_does_not_unbalance_the_join() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("join"))
        .step("b", next("nowhere_at_all"))
        .join("join", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNKNOWN_STEP);
    assert_eq!(
        d.help.as_deref().map(|h| h.contains("define the step")),
        Some(true)
    );
}

#[test]
fn cycle_is_reported_as_a_path_on_the_closing_edge() {
    let flow = FlowBuilder::new()
        .step("start", next("a"))
        .step("a", next("b"))
        .step("b", next("a"))
        .step("end", end())
        .build();
    let d = lint(&flow);
    let cycle = d
        .iter()
        .find(|d| d.code == codes::CYCLE.name)
        .expect("a cycle");
    assert_message(cycle, "a -> b -> a");
    assert_eq!(cycle.span, target_span(&flow, "b", "a"));
    assert_eq!(d.iter().filter(|d| d.code == codes::CYCLE.name).count(), 1);
}

#[test]
fn switch_looping_to_another_step_is_a_cycle() {
    let flow = FlowBuilder::new()
        .step("start", next("a"))
        .step("a", next("b"))
        .step("b", switch([("again", "a"), ("done", "end")]))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::CYCLE);
    assert_message(&d, "a -> b -> a");
    assert_eq!(d.span, target_span(&flow, "b", "a"));
}

#[test]
fn linear_self_loop_is_a_cycle() {
    let flow = FlowBuilder::new()
        .step("start", next("a"))
        .step("a", next("a"))
        .step("end", end())
        .build();
    let d = lint(&flow);
    assert!(d
        .iter()
        .any(|d| d.code == codes::CYCLE.name && d.message.contains("a -> a")));
}

#[test]
fn transition_back_to_start() {
    let flow = FlowBuilder::new()
        .step("start", next("a"))
        .step("a", switch([("again", "start"), ("done", "end")]))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::START_HAS_INCOMING);
    assert_eq!(d.span, target_span(&flow, "a", "start"));
    // A switch on start looping to start is refused too.
    let flow = FlowBuilder::new()
        .step("start", switch([("again", "start"), ("done", "end")]))
        .step("end", end())
        .build();
    only(&flow, &codes::START_HAS_INCOMING);
}

#[test]
fn unreachable_steps_one_each() {
    let flow = FlowBuilder::new()
        .step("start", next("end"))
        .step("orphan", next("orphan2"))
        .step("orphan2", next("end"))
        .step("end", end())
        .build();
    let d = lint(&flow);
    assert_eq!(
        d.iter().map(|d| d.code).collect::<Vec<_>>(),
        vec![codes::UNREACHABLE.name, codes::UNREACHABLE.name]
    );
    assert_eq!(d[0].span, step(&flow, "orphan").name_span);
    assert_eq!(d[1].span, step(&flow, "orphan2").name_span);
    assert_message(
        &d[0],
        "step `orphan` cannot be reached from the start step `start`",
    );
}

// ---- splits and joins --------------------------------------------------------------

#[test]
fn branch_skipping_the_join() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b", "c"]))
        .step("a", next("join"))
        .step("b", next("join"))
        .step("c", next("end"))
        .join("join", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNBALANCED_JOIN);
    assert_eq!(d.span, step(&flow, "join").name_span);
    assert_message(&d, "join `join` does not merge branch `c` of split `start`");
    assert_eq!(d.related[0].span, next_span(&flow, "start"));
}

#[test]
fn split_never_joined() {
    let flow = FlowBuilder::new()
        .step("start", foreach("work"))
        .step("work", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNBALANCED_JOIN);
    assert_eq!(d.span, next_span(&flow, "start"));
    assert_message(
        &d,
        "foreach `start` is not joined before the end step `end`",
    );
}

#[test]
fn join_of_different_splits() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("join_a"))
        .step("b", foreach("x"))
        .step("x", next("join_a"))
        .join("join_a", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNBALANCED_JOIN);
    assert_eq!(d.span, step(&flow, "join_a").name_span);
    assert_message(
        &d,
        "join `join_a` merges steps from different splits (`a` of split `start`, `x` of foreach `b`)",
    );
    let related: Vec<Span> = d.related.iter().map(|l| l.span).collect();
    assert!(related.contains(&next_span(&flow, "start")));
    assert!(related.contains(&next_span(&flow, "b")));
}

#[test]
fn split_joined_twice() {
    // Each branch switches between two joins: either join alone sees every branch.
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", switch([("x", "a1"), ("y", "a2")]))
        .step("a1", next("j1"))
        .step("a2", next("j2"))
        .step("b", switch([("x", "b1"), ("y", "b2")]))
        .step("b1", next("j1"))
        .step("b2", next("j2"))
        .join("j1", next("end"))
        .join("j2", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNBALANCED_JOIN);
    assert_message(&d, "split `start` is joined twice, by `j1` and `j2`");
    assert_eq!(d.span, step(&flow, "j2").name_span);
}

#[test]
fn nested_foreach_closed_in_the_wrong_order() {
    // The inner foreach is never joined: `join` takes both levels at once.
    let flow = FlowBuilder::new()
        .step("start", foreach("outer"))
        .step("outer", foreach("inner"))
        .step("inner", next("join"))
        .join("join", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNBALANCED_JOIN);
    assert_message(
        &d,
        "foreach `start` is not joined before the end step `end`",
    );
}

#[test]
fn join_without_inputs_is_named_as_such() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("join"))
        .step("b", next("join"))
        .step("join", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::JOIN_WITHOUT_INPUTS);
    assert_eq!(d.span, step(&flow, "join").name_span);
    assert_message(&d, "joins branches `a` and `b` of split `start`");
    assert_eq!(
        d.help.as_deref(),
        Some("declare it as `def join(self, inputs):`")
    );
}

#[test]
fn branches_meeting_at_end_leave_the_split_open() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("end"))
        .step("b", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::UNBALANCED_JOIN);
    assert_message(&d, "split `start` is not joined before the end step `end`");
}

#[test]
fn inputs_without_a_split() {
    let flow = FlowBuilder::new()
        .step("start", next("train"))
        .join("train", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::INPUTS_NOT_JOIN);
    assert_eq!(d.span, step(&flow, "train").params_span);
    assert_message(
        &d,
        "step `train` takes `inputs` but is not the join of a split",
    );
}

#[test]
fn bad_signature_is_not_also_reported_as_a_join() {
    // `def train(self, rows, columns)`: the frontend reports the signature.
    let flow = linear()
        .edit("a", |s| {
            s.params = vec!["rows".into(), "columns".into()];
            s.is_join = true;
        })
        .build();
    assert_clean(&flow);
}

#[test]
fn inputs_on_one_branch_only() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("x"))
        .join("x", next("join"))
        .step("b", next("join"))
        .join("join", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::INPUTS_NOT_JOIN);
    assert_eq!(d.span, step(&flow, "x").params_span);
    assert_message(&d, "only branch `a` of split `start` leads to it");
}

#[test]
fn switch_cases_meeting_at_a_join_is_not_a_join() {
    let flow = FlowBuilder::new()
        .step("start", switch([("p", "p"), ("q", "q")]))
        .step("p", next("meet"))
        .step("q", next("meet"))
        .join("meet", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::INPUTS_NOT_JOIN);
    assert_eq!(d.span, step(&flow, "meet").params_span);
}

#[test]
fn end_step_taking_inputs() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("end"))
        .step("b", next("end"))
        .join("end", end())
        .build();
    let d = only(&flow, &codes::INPUTS_NOT_JOIN);
    assert_message(&d, "the end step `end` takes `inputs`");
}

#[test]
fn foreach_straight_into_join() {
    let flow = FlowBuilder::new()
        .step("start", foreach("join"))
        .join("join", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::SPLIT_INTO_JOIN);
    assert_eq!(d.span, target_span(&flow, "start", "join"));
    assert_message(&d, "foreach `start` leads straight to join `join`");
}

#[test]
fn switch_case_straight_into_join() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", switch([("ok", "join"), ("fix", "fix")]))
        .step("fix", next("join"))
        .step("b", next("join"))
        .join("join", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::SWITCH_INTO_JOIN);
    assert_eq!(d.span, target_span(&flow, "a", "join"));
}

#[test]
fn join_that_also_splits() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "b"]))
        .step("a", next("join"))
        .step("b", next("join"))
        .join("join", branch(["c", "d"]))
        .step("c", next("join2"))
        .step("d", next("join2"))
        .join("join2", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::JOIN_IS_SPLIT);
    assert_eq!(d.span, next_span(&flow, "join"));
}

#[test]
fn split_naming_a_step_twice() {
    let flow = FlowBuilder::new()
        .step("start", branch(["a", "a"]))
        .step("a", next("end"))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::DUPLICATE_BRANCH);
    let second = match &step(&flow, "start").transition {
        Transition::Branch { to } => to[1].span,
        _ => unreachable!("built as a branch"),
    };
    assert_eq!(d.span, second);
}

#[test]
fn switch_with_one_case() {
    let flow = FlowBuilder::new()
        .step("start", switch([("only", "end")]))
        .step("end", end())
        .build();
    let d = only(&flow, &codes::SWITCH_TOO_FEW_CASES);
    assert_eq!(d.span, next_span(&flow, "start"));
    assert_message(&d, "has only one case");
}

#[test]
fn parallel_step_must_lead_to_a_join() {
    let flow = FlowBuilder::new()
        .step("start", next("train"))
        .step("train", next("report"))
        .step("report", next("end"))
        .step("end", end())
        .decorate("train", "parallel")
        .build();
    let d = lint(&flow);
    assert!(
        d.iter()
            .any(|d| d.code == codes::PARALLEL_NOT_JOINED.name
                && d.span == next_span(&flow, "train")),
        "{d:#?}"
    );
}

// ---- decorators and parameters ---------------------------------------------------

#[test]
fn catch_on_a_foreach_or_switch_step() {
    let fans_out = FlowBuilder::new()
        .step("start", foreach("train"))
        .step("train", next("join"))
        .join("join", next("end"))
        .step("end", end())
        .decorate("start", "catch")
        .build();
    let d = only(&fans_out, &codes::CATCH_ON_SPLIT);
    assert_eq!(d.span, step(&fans_out, "start").decorators[0].span);
    assert_eq!(d.related[0].span, next_span(&fans_out, "start"));
    assert_message(&d, "a foreach step");

    let switches = FlowBuilder::new()
        .step("start", switch([("a", "a"), ("b", "b")]))
        .step("a", next("end"))
        .step("b", next("end"))
        .step("end", end())
        .decorate("start", "catch")
        .build();
    assert_message(&only(&switches, &codes::CATCH_ON_SPLIT), "a switch step");

    // Near misses: @catch on a branch split, on a foreach body and on a join is fine.
    assert_clean(
        &FlowBuilder::new()
            .step("start", branch(["a", "b"]))
            .step("a", next("join"))
            .step("b", next("join"))
            .join("join", next("end"))
            .step("end", end())
            .decorate("start", "catch")
            .decorate("join", "catch")
            .build(),
    );
    assert_clean(
        &FlowBuilder::new()
            .step("start", foreach("train"))
            .step("train", next("join"))
            .join("join", next("end"))
            .step("end", end())
            .decorate("train", "catch")
            .build(),
    );
}

#[test]
fn parallel_step_with_a_switch() {
    let flow = FlowBuilder::new()
        .step("start", next("train"))
        .step("train", switch([("ok", "collect"), ("retry", "again")]))
        .join("collect", next("end"))
        .join("again", next("end"))
        .step("end", end())
        .decorate("train", "parallel")
        .build();
    // One diagnostic: not also "not joined", "switch into join" or an open split.
    let d = only(&flow, &codes::PARALLEL_ON_SWITCH);
    assert_eq!(d.span, step(&flow, "train").decorators[0].span);
    assert_eq!(d.related[0].span, next_span(&flow, "train"));
    // Near miss: a switch after the gang's join is fine.
    assert_clean(
        &FlowBuilder::new()
            .step("start", next("train"))
            .step("train", next("collect"))
            .join("collect", next("route"))
            .step("route", switch([("a", "a"), ("b", "end")]))
            .step("a", next("end"))
            .step("end", end())
            .decorate("train", "parallel")
            .build(),
    );
}

#[test]
fn two_compute_decorators() {
    let flow = linear()
        .decorate("a", "batch")
        .decorate("a", "kubernetes")
        .build();
    let d = only(&flow, &codes::MULTIPLE_COMPUTE);
    let decos = &step(&flow, "a").decorators;
    assert_eq!(d.span, decos[1].span);
    assert_eq!(d.related[0].span, decos[0].span);
    // Near miss: one compute decorator, plus another kind.
    assert_clean(
        &linear()
            .decorate("a", "batch")
            .decorate("a", "retry")
            .build(),
    );
}

#[test]
fn parameter_names_clash() {
    let flow = linear()
        .param("alpha", "alpha", |p| {
            p.default = Some(Value::Str("x".into()))
        })
        .param("beta", "Alpha", |p| {
            p.default = Some(Value::Str("y".into()))
        })
        .build();
    let d = only(&flow, &codes::PARAM_DUPLICATE);
    assert_eq!(d.span, flow.parameters[1].name_span);
    assert_eq!(d.related[0].span, flow.parameters[0].name_span);
    let flow = linear()
        .param("alpha", "alpha", |p| {
            p.default = Some(Value::Str("x".into()))
        })
        .param("alpha", "beta", |p| {
            p.default = Some(Value::Str("y".into()))
        })
        .build();
    let d = only(&flow, &codes::PARAM_DUPLICATE);
    assert_message(&d, "attribute `alpha` is assigned two parameters");
    // Near miss: similar but distinct names.
    assert_clean(
        &linear()
            .param("p", "alpha", |p| p.default = Some(Value::Str("x".into())))
            .param("q", "alpha2", |p| p.default = Some(Value::Str("y".into())))
            .build(),
    );
}

#[test]
fn reserved_parameter_names() {
    let flow = linear()
        .param("tags_value", "max_workers", |p| p.required = true)
        .build();
    let d = only(&flow, &codes::PARAM_RESERVED_NAME);
    assert_eq!(d.span, flow.parameters[0].name_span);
    let flow = linear().param("a", "epochs", |p| p.required = true).build();
    let d = only(&flow, &codes::PARAM_RESERVED_NAME);
    assert_message(&d, "same name as step `a`");
    let flow = linear()
        .param("input", "input_file", |p| p.required = true)
        .build();
    only(&flow, &codes::PARAM_RESERVED_NAME);
    assert_clean(
        &linear()
            .param("tagline", "tagline", |p| p.required = true)
            .build(),
    );
}

#[test]
fn default_of_the_wrong_type() {
    let bad = |ty, value| {
        linear()
            .param("n", "n", |p| {
                p.ty = ty;
                p.default = Some(value);
            })
            .build()
    };
    let flow = bad(ParameterType::Int, Value::Str("x".into()));
    let d = only(&flow, &codes::PARAM_DEFAULT_TYPE);
    // Without a recorded default span, the whole assignment.
    assert_eq!(d.span, flow.parameters[0].span);
    assert_eq!(d.message, "default `\"x\"` of parameter `n` is not an int");
    assert_eq!(
        d.help.as_deref(),
        Some("give an int default, or change `type=` to match the default")
    );
    let mut pointed = flow.clone();
    pointed.parameters[0].default_span = Some(Span::new(3, 9));
    assert_eq!(
        only(&pointed, &codes::PARAM_DEFAULT_TYPE).span,
        Span::new(3, 9)
    );
    let d = only(
        &bad(ParameterType::Int, Value::Float(2.5)),
        &codes::PARAM_DEFAULT_TYPE,
    );
    assert_message(&d, "default `2.5` of parameter `n` is a float");
    let d = only(
        &bad(ParameterType::Str, Value::List(vec![Value::Int(1)])),
        &codes::PARAM_DEFAULT_TYPE,
    );
    assert_eq!(
        d.message,
        "the default of parameter `n` is a list, not a str"
    );
    only(
        &bad(ParameterType::Bool, Value::Str("maybe".into())),
        &codes::PARAM_DEFAULT_TYPE,
    );
    only(
        &bad(ParameterType::Str, Value::Int(3)),
        &codes::PARAM_DEFAULT_TYPE,
    );
    only(
        &bad(ParameterType::Json, Value::Str("{nope".into())),
        &codes::PARAM_DEFAULT_TYPE,
    );
    // Near misses: what Metaflow converts, and what cannot be known statically.
    assert_clean(&bad(ParameterType::Float, Value::Int(1)));
    assert_clean(&bad(ParameterType::Json, Value::List(vec![Value::Int(1)])));
    assert_clean(&bad(
        ParameterType::Int,
        Value::Deferred {
            source_text: "compute()".into(),
            span: Span::new(1, 2),
        },
    ));
    let include = linear()
        .param("data", "data", |p| {
            p.kind = ParameterKind::IncludeFile;
            p.default = Some(Value::Int(1));
        })
        .build();
    only(&include, &codes::PARAM_DEFAULT_TYPE);
}

#[test]
fn parameter_without_default_warns() {
    let flow = linear().param("alpha", "alpha", |_| {}).build();
    let d = only(&flow, &codes::PARAM_NO_DEFAULT);
    assert!(!d.is_error());
    assert_eq!(d.span, flow.parameters[0].name_span);
    // Near miss: an explicit `default=None` is intended.
    assert_clean(
        &linear()
            .param("alpha", "alpha", |p| p.default = Some(Value::None))
            .build(),
    );
}

#[test]
fn scheduled_flow_with_required_parameter() {
    let flow = linear()
        .schedule()
        .param("day", "day", |p| p.required = true)
        .build();
    let d = only(&flow, &codes::SCHEDULE_REQUIRED_PARAMETER);
    assert_eq!(d.span, flow.parameters[0].span);
    assert_eq!(d.related[0].span, flow.flow_decorators[0].span);
    // Near miss: the same parameter with a default.
    assert_clean(
        &linear()
            .schedule()
            .param("day", "day", |p| {
                p.required = true;
                p.default = Some(Value::Str("monday".into()));
            })
            .build(),
    );
}

// ---- scale -------------------------------------------------------------------------

/// A valid flow of `8 * blocks + 2` steps: a chain of blocks, each a branch of two and
/// its join, then a foreach over a recursive switch and its join.
fn big_flow(blocks: usize) -> Flow {
    let names: Vec<&'static str> = (0..blocks * 8)
        .map(|i| &*Box::leak(format!("s{i}").into_boxed_str()))
        .collect();
    let mut b = FlowBuilder::new().step("start", next(names[0]));
    for k in 0..blocks {
        let n = |j: usize| names[k * 8 + j];
        let after = if k + 1 < blocks {
            names[(k + 1) * 8]
        } else {
            "end"
        };
        b = b
            .step(n(0), branch([n(1), n(2)]))
            .step(n(1), next(n(3)))
            .step(n(2), next(n(3)))
            .join(n(3), next(n(4)))
            .step(n(4), foreach(n(5)))
            .step(n(5), switch([("again", n(5)), ("done", n(6))]))
            .step(n(6), next(n(7)))
            .join(n(7), next(after));
    }
    b.step("end", end()).build()
}

#[test]
fn large_flows_are_checked_in_linear_time() {
    let flow = big_flow(125);
    assert_eq!(flow.steps.len(), 1002);
    let started = std::time::Instant::now();
    let d = run(&flow);
    let elapsed = started.elapsed();
    assert!(d.is_empty(), "{:#?}", &d[..d.len().min(4)]);
    // Generous for an unoptimised test build; a walk that recomputes the graph per
    // step takes far longer.
    assert!(elapsed.as_millis() < 100, "lint took {elapsed:?}");

    // Break the last join: exactly one finding, however large the flow.
    let mut broken = big_flow(125);
    if let Some(last) = broken.steps.iter_mut().rev().find(|s| s.is_join) {
        last.is_join = false;
        last.params.clear();
    }
    let d = run(&broken);
    assert_eq!(
        d.iter().map(|d| d.code).collect::<Vec<_>>(),
        vec![codes::UNBALANCED_JOIN.name],
        "{d:#?}"
    );
}
