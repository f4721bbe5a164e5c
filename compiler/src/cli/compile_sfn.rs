//! `flowc compile --target sfn` and `--target batch`: resolves the AWS settings (flags,
//! then `FLOWC_SFN_*` environment variables, then the `[sfn]` table of the nearest
//! `flowc.toml`), builds the flow's code package, and writes the documents the `sfn`
//! backend returns. The image and datastore root come from the flags every target
//! shares ([`SharedArgs`]); the others from these targets' own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowc::backends::sfn::{
    batch, sfn, BatchDocuments, CodePackageRef, MapMode, Platform, SfnConfig, SfnDocuments,
};
use flowc_ir::Flow;
use serde::Deserialize;

use super::compile::SharedArgs;
use super::{report, source, Outcome, Status, Terminal};

pub(crate) const SFN_HELP: &str = "\
Step Functions / Batch settings (--target sfn, --target batch) come from the flags
(--image and --datastore-root included), else the environment variables
FLOWC_SFN_<SETTING> (FLOWC_SFN_IMAGE, FLOWC_SFN_JOB_QUEUE, FLOWC_SFN_JOB_ROLE,
FLOWC_SFN_EXECUTION_ROLE, FLOWC_SFN_DATASTORE_ROOT, FLOWC_SFN_REGION,
FLOWC_SFN_ACCOUNT, FLOWC_SFN_SCHEDULE_ROLE, FLOWC_SFN_PLATFORM,
FLOWC_SFN_MAP_MODE, FLOWC_SFN_MAX_CONCURRENCY, FLOWC_SFN_SHIM_PATH), else the
[sfn] table of the nearest flowc.toml (looked for in the flow file's directory and
its parents):

  [sfn]
  image = \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/flows:1\"  # Python 3 + flowc-shim
  job_queue = \"flowc-queue\"            # required for --target sfn
  job_role = \"flowc-job\"               # an ARN, or a role name with account
  execution_role = \"flowc-ecs-exec\"    # required on Fargate
  datastore_root = \"s3://bucket/flowc\" # required, an s3:// root
  region = \"eu-west-1\"
  account = \"123456789012\"
  schedule_role = \"flowc-scheduler\"    # for @schedule, with region and account
  platform = \"ec2\"                     # or \"fargate\"
  map_mode = \"distributed\"             # or \"inline\" (at most 40 splits at once)
  max_concurrency = 100                # splits of one foreach at once; 0 = AWS's limit
  shim_path = \"/usr/local/bin/flowc-shim\"
  foreach_width = { sweep = 12 }       # splits of step sweep's foreach, checked
                                       # against inline Maps

