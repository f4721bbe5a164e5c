//! Where everything lives under a datastore root: the one place that turns validated
//! names into paths, and the layout-version marker that guards the root.
//!
//! ```text
//! <root>/.flowc-format                                   layout marker (JSON)
//! <root>/<Flow>/data/<hh>/<hash>                         zstd blob, hash = sha256 of the
//!                                                        uncompressed bytes, hh = its first 2 hex digits
//! <root>/<Flow>/runs/<run_id>/run.json                   run metadata
//! <root>/<Flow>/runs/<run_id>/<step>/<task_id>/task.json      task metadata
//! <root>/<Flow>/runs/<run_id>/<step>/<task_id>/manifest.json  artifact name -> blob
//! <root>/<Flow>/runs/<run_id>/<step>/<task_id>/attempt-<n>.stdout|stderr
//! ```
//!
//! Names starting with `.` are the store's own (the marker, temporary files); no valid
//! flow, run, step or task name can start with one, so they never collide.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{StoreError, StoreResult};
use super::names::{BlobHash, FlowName, RunId, StepName, TaskPath};

/// The layout this build writes and reads. Bump it on any change an older flowc would
/// misread, and document the change in `docs/datastore.md`.
pub const LAYOUT_VERSION: u32 = 1;

/// Name of the layout marker file in the root.
pub const FORMAT_FILE: &str = ".flowc-format";

/// Identifies the marker's JSON as ours, so a stray file of that name is not mistaken
/// for a datastore.
const FORMAT_KIND: &str = "flowc-datastore";

const DATA_DIR: &str = "data";
const RUNS_DIR: &str = "runs";
const RUN_META_FILE: &str = "run.json";
const TASK_META_FILE: &str = "task.json";
const MANIFEST_FILE: &str = "manifest.json";

/// Content of the layout marker.
#[derive(Debug, Serialize, Deserialize)]
struct FormatMarker {
    format: String,
    layout_version: u32,
}

/// The marker's bytes for the current layout.
pub(crate) fn format_marker_bytes() -> Vec<u8> {
    let marker = FormatMarker {
        format: FORMAT_KIND.to_owned(),
        layout_version: LAYOUT_VERSION,
    };
    // Serialising a struct of a string and an integer cannot fail.
    let mut bytes = serde_json::to_vec(&marker).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Checks the marker's bytes (read from `path`) and returns its layout version if this
/// build can use it.
pub(crate) fn check_format_marker(path: &Path, bytes: &[u8]) -> StoreResult<u32> {
    let marker: FormatMarker =
        serde_json::from_slice(bytes).map_err(|err| StoreError::InvalidMetadata {
            path: path.to_path_buf(),
            reason: format!("not a flowc datastore format marker ({err})"),
        })?;
    if marker.format != FORMAT_KIND {
        return Err(StoreError::InvalidMetadata {
            path: path.to_path_buf(),
            reason: format!("format is {:?}, expected {FORMAT_KIND:?}", marker.format),
        });
    }
    match marker.layout_version {
        LAYOUT_VERSION => Ok(LAYOUT_VERSION),
        found if found > LAYOUT_VERSION => Err(StoreError::UnsupportedLayout {
            path: path.to_path_buf(),
            found,
            supported: LAYOUT_VERSION,
        }),
        found => Err(StoreError::InvalidMetadata {
            path: path.to_path_buf(),
            reason: format!(
                "unknown layout version {found} (this flowc reads version {LAYOUT_VERSION})"
            ),
        }),
    }
}

/// Which output stream of an attempt a log file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    fn extension(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// A small file a task leaves for an orchestrator that cannot read the task's outputs
/// any other way (Step Functions reads them from the store with `s3:getObject`):
/// `<task dir>/outputs/<file name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskOutput {
    /// `foreach_items.json`: the split indexes of a foreach, a JSON array `[0,...,N-1]`.
    ForeachItems,
    /// `num_splits`: `N` of a foreach, as decimal text.
    NumSplits,
    /// `switch_step`: the step a switch chose, as text.
    SwitchStep,
}

impl TaskOutput {
    /// Every output, in file-name order.
    pub const ALL: [TaskOutput; 3] = [
        TaskOutput::ForeachItems,
        TaskOutput::NumSplits,
        TaskOutput::SwitchStep,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            TaskOutput::ForeachItems => "foreach_items.json",
            TaskOutput::NumSplits => "num_splits",
            TaskOutput::SwitchStep => "switch_step",
        }
    }
}

/// The directory under a task's directory holding its [`TaskOutput`] files.
pub const OUTPUTS_DIR: &str = "outputs";

