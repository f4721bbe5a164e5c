//! Run summaries for listings, read from `run.json` alone: one file read per run, so
//! listing a thousand runs takes milliseconds rather than a walk over every task.
//!
//! `run.json` carries the flow's IR, most of its bytes; the summary reads only the step
//! names out of it and lets serde skip the rest without building a JSON tree.

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};

use crate::store::{FlowName, Layout, RunId, RunStatus, StoreError};

use super::time::iso8601_utc;

/// One run as a listing shows it. Serialised with the field names `flowc runs --format
/// json` documents (`docs/inspect.md`); times as ISO-8601 UTC strings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub flow: FlowName,
    pub run_id: RunId,
    /// `Flow/run`, ready to pass to `flowc show`.
    pub pathspec: String,
    pub status: RunStatus,
    /// When the run was created (`created_at_unix_ms` of `run.json`).
    #[serde(serialize_with = "iso")]
    pub started_at: u64,
    #[serde(serialize_with = "iso_opt")]
    pub finished_at: Option<u64>,
    /// `finished_at - started_at`; absent while the run has not finished.
    pub duration_ms: Option<u64>,
    /// The steps of the flow's graph, in source order, as recorded with the run; empty
    /// when the run was created without its IR.
    pub steps: Vec<String>,
    /// For a run made by `flowc resume`, the run it resumed.
    pub origin_run_id: Option<RunId>,
}

pub(crate) fn iso<S: Serializer>(ms: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&iso8601_utc(*ms))
}

pub(crate) fn iso_opt<S: Serializer>(ms: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serializer.serialize_str(&iso8601_utc(*ms)),
        None => serializer.serialize_none(),
    }
}

/// The fields of `run.json` a summary needs. Names go through the store's validating
/// types, like every read of metadata.
#[derive(Deserialize)]
struct RunDoc {
    flow: FlowName,
    run_id: RunId,
    status: RunStatus,
    created_at_unix_ms: u64,
    #[serde(default)]
    finished_at_unix_ms: Option<u64>,
    #[serde(default)]
    origin_run_id: Option<RunId>,
    /// `null` when the run was created without its IR.
    #[serde(default)]
    flow_ir: Option<IrOutline>,
}

/// The flow's steps, out of the IR; every other IR field is skipped unparsed.
#[derive(Deserialize)]
struct IrOutline {
    #[serde(default)]
    steps: Vec<IrStep>,
}

#[derive(Deserialize)]
struct IrStep {
    name: String,
}

/// What reading one run's summary found.
pub(crate) enum SummaryRead {
    Found(RunSummary),
    /// No `run.json` (the run is still being created, or the id names no run).
    Absent,
}

/// Reads the summary of `flow/run_id` from its `run.json`. A file that does not parse,
/// or describes another run, is an error naming the file.
pub(crate) fn read_summary(
    layout: &Layout,
    flow: &FlowName,
    run_id: &RunId,
) -> Result<SummaryRead, StoreError> {
    let path = layout.run_meta_path(flow, run_id);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        // A stray file in `runs/` makes `<file>/run.json` "not a directory".
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(SummaryRead::Absent)
        }
        Err(err) => {
            return Err(StoreError::Io {
                action: "read",
                path,
                source: err,
            })
        }
    };
    let doc = parse(&path, &bytes)?;
    if doc.flow != *flow || doc.run_id != *run_id {
        return Err(StoreError::InvalidMetadata {
            path,
            reason: format!(
                "it describes run {}/{} but is stored as run {flow}/{run_id}",
                doc.flow, doc.run_id
            ),
        });
    }
    let finished_at = doc.finished_at_unix_ms;
    Ok(SummaryRead::Found(RunSummary {
        pathspec: format!("{flow}/{run_id}"),
        flow: doc.flow,
        run_id: doc.run_id,
        status: doc.status,
        started_at: doc.created_at_unix_ms,
        finished_at,
        duration_ms: finished_at.map(|end| end.saturating_sub(doc.created_at_unix_ms)),
        steps: doc
            .flow_ir
            .map(|ir| ir.steps.into_iter().map(|step| step.name).collect())
            .unwrap_or_default(),
        origin_run_id: doc.origin_run_id,
    }))
}

