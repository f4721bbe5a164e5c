//! Generates realistic, valid Metaflow flows of a chosen size for the `check` benchmark
//! and the robustness tests: linear chains, branches and foreaches closed by their own
//! joins, nested foreaches, a foreach inside a branch, decorators with arithmetic
//! arguments, module constants, parameters and docstrings.
//!
//! Shared by `compiler/benches/check.rs` and `tests/robustness.rs` (included there with
//! `#[path]`), so that what is benchmarked is also what the tests prove valid.

use std::fmt::Write as _;

/// SplitMix64: a tiny deterministic PRNG. Tests and benchmarks must see the same
/// inputs on every run and every machine, and a crate for this would be overkill.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0). The modulo bias is irrelevant here.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // `n` fits in u64 and the remainder is below `n`, so both casts are lossless.
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Step decorators, grouped by decorator so that one step never gets the same one
/// twice. Arithmetic and module constants exercise the static evaluator.
const DECORATORS: &[&[&str]] = &[
    &[
        "@resources(memory=2 * 1024, cpu=2)",
        "@resources(memory=MEMORY_MB + 512, cpu=1 + 1, disk=10 * 1024)",
        "@resources(cpu=CPUS, memory=MEMORY_MB * 2, gpu=0)",
    ],
    &[
        "@retry(times=2)",
        "@retry(times=1 + 2, minutes_between_retries=1)",
    ],
    &["@timeout(minutes=10 + 5)", "@timeout(hours=1, seconds=30)"],
    &["@catch(var=\"failure\", print_exception=False)"],
    &["@environment(vars={\"STAGE\": \"train\", \"THREADS\": \"4\"})"],
    &["@card(type=\"blank\")", "@card"],
];

const CHAIN_WORDS: &[&str] = &[
    "load",
    "clean",
    "featurize",
    "train",
    "score",
    "evaluate",
    "validate",
    "publish",
    "tune",
    "export",
];

const FOREACH_VARS: &[&str] = &["shards", "items", "partitions", "folds"];

/// Where a step hands over to.
enum Next {
    End,
    To(Vec<String>),
    Foreach(String, &'static str),
}

struct StepDef {
    name: String,
    join: bool,
    doc: Option<&'static str>,
    decorators: Vec<&'static str>,
    body: Vec<String>,
    next: Next,
}

struct Builder {
    rng: Rng,
    steps: Vec<StepDef>,
    counter: usize,
}

/// The kinds of subgraph the planner strings together, with the steps each takes.
#[derive(Clone, Copy)]
enum Segment {
    Chain(usize),
    Branch { width: usize, depth: usize },
    Foreach { depth: usize },
    NestedForeach,
    BranchWithForeach,
}

impl Segment {
    fn size(self) -> usize {
        match self {
            Segment::Chain(len) => len,
            Segment::Branch { width, depth } => width * depth + 2,
            Segment::Foreach { depth } => depth + 2,
            Segment::NestedForeach => 5,
            Segment::BranchWithForeach => 6,
        }
    }
}

impl Builder {
    fn fresh_name(&mut self, word: &str) -> String {
        self.counter += 1;
        format!("{word}_{}", self.counter)
    }

    fn decorators(&mut self) -> Vec<&'static str> {
        let mut chosen = Vec::new();
        for group in DECORATORS {
            // About one decorator in five groups: most steps get zero to two.
            if self.rng.below(5) == 0 {
                chosen.push(*self.rng.pick(group));
            }
        }
        chosen
    }

    /// Adds a step whose transition is filled in later by `link`; returns its index.
    fn push(
        &mut self,
        name: String,
        join: bool,
        doc: Option<&'static str>,
        body: Vec<String>,
    ) -> usize {
        let decorators = self.decorators();
        // Leave some steps without a docstring, as real flows do.
        let doc = if self.rng.below(4) == 0 { None } else { doc };
        self.steps.push(StepDef {
            name,
            join,
            doc,
            decorators,
            body,
            next: Next::End,
        });
        self.steps.len() - 1
    }

    /// Metaflow rejects `@catch` on a foreach split step, so splits never get one.
    fn no_catch(&mut self, index: usize) {
        if let Some(step) = self.steps.get_mut(index) {
            step.decorators.retain(|d| !d.starts_with("@catch"));
        }
    }

    fn link(&mut self, from: usize, to: &str) {
        if let Some(step) = self.steps.get_mut(from) {
            step.next = Next::To(vec![to.to_string()]);
        }
    }

