//! One conversation with the Python harness: start the interpreter, send `init`, serve
//! its artifact reads and writes from the store, and collect its `done` report.
//!
//! The control channel is a Unix socket pair whose child end becomes the harness's
//! stdin (the harness moves it to a private fd and puts /dev/null in its place before
//! any user code runs). The standard library hands a child only fds 0–2 without
//! `unsafe` code, and a socket is two-way, so one fd does the work of two pipes and no
//! inheritable descriptor ever exists in this process for another child to pick up.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use rustix::process::{kill_process_group, Pid, Signal};

use serde::Deserialize;
use serde_json::{json, Value};

use super::outcome::{ForeachFrame, StepStatus, Transition};
use super::protocol::{read_frame, write_frame, Frame, CHUNK_LEN};
use super::zygote::{self, ForkedTask};
use crate::store::{ArtifactEntry, BlobHash, BlobStore, FlowName};

/// `encoding` of the artifacts the harness pickles.
pub(crate) const PICKLE_ENCODING: &str = "pickle-v4";

/// How to start the harness.
#[derive(Debug, Clone)]
pub struct PythonCommand {
    /// The interpreter (`$FLOWC_PYTHON`, else `python3`).
    pub interpreter: OsString,
    /// The directory holding `flowc_harness.py` and the `metaflow` package.
    pub harness_dir: PathBuf,
    /// Extra environment variables for the process (`@environment`).
    pub env: Vec<(String, String)>,
    /// A zygote's socket (`flowc-shim zygote`): ask it for a forked process instead of
    /// starting the interpreter. Falls back to starting it when the zygote fails.
    pub zygote: Option<PathBuf>,
}

/// The environment variable naming the Python interpreter.
pub const PYTHON_ENV_VAR: &str = "FLOWC_PYTHON";

impl PythonCommand {
    /// The interpreter named by `$FLOWC_PYTHON`, or `python3`.
    pub fn interpreter_from_env() -> OsString {
        std::env::var_os(PYTHON_ENV_VAR)
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| OsString::from("python3"))
    }
}

/// The `done` report, as the harness sends it.
#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    pub(crate) status: StepStatus,
    #[serde(default)]
    pub(crate) artifacts: BTreeMap<String, ReportedEntry>,
    #[serde(default)]
    pub(crate) transition: Option<Transition>,
    #[serde(default)]
    pub(crate) foreach_stack: Vec<ForeachFrame>,
    #[serde(default)]
    pub(crate) error: Option<ReportedError>,
    /// The step's cards (`@card`): each card's settings and components, and short
    /// values for the default card. Kept as JSON and read leniently by
    /// [`crate::cards`], so a malformed card never makes the report unreadable.
    #[serde(default)]
    pub(crate) cards: Option<Value>,
}

/// An artifact in the `done` report: a hash the harness got from `init` or `stored`.
#[derive(Debug, Deserialize)]
pub(crate) struct ReportedEntry {
    pub(crate) hash: String,
}

/// The exception that ended a failed or caught step.
#[derive(Debug, Deserialize)]
pub(crate) struct ReportedError {
    #[serde(rename = "type")]
    pub(crate) type_name: String,
    pub(crate) message: String,
}

/// How the conversation ended.
#[derive(Debug)]
pub(crate) struct SessionEnd {
    /// `None` when the harness exited (or broke the protocol) without reporting.
    pub(crate) done: Option<Done>,
    /// Why there is no report, when there is none.
    pub(crate) problem: Option<String>,
    pub(crate) exit: ExitStatus,
    /// Every blob the harness may name in its report: the ones `init` listed and the
    /// ones it stored, with their manifest entries.
    pub(crate) known: HashMap<BlobHash, ArtifactEntry>,
}

impl SessionEnd {
    /// The process's exit code, or `None` when a signal ended it.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        self.exit.code()
    }

    pub(crate) fn signal(&self) -> Option<i32> {
        self.exit.signal()
    }
}

/// Starts the harness, runs the conversation to its end, and waits for the process.
///
/// `known` lists the entries `init` hands the harness; the harness may refer to those
/// and to what it stores, nothing else.
pub(crate) fn run<S: BlobStore + ?Sized>(
    store: &S,
    flow: &FlowName,
    python: &PythonCommand,
    init: &Value,
    known: HashMap<BlobHash, ArtifactEntry>,
) -> io::Result<SessionEnd> {
    let (ours, harness) = start_harness(python)?;
    let mut server = Server {
        store,
        flow,
        reader: BufReader::with_capacity(CHUNK_LEN, ours.try_clone()?),
        writer: BufWriter::with_capacity(CHUNK_LEN, ours),
        known,
    };
    let served = server.serve(init);
    // Closing our end makes a harness that is still reading see EOF and exit.
    let Server { known, writer, .. } = server;
    drop(writer);
    let exit = harness.wait(served.as_ref().ok().and_then(Option::as_ref))?;
    let (done, problem) = match served {
        Ok(Some(done)) => (Some(done), None),
        Ok(None) => (
            None,
            Some(format!(
                "the Python harness exited ({}) without reporting the task's outcome",
                describe_exit(exit)
            )),
        ),
        Err(err) => (
            None,
            Some(format!("control channel with the harness failed: {err}")),
        ),
    };
    Ok(SessionEnd {
        done,
        problem,
        exit,
        known,
    })
}