/// Path arithmetic for one datastore root. Pure: nothing here touches the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn format_file(&self) -> PathBuf {
        self.root.join(FORMAT_FILE)
    }

    pub fn flow_dir(&self, flow: &FlowName) -> PathBuf {
        self.root.join(flow.as_str())
    }

    pub fn data_dir(&self, flow: &FlowName) -> PathBuf {
        self.flow_dir(flow).join(DATA_DIR)
    }

    /// The directory of one blob's shard: the first two hex digits of its hash, so that
    /// no directory grows past 1/256 of the blobs.
    pub fn shard_dir(&self, flow: &FlowName, hash: &BlobHash) -> PathBuf {
        let hex = hash.to_hex();
        self.data_dir(flow).join(&hex[..2])
    }

    pub fn blob_path(&self, flow: &FlowName, hash: &BlobHash) -> PathBuf {
        self.shard_dir(flow, hash).join(hash.to_hex())
    }

    pub fn runs_dir(&self, flow: &FlowName) -> PathBuf {
        self.flow_dir(flow).join(RUNS_DIR)
    }

    pub fn run_dir(&self, flow: &FlowName, run_id: &RunId) -> PathBuf {
        self.runs_dir(flow).join(run_id.as_str())
    }

    pub fn run_meta_path(&self, flow: &FlowName, run_id: &RunId) -> PathBuf {
        self.run_dir(flow, run_id).join(RUN_META_FILE)
    }

    pub fn step_dir(&self, flow: &FlowName, run_id: &RunId, step: &StepName) -> PathBuf {
        self.run_dir(flow, run_id).join(step.as_str())
    }

    pub fn task_dir(&self, task: &TaskPath) -> PathBuf {
        self.step_dir(&task.flow, &task.run_id, &task.step)
            .join(task.task_id.as_str())
    }

    pub fn task_meta_path(&self, task: &TaskPath) -> PathBuf {
        self.task_dir(task).join(TASK_META_FILE)
    }

    pub fn manifest_path(&self, task: &TaskPath) -> PathBuf {
        self.task_dir(task).join(MANIFEST_FILE)
    }

    pub fn task_output_path(&self, task: &TaskPath, output: TaskOutput) -> PathBuf {
        self.task_dir(task)
            .join(OUTPUTS_DIR)
            .join(output.file_name())
    }

    /// Where the scheduler writes one attempt's output. Attempts count from 0, as in
    /// the task metadata's attempt records.
    pub fn attempt_log_path(&self, task: &TaskPath, attempt: u32, stream: LogStream) -> PathBuf {
        self.task_dir(task)
            .join(format!("attempt-{attempt}.{}", stream.extension()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::names::TaskId;

    fn task() -> TaskPath {
        TaskPath::new(
            FlowName::new("TrainFlow").unwrap(),
            RunId::new("12").unwrap(),
            StepName::new("train").unwrap(),
            TaskId::new("7").unwrap(),
        )
    }

    #[test]
    fn paths_follow_the_documented_layout() {
        let layout = Layout::new("/store");
        let task = task();
        let hash = BlobHash::parse(&format!("ab{}", "0".repeat(62))).unwrap();
        assert_eq!(
            layout.blob_path(&task.flow, &hash),
            Path::new(&format!("/store/TrainFlow/data/ab/ab{}", "0".repeat(62)))
        );
        assert_eq!(
            layout.run_meta_path(&task.flow, &task.run_id),
            Path::new("/store/TrainFlow/runs/12/run.json")
        );
        assert_eq!(
            layout.task_meta_path(&task),
            Path::new("/store/TrainFlow/runs/12/train/7/task.json")
        );
        assert_eq!(
            layout.manifest_path(&task),
            Path::new("/store/TrainFlow/runs/12/train/7/manifest.json")
        );
        assert_eq!(
            layout.attempt_log_path(&task, 2, LogStream::Stderr),
            Path::new("/store/TrainFlow/runs/12/train/7/attempt-2.stderr")
        );
        assert_eq!(layout.format_file(), Path::new("/store/.flowc-format"));
    }

    #[test]
    fn marker_round_trips() {
        let bytes = format_marker_bytes();
        assert_eq!(
            check_format_marker(Path::new("f"), &bytes).unwrap(),
            LAYOUT_VERSION
        );
    }

    #[test]
    fn newer_layout_is_refused_with_the_versions() {
        let bytes = br#"{"format":"flowc-datastore","layout_version":9}"#;
        let err = check_format_marker(Path::new("/s/.flowc-format"), bytes).unwrap_err();
        assert!(matches!(
            err,
            StoreError::UnsupportedLayout {
                found: 9,
                supported: LAYOUT_VERSION,
                ..
            }
        ));
    }

    #[test]
    fn garbage_or_foreign_marker_is_invalid_metadata() {
        for bytes in [
            &b"not json"[..],
            br#"{"format":"other","layout_version":1}"#,
            br#"{"format":"flowc-datastore","layout_version":0}"#,
        ] {
            let err = check_format_marker(Path::new("/s/.flowc-format"), bytes).unwrap_err();
            assert!(matches!(err, StoreError::InvalidMetadata { .. }), "{err}");
            assert!(err.to_string().contains("/s/.flowc-format"), "{err}");
        }
    }
}
