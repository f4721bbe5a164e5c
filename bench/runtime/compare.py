#!/usr/bin/env python3
"""Runtime benchmark: the same flows run by `flowc run` and by Metaflow's local runtime.

    python3 bench/runtime/compare.py [--save] [--widths 10,100,1000] [--repeat 3] ...

Cases: `foreach_trivial.py` at each width (a foreach whose body does next to nothing,
so what is timed is the runtime's per-task cost) and `big_artifact.py` (a 500 MB
artifact stored in one step and loaded in the next). Each case runs with both tools,
from a fresh datastore each time, and every run is checked: exit status 0, the
result the flow's `end` step writes (the join's count and sum; the artifact's length
and SHA-256, known in advance), and the tasks each tool recorded. A failed check
stops the benchmark: the time of a failing run means nothing.

Metaflow comes from PyPI (`metaflow==2.19.39`) into a throwaway virtualenv, or the
one `BENCH_VENV` names (created there and kept when it does not exist yet). Its runs
use the local datastore and local metadata under a temporary directory, an empty
`METAFLOW_HOME` (so no user profile can point them at a service) and, where
`unshare --net` works (root), a network namespace with no interface at all: neither
tool can reach the network while it is timed.

The flow files are copied into a temporary directory and run from there, so neither
tool sees (or packages) anything else, and the source tree gets no `__pycache__`.

Only the standard library is used; run it with the interpreter the tasks should use
(`FLOWC_PYTHON` is set to this interpreter's real path, and the virtualenv is built
from it, so both tools run the same Python).
"""

import argparse
import datetime
import glob
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

METAFLOW_VERSION = "2.19.39"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FLOWS = ("foreach_trivial.py", "big_artifact.py")

# The targets: Metaflow's time divided by flowc's, at least this much.
TARGETS = {"foreach-100": 10.0, "artifact-500MB": 2.0}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchFailure(Exception):
    """A run failed or gave a wrong result: the benchmark stops, keeping its files."""


def fail(msg):
    raise BenchFailure(msg)


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_args():
    p = argparse.ArgumentParser(
        description="Run the same flows with flowc and with Metaflow; print wall times and ratios."
    )
    p.add_argument("--widths", default="10,100,1000", help="foreach widths [default: 10,100,1000]")
    p.add_argument("--mb", type=int, default=500, help="artifact size in MB (10**6 bytes) [default: 500]")
    p.add_argument("--repeat", type=int, default=3, help="runs per case and tool; the best counts [default: 3]")
    p.add_argument(
        "--repeat-slow",
        type=int,
        default=1,
        help="runs per tool for widths of 1000 and more [default: 1]",
    )
    p.add_argument(
        "--max-workers",
        type=int,
        default=os.cpu_count() or 2,
        help="tasks at once, the same for both tools [default: the number of cores]",
    )
    p.add_argument(
        "--flowc-python",
        help="the interpreter flowc's tasks use (FLOWC_PYTHON) [default: the real path of the one running this]",
    )
    p.add_argument("--cases", default="foreach,artifact", help="which cases: foreach, artifact [default: both]")
    p.add_argument("--save", action="store_true", help="also write bench/runtime/results.json")
    p.add_argument("--output", help="write the JSON here instead (implies --save)")
    p.add_argument("--no-build", action="store_true", help="use target/release as it is; do not run cargo build")
    p.add_argument(
        "--keep-temp",
        action="store_true",
        help="keep the temporary directory (datastores, logs) for inspection",
    )
    args = p.parse_args()
    try:
        args.widths = [int(w) for w in args.widths.split(",") if w.strip()]
    except ValueError:
        p.error("--widths takes comma-separated integers")
    args.cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    unknown = args.cases - {"foreach", "artifact"}
    if unknown:
        p.error("unknown case(s): " + ", ".join(sorted(unknown)))
    if args.repeat < 1 or args.repeat_slow < 1 or args.max_workers < 1 or args.mb < 1:
        p.error("--repeat, --repeat-slow, --max-workers and --mb must be at least 1")
    if any(w < 1 for w in args.widths):
        p.error("widths must be at least 1")
    return args


