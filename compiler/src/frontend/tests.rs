//! `parse` on small inline flows: every form the frontend reads and every diagnostic
//! it reports, with the exact source text each span covers.

use flowc_ir::{ParameterKind, ParameterType, Span, Transition, Value};

use super::*;
use crate::diagnostics::codes;

fn run(src: &str) -> Parsed {
    parse("flow.py", src, &FrontendOptions::default())
}

fn run_with(src: &str, flow: &str) -> Parsed {
    parse(
        "flow.py",
        src,
        &FrontendOptions {
            flow: Some(flow.to_string()),
        },
    )
}

/// The flow of a source that must produce no diagnostics at all.
fn clean(src: &str) -> Flow {
    let parsed = run(src);
    assert!(
        parsed.diagnostics.is_empty(),
        "unexpected diagnostics: {:#?}",
        parsed.diagnostics
    );
    parsed.flow.expect("a flow")
}

fn at(src: &str, span: Span) -> &str {
    &src[span.start..span.end]
}

/// The diagnostics with `code`, as (message, span text).
fn with_code<'a>(parsed: &'a Parsed, src: &'a str, code: &codes::Code) -> Vec<(&'a str, &'a str)> {
    parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == code.name)
        .map(|d| (d.message.as_str(), at(src, d.span)))
        .collect()
}

const LINEAR: &str = r#"from metaflow import FlowSpec, step

class LinearFlow(FlowSpec):
    """A linear flow.

    It has two steps.
    """

    @step
    def start(self):
        """Begin."""
        self.x = 1
        # a comment after the transition is fine
        self.next(self.end)

    @step
    def end(self):
        pass
"#;

#[test]
fn linear_flow() {
    let flow = clean(LINEAR);
    assert_eq!(flow.name, "LinearFlow");
    assert_eq!(at(LINEAR, flow.name_span), "LinearFlow");
    assert_eq!(
        flow.doc.as_deref(),
        Some("A linear flow.\n\nIt has two steps.")
    );
    assert_eq!(flow.start_step, "start");
    assert_eq!(flow.end_step, "end");
    assert_eq!(flow.source.path, "flow.py");
    assert_eq!(flow.source.sha256.len(), 64);
    assert_eq!(flow.ir_version, flowc_ir::IR_VERSION);
    let names: Vec<&str> = flow.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["start", "end"]);
    let start = &flow.steps[0];
    assert_eq!(start.doc.as_deref(), Some("Begin."));
    assert!(at(LINEAR, start.span).starts_with("@step\n    def start(self):"));
    assert_eq!(at(LINEAR, start.name_span), "start");
    assert_eq!(at(LINEAR, start.params_span), "(self)");
    assert!(start.params.is_empty() && !start.is_join);
    let Transition::Linear { to } = &start.transition else {
        panic!("expected linear, got {:?}", start.transition)
    };
    assert_eq!(to.step, "end");
    assert_eq!(at(LINEAR, to.span), "self.end");
    assert_eq!(
        at(LINEAR, start.transition_span.expect("span")),
        "self.next(self.end)"
    );
    assert_eq!(flow.steps[1].transition, Transition::End);
    assert_eq!(flow.steps[1].transition_span, None);
}

#[test]
fn sha256_is_of_the_file_bytes() {
    let flow = clean(LINEAR);
    let again = clean(LINEAR);
    assert_eq!(flow.source.sha256, again.source.sha256);
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn branch_foreach_and_join() {
    let src = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        self.next(self.join)

    @step
    def join(self, whatever):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let flow = clean(src);
    let Transition::Branch { to } = &flow.step("start").expect("start").transition else {
        panic!("expected a branch")
    };
    let targets: Vec<&str> = to.iter().map(|t| at(src, t.span)).collect();
    assert_eq!(targets, ["self.a", "self.b"]);
    let Transition::Foreach {
        to,
        over,
        over_span,
    } = &flow.step("b").expect("b").transition
    else {
        panic!("expected a foreach")
    };
    assert_eq!(to.step, "fan");
    assert_eq!(over, "items");
    assert_eq!(at(src, *over_span), "\"items\"");
    let join = flow.step("join").expect("join");
    assert!(join.is_join);
    assert_eq!(join.params, ["whatever"]);
    assert_eq!(at(src, join.params_span), "(self, whatever)");
    assert!(flow.step("fan_join").expect("fan_join").is_join);
}

#[test]
fn switch_including_recursion() {
    let src = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.mode = "again"
        self.next({"again": self.start, "done": self.end}, condition="mode")

    @step
    def end(self):
        pass
"#;
    let flow = clean(src);
    let Transition::Switch { on, on_span, cases } = &flow.steps[0].transition else {
        panic!("expected a switch")
    };
    assert_eq!(on, "mode");
    assert_eq!(at(src, *on_span), "\"mode\"");
    let cases: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c.value.as_str(), at(src, c.target.span)))
        .collect();
    assert_eq!(cases, [("again", "self.start"), ("done", "self.end")]);
}

fn step_body(body: &str) -> String {
    format!(
        "from metaflow import FlowSpec, step\nITEMS = \"items\"\n\nclass F(FlowSpec):\n    @step\n    def start(self):\n{body}\n\n    @step\n    def a(self):\n        self.next(self.end)\n\n    @step\n    def b(self):\n        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n"
    )
}

