//! Paths as users type them: `Flow`, `Flow/run`, `Flow/run/step`, `Flow/run/step/task`
//! (Metaflow's "pathspec"), with `latest` standing for a flow's newest run.

use std::fmt;

use crate::store::{FlowName, RunId, StepName, TaskId};

/// The word that names a flow's newest run in place of its id.
pub const LATEST: &str = "latest";

/// A run as a path names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSelector {
    /// The newest run of the flow, by creation time.
    Latest,
    Id(RunId),
}

impl fmt::Display for RunSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunSelector::Latest => f.write_str(LATEST),
            RunSelector::Id(id) => f.write_str(id.as_str()),
        }
    }
}

/// A parsed path: a flow, optionally narrowed to a run, a step of it and a task of
/// that. Every part is a validated name, so it can be joined onto a datastore path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSpec {
    pub flow: FlowName,
    pub run: Option<RunSelector>,
    pub step: Option<StepName>,
    pub task: Option<TaskId>,
}

/// A path that cannot be parsed, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid path {:?}: {}; paths look like Flow, Flow/RUN, Flow/RUN/step or Flow/RUN/step/TASK (RUN may be `latest`)",
            self.path, self.reason
        )
    }
}

impl std::error::Error for InvalidPath {}

impl PathSpec {
    /// Parses `text`. `latest` in the run position always means the newest run, so a
    /// run whose id is literally `latest` can only be reached through a listing.
    pub fn parse(text: &str) -> Result<PathSpec, InvalidPath> {
        let fail = |reason: String| InvalidPath {
            path: text.to_owned(),
            reason,
        };
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() > 4 {
            return Err(fail(format!(
                "it has {} parts, at most 4 are allowed",
                parts.len()
            )));
        }
        if parts.iter().any(|part| part.is_empty()) {
            return Err(fail("it has an empty part".to_owned()));
        }
        let get = |index: usize| parts.get(index).copied();
        let flow = FlowName::new(get(0).unwrap_or_default()).map_err(|e| fail(e.to_string()))?;
        let run = match get(1) {
            None => None,
            Some(LATEST) => Some(RunSelector::Latest),
            Some(id) => Some(RunSelector::Id(
                RunId::new(id).map_err(|e| fail(e.to_string()))?,
            )),
        };
        let step = get(2)
            .map(StepName::new)
            .transpose()
            .map_err(|e| fail(e.to_string()))?;
        let task = get(3)
            .map(TaskId::new)
            .transpose()
            .map_err(|e| fail(e.to_string()))?;
        Ok(PathSpec {
            flow,
            run,
            step,
            task,
        })
    }
}

impl fmt::Display for PathSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.flow)?;
        if let Some(run) = &self.run {
            write!(f, "/{run}")?;
        }
        if let Some(step) = &self.step {
            write!(f, "/{step}")?;
        }
        if let Some(task) = &self.task {
            write!(f, "/{task}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_depth() {
        let flow = PathSpec::parse("TrainFlow").unwrap();
        assert_eq!(flow.flow.as_str(), "TrainFlow");
        assert_eq!((flow.run, flow.step, flow.task), (None, None, None));

        let task = PathSpec::parse("TrainFlow/12/train/7").unwrap();
        assert_eq!(task.run, Some(RunSelector::Id(RunId::new("12").unwrap())));
        assert_eq!(task.step.as_ref().map(StepName::as_str), Some("train"));
        assert_eq!(task.task.as_ref().map(TaskId::as_str), Some("7"));
        assert_eq!(task.to_string(), "TrainFlow/12/train/7");
    }

    #[test]
    fn latest_names_the_newest_run() {
        let spec = PathSpec::parse("TrainFlow/latest/end").unwrap();
        assert_eq!(spec.run, Some(RunSelector::Latest));
        assert_eq!(spec.to_string(), "TrainFlow/latest/end");
    }

    #[test]
    fn rejects_bad_shapes_and_names_with_the_reason() {
        let cases = [
            ("", "empty part"),
            ("F/", "empty part"),
            ("F//start", "empty part"),
            ("F/1/start/1/x", "5 parts"),
            ("F/../start", "invalid run id"),
            ("F/1/run.json", "invalid step name"),
            ("F/1/start/-1", "invalid task id"),
            ("9Flow", "invalid flow name"),
        ];
        for (text, expected) in cases {
            let err = PathSpec::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(message.contains("Flow/RUN/step/TASK"), "{message}");
        }
    }
}
