//! The datastore in an S3 bucket (or an S3-compatible server): what pods and Batch jobs
//! use with `--datastore-root s3://bucket/prefix`.
//!
//! Same layout as [`LocalStore`](super::LocalStore), with each file's path relative to
//! the root as its key under `prefix/`; the same blob format and metadata bytes, so a
//! store can be copied between the two with `aws s3 sync`. What S3 gives in place of
//! the filesystem's guarantees:
//! - every `PutObject` is atomic (readers see the old object or the new one whole), so
//!   metadata needs no temporary name, and a multipart upload appears only when it is
//!   completed;
//! - reads and listings are strongly consistent after writes;
//! - conditional writes (`If-None-Match: *`) create an object only if it is absent,
//!   which is what makes run ids unique where the local store uses `mkdir`.

mod client;
mod transfer;

use std::collections::HashSet;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinSet;

use super::blob::{self, hash_bytes};
use super::error::{Corruption, StoreError, StoreResult};
use super::fsutil::{self, TempFile};
use super::layout::{self, Layout, LogStream, TaskOutput};
use super::local::{id_order, integer_id, json_bytes, StoreOptions};
use super::meta::{now_unix_ms, Manifest, RunMeta, RunSpec, TaskMeta, TaskOrigin};
use super::names::{BlobHash, FlowName, RunId, StepName, TaskId, TaskPath};
use super::root::S3Url;
use super::{BlobRef, BlobStore, MetadataStore};
use client::{conflict, is_missing, sdk_error, Conflict, Connection};
use transfer::{BodyReader, Staged, Stager, Target};

pub use client::{S3Settings, StaticCredentials, ENDPOINT_ENV_VAR};

/// How many ids [`S3Store::create_run`] tries; each failure means another creator took
/// that id a moment earlier.
const RUN_ID_ATTEMPTS: u32 = 1_000;

/// Tries of a conditional write that S3 answered with 409 (another conditional write
/// of the key in flight), and the pause before the first retry (doubled each time).
const IN_FLIGHT_RETRIES: u32 = 6;
const IN_FLIGHT_PAUSE: Duration = Duration::from_millis(50);

/// Existence checks sent at once by listings and `clone_task`.
const CHECKS_IN_FLIGHT: usize = 16;

/// A datastore under an `s3://bucket/prefix` root.
pub struct S3Store {
    conn: Connection,
    url: S3Url,
    /// Paths relative to the root: the keys under `prefix/`.
    layout: Layout,
    options: StoreOptions,
    /// Where blobs too large for memory are staged before upload, and downloads before
    /// they are renamed into place.
    temp_dir: PathBuf,
    /// Runs whose `run.json` this store has seen, so writes into them skip the check.
    known_runs: Mutex<HashSet<(FlowName, RunId)>>,
    /// Whether the server honours `If-None-Match: *`, once checked.
    conditional_writes: OnceLock<bool>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("root", &self.url.to_string())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Opens an existing datastore, checking its layout marker; fails with
    /// [`StoreError::NotADatastore`] when the root has none.
    pub fn open(url: &S3Url, settings: &S3Settings) -> StoreResult<S3Store> {
        let store = Self::connect(url, settings, StoreOptions::default())?;
        store.check_marker(false)?;
        Ok(store)
    }

    /// Opens the datastore, writing its layout marker if the root has none yet.
    pub fn open_or_create(url: &S3Url, settings: &S3Settings) -> StoreResult<S3Store> {
        Self::open_or_create_with(url, settings, StoreOptions::default())
    }

    pub fn open_or_create_with(
        url: &S3Url,
        settings: &S3Settings,
        options: StoreOptions,
    ) -> StoreResult<S3Store> {
        let store = Self::connect(url, settings, options)?;
        store.check_marker(true)?;
        Ok(store)
    }

