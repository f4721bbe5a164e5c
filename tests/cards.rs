//! HTML cards (`@card`): the rendered pages for fixed inputs (insta snapshots), the
//! escaping of every user value, the step graph drawn from every fixture's IR, a real
//! `flowc run` whose cards `flowc card list` and `flowc card view` read back, and the
//! page in headless Chromium (loads without errors, draws the chart, screenshots).
//!
//! The browser test needs Debian's `chromium`; without it the test prints a note and
//! passes, unless `FLOWC_REQUIRE_CHROMIUM=1` (CI sets it), where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use flowc::FrontendOptions;
use flowc_ir::Flow;
use flowc_shim::cards::{graph_svg, render_card, ArtifactRow, CardContext, TaskFacts};
use serde_json::{json, Value};

#[allow(dead_code)]
mod support;

use support::{describe, flowc, Scratch};

// -- helpers ---------------------------------------------------------------------------

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The flow of a fixture file, read by the frontend.
fn fixture_flow(name: &str) -> Option<Flow> {
    let path = workspace().join("fixtures/flows/valid").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    let flow = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# flowc: --flow "))
        .map(|name| name.trim().to_owned());
    let rel = format!("fixtures/flows/valid/{name}");
    flowc::check(&rel, &text, &FrontendOptions { flow }).flow
}