/// The steps a transition leads to, in order.
fn target_names(t: &Transition) -> Vec<&str> {
    t.targets().into_iter().map(|t| t.step.as_str()).collect()
}

#[test]
fn next_not_last_and_multiple() {
    let src = step_body(
        "        if self.x:\n            self.next(self.a)\n        else:\n            self.next(self.b)",
    );
    let parsed = run(&src);
    // One mistake, one diagnostic: the calls are not also reported as not last.
    assert!(with_code(&parsed, &src, &codes::NEXT_NOT_LAST).is_empty());
    let multiple = with_code(&parsed, &src, &codes::NEXT_MULTIPLE);
    assert_eq!(
        multiple,
        [(
            "step `start` calls `self.next(...)` more than once",
            "self.next(self.b)"
        )]
    );
    assert_eq!(parsed.diagnostics.len(), 1, "{:#?}", parsed.diagnostics);
    // Both calls give the graph their edge, as a choice (no split to join).
    let flow = parsed.flow.expect("flow");
    assert!(matches!(
        &flow.steps[0].transition,
        Transition::Switch { .. }
    ));
    assert_eq!(target_names(&flow.steps[0].transition), ["a", "b"]);

    let src = step_body("        self.next(self.a)\n        pass");
    let parsed = run(&src);
    assert_eq!(
        with_code(&parsed, &src, &codes::NEXT_NOT_LAST),
        [(
            "`self.next(...)` in step `start` is not its last statement",
            "self.next(self.a)"
        )]
    );
    assert!(with_code(&parsed, &src, &codes::NEXT_MULTIPLE).is_empty());

    let src = step_body(
        "        self.next(self.a)\n        self.next(self.b)\n        self.next(self.a)",
    );
    let parsed = run(&src);
    assert!(with_code(&parsed, &src, &codes::NEXT_NOT_LAST).is_empty());
    let d = &parsed.diagnostics;
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].code, codes::NEXT_MULTIPLE.name);
    assert_eq!(d[0].related.len(), 2);
    let flow = parsed.flow.expect("flow");
    assert_eq!(target_names(&flow.steps[0].transition), ["a", "b"]);
    assert_eq!(
        at(&src, flow.steps[0].transition_span.expect("span")),
        "self.next(self.a)"
    );

    // The same step twice is one plain edge.
    let src = step_body("        self.next(self.a)\n        self.next(self.a)");
    let flow = run(&src).flow.expect("flow");
    assert!(matches!(&flow.steps[0].transition, Transition::Linear { to } if to.step == "a"));

    // A call of another form keeps its own reading, and each call's mistakes show.
    let src = step_body(
        "        self.next(self.a, foreach='items')\n        self.next(self.b, each='x')",
    );
    let parsed = run(&src);
    assert_eq!(with_code(&parsed, &src, &codes::NEXT_MULTIPLE).len(), 1);
    assert_eq!(
        with_code(&parsed, &src, &codes::NEXT_BAD_ARGUMENTS).len(),
        1
    );
    let flow = parsed.flow.expect("flow");
    assert!(matches!(&flow.steps[0].transition, Transition::Linear { to } if to.step == "b"));
}

#[test]
fn only_self_next_calls_are_transitions() {
    // The word `next` in strings, comments, longer names, other objects' methods and
    // the builtin: none of them is a transition, wherever it stands.
    let src = step_body(
        "        msg = \"self.next(self.a)\"  # self.next(self.b)\n\
         \x20       self.next_step = next(iter([1]))\n\
         \x20       other.next(self.b)\n\
         \x20       self.nextstep(self.b)\n\
         \x20       self .  next  (self.a)",
    );
    let parsed = run(&src);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let flow = parsed.flow.expect("flow");
    assert_eq!(target_names(&flow.steps[0].transition), ["a"]);
    assert_eq!(
        at(&src, flow.steps[0].transition_span.expect("span")),
        "self .  next  (self.a)"
    );
    // Calls nested in blocks, in a nested function and in another call's arguments
    // are all found, in source order.
    let src = step_body(
        "        def later():\n            self.next(self.b)\n\
         \x20       print(self.next(self.a))\n\
         \x20       for x in []:\n            self.next(self.a)\n\
         \x20       self.next(self.end)",
    );
    let parsed = run(&src);
    let d: Vec<&Diagnostic> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == codes::NEXT_MULTIPLE.name)
        .collect();
    assert_eq!(d.len(), 1, "{:#?}", parsed.diagnostics);
    assert_eq!(at(&src, d[0].span), "self.next(self.a)");
    let related: Vec<usize> = d[0].related.iter().map(|r| r.span.start).collect();
    let first = src.find("self.next(self.b)").expect("first call");
    assert_eq!(related[0], first);
    assert!(related.windows(2).all(|w| w[0] < w[1]), "{related:?}");
    assert_eq!(related.len(), 3);
}

#[test]
fn foreach_with_several_targets_leads_to_each() {
    let src = step_body("        self.next(self.a, self.b, foreach='items')");
    let parsed = run(&src);
    assert_eq!(
        with_code(&parsed, &src, &codes::NEXT_BAD_ARGUMENTS),
        [("`foreach=` takes exactly one target step", "self.b")]
    );
    let flow = parsed.flow.expect("flow");
    assert_eq!(target_names(&flow.steps[0].transition), ["a", "b"]);
}

