//! The scheduling loop: a queue of ready tasks, the running ones, the joins waiting
//! for inputs; each finished task's outcome decides what is queued next. The loop
//! blocks on one channel (a task process ended, a signal arrived) and wakes on its own
//! only for a deadline (`@timeout`, a delayed retry, the grace given to killed tasks).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use flowc_ir::{LocalPlan, PlanStep, PlanTransition};

use super::child::{self, Event, Exited, Launch, Reaper, Signals};
use super::progress::{format_duration, Progress, TaskLabel};
use super::resume::{self, Origin};
use super::setup;
use super::{FailedTask, Interruption, ResumeOptions, RunOptions, RunReport, SchedulerError};
use crate::store::{
    hash_bytes, now_unix_ms, AttemptRecord, AttemptStatus, CodePackageRef, FlowName, LocalStore,
    LogStream, MetadataStore, ParentTask, RunId, RunSpec, RunStatus, StoreError, TaskId, TaskMeta,
    TaskPath, TaskStatus,
};
use crate::task::zygote::Zygote;
use crate::task::{read_outcome, StepStatus, TaskOutcome, Transition, PARAMETERS_STEP};

/// Joins with more inputs than this get them through `--input-paths-file`, keeping
/// command lines far below the system's limit.
const INPUT_PATHS_INLINE_MAX: usize = 64;

/// How long an interrupted run waits for its killed tasks' processes to be reaped and
/// their output drained before recording them as killed regardless. SIGKILL leaves
/// nothing to wait for, except a process that escaped its group and holds the pipes.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The key of the `init` process among the running ones.
const INIT_KEY: u64 = u64::MAX;

/// One open split around a task: the branch or foreach task that opened it, how many
/// tasks it started and which one this task descends from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    split_step: String,
    split_task: String,
    width: u64,
    index: u64,
}

/// A task to start (or restart, for a retry).
#[derive(Debug, Clone)]
struct Pending {
    step: String,
    /// Set once the task has an id (on first start, or when it is a retry).
    task_id: Option<TaskId>,
    parents: Vec<ParentTask>,
    split_index: Option<u64>,
    frames: Vec<Frame>,
    attempt: u32,
    not_before: Option<Instant>,
}

impl Pending {
    fn label(&self) -> TaskLabel<'_> {
        TaskLabel {
            step: &self.step,
            split: self
                .split_index
                .zip(self.frames.last().map(|frame| frame.width)),
        }
    }
}

struct Running {
    task: Pending,
    task_id: TaskId,
    pid: u32,
    started: Instant,
    deadline: Option<Instant>,
    timeout: Option<u64>,
    timed_out: bool,
    stderr_log: PathBuf,
}

/// Inputs of one join instance as they arrive, by position in the split.
struct JoinWait {
    width: u64,
    arrivals: BTreeMap<u64, ParentTask>,
    frames: Vec<Frame>,
}

/// A run being stopped by a signal.
struct Interrupt {
    signal: i32,
    /// When to stop waiting for the killed processes.
    give_up_at: Instant,
    /// Tasks whose attempt was recorded as killed.
    killed: usize,
}

struct Engine<'a> {
    plan: &'a LocalPlan,
    options: &'a RunOptions,
    store: LocalStore,
    flow: FlowName,
    run_id: RunId,
    origin: Option<Origin>,
    /// What every task runs: `--code-package HASH --package-entry ENTRY`.
    package: CodePackageRef,
    /// `--python` for every task: the real interpreter, resolved once.
    python: OsString,
    /// The warm interpreter the tasks fork from, when it started.
    zygote: Option<Zygote>,
    next_task_id: u64,
    queue: VecDeque<Pending>,
    running: HashMap<u64, Running>,
    /// The `init` process while it runs.
    init_pid: Option<u32>,
    next_key: u64,
    joins: BTreeMap<(String, String), JoinWait>,
    events: Sender<Event>,
    inbox: Receiver<Event>,
    /// Kept for its lifetime: dropping it stops forwarding signals.
    signals: Option<Signals>,
    interrupt: Option<Interrupt>,
    progress: Progress,
    reaper: Reaper,
    failed: Option<FailedTask>,
    executed: usize,
    cloned: usize,
}