/// The process running the harness.
enum Harness {
    Spawned(Child),
    Forked(ForkedTask),
}

/// Starts the harness, through the zygote when there is one, and returns this side's
/// end of the control channel.
fn start_harness(python: &PythonCommand) -> io::Result<(UnixStream, Harness)> {
    if let Some(socket) = &python.zygote {
        let (ours, theirs) = UnixStream::pair()?;
        match zygote::fork_task(
            socket,
            theirs.as_fd(),
            &python.harness_dir,
            &task_env(python),
            &python.env,
        ) {
            // The zygote holds its own copy of `theirs` now; dropping ours lets a
            // harness that dies look like a closed channel.
            Ok(forked) => return Ok((ours, Harness::Forked(forked))),
            Err(err) => {
                // A fresh channel below: should the zygote have forked after all, its
                // process sees this one close and exits without running anything.
                eprintln!(
                    "flowc-shim: zygote `{}` unavailable ({err}); starting Python instead",
                    socket.display()
                );
            }
        }
    }
    let (ours, theirs) = UnixStream::pair()?;
    let mut command = Command::new(&python.interpreter);
    command
        .arg("-c")
        .arg("import flowc_harness; flowc_harness.main()")
        .env("PYTHONPATH", python_path(&python.harness_dir))
        .env("FLOWC_CONTROL_FD", "0")
        .envs(python.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(OwnedFd::from(theirs)));
    let child = command.spawn().map_err(|err| {
        io::Error::new(
            err.kind(),
            format!(
                "cannot start the Python interpreter `{}` (set {PYTHON_ENV_VAR} to choose another): {err}",
                python.interpreter.to_string_lossy()
            ),
        )
    })?;
    // The command still holds the child's end of the socket; without dropping it, a
    // harness that dies would never look like a closed channel.
    drop(command);
    Ok((ours, Harness::Spawned(child)))
}

impl Harness {
    /// Waits for the harness's process to end. `done` is its report, if it sent one.
    fn wait(self, done: Option<&Done>) -> io::Result<ExitStatus> {
        match self {
            Harness::Spawned(mut child) => child.wait(),
            Harness::Forked(forked) => {
                let pid = forked.pid();
                match forked.wait() {
                    Ok(status) => Ok(status),
                    Err(err) => Ok(orphaned_exit(pid, done, &err)),
                }
            }
        }
    }
}

/// The exit status of a forked harness whose zygote went away before reporting it.
/// The process is no child of ours, so its status is lost: it is killed (with its
/// group, so nothing of it outlives the task) and its status inferred from its report,
/// the exit code the harness exits with after `done`.
fn orphaned_exit(pid: u32, done: Option<&Done>, err: &io::Error) -> ExitStatus {
    eprintln!(
        "flowc-shim: lost the zygote before the task's process {pid} ended ({err}); its exit status is inferred from its report"
    );
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
    match done.map(|done| done.status) {
        Some(StepStatus::Ok | StepStatus::Caught) => ExitStatus::from_raw(0),
        Some(StepStatus::Failed) => ExitStatus::from_raw(1 << 8),
        // No report: the process is gone because it was just killed.
        None => ExitStatus::from_raw(SIGKILL),
    }
}

/// Raw wait status of a process killed by SIGKILL.
const SIGKILL: i32 = 9;

/// The environment of a task's process: this process's own (as a spawned interpreter
/// would inherit it), `PYTHONPATH` with the harness first, and `@environment`'s
/// variables. Variables whose name or value is not UTF-8 cannot be sent and are left
/// out.
fn task_env(python: &PythonCommand) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    env.remove("FLOWC_CONTROL_FD");
    env.insert(
        "PYTHONPATH".to_owned(),
        python_path(&python.harness_dir)
            .to_string_lossy()
            .into_owned(),
    );
    for (key, value) in &python.env {
        env.insert(key.clone(), value.clone());
    }
    env
}

