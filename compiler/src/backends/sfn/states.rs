//! The state machine: the run's parameters first (defaults merged with the execution's
//! input, then `flowc-shim init`), then one `Task` state per step, with `Parallel` for
//! branches, `Map` for foreach (nested for nested foreach), `Choice` for switches and
//! a loop back for a switch that can choose its own step.
//!
//! Every state's input is one small JSON object, the *context*:
//!
//! | key | what |
//! |---|---|
//! | `run_id` | the run id: the execution's name, passed down into every Map |
//! | `task_id` | the task id of the steps of this scope: `t`, or `<parent>-<index>` in a Map |
//! | `parent_task_id`, `split_index` | in a Map iteration: the foreach step's task id, and the index as text |
//! | `parameters` | at the top only: the run's parameter values |
//! | `loop_<step>` | `{round, input_paths}` of a self-looping step |
//! | `switch_<step>` | `{step}`: the step a switch chose, read from the datastore |
//! | `items_<step>`, `splits_<step>` | `{items}` / `{count}`: a foreach's item list and width |
//! | `parent_<step>` | `{task}`: `STEP/TASK` of the parent that ran, for a step whose parent is only known at run time |
//! | `join_<step>` | `{tasks}`: the `STEP/TASK` each branch or split of a join's split ended in |
//!
//! Task states discard their result (`ResultPath: null`), so the context flows on
//! unchanged; the reads add their key.
//!
//! Where a step's parent depends on the run (cases of switches meeting again, a branch
//! or foreach body ending in different steps, a loop before a join), each edge into it
//! goes through a Pass state `<step>.from-<parent>` recording the parent's task; a
//! join then gets `RUN/["STEP/TASK", ...]`, gathered from its branches' or splits'
//! outputs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use flowc_ir::{Flow, PlainJson, Step, Transition as Next};

use super::jobdef::{shim_common, writes_outputs, INIT_JOB};
use super::names::{array, format, Arg, MAX_STATE_NAME};
use super::types::{
    Catcher, ChoiceRule, ChoiceState, ContainerOverrides, FailState, GetObject, ItemProcessor,
    ItemReader, MapState, ParallelState, PassState, PayloadValue, ProcessorConfig, PutObjectPrefix,
    ReaderConfig, ResultPath, ResultWriter, Retrier, State, StateMachine, SubmitJob,
    TaskParameters, TaskState, Transition,
};
use super::{Identity, MapMode, SfnConfig, INLINE_MAP_CONCURRENCY};
use crate::diagnostics::{codes, Diagnostic};

const RUN_ID: &str = "$.run_id";
const TASK_ID: &str = "$.task_id";
const PARENT_TASK_ID: &str = "$.parent_task_id";
const SPLIT_INDEX: &str = "$.split_index";
/// The task id of tasks outside any foreach.
const ROOT_TASK_ID: &str = "t";

pub(crate) const BATCH_SUBMIT: &str = "arn:aws:states:::batch:submitJob.sync";
pub(crate) const S3_GET_OBJECT: &str = "arn:aws:states:::aws-sdk:s3:getObject";
const ITEM_READER: &str = "arn:aws:states:::s3:getObject";
const RESULT_WRITER: &str = "arn:aws:states:::s3:putObject";
/// The error an execution fails with when a step fails.
pub(crate) const STEP_FAILED: &str = "flowc.StepFailed";
/// SubmitJob refuses container overrides longer than this.
const MAX_OVERRIDES: usize = 8192;

/// The top-level states before the start step.
pub(crate) const DEFAULTS_STATE: &str = "flowc.defaults";
pub(crate) const START_STATE: &str = "flowc.start";
pub(crate) const INIT_STATE: &str = "flowc.parameters";

/// Names of the states around a step. Step names are Python identifiers, so a name
/// with a `.` never collides with a step's own state.
fn failed(step: &str) -> String {
    format!("{step}.failed")
}
fn read_choice(step: &str) -> String {
    format!("{step}.read-choice")
}
fn choose(step: &str) -> String {
    format!("{step}.choose")
}
fn first_round(step: &str) -> String {
    format!("{step}.first-round")
}
fn next_round(step: &str) -> String {
    format!("{step}.next-round")
}
fn branch(step: &str) -> String {
    format!("{step}.branch")
}
fn foreach(step: &str) -> String {
    format!("{step}.foreach")
}
fn foreach_failed(step: &str) -> String {
    format!("{step}.foreach.failed")
}
fn read_items(step: &str) -> String {
    format!("{step}.read-items")
}
fn read_splits(step: &str) -> String {
    format!("{step}.read-splits")
}
fn from(step: &str, parent: &str) -> String {
    format!("{step}.from-{parent}")
}