#[test]
fn no_next_is_end_transition() {
    let src = step_body("        print('no next')");
    let parsed = run(&src);
    assert!(parsed.diagnostics.is_empty());
    assert_eq!(
        parsed.flow.expect("flow").steps[0].transition,
        Transition::End
    );
}

#[test]
fn bad_targets() {
    let src = step_body("        self.next(self.a, 'b', other.c, self.a())");
    let parsed = run(&src);
    let bad = with_code(&parsed, &src, &codes::NEXT_BAD_TARGET);
    let spans: Vec<&str> = bad.iter().map(|b| b.1).collect();
    assert_eq!(spans, ["'b'", "other.c", "self.a()"]);
    let d = parsed
        .diagnostics
        .iter()
        .find(|d| d.code == codes::NEXT_BAD_TARGET.name)
        .expect("diagnostic");
    assert_eq!(
        d.help.as_deref(),
        Some("write the step as an attribute: `self.b`")
    );
}

#[test]
fn bad_next_arguments() {
    let cases = [
        ("        self.next()", "self.next()"),
        (
            "        self.next(self.a, self.b, foreach='items')",
            "self.b",
        ),
        ("        self.next(self.a, each='items')", "each='items'"),
        ("        self.next(self.a, condition='x')", "condition='x'"),
        (
            "        self.next({'x': self.a}, foreach='items', condition='x')",
            "condition='x'",
        ),
        ("        self.next(*steps)", "*steps"),
        (
            "        self.next({'x': self.a, 1: self.b}, condition='x')",
            "1",
        ),
        (
            "        self.next(self.a, num_parallel=4)",
            "num_parallel=4",
        ),
    ];
    for (body, expected) in cases {
        let src = step_body(body);
        let parsed = run(&src);
        let bad = with_code(&parsed, &src, &codes::NEXT_BAD_ARGUMENTS);
        assert_eq!(bad.len(), 1, "{body}: {:#?}", parsed.diagnostics);
        assert_eq!(bad[0].1, expected, "{body}");
    }
    let src = step_body("        self.next(self.a, foreah='items')");
    let parsed = run(&src);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.help.as_deref(), Some("did you mean `foreach=`?"));
}

#[test]
fn foreach_must_be_a_literal() {
    let src = step_body("        self.next(self.a, foreach=ITEMS)");
    let parsed = run(&src);
    let d = with_code(&parsed, &src, &codes::FOREACH_NOT_LITERAL);
    assert_eq!(
        d,
        [(
            "`foreach=` must be a string literal naming an artifact",
            "ITEMS"
        )]
    );
    let diag = parsed
        .diagnostics
        .iter()
        .find(|d| d.code == codes::FOREACH_NOT_LITERAL.name)
        .expect("d");
    assert!(diag
        .help
        .as_deref()
        .unwrap_or("")
        .contains("foreach=\"items\""));
    // The intended edge is kept.
    let flow = parsed.flow.expect("flow");
    assert!(
        matches!(&flow.steps[0].transition, Transition::Foreach { over, .. } if over == "items")
    );

    let src = step_body("        self.next(self.a, foreach=f'{x}')");
    let parsed = run(&src);
    assert_eq!(
        with_code(&parsed, &src, &codes::FOREACH_NOT_LITERAL)[0].1,
        "f'{x}'"
    );
}

#[test]
fn switch_problems() {
    let src = step_body("        self.next({'x': self.a, 'y': self.b})");
    let parsed = run(&src);
    assert_eq!(
        with_code(&parsed, &src, &codes::SWITCH_MISSING_CONDITION),
        [(
            "the switch in step `start` has no `condition=`",
            "{'x': self.a, 'y': self.b}"
        )]
    );
    let src = step_body("        self.next({'x': self.a, 'y': self.b}, condition=self.mode)");
    let parsed = run(&src);
    assert_eq!(
        with_code(&parsed, &src, &codes::CONDITION_NOT_LITERAL),
        [(
            "`condition=` must be a string literal naming an artifact",
            "self.mode"
        )]
    );
    let src = step_body("        self.next({'x': self.a, 'y': 'b'}, condition='m')");
    let parsed = run(&src);
    assert_eq!(
        with_code(&parsed, &src, &codes::NEXT_BAD_TARGET)[0].1,
        "'b'"
    );
}

#[test]
fn step_signatures() {
    let src = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start():
        self.next(self.end)

    @step
    def middle(self, inputs, extra):
        self.next(self.end)

    @step
    def other(self, *inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let parsed = run(src);
    let bad = with_code(&parsed, src, &codes::STEP_BAD_SIGNATURE);
    assert_eq!(
        bad,
        [
            ("step `start` does not take `self`", "()"),
            (
                "step `middle` takes 3 parameters, but a step takes `self` and, for a join, `inputs`",
                "(self, inputs, extra)"
            ),
            (
                "step `other` takes `*inputs`, but a step takes only `self` and, for a join, `inputs`",
                "(self, *inputs)"
            ),
        ]
    );
}

#[test]
fn duplicate_and_reserved_step_names() {
    let src = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        self.next(self.next)

    @step
    def next(self):
        self.next(self.end)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let parsed = run(src);
    let dup: Vec<&Diagnostic> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == codes::STEP_DUPLICATE.name)
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(
        dup[0].span.start,
        src.rfind("def start").expect("second") + 4
    );
    assert_eq!(
        dup[0].related[0].span.start,
        src.find("def start").expect("first") + 4
    );
    assert_eq!(
        with_code(&parsed, src, &codes::STEP_RESERVED_NAME),
        [("`next` is a reserved word and cannot name a step", "next")]
    );
    // The later definition wins, in the first one's place.
    let flow = parsed.flow.expect("flow");
    assert_eq!(flow.steps[0].name, "start");
    assert!(matches!(&flow.steps[0].transition, Transition::Linear { to } if to.step == "end"));
}

