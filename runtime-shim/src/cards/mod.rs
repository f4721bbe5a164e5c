//! HTML cards (`@card`): one self-contained page per card of a task, rendered when the
//! task ends from what the harness reports (each card's type, id, options and user
//! components) and what the shim knows (task facts, the manifest, the run's IR), and
//! stored as a blob of the flow with a [`CardRef`] on the task's metadata.
//!
//! Pages come from the handlebars templates under `templates/cards/`, compiled into
//! the binary and rendered in strict mode; every user value goes through handlebars'
//! HTML escaping, and the only unescaped fields hold HTML this module produced itself
//! (the graph SVG, rendered Markdown, script-safe JSON, the vendored chart libraries).
//! A Content-Security-Policy in each page forbids every network request and, unless
//! the page holds a chart, every script. Cards never fail a task: an unknown card
//! type, a malformed report or a failed render becomes an error page.

mod components;
mod graph;
mod markdown;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use flowc_ir::Flow;
use handlebars::Handlebars;
use serde::Serialize;
use serde_json::Value;

use crate::store::{
    now_unix_ms, BlobStore, CardRef, Manifest, MetadataStore, StoreError, TaskPath,
};
use crate::task::StepStatus;
use components::{ComponentView, Reader};

pub use graph::graph_svg;

/// The card types flowc renders. Others get an error page.
pub const KNOWN_CARD_TYPES: &[&str] = &["default", "blank"];

/// The facts of a task that the default card shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    pub flow: String,
    pub run_id: String,
    pub step: String,
    pub task_id: String,
    /// The attempt, from 0.
    pub attempt: u32,
    /// `succeeded`, `failed`, or `caught` (`@catch` handled an exception).
    pub status: String,
    pub started_at_unix_ms: u64,
    pub finished_at_unix_ms: Option<u64>,
}

/// One row of the default card's artifacts table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    pub name: String,
    pub type_name: String,
    /// Size of the pickled value in bytes.
    pub size: u64,
    /// A short repr, when the harness had the value in memory.
    pub value: Option<String>,
}

/// What every card of one task is rendered from, besides the card's own report.
#[derive(Debug, Clone)]
pub struct CardContext<'a> {
    pub facts: TaskFacts,
    /// Parameter name and short value, sorted by name.
    pub parameters: Vec<(String, String)>,
    pub artifacts: Vec<ArtifactRow>,
    /// The flow's IR, for the graph; `None` leaves the graph out.
    pub flow: Option<&'a Flow>,
}

/// One rendered card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedCard {
    pub card_type: String,
    pub id: Option<String>,
    pub html: String,
}

/// Renders one card from its report (`{"type", "id", "options", "components",
/// "warnings"}`, as `metaflow/cards.py` makes it).
pub fn render_card(context: &CardContext<'_>, card: &Value) -> RenderedCard {
    let card_type = card
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let id = card.get("id").and_then(Value::as_str).map(str::to_owned);
    let page = page_for(context, card, &card_type, id.as_deref());
    RenderedCard {
        html: render_page(&page),
        card_type,
        id,
    }
}

