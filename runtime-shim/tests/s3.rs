//! End-to-end tests of the S3 datastore backend against a real S3-protocol server on
//! loopback (moto's), started by the tests themselves: blobs, metadata, listings,
//! run-id allocation, resume's clone, and `flowc-shim init` + `task` with an `s3://`
//! root. Without a server the tests are skipped, unless `FLOWC_REQUIRE_S3_TESTS=1`
//! (CI) makes that a failure.
#![cfg(feature = "s3")]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use flowc_shim::store::{
    hash_bytes, ArtifactEntry, ArtifactName, AttemptRecord, AttemptStatus, BlobHash, BlobStore,
    CardRef, Corruption, FlowName, LogStream, Manifest, MetadataStore, RunId, RunSpec, S3Settings,
    S3Store, S3Url, StaticCredentials, StepName, StoreError, TaskId, TaskMeta, TaskOutput,
    TaskPath, TaskStatus,
};
use sha2::{Digest, Sha256};

mod support;

const SHIM: &str = env!("CARGO_BIN_EXE_flowc-shim");

/// The fake credentials the server accepts (moto checks no signature).
const ACCESS_KEY: &str = "flowc-test-key";
const SECRET_KEY: &str = "flowc-test-secret";

/// Starts moto's S3 application on a free loopback port, single-threaded, and prints
/// the port. Single-threaded because moto checks `If-None-Match` and then writes in two
/// steps: with concurrent requests two conditional writes could both succeed, which
/// AWS S3 never allows, and the run-id test would test moto instead of the store. The
/// server exits when its stdin closes, so it never outlives the test process.
///
/// One fix to moto: it names the root element of a CompleteMultipartUpload answer
/// `CompleteMultipartUploadResponse`, where S3 says `CompleteMultipartUploadResult`.
/// Python's SDK ignores the name; Rust's checks it (S3 may answer 200 with an error
/// document there) and would take the completed upload for a failure.
const SERVER: &str = r#"
import os, sys, threading
from werkzeug.serving import make_server
from moto.core.serialize import S3Serializer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

_to_response = S3Serializer._serialized_result_to_response

def _s3_root_names(self, resp, result, shape, serialized_result):
    resp = _to_response(self, resp, result, shape, serialized_result)
    if self.operation_model.name == "CompleteMultipartUpload":
        body = resp["body"]
        if isinstance(body, bytes):
            body = body.replace(b"CompleteMultipartUploadResponse", b"CompleteMultipartUploadResult")
        else:
            body = body.replace("CompleteMultipartUploadResponse", "CompleteMultipartUploadResult")
        resp["body"] = body
    return resp

S3Serializer._serialized_result_to_response = _s3_root_names

server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=False)
os.environ["MOTO_PORT"] = str(server.server_port)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_port, flush=True)
sys.stdin.read()
os._exit(0)
"#;

/// The running server: its port, and the process with its stdin, whose closing (when
/// the test process exits) stops it.
struct Server {
    port: u16,
    _process: Mutex<(Child, ChildStdin)>,
}

/// The shared server, started by the first test that needs it; `None` when it could
/// not be started and the tests may be skipped.
fn server() -> Option<&'static Server> {
    static SERVER_CELL: OnceLock<Option<Server>> = OnceLock::new();
    SERVER_CELL
        .get_or_init(|| match start_server() {
            Ok(server) => Some(server),
            Err(reason) => {
                let required = std::env::var("FLOWC_REQUIRE_S3_TESTS").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "FLOWC_REQUIRE_S3_TESTS=1 but the S3 test server could not start: {reason} \
                     (install it with `python3 -m pip install 'moto[server]'`)"
                );
                eprintln!("skipping the S3 tests: {reason}");
                None
            }
        })
        .as_ref()
}

