//! Behaviour of the Argo lowering on small flows written for each rule.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::*;
use crate::FrontendOptions;

fn config() -> ArgoConfig {
    ArgoConfig {
        image: "python:3.12".to_owned(),
        namespace: None,
        service_account: None,
        datastore_root: "s3://bucket/store".to_owned(),
        shim_image: "flowc-shim:test".to_owned(),
        labels: BTreeMap::new(),
        code_package: CodePackageRef {
            hash: "ab".repeat(32),
            entry: "flow.py".to_owned(),
        },
        user: None,
        event_source: "flowc-events".to_owned(),
        event_webhook_url: None,
        flowc_version: "0.0.0".to_owned(),
    }
}

fn compile(source: &str) -> Result<Vec<Document>, Vec<Diagnostic>> {
    let checked = crate::check("flow.py", source, &FrontendOptions::default());
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    argo(&checked.flow.expect("a flow"), &config())
}

/// The documents as YAML, read back as plain data: what Kubernetes would see.
fn reread(docs: &[Document]) -> Vec<Json> {
    docs.iter()
        .map(|d| serde_norway::from_str(&crate::emit::yaml(d).unwrap()).unwrap())
        .collect()
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<&str> {
    diagnostics.iter().map(|d| d.code).collect()
}

fn linear(params: &str) -> String {
    format!(
        r#"from metaflow import FlowSpec, Parameter, JSONType, step

class F(FlowSpec):
{params}
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#
    )
}

/// `linear("")` with a flow decorator on the class.
fn decorated(decorator: &str) -> String {
    linear("").replace(
        "class F(",
        &format!("from metaflow import schedule\n\n{decorator}\nclass F("),
    )
}

fn arguments(doc: &Json) -> BTreeMap<String, Option<String>> {
    doc["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p.get("value").map(|v| v.as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

fn template<'a>(doc: &'a Json, name: &str) -> &'a Json {
    doc["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no template {name}"))
}

