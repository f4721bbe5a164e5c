//! Keeping a copy of this process's stdout and stderr, for a task whose logs no
//! scheduler writes: in a pod or a Batch job the container's output goes to the
//! cluster's log system, while `flowc logs` reads the attempt's logs from the
//! datastore. [`OutputCapture`] puts a pipe in place of fds 1 and 2 and tees each into
//! the original descriptor (the container's output still shows everything, live) and
//! a temporary file, which the caller stores when the attempt ends.
//!
//! Working at the file-descriptor level catches everything: the shim's own messages,
//! the Python process it spawns or the zygote forks (both inherit or are handed fds 1
//! and 2), and anything those start.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::fcntl_dupfd_cloexec;
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::stdio::{dup2_stderr, dup2_stdout};

use super::error::{StoreError, StoreResult};
use super::fsutil::TempFile;

/// How long [`OutputCapture::finish`] waits for the copies to drain once this process
/// has let go of the pipes. Only a background process that the step started and left
/// running still holds them then; its later output reaches the container's log but not
/// the stored one.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Which standard stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// One captured stream: the original descriptor, kept to restore it, the pipe's write
/// end, and the thread that copies the pipe into the original and the file.
struct Tee {
    stream: Stream,
    original: OwnedFd,
    write_end: OwnedFd,
    file: TempFile,
    done: mpsc::Receiver<io::Result<()>>,
}

/// Both standard streams, captured until [`OutputCapture::finish`].
pub struct OutputCapture {
    tees: Vec<Tee>,
}

/// The captured output, in temporary files removed when this is dropped.
pub struct CapturedOutput {
    stdout: TempFile,
    stderr: TempFile,
    /// Streams whose copy was still running at the deadline (their file may lack the
    /// end of the output).
    pub incomplete: Vec<&'static str>,
}

impl CapturedOutput {
    pub fn stdout_path(&self) -> &Path {
        self.stdout.path()
    }

    pub fn stderr_path(&self) -> &Path {
        self.stderr.path()
    }
}

impl OutputCapture {
    /// Starts capturing fds 1 and 2 into temporary files in `dir`.
    pub fn start(dir: &Path) -> StoreResult<OutputCapture> {
        let mut tees = Vec::with_capacity(2);
        for stream in [Stream::Stdout, Stream::Stderr] {
            // On failure, put back the stream already redirected, so the process
            // does not go on writing into a pipe nobody restores.
            match Tee::start(stream, dir) {
                Ok(tee) => tees.push(tee),
                Err(err) => {
                    for tee in tees {
                        let _ = tee.restore();
                    }
                    return Err(err);
                }
            }
        }
        Ok(OutputCapture { tees })
    }

    /// Puts the original descriptors back and waits (up to a few seconds) for the
    /// copies to finish.
    pub fn finish(self) -> StoreResult<CapturedOutput> {
        // Rust's stdout buffers lines; what is still in the buffer belongs to the
        // capture.
        let _ = io::stdout().flush();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut files = Vec::with_capacity(2);
        let mut incomplete = Vec::new();
        let mut first_error = None;
        for tee in self.tees {
            let stream = tee.stream;
            match tee.restore() {
                Ok((file, finished)) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match finished.recv_timeout(wait) {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            first_error.get_or_insert(StoreError::io(
                                "copy the task's output into",
                                file.path(),
                                err,
                            ));
                        }
                        Err(_) => incomplete.push(stream.name()),
                    }
                    files.push(file);
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        let mut files = files.into_iter();
        match (files.next(), files.next()) {
            (Some(stdout), Some(stderr)) => Ok(CapturedOutput {
                stdout,
                stderr,
                incomplete,
            }),
            _ => Err(StoreError::io(
                "capture",
                PathBuf::from("the task's output"),
                io::Error::other("a stream was not captured"),
            )),
        }
    }
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn fd_label(self) -> PathBuf {
        PathBuf::from(format!("<{}>", self.name()))
    }

    /// Makes `fd` this process's descriptor for the stream.
    fn install(self, fd: impl AsFd) -> io::Result<()> {
        let result = match self {
            Stream::Stdout => dup2_stdout(fd),
            Stream::Stderr => dup2_stderr(fd),
        };
        result.map_err(io::Error::from)
    }

    fn current(self) -> io::Result<OwnedFd> {
        let duplicate = match self {
            Stream::Stdout => fcntl_dupfd_cloexec(io::stdout().as_fd(), 3),
            Stream::Stderr => fcntl_dupfd_cloexec(io::stderr().as_fd(), 3),
        };
        duplicate.map_err(io::Error::from)
    }
}

impl Tee {
    fn start(stream: Stream, dir: &Path) -> StoreResult<Tee> {
        let label = stream.fd_label();
        let fail = |action, err: io::Error| StoreError::io(action, label.clone(), err);
        let original = stream
            .current()
            .map_err(|err| fail("duplicate the descriptor of", err))?;
        let (read_end, write_end) = pipe_with(PipeFlags::CLOEXEC)
            .map_err(|err| fail("create a pipe for", io::Error::from(err)))?;
        let mut file = TempFile::create_in(dir)?;
        let cloned = file.file()?.try_clone();
        let sink = cloned.map_err(|err| StoreError::io("open", file.path(), err))?;
        let passthrough = original
            .try_clone()
            .map_err(|err| fail("duplicate the descriptor of", err))?;
        let (sender, done) = mpsc::channel();
        thread::Builder::new()
            .name(format!("flowc-tee-{}", stream.name()))
            .spawn(move || {
                let result = copy_both(File::from(read_end), File::from(passthrough), sink);
                // The receiver may have given up waiting; nothing to tell then.
                let _ = sender.send(result);
            })
            .map_err(|err| fail("start the copying thread of", err))?;
        // Only now, with the reader running, does output go to the pipe.
        stream
            .install(&write_end)
            .map_err(|err| fail("redirect", err))?;
        Ok(Tee {
            stream,
            original,
            write_end,
            file,
            done,
        })
    }

