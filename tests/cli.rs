//! End-to-end tests of the `flowc` binary: exit statuses, text and JSON output of
//! `check`, `inspect` and `graph`, that the same input gives the same bytes, and which
//! `compile` flags each target takes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A directory of its own for one test, removed when the test ends.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("flowc-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch { dir }
    }

    /// Write `text` to `name` inside the scratch directory and return its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write test flow");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `flowc` with `args`, without colours, in a clean environment for colour choice.
fn flowc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowc"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run flowc")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8 in tests")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("flowc exits normally")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}):\n{}", stdout(output));
    })
}

const HELLO: &str = r#"from metaflow import FlowSpec, step


class HelloFlow(FlowSpec):
    """Say hello."""

    @step
    def start(self):
        """Begin."""
        self.next(self.hello)

    @step
    def hello(self):
        print("hi")
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

/// `evalute` is a typo: one error, `flowc::graph::unknown-step`, on line 11.
const TYPO: &str = r#"from metaflow import FlowSpec, step


class TypoFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.next(self.evalute)

    @step
    def evaluate(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

/// Valid, with one warning: a parameter with neither default nor `required=True`.
const WARNS: &str = r#"from metaflow import FlowSpec, Parameter, step


class WarnFlow(FlowSpec):
    seed = Parameter("seed", type=int)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

/// A branch, a foreach and a switch, each closed properly.
const KINDS: &str = r#"from metaflow import FlowSpec, step


class KindsFlow(FlowSpec):
    """Every kind of split."""

    @step
    def start(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.next(self.merge)

    @step
    def right(self):
        self.next(self.merge)

    @step
    def merge(self, inputs):
        self.next(self.fan)

    @step
    def fan(self):
        self.shards = [1, 2, 3]
        self.next(self.work, foreach="shards")

    @step
    def work(self):
        self.next(self.collect)

    @step
    def collect(self, inputs):
        self.next(self.route)

    @step
    def route(self):
        self.mode = "fast"
        self.next({"fast": self.quick, "slow": self.careful}, condition="mode")

    @step
    def quick(self):
        self.next(self.end)

    @step
    def careful(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

const TWO_FLOWS: &str = r#"from metaflow import FlowSpec, step


class IngestFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class TrainFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn check_accepts_a_valid_flow() {
    let scratch = Scratch::new("check-ok");
    let file = scratch.file("hello.py", HELLO);
    let out = flowc(&["check", path(&file)]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{}: ok (HelloFlow, 3 steps)\n", path(&file))
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn check_reports_an_error_with_caret_code_and_help() {
    let scratch = Scratch::new("check-error");
    let file = scratch.file("typo.py", TYPO);
    let out = flowc(&["check", path(&file)]);
    assert_eq!(status(&out), 1);
    let text = stdout(&out);
    assert!(text.contains("flowc::graph::unknown-step"), "{text}");
    assert!(text.contains("`evalute`"), "{text}");
    assert!(text.contains(&format!("[{}:11:19]", path(&file))), "{text}");
    assert!(text.contains("help:"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colours when NO_COLOR is set: {text:?}"
    );
    assert!(
        text.ends_with(&format!("{}: 1 error\n", path(&file))),
        "{text}"
    );

    // The underline sits under `self.evalute`, in the same column as in the source.
    let lines: Vec<&str> = text.lines().collect();
    let source_at = lines
        .iter()
        .position(|l| l.ends_with("self.next(self.evalute)"))
        .expect("the offending line is quoted");
    let source_line: Vec<char> = lines[source_at].chars().collect();
    let underline: Vec<char> = lines[source_at + 1].chars().collect();
    let target = lines[source_at]
        .rfind("self.evalute")
        .map(|byte| lines[source_at][..byte].chars().count())
        .expect("target in line");
    let first_mark = underline
        .iter()
        .position(|c| matches!(c, '─' | '┬' | '^'))
        .expect("an underline below the source line");
    assert_eq!(
        first_mark,
        target,
        "{}\n{}",
        lines[source_at],
        lines[source_at + 1]
    );
    let last_mark = underline
        .iter()
        .rposition(|c| matches!(c, '─' | '┬' | '^'))
        .expect("underline end");
    assert_eq!(last_mark + 1 - first_mark, "self.evalute".len());
    assert!(source_line.len() >= last_mark);
}

#[test]
fn check_json_describes_every_diagnostic() {
    let scratch = Scratch::new("check-json");
    let bad = scratch.file("typo.py", TYPO);
    let good = scratch.file("hello.py", HELLO);
    let out = flowc(&["check", "--format", "json", path(&bad), path(&good)]);
    assert_eq!(status(&out), 1);
    let doc = json(&out);
    assert_eq!(doc["errors"], 1);
    assert_eq!(doc["warnings"], 0);
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["path"], path(&bad));
    assert_eq!(files[0]["flow"], "TypoFlow");
    assert_eq!(files[1]["flow"], "HelloFlow");
    assert_eq!(files[1]["diagnostics"], serde_json::json!([]));

    let diagnostic = &files[0]["diagnostics"][0];
    assert_eq!(diagnostic["code"], "flowc::graph::unknown-step");
    assert_eq!(diagnostic["severity"], "error");
    assert!(diagnostic["message"]
        .as_str()
        .is_some_and(|m| m.contains("evalute")));
    assert!(diagnostic["help"].is_string());
    assert!(diagnostic["label"].is_string() || diagnostic["label"].is_null());
    assert!(diagnostic["related"].is_array());
    assert_eq!(diagnostic["line"], 11);
    assert_eq!(diagnostic["column"], 19);
    assert_eq!(diagnostic["end_line"], 11);
    assert_eq!(diagnostic["end_column"], 31);
    let start = diagnostic["span"]["start"].as_u64().expect("start") as usize;
    let end = diagnostic["span"]["end"].as_u64().expect("end") as usize;
    assert_eq!(&TYPO[start..end], "self.evalute");
}

#[test]
fn check_several_files_summarises_each_and_all() {
    let scratch = Scratch::new("check-several");
    let good = scratch.file("hello.py", HELLO);
    let bad = scratch.file("typo.py", TYPO);
    let out = flowc(&["check", path(&good), path(&bad)]);
    assert_eq!(status(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{}: ok (HelloFlow, 3 steps)\n", path(&good))),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}: 1 error\n", path(&bad))),
        "{text}"
    );
    assert!(text.ends_with("2 files: 1 error\n"), "{text}");
}

#[test]
fn warnings_pass_unless_denied() {
    let scratch = Scratch::new("check-warnings");
    let file = scratch.file("warn.py", WARNS);
    let out = flowc(&["check", path(&file)]);
    assert_eq!(status(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("flowc::parameter::no-default"), "{text}");
    assert!(
        text.ends_with(&format!(
            "{}: ok (WarnFlow, 2 steps), 1 warning\n",
            path(&file)
        )),
        "{text}"
    );

    let denied = flowc(&["check", "--deny-warnings", path(&file)]);
    assert_eq!(status(&denied), 1);
    assert!(stdout(&denied).ends_with(&format!(
        "{}: 1 warning (denied by --deny-warnings)\n",
        path(&file)
    )));

    let as_json = flowc(&["check", "--deny-warnings", "--format", "json", path(&file)]);
    assert_eq!(status(&as_json), 1);
    let doc = json(&as_json);
    assert_eq!(
        (doc["errors"].as_u64(), doc["warnings"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(doc["files"][0]["diagnostics"][0]["severity"], "warning");
}

#[test]
fn unreadable_files_exit_two_with_a_clear_message() {
    let scratch = Scratch::new("check-unreadable");
    let missing = scratch.dir.join("missing.py");
    let out = flowc(&["check", path(&missing)]);
    assert_eq!(status(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot read {}: No such file or directory\n",
            path(&missing)
        )
    );

    let out = flowc(&["check", path(&scratch.dir)]);
    assert_eq!(status(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot read {}: Is a directory\n",
            path(&scratch.dir)
        )
    );

    let binary = scratch.dir.join("latin1.py");
    std::fs::write(&binary, b"# caf\xe9\n").expect("write");
    let out = flowc(&["check", path(&binary)]);
    assert_eq!(status(&out), 2);
    assert!(stderr(&out).contains("not valid UTF-8"), "{}", stderr(&out));

    // The readable file is still checked and reported.
    let good = scratch.file("hello.py", HELLO);
    let out = flowc(&["check", path(&missing), path(&good)]);
    assert_eq!(status(&out), 2);
    assert!(stdout(&out).contains("ok (HelloFlow, 3 steps)"));

    for command in ["inspect", "graph"] {
        let out = flowc(&[command, path(&missing)]);
        assert_eq!(status(&out), 2, "{command}");
        assert!(stderr(&out).starts_with("error: cannot read "), "{command}");
        assert!(out.stdout.is_empty(), "{command}");
    }
}

#[test]
fn bad_usage_exits_two() {
    for args in [
        vec![],
        vec!["check"],
        vec!["check", "--bogus", "x.py"],
        vec!["check", "--format", "yaml", "x.py"],
        vec!["graph", "--format", "png", "x.py"],
        vec!["inspect"],
        vec!["frobnicate"],
    ] {
        let out = flowc(&args);
        assert_eq!(status(&out), 2, "flowc {args:?}");
        assert!(!stderr(&out).is_empty(), "flowc {args:?} explains itself");
    }
}

#[test]
fn version_and_help() {
    let out = flowc(&["--version"]);
    assert_eq!(status(&out), 0);
    assert_eq!(
        stdout(&out),
        format!("flowc {}\n", env!("CARGO_PKG_VERSION"))
    );

    for command in ["check", "inspect", "graph"] {
        let out = flowc(&[command, "--help"]);
        assert_eq!(status(&out), 0, "{command}");
        let text = stdout(&out);
        assert!(text.contains("Examples:"), "{command}: {text}");
        assert!(text.contains("--flow <NAME>"), "{command}: {text}");
        assert!(text.contains("--format <FORMAT>"), "{command}: {text}");
    }
}

#[test]
fn flow_selects_one_class_of_several() {
    let scratch = Scratch::new("flow-select");
    let file = scratch.file("two.py", TWO_FLOWS);

    let ambiguous = flowc(&["check", path(&file)]);
    assert_eq!(status(&ambiguous), 1);
    assert!(stdout(&ambiguous).contains("flowc::flow::ambiguous"));

    let chosen = flowc(&["check", "--flow", "TrainFlow", path(&file)]);
    assert_eq!(status(&chosen), 0, "{}", stdout(&chosen));
    assert!(stdout(&chosen).contains("ok (TrainFlow, 3 steps)"));

    let unknown = flowc(&["check", "--flow", "NoSuchFlow", path(&file)]);
    assert_eq!(status(&unknown), 1);
    assert!(stdout(&unknown).contains("flowc::flow::unknown"));

    let graph = flowc(&[
        "graph",
        "--flow",
        "IngestFlow",
        "--format",
        "json",
        path(&file),
    ]);
    assert_eq!(status(&graph), 0, "{}", stderr(&graph));
    assert_eq!(json(&graph)["flow"], "IngestFlow");

    let ir = flowc(&["inspect", "--flow", "TrainFlow", path(&file)]);
    assert_eq!(status(&ir), 0, "{}", stderr(&ir));
    assert_eq!(json(&ir)["name"], "TrainFlow");
}

#[test]
fn inspect_prints_the_ir_or_refuses_a_broken_flow() {
    let scratch = Scratch::new("inspect");
    let file = scratch.file("hello.py", HELLO);
    let out = flowc(&["inspect", path(&file)]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let ir = json(&out);
    assert!(ir["ir_version"].is_u64(), "{ir:#}");
    assert_eq!(ir["name"], "HelloFlow");
    assert_eq!(ir["steps"].as_array().map(Vec::len), Some(3));
    assert_eq!(ir["source"]["path"], path(&file));

    let text = flowc(&["inspect", "--format", "text", path(&file)]);
    assert_eq!(status(&text), 0);
    let text = stdout(&text);
    assert!(
        text.starts_with("flow HelloFlow\n    Say hello.\n"),
        "{text}"
    );
    assert!(
        text.contains("\nsteps\n    start\n        doc: Begin.\n"),
        "{text}"
    );
    assert!(text.contains("        next: hello\n"), "{text}");

    let broken = scratch.file("typo.py", TYPO);
    let out = flowc(&["inspect", path(&broken)]);
    assert_eq!(status(&out), 1);
    assert!(out.stdout.is_empty(), "no IR for a flow with errors");
    assert!(
        stderr(&out).contains("flowc::graph::unknown-step"),
        "{}",
        stderr(&out)
    );

    // Warnings go to stderr; the IR is still printed.
    let warns = scratch.file("warn.py", WARNS);
    let out = flowc(&["inspect", path(&warns)]);
    assert_eq!(status(&out), 0);
    assert_eq!(json(&out)["name"], "WarnFlow");
    assert!(stderr(&out).contains("flowc::parameter::no-default"));
}

/// The edges of KINDS, as (from, to, label) with the label the format should show.
const KIND_EDGES: &[(&str, &str, Option<&str>)] = &[
    ("start", "left", None),
    ("start", "right", None),
    ("left", "merge", None),
    ("right", "merge", None),
    ("merge", "fan", None),
    ("fan", "work", Some("foreach shards")),
    ("work", "collect", None),
    ("collect", "route", None),
    ("route", "quick", Some("fast")),
    ("route", "careful", Some("slow")),
    ("quick", "end", None),
    ("careful", "end", None),
];

fn graph(file: &Path, format: &str) -> String {
    let out = flowc(&["graph", "--format", format, path(file)]);
    assert_eq!(status(&out), 0, "graph --format {format}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn graph_mermaid_and_dot_draw_every_edge() {
    let scratch = Scratch::new("graph-draw");
    let file = scratch.file("kinds.py", KINDS);

    let mermaid = graph(&file, "mermaid");
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    let mermaid_edges = mermaid.lines().filter(|l| l.contains("-->")).count();
    assert_eq!(mermaid_edges, KIND_EDGES.len(), "{mermaid}");
    for (from, to, label) in KIND_EDGES {
        let line = match label {
            Some(label) => format!("    s_{from} -->|\"{label}\"| s_{to}"),
            None => format!("    s_{from} --> s_{to}"),
        };
        assert!(
            mermaid.lines().any(|l| l == line),
            "missing {line:?} in\n{mermaid}"
        );
    }

    let dot = graph(&file, "dot");
    assert!(
        dot.starts_with("digraph \"KindsFlow\" {\n") && dot.ends_with("}\n"),
        "{dot}"
    );
    assert_eq!(
        dot.lines().filter(|l| l.contains("->")).count(),
        KIND_EDGES.len(),
        "{dot}"
    );
    for (from, to, label) in KIND_EDGES {
        let line = match label {
            Some(label) => format!("    \"{from}\" -> \"{to}\" [label=\"{label}\"];"),
            None => format!("    \"{from}\" -> \"{to}\";"),
        };
        assert!(dot.lines().any(|l| l == line), "missing {line:?} in\n{dot}");
    }
}

#[test]
fn graph_json_and_text_agree_with_the_flow() {
    let scratch = Scratch::new("graph-json");
    let file = scratch.file("kinds.py", KINDS);
    let doc: Value = serde_json::from_str(&graph(&file, "json")).expect("graph JSON");
    assert_eq!(doc["flow"], "KindsFlow");
    assert_eq!(
        (doc["start"].as_str(), doc["end"].as_str()),
        (Some("start"), Some("end"))
    );
    let steps = doc["steps"].as_array().expect("steps");
    let by_name = |name: &str| {
        steps
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}"))
    };
    let types: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or(""),
                s["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("start", "split"),
            ("left", "linear"),
            ("right", "linear"),
            ("merge", "join"),
            ("fan", "foreach"),
            ("work", "linear"),
            ("collect", "join"),
            ("route", "split-switch"),
            ("quick", "linear"),
            ("careful", "linear"),
            ("end", "end"),
        ]
    );
    let mut edges = Vec::new();
    for step in steps {
        for to in step["out"].as_array().expect("out") {
            edges.push((
                step["name"].as_str().unwrap_or(""),
                to.as_str().unwrap_or(""),
            ));
        }
    }
    let want: Vec<(&str, &str)> = KIND_EDGES.iter().map(|(f, t, _)| (*f, *t)).collect();
    assert_eq!(edges, want);
    assert_eq!(by_name("fan")["foreach"], "shards");
    assert_eq!(
        by_name("route")["switch"],
        serde_json::json!({"condition": "mode", "cases": {"fast": "quick", "slow": "careful"}})
    );
    assert_eq!(by_name("merge")["is_join"], true);
    assert_eq!(by_name("start")["is_join"], false);

    let text = graph(&file, "text");
    assert!(
        text.starts_with("KindsFlow\n    Every kind of split.\n"),
        "{text}"
    );
    assert!(
        text.contains("Step start (split)\n    => left, right (in parallel)\n"),
        "{text}"
    );
    assert!(
        text.contains("Step fan (foreach)\n    => work (one task for each item of self.shards)\n")
    );
    assert!(text.contains(
        "    => quick if self.mode == \"fast\"\n    => careful if self.mode == \"slow\"\n"
    ));
}

#[test]
fn graph_refuses_a_flow_with_errors() {
    let scratch = Scratch::new("graph-errors");
    let file = scratch.file("typo.py", TYPO);
    for format in ["text", "mermaid", "dot", "json"] {
        let out = flowc(&["graph", "--format", format, path(&file)]);
        assert_eq!(status(&out), 1, "{format}");
        assert!(out.stdout.is_empty(), "{format}: nothing drawn");
        assert!(
            stderr(&out).contains("flowc::graph::unknown-step"),
            "{format}"
        );
    }
}

#[test]
fn output_is_deterministic() {
    let scratch = Scratch::new("determinism");
    let kinds = scratch.file("kinds.py", KINDS);
    let typo = scratch.file("typo.py", TYPO);
    let runs: Vec<Vec<&str>> = vec![
        vec!["check", path(&typo), path(&kinds)],
        vec!["check", "--format", "json", path(&typo), path(&kinds)],
        vec!["inspect", path(&kinds)],
        vec!["inspect", "--format", "text", path(&kinds)],
        vec!["graph", "--format", "text", path(&kinds)],
        vec!["graph", "--format", "mermaid", path(&kinds)],
        vec!["graph", "--format", "dot", path(&kinds)],
        vec!["graph", "--format", "json", path(&kinds)],
    ];
    for args in runs {
        let first = flowc(&args);
        let second = flowc(&args);
        assert!(!first.stdout.is_empty(), "{args:?}");
        assert_eq!(first.stdout, second.stdout, "{args:?}");
        assert_eq!(first.stderr, second.stderr, "{args:?}");
        assert_eq!(first.status, second.status, "{args:?}");
    }
}

/// Run `flowc` with `args` and none of the `FLOWC_*` settings of the environment, so
/// that only the flags decide.
fn flowc_without_settings(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowc"));
    command.args(args).env("NO_COLOR", "1");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLOWC_") {
            command.env_remove(name);
        }
    }
    command.output().expect("run flowc")
}

#[test]
fn compile_takes_one_image_and_datastore_root_flag_for_every_target() {
    let help = flowc(&["compile", "--help"]);
    assert_eq!(status(&help), 0);
    let text = stdout(&help);
    assert_eq!(text.matches("--image <IMAGE>").count(), 1, "{text}");
    assert_eq!(text.matches("--datastore-root <ROOT>").count(), 1, "{text}");
    assert!(!text.contains("--batch-"), "{text}");
    for heading in [
        "Settings of every cloud target (argo, sfn, batch):",
        "Argo settings (--target argo):",
        "Step Functions and Batch settings (--target sfn, --target batch):",
    ] {
        assert!(text.contains(heading), "{heading}: {text}");
    }

    let scratch = Scratch::new("compile-shared-flags");
    let flow = scratch.file("hello.py", HELLO);
    let shared = [
        "--image",
        "registry.example.com/flows:7",
        "--datastore-root",
        "s3://shared-bucket/flowc",
    ];
    let compile = |target: &str, extra: &[&str]| {
        let mut args = vec!["compile", path(&flow), "--target", target];
        args.extend_from_slice(extra);
        flowc_without_settings(&args)
    };

    let argo = compile("argo", &shared);
    assert_eq!(status(&argo), 0, "{}", stderr(&argo));
    let yaml = stdout(&argo);
    assert!(
        yaml.contains("image: registry.example.com/flows:7"),
        "{yaml}"
    );
    assert!(yaml.contains("s3://shared-bucket/flowc"), "{yaml}");

    let batch = compile("batch", &shared);
    assert_eq!(status(&batch), 0, "{}", stderr(&batch));
    let definitions = json(&batch);
    let definitions = definitions.as_array().expect("a list of job definitions");
    assert!(!definitions.is_empty());
    for definition in definitions {
        let container = &definition["containerProperties"];
        assert_eq!(container["image"], "registry.example.com/flows:7");
        assert!(
            container["command"]
                .to_string()
                .contains("s3://shared-bucket/flowc"),
            "{container}"
        );
    }

    // Each target checks the shared value as it needs it.
    let local_root = compile("batch", &["--image", "x", "--datastore-root", "/tmp/store"]);
    assert_eq!(status(&local_root), 2);
    assert!(
        stderr(&local_root).contains("not an S3 root"),
        "{}",
        stderr(&local_root)
    );

    // The old per-target spellings are gone, and a flag of one target is refused by
    // the others rather than ignored.
    let old = compile("sfn", &["--batch-image", "x"]);
    assert_eq!(status(&old), 2);
    for (target, flag, value) in [
        ("local", "--image", "x"),
        ("argo", "--job-queue", "q"),
        ("sfn", "--namespace", "flows"),
        ("batch", "--label", "team=ml"),
    ] {
        let out = compile(target, &[flag, value]);
        assert_eq!(status(&out), 2, "{target} {flag}");
        assert!(
            stderr(&out).contains(&format!("{flag} is not a setting of --target {target}")),
            "{target} {flag}: {}",
            stderr(&out)
        );
    }
}
