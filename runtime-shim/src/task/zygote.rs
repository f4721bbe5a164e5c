//! The warm interpreter ("zygote"): one long-lived Python process per run that has
//! imported the harness, the compatibility package and, optionally, the user's flow
//! module, and forks a fresh process for every task. A task then costs a `fork` and a
//! few messages instead of an interpreter start and the flow's imports.
//!
//! [`Zygote::start`] starts one (the scheduler does, once per run) and kills it when
//! dropped; `flowc-shim task --zygote PATH` asks it for a process through
//! [`fork_task`]. The request hands the zygote three descriptors (SCM_RIGHTS): the
//! task's control socket and the shim's own stdout and stderr, so the forked task
//! writes straight into whatever the shim's output is (the scheduler's pipes), and
//! talks the same control protocol as a harness the shim started itself. The zygote
//! reports the task's raw wait status when it ends, and kills the task's process group
//! if the shim hangs up first (a shim killed by `@timeout`).
//!
//! Everything here is an optimisation: a caller that cannot reach the zygote starts
//! Python itself. `docs/runtime.md` ("Warm interpreter") describes the design.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde_json::{json, Value};

use super::protocol::{read_frame, write_frame, Frame};
use super::session::{python_path, PythonCommand};
use crate::python;

/// How long [`Zygote::start`] waits for the zygote to listen. Preloading a flow that
/// imports a large framework can take many seconds on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a requester waits for the zygote to answer a fork request. A healthy
/// zygote answers in milliseconds; one that does not is treated as unreachable.
const FORK_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long dropping a [`Zygote`] waits for it to exit after closing its stdin.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// `sun_path` holds 108 bytes with the terminating NUL; the zygote binds a temporary
/// name a little longer than the final one and renames it.
const MAX_SOCKET_PATH: usize = 90;

/// The command the zygote runs.
const ZYGOTE_CODE: &str = "import flowc_harness; flowc_harness.zygote()";

/// How to start a zygote.
#[derive(Debug, Clone, Default)]
pub struct ZygoteConfig {
    /// The interpreter (default: `$FLOWC_PYTHON`, else `python3`).
    pub python: Option<OsString>,
    /// Where the embedded Python files are installed (default:
    /// [`python::default_cache_dir`]). Tasks must use the same directory: a zygote
    /// refuses requests for another harness.
    pub cache_dir: Option<PathBuf>,
    /// Where to listen. Default: `zygote.sock` in a new private directory under the
    /// temporary directory, removed on drop.
    pub socket: Option<PathBuf>,
    /// The flow file, whose directory becomes importable in the zygote.
    pub flow_file: Option<PathBuf>,
    /// Execute the flow file once in the zygote, so its imports are paid once. Tasks
    /// use the preloaded module while the file and the environment are unchanged.
    pub preload_flow: bool,
    /// Extra environment variables for the zygote (and so for its tasks' imports).
    pub env: Vec<(String, String)>,
}

impl ZygoteConfig {
    /// The command that runs the zygote listening on `socket`. With `watch_stdin`, the
    /// zygote exits (killing its running tasks) when its stdin reaches its end, which
    /// ties its life to whoever holds the other end of a piped stdin.
    pub fn command(&self, socket: &Path, watch_stdin: bool) -> io::Result<Command> {
        let cache = self
            .cache_dir
            .clone()
            .unwrap_or_else(python::default_cache_dir);
        let harness_dir = python::install(&cache).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "cannot install the Python harness into `{}`: {err}",
                    cache.display()
                ),
            )
        })?;
        let config = json!({
            "socket": absolute(socket),
            "flow_file": self.flow_file.as_deref().map(absolute),
            "preload": self.preload_flow,
            "watch_stdin": watch_stdin,
        });
        let interpreter = self
            .python
            .clone()
            .unwrap_or_else(PythonCommand::interpreter_from_env);
        let mut command = Command::new(interpreter);
        command
            .arg("-c")
            .arg(ZYGOTE_CODE)
            .arg(config.to_string())
            .env("PYTHONPATH", python_path(&harness_dir))
            .env_remove("FLOWC_CONTROL_FD")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        Ok(command)
    }
}

/// What a zygote says about itself.
#[derive(Debug, Clone)]
pub struct ZygoteInfo {
    pub pid: u32,
    /// The interpreter's real path (`sys.executable`), past any wrapper script such as a
    /// pyenv shim: pass it as `--python` so that a task that falls back to starting
    /// Python does not pay for the wrapper again.
    pub executable: PathBuf,
    /// The flow file the zygote preloaded, if it did.
    pub preloaded: Option<PathBuf>,
}

