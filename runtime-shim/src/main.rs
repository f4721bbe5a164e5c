//! `flowc-shim`: the command the local scheduler and every cloud container run for one
//! task (`task`) or for a run's parameters (`init`). Its command line is a stable
//! interface: the Argo and Step Functions backends emit it.
//!
//! Exit status: 0 when the task succeeded (including a failure `@catch` handled), 1 when
//! the step failed, 2 for a usage error, 3 when the task could not be run or recorded.
//!
//! `package` builds a flow's code package (`flowc_shim::package`), which `task` and
//! `init` then run from with `--code-package HASH --package-entry ENTRY`. Its exit
//! status: 0 when built, 1 when the flow's directory cannot be packaged (missing flow
//! file, over the size limit), 2 for a usage error, 3 when it could not be stored or
//! written.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use flowc_shim::package::{self, CodePackage};
use flowc_shim::python;
use flowc_shim::store::{
    resolve_root, BlobHash, Datastore, FlowName, LocalStore, ParentTask, RootLocation, RunId,
    S3Url, StepName, TaskId, TaskPath,
};
use flowc_shim::task::zygote::{self, ZygoteConfig};
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
    /// Build a flow's code package, store it in the datastore and/or write it to a file.
    Package(PackageArgs),
    /// Run a warm Python interpreter that forks one process per task (`task --zygote`).
    Zygote(ZygoteArgs),
}

/// Options both subcommands share.
#[derive(Debug, Args)]
struct Common {
    /// The flow's Python file.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "code_package",
        conflicts_with = "code_package"
    )]
    flow_file: Option<PathBuf>,
    /// Run the flow from this code package (its hash), read from the datastore.
    #[arg(long, value_name = "HASH", requires = "package_entry")]
    code_package: Option<String>,
    /// The flow file's path inside the code package.
    #[arg(long, value_name = "ENTRY", requires = "code_package")]
    package_entry: Option<String>,
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
    /// A zygote's socket (`flowc-shim zygote`): fork the step's process from it instead
    /// of starting Python (which is still done when the zygote is unreachable).
    #[arg(long, value_name = "PATH")]
    zygote: Option<PathBuf>,
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
    /// Write the files Argo reads into output parameters (split indexes, number of
    /// splits, the switch's choice, the task id) into this directory on success.
    #[arg(long, value_name = "DIR")]
    argo_outputs: Option<PathBuf>,
    /// Write the foreach item list, the number of splits and the switch's choice into
    /// the datastore (`<task>/outputs/`) on success, for Step Functions to read.
    #[arg(long)]
    write_outputs: bool,
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    common: Common,
    /// Parameter values as a JSON object, by parameter name.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    params_json: String,
    /// One parameter's value as text, over --params-json; repeatable. `flowc:default`
    /// leaves the flow's default, `flowc:base64:...` is decoded first (Argo's form).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_env)]
    params: Vec<(String, String)>,
}

#[derive(Debug, Args)]
struct PackageArgs {
    /// The flow's Python file; its directory is packaged.
    #[arg(long, value_name = "PATH")]
    flow_file: PathBuf,
    /// The flow's class name: the datastore keeps blobs per flow. Needed to store.
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,
    /// Store the package in this datastore (default when --output is not given:
    /// $FLOWC_DATASTORE_ROOT, else .flowc).
    #[arg(long, value_name = "ROOT")]
    datastore_root: Option<PathBuf>,
    /// Write the package (a tar archive) to this file.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// The hash alone.
    Text,
    /// `{"hash", "entry", "files", "size", "skipped"}`.
    Json,
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
        Command::Package(args) => return run_package(args),
        Command::Zygote(args) => return run_zygote(args),
    };
    match result {
        Ok(report) if report.succeeded() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(Failure(message)) => {
            // Empty when the message went into the attempt's stored logs already.
            if !message.is_empty() {
                eprintln!("flowc-shim: {message}");
            }
            ExitCode::from(3)
        }
    }
}

/// The datastore a command works on: a directory, or an `s3://` root when this binary
/// was built with the `s3` feature.
enum Store {
    Local(LocalStore),
    // Boxed: the S3 store (client, runtime) is many times the size of a path.
    #[cfg(feature = "s3")]
    S3(Box<flowc_shim::store::S3Store>),
}

impl Store {
    fn backend(&self) -> &dyn Datastore {
        match self {
            Store::Local(store) => store,
            #[cfg(feature = "s3")]
            Store::S3(store) => &**store,
        }
    }

