//! End-to-end tests of the local datastore through its public API: what `flowc run`,
//! the shim and the client rely on, including crashes, corruption and concurrency.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use sha2::{Digest, Sha256};

use flowc_shim::store::{
    hash_bytes, ArtifactEntry, ArtifactName, AttemptRecord, AttemptStatus, BlobHash, BlobStore,
    Corruption, FlowName, LocalStore, LogStream, Manifest, MetadataStore, ParentTask, RunId,
    RunSpec, RunStatus, StepName, StoreError, TaskId, TaskMeta, TaskOrigin, TaskPath, TaskStatus,
    FORMAT_FILE, LAYOUT_VERSION,
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed at the end of the test.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!(
            "flowc-store-it-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn store(&self) -> LocalStore {
        LocalStore::open_or_create(&self.0.join("store")).unwrap()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn flow() -> FlowName {
    FlowName::new("TrainFlow").unwrap()
}

fn task_path(run: &str, step: &str, task: &str) -> TaskPath {
    TaskPath::new(
        flow(),
        RunId::new(run).unwrap(),
        StepName::new(step).unwrap(),
        TaskId::new(task).unwrap(),
    )
}

/// Every file below `dir`, recursively, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn is_temp(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".tmp."))
}

/// Deterministic incompressible bytes (xorshift64), produced on the fly so a large
/// artifact never has to exist in memory.
struct NoiseReader {
    state: u64,
    remaining: u64,
}

impl NoiseReader {
    fn new(seed: u64, len: u64) -> Self {
        NoiseReader {
            state: seed | 1,
            remaining: len,
        }
    }
}

impl Read for NoiseReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A writer that only hashes, to check streamed output without keeping it.
#[derive(Default)]
struct HashSink {
    hasher: Sha256,
    total: u64,
}

impl HashSink {
    fn finish(self) -> (BlobHash, u64) {
        (
            BlobHash::from_bytes(self.hasher.finalize().into()),
            self.total,
        )
    }
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.total += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// SHA-256 and length of everything `reader` yields.
fn stream_digest(mut reader: impl Read) -> (BlobHash, u64) {
    let mut sink = HashSink::default();
    io::copy(&mut reader, &mut sink).unwrap();
    sink.finish()
}

// ---------------------------------------------------------------------------------
// Blobs

#[test]
fn put_get_round_trip() {
    let dir = TestDir::new("round-trip");
    let store = dir.store();
    let data = b"\x80\x04\x95 pickled bytes".repeat(50);
    let stored = store.put(&flow(), &data).unwrap();
    assert_eq!(stored.hash, hash_bytes(&data));
    assert_eq!(stored.size, data.len() as u64);
    assert!(stored.created);
    assert!(store.contains(&flow(), &stored.hash).unwrap());
    assert_eq!(store.get(&flow(), &stored.hash).unwrap(), data);

    let dest = dir.path().join("out.pkl");
    assert_eq!(
        store.get_to_file(&flow(), &stored.hash, &dest).unwrap(),
        data.len() as u64
    );
    assert_eq!(fs::read(&dest).unwrap(), data);

    // The file is stored compressed under <flow>/data/<2 hex>/<hash>.
    let hex = stored.hash.to_hex();
    let blob = dir
        .path()
        .join("store/TrainFlow/data")
        .join(&hex[..2])
        .join(&hex);
    let raw = fs::read(blob).unwrap();
    assert!(raw.len() < data.len());
    assert_eq!(&raw[..4], b"\x28\xb5\x2f\xfd", "a zstd frame");
}

#[test]
fn identical_content_is_stored_once() {
    let dir = TestDir::new("dedupe");
    let store = dir.store();
    let data = vec![42u8; 10_000];
    let a = store.put(&flow(), &data).unwrap();
    let input = dir.path().join("artifact.bin");
    fs::write(&input, &data).unwrap();
    let b = store.put_file(&flow(), &input).unwrap();
    let c = store
        .put_reader(&flow(), &mut &data[..], Path::new("stream"))
        .unwrap();
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.hash, c.hash);
    assert!(a.created && !b.created && !c.created);
    let other = store.put(&flow(), b"something else").unwrap();
    assert_ne!(other.hash, a.hash);

    let blobs: Vec<_> = files_under(&dir.path().join("store/TrainFlow/data"));
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    assert!(blobs.iter().all(|p| !is_temp(p)), "{blobs:?}");
}

#[test]
fn flipped_byte_is_reported_as_corrupt() {
    let dir = TestDir::new("flip");
    let store = dir.store();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let stored = store.put(&flow(), &data).unwrap();
    let path = store.layout().blob_path(&flow(), &stored.hash);
    let mut raw = fs::read(&path).unwrap();
    let middle = raw.len() / 2;
    raw[middle] ^= 0x01;
    fs::write(&path, &raw).unwrap();

    let err = store.get(&flow(), &stored.hash).unwrap_err();
    match &err {
        StoreError::Corrupt {
            path: p, expected, ..
        } => {
            assert_eq!(p, &path);
            assert_eq!(expected, &stored.hash);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("delete the file"), "{text}");
}

#[test]
fn content_under_the_wrong_name_is_a_hash_mismatch() {
    let dir = TestDir::new("mismatch");
    let store = dir.store();
    let good = store.put(&flow(), b"expected value").unwrap();
    let other = store.put(&flow(), b"some other value").unwrap();
    let good_path = store.layout().blob_path(&flow(), &good.hash);
    fs::copy(store.layout().blob_path(&flow(), &other.hash), &good_path).unwrap();

    match store.get(&flow(), &good.hash).unwrap_err() {
        StoreError::Corrupt {
            expected,
            actual: Corruption::HashMismatch { actual },
            ..
        } => {
            assert_eq!(expected, good.hash);
            assert_eq!(actual, other.hash);
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
}

#[test]
fn truncated_blob_is_reported_and_never_reaches_the_destination() {
    let dir = TestDir::new("truncate");
    let store = dir.store();
    let stored = store
        .put_reader(
            &flow(),
            &mut NoiseReader::new(3, 300_000),
            Path::new("noise"),
        )
        .unwrap();
    let path = store.layout().blob_path(&flow(), &stored.hash);
    let raw = fs::read(&path).unwrap();
    fs::write(&path, &raw[..raw.len() * 2 / 3]).unwrap();

    let err = store.get(&flow(), &stored.hash).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Corrupt {
                actual: Corruption::Undecodable { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"), "{err}");

    // Even the empty value is stored as a non-empty zstd frame, so an empty file is
    // reported as damaged, not as some other content.
    let empty = store.put(&flow(), b"").unwrap();
    let empty_path = store.layout().blob_path(&flow(), &empty.hash);
    assert!(fs::metadata(&empty_path).unwrap().len() > 0);
    assert_eq!(store.get(&flow(), &empty.hash).unwrap(), b"");
    fs::write(&empty_path, b"").unwrap();
    let err = store.get(&flow(), &empty.hash).unwrap_err();
    assert!(err.to_string().contains("the file is empty"), "{err}");

    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("value.pkl");
    assert!(store.get_to_file(&flow(), &stored.hash, &dest).is_err());
    assert!(!dest.exists());
    assert!(
        files_under(&out_dir).is_empty(),
        "temporary file left behind"
    );
}

#[test]
fn missing_blob_is_not_found() {
    let dir = TestDir::new("missing");
    let store = dir.store();
    let hash = hash_bytes(b"never stored");
    assert!(!store.contains(&flow(), &hash).unwrap());
    let err = store.get(&flow(), &hash).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&hash.to_hex()), "{err}");
}

#[test]
fn a_blob_appears_under_its_name_only_when_complete() {
    let dir = TestDir::new("atomic");
    let store = Arc::new(dir.store());
    let len = 8 << 20;
    let (expected, _) = stream_digest(NoiseReader::new(11, len));

    /// Checks, halfway through the input, that nothing is visible under the final name.
    struct Watching {
        inner: NoiseReader,
        store: Arc<LocalStore>,
        hash: BlobHash,
        read: u64,
        checked: bool,
    }
    impl Read for Watching {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.read > (4 << 20) && !self.checked {
                self.checked = true;
                assert!(!self.store.contains(&flow(), &self.hash).unwrap());
            }
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }
    let mut reader = Watching {
        inner: NoiseReader::new(11, len),
        store: Arc::clone(&store),
        hash: expected,
        read: 0,
        checked: false,
    };
    let stored = store
        .put_reader(&flow(), &mut reader, Path::new("watched"))
        .unwrap();
    assert!(reader.checked);
    assert_eq!(stored.hash, expected);
    assert!(store.contains(&flow(), &expected).unwrap());
    let files = files_under(&dir.path().join("store/TrainFlow/data"));
    assert_eq!(files.len(), 1, "temporary file left behind: {files:?}");
}

#[test]
fn a_failed_put_leaves_nothing_behind() {
    let dir = TestDir::new("failed-put");
    let store = dir.store();
    struct FailsHalfway(NoiseReader, u64);
    impl Read for FailsHalfway {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 > 1 << 20 {
                return Err(io::Error::other("connection reset"));
            }
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    let err = store
        .put_reader(
            &flow(),
            &mut FailsHalfway(NoiseReader::new(5, 4 << 20), 0),
            Path::new("harness pipe"),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read artifact data from `harness pipe`: connection reset"
    );
    assert!(files_under(&dir.path().join("store/TrainFlow/data")).is_empty());
}

#[test]
fn concurrent_puts_of_the_same_blob_agree() {
    let dir = TestDir::new("concurrent-put");
    let root = dir.path().join("store");
    LocalStore::open_or_create(&root).unwrap();
    let data = Arc::new(b"shared artifact ".repeat(200_000));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (root, data, barrier) = (root.clone(), Arc::clone(&data), Arc::clone(&barrier));
            thread::spawn(move || {
                // A store per thread, as separate processes would have.
                let store = LocalStore::open(&root).unwrap();
                barrier.wait();
                store
                    .put_reader(&flow(), &mut &data[..], Path::new("t"))
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.hash == hash_bytes(&data)));
    assert!(results.iter().any(|r| r.created));
    let store = LocalStore::open(&root).unwrap();
    assert_eq!(store.get(&flow(), &results[0].hash).unwrap(), *data);
    let files = files_under(&root.join("TrainFlow/data"));
    assert_eq!(files.len(), 1, "{files:?}");
}

/// Runs as the parent (spawning this test binary as a child to measure a process
/// that did nothing else) or, with `FLOWC_STORE_CHILD` set, as that child.
#[cfg(target_os = "linux")]
#[test]
fn streaming_a_64_mib_artifact_uses_bounded_memory() {
    const LEN: u64 = 64 << 20;
    if let Ok(root) = std::env::var("FLOWC_STORE_CHILD_STREAM") {
        let store = LocalStore::open_or_create(Path::new(&root)).unwrap();
        let stored = store
            .put_reader(&flow(), &mut NoiseReader::new(99, LEN), Path::new("noise"))
            .unwrap();
        assert_eq!(stored.size, LEN);
        assert_eq!(stored.hash, stream_digest(NoiseReader::new(99, LEN)).0);
        let mut sink = HashSink::default();
        let size = store
            .get_to_writer(&flow(), &stored.hash, &mut sink, Path::new("sink"))
            .unwrap();
        assert_eq!(size, LEN);
        assert_eq!(sink.finish(), (stored.hash, LEN));
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let peak = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .parse::<u64>()
            .unwrap();
        println!("peak-rss-kib {peak}");
        return;
    }
    let dir = TestDir::new("stream");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "streaming_a_64_mib_artifact_uses_bounded_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FLOWC_STORE_CHILD_STREAM", dir.path().join("store"))
        .output()
        .unwrap();
    // The child's test harness prints "test <name> ... " on the same line as the
    // child's first line of output, hence `split_once` rather than `strip_prefix`.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peak_kib: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("peak-rss-kib ").map(|(_, kib)| kib))
        .expect("child reports its peak memory")
        .parse()
        .unwrap();
    // Holding the artifact even once would take 64 MiB on top of the test binary.
    assert!(
        peak_kib < 40 * 1024,
        "peak RSS {peak_kib} KiB for a 64 MiB stream"
    );
}

// ---------------------------------------------------------------------------------
// Runs and tasks

#[test]
fn threads_creating_runs_get_distinct_ids() {
    let dir = TestDir::new("runs-threads");
    let root = dir.path().join("store");
    LocalStore::open_or_create(&root).unwrap();
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (root, barrier) = (root.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let store = LocalStore::open(&root).unwrap();
                barrier.wait();
                (0..5)
                    .map(|_| {
                        store
                            .create_run(&flow(), RunSpec::default())
                            .unwrap()
                            .run_id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<RunId> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let unique: BTreeSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), 30);
    let listed = LocalStore::open(&root).unwrap().list_runs(&flow()).unwrap();
    let expected: Vec<RunId> = (1..=30)
        .map(|i| RunId::new(&i.to_string()).unwrap())
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn processes_creating_runs_get_distinct_ids() {
    if let Ok(root) = std::env::var("FLOWC_STORE_CHILD_RUNS") {
        let store = LocalStore::open(Path::new(&root)).unwrap();
        for _ in 0..15 {
            let run = store.create_run(&flow(), RunSpec::default()).unwrap();
            println!("run-id {}", run.run_id);
        }
        return;
    }
    let dir = TestDir::new("runs-processes");
    let root = dir.path().join("store");
    LocalStore::open_or_create(&root).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "processes_creating_runs_get_distinct_ids",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("FLOWC_STORE_CHILD_RUNS", &root)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut all = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let ids: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_once("run-id ").map(|(_, id)| id))
            .map(str::to_owned)
            .collect();
        assert_eq!(ids.len(), 15, "{text}");
        all.extend(ids);
    }
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 30, "{all:?}");
    let store = LocalStore::open(&root).unwrap();
    assert_eq!(store.list_runs(&flow()).unwrap().len(), 30);
}

#[test]
fn run_and_task_metadata_round_trip() {
    let dir = TestDir::new("meta");
    let store = dir.store();
    let spec = RunSpec {
        parameters: [("alpha".to_owned(), serde_json::json!(0.5))].into(),
        source_sha256: "ab".repeat(32),
        flow_ir: serde_json::json!({"ir_version": 1, "name": "TrainFlow"}),
        origin_run_id: None,
        tags: vec!["nightly".to_owned()],
        user: Some("alice".to_owned()),
    };
    let mut run = store.create_run(&flow(), spec).unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(store.read_run(&flow(), &run.run_id).unwrap(), run);
    run.status = RunStatus::Succeeded;
    run.finished_at_unix_ms = Some(run.created_at_unix_ms + 1);
    store.write_run(&run).unwrap();
    assert_eq!(store.read_run(&flow(), &run.run_id).unwrap(), run);

    let path = task_path("1", "train", "3");
    let mut meta = TaskMeta::new(
        path.clone(),
        vec![ParentTask {
            step: StepName::new("start").unwrap(),
            task_id: TaskId::new("1").unwrap(),
        }],
    );
    meta.attempts.push(AttemptRecord {
        attempt: 0,
        status: AttemptStatus::Succeeded,
        started_at_unix_ms: 10,
        finished_at_unix_ms: Some(20),
        exit_code: Some(0),
        signal: None,
    });
    meta.status = TaskStatus::Succeeded;
    store.write_task(&meta).unwrap();
    assert_eq!(store.read_task(&path).unwrap(), meta);

    let mut manifest = Manifest::default();
    let blob = store.put(&flow(), b"model").unwrap();
    manifest.artifacts.insert(
        ArtifactName::new("model").unwrap(),
        ArtifactEntry {
            hash: blob.hash,
            type_name: "builtins.bytes".into(),
            size: blob.size,
            encoding: "pickle-v4".into(),
        },
    );
    store.write_manifest(&path, &manifest).unwrap();
    assert_eq!(store.read_manifest(&path).unwrap(), manifest);

    assert_eq!(store.list_flows().unwrap(), vec![flow()]);
    assert_eq!(
        store.list_steps(&flow(), &run.run_id).unwrap(),
        vec![StepName::new("train").unwrap()]
    );
    assert_eq!(
        store
            .list_tasks(&flow(), &run.run_id, &StepName::new("train").unwrap())
            .unwrap(),
        vec![TaskId::new("3").unwrap()]
    );
    let task_dir = dir.path().join("store/TrainFlow/runs/1/train/3");
    assert_eq!(
        files_under(&task_dir),
        vec![PathBuf::from("manifest.json"), PathBuf::from("task.json")]
    );
    assert_eq!(
        store.attempt_log_path(&path, 1, LogStream::Stdout),
        task_dir.join("attempt-1.stdout")
    );
}

#[test]
fn metadata_needs_an_existing_run() {
    let dir = TestDir::new("no-run");
    let store = dir.store();
    let err = store
        .write_task(&TaskMeta::new(task_path("5", "start", "1"), Vec::new()))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("run TrainFlow/5"), "{err}");
    let err = store
        .read_run(&flow(), &RunId::new("5").unwrap())
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[test]
fn create_run_with_an_existing_id_is_refused() {
    let dir = TestDir::new("run-with-id");
    let store = dir.store();
    let id = RunId::new("argo-train-x7k2p").unwrap();
    store
        .create_run_with_id(&flow(), &id, RunSpec::default())
        .unwrap();
    let err = store
        .create_run_with_id(&flow(), &id, RunSpec::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    // Integer allocation ignores ids that are not integers.
    let next = store.create_run(&flow(), RunSpec::default()).unwrap();
    assert_eq!(next.run_id.as_str(), "1");
    assert_eq!(
        store.list_runs(&flow()).unwrap(),
        vec![RunId::new("1").unwrap(), id]
    );
}

#[test]
fn broken_metadata_names_the_file() {
    let dir = TestDir::new("bad-json");
    let store = dir.store();
    store.create_run(&flow(), RunSpec::default()).unwrap();
    let path = task_path("1", "start", "1");
    store
        .write_task(&TaskMeta::new(path.clone(), Vec::new()))
        .unwrap();
    let file = store.layout().task_meta_path(&path);

    fs::write(&file, b"{\"flow\": \"TrainFlow\", ").unwrap();
    let err = store.read_task(&path).unwrap_err();
    assert!(matches!(err, StoreError::InvalidMetadata { .. }), "{err}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );

    // A task.json moved under another task's directory is caught, not trusted.
    let other = task_path("1", "start", "2");
    store
        .write_task(&TaskMeta::new(other.clone(), Vec::new()))
        .unwrap();
    fs::copy(store.layout().task_meta_path(&other), &file).unwrap();
    let err = store.read_task(&path).unwrap_err();
    assert!(
        err.to_string().contains(
            "describes task TrainFlow/1/start/2 but is stored as task TrainFlow/1/start/1"
        ),
        "{err}"
    );
}

#[test]
fn listings_skip_temporary_and_foreign_entries() {
    let dir = TestDir::new("listing");
    let store = dir.store();
    for _ in 0..3 {
        store.create_run(&flow(), RunSpec::default()).unwrap();
    }
    let runs = dir.path().join("store/TrainFlow/runs");
    fs::write(runs.join(".tmp.1.2.3"), b"").unwrap();
    fs::create_dir(runs.join("..hidden")).unwrap();
    fs::create_dir(runs.join("99")).unwrap(); // being created: no run.json yet
    fs::write(runs.join("notes.txt"), b"").unwrap();
    let ids: Vec<String> = store
        .list_runs(&flow())
        .unwrap()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    fs::write(dir.path().join("store/.tmp.9.9.9"), b"").unwrap();
    assert_eq!(store.list_flows().unwrap(), vec![flow()]);
}

// ---------------------------------------------------------------------------------
// Names, layout version

#[test]
fn traversal_attempts_are_rejected_before_touching_a_path() {
    let bad = [
        "../x",
        "/etc/passwd",
        "a/b",
        "a\0b",
        "",
        ".",
        "..",
        "x/../../y",
    ];
    for value in bad {
        assert!(FlowName::new(value).is_err(), "flow {value:?}");
        assert!(RunId::new(value).is_err(), "run {value:?}");
        assert!(StepName::new(value).is_err(), "step {value:?}");
        assert!(TaskId::new(value).is_err(), "task {value:?}");
        assert!(ArtifactName::new(value).is_err(), "artifact {value:?}");
        assert!(BlobHash::parse(value).is_err(), "hash {value:?}");
    }
    let err = RunId::new("../x").unwrap_err();
    assert_eq!(
        StoreError::from(err).to_string(),
        "invalid run id \"../x\": it must start with an ASCII letter, digit or `_`"
    );

    // The same checks guard names read back from disk.
    let dir = TestDir::new("traversal");
    let store = dir.store();
    store.create_run(&flow(), RunSpec::default()).unwrap();
    let path = task_path("1", "start", "1");
    store.write_manifest(&path, &Manifest::default()).unwrap();
    fs::write(
        store.layout().manifest_path(&path),
        format!(
            "{{\"artifacts\": {{\"../../escape\": {{\"hash\": \"{}\", \"type\": \"t\", \"size\": 1, \"encoding\": \"pickle-v4\"}}}}}}",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let err = store.read_manifest(&path).unwrap_err();
    assert!(matches!(err, StoreError::InvalidMetadata { .. }), "{err}");
    assert!(err.to_string().contains("invalid artifact name"), "{err}");
}

#[test]
fn unknown_layout_version_is_refused() {
    let dir = TestDir::new("layout");
    let root = dir.path().join("store");
    LocalStore::open_or_create(&root).unwrap();
    let marker = root.join(FORMAT_FILE);
    let current = fs::read_to_string(&marker).unwrap();
    assert!(
        current.contains(&format!("\"layout_version\":{LAYOUT_VERSION}")),
        "{current}"
    );

    fs::write(
        &marker,
        br#"{"format":"flowc-datastore","layout_version":2}"#,
    )
    .unwrap();
    for result in [LocalStore::open(&root), LocalStore::open_or_create(&root)] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedLayout { found: 2, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(&marker.display().to_string()), "{text}");
        assert!(text.contains("upgrade flowc"), "{text}");
    }
    // open_or_create must not have "repaired" the newer marker.
    assert!(fs::read_to_string(&marker)
        .unwrap()
        .contains("\"layout_version\":2"));
}

#[test]
fn opening_a_directory_that_is_not_a_store_fails_clearly() {
    let dir = TestDir::new("not-a-store");
    let err = LocalStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatastore { .. }), "{err}");
    assert!(err.to_string().contains("--datastore-root"), "{err}");
}

// ---------------------------------------------------------------------------------
// Resume

#[test]
fn clone_for_resume_shares_blobs_and_records_the_origin() {
    let dir = TestDir::new("clone");
    let store = dir.store();
    let first = store.create_run(&flow(), RunSpec::default()).unwrap();
    let from = task_path(first.run_id.as_str(), "start", "1");
    let mut meta = TaskMeta::new(from.clone(), Vec::new());
    meta.status = TaskStatus::Succeeded;
    meta.attempts.push(AttemptRecord {
        attempt: 0,
        status: AttemptStatus::Succeeded,
        started_at_unix_ms: 1,
        finished_at_unix_ms: Some(2),
        exit_code: Some(0),
        signal: None,
    });
    let blob = store.put(&flow(), b"big dataset").unwrap();
    let mut manifest = Manifest::default();
    manifest.artifacts.insert(
        ArtifactName::new("data").unwrap(),
        ArtifactEntry {
            hash: blob.hash,
            type_name: "builtins.bytes".into(),
            size: blob.size,
            encoding: "pickle-v4".into(),
        },
    );
    store.write_manifest(&from, &manifest).unwrap();
    store.write_task(&meta).unwrap();
    fs::write(
        store.attempt_log_path(&from, 0, LogStream::Stdout),
        b"hello from start\n",
    )
    .unwrap();

    let second = store
        .create_run(
            &flow(),
            RunSpec {
                origin_run_id: Some(first.run_id.clone()),
                ..RunSpec::default()
            },
        )
        .unwrap();
    let blobs_before = files_under(&dir.path().join("store/TrainFlow/data"));
    let cloned = store.clone_task(&from, &second.run_id).unwrap();

    let to = task_path(second.run_id.as_str(), "start", "1");
    assert_eq!(cloned.path, to);
    assert_eq!(
        cloned.origin,
        Some(TaskOrigin {
            run_id: first.run_id.clone(),
            task_id: TaskId::new("1").unwrap(),
        })
    );
    assert_eq!(cloned.attempts, meta.attempts);
    assert_eq!(cloned.status, TaskStatus::Succeeded);
    assert_eq!(store.read_task(&to).unwrap(), cloned);
    assert_eq!(store.read_manifest(&to).unwrap(), manifest);
    assert_eq!(
        fs::read(store.attempt_log_path(&to, 0, LogStream::Stdout)).unwrap(),
        b"hello from start\n"
    );
    assert!(!store.attempt_log_path(&to, 0, LogStream::Stderr).exists());
    assert_eq!(
        files_under(&dir.path().join("store/TrainFlow/data")),
        blobs_before,
        "cloning must not copy blobs"
    );
    assert_eq!(
        store
            .read_run(&flow(), &second.run_id)
            .unwrap()
            .origin_run_id,
        Some(first.run_id.clone())
    );

    // Cloning twice is a scheduler bug, reported as such.
    let err = store.clone_task(&from, &second.run_id).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    // So is cloning into a run that was never created.
    let err = store
        .clone_task(&from, &RunId::new("404").unwrap())
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[test]
fn clone_refuses_a_task_whose_blobs_are_gone() {
    let dir = TestDir::new("clone-missing");
    let store = dir.store();
    let first = store.create_run(&flow(), RunSpec::default()).unwrap();
    let second = store.create_run(&flow(), RunSpec::default()).unwrap();
    let from = task_path(first.run_id.as_str(), "train", "4");
    let blob = store.put(&flow(), b"weights").unwrap();
    let mut manifest = Manifest::default();
    manifest.artifacts.insert(
        ArtifactName::new("weights").unwrap(),
        ArtifactEntry {
            hash: blob.hash,
            type_name: "builtins.bytes".into(),
            size: blob.size,
            encoding: "pickle-v4".into(),
        },
    );
    store.write_manifest(&from, &manifest).unwrap();
    store
        .write_task(&TaskMeta::new(from.clone(), Vec::new()))
        .unwrap();
    fs::remove_file(store.layout().blob_path(&flow(), &blob.hash)).unwrap();

    let err = store.clone_task(&from, &second.run_id).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("artifact `weights`"), "{err}");
    assert!(store
        .list_tasks(&flow(), &second.run_id, &StepName::new("train").unwrap())
        .unwrap()
        .is_empty());
}