fn start_server() -> Result<Server, String> {
    let mut child = Command::new("python3")
        .args(["-c", SERVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run python3: {err}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    // Reading the port blocks until the server is listening, or ends at EOF when the
    // import failed; a thread bounds the wait.
    let (sender, receiver) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the server did not report its port within 60 s".to_owned())?;
    let Ok(port) = line.trim().parse::<u16>() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("moto's server did not start (is `moto[server]` installed?)".to_owned());
    };
    let server = Server {
        port,
        _process: Mutex::new((child, stdin)),
    };
    // Wait until it answers HTTP.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(port, "GET", "/", b"").is_err() {
        if Instant::now() > deadline {
            return Err("the server did not answer within 30 s".to_owned());
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

/// One plain HTTP/1.1 request to the server, for setting things up and for damaging
/// objects behind the store's back. moto checks no signature, but treats a request
/// without an `Authorization` header as anonymous and refuses it private objects.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential={ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, \
         Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    Ok((status, response.split_off(start)))
}

/// A fresh bucket per test, with a key prefix, so tests never see each other's keys.
struct Bucket {
    port: u16,
    url: S3Url,
}

impl Bucket {
    fn new(name: &str) -> Option<Bucket> {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let server = server()?;
        let bucket = format!(
            "{name}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let (status, body) = http(server.port, "PUT", &format!("/{bucket}"), b"").unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        Some(Bucket {
            port: server.port,
            url: S3Url::parse(&format!("s3://{bucket}/team/flows")).unwrap(),
        })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint_url: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            credentials: Some(StaticCredentials {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: SECRET_KEY.into(),
                session_token: None,
            }),
        }
    }

    fn store(&self) -> S3Store {
        S3Store::open_or_create(&self.url, &self.settings()).unwrap()
    }

    /// The raw object under the root, bypassing the store.
    fn object(&self, relative: &str) -> (u16, Vec<u8>) {
        http(self.port, "GET", &self.path_of(relative), b"").unwrap()
    }

    fn put_object(&self, relative: &str, body: &[u8]) {
        let (status, reply) = http(self.port, "PUT", &self.path_of(relative), body).unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    }

    fn delete_object(&self, relative: &str) {
        let (status, _) = http(self.port, "DELETE", &self.path_of(relative), b"").unwrap();
        assert_eq!(status, 204);
    }

    fn path_of(&self, relative: &str) -> String {
        format!("/{}/{}", self.url.bucket, self.url.key(relative))
    }

    /// Keys under the root, as the server lists them (first page).
    fn keys(&self) -> Vec<String> {
        self.listed("Key")
    }

    /// ETags of the objects under the root (first page), quotes and all.
    fn etags(&self) -> Vec<String> {
        self.listed("ETag")
            .into_iter()
            .map(|etag| etag.replace("&quot;", "").replace('"', ""))
            .collect()
    }

    /// The values of one element of a ListObjectsV2 answer.
    fn listed(&self, element: &str) -> Vec<String> {
        let (status, body) = http(
            self.port,
            "GET",
            &format!(
                "/{}?list-type=2&prefix={}/",
                self.url.bucket, self.url.prefix
            ),
            b"",
        )
        .unwrap();
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&body);
        let (open, close) = (format!("<{element}>"), format!("</{element}>"));
        text.split(open.as_str())
            .skip(1)
            .filter_map(|rest| rest.split_once(close.as_str()).map(|(v, _)| v.to_owned()))
            .collect()
    }
}

