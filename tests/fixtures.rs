//! Fixture flows in, snapshots out: every file under `fixtures/flows/` and `examples/`
//! goes through `flowc::check`, and what comes out is asserted and snapshotted.
//!
//! The fixtures are the data; this file only knows how to read their headers:
//!
//! - `# expect: CODE [CODE...]` (first line of every invalid fixture): exactly these
//!   codes must be reported, no others.
//! - `# expect-warnings: CODE [CODE...]` (valid fixtures, optional): warnings allowed.
//! - `# flowc: --flow NAME`: which flow class to read, as the CLI's `--flow` would.
//! - `# expect-compile: TARGET [--SETTING VALUE...] CODE [CODE...]` (invalid fixtures
//!   whose problem only a backend sees, e.g. `# expect-compile: argo
//!   flowc::argo::name-too-long`): the flow checks clean (but for the codes of an
//!   `# expect:` header, warnings only), and compiling it for TARGET reports exactly these
//!   codes. The settings, written as `flowc compile`'s flags, change the fixed
//!   configuration where a code needs one (`sfn --map-mode inline --foreach-width
//!   start=100`). [`compile`] knows the targets and the settings each takes.
//!
//! An invalid fixture's snapshot is its diagnostics rendered compactly with the source
//! line and a caret line under the exact span, so a reviewer sees where each one points.
//! A valid fixture's snapshot is its IR as pretty JSON.
//!
//! `docs/diagnostics.md` is generated here too, from the code registry, the
//! explanations in `fixtures/flows/invalid/explanations.md` and one invalid fixture a
//! code; `UPDATE_DOCS=1 cargo test -p flowc --test fixtures` rewrites it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use flowc::backends::argo::{argo, ArgoConfig, CodePackageRef};
use flowc::backends::sfn::{batch, sfn, MapMode, Platform, SfnConfig};
use flowc::diagnostics::{Diagnostic, Severity, CODES};
use flowc::{Checked, FrontendOptions};
use flowc_ir::{Flow, Span, Transition};

/// One fixture file with its header read.
struct Fixture {
    /// File stem, e.g. `cycle`: names the snapshot.
    name: String,
    /// Path relative to the workspace root, with `/` separators: what the IR and the
    /// rendered diagnostics show, so snapshots do not depend on where the checkout is.
    rel_path: String,
    text: String,
    /// Codes after `# expect:`.
    expect: Vec<String>,
    /// Codes after `# expect-warnings:`.
    expect_warnings: Vec<String>,
    /// What `# expect-compile:` asks for.
    expect_compile: Option<ExpectCompile>,
    options: FrontendOptions,
}

fn workspace_root() -> PathBuf {
    // The test belongs to crate `flowc`, whose manifest is in `compiler/`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compiler/ has a parent directory")
        .to_path_buf()
}

/// Every `*.py` directly under `dir` (relative to the workspace root), sorted by name.
fn load_dir(dir: &str) -> Vec<Fixture> {
    let abs = workspace_root().join(dir);
    let entries =
        std::fs::read_dir(&abs).unwrap_or_else(|e| panic!("cannot read {}: {e}", abs.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "py"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let file_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("fixture names are UTF-8");
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            read_header(
                file_name.trim_end_matches(".py"),
                &format!("{dir}/{file_name}"),
                text,
            )
        })
        .collect()
}

/// The `# expect-compile:` header: a target, the settings to compile with, the codes.
struct ExpectCompile {
    target: String,
    /// `(flag, value)` pairs as written, e.g. `("--map-mode", "inline")`.
    settings: Vec<(String, String)>,
    codes: Vec<String>,
}

impl ExpectCompile {
    /// The words after `expect-compile:`. A word starting with `--` takes the next word
    /// as its value; the other words after the target are codes.
    fn parse(rel_path: &str, rest: &str) -> Self {
        let mut words = rest.split_whitespace().map(str::to_string);
        let target = words.next().unwrap_or_default();
        let (mut settings, mut codes) = (Vec::new(), Vec::new());
        while let Some(word) = words.next() {
            if word.starts_with("--") {
                let value = words.next().unwrap_or_else(|| {
                    panic!("{rel_path}: `# expect-compile:` setting {word} has no value")
                });
                settings.push((word, value));
            } else {
                codes.push(word);
            }
        }
        ExpectCompile {
            target,
            settings,
            codes,
        }
    }

