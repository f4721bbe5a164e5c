//! The artifact datastore: content-addressed blobs plus run and task metadata, behind
//! two traits so the local filesystem and object-store backends are interchangeable.
//!
//! Guarantees every backend keeps:
//! - A blob is named by the SHA-256 of its uncompressed bytes and is written once;
//!   putting the same bytes again is a no-op, from any number of writers at once.
//! - Readers never see a partial file: every write lands under its final name whole.
//! - Every read of a blob verifies its hash; a damaged blob is reported as
//!   [`StoreError::Corrupt`], a missing one as [`StoreError::NotFound`].
//! - Only validated names ([`FlowName`], [`RunId`], [`StepName`], [`TaskId`],
//!   [`ArtifactName`], [`BlobHash`]) reach a path.
//!
//! The on-disk layout is described on [`Layout`] and in `docs/datastore.md`. With the
//! `s3` feature, [`S3Store`] keeps the same layout in an S3 bucket.

mod blob;
#[cfg(feature = "s3")]
mod capture;
mod error;
mod fsutil;
mod layout;
mod local;
mod meta;
mod names;
mod root;
#[cfg(feature = "s3")]
mod s3;
#[cfg(test)]
mod testutil;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

pub use blob::hash_bytes;
#[cfg(feature = "s3")]
pub use capture::{CapturedOutput, OutputCapture};
pub use error::{Corruption, StoreError, StoreResult};
pub use layout::{Layout, LogStream, TaskOutput, FORMAT_FILE, LAYOUT_VERSION, OUTPUTS_DIR};
pub use local::{LocalStore, StoreOptions, DEFAULT_COMPRESSION_LEVEL};
pub use meta::{
    current_user, now_unix_ms, ArtifactEntry, AttemptRecord, AttemptStatus, CardRef,
    CodePackageRef, Manifest, ParentTask, RunMeta, RunSpec, RunStatus, TaskMeta, TaskOrigin,
    TaskStatus,
};
pub use names::{
    ArtifactName, BlobHash, FlowName, InvalidName, NameKind, RunId, StepName, TaskId, TaskPath,
    MAX_NAME_LEN,
};
pub use root::{
    resolve_root, ResolvedRoot, RootLocation, RootSource, S3Url, DEFAULT_ROOT_DIR, ROOT_ENV_VAR,
    S3_SCHEME,
};
#[cfg(feature = "s3")]
pub use s3::{S3Settings, S3Store, StaticCredentials, ENDPOINT_ENV_VAR};

/// A stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRef {
    pub hash: BlobHash,
    /// Size of the uncompressed bytes.
    pub size: u64,
    /// Whether this call wrote the blob; `false` when it was already stored.
    pub created: bool,
}

