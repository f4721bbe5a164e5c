//! The step graph as Argo DAGs: one DAG template per foreach scope (the main DAG, and
//! one body per foreach, nested for nested foreach), a recursive DAG per self-looping
//! switch, and for every task its dependencies, `when` condition and parents' paths.

use std::collections::{BTreeMap, BTreeSet};

use flowc_ir::{Flow, Step, Transition};

use super::names::{dns_label, MAX_LABEL};
use super::types::{
    Arguments, DagTask, DagTemplate, Inputs, Outputs, Parameter, Template, ValueFrom,
};
use crate::diagnostics::{codes, Diagnostic};

/// The DAG the workflow starts in.
pub(crate) const MAIN_TEMPLATE: &str = "flowc-main";
/// The container template running `flowc-shim init` (the run's parameters).
pub(crate) const INIT_TEMPLATE: &str = "flowc-init";
/// The task id of tasks outside any foreach.
const ROOT_TASK_ID: &str = "t";

/// Parameter names shared by the templates.
pub(crate) const P_TASK_ID: &str = "task-id";
pub(crate) const P_INPUT_PATHS: &str = "input-paths";
pub(crate) const P_SPLIT_INDEX: &str = "split-index";
pub(crate) const P_ROUND: &str = "round";
/// Output parameters the shim writes (see [`super::step::OUTPUT_FILES`]).
pub(crate) const O_FOREACH_ITEMS: &str = "foreach-items";
pub(crate) const O_NUM_SPLITS: &str = "num-splits";
pub(crate) const O_SWITCH_STEP: &str = "switch-step";
pub(crate) const O_TASK_ID: &str = "task-id";
/// Output of a foreach body whose last step is not always the same one: the task
/// (`STEP/TASK`) the split ended in. The fan-out gathers it into a JSON list.
pub(crate) const O_LAST_TASK: &str = "last-task";

/// What the step templates need to know about a step's place in the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StepRole {
    pub(crate) is_start: bool,
    /// The first step of a foreach body: it gets `--split-index`.
    pub(crate) is_foreach_body: bool,
    pub(crate) is_foreach: bool,
    pub(crate) is_switch: bool,
    /// A switch with a case leading back to the step itself.
    pub(crate) is_self_loop: bool,
}

/// The DAG templates of a flow, and each step's role.
pub(crate) struct Dags {
    pub(crate) templates: Vec<Template>,
    pub(crate) roles: BTreeMap<String, StepRole>,
}

/// The template (and DAG task) name of a step.
pub(crate) fn step_name(step: &str) -> String {
    dns_label(step, MAX_LABEL)
}

fn foreach_name(target: &str) -> String {
    dns_label(&format!("foreach-{target}"), MAX_LABEL)
}

fn loop_name(step: &str) -> String {
    dns_label(&format!("loop-{step}"), MAX_LABEL)
}

fn input(name: &str) -> String {
    format!("{{{{inputs.parameters.{name}}}}}")
}

fn task_output(task: &str, name: &str) -> String {
    format!("{{{{tasks.{task}.outputs.parameters.{name}}}}}")
}

fn path(step: &str, task_id: &str) -> String {
    format!("{{{{workflow.name}}}}/{step}/{task_id}")
}

/// A frame of the stack of open splits while walking the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame<'a> {
    step: &'a str,
    foreach: bool,
}

/// Where each step sits: the foreach steps whose bodies enclose it (outermost first),
/// and for each join the split it closes.
struct Layout<'a> {
    scope: BTreeMap<&'a str, Vec<&'a str>>,
    joins: BTreeMap<&'a str, Frame<'a>>,
}

/// The flow's steps by name. `Flow::step` searches the list, which made lowering
/// quadratic in the number of steps (a sixth of the backend's time at 1000 steps).
struct Steps<'a>(BTreeMap<&'a str, &'a Step>);

impl<'a> Steps<'a> {
    fn new(flow: &'a Flow) -> Self {
        Steps(flow.steps.iter().map(|s| (s.name.as_str(), s)).collect())
    }

