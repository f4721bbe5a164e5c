//! Robustness of `flowc::check` against any input: deterministic fuzzing (random bytes,
//! mutated real flows) and pathological files (deep nesting, huge literals, huge files,
//! odd encodings). No input may panic, overflow an 8 MB stack or hang; every span must
//! lie inside the text on char boundaries; every diagnostic needs a message and a
//! registered code; the same input must give the same result twice.
//!
//! The PRNG is seeded with constants, so a failure reproduces on every run. A failing
//! input is written to `target/tmp/robustness/` for the owner of the code to replay.

#[path = "../compiler/benches/flowgen/mod.rs"]
mod flowgen;

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use flowc::diagnostics::{Diagnostic, CODES};
use flowc::{Checked, FrontendOptions};
use flowgen::Rng;

/// The stack every check runs on: what a user's thread could reasonably have. Deep
/// inputs must be handled within it, not by luck of a big main-thread stack.
const STACK_BYTES: usize = 8 << 20;

/// How long one pathological case may take in a debug build before it counts as a hang.
const CASE_LIMIT: Duration = Duration::from_secs(60);

const PATH: &str = "flow.py";

// ---------------------------------------------------------------------------------
// Checking one input and judging the result.
// ---------------------------------------------------------------------------------

/// `check` with the panic turned into an error naming it (the default panic hook has
/// already printed the location to the captured test output).
fn check_caught(text: &str, options: &FrontendOptions) -> Result<Checked, String> {
    catch_unwind(AssertUnwindSafe(|| flowc::check(PATH, text, options))).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        format!("check panicked: {message}")
    })
}

/// A span must be a well-formed range inside `text` whose ends are char boundaries,
/// or a renderer slicing the source with it would panic.
fn span_problem(text: &str, start: usize, end: usize) -> Option<String> {
    if start > end {
        return Some(format!("span {start}..{end} is reversed"));
    }
    if end > text.len() {
        return Some(format!(
            "span {start}..{end} ends past the text ({} bytes)",
            text.len()
        ));
    }
    if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return Some(format!("span {start}..{end} splits a UTF-8 character"));
    }
    None
}

/// Every `{"start": n, "end": m}` object in the serialised flow is a `Span`; walking
/// the JSON finds all of them, whatever IR type holds them.
fn ir_span_problems(text: &str, value: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if map.len() == 2 {
                if let (Some(start), Some(end)) = (
                    map.get("start").and_then(serde_json::Value::as_u64),
                    map.get("end").and_then(serde_json::Value::as_u64),
                ) {
                    let (start, end) = (
                        usize::try_from(start).unwrap_or(usize::MAX),
                        usize::try_from(end).unwrap_or(usize::MAX),
                    );
                    if let Some(problem) = span_problem(text, start, end) {
                        out.push(format!("IR span at {at}: {problem}"));
                    }
                    return;
                }
            }
            for (key, child) in map {
                ir_span_problems(text, child, &format!("{at}.{key}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                ir_span_problems(text, child, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn diagnostic_problems(text: &str, d: &Diagnostic, out: &mut Vec<String>) {
    let Some(code) = CODES.iter().find(|c| c.name == d.code) else {
        out.push(format!("unregistered code `{}`", d.code));
        return;
    };
    if code.severity != d.severity {
        out.push(format!(
            "`{}` reported as {:?}, registered as {:?}",
            d.code, d.severity, code.severity
        ));
    }
    if d.message.trim().is_empty() {
        out.push(format!("`{}` has an empty message", d.code));
    }
    if let Some(problem) = span_problem(text, d.span.start, d.span.end) {
        out.push(format!("`{}` ({}): {problem}", d.code, d.message));
    }
    for related in &d.related {
        if related.message.trim().is_empty() {
            out.push(format!(
                "`{}` has a related label with an empty message",
                d.code
            ));
        }
        if let Some(problem) = span_problem(text, related.span.start, related.span.end) {
            out.push(format!(
                "`{}` related label `{}`: {problem}",
                d.code, related.message
            ));
        }
    }
}

fn flow_json(checked: &Checked) -> Option<String> {
    checked.flow.as_ref().map(|flow| {
        serde_json::to_string(flow).unwrap_or_else(|e| format!("unserialisable flow: {e}"))
    })
}

/// Everything wrong with one result, empty when it is sound.
fn problems(text: &str, checked: &Checked) -> Vec<String> {
    let mut out = Vec::new();
    for d in &checked.diagnostics {
        diagnostic_problems(text, d, &mut out);
    }
    match flow_json(checked) {
        Some(json) => match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(value) => ir_span_problems(text, &value, "flow", &mut out),
            // External `flowc-gen-<target>` plugins read this JSON, typically with serde_json's
            // default limits (nesting depth 128): the IR must stay within them.
            Err(e) => out.push(format!(
                "flow JSON does not read back with serde_json's default limits: {e}"
            )),
        },
        // Without a flow the user must be told why; silence would be a lost file.
        None if !checked.has_errors() => out.push("no flow and no error diagnostic".to_string()),
        None => {}
    }
    out
}

/// Checks `text` once and judges the result.
fn check_sound(text: &str, options: &FrontendOptions) -> Result<Checked, String> {
    let checked = check_caught(text, options)?;
    let found = problems(text, &checked);
    if found.is_empty() {
        Ok(checked)
    } else {
        Err(found.join("; "))
    }
}

/// Checks `text` twice: both must be sound and identical.
fn check_twice(text: &str, options: &FrontendOptions) -> Result<Checked, String> {
    let first = check_sound(text, options)?;
    let second = check_caught(text, options)?;
    if first.diagnostics != second.diagnostics {
        return Err(format!(
            "diagnostics differ between two runs: {:?} vs {:?}",
            codes_of(&first),
            codes_of(&second)
        ));
    }
    if flow_json(&first) != flow_json(&second) {
        return Err("the flow differs between two runs".to_string());
    }
    Ok(first)
}

fn codes_of(checked: &Checked) -> Vec<&'static str> {
    checked.diagnostics.iter().map(|d| d.code).collect()
}

/// Saves a failing input where the developer can replay it with `flowc check`.
fn save_failure(case: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("robustness");
    let name: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.py"));
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text));
    if let Err(e) = written {
        eprintln!("cannot save failing input to {}: {e}", path.display());
    }
    path
}