/// `PYTHONPATH` with the harness directory first, so its `metaflow` shadows any other.
pub(crate) fn python_path(harness_dir: &Path) -> OsString {
    let mut value = harness_dir.as_os_str().to_owned();
    if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|v| !v.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

fn describe_exit(exit: ExitStatus) -> String {
    match (exit.code(), exit.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_owned(),
    }
}

struct Server<'a, S: ?Sized> {
    store: &'a S,
    flow: &'a FlowName,
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
    known: HashMap<BlobHash, ArtifactEntry>,
}

impl<S: BlobStore + ?Sized> Server<'_, S> {
    /// Serves requests until `done` (returned) or the harness hangs up (`Ok(None)`).
    fn serve(&mut self, init: &Value) -> io::Result<Option<Done>> {
        match write_frame(&mut self.writer, init, b"") {
            Ok(()) => {}
            // The harness died before reading `init` (e.g. a broken interpreter).
            Err(err) if is_hangup(&err) => return Ok(None),
            Err(err) => return Err(err),
        }
        loop {
            let Some(frame) = read_frame(&mut self.reader)? else {
                return Ok(None);
            };
            match frame.op() {
                "get" => self.serve_get(&frame)?,
                "put_begin" => self.serve_put(&frame)?,
                "done" => {
                    let done: Done = serde_json::from_value(frame.header).map_err(|err| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("the harness's `done` report is malformed: {err}"),
                        )
                    })?;
                    return Ok(Some(done));
                }
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected control message `{other}` from the harness"),
                    ))
                }
            }
        }
    }

    /// Streams one blob's verified bytes as `chunk` frames, then an `end` frame.
    fn serve_get(&mut self, frame: &Frame) -> io::Result<()> {
        let hash = match frame.str_field("hash").map(BlobHash::parse) {
            Some(Ok(hash)) => hash,
            _ => {
                let end =
                    json!({"op": "end", "ok": false, "message": "`get` needs a valid blob hash"});
                return write_frame(&mut self.writer, &end, b"");
            }
        };
        let mut chunks = ChunkWriter {
            out: &mut self.writer,
            buf: Vec::with_capacity(CHUNK_LEN),
        };
        let label = PathBuf::from("<harness control channel>");
        let result = self
            .store
            .get_to_writer(self.flow, &hash, &mut chunks, &label)
            .map_err(|err| err.to_string())
            .and_then(|_| chunks.flush_chunk().map_err(|err| err.to_string()));
        let end = match result {
            Ok(()) => json!({"op": "end", "ok": true}),
            // The harness discards what it received: the `end` frame is what counts.
            Err(message) => json!({"op": "end", "ok": false, "message": message}),
        };
        write_frame(&mut self.writer, &end, b"")
    }

    /// Stores one streamed artifact and answers with its hash.
    fn serve_put(&mut self, frame: &Frame) -> io::Result<()> {
        let name = frame.str_field("name").unwrap_or("artifact").to_owned();
        let label = PathBuf::from(format!("<artifact `{name}` from the harness>"));
        let mut stream = PutStream {
            input: &mut self.reader,
            pending: Vec::new(),
            pos: 0,
            end: None,
        };
        let stored = self.store.put_reader(self.flow, &mut stream, &label);
        let end = stream.finish()?;
        let reply = match (stored, end) {
            (_, PutEnd::Aborted) => json!({"op": "aborted"}),
            (Ok(blob), PutEnd::Ended { type_name }) => {
                self.known.insert(
                    blob.hash,
                    ArtifactEntry {
                        hash: blob.hash,
                        type_name: type_name.clone(),
                        size: blob.size,
                        encoding: PICKLE_ENCODING.to_owned(),
                    },
                );
                json!({"op": "stored", "hash": blob.hash.to_hex(), "size": blob.size, "type": type_name})
            }
            (Err(err), PutEnd::Ended { .. }) => {
                json!({"op": "error", "message": format!("artifact `{name}` could not be stored: {err}")})
            }
        };
        write_frame(&mut self.writer, &reply, b"")
    }
}

fn is_hangup(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Sends what the store writes as `chunk` frames of at most [`CHUNK_LEN`] bytes.
struct ChunkWriter<'a, W: Write> {
    out: &'a mut W,
    buf: Vec<u8>,
}

impl<W: Write> ChunkWriter<'_, W> {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            write_frame(self.out, &json!({"op": "chunk"}), &self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Write for ChunkWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_LEN - self.buf.len();
        let take = data.len().min(room);
        self.buf
            .extend_from_slice(data.get(..take).unwrap_or_default());
        if self.buf.len() >= CHUNK_LEN {
            self.flush_chunk()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a streamed artifact ended.
enum PutEnd {
    Ended { type_name: String },
    Aborted,
}

/// The bytes of one `put_begin` … `put_end` sequence, as a reader for the store.
struct PutStream<'a, R: Read> {
    input: &'a mut R,
    pending: Vec<u8>,
    pos: usize,
    end: Option<PutEnd>,
}

