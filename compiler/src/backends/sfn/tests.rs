//! Unit tests of the Step Functions and Batch lowering on small inline flows; the
//! fixture flows' documents are snapshot-tested and validated in `tests/sfn.rs`.

use std::collections::BTreeMap;

use super::types::{State, TaskParameters, Transition};
use super::*;
use crate::FrontendOptions;

fn config() -> SfnConfig {
    SfnConfig {
        image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flowc:1".to_owned(),
        shim_path: "/usr/local/bin/flowc-shim".to_owned(),
        job_queue: "flowc-queue".to_owned(),
        job_role: Some("arn:aws:iam::123456789012:role/flowc-job".to_owned()),
        execution_role: Some("arn:aws:iam::123456789012:role/flowc-exec".to_owned()),
        datastore_root: "s3://bucket/store".to_owned(),
        region: Some("eu-west-1".to_owned()),
        account: Some("123456789012".to_owned()),
        schedule_role: Some("arn:aws:iam::123456789012:role/flowc-scheduler".to_owned()),
        platform: Platform::Ec2,
        map_mode: MapMode::Distributed,
        max_concurrency: None,
        foreach_widths: BTreeMap::new(),
        code_package: CodePackageRef {
            hash: "ab".repeat(32),
            entry: "flow.py".to_owned(),
        },
        user: Some("alice".to_owned()),
        flowc_version: "0.1.0".to_owned(),
    }
}

fn flow(source: &str) -> Flow {
    let checked = crate::check("flow.py", source, &FrontendOptions::default());
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    checked.flow.expect("a flow")
}

fn task<'a>(states: &'a BTreeMap<String, State>, name: &str) -> &'a types::TaskState {
    match states.get(name) {
        Some(State::Task(task)) => task,
        other => panic!("`{name}` is not a Task: {other:?}"),
    }
}

fn command(task: &types::TaskState) -> &str {
    match &task.parameters {
        TaskParameters::SubmitJob(job) => &job.container_overrides.command,
        TaskParameters::GetObject(_) => panic!("not a Batch job"),
    }
}

const FOREACH: &str = r#"
from metaflow import FlowSpec, step, retry

class WideFlow(FlowSpec):
    @step
    def start(self):
        self.xs = [1, 2, 3]
        self.next(self.work, foreach="xs")

    @retry(times=2, minutes_between_retries=1)
    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    WideFlow()
"#;

#[test]
fn a_foreach_is_a_distributed_map_reading_the_shims_item_list() {
    let docs = sfn(&flow(FOREACH), &config()).unwrap();
    let states = &docs.state_machine.states;
    assert_eq!(docs.state_machine.start_at, "flowc.defaults");
    let Some(State::Map(map)) = states.get("start.foreach") else {
        panic!("no Map: {states:?}");
    };
    let reader = map.item_reader.as_ref().expect("an ItemReader");
    assert_eq!(reader.parameters.bucket, "bucket");
    assert_eq!(
        reader.parameters.key,
        "States.Format('store/WideFlow/runs/{}/start/{}/outputs/foreach_items.json', $.run_id, $.task_id)"
    );
    assert_eq!(map.item_processor.processor_config.mode, "DISTRIBUTED");
    assert_eq!(
        map.item_selector["task_id.$"],
        "States.Format('{}-{}', $.task_id, $$.Map.Item.Value)"
    );
    // The body's one step ends the iteration; the join follows the width read.
    let work = task(&map.item_processor.states, "work");
    assert_eq!(work.transition, Transition::End(true));
    assert!(command(work).contains("'--split-index', $.split_index"));
    assert!(command(work)
        .contains("'--input-paths', States.Format('{}/start/{}', $.run_id, $.parent_task_id)"));
    assert_eq!(work.retry.len(), 1);
    assert_eq!(work.retry[0].max_attempts, 2);
    assert_eq!(work.retry[0].interval_seconds, 60);
    let join = task(states, "join");
    assert!(command(join)
        .contains("States.Format('{}/work/{}-:{}', $.run_id, $.task_id, $.splits_start.count)"));
    assert!(command(task(states, "start")).ends_with("'--write-outputs')"));
}