    /// Where code packages are unpacked: `<root>/.cache` beside a local store; for a
    /// remote one, the machine's cache directory ($FLOWC_CACHE_DIR, else the user's
    /// cache, else the temp dir). Packages are named by hash, so stores can share it.
    fn code_cache(&self) -> PathBuf {
        match self {
            Store::Local(store) => package::cache_root(store.root()),
            #[cfg(feature = "s3")]
            Store::S3(_) => python::default_cache_dir(),
        }
    }
}

fn open_store(datastore_root: Option<&Path>) -> Result<Store, Failure> {
    let cwd = std::env::current_dir()?;
    let root = resolve_root(
        datastore_root,
        std::env::var_os(flowc_shim::store::ROOT_ENV_VAR).as_deref(),
        &cwd,
    );
    match root.location().map_err(Failure)? {
        RootLocation::Local(path) => Ok(Store::Local(LocalStore::open_or_create(&path)?)),
        RootLocation::S3(url) => open_s3(&url),
    }
}

#[cfg(feature = "s3")]
fn open_s3(url: &S3Url) -> Result<Store, Failure> {
    use flowc_shim::store::{S3Settings, S3Store};
    Ok(Store::S3(Box::new(S3Store::open_or_create(
        url,
        &S3Settings::from_env(),
    )?)))
}

#[cfg(not(feature = "s3"))]
fn open_s3(url: &S3Url) -> Result<Store, Failure> {
    Err(Failure(format!(
        "cannot use datastore `{url}`: this flowc-shim was built without S3 support; rebuild with --features s3"
    )))
}

/// Keeps the attempt's output for `flowc logs` when the datastore is S3: no scheduler
/// writes log files there, so this process captures its own stdout and stderr (and
/// so the step's) while still passing them through, and stores them at the end.
#[cfg(feature = "s3")]
struct AttemptLogs<'a> {
    capture: Option<(
        &'a flowc_shim::store::S3Store,
        TaskPath,
        u32,
        flowc_shim::store::OutputCapture,
    )>,
}

#[cfg(feature = "s3")]
impl<'a> AttemptLogs<'a> {
    fn start(store: &'a Store, task: &TaskPath, attempt: u32) -> Self {
        let Store::S3(s3) = store else {
            return AttemptLogs { capture: None };
        };
        let s3: &flowc_shim::store::S3Store = s3;
        match flowc_shim::store::OutputCapture::start(&std::env::temp_dir()) {
            Ok(capture) => AttemptLogs {
                capture: Some((s3, task.clone(), attempt, capture)),
            },
            Err(err) => {
                eprintln!(
                    "flowc-shim: the task's output will not be stored in the datastore: {err}"
                );
                AttemptLogs { capture: None }
            }
        }
    }

    /// Stores the captured output. A failure of the shim is printed first, so that the
    /// stored stderr ends with it; a failure to store is reported, but does not change
    /// the task's result, which is recorded already.
    fn finish<T>(self, result: Result<T, Failure>) -> Result<T, Failure> {
        use flowc_shim::store::LogStream;
        let Some((store, task, attempt, capture)) = self.capture else {
            return result;
        };
        let result = match result {
            Err(Failure(message)) if !message.is_empty() => {
                eprintln!("flowc-shim: {message}");
                Err(Failure(String::new()))
            }
            other => other,
        };
        let output = match capture.finish() {
            Ok(output) => output,
            Err(err) => {
                eprintln!("flowc-shim: cannot store the output of task {task}: {err}");
                return result;
            }
        };
        for name in &output.incomplete {
            eprintln!(
                "flowc-shim: the stored {name} of task {task} may lack its end: a process the step started still holds it open"
            );
        }
        let streams = [
            (LogStream::Stdout, "stdout", output.stdout_path()),
            (LogStream::Stderr, "stderr", output.stderr_path()),
        ];
        for (stream, name, path) in streams {
            if let Err(err) = store.write_attempt_log(&task, attempt, stream, path) {
                eprintln!("flowc-shim: cannot store the {name} of task {task}: {err}");
            }
        }
        result
    }
}

/// Without S3 support every store is local, and the scheduler keeps the logs.
#[cfg(not(feature = "s3"))]
struct AttemptLogs;

#[cfg(not(feature = "s3"))]
impl AttemptLogs {
    fn start(_store: &Store, _task: &TaskPath, _attempt: u32) -> Self {
        AttemptLogs
    }

    fn finish<T>(self, result: Result<T, Failure>) -> Result<T, Failure> {
        result
    }
}