/// Skips the test (returns) when the server is unavailable and not required.
macro_rules! bucket {
    ($name:expr) => {
        match Bucket::new($name) {
            Some(bucket) => bucket,
            None => return,
        }
    };
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

fn blob_relative(hash: &BlobHash) -> String {
    let hex = hash.to_hex();
    format!("TrainFlow/data/{}/{hex}", &hex[..2])
}

// ---------------------------------------------------------------------------------
// Blobs

#[test]
fn blobs_round_trip_and_dedupe() {
    let bucket = bucket!("blobs");
    let store = bucket.store();
    let value = b"a pickled value".repeat(100);
    let first = store.put(&flow(), &value).unwrap();
    assert!(first.created);
    assert_eq!(first.hash, hash_bytes(&value));
    assert_eq!(first.size, value.len() as u64);
    assert_eq!(store.get(&flow(), &first.hash).unwrap(), value);
    assert!(store.contains(&flow(), &first.hash).unwrap());

    // The object is one zstd frame under the layout's key.
    let (status, raw) = bucket.object(&blob_relative(&first.hash));
    assert_eq!(status, 200);
    assert_eq!(raw.get(..4), Some(&[0x28, 0xb5, 0x2f, 0xfd][..]));
    assert!(raw.len() < value.len(), "repetitive data should compress");

    let keys_before = bucket.keys();
    let again = store.put(&flow(), &value).unwrap();
    let streamed = store
        .put_reader(&flow(), &mut &value[..], Path::new("stream"))
        .unwrap();
    assert!(!again.created && !streamed.created);
    assert_eq!((again.hash, streamed.hash), (first.hash, first.hash));
    assert_eq!(
        bucket.keys(),
        keys_before,
        "a stored value is not written again"
    );

    let dir = support::flow_dir(&scratch(), "blob-file", "");
    let dest = dir.join("value.bin");
    assert_eq!(
        store.get_to_file(&flow(), &first.hash, &dest).unwrap(),
        value.len() as u64
    );
    assert_eq!(std::fs::read(&dest).unwrap(), value);

    // The empty value is a blob too.
    let empty = store.put(&flow(), b"").unwrap();
    assert_eq!(store.get(&flow(), &empty.hash).unwrap(), b"");
}

#[test]
fn a_missing_blob_is_not_found_and_a_damaged_one_corrupt() {
    let bucket = bucket!("damage");
    let store = bucket.store();
    let missing = hash_bytes(b"never stored");
    match store.get(&flow(), &missing).unwrap_err() {
        StoreError::NotFound { what, path } => {
            assert!(what.contains(&missing.to_hex()), "{what}");
            let expected = format!(
                "s3://{}/team/flows/{}",
                bucket.url.bucket,
                blob_relative(&missing)
            );
            assert_eq!(path, PathBuf::from(expected));
        }
        other => panic!("expected NotFound, got {other}"),
    }
    assert!(!store.contains(&flow(), &missing).unwrap());

    let stored = store.put(&flow(), b"the real value").unwrap();
    let key = blob_relative(&stored.hash);

    // A well-formed frame of other bytes: a hash mismatch naming both hashes.
    let other = zstd::encode_all(&b"another value"[..], 1).unwrap();
    bucket.put_object(&key, &other);
    match store.get(&flow(), &stored.hash).unwrap_err() {
        StoreError::Corrupt {
            expected,
            actual: Corruption::HashMismatch { actual },
            path,
        } => {
            assert_eq!(expected, stored.hash);
            assert_eq!(actual, hash_bytes(b"another value"));
            assert!(path.to_string_lossy().starts_with("s3://"), "{path:?}");
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }

    // Not zstd at all, and empty: undecodable.
    for damaged in [&b"plain text"[..], b""] {
        bucket.put_object(&key, damaged);
        let err = store.get(&flow(), &stored.hash).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    actual: Corruption::Undecodable { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("delete the file"), "{err}");
    }

    // get_to_file leaves no destination behind on a corrupt blob.
    let dir = support::flow_dir(&scratch(), "corrupt-file", "");
    let dest = dir.join("out.bin");
    assert!(store.get_to_file(&flow(), &stored.hash, &dest).is_err());
    assert!(!dest.exists());
}

/// A deterministic incompressible stream (xorshift), so the compressed blob is as large
/// as the artifact and goes through a multipart upload. The bytes do not depend on how
/// the reader is called.
struct NoiseReader {
    state: u64,
    word: [u8; 8],
    used: usize,
    left: u64,
}

impl NoiseReader {
    fn new(len: u64) -> Self {
        NoiseReader {
            state: 0x9e37_79b9_7f4a_7c15,
            word: [0; 8],
            used: 8,
            left: len,
        }
    }
}

impl Read for NoiseReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let limit = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = 0;
        while n < limit {
            if self.used == 8 {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                self.word = self.state.to_le_bytes();
                self.used = 0;
            }
            let take = (8 - self.used).min(limit - n);
            buf[n..n + take].copy_from_slice(&self.word[self.used..self.used + take]);
            self.used += take;
            n += take;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Hashes what it is given without keeping it.
#[derive(Default)]
struct HashSink {
    hasher: Sha256,
    len: u64,
}

impl Write for HashSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs as the parent (spawning this test binary to measure a process that does
/// nothing else) or, with `FLOWC_S3_CHILD_STREAM` set, as that child.
#[cfg(target_os = "linux")]
#[test]
fn a_large_artifact_streams_through_multipart_with_bounded_memory() {
    const LEN: u64 = 160 << 20;
    if let Ok(spec) = std::env::var("FLOWC_S3_CHILD_STREAM") {
        let (endpoint, root) = spec.split_once(' ').unwrap();
        let settings = S3Settings {
            endpoint_url: Some(endpoint.to_owned()),
            region: Some("us-east-1".into()),
            credentials: Some(StaticCredentials {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: SECRET_KEY.into(),
                session_token: None,
            }),
        };
        let store = S3Store::open_or_create(&S3Url::parse(root).unwrap(), &settings).unwrap();
        let noise = || NoiseReader::new(LEN);
        let stored = store
            .put_reader(&flow(), &mut noise(), Path::new("noise"))
            .unwrap();
        let mut expected = HashSink::default();
        std::io::copy(&mut noise(), &mut expected).unwrap();
        assert_eq!(stored.size, LEN);
        assert_eq!(stored.hash.as_bytes()[..], expected.hasher.finalize()[..]);
        let mut sink = HashSink::default();
        let size = store
            .get_to_writer(&flow(), &stored.hash, &mut sink, Path::new("sink"))
            .unwrap();
        assert_eq!(size, LEN);
        assert_eq!(stored.hash.as_bytes()[..], sink.hasher.finalize()[..]);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
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
    let bucket = bucket!("large");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_large_artifact_streams_through_multipart_with_bounded_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "FLOWC_S3_CHILD_STREAM",
            format!("{} {}", bucket.endpoint(), bucket.url),
        )
        .output()
        .unwrap();
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
    eprintln!("peak RSS of the streaming child: {peak_kib} KiB");
    // Holding the artifact once would take 160 MiB on top of the test binary.
    assert!(
        peak_kib < 48 * 1024,
        "peak RSS {peak_kib} KiB for a 160 MiB stream"
    );
    // It went up in parts: a multipart upload's ETag is `<md5 of the parts>-<count>`,
    // 11 parts of at most 16 MiB here (zstd's frame adds a little to raw noise).
    let etags = bucket.etags();
    let parts: Vec<u32> = etags
        .iter()
        .filter_map(|etag| etag.split_once('-'))
        .filter_map(|(_, count)| count.parse().ok())
        .collect();
    assert_eq!(parts, vec![11], "ETags {etags:?}");
}

// ---------------------------------------------------------------------------------
// Runs, tasks and listings

#[test]
fn concurrent_creators_get_distinct_run_ids() {
    let bucket = bucket!("runs");
    bucket.store();
    let bucket = Arc::new(bucket);
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (bucket, barrier) = (Arc::clone(&bucket), Arc::clone(&barrier));
            thread::spawn(move || {
                let store = S3Store::open(&bucket.url, &bucket.settings()).unwrap();
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
    let unique: BTreeSet<&RunId> = ids.iter().collect();
    assert_eq!(unique.len(), 20, "{ids:?}");
    let expected: Vec<RunId> = (1..=20)
        .map(|i| RunId::new(&i.to_string()).unwrap())
        .collect();
    assert_eq!(bucket.store().list_runs(&flow()).unwrap(), expected);
}

#[test]
fn listings_follow_the_local_order_across_pages() {
    let bucket = bucket!("listings");
    let store = Arc::new(bucket.store());
    // 1,003 integer runs (more than one 1,000-key page of common prefixes) and two
    // named ones; written from a few threads to keep the test short.
    let mut names: Vec<String> = (1..=1003).map(|i| i.to_string()).collect();
    names.extend(["argo-b".to_owned(), "010".to_owned(), "argo-a".to_owned()]);
    let chunks: Vec<Vec<String>> = names.chunks(300).map(<[String]>::to_vec).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for name in chunk {
                    store
                        .create_run_with_id(
                            &flow(),
                            &RunId::new(&name).unwrap(),
                            RunSpec::default(),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    // A run prefix without run.json (a key written behind the store's back) is not a run.
    bucket.put_object("TrainFlow/runs/2000/stray", b"x");
    let runs: Vec<String> = store
        .list_runs(&flow())
        .unwrap()
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    assert_eq!(runs.len(), 1006);
    assert_eq!(&runs[..3], ["1", "2", "3"]);
    assert_eq!(
        &runs[1000..],
        ["1001", "1002", "1003", "010", "argo-a", "argo-b"]
    );

    // 1,002 tasks of one step: their keys span two listing pages.
    let handles: Vec<_> = (0..3)
        .map(|part| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for i in (part * 334)..((part + 1) * 334) {
                    let meta = TaskMeta::new(task_path("5", "train", &i.to_string()), Vec::new());
                    store.write_task(&meta).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    // A task directory without task.json (an interrupted clone) is not listed.
    store
        .write_task_output(&task_path("5", "train", "x-1"), TaskOutput::NumSplits, b"2")
        .unwrap();
    store
        .write_task(&TaskMeta::new(task_path("5", "start", "0"), Vec::new()))
        .unwrap();
    let tasks = store
        .list_tasks(
            &flow(),
            &RunId::new("5").unwrap(),
            &StepName::new("train").unwrap(),
        )
        .unwrap();
    assert_eq!(tasks.len(), 1002);
    assert_eq!(tasks[0].as_str(), "0");
    assert_eq!(tasks[9].as_str(), "9");
    assert_eq!(tasks[10].as_str(), "10");
    assert_eq!(tasks[1001].as_str(), "1001");
    assert_eq!(
        store
            .list_steps(&flow(), &RunId::new("5").unwrap())
            .unwrap(),
        vec![
            StepName::new("start").unwrap(),
            StepName::new("train").unwrap()
        ]
    );
    assert_eq!(store.list_flows().unwrap(), vec![flow()]);
}

#[test]
fn metadata_and_task_outputs_round_trip() {
    let bucket = bucket!("meta");
    let store = bucket.store();
    let mut spec = RunSpec::default();
    spec.parameters
        .insert("alpha".into(), serde_json::json!(0.5));
    let run = store
        .create_run_with_id(&flow(), &RunId::new("argo-1").unwrap(), spec.clone())
        .unwrap();
    assert_eq!(store.read_run(&flow(), &run.run_id).unwrap(), run);
    let again = store.create_run_with_id(&flow(), &run.run_id, spec);
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );

    let task = task_path("argo-1", "start", "1");
    let blob = store.put(&flow(), b"model").unwrap();
    let mut manifest = Manifest::default();
    manifest.artifacts.insert(
        ArtifactName::new("model").unwrap(),
        ArtifactEntry {
            hash: blob.hash,
            type_name: "builtins.bytes".into(),
            size: blob.size,
            encoding: "pickle-v4".into(),
        },
    );
    store.write_manifest(&task, &manifest).unwrap();
    let mut meta = TaskMeta::new(task.clone(), Vec::new());
    meta.status = TaskStatus::Succeeded;
    meta.cards.push(CardRef {
        id: Some("summary".into()),
        card_type: "default".into(),
        hash: blob.hash,
        size: blob.size,
    });
    store.write_task(&meta).unwrap();
    assert_eq!(store.read_task(&task).unwrap(), meta);
    assert_eq!(store.read_manifest(&task).unwrap(), manifest);

    // The same bytes the local store writes: pretty JSON and a newline.
    let (_, raw) = bucket.object("TrainFlow/runs/argo-1/start/1/task.json");
    let mut expected = serde_json::to_vec_pretty(&meta).unwrap();
    expected.push(b'\n');
    assert_eq!(raw, expected);

    store
        .write_task_output(&task, TaskOutput::ForeachItems, b"[0,1,2]")
        .unwrap();
    store
        .write_task_output(&task, TaskOutput::ForeachItems, b"[0]")
        .unwrap();
    assert_eq!(
        store
            .read_task_output(&task, TaskOutput::ForeachItems)
            .unwrap(),
        b"[0]"
    );
    let (status, _) = bucket.object("TrainFlow/runs/argo-1/start/1/outputs/foreach_items.json");
    assert_eq!(status, 200);
    let missing = store.read_task_output(&task, TaskOutput::SwitchStep);
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    // Nothing is written into a run that was never created.
    let orphan = TaskMeta::new(task_path("nope", "start", "1"), Vec::new());
    let err = store.write_task(&orphan).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("run TrainFlow/nope"), "{err}");

    // A task.json stored under another task's key is refused.
    bucket.put_object("TrainFlow/runs/argo-1/start/2/task.json", &raw);
    let err = store
        .read_task(&task_path("argo-1", "start", "2"))
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidMetadata { .. }), "{err}");
}

#[test]
fn open_needs_a_marker_and_refuses_newer_layouts() {
    let bucket = bucket!("marker");
    let err = S3Store::open(&bucket.url, &bucket.settings()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatastore { .. }), "{err}");
    assert!(err.to_string().contains("s3://"), "{err}");
    bucket.store();
    let (status, marker) = bucket.object(".flowc-format");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&marker).contains("flowc-datastore"));
    S3Store::open(&bucket.url, &bucket.settings()).unwrap();
    bucket.put_object(
        ".flowc-format",
        br#"{"format":"flowc-datastore","layout_version":9}"#,
    );
    let err = S3Store::open(&bucket.url, &bucket.settings()).unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedLayout { found: 9, .. }),
        "{err}"
    );
}

#[test]
fn errors_name_the_object_and_what_to_check() {
    let bucket = bucket!("errors");
    let absent = S3Url::parse("s3://no-such-bucket-flowc/x").unwrap();
    let err = S3Store::open_or_create(&absent, &bucket.settings()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("s3://no-such-bucket-flowc/x/.flowc-format"),
        "{text}"
    );
    assert!(text.contains("NoSuchBucket"), "{text}");
    assert!(text.contains("check the bucket name"), "{text}");
    assert!(!text.contains("SdkError") && !text.contains("{ "), "{text}");

    // Nothing listens on this port (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = bucket.settings();
    settings.endpoint_url = Some(format!("http://127.0.0.1:{port}"));
    let err = S3Store::open_or_create(&bucket.url, &settings).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&bucket.url.bucket), "{text}");
    assert!(text.contains("FLOWC_S3_ENDPOINT_URL"), "{text}");
}

