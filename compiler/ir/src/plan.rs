//! The local execution plan: what `flowc compile --target local` writes and what
//! `flowc run` executes. Like the IR, plain versioned data; spans and decorators are
//! resolved away, leaving what a scheduler needs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Catch, ParameterKind, ParameterType, PlainJson, Retry, Source};

/// Version of the serialised plan.
pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalPlan {
    pub plan_version: u32,
    pub flow: String,
    pub source: Source,
    pub start_step: String,
    pub end_step: String,
    pub parameters: Vec<PlanParameter>,
    /// Steps in source order.
    pub steps: Vec<PlanStep>,
}

impl LocalPlan {
    pub fn step(&self, name: &str) -> Option<&PlanStep> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// A flow parameter as the run's command line and the init task see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanParameter {
    /// The CLI name (`--alpha`).
    pub name: String,
    /// The attribute steps read (`self.alpha`).
    pub attr: String,
    pub kind: ParameterKind,
    #[serde(rename = "type")]
    pub ty: ParameterType,
    /// The default as plain JSON, when it could be evaluated statically.
    pub default: Option<PlainJson>,
    /// The default's Python source when it could not (evaluated by the harness).
    pub default_expression: Option<String>,
    pub required: bool,
    pub help: Option<String>,
    pub separator: Option<String>,
    pub is_text: bool,
}

/// The shape of a step in the graph, in Metaflow's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Start,
    Linear,
    Split,
    Foreach,
    SplitSwitch,
    Join,
    End,
}

/// Where a step goes next, by step name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanTransition {
    End,
    Linear {
        to: String,
    },
    Branch {
        to: Vec<String>,
    },
    Foreach {
        to: String,
        over: String,
    },
    /// Case value (the condition artifact's value as a string) → step.
    Switch {
        on: String,
        cases: BTreeMap<String, String>,
    },
}

/// One step, with everything the scheduler needs to run its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    pub name: String,
    pub kind: StepKind,
    pub next: PlanTransition,
    /// For a join: the split step (branch or foreach) whose tasks it waits for.
    pub joins: Option<String>,
    /// The steps whose tasks are this step's parents, in source order.
    pub parents: Vec<String>,
    pub retry: Option<Retry>,
    pub timeout_seconds: Option<u64>,
    pub catch: Option<Catch>,
    /// `@environment(vars=...)` values that could be evaluated statically.
    pub environment: BTreeMap<String, String>,
    /// The task command line. `{flow_file}`, `{run_id}`, `{task_id}`, `{input_paths}`,
    /// `{split_index}`, `{retry_count}` and `{datastore_root}` are filled in by the
    /// scheduler.
    pub command: Vec<String>,
}