fn is_self_loop(step: &Step) -> bool {
    matches!(&step.transition, Next::Switch { cases, .. }
        if cases.iter().any(|c| c.target.step == step.name))
}

pub(crate) fn state_machine(
    flow: &Flow,
    config: &SfnConfig,
    ids: &Identity,
    diagnostics: &mut Vec<Diagnostic>,
) -> StateMachine {
    let mut builder = Builder::new(flow, config, ids);
    for step in &flow.steps {
        if step.spec.parallel {
            builder.unsupported(
                step,
                format!(
                    "step `{}` is @parallel, which the Step Functions target does not run yet",
                    step.name
                ),
                "run the flow with `flowc run`, or replace @parallel by a foreach",
            );
        }
    }
    let (start_at, mut states) = builder.machine(&flow.start_step, None);
    builder.init_states(&start_at, &mut states);
    let machine = StateMachine {
        comment: Some(format!(
            "{} compiled by flowc {} (source sha256 {}, code package {})",
            flow.name, config.flowc_version, flow.source.sha256, config.code_package.hash
        )),
        start_at: DEFAULTS_STATE.to_owned(),
        states,
    };
    check_state_names(flow, &machine.states, &mut builder.diagnostics);
    diagnostics.append(&mut builder.diagnostics);
    machine
}

/// Reports every state name over the ASL limit, on the step it was made from.
fn check_state_names(
    flow: &Flow,
    states: &BTreeMap<String, State>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (name, state) in states {
        if name.len() > MAX_STATE_NAME {
            let step = name.split('.').next().unwrap_or(name);
            let span = flow.step(step).map_or(flow.name_span, |s| s.name_span);
            diagnostics.push(
                Diagnostic::new(
                    &codes::STATE_NAME_TOO_LONG,
                    span,
                    format!(
                        "the state `{name}` is {} characters, over the {MAX_STATE_NAME} Step Functions accepts",
                        name.len()
                    ),
                )
                .with_help("shorten the step name"),
            );
        }
        match state {
            State::Parallel(p) => {
                for b in &p.branches {
                    check_state_names(flow, &b.states, diagnostics);
                }
            }
            State::Map(m) => check_state_names(flow, &m.item_processor.states, diagnostics),
            _ => {}
        }
    }
}

