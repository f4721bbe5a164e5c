//! `flowc run` and `flowc resume`: check the flow, build its local plan and hand it to
//! the scheduler in `flowc-shim`.
//!
//! `flowc run` takes the flow's own parameters as options, as Metaflow does
//! (`--alpha 0.3`, `--alpha=0.3`; a `bool` parameter takes a value too:
//! `--use-gpu true`), so its arguments are parsed here rather than by clap: only the
//! flow knows which options exist, and `flowc run flow.py --help` lists them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use flowc::backends::local::{local_plan, LocalConfig};
use flowc::diagnostics::did_you_mean;
use flowc_ir::{Flow, LocalPlan, ParameterKind, ParameterType, PlainJson, PlanParameter};
use flowc_shim::scheduler::{self, ResumeOptions, RunOptions, DEFAULT_MAX_NUM_SPLITS};
use flowc_shim::store::{
    resolve_root, FlowName, LocalStore, MetadataStore, RunStatus, ROOT_ENV_VAR,
};

use super::{load_flow, Outcome, Status, Terminal};

const RUN_HELP: &str = "\
Run a flow on this machine.

Usage: flowc run FLOW.py [OPTIONS] [--PARAMETER VALUE]...

Options:
      --max-workers N       tasks running at once [default: the number of cores]
      --max-num-splits N    the widest foreach allowed [default: 10000]
      --datastore-root DIR  where artifacts and metadata go [default: $FLOWC_DATASTORE_ROOT, else .flowc]
      --tag TAG             a tag for the run (current.tags), repeatable
      --run-id-file FILE    write the run's id to FILE once it starts
      --flow NAME           the flow class to run when the file defines several
      --python PATH         the Python interpreter for the tasks [default: $FLOWC_PYTHON, else python3]
      --no-warm-interpreter start Python for every task instead of forking it from one
                            interpreter that has imported the flow once
  -h, --help                this help; with a flow file, also the flow's parameters
";

/// Run a flow on this machine (`flowc run FLOW.py --help` lists its parameters).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct RunArgs {
    /// The flow file, run options and the flow's parameters (`--name value`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FLOW.py [OPTIONS] [--PARAMETER VALUE]..."
    )]
    args: Vec<OsString>,
}

/// Re-run a failed run from its first failed step, reusing the tasks before it.
///
/// The restart step is `--step`, else the first step (in topological order) with a task
/// that did not succeed. It and every step after it run anew in a new run; the tasks
/// of the steps before it are reused from the origin run without copying any artifact.
#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// The flow file.
    #[arg(value_name = "FLOW.py")]
    file: PathBuf,
    /// The run to resume [default: the flow's latest run].
    #[arg(value_name = "RUN_ID")]
    run_id: Option<String>,
    /// The step to re-run from [default: the first step that failed].
    #[arg(long, value_name = "STEP")]
    step: Option<String>,
    #[command(flatten)]
    options: CommonOptions,
}

/// Options `run` and `resume` share.
#[derive(Debug, clap::Args)]
struct CommonOptions {
    /// Tasks running at once [default: the number of cores].
    #[arg(long, value_name = "N")]
    max_workers: Option<usize>,
    /// The widest foreach allowed.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_NUM_SPLITS)]
    max_num_splits: u64,
    /// Where artifacts and metadata go [default: $FLOWC_DATASTORE_ROOT, else .flowc].
    #[arg(long, value_name = "DIR")]
    datastore_root: Option<PathBuf>,
    /// A tag for the run (`current.tags`), repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Write the run's id to FILE once it starts.
    #[arg(long, value_name = "FILE")]
    run_id_file: Option<PathBuf>,
    /// The flow class when the file defines several.
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,
    /// The Python interpreter for the tasks [default: $FLOWC_PYTHON, else python3].
    #[arg(long, value_name = "PATH")]
    python: Option<OsString>,
    /// Start Python for every task instead of forking it from one interpreter that has
    /// imported the flow once.
    #[arg(long)]
    no_warm_interpreter: bool,
}