/// The page of one card, before templating.
fn page_for<'a>(
    context: &CardContext<'_>,
    card: &Value,
    card_type: &str,
    id: Option<&str>,
) -> PageView<'a> {
    let facts = &context.facts;
    let pathspec = format!(
        "{}/{}/{}/{}",
        facts.flow, facts.run_id, facts.step, facts.task_id
    );
    let subtitle = match id {
        Some(id) => format!("card `{id}` ({card_type})"),
        None => format!("{card_type} card"),
    };
    let mut page = PageView {
        title: format!("{pathspec} \u{b7} {subtitle}"),
        heading: pathspec,
        subtitle,
        csp: CSP_NO_SCRIPT,
        error: None,
        warnings: string_list(card.get("warnings")),
        default_card: false,
        facts: Vec::new(),
        parameters: Vec::new(),
        artifacts: Vec::new(),
        graph_svg: None,
        components: Vec::new(),
        scripts: None,
    };
    if !KNOWN_CARD_TYPES.contains(&card_type) {
        page.error = Some(ErrorView {
            title: format!("unknown card type `{card_type}`"),
            text: format!(
                "flowc renders the card types {}; this card of type `{card_type}` was not rendered \
                 (the task itself is not affected)",
                KNOWN_CARD_TYPES
                    .iter()
                    .map(|known| format!("`{known}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        });
        return page;
    }
    if card_type == "default" {
        page.default_card = true;
        page.facts = fact_rows(facts);
        page.parameters = context
            .parameters
            .iter()
            .map(|(name, value)| NameValue {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        page.artifacts = context
            .artifacts
            .iter()
            .map(|row| ArtifactView {
                name: row.name.clone(),
                type_name: row.type_name.clone(),
                size: format_size(row.size),
                value: row.value.clone(),
            })
            .collect();
        page.graph_svg = context
            .flow
            .map(|flow| graph_svg(flow, Some(&facts.step)))
            .filter(|svg| !svg.is_empty());
    }
    let mut reader = Reader::default();
    page.components = match card.get("components") {
        Some(Value::Array(items)) => items.iter().map(|item| reader.read(item)).collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => vec![ComponentView::Error {
            title: Some("the card's components could not be read".to_owned()),
            text: "`components` is not a list".to_owned(),
        }],
    };
    if reader.charts > 0 {
        page.csp = CSP_CHARTS;
        page.scripts = Some(vendor_scripts().to_vec());
    }
    page
}

/// No script at all, no request of any kind: only inline styles and `data:` images.
const CSP_NO_SCRIPT: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'";

/// For pages with charts: the inline chart libraries may run (Vega compiles its
/// expressions with `Function`, hence `unsafe-eval`), still without any request.
const CSP_CHARTS: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data: blob:; \
                          script-src 'unsafe-inline' 'unsafe-eval'";

#[derive(Debug, Serialize)]
struct PageView<'a> {
    title: String,
    heading: String,
    subtitle: String,
    csp: &'static str,
    error: Option<ErrorView>,
    warnings: Vec<String>,
    default_card: bool,
    facts: Vec<FactView>,
    parameters: Vec<NameValue>,
    artifacts: Vec<ArtifactView>,
    /// Produced by [`graph_svg`], which escapes every name.
    graph_svg: Option<String>,
    components: Vec<ComponentView>,
    /// The vendored chart libraries, only on pages with a chart.
    scripts: Option<Vec<&'a str>>,
}

#[derive(Debug, Serialize)]
struct ErrorView {
    title: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct FactView {
    label: &'static str,
    value: String,
    class: String,
}

#[derive(Debug, Serialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct ArtifactView {
    name: String,
    type_name: String,
    size: String,
    value: Option<String>,
}

fn fact_rows(facts: &TaskFacts) -> Vec<FactView> {
    let fact = |label, value: String| FactView {
        label,
        value,
        class: String::new(),
    };
    let mut rows = vec![
        fact("flow", facts.flow.clone()),
        fact("run", facts.run_id.clone()),
        fact("step", facts.step.clone()),
        fact("task", facts.task_id.clone()),
        fact("attempt", facts.attempt.to_string()),
        FactView {
            label: "status",
            value: facts.status.clone(),
            class: format!("status-{}", css_word(&facts.status)),
        },
        fact("started", format_utc(facts.started_at_unix_ms)),
    ];
    match facts.finished_at_unix_ms {
        Some(finished) => {
            rows.push(fact("finished", format_utc(finished)));
            rows.push(fact(
                "duration",
                format_duration(finished.saturating_sub(facts.started_at_unix_ms)),
            ));
        }
        None => rows.push(fact("finished", "not yet".to_owned())),
    }
    rows
}

/// A word safe as a CSS class name.
fn css_word(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.set_prevent_indent(true);
        // The templates are compiled into the binary and covered by the tests: an
        // error here is a build defect, which `render_page` turns into an error page.
        for (name, text) in TEMPLATES {
            if let Err(err) = registry.register_template_string(name, *text) {
                eprintln!("flowc-shim: card template `{name}` is invalid: {err}");
            }
        }
        registry
    })
}

const TEMPLATES: &[(&str, &str)] = &[
    ("page", include_str!("../../../templates/cards/page.hbs")),
    (
        "component",
        include_str!("../../../templates/cards/component.hbs"),
    ),
    (
        "style",
        include_str!("../../../templates/cards/style.css.hbs"),
    ),
    (
        "vega_boot",
        include_str!("../../../templates/cards/vega_boot.js.hbs"),
    ),
];

/// The chart libraries, in load order, without their source-map comments (a page
/// opened from disk has no map beside it).
fn vendor_scripts() -> &'static [&'static str] {
    static SCRIPTS: OnceLock<Vec<&'static str>> = OnceLock::new();
    SCRIPTS.get_or_init(|| {
        [
            include_str!("../../../templates/cards/vendor/vega.min.js"),
            include_str!("../../../templates/cards/vendor/vega-lite.min.js"),
            include_str!("../../../templates/cards/vendor/vega-embed.min.js"),
        ]
        .iter()
        .map(|script| strip_source_map(script))
        .collect()
    })
}

fn strip_source_map(script: &str) -> &str {
    let trimmed = script.trim_end();
    match trimmed.rfind("\n//# sourceMappingURL=") {
        Some(at) => trimmed.get(..at).unwrap_or(trimmed),
        None => trimmed,
    }
}

fn render_page(page: &PageView<'_>) -> String {
    match registry().render("page", page) {
        Ok(html) => html,
        Err(err) => fallback_page(&page.heading, &err.to_string()),
    }
}

/// The page shown when the templates themselves fail: plain, escaped, no template.
fn fallback_page(heading: &str, problem: &str) -> String {
    let escape = handlebars::html_escape;
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP_NO_SCRIPT}\">\
         <title>{0}</title></head><body><h1>{0}</h1><p>the card could not be rendered: {1}</p></body></html>\n",
        escape(heading),
        escape(problem)
    )
}