/// A running zygote; dropping it stops the zygote and every task it still runs.
#[derive(Debug)]
pub struct Zygote {
    child: Child,
    /// The zygote's stdin: closing it tells the zygote to exit. Also closed if this
    /// process dies in any way, so a zygote never outlives its run.
    lifeline: Option<ChildStdin>,
    socket: PathBuf,
    /// The private directory holding the socket, when this handle made it.
    private_dir: Option<PathBuf>,
    info: ZygoteInfo,
}

impl Zygote {
    /// Starts a zygote and waits until it accepts requests. Its stdout and stderr are
    /// this process's (what the flow module prints while being preloaded shows there),
    /// and it runs in a process group of its own, so a Ctrl-C meant for the scheduler
    /// does not reach it.
    pub fn start(config: &ZygoteConfig) -> io::Result<Zygote> {
        let (socket, private_dir) = match &config.socket {
            Some(path) => {
                claim_socket_path(path)?;
                (path.clone(), None)
            }
            None => {
                let dir = private_dir()?;
                (dir.join("zygote.sock"), Some(dir))
            }
        };
        check_socket_path(&socket)?;
        let child = config
            .command(&socket, true)?
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(err) => {
                remove_private_dir(private_dir.as_deref());
                return Err(io::Error::new(
                    err.kind(),
                    format!("cannot start the zygote's Python interpreter: {err}"),
                ));
            }
        };
        let lifeline = child.stdin.take();
        let mut zygote = Zygote {
            child,
            lifeline,
            socket,
            private_dir,
            info: ZygoteInfo {
                pid: 0,
                executable: PathBuf::new(),
                preloaded: None,
            },
        };
        zygote.info = zygote.wait_ready()?;
        Ok(zygote)
    }

    fn wait_ready(&mut self) -> io::Result<ZygoteInfo> {
        let started = Instant::now();
        loop {
            // The zygote renames its socket into place once it listens, so a socket
            // that exists answers.
            if self.socket.exists() {
                return hello(&self.socket);
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the zygote exited while starting ({})",
                    describe_status(status)
                )));
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the zygote did not listen on `{}` within {}s",
                        self.socket.display(),
                        READY_TIMEOUT.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The socket to pass as `flowc-shim task --zygote`.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    pub fn info(&self) -> &ZygoteInfo {
        &self.info
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // End of stdin: the zygote kills its tasks' process groups and exits.
        self.lifeline = None;
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        remove_private_dir(self.private_dir.as_deref());
    }
}

/// Asks the zygote at `socket` who it is; also a liveness check.
pub fn hello(socket: &Path) -> io::Result<ZygoteInfo> {
    let mut conn = UnixStream::connect(socket)?;
    conn.set_read_timeout(Some(FORK_REPLY_TIMEOUT))?;
    write_frame(&mut conn, &json!({"op": "hello"}), b"")?;
    let reply = expect_reply(&mut conn, "hello")?;
    let pid = reply
        .header
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|pid| u32::try_from(pid).ok())
        .unwrap_or(0);
    Ok(ZygoteInfo {
        pid,
        executable: PathBuf::from(reply.str_field("executable").unwrap_or_default()),
        preloaded: reply.str_field("preloaded").map(PathBuf::from),
    })
}

/// A task process the zygote forked.
#[derive(Debug)]
pub(crate) struct ForkedTask {
    /// The request's connection, on which the exit status arrives. Holding it open is
    /// what keeps the task alive: the zygote kills the task if it closes.
    conn: UnixStream,
    pid: u32,
}

impl ForkedTask {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the task's process to end and returns its real exit status.
    pub(crate) fn wait(mut self) -> io::Result<ExitStatus> {
        let frame = read_frame(&mut self.conn)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the zygote exited before the task's process",
            )
        })?;
        match (
            frame.op(),
            frame.header.get("status").and_then(Value::as_i64),
        ) {
            ("exit", Some(raw)) => i32::try_from(raw)
                .map(ExitStatus::from_raw)
                .map_err(|_| io::Error::other(format!("the zygote reported wait status {raw}"))),
            (op, _) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected `{op}` message from the zygote"),
            )),
        }
    }
}