    fn connect(url: &S3Url, settings: &S3Settings, options: StoreOptions) -> StoreResult<S3Store> {
        let conn = Connection::new(settings)
            .map_err(|err| StoreError::io("start the S3 client for", url.to_string(), err))?;
        Ok(S3Store {
            conn,
            url: url.clone(),
            layout: Layout::new(PathBuf::new()),
            options,
            temp_dir: std::env::temp_dir(),
            known_runs: Mutex::new(HashSet::new()),
            conditional_writes: OnceLock::new(),
        })
    }

    /// The root, `s3://bucket/prefix`.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// The key of a path relative to the root.
    fn key(&self, relative: &Path) -> String {
        let parts: Vec<&str> = relative
            .components()
            .filter_map(|part| part.as_os_str().to_str())
            .collect();
        self.url.key(&parts.join("/"))
    }

    /// The listing prefix of a directory relative to the root (`…/` or empty).
    fn dir_prefix(&self, relative: &Path) -> String {
        let key = self.key(relative);
        if key.is_empty() {
            key
        } else {
            key + "/"
        }
    }

    /// `s3://bucket/key`, for messages.
    fn object_url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.url.bucket)
    }

    fn target<'a>(&'a self, key: &'a str, url: &'a str) -> Target<'a> {
        Target {
            bucket: &self.url.bucket,
            key,
            url,
        }
    }

    fn check_marker(&self, create: bool) -> StoreResult<()> {
        let key = self.key(&self.layout.format_file());
        let url = self.object_url(&key);
        match self.get_bytes(&key)? {
            Some(bytes) => layout::check_format_marker(Path::new(&url), &bytes).map(|_| ()),
            None if create => {
                // Concurrent creators write the same bytes; whoever loses the
                // conditional write finds the winner's identical marker.
                self.put_new(&key, layout::format_marker_bytes())
                    .map(|_| ())
            }
            None => Err(StoreError::NotADatastore {
                root: PathBuf::from(self.url.to_string()),
            }),
        }
    }

    /// Fetches a small object whole; `None` when it does not exist.
    fn get_bytes(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let result = self.conn.runtime.block_on(
            self.conn
                .client
                .get_object()
                .bucket(&self.url.bucket)
                .key(key)
                .send(),
        );
        let output = match result {
            Ok(output) => output,
            Err(err) if is_missing(&err) => return Ok(None),
            Err(err) => return Err(sdk_error("read", &self.object_url(key), err)),
        };
        match self.conn.runtime.block_on(output.body.collect()) {
            Ok(data) => Ok(Some(data.to_vec())),
            Err(err) => Err(StoreError::io(
                "read",
                self.object_url(key),
                io::Error::other(format!(
                    "the download broke off: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&err)
                )),
            )),
        }
    }

    /// Whether an object exists (`HeadObject`).
    fn exists(&self, key: &str) -> StoreResult<bool> {
        let result = self.conn.runtime.block_on(
            self.conn
                .client
                .head_object()
                .bucket(&self.url.bucket)
                .key(key)
                .send(),
        );
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_missing(&err) => Ok(false),
            Err(err) => Err(sdk_error("look up", &self.object_url(key), err)),
        }
    }

    /// Which of `keys` exist, in order, checking [`CHECKS_IN_FLIGHT`] at a time.
    fn exist_many(&self, keys: &[String]) -> StoreResult<Vec<bool>> {
        let client = &self.conn.client;
        let bucket = &self.url.bucket;
        let checks = async {
            let mut found = vec![false; keys.len()];
            let mut running = JoinSet::new();
            let mut next = keys.iter().enumerate();
            loop {
                while running.len() < CHECKS_IN_FLIGHT {
                    let Some((index, key)) = next.next() else {
                        break;
                    };
                    let request = client.head_object().bucket(bucket).key(key);
                    running.spawn(async move { (index, request.send().await) });
                }
                let (index, result) = match running.join_next().await {
                    None => return Ok(found),
                    Some(Ok(joined)) => joined,
                    Some(Err(err)) => {
                        return Err(StoreError::io(
                            "look up objects under",
                            self.url.to_string(),
                            io::Error::other(format!("a lookup task failed: {err}")),
                        ))
                    }
                };
                match result {
                    Ok(_) => {
                        if let Some(slot) = found.get_mut(index) {
                            *slot = true;
                        }
                    }
                    Err(err) if is_missing(&err) => {}
                    Err(err) => {
                        let key = keys.get(index).map_or("", String::as_str);
                        return Err(sdk_error("look up", &self.object_url(key), err));
                    }
                }
            }
        };
        self.conn.runtime.block_on(checks)
    }

    /// Writes an object whole with one `PutObject`.
    fn put(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        let url = self.object_url(key);
        transfer::put_bytes(
            &self.conn.runtime,
            &self.conn.client,
            &self.target(key, &url),
            bytes,
        )
    }

    /// Writes an object only if the key is free (`If-None-Match: *`); `false` when it
    /// is taken.
    fn put_new(&self, key: &str, bytes: Vec<u8>) -> StoreResult<bool> {
        let mut pause = IN_FLIGHT_PAUSE;
        for _ in 0..IN_FLIGHT_RETRIES {
            let result = self.conn.runtime.block_on(
                self.conn
                    .client
                    .put_object()
                    .bucket(&self.url.bucket)
                    .key(key)
                    .if_none_match("*")
                    .body(ByteStream::from(bytes.clone()))
                    .send(),
            );
            match result {
                Ok(_) => return Ok(true),
                Err(err) => match conflict(&err) {
                    Some(Conflict::Exists) => return Ok(false),
                    // The other writer's request may still fail: ask again shortly.
                    Some(Conflict::InFlight) => {
                        std::thread::sleep(pause);
                        pause *= 2;
                    }
                    None => return Err(sdk_error("create", &self.object_url(key), err)),
                },
            }
        }
        // Still contended after every retry: someone else keeps the key busy.
        Ok(false)
    }

    fn put_json<T: Serialize>(&self, relative: &Path, value: &T) -> StoreResult<()> {
        let key = self.key(relative);
        let bytes = json_bytes(Path::new(&self.object_url(&key)), value)?;
        self.put(&key, bytes)
    }

    /// Reads and parses a metadata object; `what` names it for `NotFound`.
    fn read_json<T: DeserializeOwned>(
        &self,
        relative: &Path,
        what: impl FnOnce() -> String,
    ) -> StoreResult<T> {
        let key = self.key(relative);
        let url = PathBuf::from(self.object_url(&key));
        let Some(bytes) = self.get_bytes(&key)? else {
            return Err(StoreError::NotFound {
                what: what(),
                path: url,
            });
        };
        serde_json::from_slice(&bytes).map_err(|err| StoreError::InvalidMetadata {
            path: url,
            reason: err.to_string(),
        })
    }

    /// Names directly under a directory (`ListObjectsV2` with a delimiter, every page).
    fn list_names(&self, dir: &Path) -> StoreResult<Vec<String>> {
        let prefix = self.dir_prefix(dir);
        let mut names = Vec::new();
        self.list(&prefix, true, |page| {
            for common in page.common_prefixes() {
                let name = common
                    .prefix()
                    .and_then(|p| p.strip_prefix(prefix.as_str()))
                    .and_then(|p| p.strip_suffix('/'));
                if let Some(name) = name {
                    names.push(name.to_owned());
                }
            }
        })?;
        Ok(names)
    }

    /// Every key under a directory, relative to it (no delimiter, every page).
    fn list_keys(&self, dir: &Path) -> StoreResult<Vec<String>> {
        let prefix = self.dir_prefix(dir);
        let mut keys = Vec::new();
        self.list(&prefix, false, |page| {
            for object in page.contents() {
                if let Some(rest) = object.key().and_then(|k| k.strip_prefix(prefix.as_str())) {
                    keys.push(rest.to_owned());
                }
            }
        })?;
        Ok(keys)
    }

    fn list(
        &self,
        prefix: &str,
        delimited: bool,
        mut each_page: impl FnMut(&aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output),
    ) -> StoreResult<()> {
        let mut token: Option<String> = None;
        loop {
            let mut request = self
                .conn
                .client
                .list_objects_v2()
                .bucket(&self.url.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take());
            if delimited {
                request = request.delimiter("/");
            }
            let page = self
                .conn
                .runtime
                .block_on(request.send())
                .map_err(|err| sdk_error("list", &self.object_url(prefix), err))?;
            each_page(&page);
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(()),
            }
        }
    }

    /// Fails with `NotFound` unless the run's `run.json` exists.
    fn require_run(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<()> {
        let entry = (flow.clone(), run_id.clone());
        if self.runs().contains(&entry) {
            return Ok(());
        }
        let key = self.key(&self.layout.run_meta_path(flow, run_id));
        if !self.exists(&key)? {
            return Err(StoreError::NotFound {
                what: format!("run {flow}/{run_id}"),
                path: PathBuf::from(self.object_url(&key)),
            });
        }
        self.runs().insert(entry);
        Ok(())
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashSet<(FlowName, RunId)>> {
        // The set only caches lookups; one left half-updated by a panic is still valid.
        self.known_runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks once that the server honours `If-None-Match: *`, by repeating the layout
    /// marker's creation: it exists, so a server that supports conditional writes must
    /// refuse. Without that support run ids could be handed out twice, so the store
    /// refuses to allocate them rather than corrupt runs silently.
    fn require_conditional_writes(&self) -> StoreResult<()> {
        let supported = match self.conditional_writes.get() {
            Some(known) => *known,
            None => {
                let key = self.key(&self.layout.format_file());
                let refused = !self.put_new(&key, layout::format_marker_bytes())?;
                *self.conditional_writes.get_or_init(|| refused)
            }
        };
        if supported {
            Ok(())
        } else {
            Err(StoreError::io(
                "create runs in",
                self.url.to_string(),
                io::Error::other(
                    "the S3 server ignores conditional writes (If-None-Match: *), so run ids could be given out twice; use a server that supports them (AWS S3 does) or let the orchestrator choose run ids",
                ),
            ))
        }
    }

    fn new_run(
        &self,
        flow: &FlowName,
        run_id: RunId,
        spec: RunSpec,
    ) -> StoreResult<Option<RunMeta>> {
        let meta = RunMeta::new(flow.clone(), run_id, spec, now_unix_ms());
        let relative = self.layout.run_meta_path(flow, &meta.run_id);
        let key = self.key(&relative);
        let bytes = json_bytes(Path::new(&self.object_url(&key)), &meta)?;
        if !self.put_new(&key, bytes)? {
            return Ok(None);
        }
        self.runs().insert((flow.clone(), meta.run_id.clone()));
        Ok(Some(meta))
    }

    /// Encodes what `reader` yields into a staging area, then uploads it under its
    /// hash unless the blob exists.
    fn store_blob(
        &self,
        flow: &FlowName,
        reader: &mut dyn Read,
        label: &Path,
    ) -> StoreResult<BlobRef> {
        let mut stager = Stager::new(&self.temp_dir);
        let encoded = blob::encode(
            reader,
            label,
            &mut stager,
            &self.temp_dir.join("<staged blob>"),
            self.options.compression_level,
        )?;
        let staged = stager.finish()?;
        let key = self.key(&self.layout.blob_path(flow, &encoded.hash));
        let created = !self.exists(&key)?;
        if created {
            let url = self.object_url(&key);
            let target = self.target(&key, &url);
            let (runtime, client) = (&self.conn.runtime, &self.conn.client);
            match staged {
                Staged::Memory(bytes) => transfer::put_bytes(runtime, client, &target, bytes)?,
                Staged::File { temp, len } => {
                    transfer::put_file(runtime, client, &target, temp.path(), len)?;
                }
            }
        }
        Ok(BlobRef {
            hash: encoded.hash,
            size: encoded.size,
            created,
        })
    }

    /// Starts downloading a blob: the body, and the blob's URL for messages.
    fn open_blob(&self, flow: &FlowName, hash: &BlobHash) -> StoreResult<(ByteStream, String)> {
        let key = self.key(&self.layout.blob_path(flow, hash));
        let url = self.object_url(&key);
        let result = self.conn.runtime.block_on(
            self.conn
                .client
                .get_object()
                .bucket(&self.url.bucket)
                .key(&key)
                .send(),
        );
        let output = match result {
            Ok(output) => output,
            Err(err) if is_missing(&err) => {
                return Err(StoreError::NotFound {
                    what: format!("blob {hash} of flow {flow}"),
                    path: PathBuf::from(url),
                })
            }
            Err(err) => return Err(sdk_error("read", &url, err)),
        };
        // As in the local store: an empty object is damage, not an empty value (even
        // an empty value is a zstd frame of a few bytes).
        if output.content_length() == Some(0) {
            return Err(StoreError::Corrupt {
                path: PathBuf::from(url),
                expected: *hash,
                actual: Corruption::Undecodable {
                    reason: "the object is empty".to_owned(),
                },
            });
        }
        Ok((output.body, url))
    }

    /// Decodes a blob's body into `sink`, reporting a broken download as an I/O error
    /// rather than as corruption.
    fn decode(
        &self,
        body: ByteStream,
        url: &str,
        hash: &BlobHash,
        sink: &mut dyn Write,
        label: &Path,
    ) -> StoreResult<u64> {
        let mut reader = BodyReader::new(&self.conn.runtime, body);
        let result = blob::decode_verified(&mut reader, Path::new(url), hash, sink, label);
        match (result, reader.failure) {
            (Err(StoreError::Corrupt { .. }), Some(failure)) => {
                Err(StoreError::io("read", url, io::Error::other(failure)))
            }
            (result, _) => result,
        }
    }

    /// Copies an object within the bucket; `false` when the source does not exist.
    fn copy(&self, from_key: &str, to_key: &str) -> StoreResult<bool> {
        let source = format!("{}/{}", self.url.bucket, encode_key(from_key));
        let result = self.conn.runtime.block_on(
            self.conn
                .client
                .copy_object()
                .bucket(&self.url.bucket)
                .key(to_key)
                .copy_source(source)
                .send(),
        );
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_missing(&err) => Ok(false),
            Err(err) => Err(sdk_error(
                "copy an object to",
                &self.object_url(to_key),
                err,
            )),
        }
    }

    /// Stores a file as one attempt's stdout or stderr (`attempt-<n>.stdout|stderr`),
    /// streaming it: how a task that ran in a container keeps its output for
    /// `flowc logs`. The run must exist.
    pub fn write_attempt_log(
        &self,
        task: &TaskPath,
        attempt: u32,
        stream: LogStream,
        file: &Path,
    ) -> StoreResult<()> {
        self.require_run(&task.flow, &task.run_id)?;
        let len = std::fs::metadata(file)
            .map_err(|err| StoreError::io("inspect", file, err))?
            .len();
        let key = self.key(&self.layout.attempt_log_path(task, attempt, stream));
        let url = self.object_url(&key);
        transfer::put_file(
            &self.conn.runtime,
            &self.conn.client,
            &self.target(&key, &url),
            file,
            len,
        )
    }

    /// Reads one attempt's stdout or stderr; `NotFound` when the attempt stored none.
    pub fn read_attempt_log(
        &self,
        task: &TaskPath,
        attempt: u32,
        stream: LogStream,
    ) -> StoreResult<Vec<u8>> {
        let key = self.key(&self.layout.attempt_log_path(task, attempt, stream));
        self.get_bytes(&key)?.ok_or_else(|| StoreError::NotFound {
            what: format!("log of attempt {attempt} of task {task}"),
            path: PathBuf::from(self.object_url(&key)),
        })
    }
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/` and unreserved bytes.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl BlobStore for S3Store {
    fn put(&self, flow: &FlowName, bytes: &[u8]) -> StoreResult<BlobRef> {
        // Hash first: a value already stored costs one HEAD and no compression.
        let hash = hash_bytes(bytes);
        let size = bytes.len() as u64;
        if self.contains(flow, &hash)? {
            return Ok(BlobRef {
                hash,
                size,
                created: false,
            });
        }
        self.store_blob(flow, &mut &bytes[..], Path::new("memory"))
    }

    fn put_reader(
        &self,
        flow: &FlowName,
        reader: &mut dyn Read,
        label: &Path,
    ) -> StoreResult<BlobRef> {
        self.store_blob(flow, reader, label)
    }

    fn get_to_writer(
        &self,
        flow: &FlowName,
        hash: &BlobHash,
        writer: &mut dyn Write,
        label: &Path,
    ) -> StoreResult<u64> {
        let (body, url) = self.open_blob(flow, hash)?;
        self.decode(body, &url, hash, writer, label)
    }

    fn get_to_file(&self, flow: &FlowName, hash: &BlobHash, dest: &Path) -> StoreResult<u64> {
        let (body, url) = self.open_blob(flow, hash)?;
        let mut temp = TempFile::create_in(fsutil::parent_of(dest))?;
        let temp_path = temp.path().to_path_buf();
        let size = {
            let mut out = BufWriter::new(temp.file()?);
            let size = self.decode(body, &url, hash, &mut out, dest)?;
            out.flush()
                .map_err(|err| StoreError::io("write", temp_path, err))?;
            size
        };
        temp.persist(dest)?;
        Ok(size)
    }

    fn contains(&self, flow: &FlowName, hash: &BlobHash) -> StoreResult<bool> {
        self.exists(&self.key(&self.layout.blob_path(flow, hash)))
    }
}

impl MetadataStore for S3Store {
    fn create_run(&self, flow: &FlowName, spec: RunSpec) -> StoreResult<RunMeta> {
        self.require_conditional_writes()?;
        // Start above the highest integer id present; on a lost race, move up one. Any
        // key under a run's prefix counts, like a directory in the local store.
        let highest = self
            .list_names(&self.layout.runs_dir(flow))?
            .iter()
            .filter_map(|name| integer_id(name))
            .max()
            .unwrap_or(0);
        let mut candidate = highest.saturating_add(1);
        for _ in 0..RUN_ID_ATTEMPTS {
            let run_id = RunId::new(&candidate.to_string())?;
            if let Some(meta) = self.new_run(flow, run_id, spec.clone())? {
                return Ok(meta);
            }
            candidate = candidate.saturating_add(1);
        }
        Err(StoreError::RunIdsExhausted {
            path: PathBuf::from(self.object_url(&self.dir_prefix(&self.layout.runs_dir(flow)))),
            attempts: RUN_ID_ATTEMPTS,
        })
    }

    fn create_run_with_id(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        spec: RunSpec,
    ) -> StoreResult<RunMeta> {
        self.require_conditional_writes()?;
        self.new_run(flow, run_id.clone(), spec)?
            .ok_or_else(|| StoreError::AlreadyExists {
                what: format!("run {flow}/{run_id}"),
                path: PathBuf::from(
                    self.object_url(&self.key(&self.layout.run_meta_path(flow, run_id))),
                ),
            })
    }

    fn write_run(&self, meta: &RunMeta) -> StoreResult<()> {
        self.require_run(&meta.flow, &meta.run_id)?;
        self.put_json(&self.layout.run_meta_path(&meta.flow, &meta.run_id), meta)
    }

    fn read_run(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<RunMeta> {
        let relative = self.layout.run_meta_path(flow, run_id);
        let meta: RunMeta = self.read_json(&relative, || format!("run {flow}/{run_id}"))?;
        if meta.flow != *flow || meta.run_id != *run_id {
            return Err(StoreError::InvalidMetadata {
                path: PathBuf::from(self.object_url(&self.key(&relative))),
                reason: format!(
                    "it describes run {}/{} but is stored as run {flow}/{run_id}",
                    meta.flow, meta.run_id
                ),
            });
        }
        Ok(meta)
    }

    fn list_flows(&self) -> StoreResult<Vec<FlowName>> {
        let mut flows: Vec<FlowName> = self
            .list_names(self.layout.root())?
            .iter()
            .filter_map(|name| FlowName::new(name).ok())
            .collect();
        flows.sort();
        Ok(flows)
    }

    fn list_runs(&self, flow: &FlowName) -> StoreResult<Vec<RunId>> {
        let candidates: Vec<RunId> = self
            .list_names(&self.layout.runs_dir(flow))?
            .iter()
            .filter_map(|name| RunId::new(name).ok())
            .collect();
        let keys: Vec<String> = candidates
            .iter()
            .map(|run_id| self.key(&self.layout.run_meta_path(flow, run_id)))
            .collect();
        let present = self.exist_many(&keys)?;
        let mut runs: Vec<RunId> = candidates
            .into_iter()
            .zip(present)
            .filter_map(|(run_id, present)| present.then_some(run_id))
            .collect();
        runs.sort_by(|a, b| id_order(a.as_str()).cmp(&id_order(b.as_str())));
        Ok(runs)
    }

    fn list_steps(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<Vec<StepName>> {
        let mut steps: Vec<StepName> = self
            .list_names(&self.layout.run_dir(flow, run_id))?
            .iter()
            .filter_map(|name| StepName::new(name).ok())
            .collect();
        steps.sort();
        Ok(steps)
    }

    fn list_tasks(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        step: &StepName,
    ) -> StoreResult<Vec<TaskId>> {
        // One listing of every key of the step beats one lookup per task: a task has a
        // handful of objects, and only those with a `task.json` count.
        let mut tasks: Vec<TaskId> = self
            .list_keys(&self.layout.step_dir(flow, run_id, step))?
            .iter()
            .filter_map(|rest| rest.strip_suffix("/task.json"))
            .filter_map(|name| TaskId::new(name).ok())
            .collect();
        tasks.sort_by(|a, b| id_order(a.as_str()).cmp(&id_order(b.as_str())));
        Ok(tasks)
    }

    fn write_task(&self, meta: &TaskMeta) -> StoreResult<()> {
        self.require_run(&meta.path.flow, &meta.path.run_id)?;
        self.put_json(&self.layout.task_meta_path(&meta.path), meta)
    }

    fn read_task(&self, task: &TaskPath) -> StoreResult<TaskMeta> {
        let relative = self.layout.task_meta_path(task);
        let meta: TaskMeta = self.read_json(&relative, || format!("task {task}"))?;
        if meta.path != *task {
            return Err(StoreError::InvalidMetadata {
                path: PathBuf::from(self.object_url(&self.key(&relative))),
                reason: format!(
                    "it describes task {} but is stored as task {task}",
                    meta.path
                ),
            });
        }
        Ok(meta)
    }

    fn write_manifest(&self, task: &TaskPath, manifest: &Manifest) -> StoreResult<()> {
        self.require_run(&task.flow, &task.run_id)?;
        self.put_json(&self.layout.manifest_path(task), manifest)
    }

    fn read_manifest(&self, task: &TaskPath) -> StoreResult<Manifest> {
        self.read_json(&self.layout.manifest_path(task), || {
            format!("artifact manifest of task {task}")
        })
    }

    fn write_task_output(
        &self,
        task: &TaskPath,
        output: TaskOutput,
        bytes: &[u8],
    ) -> StoreResult<()> {
        self.require_run(&task.flow, &task.run_id)?;
        let key = self.key(&self.layout.task_output_path(task, output));
        self.put(&key, bytes.to_vec())
    }

    fn read_task_output(&self, task: &TaskPath, output: TaskOutput) -> StoreResult<Vec<u8>> {
        let key = self.key(&self.layout.task_output_path(task, output));
        self.get_bytes(&key)?.ok_or_else(|| StoreError::NotFound {
            what: format!("output `{}` of task {task}", output.file_name()),
            path: PathBuf::from(self.object_url(&key)),
        })
    }

    fn clone_task(&self, from: &TaskPath, to_run: &RunId) -> StoreResult<TaskMeta> {
        let source = self.read_task(from)?;
        let manifest = self.read_manifest(from)?;
        let blobs: Vec<(String, BlobHash)> = manifest
            .artifacts
            .iter()
            .map(|(name, entry)| (name.as_str().to_owned(), entry.hash))
            .collect();
        let keys: Vec<String> = blobs
            .iter()
            .map(|(_, hash)| self.key(&self.layout.blob_path(&from.flow, hash)))
            .collect();
        let present = self.exist_many(&keys)?;
        for (((name, hash), key), present) in blobs.iter().zip(&keys).zip(present) {
            if !present {
                return Err(StoreError::NotFound {
                    what: format!("blob {hash} of artifact `{name}` of task {from}"),
                    path: PathBuf::from(self.object_url(key)),
                });
            }
        }
        let to = TaskPath {
            run_id: to_run.clone(),
            ..from.clone()
        };
        let dest_key = self.key(&self.layout.task_meta_path(&to));
        let (what, dest_url) = (format!("task {to}"), self.object_url(&dest_key));
        let already = move || StoreError::AlreadyExists {
            what,
            path: PathBuf::from(dest_url),
        };
        if self.exists(&dest_key)? {
            return Err(already());
        }
        self.require_run(&to.flow, &to.run_id)?;
        // task.json goes last: it is what makes the clone visible, and it is only
        // written once the manifest and logs it refers to are in place.
        let manifest_from = self.key(&self.layout.manifest_path(from));
        let manifest_to = self.key(&self.layout.manifest_path(&to));
        if !self.copy(&manifest_from, &manifest_to)? {
            return Err(StoreError::NotFound {
                what: format!("artifact manifest of task {from}"),
                path: PathBuf::from(self.object_url(&manifest_from)),
            });
        }
        for record in &source.attempts {
            for stream in [LogStream::Stdout, LogStream::Stderr] {
                // An attempt that printed nothing may have no log: nothing to copy.
                self.copy(
                    &self.key(&self.layout.attempt_log_path(from, record.attempt, stream)),
                    &self.key(&self.layout.attempt_log_path(&to, record.attempt, stream)),
                )?;
            }
        }
        let meta = TaskMeta {
            path: to,
            origin: Some(TaskOrigin {
                run_id: from.run_id.clone(),
                task_id: from.task_id.clone(),
            }),
            ..source
        };
        let bytes = json_bytes(Path::new(&self.object_url(&dest_key)), &meta)?;
        // Conditional, so two resumes cloning into the same run cannot both win.
        if !self.put_new(&dest_key, bytes)? {
            return Err(already());
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_percent_encoded_except_slashes() {
        assert_eq!(encode_key("p/F/runs/1/a_b-c.d~"), "p/F/runs/1/a_b-c.d~");
        assert_eq!(encode_key("team space/x+y"), "team%20space/x%2By");
        assert_eq!(encode_key("é"), "%C3%A9");
    }
}