def build_flowc(no_build):
    if not no_build:
        log("building flowc (cargo build --release -p flowc -p flowc-shim)")
        rc = subprocess.call(["cargo", "build", "--release", "-q", "-p", "flowc", "-p", "flowc-shim"], cwd=REPO)
        if rc != 0:
            fail("cargo build failed (exit %d)" % rc)
    flowc = os.path.join(REPO, "target", "release", "flowc")
    shim = os.path.join(REPO, "target", "release", "flowc-shim")
    for b in (flowc, shim):
        if not os.access(b, os.X_OK):
            fail("%s is missing: build it with `cargo build --release -p flowc -p flowc-shim`" % b)
    return flowc


def venv_metaflow_version(python):
    try:
        out = subprocess.run(
            [python, "-c", "import metaflow; print(metaflow.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def prepare_venv(tmp):
    """The virtualenv's interpreter, with `metaflow==METAFLOW_VERSION` importable."""
    venv = os.environ.get("BENCH_VENV") or os.path.join(tmp, "venv")
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(python):
        version = venv_metaflow_version(python)
        if version == METAFLOW_VERSION:
            log("using the virtualenv %s (metaflow %s)" % (venv, version))
            return python
        log("virtualenv %s has metaflow %s; installing %s" % (venv, version, METAFLOW_VERSION))
    else:
        log("creating a virtualenv in %s" % venv)
        if subprocess.call([sys.executable, "-m", "venv", venv]) != 0:
            fail("could not create the virtualenv %s" % venv)
    cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "metaflow==" + METAFLOW_VERSION]
    if subprocess.call(cmd) != 0:
        fail("pip could not install metaflow==%s into %s" % (METAFLOW_VERSION, venv))
    version = venv_metaflow_version(python)
    if version != METAFLOW_VERSION:
        fail("metaflow %s is not importable from %s (found %s)" % (METAFLOW_VERSION, python, version))
    return python


def netns_prefix():
    """`unshare --net` when it works here: the timed commands then have no network at all."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.call([unshare, "--net", "true"], stderr=subprocess.DEVNULL) == 0:
        return [unshare, "--net"]
    log(
        "warning: `unshare --net` is not available (needs root); the runs are not network-isolated, "
        "only configured for the local datastore and metadata"
    )
    return []


class Bench:
    def __init__(self, args, tmp, flowc, mf_python, netns):
        self.args = args
        self.tmp = tmp
        self.flowc = flowc
        self.mf_python = mf_python
        self.netns = netns
        self.flow_dir = os.path.join(tmp, "flows")
        os.makedirs(self.flow_dir)
        for f in FLOWS:
            shutil.copy(os.path.join(HERE, f), self.flow_dir)
        self.counter = 0
        # One environment for both tools: Metaflow's settings do nothing to flowc and
        # flowc's nothing to Metaflow. METAFLOW_* variables from the caller's shell are
        # dropped so that only the ones set here apply.
        env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
        self.mf_home = os.path.join(tmp, "metaflow-home")
        os.makedirs(self.mf_home)
        env.update(
            {
                "METAFLOW_HOME": self.mf_home,
                "METAFLOW_DEFAULT_DATASTORE": "local",
                "METAFLOW_DEFAULT_METADATA": "local",
                "USERNAME": "bench",
                "USER": env.get("USER", "bench"),
                "FLOWC_PYTHON": args.flowc_python or os.path.realpath(sys.executable),
                "FLOWC_CACHE_DIR": os.path.join(tmp, "flowc-cache"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("FLOWC_DATASTORE_ROOT", None)
        self.env = env

    def _fresh(self, label):
        self.counter += 1
        d = os.path.join(self.tmp, "runs", "%03d-%s" % (self.counter, label))
        os.makedirs(d)
        return d

    def run_once(self, tool, flow_file, params, max_num_splits):
        """One timed run; returns (wall seconds, CPU seconds, datastore, result dict).

        CPU seconds are the user + system time of every process of the run (each tool
        waits for its tasks, so the kernel adds them to ours): unlike wall time, they
        barely move with the load that other jobs put on the machine."""
        run_dir = self._fresh("%s-%s" % (tool, flow_file.split(".")[0]))
        result_file = os.path.join(run_dir, "result.json")
        env = dict(self.env)
        env["BENCH_RESULT_FILE"] = result_file
        flow_path = os.path.join(self.flow_dir, flow_file)
        param_args = []
        for k, v in params.items():
            param_args += ["--" + k, str(v)]
        workers = str(self.args.max_workers)
        if tool == "flowc":
            store = os.path.join(run_dir, "store")
            cmd = [self.flowc, "run", flow_path, "--max-workers", workers, "--max-num-splits", str(max_num_splits),
                   "--datastore-root", store] + param_args
        else:
            store = os.path.join(run_dir, "store")
            os.makedirs(store)
            env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = store
            cmd = [self.mf_python, flow_path, "--no-pylint", "--quiet", "--datastore", "local", "--metadata",
                   "local", "run", "--max-workers", workers, "--max-num-splits", str(max_num_splits)] + param_args
        stdout_path = os.path.join(run_dir, "stdout.log")
        stderr_path = os.path.join(run_dir, "stderr.log")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            rc = subprocess.call(self.netns + cmd, cwd=run_dir, env=env, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if rc != 0:
            with open(stderr_path, "rb") as f:
                tail = f.read()[-4000:].decode("utf-8", "replace")
            fail("%s run of %s %s exited with %d (logs in %s)\n%s" % (tool, flow_file, params, rc, run_dir,
                                                                          tail))
        try:
            with open(result_file) as f:
                result = json.load(f)
        except (OSError, ValueError) as e:
            fail("%s run of %s %s wrote no readable result (%s); logs in %s" % (tool, flow_file, params, e, run_dir))
        return seconds, cpu, store, result

    def check_tasks(self, tool, store, flow, step, expected):
        """The number of succeeded tasks of `step` each tool recorded must be `expected`."""
        if tool == "flowc":
            done = 0
            for path in glob.glob(os.path.join(store, flow, "runs", "*", step, "*", "task.json")):
                with open(path) as f:
                    if json.load(f).get("status") == "succeeded":
                        done += 1
        else:
            # Metaflow's local metadata marks a finished attempt with `<attempt>.DONE.lock`
            # and a successful one with an `attempt_ok` metadata entry of value "True".
            done = 0
            for task_dir in glob.glob(os.path.join(store, ".metaflow", flow, "*", step, "*")):
                if task_dir.rsplit(os.sep, 1)[-1].startswith("_"):
                    continue
                ok = False
                for meta in glob.glob(os.path.join(task_dir, "_meta", "*attempt_ok*.json")):
                    with open(meta) as f:
                        if str(json.load(f).get("value")) == "True":
                            ok = True
                if ok:
                    done += 1
        if done != expected:
            fail("%s recorded %d succeeded `%s` tasks of %s, expected %d (store %s)" % (tool, done, step, flow,
                                                                                       expected, store))

    def flowc_task_seconds(self, store, flow):
        """Mean duration of a flowc task as its own metadata records it (start to end of
        the attempt, as the shim measures it), for the per-task analysis."""
        durations = []
        for path in glob.glob(os.path.join(store, flow, "runs", "*", "*", "*", "task.json")):
            with open(path) as f:
                for a in json.load(f).get("attempts", []):
                    s, e = a.get("started_at_unix_ms"), a.get("finished_at_unix_ms")
                    if isinstance(s, int) and isinstance(e, int):
                        durations.append((e - s) / 1000.0)
        return durations

    def measure(self, case, flow_file, flow, params, repeat, check):
        times = {"flowc": [], "metaflow": []}
        cpu_times = {"flowc": [], "metaflow": []}
        extra = {}
        max_num_splits = max(100, int(params.get("width", 0)))
        for i in range(repeat):
            # Alternate which tool goes first, so a change in the machine's load over
            # time does not favour one of them.
            order = ("flowc", "metaflow") if i % 2 == 0 else ("metaflow", "flowc")
            for tool in order:
                load = loadavg()
                seconds, cpu, store, result = self.run_once(tool, flow_file, params, max_num_splits)
                cpu_times[tool].append(round(cpu, 3))
                check(tool, store, result)
                if tool == "flowc":
                    durations = self.flowc_task_seconds(store, flow)
                    extra.setdefault("flowc_task_seconds", []).extend(durations)
                    # How busy the workers were: the tasks' own time over wall x workers.
                    # What is missing went to the scheduler, `flowc` itself, or waiting.
                    extra.setdefault("flowc_busy", []).append(
                        sum(durations) / (seconds * self.args.max_workers))
                times[tool].append(round(seconds, 3))
                log("  %-16s %-8s run %d/%d: %7.2f s wall, %7.2f s CPU  (load %s)"
                    % (case, tool, i + 1, repeat, seconds, cpu, load))
                shutil.rmtree(os.path.dirname(store), ignore_errors=True)
        row = {
            "case": case,
            "params": params,
            "runs": repeat,
            "flowc_seconds": times["flowc"],
            "metaflow_seconds": times["metaflow"],
            "flowc_best": min(times["flowc"]),
            "metaflow_best": min(times["metaflow"]),
            "flowc_median": round(statistics.median(times["flowc"]), 3),
            "flowc_cpu_seconds": cpu_times["flowc"],
            "metaflow_cpu_seconds": cpu_times["metaflow"],
            "metaflow_median": round(statistics.median(times["metaflow"]), 3),
        }
        row["ratio"] = round(row["metaflow_best"] / row["flowc_best"], 2)
        row["cpu_ratio"] = round(min(cpu_times["metaflow"]) / max(min(cpu_times["flowc"]), 1e-9), 2)
        task_s = extra.get("flowc_task_seconds")
        if task_s:
            row["flowc_task_seconds_median"] = round(statistics.median(task_s), 3)
            row["flowc_tasks_per_run"] = len(task_s) // repeat
            row["flowc_worker_busy_fraction"] = round(statistics.median(extra["flowc_busy"]), 2)
        if case in TARGETS:
            row["target_ratio"] = TARGETS[case]
            row["target_met"] = row["ratio"] >= TARGETS[case]
        return row

    def foreach(self, width, repeat):
        def check(tool, store, result):
            want = {"count": width, "total": width * (width - 1)}
            if result != want:
                fail("%s foreach width %d: the end step saw %s, expected %s" % (tool, width, result, want))
            self.check_tasks(tool, store, "ForeachTrivialFlow", "body", width)

        return self.measure("foreach-%d" % width, "foreach_trivial.py", "ForeachTrivialFlow", {"width": width},
                            repeat, check)

    def payload_reference(self, mb):
        """The artifact's expected SHA-256, and what making and hashing it costs inside
        one plain Python process (no runtime at all): the floor under both tools' times.

        `big_artifact.py` imports `metaflow` at the top; a stand-in module keeps that
        import (Metaflow's takes about 0.5 s) out of the reference."""
        code = (
            "import hashlib, sys, time, types\n"
            "mf = types.ModuleType('metaflow')\n"
            "mf.FlowSpec = object\n"
            "mf.Parameter = lambda *args, **kwargs: None\n"
            "mf.step = lambda f: f\n"
            "sys.modules['metaflow'] = mf\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "from big_artifact import make_payload\n"
            "t = time.perf_counter()\n"
            "data = make_payload(int(sys.argv[2]))\n"
            "t1 = time.perf_counter()\n"
            "digest = hashlib.sha256(data).hexdigest()\n"
            "t2 = time.perf_counter()\n"
            "print(digest, len(data), round(t1 - t, 3), round(t2 - t1, 3))\n"
        )
        best = None
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", code, self.flow_dir, str(mb)], capture_output=True,
                                 text=True, env=self.env)
            if out.returncode != 0:
                fail("could not compute the artifact's reference hash:\n" + out.stderr)
            digest, length, make_s, hash_s = out.stdout.split()
            seconds = round(float(make_s) + float(hash_s), 3)
            if best is None or seconds < best["seconds"]:
                best = {"sha256": digest, "length": int(length), "seconds": seconds,
                        "make_seconds": float(make_s), "hash_seconds": float(hash_s)}
        return best

    def artifact(self, mb, repeat):
        ref = self.payload_reference(mb)
        log("  reference: make + hash %d MB in one plain Python process: %.2f s (make %.2f s, sha256 %.2f s)"
            % (mb, ref["seconds"], ref["make_seconds"], ref["hash_seconds"]))

        def check(tool, store, result):
            want = {"length": ref["length"], "sha256": ref["sha256"]}
            if result != want:
                fail("%s artifact run: the load step saw %s, expected %s" % (tool, result, want))
            self.check_tasks(tool, store, "BigArtifactFlow", "load", 1)

        row = self.measure("artifact-%dMB" % mb, "big_artifact.py", "BigArtifactFlow", {"mb": mb}, repeat, check)
        row["plain_python_seconds"] = ref["seconds"]
        return row

    def warm_up(self):
        """One untimed small run per tool: compiles the virtualenv's bytecode, writes
        flowc's harness cache, and pages both tools' files in."""
        log("warming up (one untimed width-2 foreach per tool)")
        for tool in ("flowc", "metaflow"):
            _, _, store, result = self.run_once(tool, "foreach_trivial.py", {"width": 2}, 100)
            if result != {"count": 2, "total": 2}:
                fail("%s warm-up run gave %s" % (tool, result))
            shutil.rmtree(os.path.dirname(store), ignore_errors=True)


def describe_machine(mf_python):
    def cmd(args, cwd=None):
        try:
            return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None

    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    rev = cmd(["git", "rev-parse", "--short", "HEAD"], cwd=REPO)
    dirty = cmd(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": "%s (%s)" % (platform.python_version(), os.path.realpath(sys.executable)),
        "metaflow": METAFLOW_VERSION,
        "metaflow_python": mf_python,
        "flowc_commit": (rev + ("+uncommitted changes" if dirty else "")) if rev else None,
    }


def print_table(rows):
    head = ("case", "flowc s", "metaflow s", "ratio", "target", "flowc CPU s", "metaflow CPU s", "CPU ratio")
    lines = [head]
    for r in rows:
        target = ""
        if "target_ratio" in r:
            target = "%gx %s" % (r["target_ratio"], "met" if r["target_met"] else "MISSED")
        lines.append((r["case"], "%.2f" % r["flowc_best"], "%.2f" % r["metaflow_best"], "%.1fx" % r["ratio"], target,
                      "%.2f" % min(r["flowc_cpu_seconds"]), "%.2f" % min(r["metaflow_cpu_seconds"]),
                      "%.1fx" % r["cpu_ratio"]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main():
    args = parse_args()
    try:
        flowc = build_flowc(args.no_build)
    except BenchFailure as e:
        log("error: %s" % e)
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="flowc-bench-")
    keep = args.keep_temp
    try:
        mf_python = prepare_venv(tmp)
        netns = netns_prefix()
        bench = Bench(args, tmp, flowc, mf_python, netns)
        started = datetime.datetime.now(datetime.timezone.utc)
        load_start = loadavg()
        bench.warm_up()
        rows = []
        if "foreach" in args.cases:
            for width in args.widths:
                repeat = args.repeat_slow if width >= 1000 else args.repeat
                log("foreach width %d: %d run(s) per tool" % (width, repeat))
                rows.append(bench.foreach(width, repeat))
        if "artifact" in args.cases:
            log("artifact %d MB: %d run(s) per tool" % (args.mb, args.repeat))
            rows.append(bench.artifact(args.mb, args.repeat))
        report = {
            "flowc_python": bench.env["FLOWC_PYTHON"],
            "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
            "max_workers": args.max_workers,
            "network_isolated": bool(netns),
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "machine": describe_machine(mf_python),
            "cases": rows,
        }
        print("flowc vs Metaflow %s, local runtime, --max-workers %d, best of the runs (ratio = metaflow / flowc)"
              % (METAFLOW_VERSION, args.max_workers))
        print_table(rows)
        for r in rows:
            if "plain_python_seconds" in r:
                print("%s: making and hashing the payload alone, in one plain Python process, takes %.2f s"
                      % (r["case"], r["plain_python_seconds"]))
        print("load average (1, 5, 15 min): %s at start, %s at end" % (load_start, report["load_average_end"]))
        if args.save or args.output:
            out = args.output or os.path.join(HERE, "results.json")
            with open(out, "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
                f.write("\n")
            log("wrote " + out)
    except BenchFailure as e:
        log("error: %s" % e)
        keep = True
        sys.exit(1)
    finally:
        if keep:
            log("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