impl Default for CommonOptions {
    fn default() -> Self {
        CommonOptions {
            max_workers: None,
            max_num_splits: DEFAULT_MAX_NUM_SPLITS,
            datastore_root: None,
            tags: Vec::new(),
            run_id_file: None,
            flow: None,
            python: None,
            no_warm_interpreter: false,
        }
    }
}

/// `flowc run`'s arguments once split into run options and flow parameters.
#[derive(Debug, Default)]
struct Parsed {
    file: Option<PathBuf>,
    options: CommonOptions,
    /// `--name value` pairs for the flow, in command-line order.
    params: Vec<(String, Option<String>)>,
    help: bool,
}

pub(crate) fn run(args: &RunArgs, terminal: &Terminal) -> Outcome {
    let parsed = match parse_run_args(&args.args) {
        Ok(parsed) => parsed,
        Err(message) => return usage(&message),
    };
    let Some(file) = &parsed.file else {
        if parsed.help {
            return Outcome {
                stdout: RUN_HELP.to_owned(),
                stderr: String::new(),
                status: Status::Ok,
            };
        }
        return usage("the flow file is missing");
    };
    let (flow, warnings) = match load_flow(file, parsed.options.flow.as_deref(), terminal) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let plan = local_plan(&flow, &LocalConfig::default());
    if parsed.help {
        return Outcome {
            stdout: format!("{RUN_HELP}\n{}", parameters_help(&plan)),
            stderr: warnings,
            status: Status::Ok,
        };
    }
    let values = match parameter_values(&plan, &parsed.params) {
        Ok(values) => values,
        Err(message) => return usage(&message),
    };
    print_now(&warnings);
    execute(file, &flow, &plan, &parsed.options, values, None)
}

pub(crate) fn resume(args: &ResumeArgs, terminal: &Terminal) -> Outcome {
    let (flow, warnings) = match load_flow(&args.file, args.options.flow.as_deref(), terminal) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let plan = local_plan(&flow, &LocalConfig::default());
    print_now(&warnings);
    let root = datastore_root(&args.options);
    let origin_run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => match latest_run(&root, &plan.flow) {
            Ok(id) => id,
            Err(message) => {
                return Outcome::failure(Status::Trouble, format!("error: {message}\n"))
            }
        },
    };
    let resume = ResumeOptions {
        origin_run_id,
        step: args.step.clone(),
    };
    execute(
        &args.file,
        &flow,
        &plan,
        &args.options,
        BTreeMap::new(),
        Some(&resume),
    )
}

fn execute(
    file: &Path,
    flow: &Flow,
    plan: &LocalPlan,
    options: &CommonOptions,
    parameters: BTreeMap<String, serde_json::Value>,
    resume: Option<&ResumeOptions>,
) -> Outcome {
    let current_exe = std::env::current_exe().ok();
    let Some(shim) = scheduler::locate_shim(
        current_exe.as_deref(),
        std::env::var_os(scheduler::SHIM_ENV_VAR).as_deref(),
        std::env::var_os("PATH").as_deref(),
    ) else {
        return Outcome::failure(
            Status::Trouble,
            format!(
                "error: cannot find `flowc-shim`: it is neither beside flowc nor on PATH; \
                 set {} to its path\n",
                scheduler::SHIM_ENV_VAR
            ),
        );
    };
    let max_workers = options.max_workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if max_workers == 0 {
        return usage("--max-workers must be at least 1");
    }
    let run_options = RunOptions {
        flow_file: file.to_path_buf(),
        datastore_root: datastore_root(options),
        shim,
        python: options.python.clone(),
        warm_interpreter: !options.no_warm_interpreter,
        max_workers,
        max_num_splits: options.max_num_splits,
        tags: options.tags.clone(),
        parameters,
        flow_ir: serde_json::to_value(flow).unwrap_or(serde_json::Value::Null),
        run_id_file: options.run_id_file.clone(),
    };
    let result = match resume {
        Some(resume) => scheduler::resume(plan, &run_options, resume),
        None => scheduler::run(plan, &run_options),
    };
    if let Ok(report) = &result {
        if let Some(interruption) = report.interrupted {
            interrupted(
                file,
                options,
                &run_options.datastore_root,
                report,
                interruption,
            );
        }
    }
    match result {
        Ok(report) if report.status == RunStatus::Succeeded => Outcome {
            stdout: String::new(),
            stderr: String::new(),
            status: Status::Ok,
        },
        Ok(_) => Outcome::failure(Status::Failed, String::new()),
        Err(err) => Outcome::failure(Status::Trouble, format!("error: {err}\n")),
    }
}