With -o DIR, --target sfn writes DIR/<name>.asl.json (the state machine),
DIR/<job definition name>.jobdef.json per step and for the run's init (each a
RegisterJobDefinition request), DIR/<name>.schedule.json (a CreateSchedule request,
for @schedule) and the code package DIR/<name>.code-package.tar; --target batch
writes the job definitions alone. Without -o, --target sfn prints one JSON object
{\"name\", \"stateMachine\", \"jobDefinitions\": [...], \"schedule\"} and --target batch a
JSON list of job definitions.";

/// The flags of the Step Functions and Batch targets alone.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Step Functions and Batch settings (--target sfn, --target batch)")]
pub(crate) struct SfnArgs {
    /// [sfn] Job queue of steps without @batch(queue=...).
    #[arg(long, value_name = "QUEUE")]
    job_queue: Option<String>,
    /// [sfn, batch] IAM role of the jobs (ARN, or name with --account).
    #[arg(long, value_name = "ROLE")]
    job_role: Option<String>,
    /// [sfn, batch] ECS execution role (ARN, or name with --account); Fargate needs one.
    #[arg(long, value_name = "ROLE")]
    execution_role: Option<String>,
    /// [sfn] AWS region of the state machine (for @schedule's target).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// [sfn, batch] AWS account id (12 digits).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// [sfn] Role EventBridge Scheduler assumes to start runs (ARN, or name).
    #[arg(long, value_name = "ROLE")]
    schedule_role: Option<String>,
    /// [sfn, batch] Where the jobs run: ec2 (default) or fargate.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// [sfn] How foreach fans out: distributed (default) or inline.
    #[arg(long, value_name = "MODE")]
    map_mode: Option<String>,
    /// [sfn] Splits of one foreach running at once (0: AWS's limit).
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u32>,
    /// [sfn, batch] Where flowc-shim is in the image.
    #[arg(long, value_name = "PATH")]
    shim_path: Option<String>,
    /// [sfn] Expected splits of the foreach of step STEP (the one calling
    /// self.next(..., foreach=...)), repeatable; checked against inline Maps.
    #[arg(long = "foreach-width", value_name = "STEP=N", value_parser = parse_width)]
    foreach_widths: Vec<(String, u64)>,
}

impl SfnArgs {
    /// The first flag given, for the targets that do not take these.
    pub(crate) fn given(&self) -> Option<&'static str> {
        [
            ("--job-queue", self.job_queue.is_some()),
            ("--job-role", self.job_role.is_some()),
            ("--execution-role", self.execution_role.is_some()),
            ("--region", self.region.is_some()),
            ("--account", self.account.is_some()),
            ("--schedule-role", self.schedule_role.is_some()),
            ("--platform", self.platform.is_some()),
            ("--map-mode", self.map_mode.is_some()),
            ("--max-concurrency", self.max_concurrency.is_some()),
            ("--shim-path", self.shim_path.is_some()),
            ("--foreach-width", !self.foreach_widths.is_empty()),
        ]
        .into_iter()
        .find_map(|(flag, set)| set.then_some(flag))
    }
}

fn parse_width(text: &str) -> Result<(String, u64), String> {
    match text.split_once('=') {
        Some((step, n)) if !step.is_empty() => n
            .trim()
            .parse()
            .map(|n| (step.trim().to_owned(), n))
            .map_err(|_| format!("`{n}` in `{text}` is not a number")),
        _ => Err(format!("`{text}` is not STEP=N")),
    }
}

/// The `[sfn]` table of `flowc.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    image: Option<String>,
    job_queue: Option<String>,
    job_role: Option<String>,
    execution_role: Option<String>,
    datastore_root: Option<String>,
    region: Option<String>,
    account: Option<String>,
    schedule_role: Option<String>,
    platform: Option<String>,
    map_mode: Option<String>,
    max_concurrency: Option<u32>,
    shim_path: Option<String>,
    #[serde(default)]
    foreach_width: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(default)]
    sfn: FileSettings,
}

const DEFAULT_SHIM_PATH: &str = "/usr/local/bin/flowc-shim";

/// Which documents to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// The state machine, job definitions, schedule and code package.
    StepFunctions,
    /// The job definitions (and the code package they name).
    Batch,
}

