//! `flowc logs PATH [--stderr] [--follow] [--attempt N]`: what a task printed, as the
//! exact bytes it wrote. `--follow` keeps polling and streams what the task appends
//! until its status is final.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flowc_shim::client::{Client, ClientError, PathSpec, RunSelector};
use flowc_shim::store::{LogStream, RunStatus, TaskMeta, TaskPath, TaskStatus};
use serde::Serialize;

use super::runs::{self, CommonArgs, Format};
use super::{Outcome, Reply, Status, Terminal};

/// How often `--follow` looks for new output and a final status.
const POLL: Duration = Duration::from_millis(200);

/// Print a task's stdout (or stderr).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The task: Flow/RUN/step/TASK, or Flow/RUN/step when the step has one task
    /// (RUN may be `latest`).
    #[arg(value_name = "PATH")]
    path: String,
    /// Print the task's stderr instead of its stdout.
    #[arg(long)]
    stderr: bool,
    /// Keep printing what the task writes until it finishes.
    #[arg(long, conflicts_with = "format")]
    follow: bool,
    /// The attempt to show, counting from 0 [default: the latest].
    #[arg(long, value_name = "N")]
    attempt: Option<u32>,
    #[command(flatten)]
    common: CommonArgs,
}

/// `flowc logs --format json`.
#[derive(Serialize)]
struct LogJson {
    pathspec: String,
    attempt: u32,
    stream: &'static str,
    /// The log as text; bytes that are not UTF-8 are replaced by U+FFFD.
    text: String,
}

pub(crate) fn run(args: &Args, _terminal: &Terminal) -> Reply {
    let client = match runs::open(&args.common) {
        Ok(client) => client,
        Err(outcome) => return outcome.into(),
    };
    let stream = if args.stderr {
        LogStream::Stderr
    } else {
        LogStream::Stdout
    };
    let task = match PathSpec::parse(&args.path)
        .map_err(ClientError::from)
        .and_then(|spec| client.resolve_task(&spec))
    {
        Ok(task) => task,
        Err(err) => return runs::failure(&err).into(),
    };
    let meta = match client.read_task(&task) {
        Ok(meta) => meta,
        Err(err) => return runs::failure(&err).into(),
    };
    if let Some(wanted) = args.attempt {
        if !meta.attempts.iter().any(|a| a.attempt == wanted) {
            let known: Vec<String> = meta
                .attempts
                .iter()
                .map(|a| a.attempt.to_string())
                .collect();
            return fail(&format!(
                "task {task} has no attempt {wanted}; {}",
                if known.is_empty() {
                    "it has not started one yet".to_owned()
                } else {
                    format!("its attempts are: {}", known.join(", "))
                }
            ));
        }
    }
    if args.follow {
        let attempt = args.attempt;
        return Reply::Stream {
            stderr: String::new(),
            producer: Box::new(move |out: &mut dyn Write| {
                follow(&client, &task, attempt, stream, out, POLL)
            }),
        };
    }
    let Some(attempt) = args.attempt.or_else(|| latest_attempt(&meta)) else {
        return fail(&format!("task {task} has not started an attempt yet"));
    };
    let path = client.store().attempt_log_path(&task, attempt, stream);
    match args.common.format {
        Format::Json => {
            let bytes = match read_log(&path) {
                Ok(bytes) => bytes,
                Err(message) => return fail(&message),
            };
            Outcome {
                stdout: runs::to_json(&LogJson {
                    pathspec: task.to_string(),
                    attempt,
                    stream: stream_name(stream),
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                }),
                stderr: String::new(),
                status: Status::Ok,
            }
            .into()
        }
        Format::Text => Reply::Stream {
            stderr: String::new(),
            producer: Box::new(move |out: &mut dyn Write| {
                let mut offset = 0;
                match copy_new(&path, &mut offset, out) {
                    Ok(()) => Ok((Status::Ok, String::new())),
                    Err(CopyError::Write(err)) => Err(err),
                    Err(CopyError::Read(message)) => {
                        Ok((Status::Trouble, format!("error: {message}\n")))
                    }
                }
            }),
        },
    }
}

fn fail(message: &str) -> Reply {
    Outcome::failure(Status::Trouble, format!("error: {message}\n")).into()
}

fn stream_name(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    }
}

fn latest_attempt(meta: &TaskMeta) -> Option<u32> {
    meta.attempts.iter().map(|a| a.attempt).max()
}

/// A log's bytes; an attempt that printed nothing may have no file, which reads as
/// empty.
fn read_log(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(format!("cannot read `{}`: {err}", path.display())),
    }
}

enum CopyError {
    /// Writing to stdout failed (a closed pipe is the caller's business).
    Write(io::Error),
    /// The log could not be read; the message names it.
    Read(String),
}

/// Copies what the file holds beyond `offset` to `out`, advancing `offset`. A file
/// that does not exist yet holds nothing.
fn copy_new(path: &Path, offset: &mut u64, out: &mut dyn Write) -> Result<(), CopyError> {
    let read_error =
        |err: io::Error| CopyError::Read(format!("cannot read `{}`: {err}", path.display()));
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(read_error(err)),
    };
    file.seek(SeekFrom::Start(*offset)).map_err(read_error)?;
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(read_error)?;
        let Some(chunk) = buffer.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        out.write_all(chunk).map_err(CopyError::Write)?;
        *offset += n as u64;
    }
    out.flush().map_err(CopyError::Write)
}

/// Streams a task's log until the task's status is final. Without an explicit
/// `attempt` it follows the latest one, moving on (with a note on stderr) when a retry
/// starts. It also stops when the run is no longer running while the task still reads
/// as running: the process that would have finished it is gone.
fn follow(
    client: &Client,
    task: &TaskPath,
    attempt: Option<u32>,
    stream: LogStream,
    out: &mut dyn Write,
    poll: Duration,
) -> io::Result<(Status, String)> {
    let mut notes = String::new();
    let mut current: Option<(u32, PathBuf)> = None;
    let mut offset = 0u64;
    loop {
        // Read the status before copying: output written before a final status is
        // then certain to be copied in this same round.
        let meta = match client.read_task(task) {
            Ok(meta) => meta,
            Err(err) => return Ok((Status::Trouble, format!("{notes}error: {err}\n"))),
        };
        let wanted = attempt.or_else(|| latest_attempt(&meta));
        if let Some(number) = wanted {
            if current.as_ref().map(|(n, _)| *n) != Some(number) {
                if current.is_some() {
                    notes.push_str(&format!("note: attempt {number} of {task} started\n"));
                }
                let path = client.store().attempt_log_path(task, number, stream);
                current = Some((number, path));
                offset = 0;
            }
        }
        if let Some((_, path)) = &current {
            match copy_new(path, &mut offset, out) {
                Ok(()) => {}
                Err(CopyError::Write(err)) => return Err(err),
                Err(CopyError::Read(message)) => {
                    return Ok((Status::Trouble, format!("{notes}error: {message}\n")))
                }
            }
        }
        if meta.status != TaskStatus::Running {
            return Ok((Status::Ok, notes));
        }
        let run = client.resolve_run(&task.flow, &RunSelector::Id(task.run_id.clone()));
        if let Ok(run) = run {
            if run.status != RunStatus::Running {
                notes.push_str(&format!(
                    "note: run {}/{} is {} but task {task} never finished\n",
                    task.flow,
                    task.run_id,
                    runs::status_word(run.status)
                ));
                return Ok((Status::Ok, notes));
            }
        }
        std::thread::sleep(poll);
    }
}