pub(super) fn execute(
    plan: &LocalPlan,
    options: &RunOptions,
    resume_from: Option<&ResumeOptions>,
) -> Result<RunReport, SchedulerError> {
    let flow = FlowName::new(&plan.flow)
        .map_err(|err| SchedulerError::Setup(format!("flow `{}`: {err}", plan.flow)))?;
    let flow_file = std::path::absolute(&options.flow_file).map_err(|err| {
        SchedulerError::Setup(format!(
            "cannot resolve `{}`: {err}",
            options.flow_file.display()
        ))
    })?;
    let source = fs::read(&flow_file).map_err(|err| {
        SchedulerError::Setup(format!("cannot read `{}`: {err}", flow_file.display()))
    })?;
    // From here on a Ctrl-C is the scheduler's to handle: one that arrives while the run
    // is being set up is acted on as soon as the run exists.
    let (events, inbox) = mpsc::channel();
    let signals = match Signals::forward(events.clone()) {
        Ok(signals) => Some(signals),
        Err(err) => {
            say(&format!(
                "flowc: cannot handle Ctrl-C ({err}); an interrupted run stays `running`"
            ));
            None
        }
    };
    let python = setup::resolve_python(options.python.as_deref()).map_err(SchedulerError::Setup)?;
    let store = LocalStore::open_or_create(&options.datastore_root)?;
    let origin = match resume_from {
        Some(resume) => Some(resume::read_origin(
            &store,
            plan,
            &flow,
            &resume.origin_run_id,
            resume.step.as_deref(),
        )?),
        None => None,
    };
    // A resume runs the current code (the point of resuming after a fix), so it gets a
    // package of its own, like any run.
    let package = setup::code_package(&store, &flow, &flow_file).map_err(SchedulerError::Setup)?;
    let spec = RunSpec {
        parameters: match &origin {
            Some(origin) => origin.parameters.clone(),
            None => options.parameters.clone(),
        },
        source_sha256: hash_bytes(&source).to_hex(),
        flow_ir: options.flow_ir.clone(),
        origin_run_id: origin.as_ref().map(|o| o.run_id.clone()),
        tags: dedup_tags(&options.tags),
        user: crate::store::current_user(),
    };
    let mut meta = store.create_run(&flow, spec)?;
    meta.code_package = Some(package.reference.clone());
    store.write_run(&meta)?;
    let run_id = meta.run_id.clone();
    if let Some(file) = &options.run_id_file {
        fs::write(file, run_id.as_str()).map_err(|err| {
            SchedulerError::Setup(format!("cannot write `{}`: {err}", file.display()))
        })?;
    }
    let next_task_id = origin.as_ref().map_or(1, |o| o.max_task_id + 1);
    let mut engine = Engine {
        plan,
        options,
        store,
        flow,
        run_id,
        origin,
        package: package.reference,
        python,
        zygote: None,
        next_task_id,
        queue: VecDeque::new(),
        running: HashMap::new(),
        init_pid: None,
        next_key: 0,
        joins: BTreeMap::new(),
        events,
        inbox,
        signals,
        interrupt: None,
        progress: Progress::new(plan.steps.iter().map(|s| s.name.clone()).collect()),
        reaper: Reaper::start(),
        failed: None,
        executed: 0,
        cloned: 0,
    };
    engine.announce();
    if options.warm_interpreter {
        engine.zygote = setup::start_zygote(&engine.python, &package.flow_file);
        if let Some(zygote) = &engine.zygote {
            // The zygote knows the interpreter it runs; tasks that fall back to starting
            // Python start that one.
            let executable = &zygote.info().executable;
            if executable.is_absolute() {
                engine.python = executable.clone().into_os_string();
            }
        }
    }
    let status = engine.run_all();
    engine.finish(meta, status)
}

