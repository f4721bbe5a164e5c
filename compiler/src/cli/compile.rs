//! `flowc compile`: lower a flow to a target's documents. `--target local` writes the
//! local execution plan (JSON) that `flowc run` executes.

use std::path::PathBuf;

use clap::ValueEnum;
use flowc::backends::local::{local_plan, LocalConfig};

use super::{load_flow, Outcome, Status, Terminal};

const EXAMPLES: &str = "\
Examples:
  flowc compile flow.py --target local               the plan, on stdout
  flowc compile flow.py --target local -o build/     writes build/<Flow>.local.json";

/// Compile a flow for a target.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The flow file.
    #[arg(value_name = "FLOW.py")]
    file: PathBuf,

    /// The flow class to compile when the file defines several.
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,

    /// What to compile for.
    #[arg(long, value_enum)]
    target: Target,

    /// A directory to write the documents to, instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// The local execution plan that `flowc run` executes (JSON).
    Local,
}

pub(crate) fn run(args: &Args, terminal: &Terminal) -> Outcome {
    let (flow, warnings) = match load_flow(&args.file, args.flow.as_deref(), terminal) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let (name, text) = match args.target {
        Target::Local => {
            let plan = local_plan(&flow, &LocalConfig::default());
            let mut text = match serde_json::to_string_pretty(&plan) {
                Ok(text) => text,
                Err(err) => {
                    return Outcome::failure(
                        Status::Trouble,
                        format!("{warnings}error: cannot serialise the plan: {err}\n"),
                    )
                }
            };
            text.push('\n');
            (format!("{}.local.json", flow.name), text)
        }
    };
    let Some(dir) = &args.output else {
        return Outcome {
            stdout: text,
            stderr: warnings,
            status: Status::Ok,
        };
    };
    let path = dir.join(name);
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text));
    match written {
        Ok(()) => Outcome {
            stdout: String::new(),
            stderr: format!("{warnings}wrote {}\n", path.display()),
            status: Status::Ok,
        },
        Err(err) => Outcome::failure(
            Status::Trouble,
            format!("{warnings}error: cannot write `{}`: {err}\n", path.display()),
        ),
    }
}