/// A 6×4 PNG, made here so the tests need no image file.
fn tiny_png() -> Vec<u8> {
    // A 6x4 blue PNG (made with Python's zlib and struct), as hex.
    let hex = "89504e470d0a1a0a0000000d49484452000000060000000408020000002266d914\
               000000114944415478da63d0c8bb838618c815020015d722b1111c942f000000\
               0049454e44ae426082";
    (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn facts() -> TaskFacts {
    TaskFacts {
        flow: "WeeklyReportFlow".into(),
        run_id: "7".into(),
        step: "report".into(),
        task_id: "3".into(),
        attempt: 1,
        status: "succeeded".into(),
        started_at_unix_ms: 1_714_564_800_000,
        finished_at_unix_ms: Some(1_714_564_812_345),
    }
}

fn context(flow: Option<&Flow>) -> CardContext<'_> {
    CardContext {
        facts: facts(),
        parameters: vec![
            ("alpha".into(), "0.5".into()),
            ("region".into(), "'eu-west'".into()),
        ],
        artifacts: vec![
            ArtifactRow {
                name: "kpis".into(),
                type_name: "builtins.dict".into(),
                size: 97,
                value: Some("{'dau': 120000, 'retention_d7': 0.41}".into()),
            },
            ArtifactRow {
                name: "model".into(),
                type_name: "sklearn.linear_model.Ridge".into(),
                size: 3_481_600,
                value: None,
            },
        ],
        flow,
    }
}

/// One of every component, as the harness describes them.
fn every_component(chart: bool) -> Vec<Value> {
    let mut components = vec![
        json!({"type": "markdown", "text": "# Weekly KPIs\n\nDAU is **up** by *3%*; see [the dashboard](https://example.com/d).\n\n- retention\n- `dau`"}),
        json!({"type": "table", "headers": ["metric", "value", "detail"], "rows": [
            [{"type": "text", "text": "dau"}, {"type": "text", "text": "120000"},
             {"type": "artifact", "name": null, "value_type": "builtins.dict", "repr": "{'by_region': [1, 2]}"}],
            [{"type": "text", "text": "retention_d7"}, {"type": "text", "text": "0.41"},
             {"type": "markdown", "text": "*weekly*"}]
        ], "note": "showing the first 2 of 9 rows"}),
        json!({"type": "image", "mime": "image/png", "data": base64(&tiny_png()), "label": "a tiny image"}),
        json!({"type": "artifact", "name": "kpis", "value_type": "builtins.dict", "repr": "{'dau': 120000}"}),
        json!({"type": "progress_bar", "max": 10, "value": 7, "label": "epochs", "unit": "epochs", "metadata": "0.5 epochs/s"}),
        json!({"type": "error", "title": "validation failed", "text": "ValueError('bad split')"}),
    ];
    if chart {
        components.push(json!({"type": "vega_chart", "show_controls": false, "spec": {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "description": "KPIs",
            "data": {"values": [{"day": "mon", "dau": 118}, {"day": "tue", "dau": 120}, {"day": "wed", "dau": 123}]},
            "mark": "bar",
            "encoding": {"x": {"field": "day", "type": "nominal"}, "y": {"field": "dau", "type": "quantitative"}}
        }}));
    }
    components
}

// -- snapshots of the rendered templates ---------------------------------------------

#[test]
fn default_card_snapshot() {
    let flow = fixture_flow("cards.py").expect("cards.py reads");
    let card = render_card(
        &context(Some(&flow)),
        &json!({"type": "default", "id": null, "options": {}, "components": every_component(false), "warnings": []}),
    );
    assert_eq!(
        (card.card_type.as_str(), card.id.as_deref()),
        ("default", None)
    );
    insta::assert_snapshot!("default_card", card.html);
}

#[test]
fn blank_card_snapshot() {
    let card = render_card(
        &context(None),
        &json!({"type": "blank", "id": "kpis", "components": every_component(false),
                "warnings": ["`current.card['x']` names no card: give a @card decorator `id='x'`"]}),
    );
    assert_eq!(card.id.as_deref(), Some("kpis"));
    // A blank card has no task sections and no graph.
    assert!(!card.html.contains("<h2>Task</h2>"));
    assert!(!card.html.contains("<svg"));
    insta::assert_snapshot!("blank_card", card.html);
}

#[test]
fn unknown_card_type_snapshot() {
    let card = render_card(
        &context(None),
        &json!({"type": "sparkline", "id": null, "components": [{"type": "markdown", "text": "hidden"}]}),
    );
    assert_eq!(card.card_type, "sparkline");
    assert!(
        !card.html.contains("hidden"),
        "an unknown card shows no components"
    );
    insta::assert_snapshot!("unknown_type", card.html);
}

#[test]
fn default_card_without_ir_has_no_graph_and_empty_tables_say_so() {
    let mut ctx = context(None);
    ctx.parameters.clear();
    ctx.artifacts.clear();
    ctx.facts.finished_at_unix_ms = None;
    let card = render_card(&ctx, &json!({"type": "default"}));
    assert!(!card.html.contains("<svg"));
    assert!(card.html.contains("this flow has no parameters"));
    assert!(card.html.contains("the task stored no artifacts"));
    assert!(card.html.contains("not yet"));
}

#[test]
fn chart_pages_inline_the_libraries_and_others_have_no_script() {
    let plain = render_card(
        &context(None),
        &json!({"type": "blank", "components": every_component(false)}),
    );
    assert!(!plain.html.contains("<script"));
    let chart = render_card(
        &context(None),
        &json!({"type": "blank", "components": every_component(true)}),
    );
    // vega, vega-lite, vega-embed, the start-up script, and the spec.
    assert_eq!(chart.html.matches("<script").count(), 5);
    assert!(chart
        .html
        .contains("<script type=\"application/json\" id=\"vega-chart-1-spec\">"));
    for library in ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"] {
        let text =
            std::fs::read_to_string(workspace().join("templates/cards/vendor").join(library))
                .expect("vendored library");
        let head: String = text.chars().take(200).collect();
        assert!(chart.html.contains(&head), "{library} is inlined");
    }
    // No request of any kind leaves the page.
    assert!(chart.html.contains("default-src &#x27;none&#x27;"));
    assert!(!chart.html.contains("src=\"http"));
}

// -- escaping --------------------------------------------------------------------------

const EVIL: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'`&";