impl Engine<'_> {
    fn announce(&self) {
        let mut line = format!(
            "flowc: run {} of {} (datastore {})",
            self.run_id,
            self.plan.flow,
            self.store.root().display()
        );
        if let Some(origin) = &self.origin {
            line.push_str(&format!(
                ", resuming run {} from step `{}`",
                origin.run_id, origin.restart_step
            ));
        }
        say(&line);
    }

    /// New tasks may start: nothing failed and no signal arrived.
    fn accepting(&self) -> bool {
        self.failed.is_none() && self.interrupt.is_none()
    }

    /// Stores the parameters, then runs every task. Returns the run's final status.
    fn run_all(&mut self) -> RunStatus {
        // A signal that arrived while the warm interpreter was starting.
        if let Some(signal) = self.signals.as_ref().and_then(Signals::received) {
            self.on_signal(signal);
            return RunStatus::Killed;
        }
        if let Err(reason) = self.parameters() {
            if self.interrupt.is_some() {
                return RunStatus::Killed;
            }
            self.fail_setup(PARAMETERS_STEP, reason);
            return RunStatus::Failed;
        }
        let start = Pending {
            step: self.plan.start_step.clone(),
            task_id: None,
            parents: Vec::new(),
            split_index: None,
            frames: Vec::new(),
            attempt: 0,
            not_before: None,
        };
        self.enqueue(start);
        self.event_loop();
        if self.interrupt.is_some() {
            return RunStatus::Killed;
        }
        if self.failed.is_none() {
            let stuck = self.joins.iter().next().map(|((join, _), wait)| {
                let reason = format!(
                    "join step `{join}` got {} of its {} inputs",
                    wait.arrivals.len(),
                    wait.width
                );
                (join.clone(), reason)
            });
            if let Some((join, reason)) = stuck {
                self.fail_setup(&join, reason);
            }
        }
        if self.failed.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        }
    }

    /// `<run>/_parameters/0`: cloned from the origin run on a resume (when the origin
    /// got that far), else made by `flowc-shim init`.
    fn parameters(&mut self) -> Result<(), String> {
        let path = crate::task::parameters_task(&self.flow, &self.run_id);
        let mut params = self.options.parameters.clone();
        if let Some(origin) = &self.origin {
            let from = crate::task::parameters_task(&self.flow, &origin.run_id);
            let stored = self
                .store
                .read_task(&from)
                .is_ok_and(|task| task.status == TaskStatus::Succeeded);
            if stored {
                return self
                    .store
                    .clone_task(&from, &self.run_id)
                    .map(|_| ())
                    .map_err(|err| {
                        format!(
                            "cannot reuse the parameters of run {}: {err}",
                            origin.run_id
                        )
                    });
            }
            // The origin was stopped before its parameters were stored: store them
            // again from the values it recorded.
            params = origin.parameters.clone();
        }
        let params = serde_json::Value::Object(params.into_iter().collect());
        let mut argv: Vec<OsString> = vec![
            self.options.shim.clone().into(),
            "init".into(),
            "--flow".into(),
            self.plan.flow.clone().into(),
            "--run-id".into(),
            self.run_id.as_str().into(),
            "--datastore-root".into(),
            self.store.root().into(),
            "--params-json".into(),
            params.to_string().into(),
        ];
        self.push_common(&mut argv);
        let (stdout_log, stderr_log) = self.log_paths(&path, 0);
        let launch = Launch {
            key: INIT_KEY,
            argv,
            prefix: format!("{}/{}/{}", self.run_id, PARAMETERS_STEP, path.task_id),
            stdout_log,
            stderr_log: stderr_log.clone(),
            prepare_logs: self.prepare_logs(&path),
        };
        let pid = child::spawn(launch, self.events.clone())
            .map_err(|err| format!("cannot start `{}`: {err}", self.options.shim.display()))?;
        self.reaper.watch(pid);
        self.init_pid = Some(pid);
        let exited = loop {
            let event = match &self.interrupt {
                Some(interrupt) => self
                    .inbox
                    .recv_timeout(
                        interrupt
                            .give_up_at
                            .saturating_duration_since(Instant::now()),
                    )
                    .ok(),
                None => self.inbox.recv().ok(),
            };
            match event {
                Some(Event::Exited(exited)) if exited.key == INIT_KEY => break Some(exited),
                Some(Event::Exited(_)) => {}
                Some(Event::Signal(signal)) => self.on_signal(signal),
                None => break None,
            }
        };
        self.init_pid = None;
        self.reaper.forget(pid);
        let Some(exited) = exited else {
            // Killed, and its output is still held open by something that escaped.
            self.record_killed(&path, &[], 0, None, None);
            return Err("the parameters task was killed".to_owned());
        };
        let (code, signal) = match &exited.status {
            Ok(status) => (status.code(), signal_of(status)),
            Err(_) => (None, None),
        };
        if self.interrupt.is_some() && code != Some(0) {
            self.record_killed(&path, &[], 0, code, signal);
            return Err("the parameters task was killed".to_owned());
        }
        match exited.status {
            Ok(status) if status.success() => Ok(()),
            Ok(_) => Err(format!(
                "storing the parameters failed ({}); see {}",
                self.attempt_reason(&path, 0, code, signal),
                stderr_log.display()
            )),
            Err(err) => Err(format!("cannot wait for the parameters task: {err}")),
        }
    }

    /// `--code-package HASH --package-entry ENTRY`: what every process of the run runs.
    fn push_code(&self, argv: &mut Vec<OsString>) {
        argv.push("--code-package".into());
        argv.push(self.package.hash.to_hex().into());
        argv.push("--package-entry".into());
        argv.push(self.package.entry.clone().into());
    }

    /// The options every `flowc-shim` process of the run gets: the code package (unless
    /// the plan's command already put it in place of its `--flow-file`), the resolved
    /// interpreter and the zygote.
    fn push_common(&self, argv: &mut Vec<OsString>) {
        if !argv.iter().any(|word| word == "--code-package") {
            self.push_code(argv);
        }
        argv.push("--python".into());
        argv.push(self.python.clone());
        if let Some(zygote) = &self.zygote {
            argv.push("--zygote".into());
            argv.push(zygote.socket_path().into());
        }
    }

    fn log_paths(&self, path: &TaskPath, attempt: u32) -> (PathBuf, PathBuf) {
        (
            self.store
                .attempt_log_path(path, attempt, LogStream::Stdout),
            self.store
                .attempt_log_path(path, attempt, LogStream::Stderr),
        )
    }

    /// Makes the task's directory for its logs, on the task's output thread.
    fn prepare_logs(&self, path: &TaskPath) -> Box<dyn FnOnce() -> std::io::Result<()> + Send> {
        let store = self.store.clone();
        let path = path.clone();
        Box::new(move || {
            store
                .create_task_dir(&path)
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
    }

    fn enqueue(&mut self, task: Pending) {
        self.progress.queued(&task.step);
        self.queue.push_back(task);
    }

    fn event_loop(&mut self) {
        loop {
            if self.accepting() {
                self.launch_ready();
            }
            if self.running.is_empty() {
                let waiting = self.accepting() && !self.queue.is_empty();
                if !waiting {
                    break;
                }
            }
            let event = match self.next_wakeup() {
                Some(at) => match self
                    .inbox
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(event) => Some(event),
                    Err(RecvTimeoutError::Timeout) => None,
                    // Every sender lives in `self`; this cannot happen while it exists.
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match self.inbox.recv() {
                    Ok(event) => Some(event),
                    Err(_) => break,
                },
            };
            match event {
                Some(Event::Exited(exited)) => self.on_exit(exited),
                Some(Event::Signal(signal)) => self.on_signal(signal),
                None => {}
            }
            self.enforce_timeouts();
            if self
                .interrupt
                .as_ref()
                .is_some_and(|i| i.give_up_at <= Instant::now())
            {
                self.abandon_running();
                break;
            }
        }
    }

    /// The next moment the loop must act without an event: a running task's
    /// `@timeout`, a delayed retry becoming due, the end of an interrupted run's grace.
    /// `None`: only an event can change anything.
    fn next_wakeup(&self) -> Option<Instant> {
        let now = Instant::now();
        let retries = self
            .queue
            .iter()
            .filter(|_| self.accepting())
            .filter_map(|t| t.not_before)
            // A due task waits for a free worker, i.e. for an exit event.
            .filter(|at| *at > now);
        let deadlines = self
            .running
            .values()
            .filter(|r| !r.timed_out)
            .filter_map(|r| r.deadline);
        let grace = self.interrupt.as_ref().map(|i| i.give_up_at);
        retries.chain(deadlines).chain(grace).min()
    }

    /// Stops the run on SIGINT or SIGTERM: nothing new starts, every running task's
    /// process group is killed (a task forked from the zygote dies with its shim's
    /// connection, and with the zygote, which goes too). A second signal stops waiting
    /// for the killed processes.
    fn on_signal(&mut self, signal: i32) {
        if let Some(interrupt) = &mut self.interrupt {
            interrupt.give_up_at = Instant::now();
            return;
        }
        let running = self.running.len() + usize::from(self.init_pid.is_some());
        say(&format!(
            "flowc: {} received: stopping run {}, killing {running} running task{}",
            child::signal_name(signal),
            self.run_id,
            if running == 1 { "" } else { "s" }
        ));
        for running in self.running.values() {
            child::kill_group(running.pid);
        }
        if let Some(pid) = self.init_pid {
            child::kill_group(pid);
        }
        // Closing its lifeline makes the zygote kill every task it forked and exit.
        self.zygote = None;
        self.interrupt = Some(Interrupt {
            signal,
            give_up_at: Instant::now() + KILL_GRACE,
            killed: 0,
        });
    }

    /// Records the tasks still running when an interrupted run stops waiting for them.
    fn abandon_running(&mut self) {
        let running: Vec<Running> = self.running.drain().map(|(_, r)| r).collect();
        for running in running {
            if let Ok(path) = self.task_path(&running.task.step, &running.task_id) {
                self.record_killed(
                    &path,
                    &running.task.parents,
                    running.task.attempt,
                    None,
                    None,
                );
            }
            self.progress.failed(&running.task.label(), "killed");
        }
    }

    /// Marks an attempt ended by the interruption as `killed` and its task as failed,
    /// unless the shim finished recording it first.
    fn record_killed(
        &mut self,
        path: &TaskPath,
        parents: &[ParentTask],
        attempt: u32,
        code: Option<i32>,
        signal: Option<i32>,
    ) {
        let ending = Ending {
            code,
            signal,
            status: AttemptStatus::Killed,
            retries_left: false,
        };
        if let Err(err) = self.reconcile(path, parents, attempt, &ending) {
            say(&format!(
                "flowc: cannot record task {path} as killed: {err}"
            ));
        }
        if let Some(interrupt) = &mut self.interrupt {
            interrupt.killed += 1;
        }
    }

    fn task_path(&self, step: &str, task_id: &TaskId) -> Result<TaskPath, SchedulerError> {
        Ok(TaskPath::new(
            self.flow.clone(),
            self.run_id.clone(),
            resume::step_name(step)?,
            task_id.clone(),
        ))
    }

    /// Why an attempt failed, in a few words. The shim's own exit status says only
    /// "the step failed" (1); the attempt's record says how the step's process ended,
    /// which may be a signal when the process ran apart from the shim (forked from the
    /// zygote).
    fn attempt_reason(
        &self,
        path: &TaskPath,
        attempt: u32,
        code: Option<i32>,
        signal: Option<i32>,
    ) -> String {
        if code == Some(1) {
            let recorded = self.store.read_task(path).ok().and_then(|meta| {
                meta.attempts
                    .into_iter()
                    .find(|r| r.attempt == attempt && r.status != AttemptStatus::Running)
            });
            if let Some(record) = recorded {
                if record.exit_code.is_some() || record.signal.is_some() {
                    return describe_exit(record.exit_code, record.signal);
                }
            }
        }
        describe_exit(code, signal)
    }

    /// Starts queued tasks while workers are free; clones reusable ones right away.
    fn launch_ready(&mut self) {
        let now = Instant::now();
        let mut index = 0;
        while index < self.queue.len() && self.accepting() {
            let ready = self.queue[index].not_before.is_none_or(|at| at <= now);
            if !ready {
                index += 1;
                continue;
            }
            if let Some(task) = self.take_clone_candidate(index) {
                self.clone_from_origin(task);
                continue;
            }
            if self.running.len() >= self.options.max_workers.max(1) {
                index += 1;
                continue;
            }
            if let Some(task) = self.queue.remove(index) {
                self.start(task);
            }
        }
    }

    /// Removes and returns the queued task at `index` when the origin run has a task to
    /// reuse for it.
    fn take_clone_candidate(&mut self, index: usize) -> Option<Pending> {
        let origin = self.origin.as_ref()?;
        let task = self.queue.get(index)?;
        if task.attempt > 0 || origin.rerun.contains(&task.step) {
            return None;
        }
        let key = (task.step.clone(), task.parents.clone(), task.split_index);
        origin.reusable.contains_key(&key).then_some(())?;
        self.queue.remove(index)
    }

    fn clone_from_origin(&mut self, mut task: Pending) {
        let Some(origin) = &self.origin else {
            return;
        };
        let key = (task.step.clone(), task.parents.clone(), task.split_index);
        let Some(task_id) = origin.reusable.get(&key).cloned() else {
            return;
        };
        let origin_run = origin.run_id.clone();
        let from = match resume::step_name(&task.step) {
            Ok(step) => TaskPath::new(self.flow.clone(), origin_run.clone(), step, task_id.clone()),
            Err(err) => return self.fail_setup(&task.step, err.to_string()),
        };
        let cloned = self
            .store
            .clone_task(&from, &self.run_id)
            .map_err(|err| err.to_string())
            .and_then(|meta| {
                let manifest = self
                    .store
                    .read_manifest(&meta.path)
                    .map_err(|err| err.to_string())?;
                read_outcome(&self.store, &self.flow, &manifest)?
                    .ok_or_else(|| format!("task {from} has no outcome record"))
            });
        match cloned {
            Ok(outcome) => {
                self.cloned += 1;
                self.progress.cloned(&task.label(), origin_run.as_str());
                task.task_id = Some(task_id.clone());
                self.advance(&task, &task_id, &outcome);
            }
            Err(err) => self.fail_setup(&task.step, format!("cannot reuse task {from}: {err}")),
        }
    }

    fn start(&mut self, mut task: Pending) {
        let Some(step) = self.plan.step(&task.step) else {
            let reason = format!("the plan has no step `{}`", task.step);
            return self.fail_setup(&task.step.clone(), reason);
        };
        let task_id = match &task.task_id {
            Some(id) => id.clone(),
            None => {
                let id = self.next_task_id;
                self.next_task_id += 1;
                match TaskId::new(&id.to_string()) {
                    Ok(id) => id,
                    Err(err) => return self.fail_setup(&task.step.clone(), err.to_string()),
                }
            }
        };
        task.task_id = Some(task_id.clone());
        let path = match resume::step_name(&task.step) {
            Ok(name) => TaskPath::new(
                self.flow.clone(),
                self.run_id.clone(),
                name,
                task_id.clone(),
            ),
            Err(err) => return self.fail_setup(&task.step.clone(), err.to_string()),
        };
        let argv = match self.command(step, &task, &task_id, &path) {
            Ok(argv) => argv,
            Err(err) => return self.fail_setup(&task.step.clone(), err),
        };
        let (stdout_log, stderr_log) = self.log_paths(&path, task.attempt);
        let key = self.next_key;
        self.next_key += 1;
        let launch = Launch {
            key,
            argv,
            prefix: format!("{}/{}/{}", self.run_id, task.step, task_id),
            stdout_log,
            stderr_log: stderr_log.clone(),
            prepare_logs: self.prepare_logs(&path),
        };
        match child::spawn(launch, self.events.clone()) {
            Ok(pid) => {
                self.reaper.watch(pid);
                let detail = if task.attempt > 0 {
                    format!("running (retry {})", task.attempt)
                } else {
                    "running".to_owned()
                };
                self.progress.started(&task.label(), &detail);
                let now = Instant::now();
                self.running.insert(
                    key,
                    Running {
                        deadline: step
                            .timeout_seconds
                            .map(|secs| now + Duration::from_secs(secs)),
                        timeout: step.timeout_seconds,
                        task,
                        task_id,
                        pid,
                        started: now,
                        timed_out: false,
                        stderr_log,
                    },
                );
            }
            Err(err) => {
                let reason = format!("cannot start `{}`: {err}", self.options.shim.display());
                self.fail_setup(&task.step.clone(), reason);
            }
        }
    }

    /// The step's command from the plan with its placeholders filled in, plus the
    /// run-wide options.
    fn command(
        &self,
        step: &PlanStep,
        task: &Pending,
        task_id: &TaskId,
        path: &TaskPath,
    ) -> Result<Vec<OsString>, String> {
        let inputs: Vec<String> = task
            .parents
            .iter()
            .map(|p| format!("{}/{}/{}", self.run_id, p.step, p.task_id))
            .collect();
        let inputs_file = if inputs.len() > INPUT_PATHS_INLINE_MAX {
            let dir = self
                .store
                .create_task_dir(path)
                .map_err(|err| err.to_string())?;
            let file = dir.join(format!("input-paths.{}.txt", task.attempt));
            let mut text = inputs.join("\n");
            text.push('\n');
            fs::write(&file, text)
                .map_err(|err| format!("cannot write `{}`: {err}", file.display()))?;
            Some(file)
        } else {
            None
        };
        let mut argv: Vec<OsString> = Vec::with_capacity(step.command.len() + 8);
        let mut words = step.command.iter().enumerate().peekable();
        while let Some((position, word)) = words.next() {
            if position == 0 {
                argv.push(self.options.shim.clone().into());
                continue;
            }
            if word == "--input-paths" {
                if let Some(file) = &inputs_file {
                    argv.push("--input-paths-file".into());
                    argv.push(file.clone().into());
                    words.next();
                    continue;
                }
            }
            if word == "--split-index" && task.split_index.is_none() {
                words.next();
                continue;
            }
            // What runs is the code package, as in a container; the plan names the flow
            // file, which the package was built from.
            if word == "--flow-file" {
                self.push_code(&mut argv);
                words.next();
                continue;
            }
            argv.push(match word.as_str() {
                "{datastore_root}" => self.store.root().into(),
                other => other
                    .replace("{run_id}", self.run_id.as_str())
                    .replace("{task_id}", task_id.as_str())
                    .replace("{input_paths}", &inputs.join(","))
                    .replace(
                        "{split_index}",
                        &task.split_index.map(|i| i.to_string()).unwrap_or_default(),
                    )
                    .replace("{retry_count}", &task.attempt.to_string())
                    .into(),
            });
        }
        for tag in &self.options.tags {
            argv.push("--tag".into());
            argv.push(tag.into());
        }
        if let Some(origin) = &self.origin {
            argv.push("--origin-run-id".into());
            argv.push(origin.run_id.as_str().into());
        }
        self.push_common(&mut argv);
        Ok(argv)
    }

    /// Kills the process group of every task whose `@timeout` expired.
    fn enforce_timeouts(&mut self) {
        let now = Instant::now();
        for running in self.running.values_mut() {
            if running.timed_out || running.deadline.is_none_or(|at| at > now) {
                continue;
            }
            running.timed_out = true;
            child::kill_group(running.pid);
            let secs = running.timeout.unwrap_or_default();
            self.progress.note(
                &running.task.label(),
                &format!("timed out after {secs}s: killing its processes"),
            );
        }
    }

    fn on_exit(&mut self, exited: Exited) {
        let Some(running) = self.running.remove(&exited.key) else {
            return;
        };
        self.reaper.forget(running.pid);
        self.executed += 1;
        let (code, signal) = match &exited.status {
            Ok(status) => (status.code(), signal_of(status)),
            Err(_) => (None, None),
        };
        let task = running.task;
        let task_id = running.task_id;
        let step = self.plan.step(&task.step);
        let max_retries = step.and_then(|s| s.retry.as_ref()).map_or(0, |r| r.times);
        let retries_left = task.attempt < max_retries;
        let path = match self.task_path(&task.step, &task_id) {
            Ok(path) => path,
            Err(err) => return self.fail_setup(&task.step, err.to_string()),
        };
        if self.interrupt.is_some() && (running.timed_out || code != Some(0)) {
            self.record_killed(&path, &task.parents, task.attempt, code, signal);
            self.progress.failed(&task.label(), "killed");
            return;
        }
        let ending = Ending {
            code,
            signal,
            status: if running.timed_out {
                AttemptStatus::TimedOut
            } else {
                AttemptStatus::Failed
            },
            retries_left,
        };
        if let Err(err) = self.reconcile(&path, &task.parents, task.attempt, &ending) {
            return self.fail_setup(&task.step, format!("cannot record task {path}: {err}"));
        }
        let elapsed = format_duration(running.started.elapsed());
        let succeeded = !running.timed_out && code == Some(0);
        if succeeded {
            let outcome = self
                .store
                .read_manifest(&path)
                .map_err(|err| err.to_string())
                .and_then(|manifest| read_outcome(&self.store, &self.flow, &manifest))
                .and_then(|found| found.ok_or_else(|| "no outcome record".to_owned()));
            match outcome {
                Ok(outcome) => {
                    let detail = if outcome.status == StepStatus::Caught {
                        format!("done in {elapsed} (exception caught by @catch)")
                    } else {
                        format!("done in {elapsed}")
                    };
                    self.progress.succeeded(&task.label(), &detail);
                    // A task that finished while the run was being stopped is kept
                    // (a resume reuses it); what follows it is left to the resume.
                    if self.interrupt.is_none() {
                        self.advance(&task, &task_id, &outcome);
                    }
                }
                Err(err) => {
                    let reason = format!("its outcome cannot be read: {err}");
                    self.fail_task(&task, &task_id, reason, Some(running.stderr_log));
                }
            }
            return;
        }
        let reason = if running.timed_out {
            format!("timed out after {}s", running.timeout.unwrap_or_default())
        } else {
            match &exited.status {
                Ok(_) => self.attempt_reason(&path, task.attempt, code, signal),
                Err(err) => format!("cannot be waited for: {err}"),
            }
        };
        if retries_left && self.failed.is_none() {
            let delay = step
                .and_then(|s| s.retry.as_ref())
                .map_or(0, |r| u64::from(r.minutes_between) * 60);
            let detail = if delay > 0 {
                format!(
                    "failed ({reason}); retry {} of {max_retries} in {delay}s",
                    task.attempt + 1
                )
            } else {
                format!(
                    "failed ({reason}); retry {} of {max_retries}",
                    task.attempt + 1
                )
            };
            self.progress.note(&task.label(), &detail);
            let mut retry = task;
            retry.task_id = Some(task_id);
            retry.attempt += 1;
            retry.not_before = Some(Instant::now() + Duration::from_secs(delay));
            self.queue.push_back(retry);
            return;
        }
        self.fail_task(&task, &task_id, reason, Some(running.stderr_log));
    }

    /// Makes `task.json` tell how the attempt ended when the shim could not (it was
    /// killed, or never started). A timeout or a kill overrides what the shim recorded
    /// only while the attempt is still recorded as running or as failed.
    fn reconcile(
        &self,
        path: &TaskPath,
        parents: &[ParentTask],
        attempt: u32,
        ending: &Ending,
    ) -> Result<(), StoreError> {
        let mut meta = match self.store.read_task(path) {
            Ok(meta) => meta,
            Err(StoreError::NotFound { .. }) => TaskMeta::new(path.clone(), parents.to_vec()),
            Err(err) => return Err(err),
        };
        let recorded = meta
            .attempts
            .iter()
            .find(|r| r.attempt == attempt)
            .map(|r| r.status);
        let keep = match (recorded, ending.status) {
            (None | Some(AttemptStatus::Running), _) => false,
            (Some(AttemptStatus::Succeeded), _) => true,
            (Some(_), AttemptStatus::TimedOut | AttemptStatus::Killed) => false,
            (Some(_), _) => true,
        };
        if keep {
            return Ok(());
        }
        let previous = meta.attempts.iter().find(|r| r.attempt == attempt);
        let started = previous.map_or_else(now_unix_ms, |r| r.started_at_unix_ms);
        // The shim's record knows how the step's own process ended; the scheduler
        // knows only the shim's.
        let (exit_code, signal) = match previous {
            Some(r) if r.exit_code.is_some() || r.signal.is_some() => (r.exit_code, r.signal),
            _ => (ending.code, ending.signal),
        };
        meta.attempts.retain(|r| r.attempt != attempt);
        meta.attempts.push(AttemptRecord {
            attempt,
            status: ending.status,
            started_at_unix_ms: started,
            finished_at_unix_ms: Some(now_unix_ms()),
            exit_code,
            signal,
        });
        meta.attempts.sort_by_key(|r| r.attempt);
        meta.status = if ending.retries_left {
            TaskStatus::Running
        } else {
            TaskStatus::Failed
        };
        self.store.write_task(&meta)
    }

    /// Queues what follows a succeeded task.
    fn advance(&mut self, task: &Pending, task_id: &TaskId, outcome: &TaskOutcome) {
        let Some(step) = self.plan.step(&task.step) else {
            return;
        };
        let parent = match resume::step_name(&task.step) {
            Ok(name) => ParentTask {
                step: name,
                task_id: task_id.clone(),
            },
            Err(err) => return self.fail_setup(&task.step, err.to_string()),
        };
        let next = match (&outcome.transition, outcome.status) {
            (Some(transition), _) => Next::from_outcome(transition),
            // `@catch` handled an exception: the step's own `self.next` never ran, so the
            // flow goes on along the static transition, as in Metaflow.
            (None, StepStatus::Caught) => match Next::from_plan(&step.next) {
                Ok(next) => next,
                Err(kind) => {
                    let reason = format!(
                        "its exception was caught by @catch, but a {kind} cannot go on \
                         without the value its `self.next(...)` call needs"
                    );
                    return self.fail_followup(task, task_id, reason);
                }
            },
            (None, _) => Next::End,
        };
        match next {
            Next::End => {}
            Next::Linear(targets) => {
                for target in targets {
                    self.arrive(&target, &parent, task.frames.clone(), None);
                }
            }
            Next::Branch(targets) => {
                let width = targets.len() as u64;
                for (index, target) in (0u64..).zip(targets) {
                    let mut frames = task.frames.clone();
                    frames.push(Frame {
                        split_step: task.step.clone(),
                        split_task: task_id.as_str().to_owned(),
                        width,
                        index,
                    });
                    self.arrive(&target, &parent, frames, None);
                }
            }
            Next::Foreach(target, width) => {
                if width > self.options.max_num_splits {
                    let reason = format!(
                        "its foreach made {width} splits, more than --max-num-splits {} \
                         (raise --max-num-splits if so many tasks are intended)",
                        self.options.max_num_splits
                    );
                    return self.fail_followup(task, task_id, reason);
                }
                for index in 0..width {
                    let mut frames = task.frames.clone();
                    frames.push(Frame {
                        split_step: task.step.clone(),
                        split_task: task_id.as_str().to_owned(),
                        width,
                        index,
                    });
                    self.arrive(&target, &parent, frames, Some(index));
                }
            }
        }
    }

    /// A task of `target` gets `parent` as input: queued at once, or, for a join, noted
    /// until every input of its split is there.
    fn arrive(
        &mut self,
        target: &str,
        parent: &ParentTask,
        mut frames: Vec<Frame>,
        split_index: Option<u64>,
    ) {
        let Some(step) = self.plan.step(target) else {
            let reason = format!("the plan has no step `{target}`");
            return self.fail_setup(target, reason);
        };
        let Some(split) = &step.joins else {
            self.enqueue(Pending {
                step: target.to_owned(),
                task_id: None,
                parents: vec![parent.clone()],
                split_index,
                frames,
                attempt: 0,
                not_before: None,
            });
            return;
        };
        let Some(frame) = frames.pop().filter(|f| &f.split_step == split) else {
            let reason = format!(
                "join step `{target}` was reached from task {}/{} outside the split of `{split}` it closes",
                parent.step, parent.task_id
            );
            return self.fail_setup(target, reason);
        };
        let key = (target.to_owned(), frame.split_task.clone());
        let wait = self.joins.entry(key.clone()).or_insert_with(|| JoinWait {
            width: frame.width,
            arrivals: BTreeMap::new(),
            frames: frames.clone(),
        });
        wait.arrivals.insert(frame.index, parent.clone());
        if (wait.arrivals.len() as u64) < wait.width {
            return;
        }
        if let Some(done) = self.joins.remove(&key) {
            self.enqueue(Pending {
                step: target.to_owned(),
                task_id: None,
                parents: done.arrivals.into_values().collect(),
                split_index: None,
                frames: done.frames,
                attempt: 0,
                not_before: None,
            });
        }
    }

    /// Records the failure of a task's last attempt; nothing new starts after it.
    fn fail_task(
        &mut self,
        task: &Pending,
        task_id: &TaskId,
        reason: String,
        log: Option<PathBuf>,
    ) {
        self.progress
            .failed(&task.label(), &format!("failed: {reason}"));
        self.record_failure(task, task_id, reason, log);
    }

    /// Records that a task which succeeded cannot be followed (its foreach is too wide,
    /// its caught exception leaves no transition to take).
    fn fail_followup(&mut self, task: &Pending, task_id: &TaskId, reason: String) {
        self.progress
            .failed_after_success(&task.label(), &format!("failed: {reason}"));
        self.record_failure(task, task_id, reason, None);
    }

    fn record_failure(
        &mut self,
        task: &Pending,
        task_id: &TaskId,
        reason: String,
        log: Option<PathBuf>,
    ) {
        let stderr_log = log.or_else(|| {
            let step = resume::step_name(&task.step).ok()?;
            let path = TaskPath::new(
                self.flow.clone(),
                self.run_id.clone(),
                step,
                task_id.clone(),
            );
            Some(
                self.store
                    .attempt_log_path(&path, task.attempt, LogStream::Stderr),
            )
        });
        if self.failed.is_none() {
            self.failed = Some(FailedTask {
                pathspec: format!("{}/{}/{}", self.run_id, task.step, task_id),
                step: task.step.clone(),
                attempt: task.attempt,
                reason,
                stderr_log,
            });
        }
    }

    /// Records a failure that is not a task's own (the scheduler could not start or
    /// record something).
    fn fail_setup(&mut self, step: &str, reason: String) {
        say(&format!("flowc: step `{step}`: {reason}"));
        if self.failed.is_none() {
            self.failed = Some(FailedTask {
                pathspec: format!("{}/{step}", self.run_id),
                step: step.to_owned(),
                attempt: 0,
                reason,
                stderr_log: None,
            });
        }
    }

    /// Writes the final `run.json`, prints the summary, and builds the report.
    fn finish(
        self,
        mut meta: crate::store::RunMeta,
        status: RunStatus,
    ) -> Result<RunReport, SchedulerError> {
        meta.status = status;
        meta.finished_at_unix_ms = Some(now_unix_ms());
        self.store.write_run(&meta)?;
        let mut text = self.progress.summary();
        let interrupted = self.interrupt.as_ref().map(|i| Interruption {
            signal: i.signal,
            killed: i.killed,
        });
        if let Some(failed) = &self.failed {
            text.push_str(&format!(
                "step `{}` failed (task {}, attempt {}): {}\n",
                failed.step, failed.pathspec, failed.attempt, failed.reason
            ));
            if let Some(log) = &failed.stderr_log {
                text.push_str(&format!(
                    "its output, with the traceback: {}\n",
                    log.display()
                ));
            }
        }
        text.push_str(&format!("run id: {}\n", self.run_id));
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
        Ok(RunReport {
            run_id: self.run_id.as_str().to_owned(),
            status,
            failed: self.failed,
            executed: self.executed,
            cloned: self.cloned,
            interrupted,
        })
    }
}

/// How an attempt ended, as far as the scheduler knows.
struct Ending {
    /// The shim's exit code or signal.
    code: Option<i32>,
    signal: Option<i32>,
    /// What to record when the shim did not record the end itself (or was overruled).
    status: AttemptStatus,
    retries_left: bool,
}

/// Where a succeeded task leads.
enum Next {
    End,
    /// Linear and switch: one task per target, in the same splits.
    Linear(Vec<String>),
    Branch(Vec<String>),
    Foreach(String, u64),
}

impl Next {
    fn from_outcome(transition: &Transition) -> Next {
        match transition {
            Transition::Linear { targets } | Transition::Switch { targets, .. } => {
                Next::Linear(targets.clone())
            }
            Transition::Branch { targets } => Next::Branch(targets.clone()),
            Transition::Foreach {
                targets,
                num_splits,
                ..
            } => match targets.first() {
                Some(target) => Next::Foreach(target.clone(), *num_splits),
                None => Next::End,
            },
        }
    }

    /// The static transition, for a step whose exception `@catch` handled; `Err` names
    /// the kind of transition that needs run-time values.
    fn from_plan(next: &PlanTransition) -> Result<Next, &'static str> {
        match next {
            PlanTransition::End => Ok(Next::End),
            PlanTransition::Linear { to } => Ok(Next::Linear(vec![to.clone()])),
            PlanTransition::Branch { to } => Ok(Next::Branch(to.clone())),
            PlanTransition::Foreach { .. } => Err("foreach"),
            PlanTransition::Switch { .. } => Err("switch"),
        }
    }
}

fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

fn describe_exit(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "killed by signal 9 (SIGKILL)".to_owned(),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended without a status".to_owned(),
    }
}

pub(super) fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}").and_then(|()| err.flush());
}

/// Tags as the run records them: in the order given, each once.
fn dedup_tags(tags: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    tags.iter()
        .filter(|tag| seen.insert(tag.as_str()))
        .cloned()
        .collect()
}
