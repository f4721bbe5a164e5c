//! What a finished task tells the scheduler beyond success or failure: the transition
//! its step took (which steps run next, how many foreach splits, which switch case) and
//! its foreach stack.
//!
//! The outcome is kept as a JSON blob under the reserved artifact name `_flowc_task` in
//! the task's manifest, so it is content-addressed, written atomically with the
//! manifest, and readable without Python. [`read`] is the one place that knows this.

use serde::{Deserialize, Serialize};

use crate::store::{ArtifactEntry, ArtifactName, BlobStore, FlowName, Manifest, StoreResult};

/// Manifest name of the outcome blob. Names starting with `_` are never user artifacts.
pub const OUTCOME_ARTIFACT: &str = "_flowc_task";

/// `encoding` of the outcome blob in the manifest.
pub(crate) const OUTCOME_ENCODING: &str = "json";

/// `type` of the outcome blob in the manifest.
const OUTCOME_TYPE: &str = "flowc.TaskOutcome";

/// How the step's code ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step returned normally.
    Ok,
    /// The step raised, and `@catch` turned the exception into a stored value: the task
    /// succeeded and the flow goes on along the step's static transition.
    Caught,
    /// The step (or the task around it) failed.
    Failed,
}

/// One level of foreach nesting, as Metaflow's `ForeachFrame` without the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeachFrame {
    /// The step that follows the foreach split (the first step of the body).
    pub step: String,
    /// The artifact the split iterates over.
    pub var: String,
    pub num_splits: u64,
    /// This task's position in the split, from 0.
    pub index: u64,
}

/// The `self.next(...)` call the step made, as the harness saw it at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transition {
    Linear {
        targets: Vec<String>,
    },
    Branch {
        targets: Vec<String>,
    },
    /// The scheduler starts `num_splits` tasks of the target, with split indexes
    /// `0..num_splits`.
    Foreach {
        targets: Vec<String>,
        foreach_var: String,
        num_splits: u64,
    },
    /// `targets` holds the one step the condition's value chose.
    Switch {
        targets: Vec<String>,
        condition: String,
        /// The condition's value (its `repr` when not a JSON scalar).
        case: serde_json::Value,
    },
}

impl Transition {
    /// The steps that run next.
    pub fn targets(&self) -> &[String] {
        match self {
            Transition::Linear { targets }
            | Transition::Branch { targets }
            | Transition::Foreach { targets, .. }
            | Transition::Switch { targets, .. } => targets,
        }
    }
}

/// The outcome of one task attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub status: StepStatus,
    /// `None` for the `end` step, a failed step, and a step whose exception `@catch`
    /// handled (the scheduler then follows the step's static transition).
    #[serde(default)]
    pub transition: Option<Transition>,
    #[serde(default)]
    pub foreach_stack: Vec<ForeachFrame>,
}

impl TaskOutcome {
    /// Number of tasks the scheduler must start for the foreach this task split, if any.
    pub fn foreach_splits(&self) -> Option<u64> {
        match &self.transition {
            Some(Transition::Foreach { num_splits, .. }) => Some(*num_splits),
            _ => None,
        }
    }

    /// The step a switch chose, if this task ran a switch.
    pub fn switch_choice(&self) -> Option<&str> {
        match &self.transition {
            Some(Transition::Switch { targets, .. }) => targets.first().map(String::as_str),
            _ => None,
        }
    }
}

/// Stores `outcome` and adds it to `manifest`.
pub(crate) fn record<S: BlobStore + ?Sized>(
    store: &S,
    flow: &FlowName,
    manifest: &mut Manifest,
    outcome: &TaskOutcome,
) -> StoreResult<()> {
    // Serialising plain data (strings, integers, JSON values) cannot fail.
    let bytes = serde_json::to_vec(outcome).unwrap_or_default();
    let blob = store.put(flow, &bytes)?;
    if let Ok(name) = ArtifactName::new(OUTCOME_ARTIFACT) {
        manifest.artifacts.insert(
            name,
            ArtifactEntry {
                hash: blob.hash,
                type_name: OUTCOME_TYPE.to_owned(),
                size: blob.size,
                encoding: OUTCOME_ENCODING.to_owned(),
            },
        );
    }
    Ok(())
}

/// The outcome recorded in a task's manifest; `Ok(None)` when there is none (a task
/// written by something other than flowc-shim).
pub fn read<S: BlobStore + ?Sized>(
    store: &S,
    flow: &FlowName,
    manifest: &Manifest,
) -> Result<Option<TaskOutcome>, String> {
    let Some(entry) = manifest
        .artifacts
        .iter()
        .find_map(|(name, entry)| (name.as_str() == OUTCOME_ARTIFACT).then_some(entry))
    else {
        return Ok(None);
    };
    let bytes = store
        .get(flow, &entry.hash)
        .map_err(|err| err.to_string())?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| format!("the task outcome record is not valid: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcome_json_names_the_transition_kind() {
        let outcome = TaskOutcome {
            status: StepStatus::Ok,
            transition: Some(Transition::Foreach {
                targets: vec!["train".into()],
                foreach_var: "alphas".into(),
                num_splits: 3,
            }),
            foreach_stack: vec![],
        };
        let value = serde_json::to_value(&outcome).unwrap();
        assert_eq!(
            value,
            json!({"status": "ok", "foreach_stack": [], "transition":
                {"kind": "foreach", "targets": ["train"], "foreach_var": "alphas", "num_splits": 3}})
        );
        assert_eq!(outcome.foreach_splits(), Some(3));
        assert_eq!(outcome.switch_choice(), None);
        let back: TaskOutcome = serde_json::from_value(value).unwrap();
        assert_eq!(back, outcome);
    }

    #[test]
    fn switch_choice_is_the_single_target() {
        let outcome: TaskOutcome = serde_json::from_value(json!({
            "status": "ok",
            "transition": {"kind": "switch", "targets": ["high"], "condition": "level", "case": "h"},
        }))
        .unwrap();
        assert_eq!(outcome.switch_choice(), Some("high"));
        assert_eq!(outcome.transition.unwrap().targets(), ["high"]);
    }
}