#[test]
fn clone_task_copies_metadata_and_logs() {
    let bucket = bucket!("clone");
    let store = bucket.store();
    store
        .create_run_with_id(&flow(), &RunId::new("1").unwrap(), RunSpec::default())
        .unwrap();
    let from = task_path("1", "train", "3");
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
    let mut meta = TaskMeta::new(from.clone(), Vec::new());
    meta.status = TaskStatus::Succeeded;
    for (attempt, status) in [(0, AttemptStatus::Failed), (1, AttemptStatus::Succeeded)] {
        meta.attempts.push(AttemptRecord {
            attempt,
            status,
            started_at_unix_ms: 1,
            finished_at_unix_ms: Some(2),
            exit_code: Some(i32::from(status == AttemptStatus::Failed)),
            signal: None,
        });
    }
    store.write_task(&meta).unwrap();
    // Only attempt 0 printed anything.
    let dir = support::flow_dir(&scratch(), "clone-logs", "");
    let log = dir.join("out.log");
    std::fs::write(&log, b"epoch 1: loss 0.3\n").unwrap();
    store
        .write_attempt_log(&from, 0, LogStream::Stdout, &log)
        .unwrap();

    let target = RunId::new("2").unwrap();
    let err = store.clone_task(&from, &target).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    store
        .create_run_with_id(&flow(), &target, RunSpec::default())
        .unwrap();
    let cloned = store.clone_task(&from, &target).unwrap();
    let to = task_path("2", "train", "3");
    assert_eq!(cloned.path, to);
    assert_eq!(cloned.attempts, meta.attempts);
    let origin = cloned.origin.clone().unwrap();
    assert_eq!(
        (origin.run_id.as_str(), origin.task_id.as_str()),
        ("1", "3")
    );
    assert_eq!(store.read_task(&to).unwrap(), cloned);
    assert_eq!(store.read_manifest(&to).unwrap(), manifest);
    assert_eq!(
        store.read_attempt_log(&to, 0, LogStream::Stdout).unwrap(),
        b"epoch 1: loss 0.3\n"
    );
    let none = store.read_attempt_log(&to, 1, LogStream::Stdout);
    assert!(matches!(none, Err(StoreError::NotFound { .. })), "{none:?}");
    assert_eq!(
        store
            .list_tasks(&flow(), &target, &StepName::new("train").unwrap())
            .unwrap(),
        vec![TaskId::new("3").unwrap()]
    );

    let twice = store.clone_task(&from, &target).unwrap_err();
    assert!(matches!(twice, StoreError::AlreadyExists { .. }), "{twice}");

    // A manifest naming a blob that is gone is never cloned.
    bucket.delete_object(&blob_relative(&blob.hash));
    store
        .create_run_with_id(&flow(), &RunId::new("3").unwrap(), RunSpec::default())
        .unwrap();
    let err = store
        .clone_task(&from, &RunId::new("3").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { ref what, .. } if what.contains("weights")),
        "{err}"
    );
    let (status, _) = bucket.object("TrainFlow/runs/3/train/3/task.json");
    assert_eq!(status, 404);
}