#[test]
fn every_user_value_is_escaped() {
    let evil_spec = json!({"title": EVIL, "data": {"values": [{"a": EVIL}]}, "mark": "bar"});
    let components = vec![
        json!({"type": "markdown", "text": format!(
            "# {EVIL}\n\n{EVIL}\n\n- {EVIL}\n\n`{EVIL}`\n\n[{EVIL}](javascript:alert(3))\n\n[x](javascript:alert(4))"
        )}),
        json!({"type": "table", "headers": [EVIL], "rows": [[{"type": "text", "text": EVIL},
            {"type": "artifact", "name": EVIL, "value_type": EVIL, "repr": EVIL}]], "note": EVIL}),
        json!({"type": "image", "mime": "image/png", "data": base64(&tiny_png()), "label": EVIL}),
        json!({"type": "artifact", "name": EVIL, "value_type": EVIL, "repr": EVIL}),
        json!({"type": "progress_bar", "max": 3, "value": 1, "label": EVIL, "unit": EVIL, "metadata": EVIL}),
        json!({"type": "error", "title": EVIL, "text": EVIL}),
        json!({"type": "vega_chart", "spec": evil_spec, "show_controls": true}),
        json!({"type": EVIL}),
    ];
    let mut ctx = context(None);
    ctx.facts.flow = EVIL.into();
    ctx.facts.step = EVIL.into();
    ctx.facts.status = EVIL.into();
    ctx.parameters = vec![(EVIL.into(), EVIL.into())];
    ctx.artifacts = vec![ArtifactRow {
        name: EVIL.into(),
        type_name: EVIL.into(),
        size: 1,
        value: Some(EVIL.into()),
    }];
    for card_type in ["default", "blank", EVIL] {
        let card = render_card(
            &ctx,
            &json!({"type": card_type, "id": EVIL, "components": components, "warnings": [EVIL]}),
        );
        let html = strip_own_scripts(&card.html);
        assert!(
            !html.contains("<script"),
            "{card_type}: a user value opened a script"
        );
        assert!(
            !html.contains("<img src=x"),
            "{card_type}: a user value made an element"
        );
        assert!(
            !html.contains("onerror=alert"),
            "{card_type}: a user value made an attribute"
        );
        assert!(
            !html.contains("href=\"javascript"),
            "{card_type}: a javascript: URL survived"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{card_type}: the text still shows"
        );
    }
    // The chart's spec is JSON inside a script element: `<` is escaped as \u003c there.
    let chart = render_card(&ctx, &json!({"type": "blank", "components": components}));
    let spec_start = chart
        .html
        .find("id=\"vega-chart-1-spec\">")
        .expect("spec element");
    let spec = &chart.html[spec_start..];
    let spec = &spec[spec.find('>').unwrap() + 1..spec.find("</script>").unwrap()];
    assert!(spec.contains("\\u003cscript\\u003ealert(1)"), "{spec}");
    let back: Value = serde_json::from_str(spec).expect("the spec is still JSON");
    assert_eq!(back["title"], EVIL);
}

