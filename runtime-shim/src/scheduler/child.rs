//! Task processes: starting `flowc-shim` in its own process group, copying its output
//! to the attempt's log files and, line by line with a `run/step/task` prefix, to the
//! terminal; killing a whole group; the reaper that kills every group still running if
//! the scheduler itself dies; and the events (a process ended, a signal arrived) the
//! scheduling loop blocks on.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;

use rustix::process::{kill_process_group, Pid, Signal};

/// A process to start.
pub(crate) struct Launch {
    /// The engine's handle for the process; comes back in [`Exited`].
    pub(crate) key: u64,
    pub(crate) argv: Vec<OsString>,
    /// Put before every line of output on the terminal, e.g. `12/train/7`.
    pub(crate) prefix: String,
    pub(crate) stdout_log: PathBuf,
    pub(crate) stderr_log: PathBuf,
    /// Makes the directory of the log files. It runs on the process's output thread,
    /// not the scheduler's: a new directory is made durable with an `fsync`, which
    /// would otherwise hold up the start of every other task.
    pub(crate) prepare_logs: Box<dyn FnOnce() -> io::Result<()> + Send>,
}

/// A process that ended, once all its output has been copied.
pub(crate) struct Exited {
    pub(crate) key: u64,
    pub(crate) status: io::Result<ExitStatus>,
}

/// What wakes the scheduling loop. One channel carries both, so the loop blocks on a
/// single receive instead of polling.
pub(crate) enum Event {
    Exited(Exited),
    /// SIGINT or SIGTERM reached the scheduler.
    Signal(i32),
}

/// Forwards SIGINT and SIGTERM to `events` from a thread of their own, and remembers
/// the first one, so phases that do not read `events` (starting the warm interpreter)
/// can still notice it. Registering replaces the default action (terminating the
/// process): the scheduler then decides how to stop.
pub(crate) struct Signals {
    handle: signal_hook::iterator::Handle,
    first: Arc<AtomicI32>,
}

impl Signals {
    pub(crate) fn forward(events: Sender<Event>) -> io::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let first = Arc::new(AtomicI32::new(0));
        let seen = Arc::clone(&first);
        thread::spawn(move || {
            for signal in signals.forever() {
                let _ = seen.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                if events.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        });
        Ok(Signals { handle, first })
    }

    /// The first signal received so far, if any.
    pub(crate) fn received(&self) -> Option<i32> {
        Some(self.first.load(Ordering::SeqCst)).filter(|&signal| signal != 0)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // Ends the forwarding thread; a signal arriving later is ignored, the run being
        // over.
        self.handle.close();
    }
}

/// A signal's conventional name, for messages.
pub(crate) fn signal_name(signal: i32) -> String {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT".to_owned(),
        signal_hook::consts::SIGTERM => "SIGTERM".to_owned(),
        signal_hook::consts::SIGKILL => "SIGKILL".to_owned(),
        other => format!("signal {other}"),
    }
}

#[derive(Clone, Copy)]
enum Sink {
    Stdout,
    Stderr,
}

impl Sink {
    /// Writes one whole line under the stream's lock, so lines of concurrent tasks never
    /// interleave. A closed terminal must not stop the task: errors are ignored (the log
    /// file still has everything).
    fn write_line(self, line: &[u8]) {
        let _ = match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line).and_then(|()| out.flush())
            }
            Sink::Stderr => {
                let mut out = io::stderr().lock();
                out.write_all(line).and_then(|()| out.flush())
            }
        };
    }
}

/// Starts `launch` and returns its pid. An output thread prepares the log files,
/// copies the process's stdout (a second thread its stderr), then waits for the
/// process and sends [`Exited`] on `events` once both streams reached their end.
pub(crate) fn spawn(launch: Launch, events: Sender<Event>) -> io::Result<u32> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: `@timeout` kills the shim, the interpreter and whatever the
        // step started, and a Ctrl-C meant for the scheduler does not reach it.
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let prefix = format!("[{}] ", launch.prefix).into_bytes();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let Launch {
        key,
        stdout_log,
        stderr_log,
        prepare_logs,
        ..
    } = launch;
    thread::spawn(move || {
        // The pipes hold what the process writes meanwhile.
        let logs = prepare_logs()
            .and_then(|()| Ok((File::create(&stdout_log)?, File::create(&stderr_log)?)));
        let (stdout_log, stderr_log) = match logs {
            Ok((out, err)) => (Some(out), Some(err)),
            Err(err) => {
                let line = format!(
                    "{}flowc: cannot write this task's logs to `{}`: {err}\n",
                    String::from_utf8_lossy(&prefix),
                    stdout_log.display()
                );
                Sink::Stderr.write_line(line.as_bytes());
                (None, None)
            }
        };
        let stderr_pump = stderr.map(|pipe| {
            let prefix = prefix.clone();
            thread::spawn(move || pump(pipe, stderr_log, &prefix, Sink::Stderr))
        });
        if let Some(pipe) = stdout {
            pump(pipe, stdout_log, &prefix, Sink::Stdout);
        }
        if let Some(pump) = stderr_pump {
            let _ = pump.join();
        }
        let status = child.wait();
        let _ = events.send(Event::Exited(Exited { key, status }));
    });
    Ok(pid)
}

/// Copies one pipe to its log file (if there is one) and, prefixed, to the terminal,
/// until the pipe's end.
fn pump(pipe: impl Read, mut log: Option<File>, prefix: &[u8], sink: Sink) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if let Some(file) = &mut log {
            let _ = file.write_all(&line);
        }
        let mut shown = Vec::with_capacity(prefix.len() + line.len() + 1);
        shown.extend_from_slice(prefix);
        shown.extend_from_slice(&line);
        if !shown.ends_with(b"\n") {
            shown.push(b'\n');
        }
        sink.write_line(&shown);
    }
}

/// Sends SIGKILL to the process group `pid` leads.
pub(crate) fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // The group may be gone already; there is nothing else to do then.
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

/// Keeps the list of running process groups in a small `sh` process in a group of its
/// own. When the scheduler ends in any way — a normal exit, a panic, a SIGKILL that no
/// handler sees — the reaper's stdin reaches its end and it kills every group still
/// listed, so no task outlives the run.
pub(crate) struct Reaper {
    stdin: Option<ChildStdin>,
    child: Option<Child>,
}

const REAPER_SCRIPT: &str = r#"groups=" "
while read -r op pid; do
  case "$op" in
    +) groups="$groups$pid " ;;
    -) case "$groups" in
         *" $pid "*) groups="${groups%% $pid *} ${groups#* $pid }" ;;
       esac ;;
  esac
done
for pid in $groups; do kill -KILL "-$pid" 2>/dev/null; done
"#;

impl Reaper {
    /// Starts the reaper; without `sh` the run goes on unguarded.
    pub(crate) fn start() -> Reaper {
        let child = Command::new("sh")
            .arg("-c")
            .arg(REAPER_SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        match child {
            Ok(mut child) => Reaper {
                stdin: child.stdin.take(),
                child: Some(child),
            },
            Err(_) => Reaper {
                stdin: None,
                child: None,
            },
        }
    }

    pub(crate) fn watch(&mut self, pid: u32) {
        self.send(&format!("+ {pid}\n"));
    }

    pub(crate) fn forget(&mut self, pid: u32) {
        self.send(&format!("- {pid}\n"));
    }

    fn send(&mut self, line: &str) {
        if let Some(stdin) = &mut self.stdin {
            if stdin.write_all(line.as_bytes()).is_err() {
                self.stdin = None;
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stdin = None;
        if let Some(child) = &mut self.child {
            let _ = child.wait();
        }
    }
}