impl<R: Read> PutStream<'_, R> {
    /// Reads the next frame of the sequence into `pending` or `end`.
    fn advance(&mut self) -> io::Result<()> {
        let frame = read_frame(self.input)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the harness hung up while sending an artifact",
            )
        })?;
        match frame.op() {
            "put_chunk" => {
                self.pending = frame.body;
                self.pos = 0;
            }
            "put_end" => {
                let type_name = frame
                    .str_field("type")
                    .unwrap_or("builtins.object")
                    .to_owned();
                self.end = Some(PutEnd::Ended { type_name });
            }
            "put_abort" => self.end = Some(PutEnd::Aborted),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected control message `{other}` while receiving an artifact"),
                ))
            }
        }
        Ok(())
    }

    /// Consumes the rest of the sequence (the store may stop reading early on an
    /// error) and says how it ended.
    fn finish(mut self) -> io::Result<PutEnd> {
        loop {
            if let Some(end) = self.end.take() {
                return Ok(end);
            }
            self.advance()?;
        }
    }
}

impl<R: Read> Read for PutStream<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &self.end {
                Some(PutEnd::Ended { .. }) => return Ok(0),
                // An error, not EOF: an abandoned value must never become a blob.
                Some(PutEnd::Aborted) => {
                    return Err(io::Error::other("the harness abandoned the artifact"))
                }
                None => {}
            }
            let rest = self.pending.get(self.pos..).unwrap_or_default();
            if !rest.is_empty() {
                let n = rest.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(rest.get(..n).unwrap_or_default());
                self.pos += n;
                return Ok(n);
            }
            self.advance()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(list: &[(Value, &[u8])]) -> Vec<u8> {
        let mut wire = Vec::new();
        for (header, body) in list {
            write_frame(&mut wire, header, body).unwrap();
        }
        wire
    }

    #[test]
    fn put_stream_concatenates_chunks_until_put_end() {
        let wire = frames(&[
            (json!({"op": "put_chunk"}), b"hello "),
            (json!({"op": "put_chunk"}), b"world"),
            (json!({"op": "put_end", "type": "builtins.str"}), b""),
        ]);
        let mut input = &wire[..];
        let mut stream = PutStream {
            input: &mut input,
            pending: Vec::new(),
            pos: 0,
            end: None,
        };
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");
        match stream.finish().unwrap() {
            PutEnd::Ended { type_name } => assert_eq!(type_name, "builtins.str"),
            PutEnd::Aborted => panic!("expected put_end"),
        }
    }

    #[test]
    fn aborted_put_is_a_read_error_and_finish_reports_it() {
        let wire = frames(&[
            (json!({"op": "put_chunk"}), b"partial"),
            (json!({"op": "put_abort"}), b""),
        ]);
        let mut input = &wire[..];
        let mut stream = PutStream {
            input: &mut input,
            pending: Vec::new(),
            pos: 0,
            end: None,
        };
        let mut out = Vec::new();
        assert!(stream.read_to_end(&mut out).is_err());
        assert!(matches!(stream.finish().unwrap(), PutEnd::Aborted));
    }

    #[test]
    fn finish_drains_what_the_store_did_not_read() {
        let wire = frames(&[
            (json!({"op": "put_chunk"}), b"abc"),
            (json!({"op": "put_chunk"}), b"def"),
            (json!({"op": "put_end", "type": "t"}), b""),
            (json!({"op": "done"}), b""),
        ]);
        let mut input = &wire[..];
        let stream = PutStream {
            input: &mut input,
            pending: Vec::new(),
            pos: 0,
            end: None,
        };
        assert!(matches!(stream.finish().unwrap(), PutEnd::Ended { .. }));
        // The next frame on the channel is intact.
        assert_eq!(read_frame(&mut input).unwrap().unwrap().op(), "done");
    }

    #[test]
    fn chunk_writer_splits_at_chunk_len() {
        let mut wire = Vec::new();
        let data = vec![7u8; CHUNK_LEN + 10];
        {
            let mut writer = ChunkWriter {
                out: &mut wire,
                buf: Vec::new(),
            };
            writer.write_all(&data).unwrap();
            writer.flush_chunk().unwrap();
        }
        let mut input = &wire[..];
        let first = read_frame(&mut input).unwrap().unwrap();
        let second = read_frame(&mut input).unwrap().unwrap();
        assert_eq!((first.body.len(), second.body.len()), (CHUNK_LEN, 10));
        assert!(read_frame(&mut input).unwrap().is_none());
    }
}