/// The page with the script elements flowc itself writes removed: the vendored
/// libraries, the start-up script and the chart specs.
fn strip_own_scripts(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        out.push_str(&rest[..start]);
        let tag_end = rest[start..]
            .find('>')
            .map_or(rest.len(), |i| start + i + 1);
        let tag = &rest[start..tag_end];
        let own = tag == "<script>"
            || tag.starts_with("<script type=\"application/json\" id=\"vega-chart-");
        assert!(own, "unexpected script tag {tag}");
        let close = rest[tag_end..]
            .find("</script>")
            .map_or(rest.len(), |i| tag_end + i + "</script>".len());
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

// -- the step graph ------------------------------------------------------------------

#[test]
fn graph_draws_every_step_and_transition_of_every_fixture() {
    let dir = workspace().join("fixtures/flows/valid");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".py"))
        .collect();
    names.sort();
    let mut drawn = 0;
    for name in &names {
        let flow = fixture_flow(name).unwrap_or_else(|| panic!("{name} reads"));
        let current = flow.steps.last().map(|s| s.name.clone());
        let svg = graph_svg(&flow, current.as_deref());
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{name}"
        );
        assert!(svg.ends_with("</svg>"), "{name}");
        assert_eq!(
            svg.matches("<g class=\"step").count(),
            flow.steps.len(),
            "{name}: one box a step"
        );
        assert_eq!(
            svg.matches("<g class=\"step current\"").count(),
            1,
            "{name}: one highlighted step"
        );
        let transitions: usize = flow
            .steps
            .iter()
            .map(|s| s.transition.targets().len())
            .sum();
        assert_eq!(
            svg.matches("<path class=\"edge\"").count(),
            transitions,
            "{name}: one edge a transition"
        );
        for step in &flow.steps {
            assert!(
                svg.contains(&format!("<title>{}</title>", step.name)),
                "{name}: {}",
                step.name
            );
        }
        // Every box lies inside the drawing.
        let width = attr_number(&svg, "width");
        let height = attr_number(&svg, "height");
        for rect in svg.split("<rect").skip(1) {
            let rect = &rect[..rect.find("/>").expect("closed rect")];
            let x = attr_number(rect, "x");
            let y = attr_number(rect, "y");
            assert!(
                x >= 0 && y >= 0 && x + 168 <= width && y + 40 <= height,
                "{name}: box out of the drawing"
            );
        }
        assert_eq!(
            svg,
            graph_svg(&flow, current.as_deref()),
            "{name}: deterministic"
        );
        drawn += 1;
    }
    assert!(drawn >= 20, "{drawn} fixtures");
}

fn attr_number(text: &str, name: &str) -> i64 {
    let key = format!(" {name}=\"");
    let start = text.find(&key).map(|i| i + key.len()).expect("attribute");
    let end = text[start..].find('"').expect("closing quote") + start;
    text[start..end].parse().expect("integer attribute")
}

#[test]
fn graph_snapshots() {
    for (fixture, current) in [
        ("branch_join.py", "choose"),
        ("switch_recursion.py", "train"),
        ("nested_foreach.py", "evaluate"),
    ] {
        let flow = fixture_flow(fixture).expect("fixture reads");
        let name = format!("graph_{}", fixture.trim_end_matches(".py"));
        insta::assert_snapshot!(name, graph_svg(&flow, Some(current)));
    }
}

#[test]
fn graph_of_a_loop_marks_the_back_edge() {
    let flow = fixture_flow("switch_recursion.py").expect("fixture reads");
    let svg = graph_svg(&flow, None);
    assert!(svg.contains("stroke-dasharray"), "the loop back is dashed");
    assert!(!svg.contains("current"), "no step highlighted");
}

// -- end to end: flowc run, then flowc card list / view --------------------------------

