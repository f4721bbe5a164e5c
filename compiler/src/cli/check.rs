//! `flowc check`: read flow files and report every problem found, as text or JSON.

use std::fmt::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use flowc::FrontendOptions;
use serde::Serialize;

use super::report::{self, DiagnosticJson};
use super::{source, Outcome, Status, Terminal};

const EXAMPLES: &str = "\
Examples:
  flowc check flow.py
  flowc check flows/*.py --deny-warnings
  flowc check pipelines.py --flow TrainFlow
  flowc check flow.py --format json | jq '.files[].diagnostics[].code'

Exit status: 0 when no file has errors, 1 when one has (or has warnings under
--deny-warnings), 2 when a file cannot be read.";

const LONG_ABOUT: &str = "\
Check flow files and report every problem found.

Each file is read statically (never imported). Every diagnostic names the file, line
and column, quotes the source line with the span underlined, says how to fix it and
carries a stable code (e.g. flowc::graph::unknown-step).";

/// Check flow files and report every problem found.
#[derive(Debug, clap::Args)]
#[command(long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub(crate) struct Args {
    /// Flow files to check.
    #[arg(value_name = "FLOW.py", required = true)]
    files: Vec<PathBuf>,

    /// The flow class to check when a file defines several.
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Fail (exit status 1) on warnings too, not only on errors.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Graphical reports for people, then a summary line per file.
    Text,
    /// One JSON document for the whole run, for editors and CI.
    Json,
}

/// `{"files": [...], "errors": N, "warnings": N}`
#[derive(Debug, Serialize)]
struct RunJson {
    files: Vec<FileJson>,
    errors: usize,
    warnings: usize,
}

#[derive(Debug, Serialize)]
struct FileJson {
    path: String,
    flow: Option<String>,
    diagnostics: Vec<DiagnosticJson>,
}

pub(crate) fn run(args: &Args, terminal: &Terminal) -> Outcome {
    let options = FrontendOptions {
        flow: args.flow.clone(),
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut unreadable = false;
    let mut files = Vec::new();
    let (mut errors, mut warnings, mut checked_files) = (0, 0, 0);

    for path in &args.files {
        let file = match source::read(path) {
            Ok(file) => file,
            Err(message) => {
                // Keep going: the other files are still worth checking.
                let _ = writeln!(stderr, "error: {message}");
                unreadable = true;
                continue;
            }
        };
        let checked = flowc::check(&file.path, &file.text, &options);
        let source = report::Source::new(&file.path, &file.text);
        let (file_errors, file_warnings) = report::tally(&checked.diagnostics);
        errors += file_errors;
        warnings += file_warnings;
        checked_files += 1;
        match args.format {
            Format::Text => {
                // A blank line sets a file's reports apart from the summary above them.
                if !checked.diagnostics.is_empty() && !stdout.is_empty() {
                    stdout.push('\n');
                }
                stdout.push_str(&report::render_text(
                    &source,
                    &checked.diagnostics,
                    terminal.stdout,
                ));
                let flow = checked
                    .flow
                    .as_ref()
                    .map(|f| (f.name.as_str(), f.steps.len()));
                stdout.push_str(&summary(
                    &file.path,
                    flow,
                    file_errors,
                    file_warnings,
                    args.deny_warnings,
                ));
            }
            Format::Json => files.push(FileJson {
                path: file.path.clone(),
                flow: checked.flow.as_ref().map(|f| f.name.clone()),
                diagnostics: report::to_json(&source, &checked.diagnostics),
            }),
        }
    }

    match args.format {
        Format::Text if checked_files > 1 => {
            let files = report::plural(checked_files, "file");
            let _ = writeln!(stdout, "{files}: {}", counts(errors, warnings, "ok"));
        }
        Format::Text => {}
        Format::Json => {
            let run = RunJson {
                files,
                errors,
                warnings,
            };
            match serde_json::to_string_pretty(&run) {
                Ok(json) => {
                    stdout.push_str(&json);
                    stdout.push('\n');
                }
                Err(error) => {
                    let _ = writeln!(stderr, "error: cannot write JSON: {error}");
                    unreadable = true;
                }
            }
        }
    }

    let status = if unreadable {
        Status::Trouble
    } else if errors > 0 || (args.deny_warnings && warnings > 0) {
        Status::Failed
    } else {
        Status::Ok
    };
    Outcome {
        stdout,
        stderr,
        status,
    }
}

/// The line after a file's reports: `flow.py: 2 errors, 1 warning`, or
/// `flow.py: ok (HelloFlow, 5 steps)` when there is no error.
fn summary(
    path: &str,
    flow: Option<(&str, usize)>,
    errors: usize,
    warnings: usize,
    deny_warnings: bool,
) -> String {
    if errors > 0 || (deny_warnings && warnings > 0) {
        let denied = if errors == 0 {
            " (denied by --deny-warnings)"
        } else {
            ""
        };
        return format!("{path}: {}{denied}\n", counts(errors, warnings, ""));
    }
    let what = match flow {
        Some((name, steps)) => format!("ok ({name}, {})", report::plural(steps, "step")),
        None => "ok".to_string(),
    };
    if warnings > 0 {
        format!("{path}: {what}, {}\n", report::plural(warnings, "warning"))
    } else {
        format!("{path}: {what}\n")
    }
}

/// "2 errors, 1 warning", "1 warning", or `clean` when both are zero.
fn counts(errors: usize, warnings: usize, clean: &str) -> String {
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(report::plural(errors, "error"));
    }
    if warnings > 0 {
        parts.push(report::plural(warnings, "warning"));
    }
    if parts.is_empty() {
        clean.to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_each_file() {
        assert_eq!(
            summary("f.py", Some(("F", 5)), 0, 0, false),
            "f.py: ok (F, 5 steps)\n"
        );
        assert_eq!(
            summary("f.py", Some(("F", 1)), 0, 2, false),
            "f.py: ok (F, 1 step), 2 warnings\n"
        );
        assert_eq!(
            summary("f.py", None, 2, 1, false),
            "f.py: 2 errors, 1 warning\n"
        );
        assert_eq!(
            summary("f.py", Some(("F", 2)), 1, 0, true),
            "f.py: 1 error\n"
        );
        assert_eq!(
            summary("f.py", Some(("F", 2)), 0, 1, true),
            "f.py: 1 warning (denied by --deny-warnings)\n"
        );
    }
}