/// Ends `flowc` after a run a signal stopped: one line with the command that goes on
/// from there, then the shell's status for death by that signal (130 for Ctrl-C), so a
/// script running `flowc run` stops as it would had the signal killed it.
fn interrupted(
    file: &Path,
    options: &CommonOptions,
    root: &Path,
    report: &scheduler::RunReport,
    interruption: scheduler::Interruption,
) -> ! {
    let mut command = format!(
        "flowc resume {} {} --datastore-root {}",
        shell_quote(&file.to_string_lossy()),
        report.run_id,
        shell_quote(&root.to_string_lossy())
    );
    if let Some(flow) = &options.flow {
        command.push_str(&format!(" --flow {}", shell_quote(flow)));
    }
    let line = format!(
        "run {} interrupted ({} task{} killed); go on with: {command}\n",
        report.run_id,
        interruption.killed,
        if interruption.killed == 1 { "" } else { "s" }
    );
    print_now(&line);
    let status = 128 + interruption.signal.clamp(1, 127);
    std::process::exit(status)
}

/// `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn datastore_root(options: &CommonOptions) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    resolve_root(
        options.datastore_root.as_deref(),
        std::env::var_os(ROOT_ENV_VAR).as_deref(),
        &cwd,
    )
    .path
}

/// The most recent run of `flow` in the store at `root`.
fn latest_run(root: &Path, flow: &str) -> Result<String, String> {
    let store = LocalStore::open(root)
        .map_err(|err| format!("cannot open the datastore `{}`: {err}", root.display()))?;
    let name = FlowName::new(flow).map_err(|err| err.to_string())?;
    let runs = store.list_runs(&name).map_err(|err| err.to_string())?;
    runs.last()
        .map(|id| id.as_str().to_owned())
        .ok_or_else(|| format!("flow `{flow}` has no run in `{}` to resume", root.display()))
}

/// Warnings go out before the run starts, not after it.
fn print_now(text: &str) {
    if !text.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
    }
}

fn usage(message: &str) -> Outcome {
    Outcome::failure(
        Status::Trouble,
        format!("error: {message}\n\nFor more information, try 'flowc run FLOW.py --help'.\n"),
    )
}