fn ok(output: Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

/// A flow that uses every component, both import paths, `current.card[...]`, several
/// cards on one step and an unknown card type.
const COMPONENTS_FLOW: &str = r##"
import struct
import zlib

from metaflow import FlowSpec, Parameter, card, current, step
from metaflow.cards import Artifact, Error, Image, Markdown, ProgressBar, Table, VegaChart
from metaflow.plugins.cards.card_modules.components import Markdown as PluginMarkdown


def tiny_png(width=24, height=12):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes([230, 90, 20]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class FakeFigure:
    """Stands in for a matplotlib Figure: what Image.from_matplotlib calls."""

    def savefig(self, buffer, format=None, bbox_inches=None):
        assert format == "png"
        buffer.write(tiny_png(8, 8))


class DataFrame:
    """Stands in for a pandas DataFrame: what Table.from_dataframe reads."""

    columns = ["day", "dau"]

    def __len__(self):
        return 150

    def head(self, count):
        return Head(count)


DataFrame.__module__ = "pandas.core.frame"


class Head:
    columns = DataFrame.columns

    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def itertuples(self, index=False, name=None):
        return iter([("day-%d" % i, 100 + i) for i in range(self.count)])


class ComponentsFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @step
    def start(self):
        self.scores = [0.25, 0.5]
        self.next(self.report)

    @card(type="blank", id="gallery")
    @card
    @step
    def report(self):
        current.card.append(Markdown("# Report\n**alpha** is %s" % self.alpha))
        gallery = current.card["gallery"]
        gallery.append(Table([[1, "two", Artifact({"k": 3})],
                              ["<script>alert(1)</script>", 2.5, Markdown("*cell*")]],
                             headers=["a", "b", "c"]))
        gallery.append(Image(tiny_png(), label="tiny"))
        gallery.append(Image.from_matplotlib(FakeFigure(), label="figure"))
        gallery.append(Table.from_dataframe(DataFrame()))
        bar = ProgressBar(max=10, label="epochs", unit="epochs")
        gallery.append(bar)
        for i in range(11):
            bar.update(i)
        gallery.append(VegaChart({"mark": "bar", "data": {"values": [{"x": "a", "y": 1}]},
                                  "encoding": {"x": {"field": "x", "type": "nominal"},
                                               "y": {"field": "y", "type": "quantitative"}}}))
        gallery.append(Error(ValueError("bad <b>value</b>"), title="a caught error"))
        gallery.append(PluginMarkdown("from the plugin path"))
        gallery.append(Image(b"not an image"))
        current.card.refresh()
        self.total = sum(self.scores)
        self.next(self.end)

    @card(type="sparkline")
    @step
    def end(self):
        pass
"##;

#[test]
fn run_then_list_and_view_the_cards() {
    let scratch = Scratch::new("e2e");
    let flow = scratch.file("components_flow.py", COMPONENTS_FLOW);
    let store = scratch.dir.join("store");
    let root = store.to_str().expect("utf-8");
    let run = flowc(
        &scratch.dir,
        &[
            "run",
            flow.to_str().expect("utf-8"),
            "--datastore-root",
            root,
        ],
    );
    ok(run);

    // `list`, as JSON: the report step's cards in source order.
    let listed = ok(flowc(
        &scratch.dir,
        &[
            "card",
            "list",
            "ComponentsFlow/latest/report",
            "--datastore-root",
            root,
            "--format",
            "json",
        ],
    ));
    let listed: Value = serde_json::from_str(&listed).expect("json");
    let cards = listed["cards"].as_array().expect("cards");
    let summary: Vec<(Value, Value)> = cards
        .iter()
        .map(|c| (c["id"].clone(), c["type"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("gallery"), json!("blank")),
            (Value::Null, json!("default"))
        ]
    );
    assert!(listed["task"]
        .as_str()
        .expect("task")
        .starts_with("ComponentsFlow/1/report/"));

    // `list`, as text.
    let text = ok(flowc(
        &scratch.dir,
        &[
            "card",
            "list",
            "ComponentsFlow/1/report",
            "--datastore-root",
            root,
        ],
    ));
    assert!(text.starts_with("ID"), "{text}");
    assert!(text.contains("gallery  blank"), "{text}");

    // `view --id` to a file.
    let out = scratch.dir.join("gallery.html");
    let view = flowc(
        &scratch.dir,
        &[
            "card",
            "view",
            "ComponentsFlow/latest/report",
            "--id",
            "gallery",
            "-o",
            out.to_str().unwrap(),
            "--datastore-root",
            root,
        ],
    );
    assert_eq!(ok(view), "", "with -o nothing goes to stdout");
    let gallery = std::fs::read_to_string(&out).expect("card file");
    for expected in [
        "data:image/png;base64,iVBORw0KGgo",
        "<figcaption>figure</figcaption>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<em>cell</em>",
        "{&#x27;k&#x27;: 3}",
        "showing the first 100 of 150 rows",
        "<progress max=\"10\" value=\"10\">",
        "id=\"vega-chart-1\"",
        "a caught error",
        "ValueError(&#x27;bad &lt;b&gt;value&lt;/b&gt;&#x27;)",
        "from the plugin path",
        "Image could not be shown",
    ] {
        assert!(gallery.contains(expected), "gallery card lacks {expected}");
    }
    assert!(
        !gallery.contains("<h2>Task</h2>"),
        "a blank card has no task facts"
    );

    // `view --type default` to stdout: facts, parameters, artifacts, graph, components.
    let default = ok(flowc(
        &scratch.dir,
        &[
            "card",
            "view",
            "ComponentsFlow/latest/report",
            "--type",
            "default",
            "--datastore-root",
            root,
        ],
    ));
    for expected in [
        "<h2>Task</h2>",
        "<dd>report</dd>",
        "<dd class=\"status-succeeded\">succeeded</dd>",
        "<td class=\"name\">alpha</td><td><code>0.5</code></td>",
        "<td class=\"name\">total</td><td><code>builtins.float</code></td>",
        "<code>0.75</code>",
        "<td class=\"name\">scores</td>",
        "<g class=\"step current\"><title>report</title>",
        "<h1>Report</h1>",
        "<strong>alpha</strong> is 0.5",
    ] {
        assert!(default.contains(expected), "default card lacks {expected}");
    }
    assert!(!default.contains("<script"), "no chart, no script");

    // Two cards and no selector: the error names both.
    let several = flowc(
        &scratch.dir,
        &[
            "card",
            "view",
            "ComponentsFlow/latest/report",
            "--datastore-root",
            root,
        ],
    );
    assert_eq!(several.status.code(), Some(2), "{}", describe(&several));
    let message = String::from_utf8_lossy(&several.stderr);
    assert!(
        message.contains("2 matching cards") && message.contains("`gallery` (blank)"),
        "{message}"
    );

    // An unknown card type: the task succeeded, the card is an error page.
    let end = ok(flowc(
        &scratch.dir,
        &[
            "card",
            "view",
            "ComponentsFlow/latest/end",
            "--datastore-root",
            root,
        ],
    ));
    assert!(
        end.contains("unknown card type &#x60;sparkline&#x60;"),
        "{end}"
    );

    // A step without @card.
    let none = ok(flowc(
        &scratch.dir,
        &[
            "card",
            "list",
            "ComponentsFlow/latest/start",
            "--datastore-root",
            root,
        ],
    ));
    assert!(none.contains("has no cards"), "{none}");
    let none = flowc(
        &scratch.dir,
        &[
            "card",
            "view",
            "ComponentsFlow/latest/start",
            "--datastore-root",
            root,
        ],
    );
    assert_eq!(none.status.code(), Some(2));

    // Paths that lead nowhere.
    for (path, expected) in [
        ("ComponentsFlow/latest", "not a task"),
        ("NoSuchFlow/latest/start", "has no flow `NoSuchFlow`"),
        ("ComponentsFlow/99/start/1", "has no run `99`"),
        ("ComponentsFlow/1/../1", "invalid step name"),
    ] {
        let out = flowc(
            &scratch.dir,
            &["card", "list", path, "--datastore-root", root],
        );
        assert_eq!(out.status.code(), Some(2), "{path}: {}", describe(&out));
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(expected), "{path}: {message}");
    }
}

#[test]
fn the_cards_fixture_renders_its_three_cards() {
    let scratch = Scratch::new("fixture");
    let file = workspace().join("fixtures/flows/valid/cards.py");
    let store = scratch.dir.join("store");
    let root = store.to_str().expect("utf-8");
    ok(flowc(
        &scratch.dir,
        &[
            "run",
            file.to_str().expect("utf-8"),
            "--datastore-root",
            root,
        ],
    ));
    let listed = ok(flowc(
        &scratch.dir,
        &[
            "card",
            "list",
            "WeeklyReportFlow/latest/report",
            "--format",
            "json",
            "--datastore-root",
            root,
        ],
    ));
    let listed: Value = serde_json::from_str(&listed).expect("json");
    let summary: Vec<(Value, Value)> = listed["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| (c["id"].clone(), c["type"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Value::Null, json!("default")),
            (json!("kpis"), json!("blank")),
            (json!("artifacts"), json!("default")),
        ]
    );
    let kpis = ok(flowc(
        &scratch.dir,
        &[
            "card",
            "view",
            "WeeklyReportFlow/latest/report",
            "--id",
            "kpis",
            "--datastore-root",
            root,
        ],
    ));
    assert!(kpis.contains("<strong>dau</strong>: 120000"), "{kpis}");
    assert!(
        kpis.contains("<strong>retention_d7</strong>: 0.41"),
        "{kpis}"
    );
}