#[test]
fn an_inline_map_reads_its_items_into_the_state_and_reports_a_known_width() {
    let mut config = config();
    config.map_mode = MapMode::Inline;
    config.max_concurrency = Some(8);
    let docs = sfn(&flow(FOREACH), &config).unwrap();
    let states = &docs.state_machine.states;
    assert_eq!(
        task(states, "start").transition,
        Transition::Next("start.read-items".to_owned())
    );
    let Some(State::Map(map)) = states.get("start.foreach") else {
        panic!("no Map");
    };
    assert_eq!(map.items_path.as_deref(), Some("$.items_start.items"));
    assert_eq!(map.max_concurrency, 8);
    assert!(map.item_reader.is_none());

    config.foreach_widths.insert("start".to_owned(), 9);
    let errors = sfn(&flow(FOREACH), &config).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, "flowc::sfn::inline-map-too-wide");
    assert!(
        errors[0].message.contains("9 splits"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_self_looping_switch_counts_rounds_and_reads_the_choice() {
    let source = r#"
from metaflow import FlowSpec, step

class LoopFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.status = "done"
        self.next({"again": self.train, "done": self.end}, condition="status")

    @step
    def end(self):
        pass
"#;
    let docs = sfn(&flow(source), &config()).unwrap();
    let states = &docs.state_machine.states;
    assert_eq!(
        task(states, "start").transition,
        Transition::Next("train.first-round".to_owned())
    );
    let train = command(task(states, "train"));
    assert!(train.contains("States.Format('{}.r{}', $.task_id, $.loop_train.round)"));
    assert!(train.contains("'--input-paths', $.loop_train.input_paths"));
    let Some(State::Choice(choice)) = states.get("train.choose") else {
        panic!("no Choice");
    };
    let nexts: Vec<&str> = choice.choices.iter().map(|c| c.next.as_str()).collect();
    assert_eq!(nexts, ["train.next-round", "end"]);
    let read = task(states, "train.read-choice");
    match &read.parameters {
        TaskParameters::GetObject(get) => assert_eq!(
            get.key,
            "States.Format('store/LoopFlow/runs/{}/train/{}.r{}/outputs/switch_step', $.run_id, $.task_id, $.loop_train.round)"
        ),
        other => panic!("{other:?}"),
    }
    assert!(command(task(states, "end"))
        .contains("States.Format('{}/train/{}.r{}', $.run_id, $.task_id, $.loop_train.round)"));
}

#[test]
fn long_names_are_reported_not_cut() {
    let long = "s".repeat(130);
    let source = format!(
        "from metaflow import FlowSpec, step\n\nclass F(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.{long})\n\n    @step\n    def {long}(self):\n        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n"
    );
    let errors = sfn(&flow(&source), &config()).unwrap_err();
    let codes: std::collections::BTreeSet<&str> = errors.iter().map(|d| d.code).collect();
    assert!(
        codes.contains("flowc::sfn::state-name-too-long"),
        "{codes:?}"
    );
    assert!(codes.contains("flowc::batch::name-too-long"), "{codes:?}");
    let batch_errors = batch(&flow(&source), &config()).unwrap_err();
    assert!(batch_errors
        .iter()
        .all(|d| d.code == "flowc::batch::name-too-long"));
}

#[test]
fn a_huge_datastore_root_overflows_the_container_overrides_and_the_definition() {
    let mut config = config();
    config.datastore_root = format!("s3://bucket/{}", "p".repeat(9000));
    let errors = sfn(&flow(FOREACH), &config).unwrap_err();
    let codes: std::collections::BTreeSet<&str> = errors.iter().map(|d| d.code).collect();
    assert!(
        codes.contains("flowc::sfn::container-overrides-too-large"),
        "{codes:?}"
    );
    config.datastore_root = format!("s3://bucket/{}", "p".repeat(200_000));
    let errors = sfn(&flow(FOREACH), &config).unwrap_err();
    assert!(errors
        .iter()
        .any(|d| d.code == "flowc::sfn::definition-too-large"));
}

#[test]
fn fargate_rounds_resources_up_and_refuses_gpus() {
    let source = r#"
from metaflow import FlowSpec, step, resources

class GpuFlow(FlowSpec):
    @resources(cpu=3, memory=5000)
    @step
    def start(self):
        self.next(self.end)

    @resources(gpu=1)
    @step
    def end(self):
        pass
"#;
    let mut config = config();
    config.platform = Platform::Fargate;
    let errors = batch(&flow(source), &config).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("GPUs"), "{}", errors[0].message);
    config.platform = Platform::Ec2;
    let defs = batch(&flow(source), &config).unwrap();
    let start = &defs.job_definitions[1];
    assert_eq!(start.job_definition_name, "GpuFlow-start");
    let values: Vec<(&str, &str)> = start
        .container_properties
        .resource_requirements
        .iter()
        .map(|r| (r.kind.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(values, [("VCPU", "3"), ("MEMORY", "5000")]);
}

#[test]
fn a_schedule_needs_its_target_settings() {
    let source = r#"
from metaflow import FlowSpec, step, schedule

@schedule(daily=True)
class DailyFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let docs = sfn(&flow(source), &config()).unwrap();
    let schedule = docs.schedule.expect("a schedule");
    assert_eq!(schedule.schedule_expression, "cron(0 0 * * ? *)");
    assert_eq!(
        schedule.target.arn,
        "arn:aws:states:eu-west-1:123456789012:stateMachine:DailyFlow"
    );
    let mut config = config();
    config.schedule_role = None;
    let errors = sfn(&flow(source), &config).unwrap_err();
    assert_eq!(errors[0].code, "flowc::sfn::bad-schedule");
}

#[test]
fn a_join_whose_branches_end_in_different_steps_gathers_the_tasks_that_ran() {
    let source = r#"
from metaflow import FlowSpec, step

class ArmsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.check, self.profile)

    @step
    def check(self):
        self.verdict = "ok"
        self.next({"ok": self.accept, "bad": self.audit}, condition="verdict")

    @step
    def accept(self):
        self.next(self.decide)

    @step
    def audit(self):
        self.next(self.decide)

    @step
    def profile(self):
        self.next(self.decide)

    @step
    def decide(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let docs = sfn(&flow(source), &config()).unwrap();
    let states = &docs.state_machine.states;
    let Some(State::Parallel(parallel)) = states.get("start.branch") else {
        panic!("no Parallel");
    };
    assert_eq!(
        parallel
            .result_selector
            .as_ref()
            .map(|s| s["tasks.$"].as_str()),
        Some("$[*].task")
    );
    assert_eq!(
        parallel.result_path,
        types::ResultPath::At("$.join_decide".to_owned())
    );
    // Each arm ends in a Pass handing on the task that ran.
    let arm = &parallel.branches[0].states;
    assert_eq!(
        task(arm, "accept").transition,
        Transition::Next("decide.from-accept".to_owned())
    );
    let Some(State::Pass(pass)) = arm.get("decide.from-accept") else {
        panic!("no Pass");
    };
    assert_eq!(pass.output_path.as_deref(), Some("$.parent_decide"));
    assert_eq!(pass.transition, Transition::End(true));
    assert!(command(task(states, "decide")).contains(
        "'--input-paths', States.Format('{}/{}', $.run_id, States.JsonToString($.join_decide.tasks))"
    ));
    // The split itself goes straight on to the join.
    assert_eq!(parallel.transition, Transition::Next("decide".to_owned()));
}