    /// A linear chain of `len` (≥ 1) steps; returns (entry name, exit index).
    fn chain(&mut self, len: usize) -> (String, usize) {
        let mut entry = None;
        let mut last: Option<usize> = None;
        for _ in 0..len.max(1) {
            let word = *self.rng.pick(CHAIN_WORDS);
            let name = self.fresh_name(word);
            let counter = self.counter;
            let body = vec![format!(
                "self.{word}_result = self.alpha * {counter} + len(self.region)"
            )];
            let index = self.push(
                name.clone(),
                false,
                Some("One stage of the pipeline."),
                body,
            );
            if let Some(prev) = last {
                self.link(prev, &name);
            }
            entry.get_or_insert(name);
            last = Some(index);
        }
        (entry.unwrap_or_default(), last.unwrap_or_default())
    }

    fn join(&mut self, doc: &'static str, body: Vec<String>) -> (String, usize) {
        let name = self.fresh_name("join");
        let index = self.push(name.clone(), true, Some(doc), body);
        (name, index)
    }

    fn branch(&mut self, width: usize, depth: usize) -> (String, usize) {
        let split = self.fresh_name("fan_out");
        let split_index = self.push(
            split.clone(),
            false,
            Some("Run independent stages in parallel."),
            vec!["self.started = True".to_string()],
        );
        let arms: Vec<(String, usize)> = (0..width).map(|_| self.chain(depth)).collect();
        let (join, join_index) = self.join(
            "Merge the parallel stages.",
            vec!["self.merge_artifacts(inputs, include=[\"started\"])".to_string()],
        );
        self.steps[split_index].next =
            Next::To(arms.iter().map(|(entry, _)| entry.clone()).collect());
        for (_, exit) in &arms {
            self.link(*exit, &join);
        }
        (split, join_index)
    }

    fn foreach(&mut self, depth: usize) -> (String, usize) {
        let var = *self.rng.pick(FOREACH_VARS);
        let split = self.fresh_name("shard");
        let width = 2 + self.rng.below(6);
        let split_index = self.push(
            split.clone(),
            false,
            Some("Split the work into shards."),
            vec![format!("self.{var} = list(range({width}))")],
        );
        let (body, body_exit) = self.chain(depth);
        if let Some(step) = self.steps.iter_mut().find(|s| s.name == body) {
            step.body.insert(0, "self.item = self.input".to_string());
        }
        let (join, join_index) = self.join(
            "Collect the shards.",
            vec!["self.collected = [i.item for i in inputs]".to_string()],
        );
        self.no_catch(split_index);
        self.steps[split_index].next = Next::Foreach(body, var);
        self.link(body_exit, &join);
        (split, join_index)
    }

    fn nested_foreach(&mut self) -> (String, usize) {
        let outer = self.fresh_name("regions");
        let outer_index = self.push(
            outer.clone(),
            false,
            Some("One task per region."),
            vec!["self.regions = [\"eu\", \"us\", \"ap\"]".to_string()],
        );
        let (inner, inner_exit) = self.foreach(1);
        if let Some(step) = self.steps.iter_mut().find(|s| s.name == inner) {
            step.body.insert(0, "self.zone = self.input".to_string());
        }
        let (join, join_index) = self.join(
            "Collect the regions.",
            vec!["self.zones = [i.zone for i in inputs]".to_string()],
        );
        self.no_catch(outer_index);
        self.steps[outer_index].next = Next::Foreach(inner, "regions");
        self.link(inner_exit, &join);
        (outer, join_index)
    }

    fn branch_with_foreach(&mut self) -> (String, usize) {
        let split = self.fresh_name("fan_out");
        let split_index = self.push(
            split.clone(),
            false,
            Some("A sharded arm next to a plain one."),
            vec!["self.started = True".to_string()],
        );
        let sharded = self.foreach(1);
        let plain = self.chain(1);
        let (join, join_index) = self.join(
            "Merge the arms.",
            vec!["self.merge_artifacts(inputs, include=[\"started\"])".to_string()],
        );
        self.steps[split_index].next = Next::To(vec![sharded.0, plain.0]);
        self.link(sharded.1, &join);
        self.link(plain.1, &join);
        (split, join_index)
    }

