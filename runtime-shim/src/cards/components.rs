//! The user components of a card: from the JSON descriptions the harness sends
//! (`metaflow/cards.py`, `describe()`) to the values the `component` template shows.
//!
//! Reading is lenient per component: a description that is malformed (a newer
//! harness, a hand-made payload) becomes an error box on the card, never a failure of
//! the card or of the task. Whatever ends up in the template's triple-stash fields
//! (`html`, `spec_json`) is produced here from escaped or validated input.

use serde::Serialize;
use serde_json::{Map, Value};

use super::markdown;

/// Tables nest (a cell may hold a table); deeper than this they show as an error.
const MAX_NESTING: usize = 8;

/// Image types a card shows from a `data:` URL; SVG is left out on purpose (it can
/// carry script).
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// One component as the template sees it; `kind` selects the template branch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum ComponentView {
    Markdown {
        /// Rendered by [`markdown::to_html`], which escapes the user's text.
        html: String,
    },
    Text {
        text: String,
    },
    Table {
        headers: Vec<String>,
        rows: Vec<Vec<ComponentView>>,
        note: Option<String>,
    },
    Image {
        /// `data:<type>;base64,<data>`, both parts validated.
        src: String,
        label: Option<String>,
    },
    Artifact {
        name: Option<String>,
        value_type: String,
        repr: String,
    },
    ProgressBar {
        label: Option<String>,
        max: String,
        value: String,
        percent: String,
        unit: Option<String>,
        metadata: Option<String>,
    },
    VegaChart {
        element_id: String,
        /// The spec as JSON with `<`, `>` and `&` written as `\u` escapes, so it cannot
        /// end the `<script type="application/json">` element that holds it.
        spec_json: String,
        show_controls: bool,
    },
    Error {
        title: Option<String>,
        text: String,
    },
}

/// What reading a card's components found out about them.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// Charts seen so far: each gets an element id of its own, and the page gets the
    /// chart scripts only when there is one.
    pub(crate) charts: usize,
}

impl Reader {
    /// Reads one component description.
    pub(crate) fn read(&mut self, value: &Value) -> ComponentView {
        self.read_at(value, 0)
    }

    fn read_at(&mut self, value: &Value, depth: usize) -> ComponentView {
        match self.try_read(value, depth) {
            Ok(view) => view,
            Err(problem) => ComponentView::Error {
                title: Some("component could not be shown".to_owned()),
                text: problem,
            },
        }
    }

    fn try_read(&mut self, value: &Value, depth: usize) -> Result<ComponentView, String> {
        let fields = value
            .as_object()
            .ok_or_else(|| "a component description must be a JSON object".to_owned())?;
        let kind = fields.get("type").and_then(Value::as_str).unwrap_or("");
        let view = match kind {
            "markdown" => ComponentView::Markdown {
                html: markdown::to_html(&text(fields, "text")?.unwrap_or_default()),
            },
            "text" => ComponentView::Text {
                text: text(fields, "text")?.unwrap_or_default(),
            },
            "table" => {
                if depth >= MAX_NESTING {
                    return Err(format!("tables nest deeper than {MAX_NESTING} levels"));
                }
                let headers = match fields.get("headers") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => items.iter().map(plain).collect(),
                    Some(_) => return Err("table `headers` must be a list".to_owned()),
                };
                let rows = match fields.get("rows") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(rows)) => rows
                        .iter()
                        .map(|row| match row {
                            Value::Array(cells) => cells
                                .iter()
                                .map(|cell| self.read_at(cell, depth + 1))
                                .collect(),
                            other => vec![self.read_at(other, depth + 1)],
                        })
                        .collect(),
                    Some(_) => return Err("table `rows` must be a list of lists".to_owned()),
                };
                ComponentView::Table {
                    headers,
                    rows,
                    note: text(fields, "note")?,
                }
            }
            "image" => {
                let mime = text(fields, "mime")?.unwrap_or_default();
                if !IMAGE_TYPES.contains(&mime.as_str()) {
                    return Err(format!(
                        "image type `{mime}` is not shown (PNG, JPEG, GIF and WebP are)"
                    ));
                }
                let data = text(fields, "data")?.unwrap_or_default();
                if data.is_empty() || !is_base64(&data) {
                    return Err("image data is not base64".to_owned());
                }
                ComponentView::Image {
                    src: format!("data:{mime};base64,{data}"),
                    label: text(fields, "label")?,
                }
            }
            "artifact" => ComponentView::Artifact {
                name: text(fields, "name")?,
                value_type: text(fields, "value_type")?.unwrap_or_default(),
                repr: text(fields, "repr")?.unwrap_or_default(),
            },
            "progress_bar" => {
                let max = number(fields, "max")?.unwrap_or(100.0);
                let value = number(fields, "value")?.unwrap_or(0.0);
                let percent = if max > 0.0 {
                    (value / max * 100.0).clamp(0.0, 100.0)
                } else {
                    0.0
                };
                ComponentView::ProgressBar {
                    label: text(fields, "label")?,
                    max: format_number(max),
                    value: format_number(value),
                    percent: format!("{percent:.0}"),
                    unit: text(fields, "unit")?,
                    metadata: text(fields, "metadata")?,
                }
            }
            "vega_chart" => {
                let spec = fields
                    .get("spec")
                    .filter(|spec| spec.is_object())
                    .ok_or_else(|| "a chart needs its `spec` (a JSON object)".to_owned())?;
                self.charts += 1;
                ComponentView::VegaChart {
                    element_id: format!("vega-chart-{}", self.charts),
                    spec_json: script_safe_json(spec),
                    show_controls: fields
                        .get("show_controls")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                }
            }
            "error" => ComponentView::Error {
                title: text(fields, "title")?,
                text: text(fields, "text")?.unwrap_or_default(),
            },
            other => return Err(format!("unknown component type `{other}`")),
        };
        Ok(view)
    }
}