    /// The command a user would type to see these codes, for the docs.
    fn command(&self) -> String {
        let mut command = format!("flowc compile --target {}", self.target);
        for (flag, value) in &self.settings {
            let _ = write!(command, " {flag} {value}");
        }
        command
    }
}

/// Read the leading comment lines of a fixture for its `expect` and `flowc` headers.
fn read_header(name: &str, rel_path: &str, text: String) -> Fixture {
    let mut fixture = Fixture {
        name: name.to_string(),
        rel_path: rel_path.to_string(),
        expect: Vec::new(),
        expect_warnings: Vec::new(),
        expect_compile: None,
        options: FrontendOptions::default(),
        text: String::new(),
    };
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let line = line.trim_start_matches('#').trim();
        if let Some(codes) = line.strip_prefix("expect:") {
            fixture.expect = codes.split_whitespace().map(str::to_string).collect();
        } else if let Some(rest) = line.strip_prefix("expect-compile:") {
            fixture.expect_compile = Some(ExpectCompile::parse(rel_path, rest));
        } else if let Some(codes) = line.strip_prefix("expect-warnings:") {
            fixture.expect_warnings = codes.split_whitespace().map(str::to_string).collect();
        } else if let Some(args) = line.strip_prefix("flowc:") {
            let args: Vec<&str> = args.split_whitespace().collect();
            match args.as_slice() {
                ["--flow", flow] => fixture.options.flow = Some((*flow).to_string()),
                other => panic!("{rel_path}: unknown `# flowc:` arguments {other:?}"),
            }
        }
    }
    fixture.text = text;
    fixture
}

/// The one entry point every test here goes through.
fn check(fixture: &Fixture) -> Checked {
    flowc::check(&fixture.rel_path, &fixture.text, &fixture.options)
}

/// The diagnostics of compiling a checked flow for `target`, with a fixed, valid
/// configuration changed only by the fixture's `settings`, so that only the flow (and
/// a setting the fixture names) can cause them. A new target adds its arm.
fn compile(
    target: &str,
    settings: &[(String, String)],
    flow: &Flow,
) -> Result<Vec<Diagnostic>, String> {
    match target {
        "argo" => {
            if let Some((flag, _)) = settings.first() {
                return Err(format!("the argo target takes no setting, not {flag}"));
            }
            let config = ArgoConfig {
                image: "python:3.12-slim".to_owned(),
                namespace: Some("flows".to_owned()),
                service_account: None,
                datastore_root: "s3://flowc-fixtures/store".to_owned(),
                shim_image: "flowc-shim:0.1.0".to_owned(),
                labels: BTreeMap::new(),
                code_package: CodePackageRef {
                    hash: "0".repeat(64),
                    entry: "flow.py".to_owned(),
                },
                user: Some("fixture".to_owned()),
                event_source: "flowc-events".to_owned(),
                event_webhook_url: None,
                flowc_version: "0.0.0".to_owned(),
            };
            Ok(argo(flow, &config).err().unwrap_or_default())
        }
        "sfn" | "batch" => {
            let config = sfn_config(settings)?;
            let diagnostics = if target == "sfn" {
                sfn(flow, &config).err()
            } else {
                batch(flow, &config).err()
            };
            Ok(diagnostics.unwrap_or_default())
        }
        other => Err(format!("unknown target `{other}` in `# expect-compile:`")),
    }
}