/// Splits `flowc run`'s arguments into the flow file, run options and `--name value`
/// pairs for the flow's parameters.
fn parse_run_args(args: &[OsString]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut words = args.iter().peekable();
    while let Some(raw) = words.next() {
        let Some(word) = raw.to_str() else {
            if parsed.file.is_none() {
                parsed.file = Some(PathBuf::from(raw));
                continue;
            }
            return Err(format!(
                "argument `{}` is not valid UTF-8",
                raw.to_string_lossy()
            ));
        };
        if word == "-h" || word == "--help" {
            parsed.help = true;
            continue;
        }
        let Some(option) = word.strip_prefix("--") else {
            if parsed.file.is_none() {
                parsed.file = Some(PathBuf::from(raw));
                continue;
            }
            return Err(format!(
                "unexpected argument `{word}` (parameters are given as `--name value`)"
            ));
        };
        let (name, inline) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (option, None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match &inline {
                Some(value) => Ok(value.clone()),
                None => words
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("option `--{name}` needs {what}")),
            }
        };
        let options = &mut parsed.options;
        match name {
            "max-workers" => options.max_workers = Some(number(&value("a number")?, name)?),
            "max-num-splits" => options.max_num_splits = number(&value("a number")?, name)?,
            "datastore-root" => options.datastore_root = Some(value("a directory")?.into()),
            "tag" => options.tags.push(value("a tag")?),
            "run-id-file" => options.run_id_file = Some(value("a file")?.into()),
            "flow" => options.flow = Some(value("a flow name")?),
            "python" => options.python = Some(value("a path")?.into()),
            "no-warm-interpreter" if inline.is_none() => options.no_warm_interpreter = true,
            _ => {
                // A parameter's value may itself start with `-` (`--offset -3`).
                let value = match inline {
                    Some(value) => Some(value),
                    None => words.next().map(|v| v.to_string_lossy().into_owned()),
                };
                parsed.params.push((name.to_owned(), value));
            }
        }
    }
    Ok(parsed)
}

fn number<T: std::str::FromStr>(text: &str, option: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("option `--{option}` takes a whole number, not `{text}`"))
}

/// Checks the given parameters against the plan and converts them to the values the
/// run records and `flowc-shim init` receives.
fn parameter_values(
    plan: &LocalPlan,
    given: &[(String, Option<String>)],
) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let mut values = BTreeMap::new();
    for (name, value) in given {
        let Some(param) = plan.parameters.iter().find(|p| &p.name == name) else {
            let names = plan.parameters.iter().map(|p| p.name.as_str());
            let mut message = format!("flow `{}` has no parameter `--{name}`", plan.flow);
            if let Some(close) = did_you_mean(name, names) {
                message.push_str(&format!("; did you mean `--{close}`?"));
            } else if plan.parameters.is_empty() {
                message.push_str(" (it takes no parameters)");
            }
            return Err(message);
        };
        let Some(value) = value else {
            return Err(format!("parameter `--{name}` needs a value"));
        };
        values.insert(param.name.clone(), convert(param, value)?);
    }
    for param in &plan.parameters {
        let has_default =
            param.default.is_some_and_not_null() || param.default_expression.is_some();
        if param.required && !has_default && !values.contains_key(&param.name) {
            return Err(format!(
                "parameter `--{}` is required: give it a value with `--{} VALUE`",
                param.name, param.name
            ));
        }
    }
    Ok(values)
}

/// `Option<PlainJson>` holds a default when it is present and not `None`.
trait DefaultPresent {
    fn is_some_and_not_null(&self) -> bool;
}

impl DefaultPresent for Option<PlainJson> {
    fn is_some_and_not_null(&self) -> bool {
        !matches!(self, None | Some(PlainJson::Null))
    }
}

fn convert(param: &PlanParameter, text: &str) -> Result<serde_json::Value, String> {
    let name = &param.name;
    if param.kind == ParameterKind::IncludeFile || param.separator.is_some() {
        // A path for `IncludeFile`, a list for a separator: the harness reads or splits it.
        return Ok(serde_json::Value::String(text.to_owned()));
    }
    match param.ty {
        ParameterType::Int => text
            .trim()
            .parse::<i64>()
            .map(serde_json::Value::from)
            .map_err(|_| format!("parameter `--{name}` takes an int, not `{text}`")),
        ParameterType::Float => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("parameter `--{name}` takes a float, not `{text}`")),
        ParameterType::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(serde_json::Value::Bool(true)),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(serde_json::Value::Bool(false)),
            _ => Err(format!(
                "parameter `--{name}` takes a bool (true or false), not `{text}`"
            )),
        },
        ParameterType::Json => serde_json::from_str::<serde_json::Value>(text)
            .map(|_| serde_json::Value::String(text.to_owned()))
            .map_err(|err| format!("parameter `--{name}` takes JSON: {err}")),
        ParameterType::Str | ParameterType::Other => Ok(serde_json::Value::String(text.to_owned())),
    }
}

