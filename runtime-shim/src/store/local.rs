//! The datastore on a local (or network-mounted POSIX) filesystem: what `flowc run`
//! uses by default, under `.flowc/` in the working directory.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::blob::{self, hash_bytes};
use super::error::{Corruption, StoreError, StoreResult};
use super::fsutil::{self, TempFile};
use super::layout::{self, Layout, LogStream, TaskOutput};
use super::meta::{now_unix_ms, Manifest, RunMeta, RunSpec, TaskMeta, TaskOrigin};
use super::names::{BlobHash, FlowName, RunId, StepName, TaskId, TaskPath};
use super::{BlobRef, BlobStore, MetadataStore};

/// zstd level 1: the fastest standard level. Pickled artifacts are mostly numeric
/// arrays and already-compact objects where higher levels buy a few percent of space
/// for several times the CPU, and compression sits on every task's critical path; see
/// `docs/datastore.md` for the measurements.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 1;

/// How many ids [`LocalStore::create_run`] tries before giving up. Each failed try
/// means another process took that id a moment earlier, so this bounds a livelock, not
/// normal contention.
const RUN_ID_ATTEMPTS: u32 = 10_000;

/// Tunables of a [`LocalStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// zstd level for new blobs (1–22; negative levels trade ratio for more speed).
    /// Only affects writing: any level reads back, and the hash does not depend on it.
    pub compression_level: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            compression_level: DEFAULT_COMPRESSION_LEVEL,
        }
    }
}

/// A datastore rooted at a directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    layout: Layout,
    options: StoreOptions,
}

impl LocalStore {
    /// Opens an existing datastore, checking its layout version. Fails with
    /// [`StoreError::NotADatastore`] when `root` has no format marker: readers (the
    /// client, `flowc logs`) should not create stores by accident.
    pub fn open(root: &Path) -> StoreResult<LocalStore> {
        Self::open_with(root, StoreOptions::default())
    }

