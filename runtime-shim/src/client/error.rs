//! What can go wrong when reading runs: a path that names nothing (said with what does
//! exist, and the nearest name), or a problem of the store itself (missing or corrupt
//! metadata, which the store's own error names by file).

use std::fmt;

use crate::store::StoreError;

use super::path::InvalidPath;

/// How many existing names an "unknown …" message lists before it says "and N more".
const LISTED_NAMES: usize = 10;

/// What a path names that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Flow,
    Run,
    Step,
    Task,
    Artifact,
}

impl Missing {
    fn noun(self) -> &'static str {
        match self {
            Missing::Flow => "flow",
            Missing::Run => "run",
            Missing::Step => "step",
            Missing::Task => "task",
            Missing::Artifact => "artifact",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Missing::Flow => "flows",
            Missing::Run => "runs",
            Missing::Step => "steps",
            Missing::Task => "tasks",
            Missing::Artifact => "artifacts",
        }
    }
}

/// An error of the read API.
#[derive(Debug)]
pub enum ClientError {
    /// The path does not parse.
    InvalidPath(InvalidPath),
    /// The path names something that does not exist. `within` is the path of what
    /// was searched (the store, a flow, a run, a step, a task), `existing` what it holds
    /// (newest run first, other names sorted).
    Unknown {
        what: Missing,
        name: String,
        within: String,
        existing: Vec<String>,
    },
    /// A step path was given where one task is needed, and the step has several (or
    /// none).
    NotOneTask { step: String, tasks: Vec<String> },
    /// The store failed: a metadata file that is missing or does not parse (the message
    /// names the file), a corrupt or missing blob, an I/O error.
    Store(StoreError),
}

impl From<StoreError> for ClientError {
    fn from(err: StoreError) -> Self {
        ClientError::Store(err)
    }
}

impl From<InvalidPath> for ClientError {
    fn from(err: InvalidPath) -> Self {
        ClientError::InvalidPath(err)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidPath(err) => err.fmt(f),
            ClientError::Unknown {
                what,
                name,
                within,
                existing,
            } => {
                write!(f, "{within} has no {} `{name}`", what.noun())?;
                if existing.is_empty() {
                    return write!(f, " (it has no {} at all)", what.plural());
                }
                match nearest(name, existing) {
                    Some(near) => write!(
                        f,
                        "; did you mean `{near}`? {} are: ",
                        capitalised(what.plural())
                    )?,
                    None => write!(f, "; {} are: ", what.plural())?,
                }
                f.write_str(&listing(existing))
            }
            ClientError::NotOneTask { step, tasks } => {
                if tasks.is_empty() {
                    write!(f, "step {step} has no task yet")
                } else {
                    write!(
                        f,
                        "step {step} has {} tasks; name one of them: {}",
                        tasks.len(),
                        listing(tasks)
                    )
                }
            }
            ClientError::Store(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::InvalidPath(err) => Some(err),
            ClientError::Store(err) => Some(err),
            _ => None,
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `a, b, c` for up to [`LISTED_NAMES`] names, then `and N more`.
fn listing(names: &[String]) -> String {
    let shown: Vec<&str> = names
        .iter()
        .take(LISTED_NAMES)
        .map(String::as_str)
        .collect();
    let mut text = shown.join(", ");
    if names.len() > LISTED_NAMES {
        text.push_str(&format!(" and {} more", names.len() - LISTED_NAMES));
    }
    text
}

/// The existing name closest to `name` by edit distance, when it is close enough to be
/// a likely typo: at most a third of the longer name's characters differ.
pub(crate) fn nearest<'a>(name: &str, existing: &'a [String]) -> Option<&'a str> {
    existing
        .iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| {
            let longest = name.chars().count().max(candidate.chars().count());
            *distance > 0 && *distance * 3 <= longest
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

/// Edit distance over characters where swapping two neighbours counts as one edit
/// (optimal string alignment): `trian` is one typo away from `train`, not two.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // Row-major (a.len() + 1) x (b.len() + 1); names are at most 200 bytes.
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[at(i - 1, j)] + 1)
                .min(d[at(i, j - 1)] + 1)
                .min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = best;
        }
    }
    d[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn edit_distance_counts_single_changes() {
        assert_eq!(edit_distance("train", "train"), 0);
        assert_eq!(edit_distance("trian", "train"), 1);
        assert_eq!(edit_distance("abc", "ca"), 3);
        assert_eq!(edit_distance("evalute", "evaluate"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn unknown_step_suggests_the_nearest_and_lists_the_rest() {
        let err = ClientError::Unknown {
            what: Missing::Step,
            name: "evalute".into(),
            within: "run TrainFlow/3".into(),
            existing: names(&["end", "evaluate", "start"]),
        };
        assert_eq!(
            err.to_string(),
            "run TrainFlow/3 has no step `evalute`; did you mean `evaluate`? Steps are: end, evaluate, start"
        );
    }

    #[test]
    fn unrelated_names_get_no_suggestion_and_long_lists_are_cut() {
        let many: Vec<String> = (1..=25).map(|i| i.to_string()).collect();
        let err = ClientError::Unknown {
            what: Missing::Run,
            name: "zzzz".into(),
            within: "flow F".into(),
            existing: many,
        };
        let text = err.to_string();
        assert!(!text.contains("did you mean"), "{text}");
        assert!(text.contains("`zzzz`; runs are: 1, 2"), "{text}");
        assert!(
            text.ends_with("1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 15 more"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_container_says_so() {
        let err = ClientError::Unknown {
            what: Missing::Flow,
            name: "F".into(),
            within: "datastore `/s`".into(),
            existing: Vec::new(),
        };
        assert_eq!(
            err.to_string(),
            "datastore `/s` has no flow `F` (it has no flows at all)"
        );
    }

    #[test]
    fn a_step_with_several_tasks_names_them() {
        let err = ClientError::NotOneTask {
            step: "F/1/train".into(),
            tasks: names(&["F/1/train/2", "F/1/train/3"]),
        };
        assert_eq!(
            err.to_string(),
            "step F/1/train has 2 tasks; name one of them: F/1/train/2, F/1/train/3"
        );
    }
}