/// Collects failures of many small cases so one run reports all of them.
#[derive(Default)]
struct Failures {
    cases: usize,
    lines: Vec<String>,
}

impl Failures {
    /// Past this many, more failures add noise, not information.
    const MAX: usize = 40;

    fn record(&mut self, case: &str, text: &str, outcome: Result<Checked, String>) {
        self.cases += 1;
        if let Err(problem) = outcome {
            if self.lines.len() < Self::MAX {
                let saved = save_failure(case, text);
                self.lines
                    .push(format!("{case}: {problem}\n    input: {}", saved.display()));
            } else if self.lines.len() == Self::MAX {
                self.lines.push("… further failures not listed".to_string());
            }
        }
    }

    fn assert_none(self, what: &str) {
        assert!(
            self.lines.is_empty(),
            "{what}: {} of {} cases failed:\n{}",
            self.lines.iter().filter(|l| !l.starts_with('…')).count(),
            self.cases,
            self.lines.join("\n")
        );
    }
}

/// Runs `work` on a named thread with an 8 MB stack and waits at most `CASE_LIMIT`.
/// A stack overflow aborts the test binary with "thread '<name>' has overflowed its
/// stack", which names the case; a hang is an error instead of a stalled CI job.
fn on_small_stack<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            // The receiver is gone only if the case already timed out.
            let _ = send.send(work());
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    receive.recv_timeout(CASE_LIMIT).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => format!("did not finish within {CASE_LIMIT:?}"),
        mpsc::RecvTimeoutError::Disconnected => "the checking thread died".to_string(),
    })
}

/// `on_small_stack` for work that must finish: a hang fails the test at once.
fn on_small_stack_or_fail<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    on_small_stack(name, work).unwrap_or_else(|problem| panic!("{name}: {problem}"))
}

// ---------------------------------------------------------------------------------
// Inputs.
// ---------------------------------------------------------------------------------

/// A switch, compute and environment decorators, IncludeFile and Config, module
/// constants folded into decorator arguments.
const SWITCH_FLOW: &str = r#""""Chooses a model family at run time."""
from metaflow import (FlowSpec, Parameter, IncludeFile, Config, step, kubernetes,
                      batch, retry, pypi, pypi_base, trigger, card, secrets)

GPU_MEMORY = 16 * 1024
SHM = GPU_MEMORY // 4
QUEUE = "gpu-" + "queue"