#[test]
fn methods_that_are_not_steps_and_nested_functions_are_ignored() {
    let src = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    def helper(self):
        return 1

    @step
    def start(self):
        def inner():
            return 2
        self.next(self.end)

    @property
    def prop(self):
        return 3

    @step
    def end(self):
        pass
"#;
    let flow = clean(src);
    let names: Vec<&str> = flow.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["start", "end"]);
}

#[test]
fn aliases_for_flowspec_step_and_decorators() {
    let src = r#"import metaflow as mf
from metaflow import retry as r, step as s

@mf.project(name="demo")
class F(mf.FlowSpec):
    @r(times=2)
    @mf.resources(cpu=2)
    @s
    def start(self):
        self.next(self.end)

    @mf.step
    def end(self):
        pass
"#;
    let parsed = run(src);
    let flow = parsed.flow.expect("flow");
    assert_eq!(flow.flow_decorators[0].name, "project");
    assert_eq!(
        flow.flow_decorators[0].args["name"],
        Value::Str("demo".into())
    );
    let names: Vec<&str> = flow.steps[0]
        .decorators
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["retry", "resources"]);
    assert_eq!(at(src, flow.steps[0].decorators[0].span), "@r(times=2)");
    assert_eq!(flow.steps[0].decorators[0].args["times"], Value::Int(2));
    assert!(flow.steps[1].decorators.is_empty());
    assert_eq!(flow.steps.len(), 2);

    let src = "import metaflow\nclass F(metaflow.FlowSpec):\n    @metaflow.step\n    def start(self):\n        pass\n";
    let flow = run(src).flow.expect("flow");
    assert_eq!(flow.name, "F");
    assert_eq!(flow.steps.len(), 1);
}

#[test]
fn start_and_end_marks() {
    let src = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step(start=True)
    def begin(self):
        self.next(self.finish)

    @step(end=True)
    def finish(self):
        pass
"#;
    let flow = clean(src);
    assert_eq!(flow.start_step, "begin");
    assert_eq!(flow.end_step, "finish");
    assert!(flow.steps.iter().all(|s| s.decorators.is_empty()));

    let single = "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def only(self):\n        pass\n";
    let flow = clean(single);
    assert_eq!(
        (flow.start_step.as_str(), flow.end_step.as_str()),
        ("only", "only")
    );

    let twice = "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step(start=True)\n    def a(self):\n        self.next(self.b)\n    @step(start=True)\n    def b(self):\n        pass\n";
    let parsed = run(twice);
    assert_eq!(
        with_code(&parsed, twice, &codes::MULTIPLE_START),
        [(
            "several steps are marked `@step(start=True)`: `a`, `b`",
            "b"
        )]
    );
    assert_eq!(at(twice, parsed.diagnostics[0].related[0].span), "a");
    // No entry then, as in Metaflow: nothing downstream guesses one.
    assert_eq!(parsed.flow.expect("flow").start_step, "");

    let ends = "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.a, self.b)\n    @step(end=True)\n    def a(self):\n        pass\n    @step(end=True)\n    def b(self):\n        pass\n    @step(end=True)\n    def c(self):\n        pass\n";
    let parsed = run(ends);
    let d = &parsed.diagnostics;
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].code, codes::MULTIPLE_END.name);
    assert_eq!(at(ends, d[0].span), "b");
    assert_eq!(d[0].related.len(), 2);
    assert_eq!(parsed.flow.expect("flow").end_step, "");

    let bad = "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step(begin=True)\n    def start(self):\n        self.next(self.end)\n    @step(end=1)\n    def end(self):\n        pass\n";
    let parsed = run(bad);
    assert_eq!(
        with_code(&parsed, bad, &codes::DECORATOR_UNKNOWN_ATTRIBUTE)[0].1,
        "begin=True"
    );
    assert_eq!(
        with_code(&parsed, bad, &codes::DECORATOR_BAD_VALUE)[0].1,
        "1"
    );
}