fn parse(path: &Path, bytes: &[u8]) -> Result<RunDoc, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::InvalidMetadata {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

/// Every run of `flow` that has a `run.json`, in no particular order, plus the errors
/// of those whose `run.json` cannot be read: one broken run does not hide the others.
pub(crate) fn read_flow_summaries(
    layout: &Layout,
    flow: &FlowName,
) -> Result<(Vec<RunSummary>, Vec<StoreError>), StoreError> {
    let dir = layout.runs_dir(flow);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(err) => {
            return Err(StoreError::Io {
                action: "list directory",
                path: dir,
                source: err,
            })
        }
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| StoreError::Io {
            action: "list directory",
            path: dir.clone(),
            source: err,
        })?;
        // Temporary files and anything else that is not a valid run id are the store's
        // own or a stranger's; never join them onto a path.
        if let Some(run_id) = entry.file_name().to_str().and_then(|n| RunId::new(n).ok()) {
            ids.push(run_id);
        }
    }
    // Reading is mostly parsing (the IR is most of each file), so large listings are
    // split over the cores; small ones are not worth a thread.
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(ids.len() / PER_WORKER_MIN)
        .max(1);
    let chunk = ids.len().div_ceil(workers).max(1);
    let results: Vec<(Vec<RunSummary>, Vec<StoreError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .chunks(chunk)
            .map(|chunk| scope.spawn(move || read_some(layout, flow, chunk)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut runs = Vec::with_capacity(ids.len());
    let mut problems = Vec::new();
    for (found, failed) in results {
        runs.extend(found);
        problems.extend(failed);
    }
    Ok((runs, problems))
}

/// Runs per thread below which a listing stays on one thread.
const PER_WORKER_MIN: usize = 64;

fn read_some(
    layout: &Layout,
    flow: &FlowName,
    ids: &[RunId],
) -> (Vec<RunSummary>, Vec<StoreError>) {
    let mut runs = Vec::with_capacity(ids.len());
    let mut problems = Vec::new();
    for run_id in ids {
        match read_summary(layout, flow, run_id) {
            Ok(SummaryRead::Found(summary)) => runs.push(summary),
            Ok(SummaryRead::Absent) => {}
            Err(err) => problems.push(err),
        }
    }
    (runs, problems)
}

/// Newest first: by creation time, then (for runs created in the same millisecond) by
/// id, integer ids numerically.
pub(crate) fn newest_first(a: &RunSummary, b: &RunSummary) -> Ordering {
    b.started_at
        .cmp(&a.started_at)
        .then_with(|| id_order(b.run_id.as_str()).cmp(&id_order(a.run_id.as_str())))
        .then_with(|| a.flow.cmp(&b.flow))
}

/// Sort key of run and task ids as the store lists them: canonical integers in numeric
/// order, then other ids in byte order.
pub(crate) fn id_order(id: &str) -> (bool, usize, &str) {
    let integer = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    if integer {
        (false, id.len(), id)
    } else {
        (true, 0, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ids_sort_numerically_before_others() {
        let mut ids = vec!["10", "b", "9", "a-1", "010", "0"];
        ids.sort_by_key(|id| id_order(id));
        assert_eq!(ids, ["0", "9", "10", "010", "a-1", "b"]);
    }

    #[test]
    fn the_ir_is_skipped_except_for_step_names() {
        let text = br#"{"flow":"F","run_id":"3","status":"running","created_at_unix_ms":5,
            "source_sha256":"x","flow_ir":{"ir_version":1,"steps":[{"name":"start","span":[1,2],
            "decorators":[{"args":{"deep":[[[1]]]}}]},{"name":"end"}],"other":{"a":[1,2]}},
            "added_later":true}"#;
        let doc = parse(Path::new("run.json"), text).unwrap();
        let steps: Vec<String> = doc
            .flow_ir
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(steps, ["start", "end"]);
        assert_eq!(doc.finished_at_unix_ms, None);
    }

    #[test]
    fn a_null_ir_gives_no_steps() {
        let text =
            br#"{"flow":"F","run_id":"3","status":"failed","created_at_unix_ms":5,"flow_ir":null}"#;
        let doc = parse(Path::new("run.json"), text).unwrap();
        assert!(doc.flow_ir.is_none());
    }

    #[test]
    fn a_truncated_file_is_invalid_metadata_naming_it() {
        let err = parse(Path::new("/s/F/runs/3/run.json"), br#"{"flow":"F","run_"#)
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.starts_with("metadata file `/s/F/runs/3/run.json` is invalid"),
            "{text}"
        );
    }
}
