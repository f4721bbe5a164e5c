//! What a Step Functions state machine reads from a task beyond its exit status: the
//! foreach item list its distributed Map iterates over, the number of splits its join
//! names, and the step a switch chose (`task --write-outputs`).
//!
//! They are written through the datastore ([`MetadataStore::write_task_output`]), so
//! with an S3 root they land at `<prefix>/<Flow>/runs/<run>/<step>/<task>/outputs/`,
//! where the state machine's `s3:getObject` reads and the Map's `ItemReader` find them.
//! Each file is written without a trailing newline:
//!
//! | file | content |
//! |---|---|
//! | `foreach_items.json` | the split indexes of a foreach, `[0,1,...,N-1]`; `[]` otherwise |
//! | `num_splits` | `N`; `0` for a step that is not a foreach |
//! | `switch_step` | the step a switch chose; empty otherwise |
//!
//! Every file is written for every task given the flag, so a reader never meets a
//! missing object: a state machine that reads `switch_step` of a foreach step gets an
//! empty text, not an error.

use std::fmt::Write as _;

use super::TaskOutcome;
use crate::store::{MetadataStore, StoreResult, TaskOutput, TaskPath};

/// The JSON list `[0,1,...,n-1]`: the items a Map iterates over, one per split index.
pub fn foreach_items(n: u64) -> String {
    let mut items = String::from("[");
    for index in 0..n {
        if index > 0 {
            items.push(',');
        }
        let _ = write!(items, "{index}");
    }
    items.push(']');
    items
}

/// Writes the task's output files into the datastore. `outcome` is `None` when the
/// harness reported none (a task whose failure `@catch` handled before the step chose
/// its transition): the files then say "no split, no choice".
pub fn write_outputs<S: MetadataStore + ?Sized>(
    store: &S,
    task: &TaskPath,
    outcome: Option<&TaskOutcome>,
) -> StoreResult<()> {
    let splits = outcome.and_then(TaskOutcome::foreach_splits).unwrap_or(0);
    let choice = outcome.and_then(TaskOutcome::switch_choice).unwrap_or("");
    store.write_task_output(
        task,
        TaskOutput::ForeachItems,
        foreach_items(splits).as_bytes(),
    )?;
    store.write_task_output(task, TaskOutput::NumSplits, splits.to_string().as_bytes())?;
    store.write_task_output(task, TaskOutput::SwitchStep, choice.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FlowName, LocalStore, RunSpec, StepName, TaskId};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("flowc-sfn-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn task(store: &LocalStore, step: &str, id: &str) -> TaskPath {
        let flow = FlowName::new("F").unwrap();
        let run = store.create_run(&flow, RunSpec::default()).unwrap();
        TaskPath::new(
            flow,
            run.run_id,
            StepName::new(step).unwrap(),
            TaskId::new(id).unwrap(),
        )
    }

    fn read(store: &LocalStore, task: &TaskPath, output: TaskOutput) -> String {
        String::from_utf8(store.read_task_output(task, output).unwrap()).unwrap()
    }

    #[test]
    fn item_lists_count_from_zero() {
        assert_eq!(foreach_items(0), "[]");
        assert_eq!(foreach_items(1), "[0]");
        assert_eq!(foreach_items(4), "[0,1,2,3]");
    }

    #[test]
    fn a_foreach_leaves_its_items_and_count_in_the_store() {
        let dir = scratch("foreach");
        let store = LocalStore::open_or_create(&dir).unwrap();
        let task = task(&store, "start", "t");
        let outcome: TaskOutcome = serde_json::from_value(serde_json::json!({
            "status": "ok",
            "transition": {"kind": "foreach", "targets": ["train"], "foreach_var": "xs", "num_splits": 3},
        }))
        .unwrap();
        write_outputs(&store, &task, Some(&outcome)).unwrap();
        assert_eq!(read(&store, &task, TaskOutput::ForeachItems), "[0,1,2]");
        assert_eq!(read(&store, &task, TaskOutput::NumSplits), "3");
        assert_eq!(read(&store, &task, TaskOutput::SwitchStep), "");
        assert!(store
            .layout()
            .task_dir(&task)
            .join("outputs/foreach_items.json")
            .is_file());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_switch_leaves_its_choice_and_no_split() {
        let dir = scratch("switch");
        let store = LocalStore::open_or_create(&dir).unwrap();
        let task = task(&store, "route", "t-2.r1");
        let outcome: TaskOutcome = serde_json::from_value(serde_json::json!({
            "status": "ok",
            "transition": {"kind": "switch", "targets": ["fit_deep"], "condition": "bucket", "case": "large"},
        }))
        .unwrap();
        write_outputs(&store, &task, Some(&outcome)).unwrap();
        assert_eq!(read(&store, &task, TaskOutput::SwitchStep), "fit_deep");
        assert_eq!(read(&store, &task, TaskOutput::NumSplits), "0");
        assert_eq!(read(&store, &task, TaskOutput::ForeachItems), "[]");
        write_outputs(&store, &task, None).unwrap();
        assert_eq!(read(&store, &task, TaskOutput::SwitchStep), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