fn task<'a>(dag: &'a Json, name: &str) -> &'a Json {
    dag["dag"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

#[test]
fn parameter_defaults_survive_yaml_and_argo_substitution() {
    let source = linear(
        r#"    quoted = Parameter("quoted", default='say "hi": it\'s # not a comment')
    lines = Parameter("lines", default="one\ntwo\n")
    js = Parameter("js", type=JSONType, default='{"a": [1, 2], "b": "x: y"}')
    templated = Parameter("templated", default="{{workflow.name}}")
    number_like = Parameter("number-like", default="007")
    flag = Parameter("flag", default=False)
    ratio = Parameter("ratio", default=0.25)
    needed = Parameter("needed", required=True)
"#,
    );
    let docs = reread(&compile(&source).unwrap());
    let args = arguments(&docs[0]);
    let value = |name: &str| args[name].clone().unwrap();
    assert_eq!(value("quoted"), r#"say "hi": it's # not a comment"#);
    assert_eq!(value("lines"), "one\ntwo\n");
    assert_eq!(value("js"), r#"{"a": [1, 2], "b": "x: y"}"#);
    assert_eq!(value("number-like"), "007");
    assert_eq!(value("flag"), "false");
    assert_eq!(value("ratio"), "0.25");
    // Argo would substitute `{{...}}`: the default travels base64-encoded.
    assert_eq!(
        value("templated"),
        format!("{}{}", step::BASE64_PREFIX, "e3t3b3JrZmxvdy5uYW1lfX0=")
    );
    assert_eq!(args["needed"], None, "a required parameter has no default");
    // The init task passes each value through as its own argument.
    let init = template(&docs[0], graph::INIT_TEMPLATE);
    let init_args: Vec<&str> = init["container"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(init_args.contains(&"quoted={{workflow.parameters.quoted}}"));
}

#[test]
fn base64_matches_the_standard_alphabet_and_padding() {
    assert_eq!(
        step::encoded_default_text_for_tests("{{x}}"),
        "flowc:base64:e3t4fX0="
    );
    assert_eq!(
        step::encoded_default_text_for_tests("flowc:x"),
        "flowc:base64:Zmxvd2M6eA=="
    );
    assert_eq!(step::encoded_default_text_for_tests("plain"), "plain");
}

#[test]
fn step_names_are_sanitised_uniquely_and_tasks_point_at_templates() {
    let long = "a_very_long_step_name_that_goes_on_and_on_past_what_kubernetes_allows";
    let source = format!(
        r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.next(self.{long}, self.train_model)

    @step
    def {long}(self):
        self.next(self.join)

    @step
    def train_model(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#
    );
    let docs = reread(&compile(&source).unwrap());
    let names: Vec<&str> = docs[0]["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(names::is_dns_label(name, names::MAX_LABEL), "{name}");
    }
    let main = template(&docs[0], graph::MAIN_TEMPLATE);
    let join = task(main, "join");
    let depends = join["depends"].as_str().unwrap();
    for part in depends.split(" && ") {
        let name = part.trim_end_matches(".Succeeded");
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let paths = join["arguments"]["parameters"][1]["value"]
        .as_str()
        .unwrap();
    assert_eq!(
        paths,
        format!("{{{{workflow.name}}}}/{long}/t,{{{{workflow.name}}}}/train_model/t")
    );
}

#[test]
fn a_foreach_join_names_its_parents_with_one_range() {
    let source = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.items = list(range(100000))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let docs = reread(&compile(source).unwrap());
    let main = template(&docs[0], graph::MAIN_TEMPLATE);
    let fan_out = task(main, "foreach-body");
    assert_eq!(
        fan_out["withParam"],
        "{{tasks.start.outputs.parameters.foreach-items}}"
    );
    let join = task(main, "join");
    assert_eq!(join["depends"], "foreach-body.Succeeded");
    assert_eq!(
        join["arguments"]["parameters"][1]["value"],
        "{{workflow.name}}/body/t-:{{tasks.start.outputs.parameters.num-splits}}"
    );
    let start = template(&docs[0], "start");
    let outputs: Vec<&str> = start["outputs"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["valueFrom"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        outputs,
        [
            "/tmp/flowc/outputs/foreach_items.json",
            "/tmp/flowc/outputs/num_splits"
        ]
    );
}

#[test]
fn switch_cases_run_on_the_switch_steps_choice() {
    let source = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.mode = "a"
        self.next({"a": self.a, "b": self.b}, condition="mode")

    @step
    def a(self):
        self.next(self.merge)

    @step
    def b(self):
        self.next(self.merge)

    @step
    def merge(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let docs = reread(&compile(source).unwrap());
    let main = template(&docs[0], graph::MAIN_TEMPLATE);
    assert_eq!(
        task(main, "a")["when"],
        "'{{tasks.start.outputs.parameters.switch-step}}' == 'a'"
    );
    let merge = task(main, "merge");
    assert_eq!(merge["depends"], "(a.Succeeded || b.Succeeded)");
    assert_eq!(
        merge["arguments"]["parameters"][1]["value"],
        "{{workflow.name}}/{{tasks.start.outputs.parameters.switch-step}}/t"
    );
}

#[test]
fn switch_cases_meeting_after_several_steps_take_the_path_of_the_one_that_ran() {
    let source = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.mode = "a"
        self.next({"a": self.a, "b": self.b}, condition="mode")

    @step
    def a(self):
        self.next(self.a2)

    @step
    def a2(self):
        self.next(self.merge)

    @step
    def b(self):
        self.next(self.merge)

    @step
    def merge(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let docs = reread(&compile(source).unwrap());
    let main = template(&docs[0], graph::MAIN_TEMPLATE);
    // `a2` follows `a` unconditionally: skipped with it when the switch picks `b`.
    assert_eq!(task(main, "a2")["depends"], "a.Succeeded");
    assert!(task(main, "a2").get("when").is_none());
    let merge = task(main, "merge");
    assert_eq!(merge["depends"], "(a2.Succeeded || b.Succeeded)");
    assert_eq!(
        merge["arguments"]["parameters"][1]["value"],
        "{{workflow.name}}/{{=tasks['a2'].status == 'Succeeded' ? 'a2/t' : 'b/t'}}"
    );
    // Neither parent is a switch, so `depends` alone decides.
    assert!(merge.get("when").is_none());
}

#[test]
fn a_case_skipping_ahead_runs_its_target_on_either_path() {
    let source = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.mode = "a"
        self.next({"a": self.a, "skip": self.merge}, condition="mode")

    @step
    def a(self):
        self.next(self.merge)

    @step
    def merge(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let docs = reread(&compile(source).unwrap());
    let main = template(&docs[0], graph::MAIN_TEMPLATE);
    let merge = task(main, "merge");
    let chose = "(tasks['start'].status == 'Succeeded' ? tasks['start'].outputs.parameters['switch-step'] : '') == 'merge'";
    assert_eq!(merge["depends"], "(start.Succeeded || a.Succeeded)");
    assert_eq!(
        merge["when"],
        format!("{{{{={chose} || tasks['a'].status == 'Succeeded'}}}}").as_str()
    );
    assert_eq!(
        merge["arguments"]["parameters"][1]["value"],
        format!("{{{{workflow.name}}}}/{{{{={chose} ? 'start/t' : 'a/t'}}}}").as_str()
    );
}

#[test]
fn resources_become_requests_limits_and_a_memory_backed_dev_shm() {
    let source = r#"from metaflow import FlowSpec, resources, step

class F(FlowSpec):
    @resources(cpu=0.5, memory=2048, gpu=2, disk=10240, shared_memory=512)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let docs = reread(&compile(source).unwrap());
    let start = template(&docs[0], "start");
    let resources = &start["container"]["resources"];
    assert_eq!(resources["requests"]["cpu"], "500m");
    assert_eq!(resources["requests"]["memory"], "2048Mi");
    assert_eq!(resources["requests"]["ephemeral-storage"], "10240Mi");
    assert_eq!(resources["limits"]["nvidia.com/gpu"], "2");
    let shm = start["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "dshm")
        .expect("a dshm volume");
    assert_eq!(shm["emptyDir"]["medium"], "Memory");
    assert_eq!(shm["emptyDir"]["sizeLimit"], "512Mi");
    assert!(start["container"]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/dev/shm"));
}

#[test]
fn names_over_kubernetes_limits_are_reported_at_the_class_name() {
    let class = format!("F{}", "x".repeat(70));
    let source = linear("").replace("class F(", &format!("class {class}("));
    let diagnostics = compile(&source).unwrap_err();
    assert_eq!(codes(&diagnostics), ["flowc::argo::name-too-long"]);
    let at = diagnostics[0].span;
    assert_eq!(&source[at.start..at.end], class);

    let cron_class = format!("F{}", "x".repeat(55));
    let source =
        decorated("@schedule(hourly=True)").replace("class F(", &format!("class {cron_class}("));
    let diagnostics = compile(&source).unwrap_err();
    assert_eq!(codes(&diagnostics), ["flowc::argo::cron-name-too-long"]);
}

#[test]
fn an_oversized_default_is_reported_at_the_parameter() {
    let big = "x".repeat(300 * 1024);
    let source = linear(&format!(
        "    big = Parameter(\"big\", default=\"{big}\")\n"
    ));
    let diagnostics = compile(&source).unwrap_err();
    assert_eq!(
        codes(&diagnostics),
        ["flowc::argo::parameter-default-too-large"]
    );
    assert!(source[diagnostics[0].span.start..].starts_with("big = Parameter"));
}

#[test]
fn secrets_become_env_from_references_and_bad_names_are_reported() {
    let source = r#"from metaflow import FlowSpec, secrets, step

class F(FlowSpec):
    @secrets(sources=["db-credentials"])
    @step
    def start(self):
        self.next(self.end)

    @secrets(sources=["Not A Secret"])
    @step
    def end(self):
        pass
"#;
    let diagnostics = compile(source).unwrap_err();
    assert_eq!(codes(&diagnostics), ["flowc::argo::invalid-name"]);
    let fixed = source.replace("Not A Secret", "other");
    let docs = reread(&compile(&fixed).unwrap());
    assert_eq!(
        template(&docs[0], "start")["container"]["envFrom"][0]["secretRef"]["name"],
        "db-credentials"
    );
}

#[test]
fn a_cron_argo_cannot_run_is_reported_at_the_decorator() {
    let source = decorated("@schedule(cron=\"0 6 L * ? *\")");
    let diagnostics = compile(&source).unwrap_err();
    assert_eq!(codes(&diagnostics), ["flowc::argo::bad-schedule"]);
    assert!(source[diagnostics[0].span.start..].starts_with("@schedule"));
}

#[test]
fn documents_are_named_for_their_files() {
    let source = decorated("@schedule(weekly=True)");
    let docs = compile(&source).unwrap();
    let files: Vec<String> = docs.iter().map(Document::file_name).collect();
    assert_eq!(files, ["f.workflow-template.yaml", "f.cron-workflow.yaml"]);
    let cron = &reread(&docs)[1];
    assert_eq!(cron["spec"]["schedules"][0], "0 0 * * 0");
}

#[test]
fn parallel_steps_are_reported() {
    // The frontend refuses `num_parallel=`, so the flag is set on the IR directly: the
    // backend must not lower a gang-scheduled step as a plain one whatever it is given.
    let checked = crate::check("flow.py", &linear(""), &FrontendOptions::default());
    let mut flow = checked.flow.expect("a flow");
    flow.steps[0].spec.parallel = true;
    let diagnostics = argo(&flow, &config()).unwrap_err();
    assert_eq!(codes(&diagnostics), ["flowc::argo::unsupported-graph"]);
}

#[test]
fn a_finished_run_publishes_the_event_downstream_sensors_wait_for() {
    let upstream = decorated("@project(name=\"fraud\")")
        .replace("import schedule", "import project")
        .replace("class F(", "class Upstream(");
    let downstream = decorated("@trigger_on_finish(flow=\"Upstream\")\n@project(name=\"fraud\")")
        .replace("import schedule", "import project, trigger_on_finish")
        .replace("class F(", "class Downstream(");
    let published = reread(&compile(&upstream).unwrap());
    let spec = &published[0]["spec"];
    assert_eq!(spec["onExit"], "flowc-exit");
    let exit = template(&published[0], "flowc-exit");
    assert_eq!(
        exit["dag"]["tasks"][0]["when"],
        "'{{workflow.status}}' == 'Succeeded'"
    );
    let args = &template(&published[0], "flowc-publish-finished")["container"]["args"];
    assert_eq!(args[2], "http://flowc-events-eventsource-svc:12000/flowc");
    let payload: Json = serde_json::from_str(args[3].as_str().unwrap()).unwrap();
    assert_eq!(payload["payload"]["run_id"], "{{workflow.name}}");
    let sensor = reread(&compile(&downstream).unwrap())
        .into_iter()
        .find(|d| d["kind"] == "Sensor")
        .expect("a sensor");
    assert_eq!(
        sensor["spec"]["dependencies"][0]["filters"]["data"][0]["value"][0],
        payload["payload"]["name"]
    );
    assert_eq!(
        payload["payload"]["name"],
        "fraud.user.unknown.Upstream.finished"
    );
}

#[test]
fn the_webhook_url_can_be_configured() {
    let mut config = config();
    config.event_webhook_url = Some("https://events.example.com/flowc".to_owned());
    let checked = crate::check("flow.py", &linear(""), &FrontendOptions::default());
    let docs = reread(&argo(&checked.flow.expect("a flow"), &config).unwrap());
    let args = &template(&docs[0], "flowc-publish-finished")["container"]["args"];
    assert_eq!(args[2], "https://events.example.com/flowc");
}

#[test]
fn argo_yaml_gives_the_documents_with_the_text_the_emitter_writes() {
    let source = decorated("@schedule(hourly=True)");
    let checked = crate::check("flow.py", &source, &FrontendOptions::default());
    let flow = checked.flow.expect("a flow");
    let documents = argo(&flow, &config()).unwrap();
    let emitted = argo_yaml(&flow, &config()).unwrap();
    assert_eq!(documents.len(), 2, "a WorkflowTemplate and a CronWorkflow");
    assert_eq!(emitted.len(), documents.len());
    for (document, (same, text)) in documents.iter().zip(&emitted) {
        assert_eq!(document, same);
        assert_eq!(
            text.as_deref(),
            Ok(crate::emit::yaml(document).unwrap().as_str())
        );
    }
}