/// Content-addressed storage of artifact bytes, one namespace per flow.
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` (already in memory) and returns their address.
    fn put(&self, flow: &FlowName, bytes: &[u8]) -> StoreResult<BlobRef>;

    /// Stores everything `reader` yields, hashing and compressing in one pass without
    /// holding the data in memory. `label` names the reader in errors.
    fn put_reader(
        &self,
        flow: &FlowName,
        reader: &mut dyn Read,
        label: &Path,
    ) -> StoreResult<BlobRef>;

    /// Stores a file's content, streaming.
    fn put_file(&self, flow: &FlowName, path: &Path) -> StoreResult<BlobRef> {
        let mut file = File::open(path).map_err(|err| StoreError::io("open", path, err))?;
        self.put_reader(flow, &mut file, path)
    }

    /// Returns a blob's uncompressed bytes, verified against `hash`.
    fn get(&self, flow: &FlowName, hash: &BlobHash) -> StoreResult<Vec<u8>> {
        let mut out = Vec::new();
        self.get_to_writer(flow, hash, &mut out, Path::new("memory"))?;
        Ok(out)
    }

    /// Streams a blob's uncompressed bytes into `writer` and returns their count. The
    /// hash is checked at the end, so on `Err` the caller must discard what `writer`
    /// received; [`BlobStore::get_to_file`] does that for files. `label` names the
    /// writer in errors.
    fn get_to_writer(
        &self,
        flow: &FlowName,
        hash: &BlobHash,
        writer: &mut dyn Write,
        label: &Path,
    ) -> StoreResult<u64>;

    /// Writes a blob's uncompressed bytes to `dest`, which appears only once the
    /// content is verified (no partial or corrupt `dest`, ever).
    fn get_to_file(&self, flow: &FlowName, hash: &BlobHash, dest: &Path) -> StoreResult<u64>;

    /// Whether the blob is stored (without reading or verifying it).
    fn contains(&self, flow: &FlowName, hash: &BlobHash) -> StoreResult<bool>;
}

/// Run and task metadata.
///
/// Write order that keeps readers consistent: a task's manifest before its final
/// `task.json`, so a task whose status is `succeeded` always has its manifest; a task
/// or run appears in listings only once its metadata file exists.
pub trait MetadataStore: Send + Sync {
    /// Creates a run with a fresh id, unique even against other processes creating runs
    /// in the same store at the same moment, and writes its `run.json`.
    fn create_run(&self, flow: &FlowName, spec: RunSpec) -> StoreResult<RunMeta>;

    /// Creates a run with an id chosen elsewhere (an orchestrator's); fails with
    /// [`StoreError::AlreadyExists`] if that run exists.
    fn create_run_with_id(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        spec: RunSpec,
    ) -> StoreResult<RunMeta>;

    /// Replaces `run.json` (e.g. to record the final status). The run must exist.
    fn write_run(&self, meta: &RunMeta) -> StoreResult<()>;

    fn read_run(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<RunMeta>;

    /// Flows that have a directory in the store, sorted by name.
    fn list_flows(&self) -> StoreResult<Vec<FlowName>>;

    /// Runs of a flow that have a `run.json`: integer ids first, in numeric order,
    /// then other ids in byte order.
    fn list_runs(&self, flow: &FlowName) -> StoreResult<Vec<RunId>>;

    /// Steps of a run that have at least a directory, sorted by name.
    fn list_steps(&self, flow: &FlowName, run_id: &RunId) -> StoreResult<Vec<StepName>>;

    /// Tasks of a step that have a `task.json`, ordered like [`Self::list_runs`].
    fn list_tasks(
        &self,
        flow: &FlowName,
        run_id: &RunId,
        step: &StepName,
    ) -> StoreResult<Vec<TaskId>>;

    /// Writes (or replaces) a task's `task.json`, creating its directory, durably: it
    /// also makes durable the manifest written before it. The run must exist.
    fn write_task(&self, meta: &TaskMeta) -> StoreResult<()>;

    /// Writes a provisional `task.json`, one that records an attempt as running. It is
    /// whole whenever it exists, but a crash may lose it (and with it only the news that
    /// the attempt started), so backends may skip what makes [`Self::write_task`]
    /// durable. The run must exist.
    fn write_task_running(&self, meta: &TaskMeta) -> StoreResult<()> {
        self.write_task(meta)
    }

    fn read_task(&self, task: &TaskPath) -> StoreResult<TaskMeta>;

    /// Writes (or replaces) a task's `manifest.json`. The run must exist. The manifest
    /// is durable once the task's next [`Self::write_task`] returns: nothing reads a
    /// manifest whose final `task.json` is not written, so one directory sync serves
    /// both.
    fn write_manifest(&self, task: &TaskPath, manifest: &Manifest) -> StoreResult<()>;

    fn read_manifest(&self, task: &TaskPath) -> StoreResult<Manifest>;

    /// Writes (or replaces) one of a task's [`TaskOutput`] files, whole. The run must
    /// exist. Written before the task's final [`Self::write_task`], which makes it
    /// durable.
    fn write_task_output(
        &self,
        task: &TaskPath,
        output: TaskOutput,
        bytes: &[u8],
    ) -> StoreResult<()>;

    /// Reads one of a task's [`TaskOutput`] files.
    fn read_task_output(&self, task: &TaskPath, output: TaskOutput) -> StoreResult<Vec<u8>>;

    /// Copies a task into another run of the same flow for `flowc resume`: same step
    /// and task id, same manifest (no blob is copied: they are shared by hash), same
    /// attempt records and logs, with `origin` pointing at `from`. Checks that every
    /// blob of the manifest is present first, so a resumed run never refers to a
    /// missing artifact. Fails with [`StoreError::AlreadyExists`] if the task exists in
    /// `to_run`.
    fn clone_task(&self, from: &TaskPath, to_run: &RunId) -> StoreResult<TaskMeta>;
}

/// A complete datastore backend.
pub trait Datastore: BlobStore + MetadataStore {}

impl<T: BlobStore + MetadataStore> Datastore for T {}
