"""Generated flows for the compile benchmark.

`generated(steps, seed)` is a line-for-line port of `compiler/benches/flowgen/mod.rs`
(the generator behind `cargo bench --bench check` and `tests/robustness.rs`): the same
SplitMix64 stream and the same choices, so `generated(1000, 42)` is byte-for-byte the
1000-step flow the criterion benchmark checks. `python3 bench/compile/flowgen.py
--check-rust` proves that by compiling the Rust generator with `rustc` and comparing.

`linear(steps)` and `wide(arms)` are the two extreme shapes: a chain of plain steps
(graph depth = size), and one split into many one-step arms closed by one join (graph
width = size).

Only the standard library is used.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

MASK = (1 << 64) - 1

# The same tables, in the same order, as the Rust generator: the PRNG picks by index.
DECORATORS = (
    (
        "@resources(memory=2 * 1024, cpu=2)",
        "@resources(memory=MEMORY_MB + 512, cpu=1 + 1, disk=10 * 1024)",
        "@resources(cpu=CPUS, memory=MEMORY_MB * 2, gpu=0)",
    ),
    ("@retry(times=2)", "@retry(times=1 + 2, minutes_between_retries=1)"),
    ("@timeout(minutes=10 + 5)", "@timeout(hours=1, seconds=30)"),
    ('@catch(var="failure", print_exception=False)',),
    ('@environment(vars={"STAGE": "train", "THREADS": "4"})',),
    ('@card(type="blank")', "@card"),
)

CHAIN_WORDS = ("load", "clean", "featurize", "train", "score", "evaluate", "validate", "publish", "tune", "export")

FOREACH_VARS = ("shards", "items", "partitions", "folds")


class Rng:
    """SplitMix64, with the Rust generator's wrapping 64-bit arithmetic."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return 0 if n == 0 else self.next_u64() % n

    def pick(self, items):
        return items[self.below(len(items))]


class Step:
    def __init__(self, name, join, doc, decorators, body):
        self.name = name
        self.join = join
        self.doc = doc
        self.decorators = decorators
        self.body = body
        # None: the end step; ("to", [names]); ("foreach", name, var).
        self.next = None


# Segments are tuples: ("chain", len), ("branch", width, depth), ("foreach", depth),
# ("nested",), ("branch_foreach",).
def segment_size(segment):
    kind = segment[0]
    if kind == "chain":
        return segment[1]
    if kind == "branch":
        return segment[1] * segment[2] + 2
    if kind == "foreach":
        return segment[1] + 2
    if kind == "nested":
        return 5
    return 6