    pub fn open_with(root: &Path, options: StoreOptions) -> StoreResult<LocalStore> {
        let layout = Layout::new(root);
        let marker = layout.format_file();
        match fs::read(&marker) {
            Ok(bytes) => {
                layout::check_format_marker(&marker, &bytes)?;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotADatastore {
                    root: root.to_path_buf(),
                })
            }
            Err(err) => return Err(StoreError::io("read", marker, err)),
        }
        Ok(LocalStore { layout, options })
    }

    /// Opens the datastore at `root`, creating the directory and its format marker if
    /// they do not exist yet (what `flowc run` does).
    pub fn open_or_create(root: &Path) -> StoreResult<LocalStore> {
        Self::open_or_create_with(root, StoreOptions::default())
    }

    pub fn open_or_create_with(root: &Path, options: StoreOptions) -> StoreResult<LocalStore> {
        fsutil::create_dir_all_durable(root)?;
        let marker = Layout::new(root).format_file();
        if !marker.exists() {
            // Two processes initialising at once both write the same bytes; the second
            // rename replaces an identical file.
            fsutil::write_atomic(&marker, &layout::format_marker_bytes())?;
        }
        Self::open_with(root, options)
    }

    /// The path arithmetic of this store, e.g. for the scheduler's log files.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Where the scheduler writes one attempt's stdout or stderr. Creates nothing.
    pub fn attempt_log_path(&self, task: &TaskPath, attempt: u32, stream: LogStream) -> PathBuf {
        self.layout.attempt_log_path(task, attempt, stream)
    }

    /// Creates a task's directory (and those above it) so the scheduler can open its
    /// log files before the first `task.json` is written.
    pub fn create_task_dir(&self, task: &TaskPath) -> StoreResult<PathBuf> {
        self.require_run(&task.flow, &task.run_id)?;
        let dir = self.layout.task_dir(task);
        fsutil::create_dir_all_durable(&dir)?;
        Ok(dir)
    }

    /// Moves a finished temporary blob to its final name unless the blob is already
    /// there, and makes the name durable: a manifest written after this returns may
    /// rely on the blob surviving a crash.
    fn install_blob(&self, flow: &FlowName, temp: TempFile, hash: &BlobHash) -> StoreResult<bool> {
        let shard = self.layout.shard_dir(flow, hash);
        fsutil::create_dir_all_durable(&shard)?;
        let dest = self.layout.blob_path(flow, hash);
        if dest.is_file() {
            // Dropping `temp` removes it. A concurrent writer may rename the same bytes
            // in between our check and now; renaming identical content over it would be
            // harmless too.
            return Ok(false);
        }
        temp.persist(&dest)?;
        fsutil::sync_dir(&shard)?;
        Ok(true)
    }

    /// Opens a blob for reading, turning "no such file" into [`StoreError::NotFound`].
    fn open_blob(&self, flow: &FlowName, hash: &BlobHash) -> StoreResult<(File, PathBuf)> {
        let path = self.layout.blob_path(flow, hash);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    what: format!("blob {hash} of flow {flow}"),
                    path,
                })
            }
            Err(err) => return Err(StoreError::io("open", path, err)),
        };
        // Even an empty value is stored as a zstd frame of a few bytes. An empty file
        // would otherwise decode as empty content and be reported as a hash mismatch,
        // hiding the likelier story: a copy or a disk that lost the data.
        let len = file
            .metadata()
            .map_err(|err| StoreError::io("inspect", path.clone(), err))?
            .len();
        if len == 0 {
            return Err(StoreError::Corrupt {
                path,
                expected: *hash,
                actual: Corruption::Undecodable {
                    reason: "the file is empty".to_owned(),
                },
            });
        }
        Ok((file, path))
    }

    /// Fails with `NotFound` unless the run's `run.json` exists: metadata is never
    /// written into a run that was not created.
    fn require_run(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<()> {
        let path = self.layout.run_meta_path(flow, run_id);
        if path.is_file() {
            Ok(())
        } else {
            Err(StoreError::NotFound {
                what: format!("run {flow}/{run_id}"),
                path,
            })
        }
    }

    /// Claims `run_id`'s directory: `create_dir` is atomic, so exactly one creator
    /// succeeds. Returns `false` if it already exists.
    fn claim_run_dir(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<bool> {
        let dir = self.layout.run_dir(flow, run_id);
        match fs::create_dir(&dir) {
            Ok(()) => {
                fsutil::sync_dir(&self.layout.runs_dir(flow))?;
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(StoreError::io("create directory", dir, err)),
        }
    }

    fn write_new_run(&self, flow: &FlowName, run_id: RunId, spec: RunSpec) -> StoreResult<RunMeta> {
        let meta = RunMeta::new(flow.clone(), run_id, spec, now_unix_ms());
        write_json(&self.layout.run_meta_path(flow, &meta.run_id), &meta)?;
        Ok(meta)
    }

    /// Names of the valid entries of `dir` (absent directory = none), parsed with
    /// `parse`, keeping those for which `keep` holds. Invalid names (temporary files,
    /// stray files a user left) are skipped, never joined onto a path.
    fn list_dir<T>(
        dir: &Path,
        parse: impl Fn(&str) -> Option<T>,
        keep: impl Fn(&Path) -> bool,
    ) -> StoreResult<Vec<T>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(StoreError::io("list directory", dir, err)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| StoreError::io("list directory", dir, err))?;
            let name = entry.file_name();
            let Some(value) = name.to_str().and_then(&parse) else {
                continue;
            };
            if keep(&entry.path()) {
                out.push(value);
            }
        }
        Ok(out)
    }

    fn copy_logs(&self, from: &TaskPath, to: &TaskPath, meta: &TaskMeta) -> StoreResult<()> {
        for record in &meta.attempts {
            for stream in [LogStream::Stdout, LogStream::Stderr] {
                let src = self.layout.attempt_log_path(from, record.attempt, stream);
                let dest = self.layout.attempt_log_path(to, record.attempt, stream);
                let mut input = match File::open(&src) {
                    Ok(file) => file,
                    // An attempt that printed nothing may have no log file.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(StoreError::io("open", src, err)),
                };
                let mut temp = TempFile::create_in(fsutil::parent_of(&dest))?;
                let temp_path = temp.path().to_path_buf();
                io::copy(&mut input, temp.file()?)
                    .map_err(|err| StoreError::io("copy log into", temp_path, err))?;
                temp.persist(&dest)?;
            }
        }
        Ok(())
    }
}