/// The flow's parameters for `flowc run FLOW.py --help`.
fn parameters_help(plan: &LocalPlan) -> String {
    if plan.parameters.is_empty() {
        return format!("Flow `{}` takes no parameters.\n", plan.flow);
    }
    let rows: Vec<(String, String)> = plan
        .parameters
        .iter()
        .map(|param| {
            let ty = match (param.kind, param.ty) {
                (ParameterKind::IncludeFile, _) => "PATH",
                (_, ParameterType::Int) => "INT",
                (_, ParameterType::Float) => "FLOAT",
                (_, ParameterType::Bool) => "BOOL",
                (_, ParameterType::Json) => "JSON",
                (_, ParameterType::Str) => "TEXT",
                (_, ParameterType::Other) => "VALUE",
            };
            let mut text = param.help.clone().unwrap_or_default();
            let default = match (&param.default, &param.default_expression) {
                (Some(PlainJson::Null), _) | (None, None) => None,
                (Some(PlainJson::Str(s)), _) => Some(s.clone()),
                (Some(value), _) => serde_json::to_string(value).ok(),
                (None, Some(expression)) => Some(format!("computed: {expression}")),
            };
            if let Some(default) = default {
                text.push_str(&format!(" [default: {default}]"));
            } else if param.required {
                text.push_str(" [required]");
            }
            (format!("--{} {ty}", param.name), text.trim().to_owned())
        })
        .collect();
    let width = rows.iter().map(|(left, _)| left.len()).max().unwrap_or(0);
    let mut out = format!("Parameters of {}:\n", plan.flow);
    for (left, right) in rows {
        out.push_str(format!("      {left:<width$}  {right}").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn param(name: &str, ty: ParameterType, default: Option<PlainJson>) -> PlanParameter {
        PlanParameter {
            name: name.into(),
            attr: name.replace('-', "_"),
            kind: ParameterKind::Parameter,
            ty,
            default,
            default_expression: None,
            required: false,
            help: None,
            separator: None,
            is_text: true,
        }
    }

    fn plan(parameters: Vec<PlanParameter>) -> LocalPlan {
        LocalPlan {
            plan_version: flowc_ir::PLAN_VERSION,
            flow: "F".into(),
            source: flowc_ir::Source {
                path: "f.py".into(),
                sha256: String::new(),
            },
            start_step: "start".into(),
            end_step: "end".into(),
            parameters,
            steps: Vec::new(),
        }
    }

    #[test]
    fn run_options_and_parameters_are_told_apart() {
        let parsed = parse_run_args(&os(&[
            "flow.py",
            "--alpha",
            "0.3",
            "--max-workers=8",
            "--tag",
            "a",
            "--offset",
            "-3",
            "--name=x",
        ]))
        .unwrap();
        assert_eq!(parsed.file, Some(PathBuf::from("flow.py")));
        assert_eq!(parsed.options.max_workers, Some(8));
        assert_eq!(parsed.options.tags, ["a"]);
        assert_eq!(
            parsed.params,
            [
                ("alpha".to_owned(), Some("0.3".to_owned())),
                ("offset".to_owned(), Some("-3".to_owned())),
                ("name".to_owned(), Some("x".to_owned())),
            ]
        );
        assert!(!parsed.help);
        assert_eq!(parsed.options.max_num_splits, DEFAULT_MAX_NUM_SPLITS);
        assert!(parse_run_args(&os(&["flow.py", "--help"])).unwrap().help);
        let err = parse_run_args(&os(&["flow.py", "--max-workers", "many"])).unwrap_err();
        assert!(err.contains("whole number"), "{err}");
        let err = parse_run_args(&os(&["flow.py", "extra"])).unwrap_err();
        assert!(err.contains("unexpected argument `extra`"), "{err}");
    }

    #[test]
    fn no_warm_interpreter_is_a_run_option_not_a_parameter() {
        let parsed =
            parse_run_args(&os(&["flow.py", "--no-warm-interpreter", "--a", "1"])).unwrap();
        assert!(parsed.options.no_warm_interpreter);
        assert_eq!(parsed.params, [("a".to_owned(), Some("1".to_owned()))]);
        let parsed = parse_run_args(&os(&["flow.py"])).unwrap();
        assert!(!parsed.options.no_warm_interpreter);
    }

    #[test]
    fn resume_commands_quote_what_the_shell_would_split() {
        assert_eq!(shell_quote("flows/train.py"), "flows/train.py");
        assert_eq!(shell_quote("my flows/a.py"), "'my flows/a.py'");
        assert_eq!(shell_quote("it's.py"), "'it'\\''s.py'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn parameters_are_checked_and_typed() {
        let plan = plan(vec![
            param("alpha", ParameterType::Float, Some(PlainJson::Float(0.5))),
            param("n-trials", ParameterType::Int, Some(PlainJson::Int(4))),
            param("use-gpu", ParameterType::Bool, Some(PlainJson::Bool(false))),
            param("layers", ParameterType::Json, None),
        ]);
        let given = |pairs: &[(&str, &str)]| -> Vec<(String, Option<String>)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
                .collect()
        };
        let values = parameter_values(
            &plan,
            &given(&[
                ("alpha", "0.3"),
                ("n-trials", "7"),
                ("use-gpu", "True"),
                ("layers", "[1]"),
            ]),
        )
        .unwrap();
        assert_eq!(values["alpha"], serde_json::json!(0.3));
        assert_eq!(values["n-trials"], serde_json::json!(7));
        assert_eq!(values["use-gpu"], serde_json::json!(true));
        assert_eq!(values["layers"], serde_json::json!("[1]"));

        let err = parameter_values(&plan, &given(&[("n-trails", "3")])).unwrap_err();
        assert!(err.contains("no parameter `--n-trails`"), "{err}");
        assert!(err.contains("did you mean `--n-trials`?"), "{err}");
        let err = parameter_values(&plan, &given(&[("n-trials", "3.5")])).unwrap_err();
        assert!(err.contains("takes an int, not `3.5`"), "{err}");
        let err = parameter_values(&plan, &given(&[("alpha", "fast")])).unwrap_err();
        assert!(err.contains("takes a float"), "{err}");
        let err = parameter_values(&plan, &given(&[("layers", "{")])).unwrap_err();
        assert!(err.contains("takes JSON"), "{err}");
        let err = parameter_values(&plan, &[("alpha".to_owned(), None)]).unwrap_err();
        assert!(err.contains("needs a value"), "{err}");
    }

    #[test]
    fn a_required_parameter_without_default_must_be_given() {
        let mut dataset = param("dataset", ParameterType::Str, None);
        dataset.required = true;
        let plan = plan(vec![dataset]);
        let err = parameter_values(&plan, &[]).unwrap_err();
        assert!(err.contains("`--dataset` is required"), "{err}");
        let values =
            parameter_values(&plan, &[("dataset".to_owned(), Some("v3".to_owned()))]).unwrap();
        assert_eq!(values["dataset"], serde_json::json!("v3"));
    }

    #[test]
    fn help_lists_types_defaults_and_help() {
        let mut alpha = param("alpha", ParameterType::Float, Some(PlainJson::Float(0.5)));
        alpha.help = Some("Learning rate".into());
        let mut dataset = param("dataset", ParameterType::Str, None);
        dataset.required = true;
        let help = parameters_help(&plan(vec![alpha, dataset]));
        assert!(
            help.contains("--alpha FLOAT   Learning rate [default: 0.5]"),
            "{help}"
        );
        assert!(help.contains("--dataset TEXT  [required]"), "{help}");
    }
}