class Builder:
    def __init__(self, rng):
        self.rng = rng
        self.steps = []
        self.counter = 0

    def fresh_name(self, word):
        self.counter += 1
        return "%s_%d" % (word, self.counter)

    def decorators(self):
        chosen = []
        for group in DECORATORS:
            if self.rng.below(5) == 0:
                chosen.append(self.rng.pick(group))
        return chosen

    def push(self, name, join, doc, body):
        decorators = self.decorators()
        doc = None if self.rng.below(4) == 0 else doc
        self.steps.append(Step(name, join, doc, decorators, body))
        return len(self.steps) - 1

    def find(self, name):
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def no_catch(self, index):
        step = self.steps[index]
        step.decorators = [d for d in step.decorators if not d.startswith("@catch")]

    def link(self, source, target):
        self.steps[source].next = ("to", [target])

    def chain(self, length):
        entry = None
        last = None
        for _ in range(max(length, 1)):
            word = self.rng.pick(CHAIN_WORDS)
            name = self.fresh_name(word)
            body = ["self.%s_result = self.alpha * %d + len(self.region)" % (word, self.counter)]
            index = self.push(name, False, "One stage of the pipeline.", body)
            if last is not None:
                self.link(last, name)
            if entry is None:
                entry = name
            last = index
        return entry, last

    def join(self, doc, body):
        name = self.fresh_name("join")
        return name, self.push(name, True, doc, body)

    def branch(self, width, depth):
        split = self.fresh_name("fan_out")
        split_index = self.push(split, False, "Run independent stages in parallel.", ["self.started = True"])
        arms = [self.chain(depth) for _ in range(width)]
        join, join_index = self.join("Merge the parallel stages.",
                                     ['self.merge_artifacts(inputs, include=["started"])'])
        self.steps[split_index].next = ("to", [entry for entry, _ in arms])
        for _, exit_index in arms:
            self.link(exit_index, join)
        return split, join_index

    def foreach(self, depth):
        var = self.rng.pick(FOREACH_VARS)
        split = self.fresh_name("shard")
        width = 2 + self.rng.below(6)
        split_index = self.push(split, False, "Split the work into shards.",
                                ["self.%s = list(range(%d))" % (var, width)])
        body, body_exit = self.chain(depth)
        self.find(body).body.insert(0, "self.item = self.input")
        join, join_index = self.join("Collect the shards.", ["self.collected = [i.item for i in inputs]"])
        self.no_catch(split_index)
        self.steps[split_index].next = ("foreach", body, var)
        self.link(body_exit, join)
        return split, join_index

    def nested_foreach(self):
        outer = self.fresh_name("regions")
        outer_index = self.push(outer, False, "One task per region.", ['self.regions = ["eu", "us", "ap"]'])
        inner, inner_exit = self.foreach(1)
        self.find(inner).body.insert(0, "self.zone = self.input")
        join, join_index = self.join("Collect the regions.", ["self.zones = [i.zone for i in inputs]"])
        self.no_catch(outer_index)
        self.steps[outer_index].next = ("foreach", inner, "regions")
        self.link(inner_exit, join)
        return outer, join_index

    def branch_with_foreach(self):
        split = self.fresh_name("fan_out")
        split_index = self.push(split, False, "A sharded arm next to a plain one.", ["self.started = True"])
        sharded = self.foreach(1)
        plain = self.chain(1)
        join, join_index = self.join("Merge the arms.", ['self.merge_artifacts(inputs, include=["started"])'])
        self.steps[split_index].next = ("to", [sharded[0], plain[0]])
        self.link(sharded[1], join)
        self.link(plain[1], join)
        return split, join_index

    def segment(self, segment):
        kind = segment[0]
        if kind == "chain":
            return self.chain(segment[1])
        if kind == "branch":
            return self.branch(segment[1], segment[2])
        if kind == "foreach":
            return self.foreach(segment[1])
        if kind == "nested":
            return self.nested_foreach()
        return self.branch_with_foreach()

    def plan(self, remaining):
        # The draws happen in the order the Rust array literal evaluates them.
        candidates = [("chain", 1 + self.rng.below(3)), ("chain", 1)]
        width = 2 + self.rng.below(3)
        depth = 1 + self.rng.below(2)
        candidates.append(("branch", width, depth))
        candidates.append(("branch", 2, 1))
        candidates.append(("foreach", 1 + self.rng.below(2)))
        candidates.append(("nested",))
        candidates.append(("branch_foreach",))
        fitting = [s for s in candidates if segment_size(s) <= remaining]
        if not fitting:
            return ("chain", remaining)
        return self.rng.pick(fitting)


def generated(steps, seed=42):
    """The Rust generator's flow of exactly `steps` steps (at least 2) for `seed`."""
    steps = max(steps, 2)
    b = Builder(Rng(seed ^ ((steps * 0x2545F4914F6CDD1D) & MASK)))
    start = b.push("start", False, "Read the parameters and set up the run.",
                   ["self.rows = list(range(self.epochs))"])
    exit_index = start
    remaining = steps - 2
    while remaining > 0:
        segment = b.plan(remaining)
        remaining -= segment_size(segment)
        entry, segment_exit = b.segment(segment)
        b.link(exit_index, entry)
        exit_index = segment_exit
    end = b.push("end", False, "Report what the run produced.", ['print("done", self.alpha)'])
    b.link(exit_index, b.steps[end].name)
    b.steps[end].next = None
    return render(steps, b.steps)


def render(count, steps):
    out = [
        '"""A generated pipeline of %d steps."""\n' % count,
        "\n"
        "from metaflow import (\n"
        "    FlowSpec,\n"
        "    JSONType,\n"
        "    Parameter,\n"
        "    card,\n"
        "    catch,\n"
        "    environment,\n"
        "    project,\n"
        "    resources,\n"
        "    retry,\n"
        "    schedule,\n"
        "    step,\n"
        "    timeout,\n"
        ")\n"
        "\n"
        "MEMORY_MB = 4 * 1024\n"
        "CPUS = 2\n"
        "LEARNING_RATE = 0.01\n"
        "\n"
        "\n"
        '@project(name="generated")\n'
        "@schedule(daily=True)\n",
        "class Generated%dFlow(FlowSpec):\n" % count,
        '    """Benchmark flow: %d steps of chains, branches and foreaches.\n' % count,
        "\n"
        "    Every split is closed by a join of that same split.\n"
        '    """\n'
        "\n"
        '    alpha = Parameter("alpha", help="Learning rate.", default=LEARNING_RATE)\n'
        '    epochs = Parameter("epochs", help="Passes over the data.", type=int, default=3)\n'
        '    region = Parameter("region", default="eu-west-1")\n'
        '    dry_run = Parameter("dry-run", type=bool, default=False)\n'
        "    settings = Parameter(\"settings\", type=JSONType, default='{\"depth\": 3}')\n",
    ]
    for step in steps:
        out.append("\n")
        for decorator in step.decorators:
            out.append("    %s\n" % decorator)
        params = "self, inputs" if step.join else "self"
        out.append("    @step\n    def %s(%s):\n" % (step.name, params))
        if step.doc is not None:
            out.append('        """%s"""\n' % step.doc)
        for line in step.body:
            out.append("        %s\n" % line)
        if step.next is not None:
            if step.next[0] == "to":
                out.append("        self.next(%s)\n" % ", ".join("self." + t for t in step.next[1]))
            else:
                out.append('        self.next(self.%s, foreach="%s")\n' % (step.next[1], step.next[2]))
    out.append('\n\nif __name__ == "__main__":\n    Generated%dFlow()\n' % count)
    return "".join(out)