// -- headless Chromium ---------------------------------------------------------------

/// Debian's `chromium`, or `None` (after a note) when it is missing and not required.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        let out = Command::new(name)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status.success().then(|| PathBuf::from(name))
    });
    if found.is_none() {
        assert!(
            std::env::var("FLOWC_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "FLOWC_REQUIRE_CHROMIUM=1 but chromium is not installed (apt-get install -y chromium)"
        );
        eprintln!("note: chromium is not installed; the browser test of the cards is skipped");
    }
    found
}

fn chromium_command(browser: &Path, profile: &Path) -> Command {
    let mut command = Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            // Lets the chart's asynchronous rendering finish before the DOM is dumped.
            "--virtual-time-budget=10000",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null());
    command
}

#[test]
fn the_page_loads_in_headless_chromium_without_errors() {
    let Some(browser) = chromium() else {
        return;
    };
    let scratch = Scratch::new("chromium");
    let flow = fixture_flow("cards.py").expect("cards.py reads");
    let card = render_card(
        &context(Some(&flow)),
        &json!({"type": "default", "components": every_component(true), "warnings": []}),
    );
    let page = scratch.file("card.html", &card.html);
    let url = format!("file://{}", page.display());
    let profile = scratch.dir.join("profile");

    let dumped = chromium_command(&browser, &profile)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("start chromium");
    let dom = String::from_utf8_lossy(&dumped.stdout);
    let log = String::from_utf8_lossy(&dumped.stderr);
    assert!(dumped.status.success(), "chromium failed:\n{log}");
    // Whatever the page logs (console.error, an uncaught exception, a request the
    // Content-Security-Policy refused) comes out in the log as a CONSOLE line or a
    // refusal; a card logs nothing.
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| {
            line.contains(":CONSOLE")
                || line.contains("Uncaught")
                || line.contains("Refused to")
                || line.contains("Content Security Policy")
        })
        .collect();
    assert!(
        errors.is_empty(),
        "the page logged errors:\n{}",
        errors.join("\n")
    );
    // The components are there, and the chart was drawn into an SVG inside its box.
    for expected in [
        "<h1>Weekly KPIs</h1>",
        "<progress",
        "a tiny image",
        "validation failed",
        "class=\"flow-graph\"",
    ] {
        assert!(dom.contains(expected), "the DOM lacks {expected}");
    }
    let chart_at = dom.find("id=\"vega-chart-1\"").expect("chart box");
    let chart = &dom[chart_at..];
    let chart = &chart[..chart
        .find("id=\"vega-chart-1-spec\"")
        .unwrap_or(chart.len())];
    assert!(
        chart.contains("<svg") && chart.contains("role-mark"),
        "the chart was not drawn: {chart}"
    );
    assert!(!dom.contains("class=\"vega failed\""), "the chart failed");

    let shot = scratch.dir.join("card.png");
    let screenshot = chromium_command(&browser, &profile)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,2000")
        .arg(&url)
        .output()
        .expect("start chromium");
    assert!(
        screenshot.status.success(),
        "{}",
        String::from_utf8_lossy(&screenshot.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    assert!(
        png.len() > 10_000,
        "the screenshot is not blank ({} bytes)",
        png.len()
    );
    if let Some(keep) = std::env::var_os("FLOWC_CARD_SCREENSHOT") {
        // For a human look: FLOWC_CARD_SCREENSHOT=/tmp/card.png cargo test ...
        let _ = std::fs::File::create(keep).and_then(|mut f| f.write_all(&png));
    }
}
