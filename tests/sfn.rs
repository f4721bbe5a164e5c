//! The Step Functions and Batch targets on every valid fixture flow: a reviewed
//! snapshot of the documents, byte-identical output, strict validation of every state
//! machine (`tests/validate/asl_schema.py`, the vendored asl-validator schemas plus
//! scope rules) and every job definition (`tests/validate/batch_jobdef.py`, the
//! vendored RegisterJobDefinition model plus Batch's rules), the compile-time limits
//! as diagnostics, and the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use flowc::backends::sfn::{
    batch, sfn, CodePackageRef, MapMode, Platform, SfnConfig, SfnDocuments,
};
use flowc::FrontendOptions;
use flowc_ir::Flow;

#[allow(dead_code)]
mod support;

use support::{checked, fixtures, scratch_dir, shim, workspace_root};

fn config() -> SfnConfig {
    SfnConfig {
        image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flows:1".to_owned(),
        shim_path: "/usr/local/bin/flowc-shim".to_owned(),
        job_queue: "flowc-queue".to_owned(),
        job_role: Some("arn:aws:iam::123456789012:role/flowc-job".to_owned()),
        execution_role: Some("arn:aws:iam::123456789012:role/flowc-ecs-exec".to_owned()),
        datastore_root: "s3://flowc-test/store".to_owned(),
        region: Some("eu-west-1".to_owned()),
        account: Some("123456789012".to_owned()),
        schedule_role: Some("arn:aws:iam::123456789012:role/flowc-scheduler".to_owned()),
        platform: Platform::Ec2,
        map_mode: MapMode::Distributed,
        max_concurrency: Some(100),
        foreach_widths: BTreeMap::new(),
        code_package: CodePackageRef {
            hash: "3fa2c0ffee".repeat(6) + "3fa2",
            entry: "flow.py".to_owned(),
        },
        user: Some("alice".to_owned()),
        flowc_version: "0.1.0".to_owned(),
    }
}

/// The other settings every document must also validate under: Fargate jobs and
/// inline Maps.
fn fargate_inline_config() -> SfnConfig {
    SfnConfig {
        platform: Platform::Fargate,
        map_mode: MapMode::Inline,
        max_concurrency: None,
        ..config()
    }
}

fn compile(rel_path: &str, options: &FrontendOptions, config: &SfnConfig) -> SfnDocuments {
    match sfn(&checked(rel_path, options), config) {
        Ok(docs) => docs,
        Err(diagnostics) => panic!("{rel_path}: {diagnostics:#?}"),
    }
}