def linear(steps):
    """`start`, `steps - 2` plain steps, `end`, one after the other."""
    steps = max(steps, 2)
    names = ["start"] + ["step_%04d" % i for i in range(1, steps - 1)] + ["end"]
    out = [
        '"""A chain of %d steps."""\n\nfrom metaflow import FlowSpec, step\n\n\n' % steps,
        "class Linear%dFlow(FlowSpec):\n" % steps,
    ]
    for i, name in enumerate(names):
        out.append("    @step\n    def %s(self):\n        self.value = %d\n" % (name, i))
        if i + 1 < len(names):
            out.append("        self.next(self.%s)\n" % names[i + 1])
        out.append("\n")
    out.append('\nif __name__ == "__main__":\n    Linear%dFlow()\n' % steps)
    return "".join(out)


def wide(arms):
    """`start` splits into `arms` one-step arms, one `join` closes them, then `end`:
    `arms + 3` steps."""
    arms = max(arms, 2)
    names = ["arm_%04d" % i for i in range(arms)]
    out = [
        '"""One split into %d arms, closed by one join."""\n\nfrom metaflow import FlowSpec, step\n\n\n' % arms,
        "class Wide%dFlow(FlowSpec):\n" % arms,
        "    @step\n    def start(self):\n        self.seed = 1\n",
        "        self.next(%s)\n\n" % ", ".join("self." + n for n in names),
    ]
    for i, name in enumerate(names):
        out.append("    @step\n    def %s(self):\n        self.value = self.seed + %d\n" % (name, i))
        out.append("        self.next(self.join)\n\n")
    out.append("    @step\n    def join(self, inputs):\n        self.total = sum(i.value for i in inputs)\n")
    out.append("        self.next(self.end)\n\n")
    out.append("    @step\n    def end(self):\n        print(self.total)\n\n")
    out.append('\nif __name__ == "__main__":\n    Wide%dFlow()\n' % arms)
    return "".join(out)


def check_against_rust(sizes, seed):
    """Compiles the Rust generator on its own with `rustc` and compares its output with
    `generated` for each size; returns the sizes that differ."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    module = os.path.join(repo, "compiler", "benches", "flowgen", "mod.rs")
    tmp = tempfile.mkdtemp(prefix="flowgen-check-")
    try:
        main = os.path.join(tmp, "main.rs")
        with open(main, "w") as f:
            f.write(
                "#![allow(dead_code)]\n#[path = %s]\nmod flowgen;\n"
                "fn main() {\n    let args: Vec<String> = std::env::args().collect();\n"
                "    let steps: usize = args[1].parse().expect(\"steps\");\n"
                "    let seed: u64 = args[2].parse().expect(\"seed\");\n"
                "    print!(\"{}\", flowgen::flow(steps, seed));\n}\n" % json.dumps(module)
            )
        binary = os.path.join(tmp, "flowgen")
        subprocess.run(["rustc", "--edition", "2021", "-O", "-o", binary, main], check=True)
        differ = []
        for steps in sizes:
            want = subprocess.run([binary, str(steps), str(seed)], check=True, capture_output=True,
                                  text=True).stdout
            if want != generated(steps, seed):
                differ.append(steps)
        return differ
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description="Print a generated flow, or check the port against the Rust generator.")
    p.add_argument("kind", nargs="?", choices=("generated", "linear", "wide"), default="generated")
    p.add_argument("size", nargs="?", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--check-rust", action="store_true",
                   help="compare `generated` with compiler/benches/flowgen/mod.rs for several sizes")
    args = p.parse_args()
    if args.check_rust:
        sizes = (2, 3, 5, 10, 17, 50, 100, 333, 1000)
        differ = check_against_rust(sizes, args.seed)
        if differ:
            print("differs from the Rust generator for steps = %s" % differ, file=sys.stderr)
            sys.exit(1)
        print("identical to the Rust generator for steps = %s, seed %d" % (list(sizes), args.seed))
        return
    text = {"generated": lambda: generated(args.size, args.seed), "linear": lambda: linear(args.size),
            "wide": lambda: wide(args.size)}[args.kind]()
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
