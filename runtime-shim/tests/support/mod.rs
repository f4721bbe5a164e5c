//! Helpers shared by the shim's integration tests: scratch flow directories, readable
//! process output for assertion messages, and reading stored artifacts back through
//! Python's `pickle`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory below `root` holding `source` as `flow.py`. The name carries the
/// process id and a counter so that tests running in parallel never share one.
pub(crate) fn flow_dir(root: &Path, name: &str, source: &str) -> PathBuf {
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    let dir = root.join(format!(
        "{name}-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("flow.py"), source).unwrap();
    dir
}

/// Status, stdout and stderr of a finished process, for assertion messages.
pub(crate) fn text(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `repr()` of a pickled artifact, unpickled by Python with the harness installed in
/// `cache` on its path, as the task that stored it had.
pub(crate) fn unpickle_repr(cache: &Path, bytes: &[u8]) -> String {
    let harness = flowc_shim::python::install(cache).unwrap();
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import pickle, sys; print(repr(pickle.loads(sys.stdin.buffer.read())), end='')",
        ])
        .env("PYTHONPATH", harness)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "unpickling failed:\n{}",
        text(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}