/// The Step Functions and Batch configuration of the fixtures: every setting a flow
/// may need is given (roles, and region and account for `@schedule`), so that a code
/// comes from the flow, or from one of the `settings` of `flowc compile` written in the
/// fixture's header.
fn sfn_config(settings: &[(String, String)]) -> Result<SfnConfig, String> {
    let account = "123456789012";
    let mut config = SfnConfig {
        image: format!("{account}.dkr.ecr.eu-west-1.amazonaws.com/flows:1"),
        shim_path: "/usr/local/bin/flowc-shim".to_owned(),
        job_queue: "flowc-fixtures".to_owned(),
        job_role: Some(format!("arn:aws:iam::{account}:role/flowc-job")),
        execution_role: Some(format!("arn:aws:iam::{account}:role/flowc-ecs-exec")),
        datastore_root: "s3://flowc-fixtures/store".to_owned(),
        region: Some("eu-west-1".to_owned()),
        account: Some(account.to_owned()),
        schedule_role: Some(format!("arn:aws:iam::{account}:role/flowc-scheduler")),
        platform: Platform::Ec2,
        map_mode: MapMode::Distributed,
        max_concurrency: None,
        foreach_widths: BTreeMap::new(),
        code_package: CodePackageRef {
            hash: "0".repeat(64),
            entry: "flow.py".to_owned(),
        },
        user: Some("fixture".to_owned()),
        flowc_version: "0.0.0".to_owned(),
    };
    for (flag, value) in settings {
        let bad = || format!("`{flag} {value}` is not a valid setting value");
        match flag.as_str() {
            "--platform" => {
                config.platform = match value.as_str() {
                    "ec2" => Platform::Ec2,
                    "fargate" => Platform::Fargate,
                    _ => return Err(bad()),
                }
            }
            "--map-mode" => {
                config.map_mode = match value.as_str() {
                    "distributed" => MapMode::Distributed,
                    "inline" => MapMode::Inline,
                    _ => return Err(bad()),
                }
            }
            "--max-concurrency" => {
                config.max_concurrency = Some(value.parse().map_err(|_| bad())?);
            }
            "--foreach-width" => {
                let (step, width) = value.split_once('=').ok_or_else(bad)?;
                let width = width.parse().map_err(|_| bad())?;
                config.foreach_widths.insert(step.to_owned(), width);
            }
            other => {
                return Err(format!(
                    "the sfn and batch targets take no setting {other} in `# expect-compile:`"
                ))
            }
        }
    }
    Ok(config)
}

/// Everything reported for an invalid fixture: `flowc check`'s diagnostics, then
/// those of compiling it for its `# expect-compile:` target, if any.
fn reports(fixture: &Fixture) -> Result<Vec<Diagnostic>, String> {
    let checked = check(fixture);
    let mut all = checked.diagnostics.clone();
    if let Some(expect) = &fixture.expect_compile {
        if expect.codes.is_empty() {
            return Err(format!(
                "{}: `# expect-compile: {}` names no code",
                fixture.rel_path, expect.target
            ));
        }
        if checked.has_errors() {
            return Err(format!(
                "{}: `# expect-compile:` needs a flow that checks without errors\n{}",
                fixture.rel_path,
                render(fixture, &checked.diagnostics)
            ));
        }
        let flow = checked
            .flow
            .as_ref()
            .ok_or_else(|| format!("{}: no flow was read", fixture.rel_path))?;
        all.extend(
            compile(&expect.target, &expect.settings, flow)
                .map_err(|e| format!("{}: {e}", fixture.rel_path))?,
        );
    }
    Ok(all)
}

/// Every code an invalid fixture expects, from `flowc check` or a backend.
fn expected_codes(fixture: &Fixture) -> impl Iterator<Item = &String> {
    fixture
        .expect
        .iter()
        .chain(fixture.expect_compile.iter().flat_map(|e| &e.codes))
}

/// Codes without an example fixture, with the reason: no flow file can trigger them
/// today, or only one far too large to show. The docs give the reason instead of an
/// example. A fixture that does trigger one must take it off this list.
const NO_SOURCE_EXAMPLE: &[(&str, &str)] = &[
    (
        "flowc::argo::unsupported-graph",
        "it is reported for `@parallel` steps, and the frontend refuses `num_parallel=` until the IR can express it",
    ),
    (
        "flowc::sfn::container-overrides-too-large",
        "a flow reaches the limit only through a branch join of some eighty branches with long step names, too large to show here; the backend's unit tests cover it",
    ),
    (
        "flowc::sfn::unsupported-graph",
        "it is reported for `@parallel` steps, and the frontend refuses `num_parallel=` until the IR can express it",
    ),
];

/// 1-based line and column (in characters) of byte offset `at`, and the line's text.
fn locate(text: &str, at: usize) -> Option<(usize, usize, &str)> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line_no = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    Some((line_no, column, &text[line_start..line_end]))
}

