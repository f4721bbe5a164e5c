//! The `local` target: lowers a checked flow to the [`LocalPlan`] that `flowc run`
//! executes and `flowc compile --target local` writes.
//!
//! The plan resolves everything the scheduler would otherwise have to work out from
//! the IR: each step's kind in Metaflow's vocabulary, its static parents, the split a
//! join closes, its retry/timeout/catch/environment settings and the `flowc-shim task`
//! command line with placeholders for what only the run knows.

use std::collections::{BTreeMap, BTreeSet};

use flowc_ir::{
    Flow, LocalPlan, Parameter, PlanParameter, PlanStep, PlanTransition, Step, StepKind,
    Transition, Value, PLAN_VERSION,
};

#[cfg(test)]
mod tests;

/// The program the task commands start, when nothing else is configured.
pub const DEFAULT_SHIM: &str = "flowc-shim";

/// What the local plan depends on beyond the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// The first word of every task command. The scheduler replaces the default,
    /// [`DEFAULT_SHIM`], by the `flowc-shim` it locates.
    pub shim: String,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            shim: DEFAULT_SHIM.to_owned(),
        }
    }
}

/// Lowers a checked flow (one without errors) to its local plan. Pure: the same flow and
/// config always give the same plan.
pub fn local_plan(flow: &Flow, config: &LocalConfig) -> LocalPlan {
    let parents = static_parents(flow);
    let joins = closed_splits(flow);
    let foreach_bodies: BTreeSet<&str> = flow
        .steps
        .iter()
        .filter_map(|step| match &step.transition {
            Transition::Foreach { to, .. } => Some(to.step.as_str()),
            _ => None,
        })
        .collect();
    let steps = flow
        .steps
        .iter()
        .map(|step| {
            let kind = step_kind(flow, step);
            PlanStep {
                name: step.name.clone(),
                kind,
                next: plan_transition(&step.transition),
                joins: joins.get(step.name.as_str()).cloned(),
                parents: parents.get(step.name.as_str()).cloned().unwrap_or_default(),
                retry: step.spec.retry.clone(),
                timeout_seconds: step.spec.timeout.as_ref().map(|t| t.seconds),
                catch: step.spec.catch.clone(),
                environment: environment(step),
                command: task_command(
                    flow,
                    step,
                    config,
                    kind == StepKind::Start,
                    foreach_bodies.contains(step.name.as_str()),
                ),
            }
        })
        .collect();
    LocalPlan {
        plan_version: PLAN_VERSION,
        flow: flow.name.clone(),
        source: flow.source.clone(),
        start_step: flow.start_step.clone(),
        end_step: flow.end_step.clone(),
        parameters: flow.parameters.iter().map(plan_parameter).collect(),
        steps,
    }
}

/// Metaflow's node type: `start` and `end` by role, then `join` for a step that takes
/// `inputs`, then the shape of its `self.next(...)`.
fn step_kind(flow: &Flow, step: &Step) -> StepKind {
    if step.name == flow.start_step {
        return StepKind::Start;
    }
    if step.name == flow.end_step {
        return StepKind::End;
    }
    if step.is_join {
        return StepKind::Join;
    }
    match &step.transition {
        Transition::End | Transition::Linear { .. } => StepKind::Linear,
        Transition::Branch { .. } => StepKind::Split,
        Transition::Foreach { .. } => StepKind::Foreach,
        Transition::Switch { .. } => StepKind::SplitSwitch,
    }
}

fn plan_transition(transition: &Transition) -> PlanTransition {
    match transition {
        Transition::End => PlanTransition::End,
        Transition::Linear { to } => PlanTransition::Linear {
            to: to.step.clone(),
        },
        Transition::Branch { to } => PlanTransition::Branch {
            to: to.iter().map(|t| t.step.clone()).collect(),
        },
        Transition::Foreach { to, over, .. } => PlanTransition::Foreach {
            to: to.step.clone(),
            over: over.clone(),
        },
        Transition::Switch { on, cases, .. } => PlanTransition::Switch {
            on: on.clone(),
            cases: cases
                .iter()
                .map(|case| (case.value.clone(), case.target.step.clone()))
                .collect(),
        },
    }
}

