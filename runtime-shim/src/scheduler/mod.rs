//! The local scheduler behind `flowc run` and `flowc resume`: executes a
//! [`LocalPlan`] by starting `flowc-shim init` and then one `flowc-shim task` process
//! per task, up to `max_workers` at a time.
//!
//! The graph is walked as it unfolds: each finished task's outcome (the transition its
//! `self.next(...)` took) says which tasks come next, foreach fan-outs get their width
//! from the outcome, and a join starts once every task of the split it closes has
//! arrived. Tasks carry the stack of splits they run inside, so nested foreach,
//! branches inside foreach bodies and switches inside branches need no special case.
//!
//! Once per run the scheduler resolves the Python interpreter, builds the flow's code
//! package (every task runs from it, as a container would) and starts a warm
//! interpreter the tasks fork from. SIGINT and SIGTERM stop the run: its tasks are
//! killed and recorded as such, so `flowc resume` can go on from there.

mod child;
mod engine;
mod progress;
mod resume;
mod setup;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use flowc_ir::LocalPlan;

use crate::store::{RunStatus, StoreError};

/// `--max-num-splits` when none is given: a foreach wider than this is almost always a
/// mistake (iterating over a string or a data frame's rows).
pub const DEFAULT_MAX_NUM_SPLITS: u64 = 10_000;

/// The environment variable naming the `flowc-shim` binary when it is not beside the
/// running executable.
pub const SHIM_ENV_VAR: &str = "FLOWC_SHIM";

/// Everything a run needs besides the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The flow's Python file; made absolute before use.
    pub flow_file: PathBuf,
    /// The datastore root, already resolved (`resolve_root`).
    pub datastore_root: PathBuf,
    /// The `flowc-shim` binary ([`locate_shim`]).
    pub shim: PathBuf,
    /// The interpreter to run the tasks with (default: `$FLOWC_PYTHON`, else
    /// `python3`); the run resolves it once to its real path (`sys.executable`).
    pub python: Option<OsString>,
    /// Start one warm interpreter (zygote) for the run and fork every task from it.
    pub warm_interpreter: bool,
    /// Tasks running at once, at least 1.
    pub max_workers: usize,
    pub max_num_splits: u64,
    pub tags: Vec<String>,
    /// Parameter values by parameter name, as given on the command line (converted to
    /// JSON numbers and booleans where the type says so). Ignored by a resume, which
    /// reuses the origin run's.
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// The flow's IR as JSON, kept in `run.json`.
    pub flow_ir: serde_json::Value,
    /// A file to write the new run's id to, as soon as it is known.
    pub run_id_file: Option<PathBuf>,
}

/// Which run to resume and from where.
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    pub origin_run_id: String,
    /// The step to re-run from; by default the first failed step.
    pub step: Option<String>,
}

/// The task that made a run fail.
#[derive(Debug, Clone)]
pub struct FailedTask {
    /// `run/step/task`.
    pub pathspec: String,
    pub step: String,
    pub attempt: u32,
    /// Why, in a few words (`exit status 1`, `timed out after 5s`, ...).
    pub reason: String,
    /// Where the failing attempt's stderr (with the traceback) is.
    pub stderr_log: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub failed: Option<FailedTask>,
    /// Tasks executed / cloned from the origin run.
    pub executed: usize,
    pub cloned: usize,
    /// Set when a signal stopped the run (its status is then `killed`).
    pub interrupted: Option<Interruption>,
}

/// A run stopped by SIGINT or SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interruption {
    pub signal: i32,
    /// Tasks that were running and were killed.
    pub killed: usize,
}

/// A run that could not be started or recorded (as opposed to a run whose step
/// failed, which is a [`RunReport`] with status `failed`).
#[derive(Debug)]
pub enum SchedulerError {
    Store(StoreError),
    Setup(String),
}

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedulerError::Store(err) => write!(f, "{err}"),
            SchedulerError::Setup(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for SchedulerError {}

impl From<StoreError> for SchedulerError {
    fn from(err: StoreError) -> Self {
        SchedulerError::Store(err)
    }
}

/// Runs a flow from its start step in a new run.
pub fn run(plan: &LocalPlan, options: &RunOptions) -> Result<RunReport, SchedulerError> {
    engine::execute(plan, options, None)
}

/// Runs a flow in a new run that reuses the succeeded tasks of `resume.origin_run_id`
/// before the restart step.
pub fn resume(
    plan: &LocalPlan,
    options: &RunOptions,
    resume: &ResumeOptions,
) -> Result<RunReport, SchedulerError> {
    engine::execute(plan, options, Some(resume))
}

/// Finds the `flowc-shim` binary: beside `current_exe` (where cargo and the release
/// archives put it), else `$FLOWC_SHIM`, else on `PATH`.
pub fn locate_shim(
    current_exe: Option<&Path>,
    env: Option<&std::ffi::OsStr>,
    path_var: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    let name = "flowc-shim";
    if let Some(dir) = current_exe.and_then(Path::parent) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    if let Some(env) = env.filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(env));
    }
    path_var.and_then(|paths| {
        std::env::split_paths(paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_beside_the_executable_wins() {
        let dir = std::env::temp_dir().join(format!("flowc-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("flowc-shim"), b"").unwrap();
        let exe = dir.join("flowc");
        let found = locate_shim(Some(&exe), Some("/env/shim".as_ref()), None);
        assert_eq!(found, Some(dir.join("flowc-shim")));
        let elsewhere = dir.join("sub").join("flowc");
        let found = locate_shim(Some(&elsewhere), Some("/env/shim".as_ref()), None);
        assert_eq!(found, Some(PathBuf::from("/env/shim")));
        let found = locate_shim(Some(&elsewhere), None, Some(dir.as_os_str()));
        assert_eq!(found, Some(dir.join("flowc-shim")));
        assert_eq!(locate_shim(Some(&elsewhere), Some("".as_ref()), None), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
