//! `flowc compile`: lower a flow to a target's documents. `--target local` writes the
//! local execution plan (JSON) that `flowc run` executes; `--target argo` the Argo
//! Workflows manifests (`compile_argo`).

use std::path::PathBuf;

use clap::ValueEnum;
use flowc::backends::local::{local_plan, LocalConfig};

use super::compile_argo::{self, ArgoArgs, ARGO_HELP};
use super::{load_flow, Outcome, Status, Terminal};

const EXAMPLES: &str = "\
Examples:
  flowc compile flow.py --target local               the plan, on stdout
  flowc compile flow.py --target local -o build/     writes build/<Flow>.local.json
  flowc compile flow.py --target argo --datastore-root s3://bucket/flowc -o deploy/
                                                     WorkflowTemplate (+ CronWorkflow, Sensor)";

/// Compile a flow for a target.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n\n{ARGO_HELP}"))]
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

    #[command(flatten)]
    argo: ArgoArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// The local execution plan that `flowc run` executes (JSON).
    Local,
    /// Argo Workflows: a WorkflowTemplate, plus a CronWorkflow and an Argo Events
    /// Sensor for @schedule and triggers (YAML).
    Argo,
}

pub(crate) fn run(args: &Args, terminal: &Terminal) -> Outcome {
    let (flow, warnings) = match load_flow(&args.file, args.flow.as_deref(), terminal) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let (name, text) = match args.target {
        Target::Argo => {
            return compile_argo::run(
                &flow,
                &args.file,
                &args.argo,
                args.output.as_deref(),
                warnings,
                terminal,
            )
        }
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
            format!(
                "{warnings}error: cannot write `{}`: {err}\n",
                path.display()
            ),
        ),
    }
}