/// The flow file a task runs: `--flow-file` as given, or the entry of the code package
/// `--code-package`, unpacked (once per machine or datastore) into the store's code
/// cache (`Store::code_cache`).
fn flow_file(common: &Common, store: &Store, flow: &FlowName) -> Result<PathBuf, Failure> {
    let (Some(hash), Some(entry)) = (&common.code_package, &common.package_entry) else {
        // clap requires one of the two forms.
        return common
            .flow_file
            .clone()
            .ok_or_else(|| Failure("--flow-file or --code-package is required".to_owned()));
    };
    let hash = BlobHash::parse(hash).map_err(|err| Failure(format!("--code-package: {err}")))?;
    let cache = store.code_cache();
    let dir = package::fetch(store.backend(), flow, &hash, &cache)?;
    Ok(package::entry_path(&dir, &hash, entry)?)
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
        zygote: common.zygote.clone(),
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
    let paths_text = task::argo::expand_input_ranges(&paths_text).map_err(Failure)?;
    let parents = task::parse_input_paths(&paths_text, &run_id).map_err(Failure)?;
    let origin_run_id = args.origin_run_id.as_deref().map(RunId::new).transpose()?;
    let store = open_store(common.datastore_root.as_deref())?;
    let logs = AttemptLogs::start(&store, &task, args.retry_count);
    logs.finish(run_attempt(args, &store, task, parents, origin_run_id))
}

/// The part of `flowc-shim task` after the datastore is open: what it prints belongs
/// to the attempt's logs.
fn run_attempt(
    args: &TaskArgs,
    opened: &Store,
    task: TaskPath,
    parents: Vec<ParentTask>,
    origin_run_id: Option<RunId>,
) -> Result<TaskReport, Failure> {
    let common = &args.common;
    let store = opened.backend();
    let flow_file = flow_file(common, opened, &task.flow)?;
    let spec = TaskSpec {
        flow_file,
        task,
        parents,
        split_index: args.split_index,
        retry_count: args.retry_count,
        max_user_code_retries: args.max_user_code_retries,
        tags: args.tags.clone(),
        origin_run_id,
    };
    let python = python_command(common)?;
    let report = task::run_task(store, &python, &spec)?;
    if let (Some(dir), true) = (&args.argo_outputs, report.succeeded()) {
        task::argo::write_outputs(dir, &args.task_id, report.outcome.as_ref()).map_err(|err| {
            Failure(format!(
                "cannot write the Argo outputs to `{}`: {err}",
                dir.display()
            ))
        })?;
    }
    if args.write_outputs && report.succeeded() {
        task::sfn::write_outputs(store, &spec.task, report.outcome.as_ref())
            .map_err(|err| Failure(format!("cannot write the task's outputs: {err}")))?;
    }
    Ok(report)
}

fn run_init(args: &InitArgs) -> Result<TaskReport, Failure> {
    let common = &args.common;
    let mut params: Map<String, Value> = match serde_json::from_str(&args.params_json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Failure("--params-json must be a JSON object".to_owned())),
        Err(err) => return Err(Failure(format!("--params-json is not valid JSON: {err}"))),
    };
    for (name, text) in &args.params {
        match task::argo::decode_param_value(text)
            .map_err(|e| Failure(format!("--param {name}: {e}")))?
        {
            Some(value) => {
                params.insert(name.clone(), Value::String(value));
            }
            None => {
                params.remove(name);
            }
        }
    }
    let flow = FlowName::new(&common.flow)?;
    let run_id = RunId::new(&common.run_id)?;
    let store = open_store(common.datastore_root.as_deref())?;
    let logs = AttemptLogs::start(&store, &task::parameters_task(&flow, &run_id), 0);
    logs.finish(init_attempt(common, &store, flow, run_id, params))
}

/// The part of `flowc-shim init` after the datastore is open.
fn init_attempt(
    common: &Common,
    store: &Store,
    flow: FlowName,
    run_id: RunId,
    params: Map<String, Value>,
) -> Result<TaskReport, Failure> {
    let spec = InitSpec {
        flow_file: flow_file(common, store, &flow)?,
        flow,
        run_id,
        params,
    };
    let python = python_command(common)?;
    Ok(task::run_init(store.backend(), &python, &spec)?)
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|err| Failure(format!("cannot read `{}`: {err}", path.display())))
}