/// The source line of `span` with a caret line under it. A span running past the end of
/// its first line is underlined to the end of that line and its end position is given.
fn render_span(out: &mut String, text: &str, path: &str, span: Span, note: &str) {
    let (Some((line, col, src)), Some((end_line, end_col, _))) =
        (locate(text, span.start), locate(text, span.end))
    else {
        // Checked separately by `assert_spans_valid`; rendered here so the snapshot
        // still says what was wrong.
        let _ = writeln!(
            out,
            "  --> {path}: invalid span {}..{}",
            span.start, span.end
        );
        return;
    };
    let gutter = line.to_string().len();
    let _ = writeln!(out, "  --> {path}:{line}:{col}");
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{line} | {src}");
    // Keep tabs so the carets line up under tab-indented code.
    let pad: String = src
        .chars()
        .take(col - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let width = if end_line == line {
        end_col - col
    } else {
        src.chars().count() + 1 - col
    };
    let carets = if span.is_empty() {
        "^ (empty span)".to_string()
    } else {
        "^".repeat(width.max(1))
    };
    let mut marker = format!("{pad}{carets}");
    if end_line != line {
        let _ = write!(marker, " (to {end_line}:{end_col})");
    }
    if !note.is_empty() {
        let _ = write!(marker, " {note}");
    }
    let _ = writeln!(out, "{:gutter$} | {marker}", "");
}

/// Diagnostics as text: stable, compact, and showing every span exactly.
fn render(fixture: &Fixture, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{severity}[{}]: {}", d.code, d.message);
        render_span(&mut out, &fixture.text, &fixture.rel_path, d.span, &d.label);
        for related in &d.related {
            let _ = writeln!(out, "  = related: {}", related.message);
            render_span(&mut out, &fixture.text, &fixture.rel_path, related.span, "");
        }
        if let Some(help) = &d.help {
            let _ = writeln!(out, "  = help: {help}");
        }
    }
    out
}

/// Every span must lie inside the file and on character boundaries: anything else
/// would make the CLI's renderer point at the wrong place (or fail).
fn assert_spans_valid(fixture: &Fixture, diagnostics: &[Diagnostic]) -> Result<(), String> {
    let text = &fixture.text;
    let ok = |s: Span| s.start <= s.end && text.get(s.start..s.end).is_some();
    for d in diagnostics {
        let spans = std::iter::once(d.span).chain(d.related.iter().map(|r| r.span));
        for span in spans {
            if !ok(span) {
                return Err(format!(
                    "{}: {} has span {}..{} outside the {}-byte file or off a char boundary",
                    fixture.rel_path,
                    d.code,
                    span.start,
                    span.end,
                    text.len()
                ));
            }
        }
    }
    Ok(())
}

/// Every span the IR records must cover the thing it names (a step's name, a
/// parameter's quoted name, a `self.next(...)` call, a target `self.<step>`, ...):
/// backends and diagnostics point users at these ranges.
fn ir_span_problems(fixture: &Fixture, flow: &Flow) -> Vec<String> {
    let text = &fixture.text;
    let at = |span: Span| text.get(span.start..span.end).unwrap_or("<out of range>");
    let mut problems = Vec::new();
    let mut expect = |what: &str, span: Span, ok: bool| {
        if !ok {
            problems.push(format!(
                "{}: {what} span covers {:?}",
                fixture.rel_path,
                at(span)
            ));
        }
    };
    expect("flow name", flow.name_span, at(flow.name_span) == flow.name);
    expect(
        "flow class",
        flow.span,
        at(flow.span).contains(&format!("class {}", flow.name)),
    );
    for p in &flow.parameters {
        let quoted = [format!("\"{}\"", p.name), format!("'{}'", p.name)];
        expect(
            "parameter name",
            p.name_span,
            quoted.iter().any(|q| at(p.name_span) == q),
        );
        expect("parameter", p.span, at(p.span).starts_with(&p.attr));
        if let Some(d) = p.default_span {
            // `default=...`, or the default passed positionally: inside the call either way.
            let written = at(d);
            expect(
                "parameter default",
                d,
                !d.is_empty()
                    && p.span.start <= d.start
                    && d.end <= p.span.end
                    && (written.starts_with("default") || !written.contains('=')),
            );
        }
    }
    for step in &flow.steps {
        expect("step name", step.name_span, at(step.name_span) == step.name);
        expect(
            "step params",
            step.params_span,
            at(step.params_span).starts_with("(self"),
        );
        expect(
            "step",
            step.span,
            at(step.span).contains(&format!("def {}(", step.name)),
        );
        for d in &step.decorators {
            expect(
                "decorator",
                d.span,
                at(d.span).starts_with('@') && at(d.span).contains(&d.name),
            );
        }
        if let Some(span) = step.transition_span {
            expect("transition", span, at(span).starts_with("self.next("));
        }
        for target in step.transition.targets() {
            expect(
                "target",
                target.span,
                at(target.span) == format!("self.{}", target.step),
            );
        }
        match &step.transition {
            Transition::Foreach {
                over, over_span, ..
            } => {
                expect(
                    "foreach",
                    *over_span,
                    at(*over_span).trim_matches(['"', '\'']) == over,
                );
            }
            Transition::Switch { on, on_span, .. } => {
                expect(
                    "condition",
                    *on_span,
                    at(*on_span).trim_matches(['"', '\'']) == on,
                );
            }
            _ => {}
        }
    }
    problems
}