// ---------------------------------------------------------------------------------
// The shim against an S3 root

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("s3-tests")
}

const FLOW: &str = r#"
from metaflow import FlowSpec, Parameter, step


class TrainFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @step
    def start(self):
        print("training with alpha", self.alpha)
        self.score = self.alpha * 2
        self.next(self.end)

    @step
    def end(self):
        import sys
        print("final score", self.score)
        print("a warning on stderr", file=sys.stderr)
"#;

fn shim(bucket: &Bucket, dir: &Path, subcommand: &str) -> Command {
    let mut cmd = Command::new(SHIM);
    cmd.arg(subcommand)
        .arg("--datastore-root")
        .arg(bucket.url.to_string())
        .env("FLOWC_S3_ENDPOINT_URL", bucket.endpoint())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("FLOWC_DATASTORE_ROOT")
        .env_remove("FLOWC_PYTHON")
        .env("FLOWC_CACHE_DIR", scratch().join("cache"))
        .current_dir(dir);
    cmd
}

fn must_succeed(output: Output, what: &str) -> Output {
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        support::text(&output)
    );
    output
}

#[test]
fn shim_runs_a_flow_from_a_code_package_in_s3() {
    let bucket = bucket!("shim");
    let dir = support::flow_dir(&scratch(), "shim", FLOW);
    let package = must_succeed(
        shim(&bucket, &dir, "package")
            .args(["--flow-file", "flow.py", "--flow", "TrainFlow"])
            .output()
            .unwrap(),
        "package",
    );
    let hash = String::from_utf8(package.stdout).unwrap().trim().to_owned();
    let from_package = |cmd: &mut Command| {
        cmd.args(["--code-package", &hash, "--package-entry", "flow.py"])
            .args(["--flow", "TrainFlow", "--run-id", "sfn-7"]);
    };
    let mut init = shim(&bucket, &dir, "init");
    from_package(&mut init);
    must_succeed(
        init.args(["--params-json", r#"{"alpha": 2.5}"#])
            .output()
            .unwrap(),
        "init",
    );
    let mut start = shim(&bucket, &dir, "task");
    from_package(&mut start);
    let output = must_succeed(
        start
            .args(["--step", "start", "--task-id", "1"])
            .output()
            .unwrap(),
        "task start",
    );
    // The container's own output still shows the step's prints.
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("training with alpha 2.5"),
        "{}",
        support::text(&output)
    );
    let mut end = shim(&bucket, &dir, "task");
    from_package(&mut end);
    must_succeed(
        end.args([
            "--step",
            "end",
            "--task-id",
            "2",
            "--input-paths",
            "sfn-7/start/1",
        ])
        .output()
        .unwrap(),
        "task end",
    );

    let store = bucket.store();
    let start_path = TaskPath::new(
        flow(),
        RunId::new("sfn-7").unwrap(),
        StepName::new("start").unwrap(),
        TaskId::new("1").unwrap(),
    );
    let end_path = TaskPath {
        step: StepName::new("end").unwrap(),
        task_id: TaskId::new("2").unwrap(),
        ..start_path.clone()
    };
    assert_eq!(
        store.read_task(&start_path).unwrap().status,
        TaskStatus::Succeeded
    );
    assert_eq!(
        store.read_task(&end_path).unwrap().status,
        TaskStatus::Succeeded
    );
    let manifest = store.read_manifest(&start_path).unwrap();
    let score = manifest
        .artifacts
        .iter()
        .find(|(name, _)| name.as_str() == "score")
        .map(|(_, entry)| entry.hash)
        .expect("start stored `score`");
    let bytes = store.get(&flow(), &score).unwrap();
    assert_eq!(
        support::unpickle_repr(&scratch().join("cache"), &bytes),
        "5.0"
    );
    let runs = store.list_runs(&flow()).unwrap();
    assert_eq!(runs, vec![RunId::new("sfn-7").unwrap()]);

    // Each attempt's output is stored where `flowc logs` looks for it.
    let stdout = store
        .read_attempt_log(&end_path, 0, LogStream::Stdout)
        .unwrap();
    let stderr = store
        .read_attempt_log(&end_path, 0, LogStream::Stderr)
        .unwrap();
    assert!(String::from_utf8_lossy(&stdout).contains("final score 5.0"));
    assert!(String::from_utf8_lossy(&stderr).contains("a warning on stderr"));
    let start_log = store
        .read_attempt_log(&start_path, 0, LogStream::Stdout)
        .unwrap();
    assert!(String::from_utf8_lossy(&start_log).contains("training with alpha 2.5"));
    let params = TaskPath::new(
        flow(),
        RunId::new("sfn-7").unwrap(),
        StepName::new("_parameters").unwrap(),
        TaskId::new("0").unwrap(),
    );
    assert!(store
        .read_attempt_log(&params, 0, LogStream::Stderr)
        .is_ok());

    // The code package was unpacked into the local cache, not under the S3 root.
    assert!(scratch()
        .join("cache")
        .join("code")
        .join(&hash)
        .join("flow.py")
        .is_file());
}

#[test]
fn a_failing_shim_stores_its_own_error_in_the_attempt_log() {
    let bucket = bucket!("shimfail");
    let dir = support::flow_dir(&scratch(), "shimfail", FLOW);
    let base = |cmd: &mut Command| {
        cmd.args([
            "--flow-file",
            "flow.py",
            "--flow",
            "TrainFlow",
            "--run-id",
            "9",
        ]);
    };
    let mut init = shim(&bucket, &dir, "init");
    base(&mut init);
    must_succeed(init.output().unwrap(), "init");
    // A parent that never ran: the task cannot start, and says so.
    let mut task = shim(&bucket, &dir, "task");
    base(&mut task);
    let output = task
        .args([
            "--step",
            "end",
            "--task-id",
            "2",
            "--input-paths",
            "9/start/1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", support::text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no manifest"), "{stderr}");
    let store = bucket.store();
    let path = TaskPath::new(
        flow(),
        RunId::new("9").unwrap(),
        StepName::new("end").unwrap(),
        TaskId::new("2").unwrap(),
    );
    assert_eq!(store.read_task(&path).unwrap().status, TaskStatus::Failed);
    let stored = store.read_attempt_log(&path, 0, LogStream::Stderr).unwrap();
    assert!(
        String::from_utf8_lossy(&stored).contains("has no manifest"),
        "{}",
        String::from_utf8_lossy(&stored)
    );
}
