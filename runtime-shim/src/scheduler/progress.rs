//! What the scheduler tells the user while a run works: one line per task state change
//! on stderr, then a summary table. Plain lines only (no cursor movement), so the
//! output reads the same in a terminal, a CI log or a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// How the tasks of one step ended, for the summary.
#[derive(Debug, Default)]
struct StepTally {
    tasks: usize,
    succeeded: usize,
    cloned: usize,
    failed: usize,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

/// Counts and per-step tallies of one run.
pub(crate) struct Progress {
    /// Step names in plan order, for the summary.
    order: Vec<String>,
    steps: BTreeMap<String, StepTally>,
    /// Tasks known so far (foreach fan-outs add to it as they happen).
    known: usize,
    finished: usize,
}

/// A task as progress lines name it.
pub(crate) struct TaskLabel<'a> {
    pub(crate) step: &'a str,
    /// `(index, width)` of a foreach split.
    pub(crate) split: Option<(u64, u64)>,
}

impl std::fmt::Display for TaskLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.step)?;
        if let Some((index, width)) = self.split {
            write!(f, " (foreach {}/{width})", index + 1)?;
        }
        Ok(())
    }
}

impl Progress {
    pub(crate) fn new(order: Vec<String>) -> Self {
        Progress {
            order,
            steps: BTreeMap::new(),
            known: 0,
            finished: 0,
        }
    }

    /// A task became known (queued).
    pub(crate) fn queued(&mut self, step: &str) {
        self.known += 1;
        self.steps.entry(step.to_owned()).or_default().tasks += 1;
    }

    pub(crate) fn started(&mut self, label: &TaskLabel<'_>, detail: &str) {
        let tally = self.steps.entry(label.step.to_owned()).or_default();
        tally.first_start.get_or_insert_with(Instant::now);
        self.say(&format!("{label} {detail}"));
    }

    pub(crate) fn succeeded(&mut self, label: &TaskLabel<'_>, detail: &str) {
        self.finish(label.step, |t| t.succeeded += 1);
        self.say(&format!("{label} {detail}"));
    }

    pub(crate) fn cloned(&mut self, label: &TaskLabel<'_>, origin: &str) {
        let tally = self.steps.entry(label.step.to_owned()).or_default();
        tally.first_start.get_or_insert_with(Instant::now);
        self.finish(label.step, |t| t.cloned += 1);
        self.say(&format!("{label} cloned from run {origin}"));
    }

    pub(crate) fn failed(&mut self, label: &TaskLabel<'_>, detail: &str) {
        self.finish(label.step, |t| t.failed += 1);
        self.say(&format!("{label} {detail}"));
    }

    /// A task already counted as succeeded whose outcome cannot be followed (a foreach
    /// too wide): it counts as failed instead.
    pub(crate) fn failed_after_success(&mut self, label: &TaskLabel<'_>, detail: &str) {
        let tally = self.steps.entry(label.step.to_owned()).or_default();
        tally.succeeded = tally.succeeded.saturating_sub(1);
        tally.failed += 1;
        self.say(&format!("{label} {detail}"));
    }

    /// A line about a task that did not change the counts (a retry, a timeout).
    pub(crate) fn note(&mut self, label: &TaskLabel<'_>, detail: &str) {
        self.say(&format!("{label} {detail}"));
    }

    fn finish(&mut self, step: &str, count: impl FnOnce(&mut StepTally)) {
        self.finished += 1;
        let tally = self.steps.entry(step.to_owned()).or_default();
        count(tally);
        tally.last_end = Some(Instant::now());
    }

    fn say(&self, text: &str) {
        let line = format!("[{}/{}] {text}\n", self.finished, self.known);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes()).and_then(|()| err.flush());
    }

    /// The summary table: one row per step that had tasks, in plan order.
    pub(crate) fn summary(&self) -> String {
        let mut rows = vec![[
            "step".to_owned(),
            "tasks".to_owned(),
            "status".to_owned(),
            "duration".to_owned(),
        ]];
        for step in &self.order {
            let Some(tally) = self.steps.get(step) else {
                continue;
            };
            let status = if tally.failed > 0 {
                format!("{} failed", tally.failed)
            } else if tally.succeeded + tally.cloned < tally.tasks {
                format!("{} not run", tally.tasks - tally.succeeded - tally.cloned)
            } else if tally.cloned == tally.tasks {
                "cloned".to_owned()
            } else if tally.cloned > 0 {
                format!("ok ({} cloned)", tally.cloned)
            } else {
                "ok".to_owned()
            };
            let duration = match (tally.first_start, tally.last_end) {
                (Some(start), Some(end)) => format_duration(end.saturating_duration_since(start)),
                _ => "-".to_owned(),
            };
            rows.push([step.clone(), tally.tasks.to_string(), status, duration]);
        }
        let mut widths = [0usize; 4];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let line = format!(
                "  {:<w0$}  {:>w1$}  {:<w2$}  {:>w3$}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `0.4s`, `12.0s`, `3m05s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_show_foreach_position_from_one() {
        let label = TaskLabel {
            step: "train",
            split: Some((2, 10)),
        };
        assert_eq!(label.to_string(), "train (foreach 3/10)");
        let label = TaskLabel {
            step: "end",
            split: None,
        };
        assert_eq!(label.to_string(), "end");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(format_duration(Duration::from_millis(400)), "0.4s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m05s");
    }

    #[test]
    fn summary_lists_steps_in_plan_order_with_status() {
        let mut progress = Progress::new(vec!["start".into(), "a".into(), "end".into()]);
        progress.queued("start");
        progress.cloned(
            &TaskLabel {
                step: "start",
                split: None,
            },
            "1",
        );
        progress.queued("a");
        progress.queued("a");
        progress.succeeded(
            &TaskLabel {
                step: "a",
                split: None,
            },
            "done",
        );
        progress.failed(
            &TaskLabel {
                step: "a",
                split: None,
            },
            "failed",
        );
        let summary = progress.summary();
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines.len(), 3, "{summary}");
        assert!(lines[0].contains("step") && lines[0].contains("duration"));
        assert!(lines[1].starts_with("  start") && lines[1].contains("cloned"));
        assert!(lines[2].starts_with("  a") && lines[2].contains("1 failed"));
    }
}
