//! `flowc card list PATH` and `flowc card view PATH`: the HTML cards (`@card`) a task
//! rendered, read from the datastore.
//!
//! PATH is a task, `Flow/run/step/task`, where the run may be `latest` (the flow's
//! newest run) and the task may be left out when the step ran exactly one task.
//! `view` writes the page to a file (`-o`) or to stdout; it never starts a browser.

use std::io::Write;
use std::path::{Path, PathBuf};

use flowc_shim::client::{Client, PathSpec};
use flowc_shim::store::{resolve_root, BlobStore, CardRef, TaskMeta, ROOT_ENV_VAR};
use serde_json::json;

use super::{Outcome, Status, Terminal};

#[derive(Debug, clap::Args)]
#[command(about = "List and view the HTML cards (@card) of a task")]
pub(crate) struct Args {
    #[command(subcommand)]
    command: CardCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CardCommand {
    /// List the cards of a task: id, type, size and blob hash.
    List(ListArgs),
    /// Write one card's HTML page to a file or to stdout.
    View(ViewArgs),
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The task: `Flow/run/step/task` (`latest` for the newest run; the task may be
    /// left out when the step has one task).
    path: String,
    /// The datastore (default: $FLOWC_DATASTORE_ROOT, else .flowc in this directory).
    #[arg(long, value_name = "DIR")]
    datastore_root: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct ViewArgs {
    #[command(flatten)]
    common: Common,
    /// The card with this `id=`.
    #[arg(long)]
    id: Option<String>,
    /// Only cards of this type (`default`, `blank`, ...).
    #[arg(long = "type", value_name = "TYPE")]
    card_type: Option<String>,
    /// Write the page to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub(crate) fn run(args: &Args, _terminal: &Terminal) -> Outcome {
    let result = match &args.command {
        CardCommand::List(list) => run_list(list),
        CardCommand::View(view) => run_view(view),
    };
    result
        .unwrap_or_else(|message| Outcome::failure(Status::Trouble, format!("error: {message}\n")))
}

fn run_list(args: &ListArgs) -> Result<Outcome, String> {
    let (_, meta) = open_task(&args.common)?;
    let stdout = match args.format {
        Format::Json => {
            let cards: Vec<_> = meta
                .cards
                .iter()
                .map(|card| {
                    json!({"id": card.id, "type": card.card_type, "hash": card.hash.to_hex(), "size": card.size})
                })
                .collect();
            let value = json!({"task": meta.path.to_string(), "cards": cards});
            format!(
                "{}\n",
                serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
            )
        }
        Format::Text if meta.cards.is_empty() => {
            format!("task {} has no cards\n", meta.path)
        }
        Format::Text => {
            let rows: Vec<[String; 4]> = meta
                .cards
                .iter()
                .map(|card| {
                    [
                        card.id.clone().unwrap_or_else(|| "-".to_owned()),
                        card.card_type.clone(),
                        card.size.to_string(),
                        card.hash.to_hex().chars().take(12).collect(),
                    ]
                })
                .collect();
            table(&["ID", "TYPE", "BYTES", "HASH"], &rows)
        }
    };
    Ok(Outcome {
        stdout,
        stderr: String::new(),
        status: Status::Ok,
    })
}

fn run_view(args: &ViewArgs) -> Result<Outcome, String> {
    let (client, meta) = open_task(&args.common)?;
    let card = choose(&meta, args.id.as_deref(), args.card_type.as_deref())?;
    let html = client
        .store()
        .get(&meta.path.flow, &card.hash)
        .map_err(|err| format!("card of task {} cannot be read: {err}", meta.path))?;
    match &args.output {
        Some(file) => {
            write_atomically(file, &html)
                .map_err(|err| format!("cannot write `{}`: {err}", file.display()))?;
            Ok(Outcome {
                stdout: String::new(),
                stderr: format!("wrote {} ({} bytes)\n", file.display(), html.len()),
                status: Status::Ok,
            })
        }
        None => Ok(Outcome {
            stdout: String::from_utf8(html)
                .map_err(|_| format!("card of task {} is not UTF-8 text", meta.path))?,
            stderr: String::new(),
            status: Status::Ok,
        }),
    }
}

/// The one card that matches `--id` and `--type`; several or none is an error naming
/// the choices.
fn choose<'a>(
    meta: &'a TaskMeta,
    id: Option<&str>,
    card_type: Option<&str>,
) -> Result<&'a CardRef, String> {
    if meta.cards.is_empty() {
        return Err(format!(
            "task {} has no cards (is its step decorated with @card?)",
            meta.path
        ));
    }
    let matching: Vec<&CardRef> = meta
        .cards
        .iter()
        .filter(|card| id.is_none_or(|id| card.id.as_deref() == Some(id)))
        .filter(|card| card_type.is_none_or(|t| card.card_type == t))
        .collect();
    match matching.as_slice() {
        [card] => Ok(card),
        [] => Err(format!(
            "task {} has no card{}{}; its cards: {}",
            meta.path,
            id.map(|id| format!(" with id `{id}`")).unwrap_or_default(),
            card_type
                .map(|t| format!(" of type `{t}`"))
                .unwrap_or_default(),
            describe_cards(&meta.cards)
        )),
        several => Err(format!(
            "task {} has {} matching cards ({}); choose one with --id or --type",
            meta.path,
            several.len(),
            describe_cards(several.iter().copied())
        )),
    }
}

fn describe_cards<'a>(cards: impl IntoIterator<Item = &'a CardRef>) -> String {
    cards
        .into_iter()
        .map(|card| match &card.id {
            Some(id) => format!("`{id}` ({})", card.card_type),
            None => format!("a {} card without id", card.card_type),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn open_task(common: &Common) -> Result<(Client, TaskMeta), String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let root = resolve_root(
        common.datastore_root.as_deref(),
        std::env::var_os(ROOT_ENV_VAR).as_deref(),
        &cwd,
    )
    .path;
    let client = Client::open(&root)
        .map_err(|err| format!("cannot open the datastore `{}`: {err}", root.display()))?;
    // The same path rules as `flowc show`: `latest` is the newest run, and a step with
    // one task stands for that task.
    let spec = PathSpec::parse(&common.path).map_err(|err| err.to_string())?;
    let path = client.resolve_task(&spec).map_err(|err| err.to_string())?;
    let meta = client
        .read_task(&path)
        .map_err(|err| format!("task {path} cannot be read: {err}"))?;
    Ok((client, meta))
}

/// A plain table with left-aligned columns.
fn table(headers: &[&str; 4], rows: &[[String; 4]]) -> String {
    let mut widths = headers.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 4]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(*headers);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    out
}

/// Writes `bytes` to `path` through a temporary file beside it, so the file is never
/// seen half-written.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "card.html".to_owned());
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = std::fs::remove_file(&temp);
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_shim::store::{BlobHash, FlowName, RunId, StepName, TaskId, TaskPath};

    fn meta(cards: Vec<CardRef>) -> TaskMeta {
        let mut meta = TaskMeta::new(
            TaskPath::new(
                FlowName::new("F").unwrap(),
                RunId::new("1").unwrap(),
                StepName::new("s").unwrap(),
                TaskId::new("2").unwrap(),
            ),
            Vec::new(),
        );
        meta.cards = cards;
        meta
    }

    fn card(id: Option<&str>, card_type: &str) -> CardRef {
        CardRef {
            id: id.map(str::to_owned),
            card_type: card_type.to_owned(),
            hash: BlobHash::from_bytes([1; 32]),
            size: 10,
        }
    }

    #[test]
    fn choose_needs_exactly_one_match() {
        let meta = meta(vec![
            card(None, "default"),
            card(Some("kpis"), "blank"),
            card(Some("artifacts"), "default"),
        ]);
        assert_eq!(
            choose(&meta, Some("kpis"), None).unwrap().card_type,
            "blank"
        );
        assert_eq!(
            choose(&meta, None, Some("blank")).unwrap().id.as_deref(),
            Some("kpis")
        );
        let err = choose(&meta, None, Some("default")).unwrap_err();
        assert!(err.contains("2 matching cards"), "{err}");
        assert!(err.contains("--id"), "{err}");
        let err = choose(&meta, Some("nope"), None).unwrap_err();
        assert!(err.contains("no card with id `nope`"), "{err}");
        assert!(err.contains("`kpis` (blank)"), "{err}");
    }

    #[test]
    fn a_task_without_cards_says_so() {
        let err = choose(&meta(Vec::new()), None, None).unwrap_err();
        assert!(err.contains("has no cards"), "{err}");
    }

    #[test]
    fn table_aligns_columns() {
        let text = table(
            &["ID", "TYPE", "BYTES", "HASH"],
            &[["-".into(), "default".into(), "10".into(), "0101".into()]],
        );
        assert_eq!(text, "ID  TYPE     BYTES  HASH\n-   default  10     0101\n");
    }
}