#[test]
fn no_flow_class() {
    // No class with steps: the first line of code, not the comment above it.
    let src = "# a helper module\n\nclass NotAFlow:\n    pass\n";
    let parsed = run(src);
    assert!(parsed.flow.is_none());
    assert_eq!(parsed.diagnostics.len(), 1);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, codes::NO_FLOW_CLASS.name);
    assert_eq!(at(src, d.span), "class NotAFlow:");
    assert!(d
        .help
        .as_deref()
        .unwrap_or("")
        .contains("class MyFlow(FlowSpec)"));
    // A FlowSpec imported from elsewhere is not Metaflow's.
    let src = "from mylib import FlowSpec\nclass F(FlowSpec):\n    pass\n";
    assert_eq!(run(src).diagnostics[0].code, codes::NO_FLOW_CLASS.name);

    // A class with steps that forgot its base: that class, and the fix.
    let src = "from metaflow import step\n\nclass Helper:\n    pass\n\nclass TrainFlow:\n    @step\n    def start(self):\n        pass\n";
    let parsed = run(src);
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, codes::NO_FLOW_CLASS.name);
    assert_eq!(at(src, d.span), "TrainFlow");
    assert_eq!(d.message, "class `TrainFlow` has steps but is not a flow");
    assert_eq!(
        d.label,
        "this class has steps but does not inherit from FlowSpec"
    );
    assert_eq!(
        d.help.as_deref(),
        Some(
            "make it a flow: `class TrainFlow(FlowSpec):`, with \
             `from metaflow import FlowSpec` at the top of the file"
        )
    );
    // FlowSpec imported under another name: the fix uses that name.
    let src = "from metaflow import FlowSpec as FS, step\n\nclass TrainFlow:\n    @step\n    def start(self):\n        pass\n";
    let parsed = run(src);
    assert_eq!(
        parsed.diagnostics[0].help.as_deref(),
        Some("make it a flow: `class TrainFlow(FS):`")
    );
    // Only comments: an empty span at the start is all there is.
    let parsed = run("# nothing here\n");
    assert_eq!(parsed.diagnostics[0].span, Span::new(0, 0));
}

const TWO_FLOWS: &str = r#"from metaflow import FlowSpec, step

class First(FlowSpec):
    @step
    def start(self):
        pass

class Second(FlowSpec):
    @step
    def start(self):
        pass

class Helper:
    pass
"#;

#[test]
fn ambiguous_flow() {
    let parsed = run(TWO_FLOWS);
    assert!(parsed.flow.is_none());
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, codes::AMBIGUOUS_FLOW.name);
    assert_eq!(
        d.message,
        "this file defines several flows: `First`, `Second`"
    );
    assert_eq!(at(TWO_FLOWS, d.span), "First");
    assert_eq!(at(TWO_FLOWS, d.related[0].span), "Second");
    assert!(d.help.as_deref().unwrap_or("").contains("--flow NAME"));
}

#[test]
fn choosing_a_flow_with_options() {
    let parsed = run_with(TWO_FLOWS, "Second");
    assert!(parsed.diagnostics.is_empty());
    assert_eq!(parsed.flow.expect("flow").name, "Second");

    let parsed = run_with(TWO_FLOWS, "Secnd");
    assert!(parsed.flow.is_none());
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, codes::UNKNOWN_FLOW.name);
    // The option is not in the file: the flow it most likely meant is.
    assert_eq!(at(TWO_FLOWS, d.span), "Second");
    assert_eq!(d.label, "did you mean `--flow Second`?");
    assert_eq!(at(TWO_FLOWS, d.related[0].span), "First");
    let help = d.help.as_deref().unwrap_or("");
    assert!(help.contains("`First`, `Second`"), "{help}");
    let parsed = run_with(TWO_FLOWS, "Zzz");
    let d = &parsed.diagnostics[0];
    assert_eq!(at(TWO_FLOWS, d.span), "First");
    assert_eq!(d.label, "flow `First`");

    let parsed = run_with(TWO_FLOWS, "Helper");
    let d = &parsed.diagnostics[0];
    assert_eq!(d.code, codes::UNKNOWN_FLOW.name);
    assert_eq!(at(TWO_FLOWS, d.span), "Helper");
}

#[test]
fn inheritance_merges_bases_first_with_overrides() {
    let src = r#"from metaflow import FlowSpec, step, Parameter, project

class Child(Base):
    beta = Parameter("beta", default=2)
    alpha = Parameter("alpha", default=10)

    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        self.next(self.end)

@project(name="demo")
class Base(Mixin):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass

class Mixin(FlowSpec):
    pass
"#;
    let parsed = run(src);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let flow = parsed.flow.expect("flow");
    assert_eq!(flow.name, "Child");
    let steps: Vec<(&str, Option<&str>)> = flow
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.inherited_from.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [("start", None), ("end", Some("Base")), ("middle", None)]
    );
    let params: Vec<(&str, Option<&Value>, Option<&str>)> = flow
        .parameters
        .iter()
        .map(|p| {
            (
                p.attr.as_str(),
                p.default.as_ref(),
                p.inherited_from.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        params,
        [
            ("alpha", Some(&Value::Int(10)), None),
            ("beta", Some(&Value::Int(2)), None)
        ]
    );
    assert_eq!(flow.flow_decorators[0].name, "project");
}

#[test]
fn multiple_inheritance_and_flow_bases_named_explicitly() {
    let src = r#"from metaflow import FlowSpec, step

class A(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

class B(FlowSpec):
    @step
    def end(self):
        pass

class C(A, B):
    pass
"#;
    let flow = clean(src);
    assert_eq!(flow.name, "C");
    let steps: Vec<(&str, Option<&str>)> = flow
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.inherited_from.as_deref()))
        .collect();
    assert_eq!(steps, [("end", Some("B")), ("start", Some("A"))]);
    // A base can still be chosen explicitly.
    let parsed = run_with(src, "A");
    assert_eq!(parsed.flow.expect("flow").steps.len(), 1);
}