@trigger(event="data_ready")
@pypi_base(python="3.11", packages={"numpy": "1.26.4"})
class SwitchFlow(FlowSpec):
    """Train whichever model the data asks for."""

    data = IncludeFile("data", help="Training data.", default="data.csv")
    mode = Parameter("mode", default="fast", help="Speed or quality.")
    threshold = Parameter("threshold", type=float, default=0.5, required=False)
    settings = Config("settings", default="settings.json")

    @step
    def start(self):
        self.family = "linear" if len(self.data) < 1000 else "tree"
        self.next({"linear": self.linear, "tree": self.tree}, condition="family")

    @kubernetes(cpu=2, memory=GPU_MEMORY, shared_memory=SHM)
    @retry(times=3)
    @step
    def linear(self):
        """Fit a linear model."""
        self.model = "linear"
        self.next(self.report)

    @batch(gpu=1, memory=GPU_MEMORY, queue=QUEUE)
    @pypi(packages={"xgboost": "2.0.3"}, python="3.11")
    @secrets(sources=["db-credentials"])
    @step
    def tree(self):
        self.model = "tree"
        self.next(self.report)

    @card(type="default", timeout=60 * 5)
    @step
    def report(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchFlow()
"#;

/// Multi-byte characters in identifiers, strings, comments and docstrings, an inherited
/// start step and a nested foreach: the char-boundary cases.
const UNICODE_FLOW: &str = r#"# -*- coding: utf-8 -*-
"""Ünïcödé everywhere — 日本語 😀."""
from metaflow import FlowSpec, step, resources, timeout, environment, catch


class Basis(FlowSpec):
    """Gemeinsamer Anfang."""

    @step
    def start(self):
        self.länder = ["de", "fr", "日本"]  # Länder 🌍
        self.next(self.land, foreach="länder")


class WeltFlow(Basis):
    """Pro Land, pro Stadt."""

    @environment(vars={"GRUß": "ñ", "EMOJI": "😀"})
    @step
    def land(self):
        self.städte = [self.input + "-1", self.input + "-2"]
        self.next(self.stadt, foreach="städte")

    @resources(memory=1024 * 3, cpu=0.5 + 0.5)
    @timeout(minutes=1.5 * 2)
    @step
    def stadt(self):
        self.größe = len(self.input)
        self.next(self.sammeln)

    @step
    def sammeln(self, inputs):
        self.größen = [i.größe for i in inputs]
        self.next(self.zusammen)

    @catch(var="fehler")
    @step
    def zusammen(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        """Fertig ✓."""
"#;

/// Many errors at once, so that mutations start from the error paths too.
const BROKEN_FLOW: &str = r#"from metaflow import FlowSpec, Parameter, step, retry, resources, batch, kubernetes


class BrokenFlow(FlowSpec):
    alpha = Parameter("alpha", type=int, default="x")
    unset = Parameter("unset")
    beta = Parameter("alpha", default=1)

    @retry(tims=2)
    @resources(memory="lots", cpu=-1)
    @step
    def start(self):
        self.next(self.a, self.b)

    @batch
    @kubernetes
    @step
    def a(self):
        self.next(self.joinn)

    @step
    def b(self):
        self.next(self.join, foreach=items)

    @step
    def join(self):
        self.next(self.end)
        self.x = 1

    @step
    def orphan(self):
        self.next(self.orphan)

    @step
    def start(self):
        pass

    @step
    def end(self, inputs):
        self.next(self.start)
"#;

/// The smallest complete flow.
const HELLO_FLOW: &str = r#"from metaflow import FlowSpec, step


class HelloFlow(FlowSpec):
    @step
    def start(self):
        print("hello")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HelloFlow()
"#;

/// Python fragments that, inserted anywhere, push the parser and the lowering into
/// their error paths: brackets, block openers, decorators, strings, odd bytes.
const TOKENS: &[&str] = &[
    "(",
    ")",
    ":",
    "self.next(",
    "self.next(self.end)",
    "@step",
    "@step\n",
    "\"\"\"",
    "'''",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    "==",
    "\n",
    "\n    ",
    "\n        ",
    "    ",
    "\t",
    "\\",
    "\\\n",
    "#",
    "lambda: ",
    "def ",
    "class ",
    "(self, inputs)",
    "inputs",
    "foreach=",
    "condition=",
    "self.",
    "**",
    "*",
    " if ",
    " else ",
    "\r\n",
    "\r",
    "\0",
    "é",
    "😀",
    "\u{feff}",
    "@retry(times=",
    "@resources(memory=2 * 1024)",
    "@resources(memory=",
    "async ",
    "yield ",
    "return ",
    "pass",
    "None",
    "1e309",
    "-9223372036854775808",
    "9223372036854775808",
    "0x",
    "f\"{",
    "b'",
    "...",
    ";",
    "del ",
    "FlowSpec",
    "Parameter(",
    "IncludeFile(",
    "Config(",
    "self.merge_artifacts(inputs)",
    "@project(name=",
    "@schedule(cron=",
    "@kubernetes(",
    "@batch(",
    "@catch",
    "@timeout(seconds=",
    "{\"a\": self.a}",
    "class F(FlowSpec):\n",
    "from metaflow import *\n",
    "import metaflow\n",
];

/// Identifiers that mean something to the frontend, swapped in for others.
const IDENTIFIERS: &[&str] = &[
    "start",
    "end",
    "self",
    "inputs",
    "step",
    "FlowSpec",
    "Parameter",
    "IncludeFile",
    "Config",
    "next",
    "join",
    "None",
    "True",
    "False",
    "foreach",
    "condition",
    "merge_artifacts",
    "input",
    "retry",
    "resources",
    "memory",
    "cpu",
    "batch",
    "kubernetes",
    "catch",
    "x",
    "_",
    "é",
    "日本",
];

/// A file with a flow class open at a step body, so that token soup after it lands
/// inside the frontend's step lowering rather than being rejected at the top.
const FLOW_PREFIX: &str =
    "from metaflow import FlowSpec, step\n\nclass F(FlowSpec):\n    @step\n    def start(self):\n        ";

fn inline_flows() -> Vec<(String, String)> {
    vec![
        ("inline-switch".to_string(), SWITCH_FLOW.to_string()),
        ("inline-unicode".to_string(), UNICODE_FLOW.to_string()),
        ("inline-broken".to_string(), BROKEN_FLOW.to_string()),
        ("inline-hello".to_string(), HELLO_FLOW.to_string()),
        ("generated-12".to_string(), flowgen::flow(12, 1)),
        ("generated-40".to_string(), flowgen::flow(40, 2)),
    ]
}

/// Every `.py` file under `dir`, sorted so that the cases are the same on every run.
fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            python_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "py") {
            out.push(path);
        }
    }
}

