//! `flowc-shim`: the command the local scheduler and every cloud container run for one
//! task (`task`) or for a run's parameters (`init`). Its command line is a stable
//! interface: the Argo and Step Functions backends emit it.
//!
//! Exit status: 0 when the task succeeded (including a failure `@catch` handled), 1 when
//! the step failed, 2 for a usage error, 3 when the task could not be run or recorded.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use flowc_shim::python;
use flowc_shim::store::{resolve_root, FlowName, LocalStore, RunId, StepName, TaskId, TaskPath};
use flowc_shim::task::{self, InitSpec, PythonCommand, TaskReport, TaskSpec};
use serde_json::{Map, Value};

#[derive(Debug, Parser)]
#[command(name = "flowc-shim", version, about = "Runs one task of a flowc flow")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one task: load the parents' artifacts, run the step, store its artifacts.
    Task(TaskArgs),
    /// Store a run's parameter values (the run's `_parameters` task).
    Init(InitArgs),
}

/// Options both subcommands share.
#[derive(Debug, Args)]
struct Common {
    /// The flow's Python file.
    #[arg(long, value_name = "PATH")]
    flow_file: PathBuf,
    /// The flow's class name.
    #[arg(long, value_name = "NAME")]
    flow: String,
    #[arg(long, value_name = "RUN")]
    run_id: String,
    /// The datastore root (default: $FLOWC_DATASTORE_ROOT, else .flowc).
    #[arg(long, value_name = "ROOT")]
    datastore_root: Option<PathBuf>,
    /// Python interpreter (default: $FLOWC_PYTHON, else python3).
    #[arg(long, value_name = "PATH")]
    python: Option<OsString>,
    /// An environment variable for the step's process (`@environment`), repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
}

#[derive(Debug, Args)]
struct TaskArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_name = "STEP")]
    step: String,
    #[arg(long, value_name = "TASK")]
    task_id: String,
    /// Parent tasks as RUN/STEP/TASK, comma-separated (none for `start`).
    #[arg(long, value_name = "PATHS", conflicts_with = "input_paths_file")]
    input_paths: Option<String>,
    /// A file listing the parent tasks, separated by commas or newlines (for wide joins).
    #[arg(long, value_name = "FILE")]
    input_paths_file: Option<PathBuf>,
    /// This task's index in the foreach its parent split.
    #[arg(long, value_name = "N")]
    split_index: Option<u64>,
    /// The attempt number, from 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    retry_count: u32,
    /// Retries `@retry` allows; `@catch` handles the failure of the last attempt.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_user_code_retries: u32,
    /// A tag for `current.tags`, repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// The run this one resumes (`current.origin_run_id`).
    #[arg(long, value_name = "RUN")]
    origin_run_id: Option<String>,
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    common: Common,
    /// Parameter values as a JSON object, by parameter name.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    params_json: String,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// A failure of the shim itself, with the exit code to report it by.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure(err.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Task(args) => run_task(args),
        Command::Init(args) => run_init(args),
    };
    match result {
        Ok(report) if report.succeeded() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(Failure(message)) => {
            eprintln!("flowc-shim: {message}");
            ExitCode::from(3)
        }
    }
}

fn open_store(common: &Common) -> Result<LocalStore, Failure> {
    let cwd = std::env::current_dir()?;
    let root = resolve_root(
        common.datastore_root.as_deref(),
        std::env::var_os(flowc_shim::store::ROOT_ENV_VAR).as_deref(),
        &cwd,
    );
    Ok(LocalStore::open_or_create(&root.path)?)
}

fn python_command(common: &Common) -> Result<PythonCommand, Failure> {
    let cache = python::default_cache_dir();
    let harness_dir = python::install(&cache).map_err(|err| {
        Failure(format!(
            "cannot install the Python harness into `{}`: {err} (set {} to a writable directory)",
            cache.display(),
            python::CACHE_DIR_ENV_VAR
        ))
    })?;
    Ok(PythonCommand {
        interpreter: common
            .python
            .clone()
            .unwrap_or_else(PythonCommand::interpreter_from_env),
        harness_dir,
        env: common.env.clone(),
    })
}

fn run_task(args: &TaskArgs) -> Result<TaskReport, Failure> {
    let common = &args.common;
    let run_id = RunId::new(&common.run_id)?;
    let task = TaskPath::new(
        FlowName::new(&common.flow)?,
        run_id.clone(),
        StepName::new(&args.step)?,
        TaskId::new(&args.task_id)?,
    );
    let paths_text = match (&args.input_paths, &args.input_paths_file) {
        (Some(text), _) => text.clone(),
        (None, Some(file)) => read_text(file)?,
        (None, None) => String::new(),
    };
    let parents = task::parse_input_paths(&paths_text, &run_id).map_err(Failure)?;
    let origin_run_id = args.origin_run_id.as_deref().map(RunId::new).transpose()?;
    let spec = TaskSpec {
        flow_file: common.flow_file.clone(),
        task,
        parents,
        split_index: args.split_index,
        retry_count: args.retry_count,
        max_user_code_retries: args.max_user_code_retries,
        tags: args.tags.clone(),
        origin_run_id,
    };
    let store = open_store(common)?;
    let python = python_command(common)?;
    Ok(task::run_task(&store, &python, &spec)?)
}

fn run_init(args: &InitArgs) -> Result<TaskReport, Failure> {
    let common = &args.common;
    let params: Map<String, Value> = match serde_json::from_str(&args.params_json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Failure("--params-json must be a JSON object".to_owned())),
        Err(err) => return Err(Failure(format!("--params-json is not valid JSON: {err}"))),
    };
    let spec = InitSpec {
        flow_file: common.flow_file.clone(),
        flow: FlowName::new(&common.flow)?,
        run_id: RunId::new(&common.run_id)?,
        params,
    };
    let store = open_store(common)?;
    let python = python_command(common)?;
    Ok(task::run_init(&store, &python, &spec)?)
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|err| Failure(format!("cannot read `{}`: {err}", path.display())))
}