#[test]
fn inheritance_cycles_are_reported_once_each() {
    let src =
        "from metaflow import FlowSpec\nclass A(B, FlowSpec):\n    pass\nclass B(A):\n    pass\n";
    let parsed = run(src);
    assert!(parsed.flow.is_some());
    assert_eq!(
        with_code(&parsed, src, &codes::INHERITANCE_CYCLE),
        [("classes `A` and `B` inherit from each other", "B")]
    );
    let d = &parsed.diagnostics[0];
    assert_eq!(
        d.related
            .iter()
            .map(|r| (r.message.as_str(), at(src, r.span)))
            .collect::<Vec<_>>(),
        [("`B` inherits from `A`", "A")]
    );

    // A self-cycle, a three-class cycle entered from a class outside it (reported at
    // the class of the cycle defined first), and a class that only derives from a cycle.
    let src = "from metaflow import FlowSpec, step\n\
               class S(S):\n    pass\n\
               class Out(Q):\n    pass\n\
               class P(Q):\n    pass\n\
               class Q(R):\n    pass\n\
               class R(P):\n    pass\n\
               class F(FlowSpec):\n    @step\n    def start(self):\n        pass\n";
    let parsed = run(src);
    let cycles = with_code(&parsed, src, &codes::INHERITANCE_CYCLE);
    assert_eq!(
        cycles,
        [
            ("class `S` inherits from itself", "S"),
            (
                "classes `P`, `Q`, `R` inherit from each other in a cycle",
                "Q"
            ),
        ]
    );
    assert_eq!(parsed.flow.expect("flow").name, "F");
    // Diamonds and repeated bases are not cycles.
    let src = "from metaflow import FlowSpec, step\nclass A(FlowSpec):\n    pass\n\
               class B(A):\n    pass\nclass C(A):\n    pass\nclass D(B, C):\n    @step\n    def start(self):\n        pass\n";
    assert!(with_code(&run(src), src, &codes::INHERITANCE_CYCLE).is_empty());
}

#[test]
fn deep_inheritance_chains_are_read_whole() {
    // `Base0` (with `start`) <- `Base1` <- ... <- `Leaf` (with `end`): every base is
    // read, however deep; the walk is iterative and linear.
    let depth = 12_000;
    let mut src = String::from(
        "from metaflow import FlowSpec, step\nclass Base0(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.end)\n",
    );
    for i in 1..depth {
        src.push_str(&format!("class Base{i}(Base{}):\n    pass\n", i - 1));
    }
    src.push_str(&format!(
        "class Leaf(Base{}):\n    @step\n    def end(self):\n        pass\n",
        depth - 1
    ));
    let flow = clean(&src);
    assert_eq!(flow.name, "Leaf");
    let steps: Vec<(&str, Option<&str>)> = flow
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.inherited_from.as_deref()))
        .collect();
    assert_eq!(steps, [("start", Some("Base0")), ("end", None)]);
}

#[test]
fn values_nested_too_deeply_are_deferred_with_a_warning_that_says_so() {
    let deep = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let src = format!(
        "from metaflow import FlowSpec, step, Parameter, environment\n\
         class F(FlowSpec):\n    \
         p = Parameter('p', default={})\n    \
         q = Parameter('q', default={})\n    \
         @environment(vars={{'K': {}}})\n    @step\n    def start(self):\n        pass\n",
        deep(32),
        deep(40),
        deep(40),
    );
    let parsed = run(&src);
    let warnings = with_code(&parsed, &src, &codes::VALUE_DEFERRED);
    let inner = deep(8);
    assert_eq!(
        warnings,
        [
            (
                "`@environment(vars=...)`: this value is nested too deeply to fold; it is kept as an expression",
                deep(9).as_str()
            ),
            (
                "the default of `q` is nested too deeply to fold; this part is kept as an expression",
                inner.as_str()
            ),
        ]
    );
    let flow = parsed.flow.expect("flow");
    // The IR reads back with serde_json's default recursion limit (128).
    let json = serde_json::to_string(&flow).expect("serialisable");
    let back: Result<serde_json::Value, _> = serde_json::from_str(&json);
    assert!(back.is_ok(), "{back:?}");
    assert!(!flow.parameters[0]
        .default
        .as_ref()
        .expect("p")
        .is_deferred());
}