fn codes_of(diagnostics: &[Diagnostic]) -> BTreeSet<&str> {
    diagnostics.iter().map(|d| d.code).collect()
}

fn snapshot(fixture: &Fixture, kind: &str, value: &str) {
    insta::with_settings!({
        input_file => workspace_root().join(&fixture.rel_path),
        omit_expression => true,
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(format!("{kind}__{}", fixture.name), value);
    });
}

/// Run `one` on every fixture, collecting failures instead of stopping at the first, so
/// a single run shows (and records new snapshots for) everything that changed.
fn for_each(fixtures: &[Fixture], one: impl Fn(&Fixture) -> Result<(), String>) {
    let mut failures = Vec::new();
    for fixture in fixtures {
        match catch_unwind(AssertUnwindSafe(|| one(fixture))) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => failures.push(message),
            Err(_) => failures.push(format!("{}: panicked (see above)", fixture.rel_path)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

fn invalid_fixtures() -> Vec<Fixture> {
    load_dir("fixtures/flows/invalid")
}

fn valid_fixtures() -> Vec<Fixture> {
    load_dir("fixtures/flows/valid")
}

#[test]
fn invalid_fixtures_report_exactly_their_expected_codes() {
    let fixtures = invalid_fixtures();
    assert!(
        fixtures.len() >= 30,
        "only {} invalid fixtures",
        fixtures.len()
    );
    for_each(&fixtures, |fixture| {
        if fixture.expect.is_empty() && fixture.expect_compile.is_none() {
            return Err(format!(
                "{}: no `# expect:` or `# expect-compile:` header",
                fixture.rel_path
            ));
        }
        let checked = check(fixture);
        let diagnostics = reports(fixture)?;
        assert_spans_valid(fixture, &diagnostics)?;
        let got = codes_of(&diagnostics);
        let want: BTreeSet<&str> = expected_codes(fixture).map(String::as_str).collect();
        let rendered = render(fixture, &diagnostics);
        if got != want {
            return Err(format!(
                "{}: expected codes {want:?}, got {got:?}\n{rendered}",
                fixture.rel_path
            ));
        }
        // What `flowc check` alone must make of it: backend codes come after the check.
        let expects_error = CODES
            .iter()
            .any(|c| fixture.expect.contains(&c.name.to_owned()) && c.severity == Severity::Error);
        if expects_error != checked.has_errors() {
            return Err(format!(
                "{}: has_errors() is {} but the expected codes say {expects_error}",
                fixture.rel_path,
                checked.has_errors()
            ));
        }
        snapshot(fixture, "invalid", &rendered);
        Ok(())
    });
}

#[test]
fn valid_fixtures_check_clean_and_snapshot_their_ir() {
    let fixtures = valid_fixtures();
    assert!(
        fixtures.len() >= 18,
        "only {} valid fixtures",
        fixtures.len()
    );
    for_each(&fixtures, |fixture| {
        let checked = check(fixture);
        assert_spans_valid(fixture, &checked.diagnostics)?;
        let allowed: BTreeSet<&str> = fixture.expect_warnings.iter().map(String::as_str).collect();
        let unexpected: Vec<&Diagnostic> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error() || !allowed.contains(d.code))
            .collect();
        if !unexpected.is_empty() {
            let owned: Vec<Diagnostic> = unexpected.into_iter().cloned().collect();
            return Err(format!(
                "{}: unexpected diagnostics\n{}",
                fixture.rel_path,
                render(fixture, &owned)
            ));
        }
        let missing: Vec<&&str> = allowed
            .iter()
            .filter(|code| !codes_of(&checked.diagnostics).contains(**code))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{}: `# expect-warnings:` lists {missing:?}, which were not reported",
                fixture.rel_path
            ));
        }
        let Some(flow) = &checked.flow else {
            return Err(format!("{}: no flow was read", fixture.rel_path));
        };
        let problems = ir_span_problems(fixture, flow);
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        if flow.source.path != fixture.rel_path {
            return Err(format!(
                "{}: IR source path is {:?}",
                fixture.rel_path, flow.source.path
            ));
        }
        let json = serde_json::to_string_pretty(flow)
            .map_err(|e| format!("{}: IR does not serialise: {e}", fixture.rel_path))?;
        snapshot(fixture, "valid", &json);
        Ok(())
    });
}