    /// Puts the original descriptor back and closes this process's write end, so the
    /// copying thread sees the end of the stream once every child has exited.
    fn restore(self) -> StoreResult<(TempFile, mpsc::Receiver<io::Result<()>>)> {
        let Tee {
            stream,
            original,
            write_end,
            file,
            done,
        } = self;
        stream
            .install(&original)
            .map_err(|err| StoreError::io("restore", stream.fd_label(), err))?;
        drop(write_end);
        Ok((file, done))
    }
}

/// Copies `input` to `passthrough` and `file` until the end of the stream. A failing
/// passthrough (the container's log closed) does not stop the copy into the file.
fn copy_both(mut input: File, mut passthrough: File, mut file: File) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut passthrough_ok = true;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return file.flush(),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        if passthrough_ok {
            passthrough_ok = passthrough.write_all(chunk).is_ok();
        }
        file.write_all(chunk)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_process_output_is_captured_and_the_streams_restored() {
        let dir = crate::store::testutil::TestDir::new("tee-child");
        let before = fcntl_dupfd_cloexec(io::stdout().as_fd(), 3).unwrap();
        let capture = OutputCapture::start(dir.path()).unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", "echo captured-out; echo captured-err >&2"])
            .status()
            .unwrap();
        assert!(status.success());
        let output = capture.finish().unwrap();
        assert!(output.incomplete.is_empty());
        // Other tests of this process may print meanwhile: look for ours only.
        let stdout = std::fs::read_to_string(output.stdout_path()).unwrap();
        let stderr = std::fs::read_to_string(output.stderr_path()).unwrap();
        assert!(stdout.contains("captured-out\n"), "{stdout:?}");
        assert!(stderr.contains("captured-err\n"), "{stderr:?}");
        assert!(!stdout.contains("captured-err"), "{stdout:?}");
        // fd 1 is the same open file again as before the capture.
        let identity = |fd: OwnedFd| {
            use std::os::unix::fs::MetadataExt;
            let meta = File::from(fd).metadata().unwrap();
            (meta.dev(), meta.ino())
        };
        let now = fcntl_dupfd_cloexec(io::stdout().as_fd(), 3).unwrap();
        assert_eq!(identity(now), identity(before));
        let (stdout_path, stderr_path) = (
            output.stdout_path().to_path_buf(),
            output.stderr_path().to_path_buf(),
        );
        drop(output);
        assert!(!stdout_path.exists() && !stderr_path.exists());
    }

    #[test]
    fn copy_both_duplicates_the_stream() {
        let dir = crate::store::testutil::TestDir::new("tee-copy");
        let input_path = dir.path().join("in");
        std::fs::write(&input_path, b"line one\nline two\n").unwrap();
        let out_a = dir.path().join("a");
        let out_b = dir.path().join("b");
        copy_both(
            File::open(&input_path).unwrap(),
            File::create(&out_a).unwrap(),
            File::create(&out_b).unwrap(),
        )
        .unwrap();
        assert_eq!(std::fs::read(out_a).unwrap(), b"line one\nline two\n");
        assert_eq!(std::fs::read(out_b).unwrap(), b"line one\nline two\n");
    }
}
