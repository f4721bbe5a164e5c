//! `flowc resume`: choosing the restart step and finding, for each task the new run is
//! about to start, the task of the origin run it can reuse.
//!
//! Every step reachable from the restart step runs anew; a task of any other step is
//! cloned when the origin run has a succeeded task of the same step with the same
//! parents and split index. Clones keep their task ids, so the parents of a later task
//! name the same ids in both runs and matching is a map lookup. Tasks the origin never
//! reached (it was killed) simply run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flowc_ir::{LocalPlan, PlanTransition};

use super::SchedulerError;
use crate::store::{
    FlowName, LocalStore, MetadataStore, ParentTask, RunId, StepName, TaskId, TaskPath, TaskStatus,
};
use crate::task::{read_outcome, PARAMETERS_STEP};

/// What a task is, as far as matching goes: its step, its parents and its split index.
pub(crate) type TaskKey = (String, Vec<ParentTask>, Option<u64>);

/// The origin run of a resume, read once before the new run starts.
pub(crate) struct Origin {
    pub(crate) run_id: RunId,
    pub(crate) restart_step: String,
    /// The restart step and every step reachable from it.
    pub(crate) rerun: BTreeSet<String>,
    /// Succeeded tasks of the other steps.
    pub(crate) reusable: BTreeMap<TaskKey, TaskId>,
    /// The largest integer task id of the origin; new tasks are numbered above it.
    pub(crate) max_task_id: u64,
    pub(crate) parameters: BTreeMap<String, serde_json::Value>,
}