struct Builder<'a> {
    flow: &'a Flow,
    config: &'a SfnConfig,
    ids: &'a Identity,
    /// Split step → the join that closes it, and back.
    join_of: BTreeMap<&'a str, &'a str>,
    split_of: BTreeMap<&'a str, &'a str>,
    /// Step → the steps leading to it (a self-loop's own edge left out).
    parents: BTreeMap<&'a str, Vec<&'a str>>,
    /// First step of a foreach body → the foreach step.
    body_start_of: BTreeMap<&'a str, &'a str>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn new(flow: &'a Flow, config: &'a SfnConfig, ids: &'a Identity) -> Self {
        let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut body_start_of = BTreeMap::new();
        for step in &flow.steps {
            for target in step.transition.targets() {
                if target.step == step.name {
                    continue;
                }
                let list = parents.entry(target.step.as_str()).or_default();
                if !list.contains(&step.name.as_str()) {
                    list.push(step.name.as_str());
                }
            }
            if let Next::Foreach { to, .. } = &step.transition {
                body_start_of.insert(to.step.as_str(), step.name.as_str());
            }
        }
        let split_of = joins(flow);
        let join_of = split_of.iter().map(|(j, s)| (*s, *j)).collect();
        Builder {
            flow,
            config,
            ids,
            join_of,
            split_of,
            parents,
            body_start_of,
            diagnostics: Vec::new(),
        }
    }

    fn unsupported(&mut self, step: &Step, message: String, help: &str) {
        self.diagnostics.push(
            Diagnostic::new(&codes::UNSUPPORTED_GRAPH, step.name_span, message).with_help(help),
        );
    }

    fn is_loop(&self, step: &str) -> bool {
        self.flow.step(step).is_some_and(is_self_loop)
    }

    /// The state other states go to for `step`: its own Task state, or the Pass that
    /// starts its rounds.
    fn entry_state(&self, step: &str) -> String {
        if self.is_loop(step) {
            first_round(step)
        } else {
            step.to_owned()
        }
    }

    /// The states of the steps from `entry` on, up to (not including) `stop`, the join
    /// closing the split this machine is a branch or body of.
    fn machine(&mut self, entry: &str, stop: Option<&str>) -> (String, BTreeMap<String, State>) {
        let mut states = BTreeMap::new();
        let mut queue: VecDeque<String> = VecDeque::from([entry.to_owned()]);
        let mut seen = BTreeSet::new();
        while let Some(name) = queue.pop_front() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let flow = self.flow;
            let Some(step) = flow.step(&name) else {
                continue;
            };
            self.step_states(step, stop, &mut states, &mut queue);
        }
        (self.entry_state(entry), states)
    }

    /// Where control goes after step `from` when it leads to `target`: the target's
    /// entry, the end of this machine when `target` is the join closing it, or first a
    /// Pass recording `from` as the parent that ran, when the target needs to know.
    fn goto(
        &self,
        from: &str,
        target: &str,
        stop: Option<&str>,
        states: &mut BTreeMap<String, State>,
        queue: &mut VecDeque<String>,
    ) -> Transition {
        let ends_machine = Some(target) == stop;
        let transition = if ends_machine {
            Transition::End(true)
        } else {
            queue.push_back(target.to_owned());
            Transition::Next(self.entry_state(target))
        };
        // The split itself goes on to its join after its Parallel or Map, which
        // gathered the parents already.
        let from_split = self.split_of.get(target) == Some(&from);
        if from_split || !self.parent_known_at_run_time(target) {
            return transition;
        }
        let mut parameters = BTreeMap::new();
        parameters.insert(
            "task.$".to_owned(),
            PayloadValue::Text(format(&self.task_of(from, false))),
        );
        let key = format!("$.parent_{target}");
        states.insert(
            self::from(target, from),
            State::Pass(PassState {
                comment: None,
                parameters: Some(parameters),
                result: None,
                result_path: Some(ResultPath::At(key.clone())),
                // A branch or split hands only its last task to the join.
                output_path: ends_machine.then_some(key),
                transition,
            }),
        );
        Transition::Next(self::from(target, from))
    }

    /// Whether `step`'s input paths come from the task recorded on the way in: a step
    /// reached from several steps that is not a join, or a join whose branches or
    /// splits do not each end in one known plain step.
    fn parent_known_at_run_time(&self, step: &str) -> bool {
        let parents = self.parents.get(step).map_or(&[][..], Vec::as_slice);
        let Some(split) = self.split_of.get(step) else {
            return parents.len() > 1 && !self.body_start_of.contains_key(step);
        };
        if parents.iter().any(|p| self.is_loop(p)) {
            return true;
        }
        match self.flow.step(split).map(|s| &s.transition) {
            Some(Next::Foreach { .. }) => parents.len() != 1,
            // Arms are disjoint up to the join: one parent per arm means each arm ends
            // in its own known step.
            Some(Next::Branch { to }) => parents.len() != to.len(),
            _ => false,
        }
    }

    /// `STEP/TASK` of `step`'s task in this scope (with the run first when `with_run`),
    /// as `States.Format` parts.
    fn task_of(&self, step: &str, with_run: bool) -> Vec<Arg> {
        let mut parts = Vec::new();
        if with_run {
            parts.push(Arg::path(RUN_ID));
            parts.push(Arg::lit(format!("/{step}/")));
        } else {
            parts.push(Arg::lit(format!("{step}/")));
        }
        parts.push(Arg::path(TASK_ID));
        if self.is_loop(step) {
            parts.extend([Arg::lit(".r"), Arg::path(format!("$.loop_{step}.round"))]);
        }
        parts
    }

    fn step_states(
        &mut self,
        step: &'a Step,
        stop: Option<&str>,
        states: &mut BTreeMap<String, State>,
        queue: &mut VecDeque<String>,
    ) {
        let name = step.name.as_str();
        let looping = is_self_loop(step);
        let after = match &step.transition {
            Next::End => Transition::End(true),
            Next::Linear { to } => self.goto(name, &to.step, stop, states, queue),
            Next::Branch { to } => match self.join_of.get(name).copied() {
                Some(join) => {
                    let branches = to
                        .iter()
                        .map(|target| {
                            let (start_at, states) = self.machine(&target.step, Some(join));
                            StateMachine {
                                comment: None,
                                start_at,
                                states,
                            }
                        })
                        .collect();
                    let transition = self.goto(name, join, stop, states, queue);
                    let gathered = self.parent_known_at_run_time(join);
                    states.insert(
                        branch(name),
                        State::Parallel(ParallelState {
                            comment: None,
                            branches,
                            result_selector: gathered.then(gather_tasks),
                            result_path: if gathered {
                                ResultPath::At(format!("$.join_{join}"))
                            } else {
                                ResultPath::Discard
                            },
                            transition,
                        }),
                    );
                    Transition::Next(branch(name))
                }
                None => {
                    self.unclosed(step);
                    Transition::End(true)
                }
            },
            Next::Foreach { to, .. } => match self.join_of.get(name).copied() {
                Some(join) => {
                    let after_map = self.goto(name, join, stop, states, queue);
                    self.foreach_states(step, &to.step, join, after_map, states)
                }
                None => {
                    self.unclosed(step);
                    Transition::End(true)
                }
            },
            Next::Switch { cases, .. } => {
                let mut targets: Vec<&str> = Vec::new();
                for case in cases {
                    if !targets.contains(&case.target.step.as_str()) {
                        targets.push(case.target.step.as_str());
                    }
                }
                let mut choices = Vec::new();
                for target in targets {
                    let next = if target == name {
                        next_round(name)
                    } else {
                        match self.goto(name, target, stop, states, queue) {
                            Transition::Next(next) => next,
                            Transition::End(_) => {
                                // A Choice cannot end a machine: only a recorded parent
                                // (a Pass) can stand between a case and the join.
                                self.unsupported(
                                    step,
                                    format!("a case of the switch of `{name}` goes straight to the join `{target}`"),
                                    "put a step between the switch and the join",
                                );
                                continue;
                            }
                        }
                    };
                    choices.push(ChoiceRule {
                        variable: format!("$.switch_{name}.step"),
                        string_equals: target.to_owned(),
                        next,
                    });
                }
                states.insert(
                    read_choice(name),
                    self.read_output(
                        name,
                        looping,
                        "switch_step",
                        ("step.$", "$.Body".to_owned()),
                        &format!("$.switch_{name}"),
                        Transition::Next(choose(name)),
                    ),
                );
                states.insert(
                    choose(name),
                    State::Choice(ChoiceState {
                        comment: Some(format!("the step `{name}` chose")),
                        choices,
                    }),
                );
                if looping {
                    states.insert(next_round(name), self.next_round_state(name));
                }
                Transition::Next(read_choice(name))
            }
        };
        if looping {
            let first = self.first_round_state(step);
            states.insert(first_round(name), first);
        }
        let task = self.task_state(step, looping, after);
        states.insert(name.to_owned(), task);
        states.insert(
            failed(name),
            State::Fail(FailState {
                comment: None,
                error: STEP_FAILED.to_owned(),
                cause: format!("step `{name}` failed: see the log of its AWS Batch job"),
            }),
        );
    }

    fn unclosed(&mut self, step: &Step) {
        self.unsupported(
            step,
            format!("the split of step `{}` has no join", step.name),
            "close every branch and foreach with a join step",
        );
    }

    /// The Map of a foreach (after reading the item list, for an inline Map) and the
    /// read of its width; returns where the foreach step's Task goes.
    fn foreach_states(
        &mut self,
        step: &Step,
        target: &str,
        join: &str,
        after_map: Transition,
        states: &mut BTreeMap<String, State>,
    ) -> Transition {
        let name = step.name.as_str();
        let (start_at, body) = self.machine(target, Some(join));
        let mut selector = BTreeMap::new();
        selector.insert("run_id.$".to_owned(), RUN_ID.to_owned());
        selector.insert(
            "task_id.$".to_owned(),
            format(&[
                Arg::path(TASK_ID),
                Arg::lit("-"),
                Arg::path("$$.Map.Item.Value"),
            ]),
        );
        selector.insert("parent_task_id.$".to_owned(), TASK_ID.to_owned());
        selector.insert(
            "split_index.$".to_owned(),
            format(&[Arg::path("$$.Map.Item.Value")]),
        );
        let max_concurrency = self.config.max_concurrency.unwrap_or(0);
        let inline = self.config.map_mode == MapMode::Inline;
        // A join whose splits may end in different steps gets their last tasks from
        // the iterations' outputs; otherwise one range over the width names them.
        let gathered = self.parent_known_at_run_time(join);
        if inline {
            let limit = match max_concurrency {
                0 => INLINE_MAP_CONCURRENCY,
                n => n.min(INLINE_MAP_CONCURRENCY),
            };
            if let Some(width) = self.config.foreach_widths.get(name) {
                if *width > u64::from(limit) {
                    self.diagnostics.push(
                        Diagnostic::new(
                            &codes::INLINE_MAP_TOO_WIDE,
                            step.transition_span.unwrap_or(step.name_span),
                            format!(
                                "the foreach of step `{name}` is expected to have {width} splits, more than the {limit} its inline Map runs at once"
                            ),
                        )
                        .with_help(if *width <= u64::from(INLINE_MAP_CONCURRENCY) {
                            format!("raise max_concurrency to {width}, or use a distributed Map (map_mode = \"distributed\")")
                        } else {
                            format!("use a distributed Map (map_mode = \"distributed\"): an inline Map runs at most {INLINE_MAP_CONCURRENCY} iterations at once")
                        }),
                    );
                }
            }
        }
        let (processor, items_path, item_reader, result_writer, catch) = if inline {
            (
                ProcessorConfig {
                    mode: "INLINE".to_owned(),
                    execution_type: None,
                },
                Some(format!("$.items_{name}.items")),
                None,
                None,
                Vec::new(),
            )
        } else {
            (
                ProcessorConfig {
                    mode: "DISTRIBUTED".to_owned(),
                    execution_type: Some("STANDARD".to_owned()),
                },
                None,
                Some(ItemReader {
                    resource: ITEM_READER.to_owned(),
                    reader_config: ReaderConfig {
                        input_type: "JSON".to_owned(),
                    },
                    parameters: GetObject {
                        bucket: self.ids.bucket.clone(),
                        key: self.output_key(name, false, "foreach_items.json"),
                    },
                }),
                // The children's outputs go to S3 unless the join needs them.
                (!gathered).then(|| ResultWriter {
                    resource: RESULT_WRITER.to_owned(),
                    parameters: PutObjectPrefix {
                        bucket: self.ids.bucket.clone(),
                        prefix: self.output_key(name, false, "map-results"),
                    },
                }),
                // A failed child fails the Map with a generic error: name the step.
                vec![Catcher {
                    error_equals: vec!["States.ALL".to_owned()],
                    result_path: "$.error".to_owned(),
                    next: foreach_failed(name),
                }],
            )
        };
        if !catch.is_empty() {
            states.insert(
                foreach_failed(name),
                State::Fail(FailState {
                    comment: None,
                    error: STEP_FAILED.to_owned(),
                    cause: format!(
                        "a task in the foreach of step `{name}` failed: see the Map Run's failed child executions"
                    ),
                }),
            );
        }
        states.insert(
            foreach(name),
            State::Map(Box::new(MapState {
                comment: Some(format!(
                    "one iteration per split of `{name}`, over `{target}` up to `{join}`"
                )),
                item_processor: ItemProcessor {
                    processor_config: processor,
                    start_at,
                    states: body,
                },
                items_path,
                item_reader,
                item_selector: selector,
                max_concurrency,
                result_writer,
                label: None,
                result_selector: gathered.then(gather_tasks),
                result_path: if gathered {
                    ResultPath::At(format!("$.join_{join}"))
                } else {
                    ResultPath::Discard
                },
                catch,
                transition: if gathered {
                    after_map.clone()
                } else {
                    Transition::Next(read_splits(name))
                },
            })),
        );
        if !gathered {
            states.insert(
                read_splits(name),
                self.read_output(
                    name,
                    false,
                    "num_splits",
                    ("count.$", "$.Body".to_owned()),
                    &format!("$.splits_{name}"),
                    after_map,
                ),
            );
        }
        if inline {
            states.insert(
                read_items(name),
                self.read_output(
                    name,
                    false,
                    "foreach_items.json",
                    ("items.$", "States.StringToJson($.Body)".to_owned()),
                    &format!("$.items_{name}"),
                    Transition::Next(foreach(name)),
                ),
            );
            Transition::Next(read_items(name))
        } else {
            Transition::Next(foreach(name))
        }
    }

    /// The S3 key of one of a task's outputs, as an intrinsic over the context.
    fn output_key(&self, step: &str, looping: bool, file: &str) -> String {
        let mut parts = vec![
            Arg::lit(format!("{}{}/runs/", self.ids.key_prefix(), self.flow.name)),
            Arg::path(RUN_ID),
            Arg::lit(format!("/{step}/")),
            Arg::path(TASK_ID),
        ];
        if looping {
            parts.extend([Arg::lit(".r"), Arg::path(format!("$.loop_{step}.round"))]);
        }
        parts.push(Arg::lit(format!("/outputs/{file}")));
        format(&parts)
    }

    /// A Task state reading one output of a step's task into the context at `at`.
    fn read_output(
        &self,
        step: &str,
        looping: bool,
        file: &str,
        select: (&str, String),
        at: &str,
        transition: Transition,
    ) -> State {
        State::Task(Box::new(TaskState {
            comment: None,
            resource: S3_GET_OBJECT.to_owned(),
            parameters: TaskParameters::GetObject(GetObject {
                bucket: self.ids.bucket.clone(),
                key: self.output_key(step, looping, file),
            }),
            result_selector: Some(BTreeMap::from([(select.0.to_owned(), select.1)])),
            result_path: ResultPath::At(at.to_owned()),
            timeout_seconds: None,
            retry: Vec::new(),
            catch: Vec::new(),
            transition,
        }))
    }

    /// The Pass starting a self-looping step's rounds: round 0, after its parent.
    fn first_round_state(&mut self, step: &Step) -> State {
        let mut parameters = BTreeMap::new();
        parameters.insert("round".to_owned(), PayloadValue::Int(0));
        if step.name == self.flow.start_step {
            parameters.insert("input_paths".to_owned(), PayloadValue::Text(String::new()));
        } else {
            let paths = self.input_paths(step);
            parameters.insert("input_paths.$".to_owned(), PayloadValue::Text(paths));
        }
        State::Pass(PassState {
            comment: None,
            parameters: Some(parameters),
            result: None,
            result_path: Some(ResultPath::At(format!("$.loop_{}", step.name))),
            output_path: None,
            transition: Transition::Next(step.name.clone()),
        })
    }

    /// The Pass moving a self-looping step to its next round, whose parent is the
    /// round before.
    fn next_round_state(&self, name: &str) -> State {
        let round = format!("$.loop_{name}.round");
        let mut parameters = BTreeMap::new();
        parameters.insert(
            "round.$".to_owned(),
            PayloadValue::Text(format!("States.MathAdd({round}, 1)")),
        );
        parameters.insert(
            "input_paths.$".to_owned(),
            PayloadValue::Text(format(&[
                Arg::path(RUN_ID),
                Arg::lit(format!("/{name}/")),
                Arg::path(TASK_ID),
                Arg::lit(".r"),
                Arg::path(round),
            ])),
        );
        State::Pass(PassState {
            comment: None,
            parameters: Some(parameters),
            result: None,
            result_path: Some(ResultPath::At(format!("$.loop_{name}"))),
            output_path: None,
            transition: Transition::Next(name.to_owned()),
        })
    }

    /// `--input-paths` of a step that is not the start step, as an intrinsic.
    fn input_paths(&mut self, step: &Step) -> String {
        let name = step.name.as_str();
        if let Some(split) = self.body_start_of.get(name) {
            return format(&[
                Arg::path(RUN_ID),
                Arg::lit(format!("/{split}/")),
                Arg::path(PARENT_TASK_ID),
            ]);
        }
        let parents = self.parents.get(name).cloned().unwrap_or_default();
        let split = self.split_of.get(name).copied();
        if self.parent_known_at_run_time(name) {
            return match split {
                // `RUN/["STEP/TASK", ...]`, which the shim expands.
                Some(_) => format(&[
                    Arg::path(RUN_ID),
                    Arg::lit("/"),
                    Arg::path(format!("States.JsonToString($.join_{name}.tasks)")),
                ]),
                None => format(&[
                    Arg::path(RUN_ID),
                    Arg::lit("/"),
                    Arg::path(format!("$.parent_{name}.task")),
                ]),
            };
        }
        let is_foreach_join = split.is_some_and(|split| {
            matches!(
                self.flow.step(split).map(|s| &s.transition),
                Some(Next::Foreach { .. })
            )
        });
        match (split, parents.as_slice()) {
            // The body's tasks have ids `<task_id>-<index>`: one range names them all.
            (Some(split), [last]) if is_foreach_join => format(&[
                Arg::path(RUN_ID),
                Arg::lit(format!("/{last}/")),
                Arg::path(TASK_ID),
                Arg::lit("-:"),
                Arg::path(format!("$.splits_{split}.count")),
            ]),
            _ => {
                let mut parts = Vec::new();
                for (i, parent) in parents.iter().enumerate() {
                    if i > 0 {
                        parts.push(Arg::lit(","));
                    }
                    parts.extend(self.task_of(parent, true));
                }
                format(&parts)
            }
        }
    }

    /// The Task state running one step.
    fn task_state(&mut self, step: &Step, looping: bool, transition: Transition) -> State {
        let name = step.name.as_str();
        let spec = &step.spec;
        let task_id = if looping {
            format(&[
                Arg::path(TASK_ID),
                Arg::lit(".r"),
                Arg::path(format!("$.loop_{name}.round")),
            ])
        } else {
            TASK_ID.to_owned()
        };
        let mut command = vec![Arg::lit(&self.config.shim_path), Arg::lit("task")];
        command.extend(
            shim_common(self.flow, self.config)
                .into_iter()
                .map(Arg::Lit),
        );
        command.extend([
            Arg::lit("--run-id"),
            Arg::path(RUN_ID),
            Arg::lit("--step"),
            Arg::lit(name),
            Arg::lit("--task-id"),
            Arg::path(task_id),
        ]);
        if looping {
            command.extend([
                Arg::lit("--input-paths"),
                Arg::path(format!("$.loop_{name}.input_paths")),
            ]);
        } else if name != self.flow.start_step {
            let paths = self.input_paths(step);
            command.extend([Arg::lit("--input-paths"), Arg::path(paths)]);
        }
        if self.body_start_of.contains_key(name) {
            command.extend([Arg::lit("--split-index"), Arg::path(SPLIT_INDEX)]);
        }
        let mut retry = Vec::new();
        if let Some(r) = &spec.retry {
            command.extend([
                Arg::lit("--retry-count"),
                Arg::path(format(&[Arg::path("$$.State.RetryCount")])),
                Arg::lit("--max-user-code-retries"),
                Arg::lit(r.times.to_string()),
            ]);
            if r.times > 0 {
                retry.push(Retrier {
                    error_equals: vec!["States.ALL".to_owned()],
                    interval_seconds: (u64::from(r.minutes_between) * 60).max(1),
                    max_attempts: r.times,
                    // Metaflow waits the same time before every retry.
                    backoff_rate: 1.0,
                });
            }
        }
        if writes_outputs(step) {
            command.push(Arg::lit("--write-outputs"));
        }
        let overrides = ContainerOverrides {
            command: array(&command),
        };
        let size = serde_json::to_string(&overrides).map_or(0, |t| t.len());
        if size > MAX_OVERRIDES {
            self.diagnostics.push(
                Diagnostic::new(
                    &codes::OVERRIDES_TOO_LARGE,
                    step.name_span,
                    format!(
                        "the container overrides of step `{name}` are {size} characters, over the {MAX_OVERRIDES} AWS Batch accepts"
                    ),
                )
                .with_help("shorten the datastore root, the code package entry or the step's join list"),
            );
        }
        let job = self.ids.job_name(name);
        let queue = match &spec.compute {
            flowc_ir::Compute::Batch(b) => b.queue.clone(),
            _ => None,
        }
        .unwrap_or_else(|| self.config.job_queue.clone());
        State::Task(Box::new(TaskState {
            comment: None,
            resource: BATCH_SUBMIT.to_owned(),
            parameters: TaskParameters::SubmitJob(SubmitJob {
                job_name: job.clone(),
                job_queue: queue,
                job_definition: job,
                container_overrides: overrides,
            }),
            result_selector: None,
            result_path: ResultPath::Discard,
            timeout_seconds: spec.timeout.as_ref().map(|t| t.seconds),
            retry,
            catch: vec![Catcher {
                error_equals: vec!["States.ALL".to_owned()],
                result_path: "$.error".to_owned(),
                next: failed(name),
            }],
            transition,
        }))
    }

    /// The states before the start step: the parameters' defaults merged with the
    /// execution's input, the context, and `flowc-shim init`.
    fn init_states(&mut self, start_at: &str, states: &mut BTreeMap<String, State>) {
        let defaults: BTreeMap<String, PlainJson> = self
            .flow
            .parameters
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.default.as_ref()?.to_plain_json()?)))
            .collect();
        states.insert(
            DEFAULTS_STATE.to_owned(),
            State::Pass(PassState {
                comment: Some(
                    "the parameters' defaults; values the run must evaluate are left to it"
                        .to_owned(),
                ),
                parameters: None,
                result: Some(defaults),
                result_path: Some(ResultPath::At("$".to_owned())),
                output_path: None,
                transition: Transition::Next(START_STATE.to_owned()),
            }),
        );
        let mut context = BTreeMap::new();
        context.insert(
            "run_id.$".to_owned(),
            PayloadValue::Text("$$.Execution.Name".to_owned()),
        );
        context.insert(
            "task_id".to_owned(),
            PayloadValue::Text(ROOT_TASK_ID.to_owned()),
        );
        // The execution's input wins over the defaults.
        context.insert(
            "parameters.$".to_owned(),
            PayloadValue::Text("States.JsonMerge($, $$.Execution.Input, false)".to_owned()),
        );
        states.insert(
            START_STATE.to_owned(),
            State::Pass(PassState {
                comment: None,
                parameters: Some(context),
                result: None,
                result_path: None,
                output_path: None,
                transition: Transition::Next(INIT_STATE.to_owned()),
            }),
        );
        let mut command = vec![Arg::lit(&self.config.shim_path), Arg::lit("init")];
        command.extend(
            shim_common(self.flow, self.config)
                .into_iter()
                .map(Arg::Lit),
        );
        command.extend([
            Arg::lit("--run-id"),
            Arg::path(RUN_ID),
            Arg::lit("--params-json"),
            Arg::path("States.JsonToString($.parameters)"),
        ]);
        let job = self.ids.job_name(INIT_JOB);
        states.insert(
            INIT_STATE.to_owned(),
            State::Task(Box::new(TaskState {
                comment: Some("stores the run's parameters".to_owned()),
                resource: BATCH_SUBMIT.to_owned(),
                parameters: TaskParameters::SubmitJob(SubmitJob {
                    job_name: job.clone(),
                    job_queue: self.config.job_queue.clone(),
                    job_definition: job,
                    container_overrides: ContainerOverrides {
                        command: array(&command),
                    },
                }),
                result_selector: None,
                result_path: ResultPath::Discard,
                timeout_seconds: None,
                retry: Vec::new(),
                catch: vec![Catcher {
                    error_equals: vec!["States.ALL".to_owned()],
                    result_path: "$.error".to_owned(),
                    next: failed(INIT_STATE),
                }],
                transition: Transition::Next(start_at.to_owned()),
            })),
        );
        states.insert(
            failed(INIT_STATE),
            State::Fail(FailState {
                comment: None,
                error: STEP_FAILED.to_owned(),
                cause: "storing the run's parameters failed: see the log of its AWS Batch job"
                    .to_owned(),
            }),
        );
    }
}

/// The ResultSelector of a Parallel or Map whose branches or iterations each end in a
/// Pass handing on `{task}`: the list of those tasks, in branch or split order.
fn gather_tasks() -> BTreeMap<String, String> {
    BTreeMap::from([("tasks.$".to_owned(), "$[*].task".to_owned())])
}

/// Join step → the split step it closes, walking the graph from the start step with
/// the stack of open splits (a checked flow reaches each step with one stack).
fn joins(flow: &Flow) -> BTreeMap<&str, &str> {
    let mut joins = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut work: Vec<(&str, Vec<&str>)> = vec![(flow.start_step.as_str(), Vec::new())];
    while let Some((name, mut open)) = work.pop() {
        if !seen.insert(name) {
            continue;
        }
        let Some(step) = flow.step(name) else {
            continue;
        };
        if step.is_join {
            if let Some(split) = open.pop() {
                joins.insert(name, split);
            }
        }
        if matches!(step.transition, Next::Branch { .. } | Next::Foreach { .. }) {
            open.push(name);
        }
        for target in step.transition.targets().into_iter().rev() {
            work.push((target.step.as_str(), open.clone()));
        }
    }
    joins
}