/// Sort key of run and task ids: integers in numeric order, then the rest.
pub(super) fn id_order(id: &str) -> (bool, usize, &str) {
    match integer_id(id) {
        Some(_) => (false, id.len(), id),
        None => (true, 0, id),
    }
}

/// An id that is a canonical decimal integer (no sign, no leading zero).
pub(super) fn integer_id(id: &str) -> Option<u64> {
    if id.starts_with('0') && id != "0" {
        return None;
    }
    if !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// Serialises `value` as pretty JSON and writes it atomically and durably.
fn write_json<T: Serialize>(path: &Path, value: &T) -> StoreResult<()> {
    fsutil::write_atomic(path, &json_bytes(path, value)?)
}

/// Like [`write_json`], leaving the directory sync to a later write in the directory.
fn write_json_unsynced_name<T: Serialize>(path: &Path, value: &T) -> StoreResult<()> {
    fsutil::write_atomic_unsynced_name(path, &json_bytes(path, value)?)
}

/// The bytes of a metadata file: pretty JSON and a newline, the same in every backend.
pub(super) fn json_bytes<T: Serialize>(path: &Path, value: &T) -> StoreResult<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|err| StoreError::InvalidMetadata {
            path: path.to_path_buf(),
            reason: format!("cannot serialise: {err}"),
        })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads and parses a metadata file; `what` names it for `NotFound`.