/// `2024-05-01 12:00:00 UTC` from milliseconds since the epoch.
pub(crate) fn format_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub(crate) fn format_duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`, ...
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"PiB"))
}

/// What the task runner knows when the harness's report arrives.
pub(crate) struct FinishedTask<'a> {
    pub(crate) path: &'a TaskPath,
    pub(crate) attempt: u32,
    pub(crate) status: StepStatus,
    pub(crate) started_at_unix_ms: u64,
    pub(crate) manifest: &'a Manifest,
}

/// Renders every card the harness reported and stores each page as a blob of the
/// flow. A card whose page cannot be stored is left out with a message on stderr (the
/// store then has bigger problems, which the task's own writes report).
pub(crate) fn render_and_store<S>(
    store: &S,
    task: &FinishedTask<'_>,
    report: &Value,
) -> Vec<CardRef>
where
    S: BlobStore + MetadataStore + ?Sized,
{
    let cards = match report.get("cards") {
        Some(Value::Array(cards)) => cards.clone(),
        _ => Vec::new(),
    };
    if cards.is_empty() {
        if let Some(problem) = report.get("error").and_then(Value::as_str) {
            eprintln!(
                "flowc-shim: task {}: no card was rendered: {problem}",
                task.path
            );
        }
        return Vec::new();
    }
    let flow = run_flow_ir(store, task.path);
    let context = task_context(task, report, flow.as_ref());
    let mut refs = Vec::with_capacity(cards.len());
    for card in &cards {
        let rendered = render_card(&context, card);
        match store.put(&task.path.flow, rendered.html.as_bytes()) {
            Ok(blob) => refs.push(CardRef {
                id: rendered.id,
                card_type: rendered.card_type,
                hash: blob.hash,
                size: blob.size,
            }),
            Err(err) => eprintln!(
                "flowc-shim: task {}: card `{}` could not be stored: {err}",
                task.path,
                rendered.id.as_deref().unwrap_or(&rendered.card_type)
            ),
        }
    }
    refs
}

/// The flow's IR from `run.json`, when the run has one this build can read.
fn run_flow_ir<S: MetadataStore + ?Sized>(store: &S, path: &TaskPath) -> Option<Flow> {
    let meta = match store.read_run(&path.flow, &path.run_id) {
        Ok(meta) => meta,
        Err(StoreError::NotFound { .. }) => return None,
        Err(err) => {
            eprintln!("flowc-shim: task {path}: the card's graph is left out: {err}");
            return None;
        }
    };
    let version = meta.flow_ir.get("ir_version").and_then(Value::as_u64)?;
    if version != u64::from(flowc_ir::IR_VERSION) {
        return None;
    }
    serde_json::from_value(meta.flow_ir).ok()
}

fn task_context<'a>(
    task: &FinishedTask<'_>,
    report: &Value,
    flow: Option<&'a Flow>,
) -> CardContext<'a> {
    let short = |section: &str| -> BTreeMap<String, String> {
        match report.get(section) {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
            _ => BTreeMap::new(),
        }
    };
    let parameters = short("parameters");
    let values = short("values");
    let artifacts = task
        .manifest
        .artifacts
        .iter()
        .filter(|(name, _)| {
            !name.as_str().starts_with('_') && !parameters.contains_key(name.as_str())
        })
        .map(|(name, entry)| ArtifactRow {
            name: name.as_str().to_owned(),
            type_name: entry.type_name.clone(),
            size: entry.size,
            value: values.get(name.as_str()).cloned(),
        })
        .collect();
    let status = match task.status {
        StepStatus::Ok => "succeeded",
        StepStatus::Caught => "caught",
        StepStatus::Failed => "failed",
    };
    CardContext {
        facts: TaskFacts {
            flow: task.path.flow.as_str().to_owned(),
            run_id: task.path.run_id.as_str().to_owned(),
            step: task.path.step.as_str().to_owned(),
            task_id: task.path.task_id.as_str().to_owned(),
            attempt: task.attempt,
            status: status.to_owned(),
            started_at_unix_ms: task.started_at_unix_ms,
            finished_at_unix_ms: Some(now_unix_ms()),
        },
        parameters: parameters.into_iter().collect(),
        artifacts,
        flow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> CardContext<'static> {
        CardContext {
            facts: TaskFacts {
                flow: "F".into(),
                run_id: "1".into(),
                step: "start".into(),
                task_id: "2".into(),
                attempt: 0,
                status: "succeeded".into(),
                started_at_unix_ms: 1_714_564_800_000,
                finished_at_unix_ms: Some(1_714_564_801_500),
            },
            parameters: Vec::new(),
            artifacts: Vec::new(),
            flow: None,
        }
    }

    #[test]
    fn dates_durations_and_sizes_read_well() {
        assert_eq!(format_utc(1_714_564_800_000), "2024-05-01 12:00:00 UTC");
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(12_340), "12.3 s");
        assert_eq!(format_duration(245_000), "4 min 05 s");
        assert_eq!(format_duration(7_380_000), "2 h 03 min");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn templates_compile_in_strict_mode() {
        for (name, _) in TEMPLATES {
            assert!(
                registry().has_template(name),
                "template `{name}` did not compile"
            );
        }
    }

    #[test]
    fn unknown_card_type_is_an_error_page_not_a_failure() {
        let card = render_card(
            &context(),
            &json!({"type": "fancy", "id": "x", "components": []}),
        );
        assert_eq!(card.card_type, "fancy");
        assert_eq!(card.id.as_deref(), Some("x"));
        assert!(
            card.html.contains("unknown card type &#x60;fancy&#x60;"),
            "{}",
            card.html
        );
    }

    #[test]
    fn scripts_only_on_pages_with_charts() {
        let plain = render_card(
            &context(),
            &json!({"type": "blank", "components": [
            {"type": "markdown", "text": "hi"}]}),
        );
        assert!(
            !plain.html.contains("<script"),
            "a page without charts has no script"
        );
        assert!(plain.html.contains("script-src &#x27;none&#x27;"));
        let chart = render_card(
            &context(),
            &json!({"type": "blank", "components": [
            {"type": "vega_chart", "spec": {"mark": "bar"}}]}),
        );
        assert!(chart.html.contains("vegaEmbed"));
        assert!(!chart.html.contains("sourceMappingURL"));
    }

    #[test]
    fn vendored_scripts_cannot_end_their_script_element() {
        for script in vendor_scripts() {
            assert!(!script.to_ascii_lowercase().contains("</script"));
            assert!(script.len() > 10_000);
        }
    }
}