/// Asks the zygote at `socket` for a task process that talks the control protocol on
/// `control` and writes to this process's stdout and stderr. `env` is the task's whole
/// environment, `task_env` the variables set for this task alone (`@environment`): a
/// preloaded flow module that did not see them is not used. The process runs in this
/// process's working directory.
pub(crate) fn fork_task(
    socket: &Path,
    control: BorrowedFd<'_>,
    harness_dir: &Path,
    env: &BTreeMap<String, String>,
    task_env: &[(String, String)],
) -> io::Result<ForkedTask> {
    let mut conn = UnixStream::connect(socket)?;
    conn.set_read_timeout(Some(FORK_REPLY_TIMEOUT))?;
    let cwd = std::env::current_dir()?;
    let request = json!({
        "op": "fork",
        "harness_dir": harness_dir.to_string_lossy(),
        "cwd": cwd.to_string_lossy(),
        "env": env,
        "task_env": task_env.iter().cloned().collect::<BTreeMap<_, _>>(),
    });
    let mut frame = Vec::new();
    write_frame(&mut frame, &request, b"")?;
    // Anything this process buffered must reach the output before the task's own.
    io::stdout().flush()?;
    let stdout = io::stdout();
    let stderr = io::stderr();
    send_with_fds(&conn, &frame, &[control, stdout.as_fd(), stderr.as_fd()])?;
    let reply = expect_reply(&mut conn, "forked")?;
    let pid = reply
        .header
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|pid| *pid > 0)
        .ok_or_else(|| io::Error::other("the zygote's `forked` reply has no valid pid"))?;
    // From here on the status arrives when the task ends, however long it runs.
    conn.set_read_timeout(None)?;
    Ok(ForkedTask { conn, pid })
}

/// Sends `bytes` with `fds` attached to the first of them.
fn send_with_fds(conn: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    if !ancillary.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one request"));
    }
    let sent = sendmsg(
        conn,
        &[IoSlice::new(bytes)],
        &mut ancillary,
        SendFlags::NOSIGNAL,
    )?;
    let mut rest = conn;
    rest.write_all(bytes.get(sent..).unwrap_or_default())
}

/// Reads the zygote's answer, which must be `op` (an `error` answer becomes the error).
fn expect_reply(conn: &mut UnixStream, op: &str) -> io::Result<Frame> {
    let frame = read_frame(conn)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the zygote closed the connection without answering",
        )
    })?;
    match frame.op() {
        found if found == op => Ok(frame),
        "error" => Err(io::Error::other(format!(
            "the zygote refused: {}",
            frame.str_field("message").unwrap_or("no reason given")
        ))),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected `{other}` answer from the zygote"),
        )),
    }
}

/// Refuses a socket path that is too long to bind.
fn check_socket_path(socket: &Path) -> io::Result<()> {
    let len = absolute(socket).len();
    if len > MAX_SOCKET_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "zygote socket path `{}` is {len} bytes long; Unix sockets allow {MAX_SOCKET_PATH} here (set TMPDIR to a shorter directory)",
                socket.display()
            ),
        ));
    }
    Ok(())
}

/// Makes `path` free for a new zygote: a live zygote there is an error, a stale socket
/// file of a dead one is removed.
fn claim_socket_path(path: &Path) -> io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("a zygote already listens on `{}`", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

/// A new directory only this user can enter, for the socket.
fn private_dir() -> io::Result<PathBuf> {
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    loop {
        let dir = base.join(format!(
            "flowc-zygote-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            // A leftover of a crashed process that had our pid.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("cannot create `{}`: {err}", dir.display()),
                ))
            }
        }
    }
}

fn remove_private_dir(dir: Option<&Path>) {
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

pub(crate) fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_owned(),
    }
}

/// Runs the zygote in this process (`flowc-shim zygote`): replaces the current
/// program with the interpreter, so the zygote's pid is the one its starter knows.
/// Returns only on failure.
pub fn exec(config: &ZygoteConfig, socket: &Path, watch_stdin: bool) -> io::Error {
    if let Err(err) = check_socket_path(socket).and_then(|()| claim_socket_path(socket)) {
        return err;
    }
    match config.command(socket, watch_stdin) {
        Ok(mut command) => command.exec(),
        Err(err) => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_socket_paths_are_refused_with_advice() {
        let long = PathBuf::from(format!("/tmp/{}/zygote.sock", "d".repeat(120)));
        let err = check_socket_path(&long).unwrap_err();
        assert!(err.to_string().contains("TMPDIR"), "{err}");
        assert!(check_socket_path(Path::new("/tmp/z.sock")).is_ok());
    }

    #[test]
    fn stale_socket_files_are_replaced_and_live_ones_refused() {
        let dir = private_dir().unwrap();
        let path = dir.join("z.sock");
        {
            let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let err = claim_socket_path(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        }
        // The listener is gone; its file is left behind and must be cleared.
        assert!(path.exists());
        claim_socket_path(&path).unwrap();
        assert!(!path.exists());
        remove_private_dir(Some(&dir));
    }

    #[test]
    fn private_dirs_are_private_and_distinct() {
        use std::os::unix::fs::PermissionsExt;
        let a = private_dir().unwrap();
        let b = private_dir().unwrap();
        assert_ne!(a, b);
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        remove_private_dir(Some(&a));
        remove_private_dir(Some(&b));
        assert!(!a.exists());
    }
}
