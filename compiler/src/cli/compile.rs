//! `flowc compile`: lower a flow to a target's documents. `--target local` writes the
//! local execution plan (JSON) that `flowc run` executes; `--target argo` the Argo
//! Workflows manifests (`compile_argo`); `--target sfn` the Step Functions state machine
//! with its AWS Batch job definitions, and `--target batch` the job definitions alone
//! (`compile_sfn`).
//!
//! The settings every cloud target has (the steps' image, the datastore root) are one
//! set of flags, [`SharedArgs`]; the others belong to one target each, and giving one
//! to another target is refused rather than silently ignored.

use std::path::PathBuf;

use clap::ValueEnum;
use flowc::backends::local::{local_plan, LocalConfig};

use super::compile_argo::{self, ArgoArgs, ARGO_HELP};
use super::compile_sfn::{self, SfnArgs, Which, SFN_HELP};
use super::{load_flow, Outcome, Status, Terminal};

const EXAMPLES: &str = "\
Examples:
  flowc compile flow.py --target local               the plan, on stdout
  flowc compile flow.py --target local -o build/     writes build/<Flow>.local.json
  flowc compile flow.py --target argo --datastore-root s3://bucket/flowc -o deploy/
                                                     WorkflowTemplate (+ CronWorkflow, Sensor)
  flowc compile flow.py --target sfn --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/flows:1 \\
      --datastore-root s3://bucket/flowc --job-queue flowc-queue -o deploy/
                                                     state machine, job definitions (+ schedule)
  flowc compile flow.py --target batch -o deploy/    the AWS Batch job definitions alone,
                                                     settings from FLOWC_SFN_* or [sfn]";

const SHARED_HELP: &str = "\
--image and --datastore-root are the same flags for every cloud target; where a flag
is not given, each target reads its own environment variable and flowc.toml table
(FLOWC_ARGO_IMAGE or [argo] image for --target argo, FLOWC_SFN_IMAGE or [sfn] image
for --target sfn and batch), so one flowc.toml can hold different values for each.
A flag listed under one target's settings is refused by the other targets.";

/// Compile a flow for a target.
#[derive(Debug, clap::Args)]
#[command(
    after_help = EXAMPLES,
    after_long_help = format!("{EXAMPLES}\n\n{SHARED_HELP}\n\n{ARGO_HELP}\n\n{SFN_HELP}")
)]
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
    shared: SharedArgs,

    #[command(flatten)]
    argo: ArgoArgs,

    // Boxed: the AWS settings would make `Compile` by far the largest command.
    #[command(flatten)]
    sfn: Box<SfnArgs>,
}

/// The settings every cloud target has, one flag each. Each target falls back to its
/// own environment variable and `flowc.toml` table, since the values differ between
/// targets (an Argo image needs only Python; a Batch image also `flowc-shim`).
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Settings of every cloud target (argo, sfn, batch)")]
pub(crate) struct SharedArgs {
    /// Image of the steps. argo: of steps without @kubernetes(image=...), needs
    /// Python 3 (default python:3.12-slim); sfn, batch: of the Batch jobs, needs
    /// Python 3 and flowc-shim (required).
    #[arg(long, value_name = "IMAGE")]
    pub(crate) image: Option<String>,
    /// Datastore root every task reads and writes (required). argo: any root the pods
    /// reach (e.g. s3://bucket/flowc); sfn, batch: s3://bucket/prefix.
    #[arg(long, value_name = "ROOT")]
    pub(crate) datastore_root: Option<String>,
}

impl SharedArgs {
    /// The first flag given, for targets that take none.
    fn given(&self) -> Option<&'static str> {
        [
            ("--image", self.image.is_some()),
            ("--datastore-root", self.datastore_root.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, set)| set.then_some(flag))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// The local execution plan that `flowc run` executes (JSON).
    Local,
    /// Argo Workflows: a WorkflowTemplate, plus a CronWorkflow and an Argo Events
    /// Sensor for @schedule and triggers (YAML).
    Argo,
    /// AWS Step Functions: a state machine (ASL JSON), one AWS Batch job definition per
    /// step, and an EventBridge Scheduler schedule for @schedule.
    Sfn,
    /// AWS Batch: the job definitions alone (RegisterJobDefinition JSON).
    Batch,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Argo => "argo",
            Target::Sfn => "sfn",
            Target::Batch => "batch",
        }
    }
}

/// A flag given that `target` does not use, with the targets that do.
fn misplaced_flag(args: &Args) -> Option<(&'static str, &'static str)> {
    let shared = args.shared.given().map(|f| (f, "argo, sfn and batch"));
    let argo = args.argo.given().map(|f| (f, "argo"));
    let sfn = args.sfn.given().map(|f| (f, "sfn and batch"));
    match args.target {
        Target::Local => shared.or(argo).or(sfn),
        Target::Argo => sfn,
        Target::Sfn | Target::Batch => argo,
    }
}

pub(crate) fn run(args: &Args, terminal: &Terminal) -> Outcome {
    if let Some((flag, targets)) = misplaced_flag(args) {
        return Outcome::failure(
            Status::Trouble,
            format!(
                "error: {flag} is not a setting of --target {}: only {targets} use it\n",
                args.target.name()
            ),
        );
    }
    let (flow, warnings) = match load_flow(&args.file, args.flow.as_deref(), terminal) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let (name, text) = match args.target {
        Target::Argo => {
            return compile_argo::run(
                &flow,
                &args.file,
                &args.shared,
                &args.argo,
                args.output.as_deref(),
                warnings,
                terminal,
            )
        }
        Target::Sfn | Target::Batch => {
            let which = if args.target == Target::Sfn {
                Which::StepFunctions
            } else {
                Which::Batch
            };
            return compile_sfn::run(
                which,
                &flow,
                &args.file,
                (&args.shared, &args.sfn),
                args.output.as_deref(),
                warnings,
                terminal,
            );
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