/// Steps in a topological order of the graph without its back edges (a switch that
/// loops), ties broken by source order.
pub(crate) fn topological_order(plan: &LocalPlan) -> Vec<String> {
    let index: HashMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let targets: Vec<Vec<usize>> = plan
        .steps
        .iter()
        .map(|s| {
            transition_targets(&s.next)
                .into_iter()
                .filter_map(|t| index.get(t).copied())
                .collect()
        })
        .collect();
    // Back edges: those that reach a step still on the depth-first stack.
    let mut back = BTreeSet::new();
    let mut state = vec![0u8; plan.steps.len()]; // 0 new, 1 on stack, 2 done
    if let Some(&start) = index.get(plan.start_step.as_str()) {
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&target) = targets[node].get(*next) {
                *next += 1;
                match state[target] {
                    0 => {
                        state[target] = 1;
                        stack.push((target, 0));
                    }
                    1 => {
                        back.insert((node, target));
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    let mut indegree = vec![0usize; plan.steps.len()];
    for (from, list) in targets.iter().enumerate() {
        for &to in list {
            if !back.contains(&(from, to)) {
                indegree[to] += 1;
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..plan.steps.len())
        .filter(|&i| indegree[i] == 0)
        .collect();
    let mut order = Vec::with_capacity(plan.steps.len());
    while let Some(node) = ready.pop_first() {
        order.push(plan.steps[node].name.clone());
        for &to in &targets[node] {
            if back.contains(&(node, to)) {
                continue;
            }
            indegree[to] -= 1;
            if indegree[to] == 0 {
                ready.insert(to);
            }
        }
    }
    order
}

pub(crate) fn transition_targets(next: &PlanTransition) -> Vec<&str> {
    match next {
        PlanTransition::End => Vec::new(),
        PlanTransition::Linear { to } | PlanTransition::Foreach { to, .. } => vec![to.as_str()],
        PlanTransition::Branch { to } => to.iter().map(String::as_str).collect(),
        PlanTransition::Switch { cases, .. } => cases.values().map(String::as_str).collect(),
    }
}

/// `from` and every step reachable from it.
fn reachable(plan: &LocalPlan, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut work = vec![from.to_owned()];
    while let Some(name) = work.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(step) = plan.step(&name) {
            work.extend(
                transition_targets(&step.next)
                    .into_iter()
                    .map(str::to_owned),
            );
        }
    }
    seen
}

/// Reads the origin run and decides what the resumed run reuses.
pub(crate) fn read_origin(
    store: &LocalStore,
    plan: &LocalPlan,
    flow: &FlowName,
    origin_run: &str,
    step: Option<&str>,
) -> Result<Origin, SchedulerError> {
    let run_id = RunId::new(origin_run)
        .map_err(|err| SchedulerError::Setup(format!("run id `{origin_run}`: {err}")))?;
    let run = store.read_run(flow, &run_id).map_err(|err| {
        SchedulerError::Setup(format!(
            "cannot resume run `{run_id}` of flow `{flow}`: {err}"
        ))
    })?;
    let mut tasks = Vec::new();
    let mut max_task_id = 0;
    for step_name in store.list_steps(flow, &run_id)? {
        for task_id in store.list_tasks(flow, &run_id, &step_name)? {
            if let Ok(n) = task_id.as_str().parse::<u64>() {
                max_task_id = max_task_id.max(n);
            }
            if step_name.as_str() == PARAMETERS_STEP {
                continue;
            }
            let path = TaskPath::new(flow.clone(), run_id.clone(), step_name.clone(), task_id);
            tasks.push(store.read_task(&path)?);
        }
    }
    let restart_step = match step {
        Some(name) => {
            if plan.step(name).is_none() {
                let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
                return Err(SchedulerError::Setup(format!(
                    "flow `{flow}` has no step `{name}` (its steps: {})",
                    names.join(", ")
                )));
            }
            name.to_owned()
        }
        None => {
            let unfinished: BTreeSet<&str> = tasks
                .iter()
                .filter(|t| t.status != TaskStatus::Succeeded)
                .map(|t| t.path.step.as_str())
                .collect();
            let ran: BTreeSet<&str> = tasks.iter().map(|t| t.path.step.as_str()).collect();
            let order = topological_order(plan);
            // The first step that failed; else, for a run stopped before it finished, the
            // first step it never reached.
            let failed = order.iter().find(|s| unfinished.contains(s.as_str()));
            let missing = || {
                let reached_end = ran.contains(plan.end_step.as_str());
                (!reached_end)
                    .then(|| order.iter().find(|s| !ran.contains(s.as_str())))
                    .flatten()
            };
            match failed.or_else(missing) {
                Some(name) => name.clone(),
                None => {
                    return Err(SchedulerError::Setup(format!(
                        "run `{run_id}` of flow `{flow}` has no failed step to resume from; \
                         name the step to re-run with --step"
                    )))
                }
            }
        }
    };
    let rerun = reachable(plan, &restart_step);
    let mut reusable = BTreeMap::new();
    for task in tasks {
        let step_name = task.path.step.as_str().to_owned();
        if task.status != TaskStatus::Succeeded || rerun.contains(&step_name) {
            continue;
        }
        let split_index = split_index_of(store, &task.path)?;
        reusable.insert(
            (step_name, task.parents.clone(), split_index),
            task.path.task_id.clone(),
        );
    }
    Ok(Origin {
        run_id,
        restart_step,
        rerun,
        reusable,
        max_task_id,
        parameters: run.parameters,
    })
}

/// The split index a task was started with: the innermost foreach frame's index when
/// that frame's step is the task's own (the first step of a foreach body).
fn split_index_of(store: &LocalStore, path: &TaskPath) -> Result<Option<u64>, SchedulerError> {
    let manifest = store.read_manifest(path)?;
    let outcome = read_outcome(store, &path.flow, &manifest)
        .map_err(|err| SchedulerError::Setup(format!("task {path}: {err}")))?;
    Ok(outcome.and_then(|o| {
        o.foreach_stack
            .last()
            .filter(|frame| frame.step == path.step.as_str())
            .map(|frame| frame.index)
    }))
}

/// The step name type for a plan step name, checked.
pub(crate) fn step_name(name: &str) -> Result<StepName, SchedulerError> {
    StepName::new(name).map_err(|err| SchedulerError::Setup(format!("step `{name}`: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_ir::{PlanStep, Source, StepKind, PLAN_VERSION};

    fn step(name: &str, next: PlanTransition) -> PlanStep {
        PlanStep {
            name: name.into(),
            kind: StepKind::Linear,
            next,
            joins: None,
            parents: Vec::new(),
            retry: None,
            timeout_seconds: None,
            catch: None,
            environment: BTreeMap::new(),
            command: Vec::new(),
        }
    }

    fn plan(steps: Vec<PlanStep>) -> LocalPlan {
        LocalPlan {
            plan_version: PLAN_VERSION,
            flow: "F".into(),
            source: Source {
                path: "f.py".into(),
                sha256: String::new(),
            },
            start_step: "start".into(),
            end_step: "end".into(),
            parameters: Vec::new(),
            steps,
        }
    }

    fn linear(to: &str) -> PlanTransition {
        PlanTransition::Linear { to: to.into() }
    }

    #[test]
    fn branches_come_before_their_join_whatever_the_source_order() {
        let plan = plan(vec![
            step("end", PlanTransition::End),
            step("join", linear("end")),
            step("b", linear("join")),
            step(
                "start",
                PlanTransition::Branch {
                    to: vec!["a".into(), "b".into()],
                },
            ),
            step("a", linear("join")),
        ]);
        assert_eq!(topological_order(&plan), ["start", "b", "a", "join", "end"]);
    }

    #[test]
    fn a_self_loop_is_ignored_and_reachability_follows_it() {
        let cases: BTreeMap<String, String> = [
            ("again".to_owned(), "train".to_owned()),
            ("done".to_owned(), "end".to_owned()),
        ]
        .into();
        let plan = plan(vec![
            step("start", linear("train")),
            step(
                "train",
                PlanTransition::Switch {
                    on: "s".into(),
                    cases,
                },
            ),
            step("end", PlanTransition::End),
        ]);
        assert_eq!(topological_order(&plan), ["start", "train", "end"]);
        let from_train: Vec<String> = reachable(&plan, "train").into_iter().collect();
        assert_eq!(from_train, ["end", "train"]);
    }
}