#[test]
fn every_fixture_checks_to_identical_bytes_twice() {
    let mut fixtures = invalid_fixtures();
    fixtures.extend(valid_fixtures());
    fixtures.extend(load_dir("examples"));
    for_each(&fixtures, |fixture| {
        let (first, second) = (check(fixture), check(fixture));
        let ir = |c: &Checked| c.flow.as_ref().map(serde_json::to_string_pretty);
        let same_ir = match (ir(&first), ir(&second)) {
            (Some(Ok(a)), Some(Ok(b))) => a == b,
            (None, None) => true,
            _ => false,
        };
        if !same_ir || first.diagnostics != second.diagnostics {
            return Err(format!("{}: two checks differ", fixture.rel_path));
        }
        if render(fixture, &first.diagnostics) != render(fixture, &second.diagnostics) {
            return Err(format!("{}: rendered diagnostics differ", fixture.rel_path));
        }
        Ok(())
    });
}

#[test]
fn examples_check_without_any_diagnostic() {
    let examples = load_dir("examples");
    assert!(examples.len() >= 2, "only {} examples", examples.len());
    for_each(&examples, |example| {
        let checked = check(example);
        if !checked.diagnostics.is_empty() || checked.flow.is_none() {
            return Err(format!(
                "{}: not clean\n{}",
                example.rel_path,
                render(example, &checked.diagnostics)
            ));
        }
        Ok(())
    });
}