#[test]
fn parameters_and_configs() {
    let src = r#"from metaflow import FlowSpec, step, Parameter, IncludeFile, Config, JSONType
import metaflow as mf

DEFAULT_LR = 0.1

def compute_default(ctx):
    return "x"

class F(FlowSpec):
    SIZE = 3
    lr = Parameter("learning-rate", default=DEFAULT_LR, help="the rate")
    n = Parameter(name="n", default=SIZE * 2, required=True)
    tags = Parameter("tags", type=str, separator=",", show_default=False)
    cfg = mf.Parameter("cfg", type=JSONType, default='{"a": 1}')
    flag = Parameter("flag", default=False)
    plain = Parameter("plain")
    other = Parameter("other", type=MyType)
    items = Parameter("items", default=[1, 2])
    dyn = Parameter("dyn", default=compute_default)
    data = IncludeFile("data", is_text=False, help="input")
    conf = Config("conf", default="conf.json")
    inline = Config("inline", default_value={"k": 1}, required=True)

    @step
    def start(self):
        pass
"#;
    let parsed = run(src);
    let deferred = with_code(&parsed, src, &codes::VALUE_DEFERRED);
    assert_eq!(
        deferred,
        [(
            "the default of `dyn` cannot be evaluated statically",
            "compute_default"
        )]
    );
    assert_eq!(parsed.diagnostics.len(), 1, "{:#?}", parsed.diagnostics);
    let flow = parsed.flow.expect("flow");
    let p = |attr: &str| flow.parameters.iter().find(|p| p.attr == attr).expect(attr);
    let lr = p("lr");
    assert_eq!(lr.name, "learning-rate");
    assert_eq!(at(src, lr.name_span), "\"learning-rate\"");
    assert_eq!(
        at(src, lr.span),
        "lr = Parameter(\"learning-rate\", default=DEFAULT_LR, help=\"the rate\")"
    );
    assert_eq!(
        (lr.ty, lr.default.clone()),
        (ParameterType::Float, Some(Value::Float(0.1)))
    );
    assert_eq!(lr.help.as_deref(), Some("the rate"));
    assert!(lr.show_default && !lr.required && lr.is_text);
    let n = p("n");
    assert_eq!(
        (n.ty, n.default.clone(), n.required),
        (ParameterType::Int, Some(Value::Int(6)), true)
    );
    let tags = p("tags");
    assert_eq!(
        (tags.ty, tags.separator.as_deref(), tags.show_default),
        (ParameterType::Str, Some(","), false)
    );
    assert_eq!(p("cfg").ty, ParameterType::Json);
    assert_eq!(p("flag").ty, ParameterType::Bool);
    assert_eq!(
        (p("plain").ty, p("plain").default.clone()),
        (ParameterType::Str, None)
    );
    assert_eq!(p("other").ty, ParameterType::Other);
    assert_eq!(p("items").ty, ParameterType::Other);
    assert_eq!(p("dyn").ty, ParameterType::Str);
    let data = p("data");
    assert_eq!(
        (data.kind, data.is_text, data.ty),
        (ParameterKind::IncludeFile, false, ParameterType::Str)
    );
    assert_eq!(flow.configs.len(), 2);
    assert_eq!(
        flow.configs[0].default,
        Some(Value::Str("conf.json".into()))
    );
    assert!(flow.configs[1].required);
    assert!(
        matches!(&flow.configs[1].default_value, Some(Value::Dict(d)) if d["k"] == Value::Int(1))
    );
}

#[test]
fn lambda_defaults_warn_and_are_strings() {
    let src = "from metaflow import FlowSpec, step, Parameter\nclass F(FlowSpec):\n    user = Parameter('user', default=lambda ctx: ctx.user_name)\n    @step\n    def start(self):\n        pass\n";
    let parsed = run(src);
    assert_eq!(
        with_code(&parsed, src, &codes::VALUE_DEFERRED),
        [(
            "the default of `user` is a function, called when the run starts",
            "lambda ctx: ctx.user_name"
        )]
    );
    let flow = parsed.flow.expect("flow");
    assert_eq!(flow.parameters[0].ty, ParameterType::Str);
    assert!(flow.parameters[0]
        .default
        .as_ref()
        .is_some_and(Value::is_deferred));
}

#[test]
fn bad_parameter_arguments() {
    let src = r#"from metaflow import FlowSpec, step, Parameter
NAME = "alpha"

class F(FlowSpec):
    a = Parameter(NAME + suffix)
    b = Parameter("b", defualt=1)
    c = Parameter(default=1)
    d = Parameter("d", required="yes")
    e = Parameter("e", 1, str, "help", True, True, "extra")
    f = Parameter("f", **opts)
    g = Parameter("g", help=3)
    h = Parameter("h", default=1, default=2)

    @step
    def start(self):
        pass
"#;
    let parsed = run(src);
    let bad = with_code(&parsed, src, &codes::PARAM_BAD_ARGUMENT);
    assert_eq!(
        bad,
        [
            (
                "the name of `Parameter(...)` must be a string literal",
                "NAME + suffix"
            ),
            ("`Parameter(...)` has no argument `defualt`", "defualt=1"),
            (
                "`Parameter(...)` bound to `c` has no name",
                "Parameter(default=1)"
            ),
            (
                "`required` of `Parameter(...)` must be `True` or `False`, not a `str`",
                "\"yes\""
            ),
            (
                "too many positional arguments to `Parameter(...)`",
                "\"extra\""
            ),
            ("arguments to `Parameter(...)` cannot be unpacked", "**opts"),
            (
                "`help` of `Parameter(...)` must be a string, not a `int`",
                "3"
            ),
            ("`default` is given twice to `Parameter(...)`", "default=2"),
        ]
    );
    let d = parsed
        .diagnostics
        .iter()
        .find(|d| d.message.contains("defualt"))
        .expect("diagnostic");
    assert_eq!(d.help.as_deref(), Some("did you mean `default`?"));
    // Still lowered, under the attribute name when the name is unreadable.
    let flow = parsed.flow.expect("flow");
    assert_eq!(flow.parameters.len(), 8);
    assert_eq!(flow.parameters[2].name, "c");
}

