//! `flowc graph`: draw a flow's step graph as text, Mermaid, DOT or JSON.

use std::path::PathBuf;

use clap::ValueEnum;

use super::{load_flow, Outcome, Status, Terminal};

const EXAMPLES: &str = "\
Examples:
  flowc graph flow.py
  flowc graph flow.py --format mermaid > graph.mmd
  flowc graph flow.py --format dot | dot -Tsvg -o graph.svg
  flowc graph pipelines.py --flow TrainFlow --format json

A file with errors is not drawn: its diagnostics are printed on stderr and the exit
status is 1, as for `flowc check`.";

const LONG_ABOUT: &str = "\
Draw a flow's step graph.

Steps are listed from start to end, each before the steps it leads to. Branches,
foreach fan-outs (with the variable iterated over) and switches (with each case value)
are shown in every format; the JSON names step types the way Metaflow does.";

/// Draw a flow's step graph.
#[derive(Debug, clap::Args)]
#[command(long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The flow file.
    #[arg(value_name = "FLOW.py")]
    file: PathBuf,

    /// The flow class to draw when the file defines several.
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Each step with its docstring and successors, like `metaflow ... show`.
    Text,
    /// A Mermaid flowchart, for Markdown.
    Mermaid,
    /// A Graphviz digraph, for `dot`.
    Dot,
    /// Steps, types, edges, foreach and switch details, for tools.
    Json,
}

pub(crate) fn run(args: &Args, terminal: &Terminal) -> Outcome {
    let (flow, warnings) = match load_flow(&args.file, args.flow.as_deref(), terminal) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let stdout = match args.format {
        Format::Text => flowc::graph::text(&flow),
        Format::Mermaid => flowc::graph::mermaid(&flow),
        Format::Dot => flowc::graph::dot(&flow),
        Format::Json => flowc::graph::json(&flow),
    };
    Outcome {
        stdout,
        stderr: warnings,
        status: Status::Ok,
    }
}