/// The nearest `flowc.toml` from `flow_file`'s directory upwards, read.
fn file_settings(flow_file: &Path) -> Result<FileSettings, String> {
    let start = std::fs::canonicalize(flow_file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut dir = start.as_deref();
    while let Some(here) = dir {
        let candidate = here.join("flowc.toml");
        if candidate.is_file() {
            let text = std::fs::read_to_string(&candidate)
                .map_err(|e| format!("cannot read {}: {e}", candidate.display()))?;
            let parsed: FileConfig =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", candidate.display()))?;
            return Ok(parsed.sfn);
        }
        dir = here.parent();
    }
    Ok(FileSettings::default())
}

/// Flag, else environment variable, else `flowc.toml`.
fn pick(
    flag: &Option<String>,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file: &Option<String>,
) -> Option<String> {
    flag.clone()
        .or_else(|| env(var).filter(|v| !v.is_empty()))
        .or_else(|| file.clone())
}

/// A role as an ARN: given as one, or a name made into one with the account.
fn role_arn(
    what: &str,
    role: Option<String>,
    account: Option<&str>,
) -> Result<Option<String>, String> {
    match role {
        None => Ok(None),
        Some(role) if role.starts_with("arn:") => Ok(Some(role)),
        Some(name) => match account {
            Some(account) => Ok(Some(format!("arn:aws:iam::{account}:role/{name}"))),
            None => Err(format!(
                "the {what} `{name}` is not an ARN: give its ARN, or the account (--account, FLOWC_SFN_ACCOUNT, account in [sfn])"
            )),
        },
    }
}

/// Resolves the settings; `env` reads an environment variable (a parameter so that
/// tests do not touch the process environment).
fn resolve(
    which: Which,
    shared: &SharedArgs,
    args: &SfnArgs,
    file: FileSettings,
    env: &dyn Fn(&str) -> Option<String>,
    code_package: CodePackageRef,
) -> Result<SfnConfig, String> {
    let datastore_root = pick(&shared.datastore_root, "FLOWC_SFN_DATASTORE_ROOT", env, &file.datastore_root)
        .ok_or("the Step Functions and Batch targets need the S3 datastore root every job uses: give --datastore-root, FLOWC_SFN_DATASTORE_ROOT or datastore_root in flowc.toml's [sfn]")?;
    match datastore_root.strip_prefix("s3://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
        _ => {
            return Err(format!(
                "the datastore root `{datastore_root}` is not an S3 root: write s3://bucket/prefix"
            ))
        }
    }
    let image = pick(&shared.image, "FLOWC_SFN_IMAGE", env, &file.image)
        .ok_or("the Step Functions and Batch targets need an image holding Python 3 and flowc-shim: give --image, FLOWC_SFN_IMAGE or image in flowc.toml's [sfn]")?;
    let job_queue = pick(&args.job_queue, "FLOWC_SFN_JOB_QUEUE", env, &file.job_queue);
    let job_queue = match (which, job_queue) {
        (_, Some(queue)) => queue,
        (Which::Batch, None) => String::new(),
        (Which::StepFunctions, None) => return Err("the Step Functions target needs a Batch job queue: give --job-queue, FLOWC_SFN_JOB_QUEUE or job_queue in flowc.toml's [sfn]".to_owned()),
    };
    let account = pick(&args.account, "FLOWC_SFN_ACCOUNT", env, &file.account);
    if let Some(id) = &account {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "the account `{id}` is not a 12-digit AWS account id"
            ));
        }
    }
    let platform = match pick(&args.platform, "FLOWC_SFN_PLATFORM", env, &file.platform)
        .map(|p| p.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("ec2") => Platform::Ec2,
        Some("fargate") => Platform::Fargate,
        Some(other) => return Err(format!("the platform `{other}` is neither ec2 nor fargate")),
    };
    let map_mode = match pick(&args.map_mode, "FLOWC_SFN_MAP_MODE", env, &file.map_mode)
        .map(|p| p.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("distributed") => MapMode::Distributed,
        Some("inline") => MapMode::Inline,
        Some(other) => {
            return Err(format!(
                "the map mode `{other}` is neither distributed nor inline"
            ))
        }
    };
    let max_concurrency = match args.max_concurrency {
        Some(n) => Some(n),
        None => match env("FLOWC_SFN_MAX_CONCURRENCY").filter(|v| !v.is_empty()) {
            Some(text) => Some(
                text.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("FLOWC_SFN_MAX_CONCURRENCY: `{text}` is not a number"))?,
            ),
            None => file.max_concurrency,
        },
    };
    let execution_role = role_arn(
        "execution role",
        pick(
            &args.execution_role,
            "FLOWC_SFN_EXECUTION_ROLE",
            env,
            &file.execution_role,
        ),
        account.as_deref(),
    )?;
    if platform == Platform::Fargate && execution_role.is_none() {
        return Err("Fargate jobs need an execution role: give --execution-role, FLOWC_SFN_EXECUTION_ROLE or execution_role in flowc.toml's [sfn]".to_owned());
    }
    let mut foreach_widths = file.foreach_width.clone();
    foreach_widths.extend(args.foreach_widths.iter().cloned());
    Ok(SfnConfig {
        image,
        shim_path: pick(&args.shim_path, "FLOWC_SFN_SHIM_PATH", env, &file.shim_path)
            .unwrap_or_else(|| DEFAULT_SHIM_PATH.to_owned()),
        job_queue,
        job_role: role_arn(
            "job role",
            pick(&args.job_role, "FLOWC_SFN_JOB_ROLE", env, &file.job_role),
            account.as_deref(),
        )?,
        execution_role,
        datastore_root,
        region: pick(&args.region, "FLOWC_SFN_REGION", env, &file.region),
        schedule_role: role_arn(
            "schedule role",
            pick(
                &args.schedule_role,
                "FLOWC_SFN_SCHEDULE_ROLE",
                env,
                &file.schedule_role,
            ),
            account.as_deref(),
        )?,
        account,
        platform,
        map_mode,
        max_concurrency,
        foreach_widths,
        code_package,
        user: env("USER").or_else(|| env("USERNAME")),
        flowc_version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// One file to write: its name under the output directory and its text.
type File = (String, String);

/// Compiles `flow` (read from `flow_file`) for Step Functions or Batch, with the flags
/// every target shares and these targets' own, and writes the result.
pub(crate) fn run(
    which: Which,
    flow: &Flow,
    flow_file: &Path,
    (shared, args): (&SharedArgs, &SfnArgs),
    output: Option<&Path>,
    warnings: String,
    terminal: &Terminal,
) -> Outcome {
    let trouble = |message: String| {
        Outcome::failure(Status::Trouble, format!("{warnings}error: {message}\n"))
    };
    let package = match flowc_shim::package::build(flow_file) {
        Ok(package) => package,
        Err(err) => return trouble(format!("cannot build the code package: {err}")),
    };
    let file = match file_settings(flow_file) {
        Ok(found) => found,
        Err(message) => return trouble(message),
    };
    let code_package = CodePackageRef {
        hash: package.hash.to_string(),
        entry: package.entry.clone(),
    };
    let config = match resolve(
        which,
        shared,
        args,
        file,
        &|name| std::env::var(name).ok(),
        code_package,
    ) {
        Ok(config) => config,
        Err(message) => return trouble(message),
    };
    let compiled = match which {
        Which::StepFunctions => sfn(flow, &config).map(|docs| Compiled::Sfn(Box::new(docs))),
        Which::Batch => batch(flow, &config).map(Compiled::Batch),
    };
    let compiled = match compiled {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            let text = source::read(flow_file).map(|f| f.text).unwrap_or_default();
            let shown = flow_file.to_string_lossy();
            let rendered = report::render_text(
                &report::Source::new(&shown, &text),
                &diagnostics,
                terminal.stderr,
            );
            return Outcome::failure(Status::Failed, format!("{warnings}{rendered}"));
        }
    };
    let Some(dir) = output else {
        let text = match &compiled {
            Compiled::Sfn(docs) => flowc::emit::json(docs),
            Compiled::Batch(docs) => flowc::emit::json(&docs.job_definitions),
        };
        return match text {
            Ok(stdout) => Outcome {
                stdout,
                stderr: warnings,
                status: Status::Ok,
            },
            Err(err) => trouble(format!("cannot serialise the documents: {err}")),
        };
    };
    let (name, files) = match compiled.files() {
        Ok(files) => files,
        Err(err) => return trouble(format!("cannot serialise the documents: {err}")),
    };
    if let Err(err) = std::fs::create_dir_all(dir) {
        return trouble(format!("cannot create `{}`: {err}", dir.display()));
    }
    let mut written: Vec<PathBuf> = Vec::new();
    for (file_name, text) in files {
        let path = dir.join(file_name);
        if let Err(err) = std::fs::write(&path, text) {
            return trouble(format!("cannot write `{}`: {err}", path.display()));
        }
        written.push(path);
    }
    let package_path = dir.join(format!("{name}.code-package.tar"));
    if let Err(err) = package.write_to(&package_path) {
        return trouble(format!("cannot write `{}`: {err}", package_path.display()));
    }
    written.push(package_path);
    let mut stderr = warnings;
    for path in written {
        stderr.push_str(&format!("wrote {}\n", path.display()));
    }
    stderr.push_str(&format!(
        "code package {} (store it under the datastore root before the first run)\n",
        config.code_package.hash
    ));
    Outcome {
        stdout: String::new(),
        stderr,
        status: Status::Ok,
    }
}

enum Compiled {
    Sfn(Box<SfnDocuments>),
    Batch(BatchDocuments),
}

impl Compiled {
    /// The name the documents share, and every file `-o DIR` gets.
    fn files(&self) -> Result<(String, Vec<File>), String> {
        let mut files = Vec::new();
        let (name, definitions) = match self {
            Compiled::Sfn(docs) => {
                files.push((
                    format!("{}.asl.json", docs.name),
                    flowc::emit::json(&docs.state_machine)?,
                ));
                if let Some(schedule) = &docs.schedule {
                    files.push((
                        format!("{}.schedule.json", docs.name),
                        flowc::emit::json(schedule)?,
                    ));
                }
                (docs.name.clone(), docs.job_definitions.as_slice())
            }
            Compiled::Batch(docs) => (docs.name.clone(), docs.job_definitions.as_slice()),
        };
        for definition in definitions {
            files.push((
                format!("{}.jobdef.json", definition.job_definition_name),
                flowc::emit::json(definition)?,
            ));
        }
        Ok((name, files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> CodePackageRef {
        CodePackageRef {
            hash: "00".repeat(32),
            entry: "flow.py".to_owned(),
        }
    }

    fn file(text: &str) -> FileSettings {
        toml::from_str::<FileConfig>(text).unwrap().sfn
    }

    #[test]
    fn flags_win_over_environment_which_wins_over_the_file() {
        let shared = SharedArgs {
            image: Some("flag-image".to_owned()),
            datastore_root: None,
        };
        let args = SfnArgs {
            foreach_widths: vec![("train".to_owned(), 7)],
            ..SfnArgs::default()
        };
        let file = file(
            "[sfn]\nimage = \"file-image\"\njob_queue = \"file-queue\"\ndatastore_root = \"s3://file/root\"\njob_role = \"file-role\"\naccount = \"123456789012\"\nmax_concurrency = 5\nforeach_width = { train = 3, score = 4 }\n",
        );
        let env = |name: &str| match name {
            "FLOWC_SFN_IMAGE" => Some("env-image".to_owned()),
            "FLOWC_SFN_JOB_QUEUE" => Some("env-queue".to_owned()),
            "FLOWC_SFN_PLATFORM" => Some("Fargate".to_owned()),
            "FLOWC_SFN_EXECUTION_ROLE" => Some("arn:aws:iam::123456789012:role/exec".to_owned()),
            _ => None,
        };
        let config = resolve(Which::StepFunctions, &shared, &args, file, &env, package()).unwrap();
        assert_eq!(config.image, "flag-image");
        assert_eq!(config.job_queue, "env-queue");
        assert_eq!(config.datastore_root, "s3://file/root");
        assert_eq!(
            config.job_role.as_deref(),
            Some("arn:aws:iam::123456789012:role/file-role")
        );
        assert_eq!(config.platform, Platform::Fargate);
        assert_eq!(config.max_concurrency, Some(5));
        assert_eq!(config.map_mode, MapMode::Distributed);
        assert_eq!(config.shim_path, DEFAULT_SHIM_PATH);
        assert_eq!(config.foreach_widths["train"], 7);
        assert_eq!(config.foreach_widths["score"], 4);
    }

    #[test]
    fn missing_or_wrong_settings_are_explained() {
        let base = "[sfn]\nimage = \"i\"\ndatastore_root = \"s3://b/p\"\n";
        let err = resolve(
            Which::StepFunctions,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file(base),
            &|_| None,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("--job-queue"), "{err}");
        // The Batch target needs no queue.
        assert!(resolve(
            Which::Batch,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file(base),
            &|_| None,
            package()
        )
        .is_ok());
        let err = resolve(
            Which::Batch,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file("[sfn]\nimage = \"i\"\ndatastore_root = \"/tmp/x\"\n"),
            &|_| None,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("not an S3 root"), "{err}");
        let err = resolve(
            Which::Batch,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file(&format!("{base}job_role = \"r\"\n")),
            &|_| None,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("not an ARN"), "{err}");
        let err = resolve(
            Which::Batch,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file(&format!("{base}platform = \"fargate\"\n")),
            &|_| None,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("execution role"), "{err}");
        let err = resolve(
            Which::Batch,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file("[sfn]\ndatastore_root = \"s3://b\"\n"),
            &|_| None,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("--image"), "{err}");
        let err = resolve(
            Which::Batch,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file("[sfn]\nimage = \"i\"\n"),
            &|_| None,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("--datastore-root"), "{err}");
    }

    #[test]
    fn the_shared_flags_win_over_this_targets_variables_and_table() {
        let shared = SharedArgs {
            image: Some("flag-image".to_owned()),
            datastore_root: Some("s3://flag/root".to_owned()),
        };
        let text = "[sfn]\nimage = \"file-image\"\ndatastore_root = \"s3://file/root\"\n[argo]\nimage = \"argo-image\"\n";
        let env = |name: &str| match name {
            "FLOWC_SFN_DATASTORE_ROOT" => Some("s3://env/root".to_owned()),
            "FLOWC_ARGO_IMAGE" => Some("argo-env-image".to_owned()),
            _ => None,
        };
        let config = resolve(
            Which::Batch,
            &shared,
            &SfnArgs::default(),
            file(text),
            &env,
            package(),
        )
        .unwrap();
        assert_eq!(config.image, "flag-image");
        assert_eq!(config.datastore_root, "s3://flag/root");
        // Without the flags, the sfn variable and table, never the Argo ones.
        let config = resolve(
            Which::Batch,
            &SharedArgs::default(),
            &SfnArgs::default(),
            file(text),
            &env,
            package(),
        )
        .unwrap();
        assert_eq!(config.image, "file-image");
        assert_eq!(config.datastore_root, "s3://env/root");
        // A shared flag is checked as the target needs: an S3 root.
        let local = SharedArgs {
            image: None,
            datastore_root: Some("/tmp/store".to_owned()),
        };
        let err = resolve(
            Which::Batch,
            &local,
            &SfnArgs::default(),
            file(text),
            &env,
            package(),
        )
        .unwrap_err();
        assert!(err.contains("not an S3 root"), "{err}");
    }

    #[test]
    fn given_names_the_first_sfn_flag_set() {
        assert_eq!(SfnArgs::default().given(), None);
        let args = SfnArgs {
            map_mode: Some("inline".to_owned()),
            ..SfnArgs::default()
        };
        assert_eq!(args.given(), Some("--map-mode"));
    }

    #[test]
    fn unknown_keys_in_flowc_toml_are_refused() {
        assert!(toml::from_str::<FileConfig>("[sfn]\njob_qeue = \"x\"\n").is_err());
    }
}