/// An optional string field.
fn text(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("component field `{name}` must be a string")),
    }
}

/// An optional finite number field.
fn number(fields: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64().filter(|v| v.is_finite())),
        Some(_) => Err(format!("component field `{name}` must be a number")),
    }
}

/// A JSON value as table text.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `3.0` as `3`, `0.25` as `0.25`.
pub(crate) fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn is_base64(data: &str) -> bool {
    data.len() % 4 == 0
        && data
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && data.len() - data.trim_end_matches('=').len() <= 2
}

/// JSON text that is safe inside a `<script>` element: the characters that could end
/// the element or start a comment are written as `\u` escapes, which JSON allows only
/// inside strings, which is where they can occur.
pub(crate) fn script_safe_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_components_become_error_boxes() {
        let mut reader = Reader::default();
        for bad in [
            json!("text"),
            json!({"type": "markdown", "text": 3}),
            json!({"type": "image", "mime": "image/svg+xml", "data": "AAAA"}),
            json!({"type": "image", "mime": "image/png", "data": "not base64!"}),
            json!({"type": "vega_chart", "spec": [1]}),
            json!({"type": "sparkline"}),
        ] {
            assert!(
                matches!(reader.read(&bad), ComponentView::Error { .. }),
                "{bad}"
            );
        }
        assert_eq!(reader.charts, 0);
    }

    #[test]
    fn tables_nest_up_to_a_limit() {
        let mut cell = json!({"type": "text", "text": "x"});
        for _ in 0..20 {
            cell = json!({"type": "table", "rows": [[cell]]});
        }
        let mut reader = Reader::default();
        let mut view = reader.read(&cell);
        let mut depth = 0;
        while let ComponentView::Table { rows, .. } = view {
            view = rows[0][0].clone();
            depth += 1;
        }
        assert_eq!(depth, MAX_NESTING);
        assert!(matches!(view, ComponentView::Error { .. }));
    }

    #[test]
    fn progress_is_clamped_and_numbers_are_plain() {
        let mut reader = Reader::default();
        let view = reader.read(&json!({"type": "progress_bar", "max": 8, "value": 10}));
        let ComponentView::ProgressBar {
            percent,
            max,
            value,
            ..
        } = view
        else {
            panic!("not a progress bar");
        };
        assert_eq!(
            (percent.as_str(), max.as_str(), value.as_str()),
            ("100", "8", "10")
        );
        assert_eq!(format_number(0.25), "0.25");
    }

    #[test]
    fn script_safe_json_round_trips_and_has_no_tags() {
        let spec = json!({"title": "</script><script>alert(1)</script> & <!--"});
        let text = script_safe_json(&spec);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
    }
}
