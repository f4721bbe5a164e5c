//! The flowc intermediate representation: the one contract shared by the frontend,
//! the checks, every backend, the runtime and external `flowc-gen-<target>` plugins.
//!
//! Everything here is plain data: no I/O, no parser types. Maps are `BTreeMap` so that
//! serialising the same flow always gives the same bytes. Spans are byte offsets into
//! the flow's source file; turning them into lines and columns is the renderer's job.

mod plan;
mod value;
mod views;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use plan::{LocalPlan, PlanParameter, PlanStep, PlanTransition, StepKind, PLAN_VERSION};
pub use value::{PlainJson, Value};
pub use views::{
    BatchCompute, Card, Catch, Compute, Environment, EventTrigger, FlowRef, FlowSpecView,
    KubernetesCompute, Project, PythonEnv, PythonEnvManager, Resources, Retry, Schedule,
    ScheduleKind, Secrets, StepSpec, Timeout, Toleration, Trigger, TriggerOnFinish,
};

/// Version of the serialised IR. Bump it on any change that an external consumer of
/// `flowc inspect --format json` could notice.
pub const IR_VERSION: u32 = 1;

/// A half-open byte range `[start, end)` into the flow's source file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the flow came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The path as the user gave it.
    pub path: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// One flow: a `FlowSpec` subclass, with everything it inherited from FlowSpec
/// subclasses in the same file merged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub ir_version: u32,
    /// The class name, e.g. `TrainFlow`.
    pub name: String,
    pub doc: Option<String>,
    /// The `class` statement.
    pub span: Span,
    /// The span of the class name alone.
    pub name_span: Span,
    pub source: Source,
    /// Name of the entry step (`start`, or the step marked `@step(start=True)`).
    pub start_step: String,
    /// Name of the exit step (`end`, or the step marked `@step(end=True)`).
    pub end_step: String,
    pub parameters: Vec<Parameter>,
    pub configs: Vec<Config>,
    /// Flow-level decorators in source order, as written.
    pub flow_decorators: Vec<Decorator>,
    /// The typed, normalised reading of `flow_decorators`.
    pub spec: FlowSpecView,
    /// Steps in source order (inherited steps first, in their base class's order).
    pub steps: Vec<Step>,
}

impl Flow {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// One `@step` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub doc: Option<String>,
    /// The whole `def` (decorators included).
    pub span: Span,
    /// The method name.
    pub name_span: Span,
    /// Step decorators in source order (top to bottom), as written; `@step` itself excluded.
    pub decorators: Vec<Decorator>,
    /// The typed, normalised reading of `decorators`.
    pub spec: StepSpec,
    /// The method's parameters after `self`, e.g. `["inputs"]` for a join.
    pub params: Vec<String>,
    /// The span of the parameter list.
    pub params_span: Span,
    /// True when the step takes a second argument (`inputs`): it joins its parents.
    pub is_join: bool,
    pub transition: Transition,
    /// The `self.next(...)` call, if there is one.
    pub transition_span: Option<Span>,
    /// The class the step was defined in, when it is not the flow class itself.
    pub inherited_from: Option<String>,
}

/// A reference to a step inside `self.next(...)`, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub step: String,
    pub span: Span,
}

/// One case of a switch: `{"value": self.step}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchCase {
    pub value: String,
    pub target: Target,
}

/// How a step hands over to the next ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transition {
    /// No `self.next(...)`: only right for the end step.
    End,
    /// `self.next(self.a)`
    Linear { to: Target },
    /// `self.next(self.a, self.b, ...)`
    Branch { to: Vec<Target> },
    /// `self.next(self.a, foreach="items")`: one task of `a` per element of `self.items`.
    Foreach {
        to: Target,
        over: String,
        over_span: Span,
    },
    /// `self.next({"x": self.a, "y": self.b}, condition="var")`
    Switch {
        on: String,
        on_span: Span,
        cases: Vec<SwitchCase>,
    },
}

impl Transition {
    /// Every step this transition can lead to, in source order.
    pub fn targets(&self) -> Vec<&Target> {
        match self {
            Transition::End => Vec::new(),
            Transition::Linear { to } | Transition::Foreach { to, .. } => vec![to],
            Transition::Branch { to } => to.iter().collect(),
            Transition::Switch { cases, .. } => cases.iter().map(|c| &c.target).collect(),
        }
    }
}

/// What kind of flow input a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterKind {
    /// `Parameter(...)`
    Parameter,
    /// `IncludeFile(...)`: the CLI value is a path, the artifact is the file's content.
    IncludeFile,
}

/// The declared (or inferred from the default) type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterType {
    Str,
    Int,
    Float,
    Bool,
    /// `type=JSONType`
    Json,
    /// A type the static reader cannot name (a user class, an expression).
    Other,
}

/// A flow `Parameter` or `IncludeFile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// The class attribute it is bound to: how steps read it (`self.alpha`).
    pub attr: String,
    /// The name on the command line (`--alpha`) and in the orchestrators.
    pub name: String,
    pub kind: ParameterKind,
    #[serde(rename = "type")]
    pub ty: ParameterType,
    pub default: Option<Value>,
    pub help: Option<String>,
    pub required: bool,
    pub show_default: bool,
    pub separator: Option<String>,
    /// `IncludeFile(is_text=...)`; true for plain parameters.
    pub is_text: bool,
    /// The whole `attr = Parameter(...)` assignment.
    pub span: Span,
    /// The name argument.
    pub name_span: Span,
    /// The `default=...` argument, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_span: Option<Span>,
    pub inherited_from: Option<String>,
}

/// A Metaflow `Config(...)`: a value fixed when the run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub attr: String,
    pub name: String,
    pub default: Option<Value>,
    pub default_value: Option<Value>,
    pub required: bool,
    pub help: Option<String>,
    pub span: Span,
    pub inherited_from: Option<String>,
}

/// A decorator as written, with every argument statically evaluated (or `Deferred`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decorator {
    /// The decorator's name without module prefix, e.g. `retry`.
    pub name: String,
    /// Explicit arguments as written; defaults are applied in the typed views, not here.
    pub args: BTreeMap<String, Value>,
    /// Where each argument was written.
    pub arg_spans: BTreeMap<String, Span>,
    /// The whole `@name(...)`.
    pub span: Span,
    /// False for decorators flowc does not know (user decorators): kept, not interpreted.
    pub known: bool,
}