/// `flowc-shim package`: builds the package, stores and/or writes it, prints its hash.
fn run_package(args: &PackageArgs) -> ExitCode {
    // Storing is the default; `--output` alone only writes the file.
    let store_it = args.datastore_root.is_some() || args.output.is_none();
    let flow = match (&args.flow, store_it) {
        (Some(name), _) => match FlowName::new(name) {
            Ok(flow) => Some(flow),
            Err(err) => return usage_error(&format!("--flow: {err}")),
        },
        (None, true) => {
            return usage_error(
                "--flow NAME is needed to store the package in the datastore (blobs are kept per flow); \
                 pass it, or only --output FILE",
            )
        }
        (None, false) => None,
    };
    let built = match package::build(&args.flow_file) {
        Ok(built) => built,
        Err(err) => {
            eprintln!("flowc-shim: {err}");
            return ExitCode::from(1);
        }
    };
    for skipped in &built.skipped {
        eprintln!(
            "flowc-shim: left `{}` out of the code package: {}",
            skipped.path, skipped.reason
        );
    }
    if let Err(Failure(message)) = save_package(args, &built, flow.as_ref().filter(|_| store_it)) {
        eprintln!("flowc-shim: {message}");
        return ExitCode::from(3);
    }
    match args.format {
        Format::Text => println!("{}", built.hash),
        Format::Json => {
            let skipped: Vec<Value> = built
                .skipped
                .iter()
                .map(|s| serde_json::json!({"path": s.path, "reason": s.reason}))
                .collect();
            let report = serde_json::json!({
                "hash": built.hash.to_hex(),
                "entry": built.entry,
                "files": built.files,
                "size": built.bytes.len(),
                "skipped": skipped,
            });
            println!("{report}");
        }
    }
    ExitCode::SUCCESS
}

fn save_package(
    args: &PackageArgs,
    built: &CodePackage,
    store_as: Option<&FlowName>,
) -> Result<(), Failure> {
    if let Some(flow) = store_as {
        let store = open_store(args.datastore_root.as_deref())?;
        store.backend().put(flow, &built.bytes)?;
    }
    if let Some(output) = &args.output {
        built.write_to(output)?;
    }
    Ok(())
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("flowc-shim: {message}");
    ExitCode::from(2)
}

#[derive(Debug, Args)]
struct ZygoteArgs {
    /// Where to listen for fork requests.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Python interpreter (default: $FLOWC_PYTHON, else python3).
    #[arg(long, value_name = "PATH")]
    python: Option<OsString>,
    /// The flow's Python file; its directory becomes importable.
    #[arg(long, value_name = "PATH", conflicts_with = "code_package")]
    flow_file: Option<PathBuf>,
    /// Take the flow file from this code package (its hash), read from the datastore.
    #[arg(long, value_name = "HASH", requires_all = ["package_entry", "flow"])]
    code_package: Option<String>,
    /// The flow file's path inside the code package.
    #[arg(long, value_name = "ENTRY", requires = "code_package")]
    package_entry: Option<String>,
    /// The flow's class name (the datastore keeps code packages per flow).
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,
    /// The datastore root (default: $FLOWC_DATASTORE_ROOT, else .flowc).
    #[arg(long, value_name = "ROOT")]
    datastore_root: Option<PathBuf>,
    /// Import the flow module once, in the zygote, so tasks do not pay for its imports.
    #[arg(long)]
    preload_flow: bool,
    /// Exit, killing the tasks still running, when stdin reaches its end.
    #[arg(long)]
    exit_with_stdin: bool,
    /// An environment variable for the zygote and its tasks' imports, repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
}

/// `flowc-shim zygote`: becomes the zygote (the interpreter replaces this program).
fn run_zygote(args: &ZygoteArgs) -> ExitCode {
    let flow_file = match (&args.flow_file, &args.code_package, &args.package_entry) {
        (Some(path), _, _) => Some(path.clone()),
        (None, Some(hash), Some(entry)) => match zygote_package_file(args, hash, entry) {
            Ok(path) => Some(path),
            Err(Failure(message)) => {
                eprintln!("flowc-shim: {message}");
                return ExitCode::from(3);
            }
        },
        _ => None,
    };
    if args.preload_flow && flow_file.is_none() {
        return usage_error("--preload-flow needs --flow-file or --code-package");
    }
    let config = ZygoteConfig {
        python: args.python.clone(),
        cache_dir: None,
        socket: Some(args.socket.clone()),
        flow_file,
        preload_flow: args.preload_flow,
        env: args.env.clone(),
    };
    let err = zygote::exec(&config, &args.socket, args.exit_with_stdin);
    eprintln!("flowc-shim: cannot start the zygote: {err}");
    ExitCode::from(3)
}

/// The flow file of a code package, unpacked as `task --code-package` unpacks it, so
/// the zygote's preloaded module is the very file the tasks name.
fn zygote_package_file(args: &ZygoteArgs, hash: &str, entry: &str) -> Result<PathBuf, Failure> {
    let flow = FlowName::new(args.flow.as_deref().unwrap_or_default())?;
    let store = open_store(args.datastore_root.as_deref())?;
    let hash = BlobHash::parse(hash).map_err(|err| Failure(format!("--code-package: {err}")))?;
    let cache = store.code_cache();
    let dir = package::fetch(store.backend(), &flow, &hash, &cache)?;
    Ok(package::entry_path(&dir, &hash, entry)?)
}