/// Compiles for `config`, or `None` when the flow asks for what Fargate jobs cannot
/// have (GPUs, shared memory), which is then the only thing reported.
fn compile_unless_fargate_refuses(
    rel_path: &str,
    options: &FrontendOptions,
    config: &SfnConfig,
) -> Option<SfnDocuments> {
    match sfn(&checked(rel_path, options), config) {
        Ok(docs) => Some(docs),
        Err(diagnostics) => {
            assert!(
                config.platform == Platform::Fargate
                    && diagnostics.iter().all(|d| matches!(
                        d.code,
                        "flowc::batch::resources-out-of-range" | "flowc::batch::unsupported-option"
                    )),
                "{rel_path}: {diagnostics:#?}"
            );
            None
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    flowc::emit::json(value).expect("documents serialise")
}

/// Runs one of the Python validators over `files`.
fn validate(script: &str, files: &[PathBuf]) -> (bool, String) {
    let output = Command::new("python3")
        .arg(workspace_root().join("tests/validate").join(script))
        .args(files)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_valid_fixture_compiles_to_reviewed_documents() {
    for (name, rel_path, options) in fixtures() {
        let docs = compile(&rel_path, &options, &config());
        insta::with_settings!({
            input_file => workspace_root().join(&rel_path),
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("sfn__{name}"), json(&docs));
        });
    }
}

#[test]
fn every_document_of_every_fixture_validates() {
    let dir = scratch_dir("fixtures");
    let mut machines = Vec::new();
    let mut definitions = Vec::new();
    let mut maps = BTreeSet::new();
    for (variant, config) in [("ec2", config()), ("fargate", fargate_inline_config())] {
        for (name, rel_path, options) in fixtures() {
            let Some(docs) = compile_unless_fargate_refuses(&rel_path, &options, &config) else {
                continue;
            };
            let text = json(&docs.state_machine);
            for mode in ["\"DISTRIBUTED\"", "\"INLINE\""] {
                if text.contains(mode) {
                    maps.insert(mode);
                }
            }
            let path = dir.join(format!("{variant}-{name}.asl.json"));
            std::fs::write(&path, text).unwrap();
            machines.push(path);
            let path = dir.join(format!("{variant}-{name}.jobdefs.json"));
            std::fs::write(&path, json(&docs.job_definitions)).unwrap();
            definitions.push(path);
        }
    }
    // Both kinds of Map are exercised, so neither escapes validation.
    assert_eq!(maps.len(), 2, "{maps:?}");
    let (asl_ok, asl_report) = validate("asl_schema.py", &machines);
    let (batch_ok, batch_report) = validate("batch_jobdef.py", &definitions);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(asl_ok, "{asl_report}");
    assert!(batch_ok, "{batch_report}");
}

#[test]
fn the_validators_reject_broken_documents() {
    let dir = scratch_dir("broken");
    let docs = compile(
        "fixtures/flows/valid/nested_foreach.py",
        &FrontendOptions::default(),
        &config(),
    );
    let machine = json(&docs.state_machine);
    let dangling = dir.join("dangling.asl.json");
    std::fs::write(
        &dangling,
        machine.replacen("\"Next\": \"end\"", "\"Next\": \"nowhere\"", 1),
    )
    .unwrap();
    let misspelt = dir.join("misspelt.asl.json");
    std::fs::write(
        &misspelt,
        machine.replacen("\"ResultPath\": null", "\"ResultPth\": null", 1),
    )
    .unwrap();
    let definitions = json(&docs.job_definitions);
    let bad_resource = dir.join("bad.jobdefs.json");
    std::fs::write(
        &bad_resource,
        definitions.replacen("\"VCPU\"", "\"CPU\"", 1),
    )
    .unwrap();
    let (ok_dangling, report_dangling) = validate("asl_schema.py", &[dangling]);
    let (ok_misspelt, report_misspelt) = validate("asl_schema.py", &[misspelt]);
    let (ok_resource, report_resource) = validate("batch_jobdef.py", &[bad_resource]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !ok_dangling && report_dangling.contains("goes to `nowhere`"),
        "{report_dangling}"
    );
    assert!(
        !ok_misspelt && report_misspelt.contains("ResultPth"),
        "{report_misspelt}"
    );
    assert!(
        !ok_resource && report_resource.contains("'CPU' is not one of"),
        "{report_resource}"
    );
}

#[test]
fn output_is_byte_identical_across_compilations() {
    for (_, rel_path, options) in fixtures() {
        for config in [config(), fargate_inline_config()] {
            let once = compile_unless_fargate_refuses(&rel_path, &options, &config);
            let again = compile_unless_fargate_refuses(&rel_path, &options, &config);
            assert_eq!(
                once.map(|d| json(&d)),
                again.map(|d| json(&d)),
                "{rel_path}"
            );
        }
    }
}

#[test]
fn the_batch_target_writes_the_same_job_definitions() {
    for (_, rel_path, options) in fixtures() {
        let flow = checked(&rel_path, &options);
        let alone = batch(&flow, &config()).expect("job definitions");
        let with_machine = sfn(&flow, &config()).expect("documents");
        assert_eq!(
            alone.job_definitions, with_machine.job_definitions,
            "{rel_path}"
        );
        assert_eq!(alone.name, with_machine.name);
        assert_eq!(
            alone.job_definitions.len(),
            flow.steps.len() + 1,
            "one per step and the init"
        );
    }
}

/// A flow whose one step has the name `step` (and so a foreach `start`).
fn flow_with_step(class: &str, step: &str) -> Flow {
    let source = format!(
        "from metaflow import FlowSpec, step\n\nclass {class}(FlowSpec):\n    @step\n    def start(self):\n        self.xs = [1, 2]\n        self.next(self.{step}, foreach=\"xs\")\n\n    @step\n    def {step}(self):\n        self.next(self.join)\n\n    @step\n    def join(self, inputs):\n        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n"
    );
    let checked = flowc::check("flow.py", &source, &FrontendOptions::default());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    checked.flow.expect("a flow")
}

fn codes(diagnostics: &[flowc::diagnostics::Diagnostic]) -> BTreeSet<&'static str> {
    diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn limits_are_diagnostics_on_the_step_that_breaks_them() {
    // A state name over 80 characters (the step's own Task state).
    let flow = flow_with_step("F", &"w".repeat(81));
    let errors = sfn(&flow, &config()).unwrap_err();
    assert_eq!(
        codes(&errors),
        BTreeSet::from(["flowc::sfn::state-name-too-long"])
    );
    let step = flow.steps.iter().find(|s| s.name.len() == 81).unwrap();
    assert!(errors.iter().all(|d| d.span == step.name_span));
    // 80 characters fit, but `<step>.failed` does not: also reported.
    let flow = flow_with_step("F", &"w".repeat(78));
    let errors = sfn(&flow, &config()).unwrap_err();
    assert!(errors
        .iter()
        .any(|d| d.message.contains(&format!("{}.failed", "w".repeat(78)))));

    // Job definition names over 128 characters: `<Flow>-<step>`.
    let flow = flow_with_step(&"K".repeat(120), "work");
    let errors = batch(&flow, &config()).unwrap_err();
    assert_eq!(
        codes(&errors),
        BTreeSet::from(["flowc::batch::name-too-long"])
    );
    assert!(errors[0].message.contains("128"), "{}", errors[0].message);

    // Container overrides over 8192 characters, and a definition over 1 MB.
    let flow = flow_with_step("F", "work");
    let mut long_root = config();
    long_root.datastore_root = format!("s3://bucket/{}", "p".repeat(8200));
    let errors = sfn(&flow, &long_root).unwrap_err();
    assert!(codes(&errors).contains("flowc::sfn::container-overrides-too-large"));
    long_root.datastore_root = format!("s3://bucket/{}", "p".repeat(200_000));
    let errors = sfn(&flow, &long_root).unwrap_err();
    assert!(codes(&errors).contains("flowc::sfn::definition-too-large"));

    // An inline Map expected to be wider than what it runs at once.
    let mut inline = config();
    inline.map_mode = MapMode::Inline;
    inline.max_concurrency = Some(10);
    assert!(
        sfn(&flow, &inline).is_ok(),
        "no width known, nothing to say"
    );
    inline.foreach_widths.insert("start".to_owned(), 11);
    let errors = sfn(&flow, &inline).unwrap_err();
    assert_eq!(
        codes(&errors),
        BTreeSet::from(["flowc::sfn::inline-map-too-wide"])
    );
    inline.max_concurrency = None;
    inline.foreach_widths.insert("start".to_owned(), 40);
    assert!(sfn(&flow, &inline).is_ok(), "40 run at once inline");
    inline.foreach_widths.insert("start".to_owned(), 41);
    assert!(sfn(&flow, &inline).is_err());
    // A distributed Map has no such limit.
    inline.map_mode = MapMode::Distributed;
    assert!(sfn(&flow, &inline).is_ok());
}

#[test]
fn task_ids_and_input_paths_follow_the_documented_scheme() {
    let docs = compile(
        "fixtures/flows/valid/nested_foreach.py",
        &FrontendOptions::default(),
        &config(),
    );
    let text = json(&docs.state_machine);
    // The outer Map's iterations are `t-<i>`, the inner ones `t-<i>-<j>`.
    assert!(text.contains(r#""task_id.$": "States.Format('{}-{}', $.task_id, $$.Map.Item.Value)""#));
    // Each join names its parents with one range over the width the shim stored.
    assert!(text.contains(
        "'--input-paths', States.Format('{}/evaluate/{}-:{}', $.run_id, $.task_id, $.splits_per_model.count)"
    ));
    assert!(text.contains(
        "'--input-paths', States.Format('{}/join_regions/{}-:{}', $.run_id, $.task_id, $.splits_start.count)"
    ));
    assert!(text.contains("\"Bucket\": \"flowc-test\""));
    assert!(text.contains(
        "States.Format('store/RegionalEvalFlow/runs/{}/per_model/{}/outputs/foreach_items.json', $.run_id, $.task_id)"
    ));
}

#[test]
fn the_cli_writes_every_document_and_the_code_package() {
    let dir = scratch_dir("cli");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let flow = workspace_root().join("fixtures/flows/valid/scheduled_project.py");
    std::fs::copy(&flow, project.join("flow.py")).unwrap();
    std::fs::write(
        project.join("flowc.toml"),
        "[sfn]\ndatastore_root = \"s3://from-toml/root\"\nimage = \"from-toml\"\njob_queue = \"toml-queue\"\nregion = \"eu-west-1\"\naccount = \"123456789012\"\nschedule_role = \"scheduler\"\n",
    )
    .unwrap();
    let out = dir.join("deploy");
    let run = |target: &str, extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flowc"));
        command
            .args([
                "compile",
                "flow.py",
                "--target",
                target,
                "--job-queue",
                "flag-queue",
            ])
            .args(extra)
            .current_dir(&project)
            .env("USER", "alice");
        for var in [
            "IMAGE",
            "JOB_QUEUE",
            "JOB_ROLE",
            "EXECUTION_ROLE",
            "DATASTORE_ROOT",
            "REGION",
            "ACCOUNT",
            "SCHEDULE_ROLE",
            "PLATFORM",
            "MAP_MODE",
            "MAX_CONCURRENCY",
            "SHIM_PATH",
        ] {
            command.env_remove(format!("FLOWC_SFN_{var}"));
        }
        command.output().expect("flowc runs")
    };
    let written = run("sfn", &["-o", out.to_str().unwrap()]);
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let name = "fraud_detection-user-alice-FraudRetrainFlow";
    assert_eq!(
        files,
        [
            format!("{name}-end.jobdef.json"),
            format!("{name}-flowc-init.jobdef.json"),
            format!("{name}-start.jobdef.json"),
            format!("{name}-train.jobdef.json"),
            format!("{name}.asl.json"),
            format!("{name}.code-package.tar"),
            format!("{name}.schedule.json"),
        ]
    );
    let machine = std::fs::read_to_string(out.join(format!("{name}.asl.json"))).unwrap();
    assert!(
        machine.contains("\"JobQueue\": \"flag-queue\""),
        "flags win"
    );
    assert!(
        machine.contains("s3://from-toml/root"),
        "flowc.toml fills the rest"
    );
    let schedule = std::fs::read_to_string(out.join(format!("{name}.schedule.json"))).unwrap();
    assert!(
        schedule.contains("arn:aws:iam::123456789012:role/scheduler"),
        "{schedule}"
    );
    assert!(schedule.contains("\"ScheduleExpressionTimezone\": \"Europe/Berlin\""));

    // Without -o: one JSON object holding the same state machine.
    let streamed = run("sfn", &[]);
    assert!(streamed.status.success());
    let stdout: serde_json::Value = serde_json::from_slice(&streamed.stdout).unwrap();
    let from_file: serde_json::Value = serde_json::from_str(&machine).unwrap();
    assert_eq!(stdout["stateMachine"], from_file);
    assert_eq!(stdout["name"], name);
    assert_eq!(stdout["jobDefinitions"].as_array().map(Vec::len), Some(4));

    // The Batch target: a JSON list of the job definitions.
    let listed = run("batch", &[]);
    assert!(listed.status.success());
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list, stdout["jobDefinitions"]);

    // The flags every target shares win over the [sfn] table.
    let flagged = run(
        "batch",
        &[
            "--image",
            "flag-image:2",
            "--datastore-root",
            "s3://from-flag/root",
        ],
    );
    assert!(
        flagged.status.success(),
        "{}",
        String::from_utf8_lossy(&flagged.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&flagged.stdout).unwrap();
    let definitions = list.as_array().expect("a JSON list");
    assert_eq!(definitions.len(), 4);
    for definition in definitions {
        assert_eq!(definition["containerProperties"]["image"], "flag-image:2");
        let command = definition["containerProperties"]["command"].to_string();
        assert!(command.contains("s3://from-flag/root"), "{command}");
        assert!(!command.contains("from-toml"), "{command}");
    }
    // A setting of another target is refused, not ignored.
    let misplaced = run("sfn", &["--namespace", "flows"]);
    assert_eq!(misplaced.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&misplaced.stderr);
    assert!(
        stderr.contains("--namespace is not a setting of --target sfn"),
        "{stderr}"
    );

    // A missing setting is explained, not guessed.
    let bare = dir.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(&flow, bare.join("flow.py")).unwrap();
    let missing = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .args(["compile", "flow.py", "--target", "sfn"])
        .current_dir(&bare)
        .env_remove("FLOWC_SFN_DATASTORE_ROOT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(stderr.contains("--datastore-root"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_shim_leaves_the_item_list_where_the_state_machine_reads_it() {
    let dir = scratch_dir("shim-outputs");
    let root = dir.join("store");
    let flow_file = workspace_root().join("fixtures/flows/valid/foreach_join.py");
    let run = |args: &[&str]| {
        let output = Command::new(shim())
            .args(args)
            .args(["--flow-file", flow_file.to_str().unwrap()])
            .args(["--flow", "SweepFlow", "--run-id", "exec-1"])
            .args(["--datastore-root", root.to_str().unwrap()])
            .output()
            .expect("flowc-shim runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&["init", "--params-json", r#"{"max-epochs": 3}"#]);
    // The state machine's command for `start`, as the documents write it.
    run(&[
        "task",
        "--step",
        "start",
        "--task-id",
        "t",
        "--write-outputs",
    ]);
    // The key the ItemReader and the width read use, under the root instead of a bucket.
    let outputs = root.join("SweepFlow/runs/exec-1/start/t/outputs");
    let read = |file: &str| std::fs::read_to_string(outputs.join(file)).unwrap();
    assert_eq!(read("foreach_items.json"), "[0,1,2,3]");
    assert_eq!(read("num_splits"), "4");
    assert_eq!(read("switch_step"), "");
    // A split and the join named by the range, as the documents write them.
    for index in 0..4 {
        run(&[
            "task",
            "--step",
            "train",
            "--task-id",
            &format!("t-{index}"),
            "--input-paths",
            "exec-1/start/t",
            "--split-index",
            &index.to_string(),
        ]);
    }
    run(&[
        "task",
        "--step",
        "pick",
        "--task-id",
        "t",
        "--input-paths",
        "exec-1/train/t-:4",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
}