/// The headings of `docs/diagnostics.md` that name a code: lines `## \`flowc::...\``.
fn documented_codes() -> BTreeSet<String> {
    let path = workspace_root().join("docs/diagnostics.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.strip_prefix("## `")?.strip_suffix('`'))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_registry_code_is_documented_and_exercised() {
    let registry: BTreeSet<&str> = CODES.iter().map(|c| c.name).collect();
    let documented = documented_codes();
    let exercised: BTreeSet<String> = invalid_fixtures()
        .iter()
        .flat_map(|f| expected_codes(f).cloned().collect::<Vec<_>>())
        .collect();
    let mut problems = Vec::new();
    for code in &registry {
        if !documented.contains(*code) {
            problems.push(format!(
                "{code} has no `## `{code}`` section in docs/diagnostics.md"
            ));
        }
        let exempt = NO_SOURCE_EXAMPLE.iter().any(|(c, _)| c == code);
        if exercised.contains(*code) == exempt {
            problems.push(if exempt {
                format!("{code} is expected by a fixture: take it off NO_SOURCE_EXAMPLE")
            } else {
                format!("{code} is expected by no invalid fixture")
            });
        }
    }
    for (code, _) in NO_SOURCE_EXAMPLE {
        if !registry.contains(code) {
            problems.push(format!(
                "NO_SOURCE_EXAMPLE names {code}, not in the registry"
            ));
        }
    }
    for code in documented.iter().chain(&exercised) {
        if !registry.contains(code.as_str()) {
            problems.push(format!(
                "{code} is documented or expected but not in the registry"
            ));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn documented_severities_match_the_registry() {
    let path = workspace_root().join("docs/diagnostics.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut problems = Vec::new();
    for code in CODES {
        let heading = format!("## `{}`", code.name);
        let Some(at) = text.find(&heading) else {
            continue; // reported by every_registry_code_is_documented_and_exercised
        };
        let section = &text[at + heading.len()..];
        let section = section.find("\n## ").map_or(section, |end| &section[..end]);
        let severity = match code.severity {
            Severity::Error => "Severity: error",
            Severity::Warning => "Severity: warning",
        };
        if !section.contains(severity) {
            problems.push(format!("{}: section does not say `{severity}`", code.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- docs/diagnostics.md --------------------------------------------------------------

const DOCS_PAGE: &str = "docs/diagnostics.md";
const EXPLANATIONS: &str = "fixtures/flows/invalid/explanations.md";

/// The hand-written explanation of each code: the `## `code`` sections of
/// `EXPLANATIONS`, whose text runs to the next heading (HTML comments left out).
fn explanations() -> BTreeMap<String, String> {
    let path = workspace_root().join(EXPLANATIONS);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    let mut in_comment = false;
    for line in text.lines() {
        if in_comment || line.starts_with("<!--") {
            in_comment = !line.contains("-->");
            continue;
        }
        if let Some(code) = line.strip_prefix("## `").and_then(|l| l.strip_suffix('`')) {
            if let Some((code, lines)) = current.take() {
                out.insert(code, lines.join("\n").trim().to_string());
            }
            current = Some((code.to_string(), Vec::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some((code, lines)) = current {
        out.insert(code, lines.join("\n").trim().to_string());
    }
    out
}

/// A fixture's module docstring (one sentence saying what is wrong) and the code after
/// it, header comments left out.
fn docstring_and_body(text: &str) -> (String, &str) {
    let mut rest = text;
    while rest.starts_with('#') {
        rest = rest.find('\n').map_or("", |i| &rest[i + 1..]);
    }
    let rest = rest.trim_start();
    let Some(inner) = rest.strip_prefix("\"\"\"") else {
        return (String::new(), rest);
    };
    match inner.find("\"\"\"") {
        Some(end) => {
            let doc = inner[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            (doc, inner[end + 3..].trim_start())
        }
        None => (String::new(), rest),
    }
}

/// The fixture that illustrates `code`: the first whose only expected code it is, or
/// failing that the first that expects it.
fn example_for<'a>(code: &str, fixtures: &'a [Fixture]) -> Option<&'a Fixture> {
    let only = |f: &&Fixture| {
        let codes: Vec<&String> = expected_codes(f).collect();
        codes.len() == 1 && codes[0] == code
    };
    fixtures.iter().find(only).or_else(|| {
        fixtures
            .iter()
            .find(|f| expected_codes(f).any(|c| c == code))
    })
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_`
/// dropped.
fn anchor(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The whole page, or every reason it cannot be rendered.
fn render_docs_page(
    fixtures: &[Fixture],
    explanations: &BTreeMap<String, String>,
) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    for code in explanations.keys() {
        if !CODES.iter().any(|c| c.name == code) {
            problems.push(format!(
                "{EXPLANATIONS} explains {code}, which is not in the registry"
            ));
        }
    }
    let mut page = String::from(
        "# flowc diagnostics\n\
         \n\
         <!-- Generated from the code registry (compiler/src/diagnostics/codes.rs), the\n     \
         explanations in fixtures/flows/invalid/explanations.md and the fixtures beside\n     \
         them. Do not edit: run `UPDATE_DOCS=1 cargo test -p flowc --test fixtures`. -->\n\
         \n\
         Every problem flowc reports has a stable code. Codes are never renamed or reused, so\n\
         scripts and editor integrations can rely on them (`flowc check --format json` gives the\n\
         code of each diagnostic). Errors stop compilation; warnings do not, unless\n\
         `flowc check --deny-warnings` is used.\n\
         \n\
         Each section below gives the code's severity and meaning, and one example taken from\n\
         `fixtures/flows/invalid/`, the test fixtures that every build checks: the flow (its\n\
         header comment and docstring left out; line numbers are those of the fixture file),\n\
         then the reports of that code for it, in the compact form of the test snapshots:\n\
         the message, the source line and a caret line under the exact span, related places\n\
         and the help. `flowc check` shows the same spans and text.\n\
         \n\
         | Code | Severity | Meaning |\n\
         |---|---|---|\n",
    );
    let severity = |code: &flowc::diagnostics::Code| match code.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    for code in CODES {
        let _ = writeln!(
            page,
            "| [`{}`](#{}) | {} | {} |",
            code.name,
            anchor(code.name),
            severity(code),
            code.summary.replace('|', "\\|")
        );
    }
    for code in CODES {
        let _ = write!(
            page,
            "\n## `{}`\n\nSeverity: {}. Meaning: {}.\n\n",
            code.name,
            severity(code),
            code.summary
        );
        match explanations.get(code.name) {
            Some(text) if !text.is_empty() => {
                let _ = write!(page, "{text}\n\n");
            }
            _ => problems.push(format!(
                "{} has no explanation in {EXPLANATIONS}",
                code.name
            )),
        }
        if let Some((_, reason)) = NO_SOURCE_EXAMPLE.iter().find(|(c, _)| *c == code.name) {
            let _ = writeln!(page, "There is no example of this code: {reason}.");
            continue;
        }
        let Some(fixture) = example_for(code.name, fixtures) else {
            problems.push(format!("{} is expected by no invalid fixture", code.name));
            continue;
        };
        let (doc, body) = docstring_and_body(&fixture.text);
        let all = match reports(fixture) {
            Ok(all) => all,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let reports: Vec<Diagnostic> = all.into_iter().filter(|d| d.code == code.name).collect();
        if reports.is_empty() {
            problems.push(format!(
                "{}: reports no {}, so it cannot illustrate it",
                fixture.rel_path, code.name
            ));
        }
        let doc = match &fixture.options.flow {
            Some(flow) => format!("{doc} Checked with `--flow {flow}`."),
            None => doc,
        };
        let doc = match &fixture.expect_compile {
            Some(expect) => format!("{doc} Reported by `{}`.", expect.command()),
            None => doc,
        };
        let _ = write!(
            page,
            "Example ([`{path}`](../{path})): {doc}\n\n```python\n{}\n```\n\n```text\n{}```\n",
            body.trim_end(),
            render(fixture, &reports),
            path = fixture.rel_path,
        );
    }
    if problems.is_empty() {
        Ok(page)
    } else {
        Err(problems)
    }
}

#[test]
fn diagnostics_page_is_generated_from_the_registry_and_fixtures() {
    let page = render_docs_page(&invalid_fixtures(), &explanations())
        .unwrap_or_else(|problems| panic!("{}", problems.join("\n")));
    let path = workspace_root().join(DOCS_PAGE);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &page)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if committed != page {
        let differs = committed
            .lines()
            .zip(page.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(page.lines().count()));
        panic!(
            "{DOCS_PAGE} is out of date from line {}: run `UPDATE_DOCS=1 cargo test -p flowc \
             --test fixtures` and review the diff\n  committed: {:?}\n  generated: {:?}",
            differs + 1,
            committed.lines().nth(differs).unwrap_or(""),
            page.lines().nth(differs).unwrap_or("")
        );
    }
}

#[test]
fn docs_page_helpers_read_what_they_claim() {
    let (doc, body) = docstring_and_body(
        "# expect: flowc::x::y\n\"\"\"Two\n   lines.\"\"\"\n\nfrom metaflow import step\n",
    );
    assert_eq!(doc, "Two lines.");
    assert_eq!(body, "from metaflow import step\n");
    assert_eq!(
        anchor("flowc::graph::missing-start"),
        "flowcgraphmissing-start"
    );
    let explained = explanations();
    assert!(explained
        .get("flowc::syntax::error")
        .is_some_and(|t| t.starts_with("The file does not parse")));
    assert!(explained.values().all(|t| !t.contains("## ")));
}