#[test]
fn parameter_names_fold_constants() {
    let src = "from metaflow import FlowSpec, step, Parameter\nPREFIX = 'my-'\nclass F(FlowSpec):\n    a = Parameter(PREFIX + 'alpha', default=1_000)\n    @step\n    def start(self):\n        pass\n";
    let flow = clean(src);
    assert_eq!(flow.parameters[0].name, "my-alpha");
    assert_eq!(flow.parameters[0].default, Some(Value::Int(1000)));
}

#[test]
fn syntax_errors_still_lower_what_they_can() {
    let src = r#"from metaflow import FlowSpec, step

class F(FlowSpec):
    @step
    def start(self):
        x = foo(1, 2))
        self.next(self.end)

    @step
    def end(self):
        pass
"#;
    let parsed = run(src);
    assert_eq!(
        with_code(&parsed, src, &codes::SYNTAX_ERROR),
        [("unexpected `)`", ")")]
    );
    let flow = parsed.flow.expect("flow");
    assert!(flow.step("end").is_some());
}

#[test]
fn step_decorators_see_class_constants() {
    let src = "from metaflow import FlowSpec, step, resources\nMEM = 1024\nclass F(FlowSpec):\n    CPU = 4\n    @resources(cpu=CPU, memory=MEM * 2)\n    @step\n    def start(self):\n        pass\n";
    let flow = clean(src);
    let d = &flow.steps[0].decorators[0];
    assert_eq!(d.args["cpu"], Value::Int(4));
    assert_eq!(d.args["memory"], Value::Int(2048));
    assert_eq!(at(src, d.arg_spans["cpu"]), "cpu=CPU");
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = format!(
        "from metaflow import FlowSpec, step, Parameter\nclass F(FlowSpec):\n    p = Parameter('p', default={}1{})\n    @step\n    def start(self):\n        self.next({}self.end{})\n",
        "(".repeat(3000),
        ")".repeat(3000),
        "(".repeat(3000),
        ")".repeat(3000)
    );
    let _ = run(&deep);
    let nested_ifs: String = (0..500)
        .map(|i| format!("{}if x:\n", "    ".repeat(i + 2)))
        .collect();
    let src = format!(
        "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def start(self):\n{nested_ifs}{}self.next(self.end)\n",
        "    ".repeat(502)
    );
    let parsed = run(&src);
    assert!(!with_code(&parsed, &src, &codes::NEXT_NOT_LAST).is_empty());
    for garbage in [
        "",
        "\0\0\0",
        "class",
        "class F(FlowSpec",
        "@step\n",
        "def (",
        "\"\"\"",
        "é\u{202e}",
    ] {
        let _ = run(garbage);
    }
    let chain: String = (0..2000)
        .map(|i| format!("class C{}(C{}):\n    pass\n", i + 1, i))
        .collect();
    let src = format!("from metaflow import FlowSpec\nclass C0(FlowSpec):\n    pass\n{chain}");
    assert_eq!(run(&src).flow.expect("flow").name, "C2000");
}

#[test]
fn a_thousand_steps_parse_quickly() {
    let mut src =
        String::from("from metaflow import FlowSpec, step, retry\n\nclass Big(FlowSpec):\n");
    src.push_str("    @step\n    def start(self):\n        self.next(self.s0)\n\n");
    for i in 0..1000 {
        src.push_str(&format!(
            "    @retry(times=2)\n    @step\n    def s{i}(self):\n        \"\"\"Step {i}.\"\"\"\n        self.value = {i} * 2\n        self.next(self.s{})\n\n",
            i + 1
        ));
    }
    src.push_str("    @step\n    def s1000(self):\n        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n");
    let started = std::time::Instant::now();
    let flow = clean(&src);
    let elapsed = started.elapsed();
    assert_eq!(flow.steps.len(), 1003);
    // Generous for unoptimised test builds; release is far below 50 ms.
    assert!(elapsed.as_millis() < 2000, "took {elapsed:?}");
}

#[test]
fn step_names_metaflow_refuses() {
    for (name, suggestion) in [
        ("trainModel", "train_model"),
        ("_private", "private"),
        ("Étape", "tape"),
        ("_2nd", "step_2nd"),
    ] {
        let src = format!(
            "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.{name})\n    @step\n    def {name}(self):\n        self.next(self.end)\n    @step\n    def end(self):\n        pass\n"
        );
        let parsed = run(&src);
        let d = with_code(&parsed, &src, &codes::STEP_INVALID_NAME);
        assert_eq!(
            d,
            [(format!("`{name}` is not a valid step name").as_str(), name)],
            "{name}"
        );
        let help = parsed.diagnostics[0].help.as_deref().unwrap_or("");
        assert!(help.ends_with(&format!("e.g. `{suggestion}`")), "{help}");
    }
    // Near misses: digits and inner underscores are fine; a reserved word is reported
    // as reserved, once.
    clean("from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.step_2b)\n    @step\n    def step_2b(self):\n        self.next(self.end)\n    @step\n    def end(self):\n        pass\n");
    let src = "from metaflow import FlowSpec, step\nclass F(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.next)\n    @step\n    def next(self):\n        self.next(self.end)\n    @step\n    def end(self):\n        pass\n";
    let parsed = run(src);
    assert_eq!(parsed.diagnostics.len(), 1, "{:#?}", parsed.diagnostics);
    assert_eq!(parsed.diagnostics[0].code, codes::STEP_RESERVED_NAME.name);
}