fn read_json<T: DeserializeOwned>(path: &Path, what: impl FnOnce() -> String) -> StoreResult<T> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::NotFound {
                what: what(),
                path: path.to_path_buf(),
            })
        }
        Err(err) => return Err(StoreError::io("read", path, err)),
    };
    serde_json::from_slice(&bytes).map_err(|err| StoreError::InvalidMetadata {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

impl BlobStore for LocalStore {
    fn put(&self, flow: &FlowName, bytes: &[u8]) -> StoreResult<BlobRef> {
        // Hashing first lets an already-stored value skip compression entirely: the
        // common case for artifacts a step passes along unchanged.
        let hash = hash_bytes(bytes);
        let size = bytes.len() as u64;
        if self.contains(flow, &hash)? {
            return Ok(BlobRef {
                hash,
                size,
                created: false,
            });
        }
        let stored = self.put_reader(flow, &mut &bytes[..], Path::new("memory"))?;
        Ok(BlobRef {
            hash,
            size,
            created: stored.created,
        })
    }

    fn put_reader(
        &self,
        flow: &FlowName,
        reader: &mut dyn Read,
        label: &Path,
    ) -> StoreResult<BlobRef> {
        // The hash is known only at the end, so the temporary file lives in `data/`
        // (same filesystem as every shard, so the final rename is atomic).
        let data_dir = self.layout.data_dir(flow);
        fsutil::create_dir_all_durable(&data_dir)?;
        let mut temp = TempFile::create_in(&data_dir)?;
        let temp_path = temp.path().to_path_buf();
        let encoded = {
            let mut out = BufWriter::new(temp.file()?);
            let encoded = blob::encode(
                reader,
                label,
                &mut out,
                &temp_path,
                self.options.compression_level,
            )?;
            out.flush()
                .map_err(|err| StoreError::io("write", temp_path.clone(), err))?;
            encoded
        };
        let created = self.install_blob(flow, temp, &encoded.hash)?;
        Ok(BlobRef {
            hash: encoded.hash,
            size: encoded.size,
            created,
        })
    }

    fn get_to_writer(
        &self,
        flow: &FlowName,
        hash: &BlobHash,
        writer: &mut dyn Write,
        label: &Path,
    ) -> StoreResult<u64> {
        let (mut file, path) = self.open_blob(flow, hash)?;
        blob::decode_verified(&mut file, &path, hash, writer, label)
    }

    fn get_to_file(&self, flow: &FlowName, hash: &BlobHash, dest: &Path) -> StoreResult<u64> {
        let (mut file, path) = self.open_blob(flow, hash)?;
        let mut temp = TempFile::create_in(fsutil::parent_of(dest))?;
        let temp_path = temp.path().to_path_buf();
        let size = {
            let mut out = BufWriter::new(temp.file()?);
            let size = blob::decode_verified(&mut file, &path, hash, &mut out, dest)?;
            out.flush()
                .map_err(|err| StoreError::io("write", temp_path, err))?;
            size
        };
        temp.persist(dest)?;
        Ok(size)
    }

    fn contains(&self, flow: &FlowName, hash: &BlobHash) -> StoreResult<bool> {
        let path = self.layout.blob_path(flow, hash);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(StoreError::io("inspect", path, err)),
        }
    }
}

impl MetadataStore for LocalStore {
    fn create_run(&self, flow: &FlowName, spec: RunSpec) -> StoreResult<RunMeta> {
        let runs_dir = self.layout.runs_dir(flow);
        fsutil::create_dir_all_durable(&runs_dir)?;
        // Start above the highest integer id present; on a lost race, move up one.
        // Listing directories (not run.json files) counts runs still being created.
        let highest = Self::list_dir(&runs_dir, integer_id, Path::is_dir)?
            .into_iter()
            .max()
            .unwrap_or(0);
        let mut candidate = highest.saturating_add(1);
        for _ in 0..RUN_ID_ATTEMPTS {
            let run_id = RunId::new(&candidate.to_string())?;
            if self.claim_run_dir(flow, &run_id)? {
                return self.write_new_run(flow, run_id, spec);
            }
            candidate = candidate.saturating_add(1);
        }
        Err(StoreError::RunIdsExhausted {
            path: runs_dir,
            attempts: RUN_ID_ATTEMPTS,
        })
    }

    fn create_run_with_id(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        spec: RunSpec,
    ) -> StoreResult<RunMeta> {
        fsutil::create_dir_all_durable(&self.layout.runs_dir(flow))?;
        if !self.claim_run_dir(flow, run_id)? {
            return Err(StoreError::AlreadyExists {
                what: format!("run {flow}/{run_id}"),
                path: self.layout.run_dir(flow, run_id),
            });
        }
        self.write_new_run(flow, run_id.clone(), spec)
    }

    fn write_run(&self, meta: &RunMeta) -> StoreResult<()> {
        self.require_run(&meta.flow, &meta.run_id)?;
        write_json(&self.layout.run_meta_path(&meta.flow, &meta.run_id), meta)
    }

    fn read_run(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<RunMeta> {
        let path = self.layout.run_meta_path(flow, run_id);
        let meta: RunMeta = read_json(&path, || format!("run {flow}/{run_id}"))?;
        if meta.flow != *flow || meta.run_id != *run_id {
            return Err(StoreError::InvalidMetadata {
                path,
                reason: format!(
                    "it describes run {}/{} but is stored as run {flow}/{run_id}",
                    meta.flow, meta.run_id
                ),
            });
        }
        Ok(meta)
    }

    fn list_flows(&self) -> StoreResult<Vec<FlowName>> {
        let mut flows = Self::list_dir(
            self.layout.root(),
            |name| FlowName::new(name).ok(),
            Path::is_dir,
        )?;
        flows.sort();
        Ok(flows)
    }

    fn list_runs(&self, flow: &FlowName) -> StoreResult<Vec<RunId>> {
        let mut runs = Self::list_dir(
            &self.layout.runs_dir(flow),
            |name| RunId::new(name).ok(),
            |dir| dir.join("run.json").is_file(),
        )?;
        runs.sort_by(|a, b| id_order(a.as_str()).cmp(&id_order(b.as_str())));
        Ok(runs)
    }

    fn list_steps(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<Vec<StepName>> {
        let mut steps = Self::list_dir(
            &self.layout.run_dir(flow, run_id),
            |name| StepName::new(name).ok(),
            Path::is_dir,
        )?;
        steps.sort();
        Ok(steps)
    }

    fn list_tasks(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        step: &StepName,
    ) -> StoreResult<Vec<TaskId>> {
        let mut tasks = Self::list_dir(
            &self.layout.step_dir(flow, run_id, step),
            |name| TaskId::new(name).ok(),
            |dir| dir.join("task.json").is_file(),
        )?;
        tasks.sort_by(|a, b| id_order(a.as_str()).cmp(&id_order(b.as_str())));
        Ok(tasks)
    }

    fn write_task(&self, meta: &TaskMeta) -> StoreResult<()> {
        self.create_task_dir(&meta.path)?;
        write_json(&self.layout.task_meta_path(&meta.path), meta)
    }

    fn write_task_running(&self, meta: &TaskMeta) -> StoreResult<()> {
        self.create_task_dir(&meta.path)?;
        // No directory sync: the final `write_task` syncs the same directory.
        write_json_unsynced_name(&self.layout.task_meta_path(&meta.path), meta)
    }

    fn read_task(&self, task: &TaskPath) -> StoreResult<TaskMeta> {
        let path = self.layout.task_meta_path(task);
        let meta: TaskMeta = read_json(&path, || format!("task {task}"))?;
        if meta.path != *task {
            return Err(StoreError::InvalidMetadata {
                path,
                reason: format!(
                    "it describes task {} but is stored as task {task}",
                    meta.path
                ),
            });
        }
        Ok(meta)
    }

    fn write_manifest(&self, task: &TaskPath, manifest: &Manifest) -> StoreResult<()> {
        self.create_task_dir(task)?;
        // The blobs it names are durable already (`install_blob`); its own name becomes
        // durable with the directory sync of the `task.json` that follows it.
        write_json_unsynced_name(&self.layout.manifest_path(task), manifest)
    }

    fn read_manifest(&self, task: &TaskPath) -> StoreResult<Manifest> {
        read_json(&self.layout.manifest_path(task), || {
            format!("artifact manifest of task {task}")
        })
    }

    fn write_task_output(
        &self,
        task: &TaskPath,
        output: TaskOutput,
        bytes: &[u8],
    ) -> StoreResult<()> {
        let path = self.layout.task_output_path(task, output);
        self.create_task_dir(task)?;
        fsutil::create_dir_all_durable(fsutil::parent_of(&path))?;
        // The final `task.json` syncs the task directory, not `outputs/`: sync here.
        fsutil::write_atomic(&path, bytes)
    }

    fn read_task_output(&self, task: &TaskPath, output: TaskOutput) -> StoreResult<Vec<u8>> {
        let path = self.layout.task_output_path(task, output);
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                what: format!("output `{}` of task {task}", output.file_name()),
                path,
            }),
            Err(err) => Err(StoreError::io("read", path, err)),
        }
    }

    fn clone_task(&self, from: &TaskPath, to_run: &RunId) -> StoreResult<TaskMeta> {
        let source = self.read_task(from)?;
        let manifest = self.read_manifest(from)?;
        for (name, entry) in &manifest.artifacts {
            if !self.contains(&from.flow, &entry.hash)? {
                return Err(StoreError::NotFound {
                    what: format!("blob {} of artifact `{name}` of task {from}", entry.hash),
                    path: self.layout.blob_path(&from.flow, &entry.hash),
                });
            }
        }
        let to = TaskPath {
            run_id: to_run.clone(),
            ..from.clone()
        };
        let dest_meta_path = self.layout.task_meta_path(&to);
        if dest_meta_path.exists() {
            return Err(StoreError::AlreadyExists {
                what: format!("task {to}"),
                path: dest_meta_path,
            });
        }
        self.create_task_dir(&to)?;
        // task.json goes last: it is what makes the clone visible, and it is only
        // written once the manifest and logs it refers to are in place.
        write_json_unsynced_name(&self.layout.manifest_path(&to), &manifest)?;
        self.copy_logs(from, &to, &source)?;
        let meta = TaskMeta {
            path: to,
            origin: Some(TaskOrigin {
                run_id: from.run_id.clone(),
                task_id: from.task_id.clone(),
            }),
            ..source
        };
        write_json(&dest_meta_path, &meta)?;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::TestDir;

    #[test]
    fn integer_ids_sort_numerically_before_others() {
        let mut ids = vec!["10", "9", "argo-b", "010", "2", "argo-a", "0"];
        ids.sort_by(|a, b| id_order(a).cmp(&id_order(b)));
        assert_eq!(ids, vec!["0", "2", "9", "10", "010", "argo-a", "argo-b"]);
    }

    #[test]
    fn integer_id_is_canonical_decimal_only() {
        assert_eq!(integer_id("42"), Some(42));
        assert_eq!(integer_id("0"), Some(0));
        assert_eq!(integer_id("042"), None);
        assert_eq!(integer_id("+4"), None);
        assert_eq!(integer_id("4a"), None);
        assert_eq!(integer_id("99999999999999999999999"), None);
    }

    #[test]
    fn put_of_stored_bytes_skips_writing() {
        let dir = TestDir::new("local-put-skip");
        let store = LocalStore::open_or_create(dir.path()).unwrap();
        let flow = FlowName::new("F").unwrap();
        let first = store.put(&flow, b"value").unwrap();
        let path = store.layout().blob_path(&flow, &first.hash);
        let before = fs::metadata(&path).unwrap().modified().unwrap();
        let second = store.put(&flow, b"value").unwrap();
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.hash, second.hash);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn run_ids_continue_above_the_highest_existing_id() {
        let dir = TestDir::new("local-run-ids");
        let store = LocalStore::open_or_create(dir.path()).unwrap();
        let flow = FlowName::new("F").unwrap();
        let first = store.create_run(&flow, RunSpec::default()).unwrap();
        assert_eq!(first.run_id.as_str(), "1");
        // A directory left without run.json (a crashed creator) still holds its id.
        fs::create_dir(store.layout().runs_dir(&flow).join("7")).unwrap();
        let next = store.create_run(&flow, RunSpec::default()).unwrap();
        assert_eq!(next.run_id.as_str(), "8");
        assert_eq!(
            store.list_runs(&flow).unwrap(),
            vec![RunId::new("1").unwrap(), RunId::new("8").unwrap()]
        );
    }

    #[test]
    fn task_outputs_round_trip_and_a_missing_one_is_not_found() {
        let dir = TestDir::new("local-task-outputs");
        let store = LocalStore::open_or_create(dir.path()).unwrap();
        let flow = FlowName::new("F").unwrap();
        let run = store.create_run(&flow, RunSpec::default()).unwrap();
        let task = TaskPath {
            flow: flow.clone(),
            run_id: run.run_id,
            step: StepName::new("start").unwrap(),
            task_id: TaskId::new("t").unwrap(),
        };
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
        assert!(store
            .layout()
            .task_dir(&task)
            .join("outputs/foreach_items.json")
            .is_file());
        let missing = store.read_task_output(&task, TaskOutput::SwitchStep);
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
    }
}