/// For every step, the steps whose transition can lead to it, in source order and
/// without repeats.
fn static_parents(flow: &Flow) -> BTreeMap<&str, Vec<String>> {
    let mut parents: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for step in &flow.steps {
        for target in step.transition.targets() {
            let list = parents.entry(target.step.as_str()).or_default();
            if !list.contains(&step.name) {
                list.push(step.name.clone());
            }
        }
    }
    parents
}

/// For every join reachable from the start step, the split it closes: the innermost
/// branch or foreach open where the join is reached. Walks the graph depth first
/// keeping the stack of open splits, as Metaflow's graph does; a checked flow reaches
/// each step with one stack, so the first visit decides. A switch opens no split, and
/// a switch that loops back to an earlier step is a visited step, not a new path.
fn closed_splits(flow: &Flow) -> BTreeMap<&str, String> {
    let mut joins = BTreeMap::new();
    let mut visited = BTreeSet::new();
    let mut work: Vec<(&str, Vec<&str>)> = vec![(flow.start_step.as_str(), Vec::new())];
    while let Some((name, mut open)) = work.pop() {
        if !visited.insert(name) {
            continue;
        }
        let Some(step) = flow.step(name) else {
            continue;
        };
        if step.is_join {
            if let Some(split) = open.pop() {
                joins.insert(name, split.to_owned());
            }
        }
        if matches!(
            step.transition,
            Transition::Branch { .. } | Transition::Foreach { .. }
        ) {
            open.push(name);
        }
        // Pushed in reverse so the first target is walked first.
        for target in step.transition.targets().into_iter().rev() {
            work.push((target.step.as_str(), open.clone()));
        }
    }
    joins
}

/// `@environment` variables whose values could be evaluated statically, as the strings
/// the process environment holds (Python's `str()` of scalars). The harness sets every
/// variable, deferred ones included, before the step runs.
fn environment(step: &Step) -> BTreeMap<String, String> {
    step.spec
        .environment
        .vars
        .iter()
        .filter_map(|(key, value)| {
            let text = match value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => python_float(*f),
                Value::Bool(true) => "True".to_owned(),
                Value::Bool(false) => "False".to_owned(),
                _ => return None,
            };
            Some((key.clone(), text))
        })
        .collect()
}

/// Python's `str()` of a float for the values a decorator holds (`1.0`, not `1`).
fn python_float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.1}")
    } else {
        value.to_string()
    }
}

/// The `flowc-shim task` command for one step. Placeholders (see [`PlanStep::command`]):
/// `{flow_file}`, `{run_id}`, `{task_id}`, `{datastore_root}`, `{retry_count}`,
/// `{input_paths}` (every step but the start step) and `{split_index}` (the first step
/// of a foreach body). The scheduler appends run-wide options (`--tag`,
/// `--origin-run-id`, `--python`).
fn task_command(
    flow: &Flow,
    step: &Step,
    config: &LocalConfig,
    is_start: bool,
    is_foreach_body: bool,
) -> Vec<String> {
    let mut command: Vec<String> = [
        config.shim.as_str(),
        "task",
        "--flow-file",
        "{flow_file}",
        "--flow",
        flow.name.as_str(),
        "--step",
        step.name.as_str(),
        "--run-id",
        "{run_id}",
        "--task-id",
        "{task_id}",
        "--datastore-root",
        "{datastore_root}",
        "--retry-count",
        "{retry_count}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(retry) = &step.spec.retry {
        command.push("--max-user-code-retries".to_owned());
        command.push(retry.times.to_string());
    }
    if !is_start {
        command.push("--input-paths".to_owned());
        command.push("{input_paths}".to_owned());
    }
    if is_foreach_body {
        command.push("--split-index".to_owned());
        command.push("{split_index}".to_owned());
    }
    for (key, value) in environment(step) {
        command.push("--env".to_owned());
        command.push(format!("{key}={value}"));
    }
    command
}

fn plan_parameter(param: &Parameter) -> PlanParameter {
    let (default, default_expression) = match &param.default {
        None => (None, None),
        Some(Value::Deferred { source_text, .. }) => (None, Some(source_text.clone())),
        Some(value) => (value.to_plain_json(), None),
    };
    PlanParameter {
        name: param.name.clone(),
        attr: param.attr.clone(),
        kind: param.kind,
        ty: param.ty,
        default,
        default_expression,
        required: param.required,
        help: param.help.clone(),
        separator: param.separator.clone(),
        is_text: param.is_text,
    }
}