/// The repository's fixture and example flows, read now: they change as the project grows.
fn repository_flows() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    python_files(&root.join("fixtures").join("flows"), &mut files);
    python_files(&root.join("examples"), &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let bytes = std::fs::read(&path).ok()?;
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            Some((name, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------

fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Byte ranges of identifier-like words (Unicode letters included).
fn identifier_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        let continues = c == '_' || c.is_alphanumeric();
        match start {
            Some(s) if !continues => {
                out.push((s, i));
                start = None;
            }
            None if c == '_' || c.is_alphabetic() => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// One random edit of `text`; returns the new text and a short name of the edit.
fn mutate(rng: &mut Rng, text: &str) -> (String, &'static str) {
    let bytes = text.as_bytes();
    match rng.below(9) {
        0 => {
            let mut ls = lines(text);
            if !ls.is_empty() {
                ls.remove(rng.below(ls.len()));
            }
            (ls.concat(), "delete-line")
        }
        1 => {
            let mut ls = lines(text);
            if !ls.is_empty() {
                let i = rng.below(ls.len());
                ls.insert(i, ls[i]);
            }
            (ls.concat(), "duplicate-line")
        }
        2 => {
            let mut ls = lines(text);
            if !ls.is_empty() {
                let (i, j) = (rng.below(ls.len()), rng.below(ls.len()));
                ls.swap(i, j);
            }
            (ls.concat(), "swap-lines")
        }
        3 => {
            let mut out = bytes.to_vec();
            for _ in 0..1 + rng.below(4) {
                if !out.is_empty() {
                    let i = rng.below(out.len());
                    // Low bytes, high bytes and single bit flips all break different things.
                    out[i] = match rng.below(3) {
                        0 => out[i] ^ (1 << rng.below(8)),
                        1 => (rng.next_u64() & 0xff) as u8,
                        _ => 0x80 | (rng.next_u64() & 0x3f) as u8,
                    };
                }
            }
            (String::from_utf8_lossy(&out).into_owned(), "flip-bytes")
        }
        4 | 5 => {
            let mut out = bytes.to_vec();
            let at = rng.below(out.len() + 1);
            let token = *rng.pick(TOKENS);
            out.splice(at..at, token.bytes());
            (String::from_utf8_lossy(&out).into_owned(), "insert-token")
        }
        6 => {
            let mut ls: Vec<String> = lines(text).into_iter().map(str::to_string).collect();
            if !ls.is_empty() {
                let i = rng.below(ls.len());
                let line = &ls[i];
                let trimmed = line.trim_start_matches([' ', '\t']);
                let indent = line.len() - trimmed.len();
                let new_indent = match rng.below(5) {
                    0 => String::new(),
                    1 => " ".repeat(indent + 1),
                    2 => " ".repeat(indent.saturating_sub(4)),
                    3 => " ".repeat(indent + 4),
                    _ => "\t".repeat(indent / 4 + 1),
                };
                ls[i] = format!("{new_indent}{trimmed}");
            }
            (ls.concat(), "indentation")
        }
        _ => {
            let ranges = identifier_ranges(text);
            if ranges.is_empty() {
                return (text.to_string(), "replace-identifier");
            }
            let (start, end) = *rng.pick(&ranges);
            let replacement = if rng.below(2) == 0 {
                let (s, e) = *rng.pick(&ranges);
                text.get(s..e).unwrap_or("x").to_string()
            } else {
                (*rng.pick(IDENTIFIERS)).to_string()
            };
            let mut out = String::with_capacity(text.len() + replacement.len());
            out.push_str(text.get(..start).unwrap_or(""));
            out.push_str(&replacement);
            out.push_str(text.get(end..).unwrap_or(""));
            (out, "replace-identifier")
        }
    }
}

fn token_soup(rng: &mut Rng, count: usize) -> String {
    let mut out = String::new();
    for _ in 0..count {
        let piece: &&str = match rng.below(4) {
            0 => rng.pick(IDENTIFIERS),
            1 => &" ",
            _ => rng.pick(TOKENS),
        };
        out.push_str(piece);
    }
    out
}

// ---------------------------------------------------------------------------------
// (a) Arbitrary input.
// ---------------------------------------------------------------------------------

#[test]
fn arbitrary_bytes_and_token_soup_are_handled() {
    let failures = on_small_stack_or_fail("fuzz-arbitrary", || {
        let mut rng = Rng::new(0x5EED_0001);
        let mut failures = Failures::default();
        for case in 0..1500 {
            let text = match case % 3 {
                0 => {
                    let len = rng.below(600);
                    let bytes: Vec<u8> = (0..len).map(|_| (rng.next_u64() & 0xff) as u8).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                1 => {
                    let count = rng.below(120);
                    token_soup(&mut rng, count)
                }
                _ => {
                    let count = rng.below(80);
                    format!("{FLOW_PREFIX}{}", token_soup(&mut rng, count))
                }
            };
            let name = format!("arbitrary-{case}");
            // Every fourth case also proves the result is the same twice.
            let outcome = if case % 4 == 0 {
                check_twice(&text, &FrontendOptions::default())
            } else {
                check_sound(&text, &FrontendOptions::default())
            };
            failures.record(&name, &text, outcome);
        }
        failures
    });
    assert_eq!(failures.cases, 1500);
    failures.assert_none("arbitrary input");
}

// ---------------------------------------------------------------------------------
// (b) Mutated real flows.
// ---------------------------------------------------------------------------------

/// The unmutated bases themselves: the valid ones must check clean (or the mutations
/// below would be exploring an already-broken frontend), the broken one must not.
#[test]
fn inline_bases_check_as_expected() {
    for (name, text) in inline_flows() {
        let text_for_thread = text.clone();
        let outcome = on_small_stack_or_fail(&name, move || {
            check_twice(&text_for_thread, &FrontendOptions::default())
        });
        let checked = outcome.unwrap_or_else(|problem| panic!("{name}: {problem}"));
        let errors: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{} {}", d.code, d.message))
            .collect();
        if name == "inline-broken" {
            for code in [
                "flowc::graph::unknown-step",
                "flowc::step::duplicate",
                "flowc::decorator::unknown-attribute",
                "flowc::parameter::duplicate",
                "flowc::decorator::multiple-compute",
            ] {
                assert!(
                    codes_of(&checked).contains(&code),
                    "{name}: expected {code}, got {errors:#?}"
                );
            }
        } else {
            assert!(
                errors.is_empty(),
                "{name} should check clean, got {errors:#?}"
            );
            assert!(checked.flow.is_some(), "{name}: no flow read");
        }
    }
}

#[test]
fn mutated_flows_are_handled() {
    let outcome = on_small_stack_or_fail("fuzz-mutations", || {
        let mut bases = inline_flows();
        bases.extend(repository_flows());
        let mut rng = Rng::new(0x5EED_0002);
        let mut failures = Failures::default();
        // About 2,500 random edits in all, however many fixtures there are.
        let per_base = (2500 / bases.len().max(1)).clamp(20, 300);
        for (name, base) in &bases {
            for i in 0..per_base {
                let mut text = base.clone();
                let mut edits = Vec::new();
                // Mostly one edit (close to a real typo), sometimes a pile of them.
                for _ in 0..1 + rng.below(3) * rng.below(2) {
                    let (next, edit) = mutate(&mut rng, &text);
                    text = next;
                    edits.push(edit);
                }
                let case = format!("{name}-{i}-{}", edits.join("+"));
                let outcome = if i % 4 == 0 {
                    check_twice(&text, &FrontendOptions::default())
                } else {
                    check_sound(&text, &FrontendOptions::default())
                };
                failures.record(&case, &text, outcome);
            }
            // Truncation at about 30 evenly spaced bytes, mid-character ones included.
            let step = (base.len() / 30).max(1);
            for at in (0..=base.len()).step_by(step) {
                let text = String::from_utf8_lossy(&base.as_bytes()[..at]).into_owned();
                let outcome = check_sound(&text, &FrontendOptions::default());
                failures.record(&format!("{name}-truncated-{at}"), &text, outcome);
            }
        }
        (bases.len(), failures)
    });
    let (bases, failures) = outcome;
    assert!(bases >= inline_flows().len());
    assert!(failures.cases >= 2000, "only {} cases ran", failures.cases);
    failures.assert_none("mutated flows");
}

/// Truncating the multi-byte flow at every byte: every cut lands somewhere different
/// relative to a character, a string, a bracket or a block.
#[test]
fn unicode_flow_truncated_at_every_byte() {
    let failures = on_small_stack_or_fail("fuzz-unicode-truncation", || {
        let mut failures = Failures::default();
        let bytes = UNICODE_FLOW.as_bytes();
        for at in 0..=bytes.len() {
            let text = String::from_utf8_lossy(&bytes[..at]).into_owned();
            let outcome = check_sound(&text, &FrontendOptions::default());
            failures.record(&format!("unicode-truncated-{at}"), &text, outcome);
        }
        failures
    });
    failures.assert_none("unicode truncation");
}

// ---------------------------------------------------------------------------------
// Generated flows: the benchmark's inputs are valid and read completely.
// ---------------------------------------------------------------------------------

/// Step names and targets: what must survive a change of line endings or a BOM.
fn shape(checked: &Checked) -> Option<Vec<(String, Vec<String>)>> {
    checked.flow.as_ref().map(|flow| {
        flow.steps
            .iter()
            .map(|s| {
                let targets = s
                    .transition
                    .targets()
                    .into_iter()
                    .map(|t| t.step.clone())
                    .collect();
                (s.name.clone(), targets)
            })
            .collect()
    })
}

fn error_lines(checked: &Checked) -> Vec<String> {
    checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            format!(
                "{} at {}..{}: {}",
                d.code, d.span.start, d.span.end, d.message
            )
        })
        .collect()
}

#[test]
fn generated_flows_check_clean() {
    for (steps, seed) in [
        (2, 1),
        (3, 1),
        (10, 1),
        (10, 2),
        (25, 3),
        (100, 4),
        (300, 5),
    ] {
        let name = format!("generated-{steps}-{seed}");
        let text = flowgen::flow(steps, seed);
        let checked = on_small_stack_or_fail(&name, move || {
            check_twice(&text, &FrontendOptions::default())
        })
        .unwrap_or_else(|problem| panic!("{name}: {problem}"));
        let errors = error_lines(&checked);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        let flow = checked.flow.unwrap_or_else(|| panic!("{name}: no flow"));
        assert_eq!(flow.steps.len(), steps, "{name}");
        assert_eq!(flow.parameters.len(), 5, "{name}");
        let joins = flow.steps.iter().filter(|s| s.is_join).count();
        let splits = flow
            .steps
            .iter()
            .filter(|s| s.transition.targets().len() > 1)
            .count()
            + flow
                .steps
                .iter()
                .filter(|s| matches!(s.transition, flowc_ir::Transition::Foreach { .. }))
                .count();
        assert_eq!(joins, splits, "{name}: every split has its join");
    }
}

// ---------------------------------------------------------------------------------
// (c) Pathological inputs.
// ---------------------------------------------------------------------------------

/// What a pathological case must additionally satisfy beyond soundness.
enum Expect {
    /// Only soundness: no panic, no overflow, finishes, spans valid, deterministic.
    Sound,
    /// Valid Python and a valid flow: read with this many steps and no error.
    Clean { steps: usize },
    /// Valid, but beyond what the frontend may bound its work to: read with this many
    /// steps, or at least one diagnostic saying what was left out.
    CompleteOrDiagnosed { steps: usize },
}

/// Runs pathological cases one after the other and reports every failing one at the
/// end, so that one failure does not hide the others.
#[derive(Default)]
struct Cases {
    failures: Vec<String>,
}

impl Cases {
    fn run(&mut self, name: &str, text: String, options: FrontendOptions, expect: Expect) {
        let started = std::time::Instant::now();
        let outcome = run_case(name, &text, options, expect);
        // Shown with `--nocapture`: where the time of a slow run goes.
        eprintln!(
            "{name}: {} bytes, checked twice in {:.2?}",
            text.len(),
            started.elapsed()
        );
        if let Err(problem) = outcome {
            let saved = save_failure(name, &text);
            self.failures
                .push(format!("{name}: {problem}\n    input: {}", saved.display()));
        }
    }

    fn sound(&mut self, name: &str, text: String) {
        self.run(name, text, FrontendOptions::default(), Expect::Sound);
    }

    fn clean(&mut self, name: &str, text: String, steps: usize) {
        self.run(
            name,
            text,
            FrontendOptions::default(),
            Expect::Clean { steps },
        );
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} cases failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn run_case(
    name: &str,
    text: &str,
    options: FrontendOptions,
    expect: Expect,
) -> Result<(), String> {
    let text_for_thread = text.to_string();
    let checked = on_small_stack(&format!("check:{name}"), move || {
        check_twice(&text_for_thread, &options)
    })??;
    let read = checked.flow.as_ref().map_or(0, |f| f.steps.len());
    if let Expect::CompleteOrDiagnosed { steps } = expect {
        if read != steps && checked.diagnostics.is_empty() {
            return Err(format!(
                "read {read} steps, expected {steps}, and reported nothing"
            ));
        }
    }
    if let Expect::Clean { steps } = expect {
        let errors = error_lines(&checked);
        if !errors.is_empty() {
            return Err(format!(
                "{} unexpected errors, the first: {:#?}",
                errors.len(),
                &errors[..errors.len().min(10)]
            ));
        }
        if read != steps {
            return Err(format!(
                "read {read} steps, expected {steps}, and reported no error"
            ));
        }
    }
    Ok(())
}

/// A two-step flow whose `start` carries `decorator` and whose body is `body`.
fn flow_with(module: &str, decorator: &str, body: &str) -> String {
    format!(
        "from metaflow import FlowSpec, step, resources, environment, retry, timeout\n{module}\n\n\
         class DeepFlow(FlowSpec):\n    {decorator}\n    @step\n    def start(self):\n{body}        \
         self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n"
    )
}

const DEPTH: usize = 10_000;

#[test]
fn pathological_nesting() {
    let mut cases = Cases::default();
    let parens = format!("{}1{}", "(".repeat(DEPTH), ")".repeat(DEPTH));
    cases.sound(
        "deep-parens",
        flow_with("", &format!("@resources(memory={parens})"), ""),
    );
    let lists = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    cases.sound(
        "deep-lists",
        flow_with("", &format!("@environment(vars={lists})"), ""),
    );
    let dicts = format!("{}1{}", "{\"k\": ".repeat(DEPTH), "}".repeat(DEPTH));
    cases.sound(
        "deep-dicts",
        flow_with("", &format!("@environment(vars={dicts})"), ""),
    );
    let sum = format!("{}1", "1 + ".repeat(DEPTH));
    cases.sound(
        "long-sum",
        flow_with("", &format!("@resources(memory={sum})"), ""),
    );
    let power = format!("{}2", "2 ** ".repeat(DEPTH));
    cases.sound(
        "long-power",
        flow_with("", &format!("@resources(memory={power})"), ""),
    );
    let unary = format!("{}1", "-".repeat(DEPTH));
    cases.sound(
        "deep-unary",
        flow_with("", &format!("@retry(times={unary})"), ""),
    );
    let not = format!("{}True", "not ".repeat(DEPTH));
    cases.sound(
        "deep-not",
        flow_with("", &format!("@retry(times={not})"), ""),
    );
    let concat = format!("{}\"b\"", "\"a\" + ".repeat(DEPTH));
    cases.sound(
        "long-concat",
        flow_with("", &format!("@environment(vars={{\"K\": {concat}}})"), ""),
    );
    cases.sound(
        "deep-parens-constant",
        flow_with(
            &format!("MEMORY = {parens}"),
            "@resources(memory=MEMORY)",
            "",
        ),
    );
    cases.sound(
        "deep-parens-next",
        format!(
            "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def start(self):\n        \
             self.next({}self.end{})\n    @step\n    def end(self):\n        pass\n",
            "(".repeat(DEPTH),
            ")".repeat(DEPTH)
        ),
    );
    let chain: String = (1..DEPTH).fold("C0 = 1\n".to_string(), |mut s, i| {
        let _ = writeln!(s, "C{i} = C{} + 1", i - 1);
        s
    });
    cases.sound(
        "constant-chain",
        flow_with(&chain, &format!("@resources(memory=C{})", DEPTH - 1), ""),
    );
    cases.sound(
        "constant-cycle",
        flow_with("A = B\nB = A\nC = C + 1", "@resources(memory=A, cpu=C)", ""),
    );
    // CPython allows about a hundred indentation levels; tree-sitter has no such limit.
    let mut ifs = String::new();
    for level in 0..1500 {
        let _ = writeln!(ifs, "{}if x{level}:", " ".repeat(8 + level));
    }
    let _ = writeln!(ifs, "{}pass", " ".repeat(8 + 1500));
    cases.sound("deep-if", flow_with("", "@retry", &ifs));
    let mut next_in_if = String::new();
    for level in 0..1500 {
        let _ = writeln!(next_in_if, "{}if x:", " ".repeat(8 + level));
    }
    let _ = writeln!(next_in_if, "{}self.next(self.end)", " ".repeat(8 + 1500));
    cases.sound("deep-if-next", flow_with("", "@retry", &next_in_if));
    cases.finish();
}

#[test]
fn pathological_size() {
    let mut cases = Cases::default();
    let big = "x".repeat(5 << 20);
    cases.clean(
        "5mb-default",
        format!(
            "from metaflow import FlowSpec, Parameter, step\nclass F(FlowSpec):\n    p = Parameter(\"p\", default=\"{big}\")\n\
             \n    @step\n    def start(self):\n        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n"
        ),
        2,
    );
    cases.clean(
        "5mb-docstring",
        flow_with("", "@retry", &format!("        \"\"\"{big}\"\"\"\n")),
        2,
    );
    cases.clean(
        "5mb-decorator",
        flow_with(
            "",
            &format!("@environment(vars={{\"BIG\": \"{big}\"}})"),
            "",
        ),
        2,
    );
    cases.sound(
        "5mb-unterminated",
        flow_with("", &format!("@environment(vars={{\"BIG\": \"{big}"), ""),
    );
    drop(big);

    let body: String = (0..100_000).fold(String::new(), |mut s, i| {
        let _ = writeln!(s, "        self.x{i} = {i}");
        s
    });
    cases.clean("100k-line-body", flow_with("", "@retry", &body), 2);
    let comments = "# a comment line\n".repeat(100_000);
    cases.clean("100k-comment-lines", flow_with(&comments, "@retry", ""), 2);
    cases.sound("100k-blank-lines", "\n".repeat(100_000));
    let list = format!("[{}]", "1, ".repeat(300_000));
    cases.sound(
        "1mb-line",
        flow_with(
            &format!("ITEMS = {list}"),
            &format!("@environment(vars={{\"K\": {list}}})"),
            "",
        ),
    );
    cases.finish();
}

#[test]
fn pathological_graphs() {
    let mut cases = Cases::default();
    let n = DEPTH;
    // A split into 10,000 existing steps, joined again.
    let mut wide = String::from("from metaflow import FlowSpec, step\n\nclass WideFlow(FlowSpec):\n    @step\n    def start(self):\n        self.next(");
    wide.push_str(
        &(0..n)
            .map(|i| format!("self.a{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    wide.push_str(")\n");
    for i in 0..n {
        let _ = write!(
            wide,
            "\n    @step\n    def a{i}(self):\n        self.next(self.join)\n"
        );
    }
    wide.push_str("\n    @step\n    def join(self, inputs):\n        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n");
    cases.clean("10k-targets", wide, n + 3);
    let unknown = format!(
        "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def start(self):\n        self.next({})\n    @step\n    def end(self):\n        pass\n",
        (0..n).map(|i| format!("self.missing{i}")).collect::<Vec<_>>().join(", ")
    );
    cases.sound("10k-unknown-targets", unknown);
    // A 10,000-step chain: a recursive walk of the graph goes 10,000 frames deep.
    let mut chain = String::from("from metaflow import FlowSpec, step\n\nclass ChainFlow(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.s0)\n");
    for i in 0..n {
        let next = if i + 1 == n {
            "end".to_string()
        } else {
            format!("s{}", i + 1)
        };
        let _ = write!(
            chain,
            "\n    @step\n    def s{i}(self):\n        self.next(self.{next})\n"
        );
    }
    chain.push_str("\n    @step\n    def end(self):\n        pass\n");
    cases.clean("10k-chain", chain.clone(), n + 2);
    // The same chain closed into a cycle back to s0.
    cases.sound(
        "10k-cycle",
        chain.replace("self.next(self.end)", "self.next(self.s0)"),
    );
    // 1,000 nested foreaches, each closed by its own join.
    let mut nested = String::from("from metaflow import FlowSpec, step\n\nclass NestedFlow(FlowSpec):\n    @step\n    def start(self):\n        self.xs = [1]\n        self.next(self.f0, foreach=\"xs\")\n");
    let depth = 1000;
    for i in 0..depth {
        let next = if i + 1 == depth {
            "self.next(self.j0)".to_string()
        } else {
            format!(
                "self.xs = [1]\n        self.next(self.f{}, foreach=\"xs\")",
                i + 1
            )
        };
        let _ = write!(nested, "\n    @step\n    def f{i}(self):\n        {next}\n");
    }
    for i in 0..depth {
        let next = if i + 1 == depth {
            "end".to_string()
        } else {
            format!("j{}", i + 1)
        };
        let _ = write!(
            nested,
            "\n    @step\n    def j{i}(self, inputs):\n        self.next(self.{next})\n"
        );
    }
    nested.push_str("\n    @step\n    def end(self):\n        pass\n");
    cases.clean("1k-nested-foreach", nested, 2 * depth + 2);
    let generated = flowgen::flow(10_000, 7);
    cases.clean("generated-10k", generated, 10_000);
    cases.finish();
}

/// `Base0` (with `start`) ← `Base1` ← … ← `Leaf` (with `end`): `depth + 1` classes.
fn inheritance_chain(depth: usize) -> String {
    let mut text = String::from(
        "from metaflow import FlowSpec, step\n\nclass Base0(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.end)\n",
    );
    for i in 1..depth {
        let _ = write!(text, "\nclass Base{i}(Base{}):\n    pass\n", i - 1);
    }
    let _ = write!(
        text,
        "\nclass Leaf(Base{}):\n    @step\n    def end(self):\n        pass\n",
        depth.saturating_sub(1)
    );
    text
}

#[test]
fn pathological_classes() {
    let mut cases = Cases::default();
    // A deep chain of bases: resolving them recursively would overflow the stack.
    let chosen = || FrontendOptions {
        flow: Some("Leaf".to_string()),
    };
    cases.sound("5k-inheritance-ambiguous", inheritance_chain(5_000));
    cases.run(
        "5k-inheritance-chosen",
        inheritance_chain(5_000),
        chosen(),
        Expect::Clean { steps: 2 },
    );
    // Deeper than any bound the frontend may put on base resolution: whatever it
    // does, it must not silently read a different flow.
    cases.run(
        "20k-inheritance-chosen",
        inheritance_chain(20_000),
        chosen(),
        Expect::CompleteOrDiagnosed { steps: 2 },
    );
    cases.sound(
        "inheritance-cycle",
        "from metaflow import FlowSpec, step\nclass A(B):\n    pass\nclass B(A):\n    pass\nclass C(C):\n    pass\n\
         class D(A, FlowSpec):\n    @step\n    def start(self):\n        self.next(self.end)\n    @step\n    def end(self):\n        pass\n"
            .to_string(),
    );
    let many: String = (0..5000).fold(String::from("from metaflow import FlowSpec, step\n"), |mut s, i| {
        let _ = write!(s, "\nclass F{i}(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.end)\n    @step\n    def end(self):\n        pass\n");
        s
    });
    cases.sound("5k-flow-classes", many);
    cases.finish();
}

#[test]
fn pathological_numbers() {
    let mut cases = Cases::default();
    for (name, expr) in [
        ("pow-huge", "10 ** 1000"),
        ("pow-2-100000", "2 ** 100000"),
        ("pow-negative", "2 ** -1"),
        ("int-literal-huge", "99999999999999999999999999999999999999"),
        ("i64-max-plus-one", "9223372036854775807 + 1"),
        ("i64-min-div-minus-one", "(-9223372036854775807 - 1) // -1"),
        ("i64-min-mod-minus-one", "(-9223372036854775807 - 1) % -1"),
        ("i64-min-negated", "-(-9223372036854775807 - 1)"),
        (
            "i64-mul-overflow",
            "9223372036854775807 * 9223372036854775807",
        ),
        ("shift-huge", "1 << 100000"),
        ("div-zero", "1 // 0"),
        ("mod-zero", "1 % 0"),
        ("true-div-zero", "1 / 0"),
        ("float-div-zero", "1.0 / 0.0"),
        ("inf-minus-inf", "1e999 - 1e999"),
        ("float-huge", "1e999"),
        ("string-repeat-huge", "\"x\" * 10 ** 12"),
        ("string-repeat-i64", "\"x\" * 9223372036854775807"),
        ("list-repeat-huge", "[1] * 10 ** 12"),
        ("string-repeat-negative", "\"x\" * -5"),
        (
            "literals-odd",
            "[0x_ff, 0o777, 0b1010, 1_000_000, 1j, 1e-999, .5, 5.]",
        ),
    ] {
        cases.sound(
            name,
            flow_with(
                "",
                &format!("@resources(memory={expr})\n    @environment(vars={{\"V\": {expr}}})"),
                "",
            ),
        );
    }
    cases.finish();
}

#[test]
fn pathological_bytes_and_encodings() {
    let mut cases = Cases::default();
    let base = HELLO_FLOW;
    for (name, text) in [
        ("empty", String::new()),
        ("whitespace-only", " \n\t\n   \r\n".to_string()),
        ("bom-only", "\u{feff}".to_string()),
        ("nul-only", "\0".to_string()),
        ("cr-only", "\r".repeat(100)),
        (
            "nul-every-40-bytes",
            base.as_bytes()
                .chunks(40)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\0"),
        ),
        ("nul-in-string", base.replace("\"hello\"", "\"he\0llo\"")),
        ("lone-cr-line-endings", base.replace('\n', "\r")),
        (
            "tabs-and-spaces",
            base.replace("        ", "\t")
                .replace("    @step", "  \t@step"),
        ),
        ("tab-indented", base.replace("    ", "\t")),
        ("replacement-chars", base.replace('e', "\u{fffd}")),
        (
            "bidi-and-zero-width",
            base.replace("hello", "he\u{202e}l\u{200b}lo"),
        ),
    ] {
        cases.sound(name, text);
    }
    cases.finish();
}

/// CRLF line endings and a UTF-8 BOM are valid Python: the flow must read the same.
#[test]
fn crlf_and_bom_read_like_plain_text() {
    for (steps, seed) in [(2, 3), (30, 4)] {
        let plain = flowgen::flow(steps, seed);
        let variants = [
            ("crlf", plain.replace('\n', "\r\n")),
            ("bom", format!("\u{feff}{plain}")),
            (
                "bom-crlf",
                format!("\u{feff}{}", plain.replace('\n', "\r\n")),
            ),
        ];
        let reference = on_small_stack_or_fail("plain", move || {
            check_twice(&plain, &FrontendOptions::default())
        })
        .unwrap_or_else(|problem| panic!("plain: {problem}"));
        assert!(
            error_lines(&reference).is_empty(),
            "{:#?}",
            error_lines(&reference)
        );
        for (name, text) in variants {
            let name = format!("{name}-{steps}");
            let label = name.clone();
            let checked = on_small_stack_or_fail(&name, move || {
                check_twice(&text, &FrontendOptions::default())
            })
            .unwrap_or_else(|problem| panic!("{label}: {problem}"));
            assert_eq!(error_lines(&checked), Vec::<String>::new(), "{name}");
            assert_eq!(
                shape(&checked),
                shape(&reference),
                "{name}: steps and transitions"
            );
            let params = |c: &Checked| {
                c.flow.as_ref().map(|f| {
                    f.parameters
                        .iter()
                        .map(|p| (p.name.clone(), p.default.clone()))
                        .collect::<Vec<_>>()
                })
            };
            assert_eq!(params(&checked), params(&reference), "{name}: parameters");
        }
    }
}
