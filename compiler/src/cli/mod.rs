//! The `flowc` command line: argument parsing, and one module per command.
//!
//! Commands do not print. Each returns an `Outcome` (what goes to stdout, what goes to
//! stderr, the exit status), and `main` writes it: commands stay easy to test and a
//! closed pipe (`flowc graph f.py | head`) cannot make them panic half-way.
//!
//! Exit status: 0 when there is nothing wrong, 1 when the flow has errors, 2 for usage
//! and I/O problems (clap's own usage errors also exit with 2).

mod artifact;
mod card;
mod check;
mod compile;
mod compile_argo;
mod compile_sfn;
mod graph;
mod inspect;
mod logs;
mod report;
mod run;
mod runs;
mod show;
mod source;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flowc::FrontendOptions;
use flowc_ir::Flow;

use report::Style;

const ABOUT: &str = "Static compiler for Metaflow-style Python pipelines.";

const LONG_ABOUT: &str = "\
Static compiler for Metaflow-style Python pipelines.

flowc reads a flow file (a FlowSpec subclass whose @step methods end in self.next(...))
without importing or running it, checks it, and shows what it understood: the step
graph, the parameters, the decorators.";

const EXAMPLES: &str = "\
Examples:
  flowc check flows/*.py                  # report every problem, with its source line
  flowc check flow.py --format json       # the same, for editors and CI
  flowc inspect flow.py --format text     # parameters, decorators, steps
  flowc graph flow.py --format mermaid    # the step graph as a Mermaid chart

Run `flowc <COMMAND> --help` for the options of each command.";

#[derive(Debug, Parser)]
#[command(
    name = "flowc",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Inspect(inspect::Args),
    Graph(graph::Args),
    Compile(compile::Args),
    Run(run::RunArgs),
    Resume(run::ResumeArgs),
    Runs(runs::Args),
    Show(show::Args),
    Logs(logs::Args),
    Artifact(artifact::Args),
    Card(card::Args),
}

/// Run the command line and return the process's exit status.
pub(crate) fn main() -> ExitCode {
    // clap prints help and version to stdout with status 0 and usage errors to
    // stderr with status 2.
    let cli = Cli::parse();
    let terminal = Terminal::detect();
    let outcome = match cli.command {
        Command::Check(args) => check::run(&args, &terminal),
        Command::Inspect(args) => inspect::run(&args, &terminal),
        Command::Graph(args) => graph::run(&args, &terminal),
        Command::Compile(args) => compile::run(&args, &terminal),
        Command::Run(args) => run::run(&args, &terminal),
        Command::Resume(args) => run::resume(&args, &terminal),
        Command::Runs(args) => runs::run(&args, &terminal),
        Command::Show(args) => show::run(&args, &terminal),
        // These write bytes, possibly over time (`flowc logs --follow`).
        Command::Logs(args) => return logs::run(&args, &terminal).emit(),
        Command::Artifact(args) => return artifact::run(&args, &terminal).emit(),
        Command::Card(args) => card::run(&args, &terminal),
    };
    outcome.emit()
}

/// Exit status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    /// Nothing wrong (warnings allowed).
    Ok,
    /// The flow has errors (or warnings under `--deny-warnings`).
    Failed,
    /// A file could not be read or the output could not be written.
    Trouble,
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Trouble => 2,
        }
    }
}

/// Everything a command has to say.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) status: Status,
}

impl Outcome {
    /// A failure with only a message on stderr.
    pub(crate) fn failure(status: Status, stderr: String) -> Self {
        Outcome {
            stdout: String::new(),
            stderr,
            status,
        }
    }

    /// Write both streams, stderr first (it explains the stdout that follows).
    fn emit(self) -> ExitCode {
        let mut status = self.status;
        if let Err(error) = write_all(&mut std::io::stderr().lock(), &self.stderr) {
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                status = Status::Trouble;
            }
        }
        if let Err(error) = write_all(&mut std::io::stdout().lock(), &self.stdout) {
            // A reader that stopped early (`| head`) is not a failure of flowc.
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                let _ = writeln!(std::io::stderr(), "error: cannot write output: {error}");
                status = Status::Trouble;
            }
        }
        ExitCode::from(status.code())
    }
}

/// Writes a command's stdout bytes as they are produced; returns the final status and
/// what to add on stderr.
pub(crate) type Producer = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<(Status, String)>>;

/// What a command whose stdout is bytes rather than text returns (`flowc artifact get
/// --raw`, `flowc logs`): a finished [`Outcome`], or stderr text followed by a
/// [`Producer`] that runs only when the reply is emitted, so `flowc logs --follow` can
/// stream what a running task appends while the command itself still prints nothing.
pub(crate) enum Reply {
    Done(Outcome),
    Stream { stderr: String, producer: Producer },
}

impl From<Outcome> for Reply {
    fn from(outcome: Outcome) -> Self {
        Reply::Done(outcome)
    }
}

impl Reply {
    fn emit(self) -> ExitCode {
        let (stderr, producer) = match self {
            Reply::Done(outcome) => return outcome.emit(),
            Reply::Stream { stderr, producer } => (stderr, producer),
        };
        let _ = write_all(&mut std::io::stderr().lock(), &stderr);
        let mut stdout = std::io::stdout().lock();
        let (status, trailer) = match producer(&mut stdout).and_then(|done| {
            stdout.flush()?;
            Ok(done)
        }) {
            Ok(done) => done,
            // A reader that stopped early (`| head`) is not a failure of flowc.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                (Status::Ok, String::new())
            }
            Err(error) => (
                Status::Trouble,
                format!("error: cannot write output: {error}\n"),
            ),
        };
        let _ = write_all(&mut std::io::stderr().lock(), &trailer);
        ExitCode::from(status.code())
    }
}

fn write_all(stream: &mut impl Write, text: &str) -> std::io::Result<()> {
    stream.write_all(text.as_bytes())?;
    stream.flush()
}

/// Whether each output stream gets colours: only a terminal, and only when the user
/// has not set `NO_COLOR` (<https://no-color.org>: any non-empty value).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terminal {
    pub(crate) stdout: Style,
    pub(crate) stderr: Style,
}

impl Terminal {
    fn detect() -> Self {
        let allowed = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Terminal {
            stdout: Style {
                color: allowed && std::io::stdout().is_terminal(),
            },
            stderr: Style {
                color: allowed && std::io::stderr().is_terminal(),
            },
        }
    }
}

/// Read and check one file for a command that shows the flow (`inspect`, `graph`):
/// those refuse a flow with errors, since what they would show is not what any
/// backend would build. On success, the flow and the warnings already rendered for
/// stderr; on failure, the outcome to return.
pub(crate) fn load_flow(
    path: &Path,
    flow: Option<&str>,
    terminal: &Terminal,
) -> Result<(Flow, String), Outcome> {
    let file = source::read(path)
        .map_err(|message| Outcome::failure(Status::Trouble, format!("error: {message}\n")))?;
    let options = FrontendOptions {
        flow: flow.map(str::to_string),
    };
    let checked = flowc::check(&file.path, &file.text, &options);
    let source = report::Source::new(&file.path, &file.text);
    let rendered = report::render_text(&source, &checked.diagnostics, terminal.stderr);
    let (errors, _) = report::tally(&checked.diagnostics);
    if errors > 0 {
        let summary = format!("{}: {}\n", file.path, report::plural(errors, "error"));
        return Err(Outcome::failure(Status::Failed, rendered + &summary));
    }
    match checked.flow {
        Some(flow) => Ok((flow, rendered)),
        None => Err(Outcome::failure(
            Status::Failed,
            format!("{rendered}error: {} defines no flow\n", file.path),
        )),
    }
}
