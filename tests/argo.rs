//! The Argo target on every valid fixture flow: a reviewed snapshot of the documents,
//! and strict validation of each against the vendored Argo schemas
//! (`tests/validate/argo_schema.py`), graph rules included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowc::backends::argo::{argo, ArgoConfig, CodePackageRef, Document};
use flowc::FrontendOptions;

#[allow(dead_code)]
mod support;

use support::{fixtures, scratch_dir, workspace_root};

fn config() -> ArgoConfig {
    ArgoConfig {
        image: "python:3.12-slim".to_owned(),
        namespace: Some("flows".to_owned()),
        service_account: Some("flowc-runner".to_owned()),
        datastore_root: "s3://flowc-test/store".to_owned(),
        shim_image: "registry.example.com/flowc-shim:0.1.0".to_owned(),
        labels: BTreeMap::from([("team".to_owned(), "ml-platform".to_owned())]),
        code_package: CodePackageRef {
            hash: "3fa2c0ffee".repeat(6) + "3fa2",
            entry: "flow.py".to_owned(),
        },
        user: Some("alice".to_owned()),
        event_source: "flowc-events".to_owned(),
        event_webhook_url: None,
        flowc_version: "0.1.0".to_owned(),
    }
}

fn compile(rel_path: &str, text: &str, options: &FrontendOptions) -> Vec<Document> {
    let checked = flowc::check(rel_path, text, options);
    assert!(
        !checked.has_errors(),
        "{rel_path}: {:?}",
        checked.diagnostics
    );
    let flow = checked.flow.expect("a checked flow");
    match argo(&flow, &config()) {
        Ok(docs) => docs,
        Err(diagnostics) => panic!("{rel_path}: {diagnostics:#?}"),
    }
}

fn stream(documents: &[Document]) -> String {
    flowc::emit::yaml_stream(documents).expect("documents serialise")
}

/// Writes each document to `dir` and runs the validator over all of them at once.
fn validate(dir: &Path, files: &[PathBuf]) -> (bool, String) {
    let script = workspace_root().join("tests/validate/argo_schema.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(files)
        .current_dir(dir)
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
        let text = std::fs::read_to_string(workspace_root().join(&rel_path)).unwrap();
        let yaml = stream(&compile(&rel_path, &text, &options));
        insta::with_settings!({
            input_file => workspace_root().join(&rel_path),
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("argo__{name}"), yaml);
        });
    }
}

#[test]
fn every_document_of_every_fixture_validates_against_the_argo_schemas() {
    let dir = scratch_dir("fixtures");
    let mut files = Vec::new();
    let mut kinds = BTreeMap::new();
    for (name, rel_path, options) in fixtures() {
        let text = std::fs::read_to_string(workspace_root().join(&rel_path)).unwrap();
        for doc in compile(&rel_path, &text, &options) {
            let kind = doc.file_name().split('.').nth(1).unwrap().to_owned();
            *kinds.entry(kind).or_insert(0) += 1;
            let path = dir.join(format!("{name}.{}", doc.file_name()));
            std::fs::write(&path, flowc::emit::yaml(&doc).unwrap()).unwrap();
            files.push(path);
        }
    }
    // Every kind of document is exercised, so none escapes validation.
    assert_eq!(
        kinds.keys().map(String::as_str).collect::<Vec<_>>(),
        ["cron-workflow", "sensor", "workflow-template"]
    );
    let (ok, report) = validate(&dir, &files);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{report}");
}

#[test]
fn the_validator_rejects_unknown_fields_and_dangling_dependencies() {
    let dir = scratch_dir("broken");
    let text =
        std::fs::read_to_string(workspace_root().join("fixtures/flows/valid/branch_join.py"))
            .unwrap();
    let docs = compile(
        "fixtures/flows/valid/branch_join.py",
        &text,
        &FrontendOptions::default(),
    );
    let yaml = flowc::emit::yaml(&docs[0]).unwrap();
    let misspelt = dir.join("misspelt.yaml");
    std::fs::write(
        &misspelt,
        yaml.replacen("entrypoint:", "entrypiont: x\n  entrypoint:", 1),
    )
    .unwrap();
    let dangling = dir.join("dangling.yaml");
    std::fs::write(
        &dangling,
        yaml.replacen(
            "depends: flowc-init.Succeeded",
            "depends: nowhere.Succeeded",
            1,
        ),
    )
    .unwrap();
    let (ok_misspelt, report_misspelt) = validate(&dir, &[misspelt]);
    let (ok_dangling, report_dangling) = validate(&dir, &[dangling]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !ok_misspelt && report_misspelt.contains("entrypiont"),
        "{report_misspelt}"
    );
    assert!(
        !ok_dangling && report_dangling.contains("unknown task 'nowhere'"),
        "{report_dangling}"
    );
}

#[test]
fn output_is_byte_identical_across_compilations() {
    for (_, rel_path, options) in fixtures() {
        let text = std::fs::read_to_string(workspace_root().join(&rel_path)).unwrap();
        assert_eq!(
            stream(&compile(&rel_path, &text, &options)),
            stream(&compile(&rel_path, &text, &options)),
            "{rel_path}"
        );
    }
}

#[test]
fn the_cli_writes_one_file_per_document_and_the_code_package() {
    let dir = scratch_dir("cli");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let flow = workspace_root().join("fixtures/flows/valid/triggered_event.py");
    std::fs::copy(&flow, project.join("flow.py")).unwrap();
    std::fs::write(
        project.join("flowc.toml"),
        "[argo]\ndatastore_root = \"s3://from-toml\"\nnamespace = \"from-toml\"\n",
    )
    .unwrap();
    let out = dir.join("deploy");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flowc"))
            .args([
                "compile",
                "flow.py",
                "--target",
                "argo",
                "--namespace",
                "from-flag",
            ])
            .args(extra)
            .current_dir(&project)
            .env_remove("FLOWC_ARGO_DATASTORE_ROOT")
            .env_remove("FLOWC_ARGO_NAMESPACE")
            .output()
            .expect("flowc runs")
    };
    let written = run(&["-o", out.to_str().unwrap()]);
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
    assert_eq!(
        files,
        [
            "tablequalityflow.code-package.tar",
            "tablequalityflow.cron-workflow.yaml",
            "tablequalityflow.sensor.yaml",
            "tablequalityflow.workflow-template.yaml",
        ]
    );
    let template =
        std::fs::read_to_string(out.join("tablequalityflow.workflow-template.yaml")).unwrap();
    assert!(template.contains("namespace: from-flag"), "{template}");
    assert!(template.contains("s3://from-toml"), "{template}");
    let streamed = run(&[]);
    assert!(streamed.status.success());
    let stdout = String::from_utf8(streamed.stdout).unwrap();
    assert_eq!(
        stdout.matches("\n---\n").count() + usize::from(stdout.starts_with("---\n")),
        3
    );
    assert!(
        stdout.contains(&template),
        "stdout holds the same WorkflowTemplate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
