//! `flowc runs [FLOW]`: the runs in the datastore, newest first, as a table or JSON.
//!
//! Also home of what the four inspection commands (`runs`, `show`, `logs`, `artifact`)
//! share: the datastore option, the output format, opening the store and rendering
//! tables.

use std::path::PathBuf;

use clap::ValueEnum;
use flowc_shim::client::time::{human_duration, human_utc};
use flowc_shim::client::{Client, ClientError, InvalidPath, RunSummary};
use flowc_shim::store::{resolve_root, FlowName, RunStatus, ROOT_ENV_VAR};
use serde::Serialize;

use super::{Outcome, Status, Terminal};

/// List the runs in the datastore, newest first.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only the runs of this flow (the class name) [default: every flow].
    #[arg(value_name = "FLOW")]
    flow: Option<String>,
    /// Show at most N runs (the newest).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Options every inspection command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct CommonArgs {
    /// The datastore to read [default: $FLOWC_DATASTORE_ROOT, else .flowc].
    #[arg(long, value_name = "DIR")]
    pub(crate) datastore_root: Option<PathBuf>,
    /// Output format: a table for people, or JSON with stable field names
    /// (docs/inspect.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

/// `flowc runs --format json`.
#[derive(Serialize)]
struct RunsJson<'a> {
    runs: &'a [RunSummary],
    /// Runs whose `run.json` could not be read, each with a message naming the file.
    unreadable: Vec<ProblemJson>,
}

#[derive(Serialize)]
struct ProblemJson {
    message: String,
}

pub(crate) fn run(args: &Args, _terminal: &Terminal) -> Outcome {
    let client = match open(&args.common) {
        Ok(client) => client,
        Err(outcome) => return outcome,
    };
    let flow = match args.flow.as_deref().map(FlowName::new).transpose() {
        Ok(flow) => flow,
        Err(err) => {
            return failure(&ClientError::InvalidPath(InvalidPath {
                path: args.flow.clone().unwrap_or_default(),
                reason: err.to_string(),
            }))
        }
    };
    let listing = match client.list_runs(flow.as_ref()) {
        Ok(listing) => listing,
        Err(err) => return failure(&err),
    };
    let total = listing.runs.len();
    let shown = &listing.runs[..args.limit.unwrap_or(total).min(total)];
    let mut stderr: String = listing
        .unreadable
        .iter()
        .map(|err| format!("warning: skipped a run: {err}\n"))
        .collect();
    let stdout = match args.common.format {
        Format::Json => to_json(&RunsJson {
            runs: shown,
            unreadable: listing
                .unreadable
                .iter()
                .map(|err| ProblemJson {
                    message: err.to_string(),
                })
                .collect(),
        }),
        Format::Text => {
            let where_ = match &flow {
                Some(flow) => format!("flow {flow}"),
                None => format!("datastore `{}`", client.store().root().display()),
            };
            if total == 0 {
                stderr.push_str(&format!("no runs in {where_}\n"));
            } else if shown.len() < total {
                stderr.push_str(&format!(
                    "showing the newest {} of {total} runs in {where_}\n",
                    shown.len()
                ));
            }
            text_table(shown)
        }
    };
    Outcome {
        stdout,
        stderr,
        status: Status::Ok,
    }
}

/// The runs as a table; empty when there are none (the caller says so on stderr).
pub(crate) fn text_table(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            vec![
                run.pathspec.clone(),
                status_word(run.status).to_owned(),
                human_utc(run.started_at),
                run.duration_ms
                    .map_or_else(|| "-".to_owned(), human_duration),
                if run.steps.is_empty() {
                    "-".to_owned()
                } else {
                    run.steps.len().to_string()
                },
            ]
        })
        .collect();
    table(
        &["RUN", "STATUS", "STARTED (UTC)", "DURATION", "STEPS"],
        &rows,
    )
}

pub(crate) fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Killed => "killed",
    }
}

/// Left-aligned columns two spaces apart, without trailing spaces.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(&widths) {
            text.push_str(cell);
            text.push_str(&" ".repeat(width.saturating_sub(cell.chars().count()) + 2));
        }
        let mut text = text.trim_end().to_owned();
        text.push('\n');
        text
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// Opens the datastore the options name (`--datastore-root` over
/// `FLOWC_DATASTORE_ROOT` over `.flowc`), or the outcome explaining why it cannot be.
pub(crate) fn open(common: &CommonArgs) -> Result<Client, Outcome> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let root = resolve_root(
        common.datastore_root.as_deref(),
        std::env::var_os(ROOT_ENV_VAR).as_deref(),
        &cwd,
    );
    Client::open(&root.path).map_err(|err| failure(&err))
}

/// An error of the read API: a message on stderr and exit status 2.
pub(crate) fn failure(err: &ClientError) -> Outcome {
    Outcome::failure(Status::Trouble, format!("error: {err}\n"))
}

/// Pretty JSON with a trailing newline. Serialising these plain structs cannot fail;
/// if it ever did, the output says so instead of being silently empty.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        Err(err) => format!("{{\"error\": {:?}}}\n", err.to_string()),
    }
}

/// `22 B`, `4.1 KiB`, `3.0 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Exact below 2^53 bytes; beyond that one decimal is all that is shown anyway.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let rows = vec![
            vec!["F/10".to_owned(), "ok".to_owned(), String::new()],
            vec!["F/9".to_owned(), "failed".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            table(&["RUN", "STATUS", "N"], &rows),
            "RUN   STATUS  N\nF/10  ok\nF/9   failed  x\n"
        );
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(4200), "4.1 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