    fn get(&self, name: &str) -> Option<&'a Step> {
        self.0.get(name).copied()
    }
}

/// Walks the graph from the start step keeping the stack of open splits, as the local
/// plan does; a checked flow reaches each step with one stack, so the first visit
/// decides.
fn layout<'a>(flow: &'a Flow, steps: &Steps<'a>) -> Layout<'a> {
    let mut scope = BTreeMap::new();
    let mut joins = BTreeMap::new();
    let mut work: Vec<(&str, Vec<Frame<'_>>)> = vec![(flow.start_step.as_str(), Vec::new())];
    while let Some((name, mut open)) = work.pop() {
        if scope.contains_key(name) {
            continue;
        }
        let Some(step) = steps.get(name) else {
            continue;
        };
        if step.is_join {
            if let Some(frame) = open.pop() {
                joins.insert(name, frame);
            }
        }
        scope.insert(
            name,
            open.iter().filter(|f| f.foreach).map(|f| f.step).collect(),
        );
        match step.transition {
            Transition::Branch { .. } => open.push(Frame {
                step: name,
                foreach: false,
            }),
            Transition::Foreach { .. } => open.push(Frame {
                step: name,
                foreach: true,
            }),
            _ => {}
        }
        for target in step.transition.targets().into_iter().rev() {
            work.push((target.step.as_str(), open.clone()));
        }
    }
    Layout { scope, joins }
}

fn is_self_loop(step: &Step) -> bool {
    matches!(&step.transition, Transition::Switch { cases, .. }
        if cases.iter().any(|c| c.target.step == step.name))
}

/// Builds the DAG templates. Shapes the target cannot express yet are reported.
pub(crate) fn dags(flow: &Flow, diagnostics: &mut Vec<Diagnostic>) -> Dags {
    let steps = Steps::new(flow);
    let layout = layout(flow, &steps);
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for step in &flow.steps {
        for target in step.transition.targets() {
            if target.step == step.name {
                continue; // a self-loop is the loop template's business
            }
            let list = parents.entry(target.step.as_str()).or_default();
            if !list.contains(&step.name.as_str()) {
                list.push(step.name.as_str());
            }
        }
    }
    let foreach_of: BTreeMap<&str, &str> = flow
        .steps
        .iter()
        .filter_map(|s| match &s.transition {
            Transition::Foreach { to, .. } => Some((to.step.as_str(), s.name.as_str())),
            _ => None,
        })
        .collect();
    let mut roles = BTreeMap::new();
    for step in &flow.steps {
        if step.spec.parallel {
            diagnostics.push(unsupported(
                step,
                format!(
                    "step `{}` is @parallel, which the Argo target does not run yet",
                    step.name
                ),
                "run the flow with `flowc run`, or replace @parallel by a foreach",
            ));
        }
        roles.insert(
            step.name.clone(),
            StepRole {
                is_start: step.name == flow.start_step,
                is_foreach_body: foreach_of.contains_key(step.name.as_str()),
                is_foreach: matches!(step.transition, Transition::Foreach { .. }),
                is_switch: matches!(step.transition, Transition::Switch { .. }),
                is_self_loop: is_self_loop(step),
            },
        );
    }
    let builder = Builder {
        flow,
        steps: &steps,
        layout: &layout,
        parents: &parents,
        roles: &roles,
    };
    // Scopes in the order their foreach steps appear, the main DAG first.
    let mut scopes: Vec<Vec<&str>> = vec![Vec::new()];
    for step in &flow.steps {
        if let Some(scope) = layout.scope.get(step.name.as_str()) {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
    }
    let mut templates = Vec::new();
    for scope in &scopes {
        templates.push(builder.scope_template(scope));
    }
    for step in &flow.steps {
        if is_self_loop(step) {
            templates.push(builder.loop_template(step));
        }
    }
    Dags { templates, roles }
}

struct Builder<'a> {
    flow: &'a Flow,
    steps: &'a Steps<'a>,
    layout: &'a Layout<'a>,
    parents: &'a BTreeMap<&'a str, Vec<&'a str>>,
    roles: &'a BTreeMap<String, StepRole>,
}

impl Builder<'_> {
    fn role(&self, step: &str) -> StepRole {
        self.roles.get(step).cloned().unwrap_or_default()
    }

    /// The path of the task of `parent` that a task in the same scope follows.
    fn parent_path(&self, parent: &str, base: &str) -> String {
        if self.role(parent).is_self_loop {
            path(parent, &task_output(&step_name(parent), O_TASK_ID))
        } else {
            path(parent, base)
        }
    }

    fn scope_template(&self, scope: &[&str]) -> Template {
        let root = scope.is_empty();
        let base = if root {
            ROOT_TASK_ID.to_owned()
        } else {
            input(P_TASK_ID)
        };
        let mut tasks = Vec::new();
        if root {
            tasks.push(DagTask {
                name: INIT_TEMPLATE.to_owned(),
                template: INIT_TEMPLATE.to_owned(),
                ..DagTask::default()
            });
        }
        for step in &self.flow.steps {
            if self.layout.scope.get(step.name.as_str()).map(Vec::as_slice) != Some(scope) {
                continue;
            }
            tasks.push(self.step_task(step, scope, &base));
            if let Transition::Foreach { to, .. } = &step.transition {
                let name = step_name(&step.name);
                tasks.push(DagTask {
                    name: foreach_name(&to.step),
                    template: foreach_name(&to.step),
                    arguments: Some(Arguments {
                        parameters: vec![
                            Parameter::value(P_TASK_ID, format!("{base}-{{{{item}}}}")),
                            Parameter::value(P_SPLIT_INDEX, "{{item}}"),
                            Parameter::value(P_INPUT_PATHS, path(&step.name, &base)),
                        ],
                    }),
                    depends: Some(format!("{name}.Succeeded")),
                    with_param: Some(task_output(&name, O_FOREACH_ITEMS)),
                    ..DagTask::default()
                });
            }
        }
        let (name, inputs) = match scope.last() {
            None => (MAIN_TEMPLATE.to_owned(), None),
            Some(foreach) => {
                let target = match self.steps.get(foreach).map(|s| &s.transition) {
                    Some(Transition::Foreach { to, .. }) => to.step.as_str(),
                    _ => foreach,
                };
                (
                    foreach_name(target),
                    Some(Inputs {
                        parameters: [P_TASK_ID, P_SPLIT_INDEX, P_INPUT_PATHS]
                            .into_iter()
                            .map(Parameter::named)
                            .collect(),
                    }),
                )
            }
        };
        let outputs =
            scope
                .last()
                .and_then(|foreach| self.body_end(foreach))
                .map(|(join, ends)| Outputs {
                    parameters: vec![Parameter {
                        value_from: Some(ValueFrom {
                            expression: Some(self.chosen_task(&ends, join, false)),
                            ..ValueFrom::default()
                        }),
                        ..Parameter::named(O_LAST_TASK)
                    }],
                });
        Template {
            name,
            inputs,
            outputs,
            dag: Some(DagTemplate { tasks }),
            ..Template::default()
        }
    }

    /// The join of the foreach of `foreach` and the body's last steps, when the split
    /// does not always end in the same plain step (and so must say where it ended).
    fn body_end(&self, foreach: &str) -> Option<(&str, Vec<&str>)> {
        let (join, _) = self
            .layout
            .joins
            .iter()
            .find(|(_, frame)| frame.foreach && frame.step == foreach)?;
        let ends = self.parents.get(join)?;
        match ends.as_slice() {
            [last] if !self.role(last).is_self_loop => None,
            _ => Some((*join, ends.clone())),
        }
    }

    /// The DAG task running `step` in a scope whose task id is `base`.
    fn step_task(&self, step: &Step, scope: &[&str], base: &str) -> DagTask {
        let name = step_name(&step.name);
        let role = self.role(&step.name);
        let template = if role.is_self_loop {
            loop_name(&step.name)
        } else {
            name.clone()
        };
        let mut args = vec![Parameter::value(P_TASK_ID, base)];
        let mut depends = None;
        let mut when = None;
        let parents = self
            .parents
            .get(step.name.as_str())
            .cloned()
            .unwrap_or_default();
        let body_start = role.is_foreach_body && scope.last().is_some();
        if role.is_start {
            depends = Some(format!("{INIT_TEMPLATE}.Succeeded"));
        } else if body_start {
            args.push(Parameter::value(P_INPUT_PATHS, input(P_INPUT_PATHS)));
            args.push(Parameter::value(P_SPLIT_INDEX, input(P_SPLIT_INDEX)));
        } else if let Some(Frame {
            step: split,
            foreach: true,
        }) = self.layout.joins.get(step.name.as_str())
        {
            let target = match self.steps.get(split).map(|s| &s.transition) {
                Some(Transition::Foreach { to, .. }) => to.step.as_str(),
                _ => split,
            };
            depends = Some(format!("{}.Succeeded", foreach_name(target)));
            let foreach = foreach_name(target);
            match parents.as_slice() {
                [last] if !self.role(last).is_self_loop => {
                    // The body's tasks have ids `<base>-<index>`: one range names them all.
                    let splits = task_output(&step_name(split), O_NUM_SPLITS);
                    args.push(Parameter::value(
                        P_INPUT_PATHS,
                        path(last, &format!("{base}-:{splits}")),
                    ));
                }
                // The body ends in alternative steps or in a loop: each split says which
                // task it ended in, and the fan-out gathers those into one JSON list.
                _ => args.push(Parameter::value(
                    P_INPUT_PATHS,
                    format!(
                        "{{{{workflow.name}}}}/{}",
                        task_output(&foreach, O_LAST_TASK)
                    ),
                )),
            }
        } else if let [parent] = parents.as_slice() {
            let parent_name = step_name(parent);
            depends = Some(format!("{parent_name}.Succeeded"));
            if self.role(parent).is_switch {
                when = Some(format!(
                    "'{}' == '{}'",
                    task_output(&parent_name, O_SWITCH_STEP),
                    step.name
                ));
            }
            args.push(Parameter::value(
                P_INPUT_PATHS,
                self.parent_path(parent, base),
            ));
        } else {
            // Several parents: a join's branches, or alternatives that meet again (the
            // cases of a switch, after one step or several, or a case skipping ahead).
            // Each arm of a join, and a step that is no join as a whole, gets its input
            // from exactly one of its parents: the one whose task ran and led here.
            let arms = if step.is_join {
                self.arms(step, &parents)
            } else {
                vec![parents.clone()]
            };
            let mut needs = Vec::new();
            let mut paths = Vec::new();
            let mut conditions = Vec::new();
            for arm in &arms {
                let succeeded: Vec<String> = arm
                    .iter()
                    .map(|p| format!("{}.Succeeded", step_name(p)))
                    .collect();
                match arm.as_slice() {
                    [parent] => {
                        needs.push(succeeded.join(""));
                        paths.push(self.parent_path(parent, base));
                    }
                    _ => {
                        needs.push(format!("({})", succeeded.join(" || ")));
                        if let Some(switch) = self.common_switch(arm) {
                            // The cases of one switch meet at once: its choice names the parent.
                            paths.push(path(&task_output(&step_name(switch), O_SWITCH_STEP), base));
                        } else {
                            paths.push(format!(
                                "{{{{workflow.name}}}}/{{{{={}}}}}",
                                self.chosen_task(arm, &step.name, scope.is_empty())
                            ));
                            if arm.iter().any(|p| self.role(p).is_switch) {
                                conditions.push(
                                    arm.iter()
                                        .map(|p| self.taken(p, &step.name))
                                        .collect::<Vec<_>>()
                                        .join(" || "),
                                );
                            }
                        }
                    }
                }
            }
            depends = Some(needs.join(" && "));
            args.push(Parameter::value(P_INPUT_PATHS, paths.join(",")));
            if !conditions.is_empty() {
                when = Some(format!("{{{{={}}}}}", conditions.join(" && ")));
            }
        }
        if role.is_self_loop {
            args.push(Parameter::value(P_ROUND, "0"));
        }
        DagTask {
            name,
            template,
            arguments: Some(Arguments { parameters: args }),
            depends,
            when,
            ..DagTask::default()
        }
    }

    /// The parents of branch join `join`, grouped by the branch they end: one group per
    /// target of the split the join closes, in the split's order. A branch holding a
    /// switch ends in one of several steps, which form one group.
    fn arms<'s>(&self, join: &Step, parents: &[&'s str]) -> Vec<Vec<&'s str>> {
        let Some(split) = self
            .layout
            .joins
            .get(join.name.as_str())
            .and_then(|frame| self.steps.get(frame.step))
        else {
            return parents.iter().map(|p| vec![*p]).collect();
        };
        let mut arms: Vec<Vec<&str>> = Vec::new();
        let mut placed = BTreeSet::new();
        for target in split.transition.targets() {
            let reached = self.reachable(&target.step, &join.name);
            let arm: Vec<&str> = parents
                .iter()
                .copied()
                .filter(|p| reached.contains(*p) && placed.insert(*p))
                .collect();
            if !arm.is_empty() {
                arms.push(arm);
            }
        }
        // A checked flow places every parent; any other is kept on its own.
        arms.extend(
            parents
                .iter()
                .filter(|p| !placed.contains(*p))
                .map(|p| vec![*p]),
        );
        arms
    }

    /// The steps reachable from `from` without passing `stop`.
    fn reachable(&self, from: &str, stop: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut work = vec![from.to_owned()];
        while let Some(name) = work.pop() {
            if name == stop || !seen.insert(name.clone()) {
                continue;
            }
            if let Some(step) = self.steps.get(&name) {
                work.extend(step.transition.targets().iter().map(|t| t.step.clone()));
            }
        }
        seen
    }

    /// An Argo expression, true when the task of `parent` ran and led to `child`. A task
    /// that did not run has a status but no outputs, so the choice of a switch is read
    /// only once the status says it ran.
    fn taken(&self, parent: &str, child: &str) -> String {
        let task = step_name(parent);
        let ran = format!("tasks['{task}'].status == 'Succeeded'");
        if self.role(parent).is_switch {
            format!(
                "({ran} ? tasks['{task}'].outputs.parameters['{O_SWITCH_STEP}'] : '') == '{child}'"
            )
        } else {
            ran
        }
    }

    /// An Argo expression for `STEP/TASK` of the one task among `parents` that ran and
    /// led to `child`, in a scope that is the main DAG when `root`.
    fn chosen_task(&self, parents: &[&str], child: &str, root: bool) -> String {
        let task_of = |parent: &str| {
            if self.role(parent).is_self_loop {
                format!(
                    "'{parent}/' + tasks['{}'].outputs.parameters['{O_TASK_ID}']",
                    step_name(parent)
                )
            } else if root {
                format!("'{parent}/{ROOT_TASK_ID}'")
            } else {
                format!("'{parent}/' + inputs.parameters['{P_TASK_ID}']")
            }
        };
        let Some((last, rest)) = parents.split_last() else {
            return "''".to_owned();
        };
        let mut expression = task_of(last);
        for parent in rest.iter().rev() {
            expression = format!(
                "{} ? {} : {expression}",
                self.taken(parent, child),
                task_of(parent)
            );
        }
        expression
    }

    /// The switch step whose cases are exactly `parents`' sources, when there is one:
    /// every parent is a case target of that switch and has no other parent.
    fn common_switch(&self, parents: &[&str]) -> Option<&str> {
        let first = parents.first()?;
        let switch = match self.parents.get(first)?.as_slice() {
            [switch] => *switch,
            _ => return None,
        };
        let step = self.steps.get(switch)?;
        let Transition::Switch { cases, .. } = &step.transition else {
            return None;
        };
        let targets: BTreeSet<&str> = cases.iter().map(|c| c.target.step.as_str()).collect();
        parents
            .iter()
            .all(|p| {
                targets.contains(p) && self.parents.get(p).map(Vec::as_slice) == Some(&[switch][..])
            })
            .then_some(switch)
    }

    /// The recursive template of a step whose switch can lead back to itself: run the
    /// step, and call the template again while the step chooses itself. Its outputs are
    /// the last round's task id and choice.
    fn loop_template(&self, step: &Step) -> Template {
        let name = step_name(&step.name);
        // The first step of a foreach body gets its split index in every round; the
        // shim reads it only when the parent is the foreach step, in round 0.
        let split_index = self.role(&step.name).is_foreach_body;
        let this = loop_name(&step.name);
        let task_id = format!("{}.r{}", input(P_TASK_ID), input(P_ROUND));
        let again = "again".to_owned();
        let chose_again = format!(
            "tasks['{name}'].outputs.parameters['{O_SWITCH_STEP}'] == '{}'",
            step.name
        );
        let pass_split_index =
            || split_index.then(|| Parameter::value(P_SPLIT_INDEX, input(P_SPLIT_INDEX)));
        let last = |output: &str| {
            ValueFrom {
            expression: Some(format!(
                "{chose_again} ? tasks['{again}'].outputs.parameters['{output}'] : tasks['{name}'].outputs.parameters['{output}']"
            )),
            ..ValueFrom::default()
        }
        };
        Template {
            name: this.clone(),
            inputs: Some(Inputs {
                parameters: [P_TASK_ID, P_INPUT_PATHS, P_ROUND]
                    .into_iter()
                    .chain(split_index.then_some(P_SPLIT_INDEX))
                    .map(Parameter::named)
                    .collect(),
            }),
            outputs: Some(Outputs {
                parameters: [O_TASK_ID, O_SWITCH_STEP]
                    .into_iter()
                    .map(|o| Parameter {
                        value_from: Some(last(o)),
                        ..Parameter::named(o)
                    })
                    .collect(),
            }),
            dag: Some(DagTemplate {
                tasks: vec![
                    DagTask {
                        name: name.clone(),
                        template: name.clone(),
                        arguments: Some(Arguments {
                            parameters: [
                                Parameter::value(P_TASK_ID, task_id.clone()),
                                Parameter::value(P_INPUT_PATHS, input(P_INPUT_PATHS)),
                            ]
                            .into_iter()
                            .chain(pass_split_index())
                            .collect(),
                        }),
                        ..DagTask::default()
                    },
                    DagTask {
                        name: again,
                        template: this,
                        arguments: Some(Arguments {
                            parameters: vec![
                                Parameter::value(P_TASK_ID, input(P_TASK_ID)),
                                Parameter::value(P_INPUT_PATHS, path(&step.name, &task_id)),
                                Parameter::value(
                                    P_ROUND,
                                    format!("{{{{=asInt(inputs.parameters['{P_ROUND}']) + 1}}}}"),
                                ),
                            ]
                            .into_iter()
                            .chain(pass_split_index())
                            .collect(),
                        }),
                        depends: Some(format!("{name}.Succeeded")),
                        when: Some(format!(
                            "'{}' == '{}'",
                            task_output(&name, O_SWITCH_STEP),
                            step.name
                        )),
                        ..DagTask::default()
                    },
                ],
            }),
            ..Template::default()
        }
    }
}

fn unsupported(step: &Step, message: String, help: &str) -> Diagnostic {
    Diagnostic::new(&codes::ARGO_UNSUPPORTED_GRAPH, step.name_span, message).with_help(help)
}
