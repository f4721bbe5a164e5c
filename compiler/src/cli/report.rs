//! Rendering diagnostics for people (miette's graphical reports) and for tools (JSON).
//!
//! This is the only place that turns byte spans into lines and columns. Spans come from
//! the frontend and are trusted to be in range, but are still clamped to the text and
//! to character boundaries here: a renderer must not fail on a slightly wrong span.

use std::fmt;

use flowc::diagnostics::{Diagnostic, Severity};
use flowc_ir::Span;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

/// Reports are wrapped at a fixed width, whatever the terminal, so that the same input
/// always gives the same bytes (and snapshots stay stable).
const REPORT_WIDTH: usize = 100;

/// One file's text, ready to have diagnostics rendered against it.
pub(crate) struct Source<'a> {
    path: &'a str,
    text: &'a str,
    named: NamedSource<String>,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(path: &'a str, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            path,
            text,
            named: NamedSource::new(path, text.to_string()),
            line_starts,
        }
    }

    /// `offset` moved into the text and back onto a character boundary.
    fn clamp(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    fn clamp_span(&self, span: Span) -> Span {
        let start = self.clamp(span.start);
        Span::new(start, self.clamp(span.end).max(start))
    }

    /// 1-based line and 1-based column in characters of a byte offset.
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = self.clamp(offset);
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let line_start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count());
        (line + 1, column + 1)
    }

    fn miette_span(&self, span: Span) -> SourceSpan {
        let span = self.clamp_span(span);
        SourceSpan::new(span.start.into(), span.len())
    }
}

/// How a graphical report is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// ANSI colours, for a terminal that has not asked for `NO_COLOR`.
    pub(crate) color: bool,
}

/// Every diagnostic as a miette graphical report (file, line:col, the source line with
/// a caret under the span, labels, help, code), separated by blank lines.
pub(crate) fn render_text(source: &Source<'_>, diagnostics: &[Diagnostic], style: Style) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(REPORT_WIDTH)
        .with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report { diagnostic, source };
        let mut rendered = String::new();
        if handler.render_report(&mut rendered, &report).is_err() {
            // miette only fails when it cannot read the source, which clamping rules
            // out; should it happen, the message alone is still worth showing.
            rendered = format!(
                "{}: {}\n",
                severity_word(diagnostic.severity),
                diagnostic.message
            );
        }
        out.push_str(&rendered);
        if !rendered.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A diagnostic together with its file, in the shape miette renders.
struct Report<'s, 'a> {
    diagnostic: &'s Diagnostic,
    source: &'s Source<'a>,
}

impl fmt::Debug for Report<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("diagnostic", self.diagnostic)
            .field("path", &self.source.path)
            .finish()
    }
}

impl fmt::Display for Report<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_, '_> {}

impl miette::Diagnostic for Report<'_, '_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display + 'b>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = Some(self.diagnostic.label.clone()).filter(|l| !l.is_empty());
        let primary = LabeledSpan::new_primary_with_span(
            label,
            self.source.miette_span(self.diagnostic.span),
        );
        let related = self.diagnostic.related.iter().map(|r| {
            LabeledSpan::new_with_span(Some(r.message.clone()), self.source.miette_span(r.span))
        });
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

/// A byte range and where it is, for JSON output.
#[derive(Debug, Serialize)]
struct Located {
    span: Span,
    /// 1-based.
    line: usize,
    /// 1-based, in characters.
    column: usize,
    /// Line and column of the end of the span (exclusive).
    end_line: usize,
    end_column: usize,
}

impl Located {
    fn new(source: &Source<'_>, span: Span) -> Self {
        let span = source.clamp_span(span);
        let (line, column) = source.line_column(span.start);
        let (end_line, end_column) = source.line_column(span.end);
        Located {
            span,
            line,
            column,
            end_line,
            end_column,
        }
    }
}

/// One diagnostic in `flowc check --format json`.
#[derive(Debug, Serialize)]
pub(crate) struct DiagnosticJson {
    code: &'static str,
    severity: Severity,
    message: String,
    label: Option<String>,
    help: Option<String>,
    #[serde(flatten)]
    at: Located,
    related: Vec<RelatedJson>,
}

#[derive(Debug, Serialize)]
struct RelatedJson {
    message: String,
    #[serde(flatten)]
    at: Located,
}

/// The diagnostics of one file in their JSON form.
pub(crate) fn to_json(source: &Source<'_>, diagnostics: &[Diagnostic]) -> Vec<DiagnosticJson> {
    diagnostics
        .iter()
        .map(|d| DiagnosticJson {
            code: d.code,
            severity: d.severity,
            message: d.message.clone(),
            label: Some(d.label.clone()).filter(|l| !l.is_empty()),
            help: d.help.clone(),
            at: Located::new(source, d.span),
            related: d
                .related
                .iter()
                .map(|r| RelatedJson {
                    message: r.message.clone(),
                    at: Located::new(source, r.span),
                })
                .collect(),
        })
        .collect()
}

/// Count errors and warnings.
pub(crate) fn tally(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    (errors, diagnostics.len() - errors)
}

/// "1 error", "2 warnings".
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc::diagnostics::codes;

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let source = Source::new("f.py", "ab\nçé x\n\nlast");
        assert_eq!(source.line_column(0), (1, 1));
        assert_eq!(source.line_column(2), (1, 3));
        assert_eq!(source.line_column(3), (2, 1));
        // `ç` and `é` are two bytes each: byte 8 is the `x`, the fourth character.
        assert_eq!(source.line_column(8), (2, 4));
        assert_eq!(source.line_column(11), (4, 1));
        // Past the end, or inside a character: clamped, never a panic.
        assert_eq!(source.line_column(1000), (4, 5));
        assert_eq!(source.line_column(4), (2, 1));
    }

    #[test]
    fn renders_code_caret_label_and_help() {
        let text = "class F(FlowSpec):\n    x = 1\n";
        let source = Source::new("flow.py", text);
        let diagnostic =
            Diagnostic::new(&codes::UNKNOWN_STEP, Span::new(23, 24), "step `x` is odd")
                .with_label("this one")
                .with_help("rename it")
                .with_related(Span::new(6, 7), "the class");
        let out = render_text(&source, &[diagnostic], Style { color: false });
        assert!(out.contains("flowc::graph::unknown-step"), "{out}");
        assert!(out.contains("step `x` is odd"), "{out}");
        assert!(out.contains("[flow.py:2:5]"), "{out}");
        assert!(out.contains("this one"), "{out}");
        assert!(out.contains("the class"), "{out}");
        assert!(out.contains("help: rename it"), "{out}");
        assert!(!out.contains('\u{1b}'), "no colour codes: {out:?}");
    }

    #[test]
    fn out_of_range_spans_still_render() {
        let source = Source::new("flow.py", "é");
        let diagnostic = Diagnostic::new(&codes::SYNTAX_ERROR, Span::new(1, 50), "broken");
        let out = render_text(
            &source,
            std::slice::from_ref(&diagnostic),
            Style { color: false },
        );
        assert!(out.contains("broken"), "{out}");
        let json = to_json(&source, &[diagnostic]);
        let value = serde_json::to_value(&json).expect("serialises");
        assert_eq!(value[0]["span"], serde_json::json!({"start": 0, "end": 2}));
        assert_eq!(value[0]["end_column"], 2);
    }
}