    fn segment(&mut self, segment: Segment) -> (String, usize) {
        match segment {
            Segment::Chain(len) => self.chain(len),
            Segment::Branch { width, depth } => self.branch(width, depth),
            Segment::Foreach { depth } => self.foreach(depth),
            Segment::NestedForeach => self.nested_foreach(),
            Segment::BranchWithForeach => self.branch_with_foreach(),
        }
    }

    fn plan(&mut self, remaining: usize) -> Segment {
        let candidates = [
            Segment::Chain(1 + self.rng.below(3)),
            Segment::Chain(1),
            Segment::Branch {
                width: 2 + self.rng.below(3),
                depth: 1 + self.rng.below(2),
            },
            Segment::Branch { width: 2, depth: 1 },
            Segment::Foreach {
                depth: 1 + self.rng.below(2),
            },
            Segment::NestedForeach,
            Segment::BranchWithForeach,
        ];
        let fitting: Vec<Segment> = candidates
            .into_iter()
            .filter(|s| s.size() <= remaining)
            .collect();
        if fitting.is_empty() {
            Segment::Chain(remaining)
        } else {
            *self.rng.pick(&fitting)
        }
    }
}

/// A valid flow of exactly `steps` steps (at least 2: `start` and `end`), the same text
/// for the same `(steps, seed)`.
pub(crate) fn flow(steps: usize, seed: u64) -> String {
    let mut b = Builder {
        rng: Rng::new(seed ^ (steps as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)),
        steps: Vec::new(),
        counter: 0,
    };
    let start = b.push(
        "start".to_string(),
        false,
        Some("Read the parameters and set up the run."),
        vec!["self.rows = list(range(self.epochs))".to_string()],
    );
    let mut exit = start;
    let mut remaining = steps.max(2) - 2;
    while remaining > 0 {
        let segment = b.plan(remaining);
        remaining -= segment.size();
        let (entry, segment_exit) = b.segment(segment);
        b.link(exit, &entry);
        exit = segment_exit;
    }
    let end = b.push(
        "end".to_string(),
        false,
        Some("Report what the run produced."),
        vec!["print(\"done\", self.alpha)".to_string()],
    );
    let end_name = b.steps[end].name.clone();
    b.link(exit, &end_name);
    b.steps[end].next = Next::End;
    render(steps.max(2), &b.steps)
}

fn render(count: usize, steps: &[StepDef]) -> String {
    let mut out = String::with_capacity(steps.len() * 320 + 1024);
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        out,
        r#""""A generated pipeline of {count} steps."""

from metaflow import (
    FlowSpec,
    JSONType,
    Parameter,
    card,
    catch,
    environment,
    project,
    resources,
    retry,
    schedule,
    step,
    timeout,
)

MEMORY_MB = 4 * 1024
CPUS = 2
LEARNING_RATE = 0.01


@project(name="generated")
@schedule(daily=True)
class Generated{count}Flow(FlowSpec):
    """Benchmark flow: {count} steps of chains, branches and foreaches.

    Every split is closed by a join of that same split.
    """

    alpha = Parameter("alpha", help="Learning rate.", default=LEARNING_RATE)
    epochs = Parameter("epochs", help="Passes over the data.", type=int, default=3)
    region = Parameter("region", default="eu-west-1")
    dry_run = Parameter("dry-run", type=bool, default=False)
    settings = Parameter("settings", type=JSONType, default='{{"depth": 3}}')
"#
    );
    for step in steps {
        out.push('\n');
        for decorator in &step.decorators {
            let _ = writeln!(out, "    {decorator}");
        }
        let params = if step.join { "self, inputs" } else { "self" };
        let _ = writeln!(out, "    @step\n    def {}({params}):", step.name);
        if let Some(doc) = step.doc {
            let _ = writeln!(out, "        \"\"\"{doc}\"\"\"");
        }
        for line in &step.body {
            let _ = writeln!(out, "        {line}");
        }
        match &step.next {
            Next::End => {}
            Next::To(targets) => {
                let targets: Vec<String> = targets.iter().map(|t| format!("self.{t}")).collect();
                let _ = writeln!(out, "        self.next({})", targets.join(", "));
            }
            Next::Foreach(target, var) => {
                let _ = writeln!(out, "        self.next(self.{target}, foreach=\"{var}\")");
            }
        }
    }
    let _ = write!(
        out,
        "\n\nif __name__ == \"__main__\":\n    Generated{count}Flow()\n"
    );
    out
}
