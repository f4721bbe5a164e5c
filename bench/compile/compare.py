#!/usr/bin/env python3
"""Compile-time benchmark: `flowc compile` against Metaflow's own `create --only-json`.

    python3 bench/compile/compare.py [--save] [--repeat 5] [--targets argo,sfn] ...

For every flow of the set, and every target:

- flowc: `target/release/flowc compile FLOW --target argo -o DIR` (and `--target sfn`),
- Metaflow: `python FLOW --no-pylint --datastore=s3 argo-workflows create --only-json`
  (and `step-functions create --only-json`),

each timed as the wall clock of the whole process, from a fresh output directory (flowc)
and a fresh S3 prefix (Metaflow) per run, so both write their code package every time.

The flow set: the valid fixtures (`fixtures/flows/valid/*.py`), the examples
(`examples/*.py`), and generated flows: chains (`linear-N`), one wide split
(`wide-N`) and the realistic mixed pipelines of `cargo bench --bench check`
(`generated-N`, the same text: `bench/compile/flowgen.py` ports its generator).

What Metaflow's `create --only-json` does before it prints (read from its 2.19 source):
it imports the flow, validates the graph, builds the code package (the flow's directory
plus Metaflow itself) and uploads it to the S3 datastore; the Step Functions one also
looks for an existing state machine (Step Functions API), reads the account (STS) and,
for every step, describes the AWS Batch job queue and compute environment and registers
a job definition (Batch API). None of this reaches AWS here: a moto server on the
loopback interface answers S3, STS, Step Functions and Batch (seeded with a bucket, a
Fargate compute environment and its job queue), and the whole measurement runs inside
`unshare --net` (a network namespace with only the loopback interface) when that works,
i.e. as root. As a second fence, every run gets a dead HTTP(S) proxy for anything but
the loopback, fake AWS credentials, no AWS config files and no instance metadata. moto
on loopback answers faster than AWS would, so Metaflow's Step Functions times are a
lower bound.

Every run is checked: exit status 0, and the documents it produced (Metaflow's stdout
must parse as the WorkflowTemplate / state machine JSON; flowc's output directory must
hold the WorkflowTemplate / a state machine). A flow that a tool cannot compile is
reported with the tool's own error, not timed; a target flowc does not have yet is
reported once and skipped.

Metaflow comes from PyPI (`metaflow==2.19.39`, plus `kubernetes`, which its Argo
target needs) into a throwaway virtualenv, or the one `BENCH_VENV` names (shared with
`bench/runtime/compare.py`); moto into a second one (`BENCH_MOTO_VENV`), so that
Metaflow's own environment holds nothing it would not have in production.

Only the standard library is used.
"""

import argparse
import datetime
import errno
import fcntl
import glob
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(REPO, "bench", "compile", "results.json")
# A benchmark run leaves nothing in the source tree (no __pycache__ for this file's
# imports).
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)

import flowgen  # noqa: E402  (bench/compile/flowgen.py, beside this file)


def _load_runtime_bench():
    """`bench/runtime/compare.py`, for its virtualenv and machine-description helpers.
    Loaded under another name: this file is also called `compare.py`."""
    path = os.path.join(REPO, "bench", "runtime", "compare.py")
    spec = importlib.util.spec_from_file_location("runtime_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runtime = _load_runtime_bench()
METAFLOW_VERSION = runtime.METAFLOW_VERSION
MOTO_VERSION = "5.2.5"

# The aim: Metaflow's time over flowc's.
TARGET_RATIO = 100.0

TARGETS = {
    # target: (flowc --target, Metaflow sub-command)
    "argo": ("argo", "argo-workflows"),
    "sfn": ("sfn", "step-functions"),
}

# Environment variables for the inner run inside the network namespace.
INNER_ENV = "BENCH_COMPILE_INNER"

# Fake, syntactically valid AWS identifiers; moto accepts any of them.
ACCOUNT = "123456789012"
BUCKET = "bench-compile"
JOB_QUEUE = "bench-queue"
REGION = "us-east-1"

# Seeds moto with what Metaflow's Step Functions target looks up: the datastore bucket
# and an AWS Batch job queue whose compute environment names a platform (Fargate: it
# needs no EC2 instance role or instance types). Runs with moto's own interpreter.
MOTO_SEED = """
import json, sys
import boto3
bucket, queue = sys.argv[1], sys.argv[2]
boto3.client("s3").create_bucket(Bucket=bucket)
ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
group = ec2.create_security_group(GroupName="bench", Description="bench", VpcId=vpc)["GroupId"]
role = boto3.client("iam").create_role(
    RoleName="bench-batch-service",
    AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
)["Role"]["Arn"]
batch = boto3.client("batch")
env = batch.create_compute_environment(
    computeEnvironmentName="bench", type="MANAGED", state="ENABLED", serviceRole=role,
    computeResources={"type": "FARGATE", "maxvCpus": 4, "subnets": [subnet], "securityGroupIds": [group]},
)["computeEnvironmentArn"]
batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1,
                       computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}])
status = batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["status"]
if status != "VALID":
    sys.exit("job queue status " + status)
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchFailure(Exception):
    """Something the benchmark itself needs failed: it stops, keeping its files."""


def fail(msg):
    raise BenchFailure(msg)


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Time `flowc compile` against Metaflow's `create --only-json` on the same flows; "
        "print a table of medians and ratios (Metaflow / flowc)."
    )
    p.add_argument("--targets", default="argo,sfn", help="targets: argo, sfn [default: argo,sfn]")
    p.add_argument(
        "--flows",
        default="fixtures,examples,linear,wide,generated",
        help="flow groups: fixtures, examples, linear, wide, generated [default: all]",
    )
    p.add_argument("--linear", default="10,100,1000", help="sizes of the linear flows [default: 10,100,1000]")
    p.add_argument("--wide", default="100", help="arms of the wide flows [default: 100]")
    p.add_argument("--generated", default="10,100", help="sizes of the generated flows [default: 10,100]")
    p.add_argument("--only", help="a regular expression: only the flows whose name it matches")
    p.add_argument("--repeat", type=int, default=5, help="timed Metaflow runs per flow and target [default: 5]")
    p.add_argument(
        "--repeat-slow",
        type=int,
        default=2,
        help="timed Metaflow runs when its untimed first run took longer than --slow-seconds [default: 2]",
    )
    p.add_argument("--slow-seconds", type=float, default=30.0, help="see --repeat-slow [default: 30]")
    p.add_argument(
        "--flowc-repeat",
        type=int,
        default=20,
        help="timed flowc runs per flow and target (it takes milliseconds) [default: 20]",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is stopped [default: 900]")
    p.add_argument(
        "--flowc-arg",
        action="append",
        default=[],
        metavar="TARGET=ARG",
        help="an extra argument for `flowc compile --target TARGET`, repeatable (e.g. sfn=--job-queue=q)",
    )
    p.add_argument(
        "--metaflow-without-flowc",
        action="store_true",
        help="time Metaflow even where flowc cannot compile the flow or lacks the target (no ratio then)",
    )
    p.add_argument("--save", action="store_true", help="write the `compile` key of bench/compile/results.json")
    p.add_argument("--output", help="write that JSON file instead (implies --save)")
    p.add_argument("--no-build", action="store_true", help="use target/release/flowc as it is")
    p.add_argument(
        "--no-netns",
        action="store_true",
        help="do not enter a network namespace even when `unshare --net` works",
    )
    p.add_argument("--keep-temp", action="store_true", help="keep the temporary directory (flows, logs, outputs)")
    p.add_argument(
        "--markdown",
        nargs="?",
        const=RESULTS,
        metavar="RESULTS_JSON",
        help="measure nothing: print the saved results (default bench/compile/results.json) as Markdown tables",
    )
    args = p.parse_args(argv)

    def ints(option, text):
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            p.error("%s takes comma-separated integers" % option)
        if any(v < 2 for v in values):
            p.error("%s: flows have at least 2 steps" % option)
        return values

    args.linear = ints("--linear", args.linear)
    args.wide = ints("--wide", args.wide)
    args.generated = ints("--generated", args.generated)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown or not args.targets:
        p.error("--targets: choose from %s (unknown: %s)" % (", ".join(TARGETS), ", ".join(unknown)))
    args.flows = {g.strip() for g in args.flows.split(",") if g.strip()}
    unknown = sorted(args.flows - {"fixtures", "examples", "linear", "wide", "generated"})
    if unknown:
        p.error("--flows: unknown group(s) " + ", ".join(unknown))
    if min(args.repeat, args.repeat_slow, args.flowc_repeat) < 1 or args.timeout <= 0:
        p.error("--repeat, --repeat-slow and --flowc-repeat must be at least 1, --timeout positive")
    extra = {}
    for item in args.flowc_arg:
        target, sep, value = item.partition("=")
        if not sep or target not in TARGETS:
            p.error("--flowc-arg takes TARGET=ARG with TARGET one of %s" % ", ".join(TARGETS))
        extra.setdefault(target, []).append(value)
    args.flowc_extra = extra
    if args.only:
        try:
            args.only_re = re.compile(args.only)
        except re.error as e:
            p.error("--only: %s" % e)
    else:
        args.only_re = None
    return args


# ---------------------------------------------------------------------------------------
# Preparation, outside the namespace (it needs PyPI and cargo)


def build_flowc(no_build):
    if not no_build:
        log("building flowc (cargo build --release -p flowc)")
        if subprocess.call(["cargo", "build", "--release", "-q", "-p", "flowc"], cwd=REPO) != 0:
            fail("cargo build failed")
    flowc = os.path.join(REPO, "target", "release", "flowc")
    if not os.access(flowc, os.X_OK):
        fail("%s is missing: build it with `cargo build --release -p flowc`" % flowc)
    return flowc


def importable(python, module):
    try:
        return subprocess.call([python, "-c", "import " + module], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=300) == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def prepare_metaflow(tmp):
    """The virtualenv of `bench/runtime/compare.py` (`BENCH_VENV`), plus `kubernetes`:
    Metaflow's Argo target imports it while packaging. `python-dateutil` stays below 3
    because botocore requires that and kubernetes would otherwise pull 4.x."""
    try:
        python = runtime.prepare_venv(tmp)
    except runtime.BenchFailure as e:
        fail(str(e))
    if not importable(python, "kubernetes"):
        log("installing kubernetes into %s (Metaflow's Argo target needs it)" % python)
        cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "kubernetes",
               "python-dateutil<3"]
        if subprocess.call(cmd) != 0 or not importable(python, "kubernetes"):
            fail("could not install kubernetes next to Metaflow")
    return python


def prepare_moto(tmp):
    venv = os.environ.get("BENCH_MOTO_VENV") or os.path.join(tmp, "moto-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        log("creating a virtualenv for moto in %s" % venv)
        if subprocess.call([sys.executable, "-m", "venv", venv]) != 0:
            fail("could not create the virtualenv %s" % venv)
    if not importable(python, "moto.server"):
        log("installing moto[server]==%s into %s" % (MOTO_VERSION, venv))
        cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "moto[server]==" + MOTO_VERSION]
        if subprocess.call(cmd) != 0 or not importable(python, "moto.server"):
            fail("could not install moto[server] into %s" % venv)
    return python


def netns_works():
    unshare = shutil.which("unshare")
    return bool(unshare) and subprocess.call([unshare, "--net", "true"], stderr=subprocess.DEVNULL) == 0


# ---------------------------------------------------------------------------------------
# Inside the namespace


def loopback_up():
    """Brings `lo` up (a new network namespace starts with it down) with the same two
    ioctls `ip link set lo up` makes: read the flags, set IFF_UP."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), siocgifflags, request))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


def no_route_out():
    """True when no address beyond the loopback is routable: a connection to
    192.0.2.1 (TEST-NET-1, reserved for documentation) fails before sending anything."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(("192.0.2.1", 9))
        except OSError as e:
            return e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
    return False


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid):
    """User + system CPU of a running process, from /proc (None where unavailable)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Moto:
    """A moto server on 127.0.0.1, seeded for Metaflow."""

    def __init__(self, python, tmp, env):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(tmp, "moto.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        # No proxy for this check, whatever the caller's environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                fail("moto exited with %d (log: %s)" % (self.proc.returncode, self.log_path))
            try:
                with opener.open(self.url + "/moto-api/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                fail("moto did not answer on %s within 120 s (log: %s)" % (self.url, self.log_path))
            time.sleep(0.2)

    def seed(self, python, env):
        out = subprocess.run([python, "-c", MOTO_SEED, BUCKET, JOB_QUEUE], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            fail("could not seed moto:\n" + out.stderr[-3000:])

    def cpu_seconds(self):
        return process_cpu_seconds(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def count_steps(text):
    """The step methods in a file (all of its flows', for a file with several):
    `@step`, `@step(start=True)`, `@metaflow.step`, `@mf.step` lines."""
    return len(re.findall(r"^\s*@(?:\w+\.)*step\s*(?:\(.*\))?\s*(?:#.*)?$", text, re.M))


class Case:
    def __init__(self, name, group, path, flowc_args, data_files=()):
        self.name = name
        self.group = group
        self.path = path  # the flow file, in a directory of its own
        self.flowc_args = flowc_args
        self.data_files = data_files
        with open(path) as f:
            self.text = f.read()
        self.steps = count_steps(self.text)
        self.bytes = len(self.text.encode())


def collect_cases(args, flow_root):
    """The flow set, each flow copied into a directory of its own (both tools package
    the flow's directory; a shared one would make every package hold every flow), with
    the data files of its source directory beside it."""
    cases = []

    def add(name, group, text, file_name, flowc_args=(), data_from=None):
        if args.only_re and not args.only_re.search(name):
            return
        d = os.path.join(flow_root, re.sub(r"[^A-Za-z0-9_.-]", "_", name))
        os.makedirs(d)
        path = os.path.join(d, file_name)
        with open(path, "w") as f:
            f.write(text)
        data = []
        if data_from:
            for other in sorted(os.listdir(data_from)):
                src = os.path.join(data_from, other)
                if os.path.isfile(src) and not other.endswith(".py"):
                    shutil.copy(src, d)
                    data.append(other)
        cases.append(Case(name, group, path, list(flowc_args), data))

    def add_files(group, pattern):
        for src in sorted(glob.glob(os.path.join(REPO, pattern))):
            with open(src) as f:
                text = f.read()
            flowc_args = []
            first = text.split("\n", 1)[0]
            # A fixture's `# flowc: --flow NAME` header (tests/fixtures.rs reads the same).
            if first.startswith("# flowc:"):
                flowc_args = first[len("# flowc:"):].split()
            name = "%s/%s" % (group, os.path.basename(src)[:-3])
            add(name, group, text, os.path.basename(src), flowc_args, os.path.dirname(src))

    if "fixtures" in args.flows:
        add_files("fixtures", "fixtures/flows/valid/*.py")
    if "examples" in args.flows:
        add_files("examples", "examples/*.py")
    if "linear" in args.flows:
        for n in args.linear:
            add("linear-%d" % n, "linear", flowgen.linear(n), "linear_%d.py" % n)
    if "wide" in args.flows:
        for n in args.wide:
            add("wide-%d" % n, "wide", flowgen.wide(n), "wide_%d.py" % n)
    if "generated" in args.flows:
        for n in args.generated:
            add("generated-%d" % n, "generated", flowgen.generated(n, 42), "generated_%d.py" % n)
    return cases


def find_state_machine(value):
    """True when a JSON value is, or holds, an Amazon States Language machine."""
    if isinstance(value, dict):
        if isinstance(value.get("States"), dict) and isinstance(value.get("StartAt"), str):
            return True
        return any(find_state_machine(v) for v in value.values())
    if isinstance(value, list):
        return any(find_state_machine(v) for v in value)
    return False


def check_metaflow_output(target, stdout_path):
    """None when Metaflow's stdout is the document it should be, else why not."""
    try:
        with open(stdout_path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        return "stdout is not JSON (%s)" % e
    if target == "argo":
        if not (isinstance(doc, dict) and doc.get("kind") == "WorkflowTemplate"):
            return "stdout is JSON but not a WorkflowTemplate"
    elif not find_state_machine(doc):
        return "stdout is JSON but not a state machine"
    return None


def check_flowc_output(target, out_dir):
    """None when flowc's output directory holds the target's main document."""
    files = sorted(glob.glob(os.path.join(out_dir, "**", "*"), recursive=True))
    if target == "argo":
        for path in files:
            if path.endswith(".workflow-template.yaml"):
                with open(path, encoding="utf-8", errors="replace") as f:
                    if re.search(r"^kind: WorkflowTemplate$", f.read(), re.M):
                        return None
        return "no WorkflowTemplate in %s" % out_dir
    for path in files:
        if path.endswith(".json"):
            try:
                with open(path, encoding="utf-8") as f:
                    if find_state_machine(json.load(f)):
                        return None
            except (OSError, ValueError):
                continue
    return "no state machine (a .json file with StartAt and States) in %s" % out_dir


def error_summary(stderr_path, limit=240):
    """The last few meaningful lines of a failed run's stderr, on one line."""
    try:
        with open(stderr_path, "rb") as f:
            text = f.read()[-20000:].decode("utf-8", "replace")
    except OSError:
        return "(no stderr)"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # flowc's diagnostics: the message (a `×` line and its `│` continuations) and the help.
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("×"):
            message = [lines[i].lstrip("× ")]
            for follow in lines[i + 1:]:
                if not follow.startswith("│"):
                    break
                message.append(follow.lstrip("│ "))
            helps = [ln for ln in lines[i:] if ln.startswith("help:")]
            summary = " ".join(message) + (" / " + helps[-1] if helps else "")
            return summary if len(summary) <= limit else summary[:limit] + "..."
    # Metaflow ends with a heading line ("AWS Step Functions error:") and the message;
    # a traceback ends with the frame and the exception.
    summary = " / ".join(lines[-2:]) if lines else "(empty stderr)"
    return summary if len(summary) <= limit else "..." + summary[-limit:]


class Run:
    __slots__ = ("ok", "seconds", "cpu", "error", "timed_out")

    def __init__(self, ok, seconds, cpu, error=None, timed_out=False):
        self.ok = ok
        self.seconds = seconds
        self.cpu = cpu
        self.error = error
        self.timed_out = timed_out


class Bench:
    def __init__(self, args, tmp, flowc, mf_python, moto):
        self.args = args
        self.tmp = tmp
        self.flowc = flowc
        self.mf_python = mf_python
        self.moto = moto
        self.counter = 0
        self.mf_home = os.path.join(tmp, "metaflow-home")
        os.makedirs(self.mf_home, exist_ok=True)
        self.env = run_env(tmp, moto.url)
        self.env["METAFLOW_HOME"] = self.mf_home

    def _fresh(self, label):
        self.counter += 1
        d = os.path.join(self.tmp, "runs", "%05d-%s" % (self.counter, re.sub(r"[^A-Za-z0-9_.-]", "_", label)))
        os.makedirs(d)
        return d

    def _execute(self, cmd, cwd, env, run_dir):
        """Runs `cmd`; returns (exit status or None on timeout, wall s, CPU s, stdout, stderr paths)."""
        stdout_path = os.path.join(run_dir, "stdout")
        stderr_path = os.path.join(run_dir, "stderr")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            # A blocking wait returns as soon as the child exits; `wait(timeout=)` polls
            # with growing sleeps and would round a 9 ms run up to 16 ms. The timeout is
            # a timer that kills the process group instead.
            timed_out = threading.Event()

            def kill():
                timed_out.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(self.args.timeout, kill)
            timer.start()
            try:
                rc = proc.wait()
            finally:
                timer.cancel()
            seconds = time.perf_counter() - start
            if timed_out.is_set():
                rc = None
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return rc, seconds, cpu, stdout_path, stderr_path

    def run_flowc(self, case, target):
        run_dir = self._fresh("flowc-%s-%s" % (target, case.name))
        out_dir = os.path.join(run_dir, "out")
        cmd = ([self.flowc, "compile", case.path, "--target", TARGETS[target][0], "-o", out_dir]
               + case.flowc_args + self.args.flowc_extra.get(target, []))
        rc, seconds, cpu, _, stderr_path = self._execute(cmd, os.path.dirname(case.path), self.env, run_dir)
        if rc is None:
            return Run(False, seconds, cpu, "timed out after %g s" % self.args.timeout, True), run_dir
        if rc != 0:
            return Run(False, seconds, cpu, "exit %d: %s" % (rc, error_summary(stderr_path))), run_dir
        problem = check_flowc_output(target, out_dir)
        if problem:
            return Run(False, seconds, cpu, problem), run_dir
        return Run(True, seconds, cpu), run_dir

    def run_metaflow(self, case, target):
        run_dir = self._fresh("metaflow-%s-%s" % (target, case.name))
        env = dict(self.env)
        # A fresh S3 prefix per run: the code package is uploaded every time, as flowc
        # writes its package every time (Metaflow skips an upload whose key exists).
        env["METAFLOW_DATASTORE_SYSROOT_S3"] = "s3://%s/run-%05d/metaflow" % (BUCKET, self.counter)
        cmd = [self.mf_python, case.path, "--no-pylint", "--datastore=s3", TARGETS[target][1], "create",
               "--only-json"]
        rc, seconds, cpu, stdout_path, stderr_path = self._execute(cmd, os.path.dirname(case.path), env, run_dir)
        if rc is None:
            return Run(False, seconds, cpu, "timed out after %g s" % self.args.timeout, True), run_dir
        if rc != 0:
            return Run(False, seconds, cpu, "exit %d: %s" % (rc, error_summary(stderr_path))), run_dir
        problem = check_metaflow_output(target, stdout_path)
        if problem:
            return Run(False, seconds, cpu, problem), run_dir
        return Run(True, seconds, cpu), run_dir

    def done_with(self, run_dir):
        if not self.args.keep_temp:
            shutil.rmtree(run_dir, ignore_errors=True)

    def measure(self, case, target, flowc_unavailable):
        row = {"flow": case.name, "group": case.group, "target": target, "steps": case.steps,
               "bytes": case.bytes}
        # Untimed first runs: they check that each tool compiles the flow at all, and
        # warm the page cache (and Metaflow's bytecode cache) for the timed runs.
        flowc_ok = False
        if target in flowc_unavailable:
            row["status"] = "flowc-target-missing"
            row["error"] = flowc_unavailable[target]
        else:
            probe, run_dir = self.run_flowc(case, target)
            self.done_with(run_dir)
            if probe.ok:
                flowc_ok = True
            else:
                row["status"] = "flowc-failed"
                row["error"] = probe.error
                if "invalid value" in (probe.error or "") and "--target" in (probe.error or ""):
                    flowc_unavailable[target] = "flowc has no `--target %s` yet" % target
                    row["status"] = "flowc-target-missing"
                    row["error"] = flowc_unavailable[target]
        if not flowc_ok and not self.args.metaflow_without_flowc:
            return row
        probe, run_dir = self.run_metaflow(case, target)
        self.done_with(run_dir)
        if not probe.ok:
            status = "metaflow-timeout" if probe.timed_out else "metaflow-failed"
            if flowc_ok:
                row["status"] = status
                row["error"] = probe.error
            else:
                row["metaflow_status"] = status
                row["metaflow_error"] = probe.error
            return row
        row["metaflow_first_run_seconds"] = round(probe.seconds, 3)
        mf_runs = self.args.repeat if probe.seconds < self.args.slow_seconds else self.args.repeat_slow
        flowc_runs = max(self.args.flowc_repeat, mf_runs) if flowc_ok else 0
        times = {"flowc": [], "metaflow": []}
        cpu = {"flowc": [], "metaflow": []}
        failures = {"flowc": [], "metaflow": []}
        loads = []
        moto_cpu = 0.0
        moto_measured = True
        done_flowc = 0
        for i in range(mf_runs):
            # flowc's runs spread evenly over Metaflow's, and the order alternates, so a
            # change in the machine's load over time does not favour one tool.
            share = (flowc_runs * (i + 1)) // mf_runs - done_flowc
            done_flowc += share
            order = ("flowc", "metaflow") if i % 2 == 0 else ("metaflow", "flowc")
            for tool in order:
                load = loadavg()
                loads.append(load[0] if load else None)
                for _ in range(share if tool == "flowc" else 1):
                    if tool == "flowc":
                        result, run_dir = self.run_flowc(case, target)
                    else:
                        before = self.moto.cpu_seconds()
                        result, run_dir = self.run_metaflow(case, target)
                        after = self.moto.cpu_seconds()
                        if before is None or after is None:
                            moto_measured = False
                        else:
                            moto_cpu += after - before
                    self.done_with(run_dir)
                    if result.ok:
                        times[tool].append(round(result.seconds, 5))
                        cpu[tool].append(round(result.cpu, 5))
                    else:
                        failures[tool].append(result.error)
        row["load_1min"] = [x for x in loads if x is not None]
        row["flowc_failures"] = len(failures["flowc"])
        row["metaflow_failures"] = len(failures["metaflow"])
        if failures["flowc"] or failures["metaflow"]:
            row["failure_errors"] = failures
        for tool, digits in (("flowc", 5), ("metaflow", 4)):
            if times[tool]:
                row[tool + "_seconds"] = times[tool]
                row[tool + "_cpu_seconds"] = cpu[tool]
                row[tool + "_median"] = round(statistics.median(times[tool]), digits)
                row[tool + "_best"] = min(times[tool])
                row[tool + "_cpu_median"] = round(statistics.median(cpu[tool]), digits)
        if times["metaflow"] and moto_measured:
            # What moto spent serving Metaflow, per timed run: work AWS would do remotely.
            row["moto_cpu_seconds_per_run"] = round(moto_cpu / len(times["metaflow"]), 3)
        if not flowc_ok:
            return row
        if not times["flowc"] or not times["metaflow"]:
            row["status"] = "failed-when-timed"
            return row
        row["status"] = "timed"
        row["ratio"] = round(row["metaflow_median"] / row["flowc_median"], 1)
        row["ratio_best"] = round(row["metaflow_best"] / row["flowc_best"], 1)
        row["cpu_ratio"] = round(row["metaflow_cpu_median"] / max(row["flowc_cpu_median"], 1e-6), 1)
        return row


def run_env(tmp, moto_url):
    """The environment of every timed run, both tools: no METAFLOW_* or AWS_* from the
    caller's shell, fake credentials, every AWS endpoint on the loopback moto, no AWS
    config files or instance metadata, and a dead proxy for anything that is not the
    loopback (a second fence next to the network namespace)."""
    drop = ("METAFLOW_", "AWS_", "FLOWC_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    role = "arn:aws:iam::%s:role/%%s" % ACCOUNT
    env.update({
        "AWS_ACCESS_KEY_ID": "AKIABENCHFAKE0000000",
        "AWS_SECRET_ACCESS_KEY": "bench-fake-secret-key",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_CONFIG_FILE": os.path.join(tmp, "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp, "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "USERNAME": "bench",
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": "s3://%s/metaflow" % BUCKET,
        "METAFLOW_S3_ENDPOINT_URL": moto_url,
        "METAFLOW_KUBERNETES_NAMESPACE": "bench",
        "METAFLOW_SFN_IAM_ROLE": role % "bench-sfn",
        "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": role % "bench-events",
        "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": role % "bench-batch-task",
        "METAFLOW_ECS_FARGATE_EXECUTION_ROLE": role % "bench-batch-execution",
        "METAFLOW_BATCH_JOB_QUEUE": JOB_QUEUE,
        "METAFLOW_SFN_DYNAMO_DB_TABLE": "bench-table",
        # What Metaflow's Argo target needs for @trigger / @trigger_on_finish: names
        # written into the Sensor, not contacted at compile time.
        "METAFLOW_ARGO_EVENTS_EVENT": "metaflow-event",
        "METAFLOW_ARGO_EVENTS_EVENT_SOURCE": "bench-events",
        "METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT": "bench-events",
        "FLOWC_ARGO_DATASTORE_ROOT": "s3://%s/flowc" % BUCKET,
        # flowc's Step Functions settings, the same values Metaflow is given above; the
        # platform matches the Fargate queue Metaflow finds in moto.
        "FLOWC_SFN_DATASTORE_ROOT": "s3://%s/flowc" % BUCKET,
        "FLOWC_SFN_IMAGE": "python:3.12-slim",
        "FLOWC_SFN_JOB_QUEUE": JOB_QUEUE,
        "FLOWC_SFN_JOB_ROLE": role % "bench-batch-task",
        "FLOWC_SFN_EXECUTION_ROLE": role % "bench-batch-execution",
        "FLOWC_SFN_SCHEDULE_ROLE": role % "bench-events",
        "FLOWC_SFN_REGION": REGION,
        "FLOWC_SFN_ACCOUNT": ACCOUNT,
        "FLOWC_SFN_PLATFORM": "fargate",
        "FLOWC_CACHE_DIR": os.path.join(tmp, "flowc-cache"),
    })
    return env


def geomean(values):
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(rows, targets):
    summary = {}
    for target in targets:
        mine = [r for r in rows if r["target"] == target]
        timed = [r for r in mine if r["status"] == "timed"]
        g = geomean([r["metaflow_median"] / r["flowc_median"] for r in timed])
        summary[target] = {
            "flows": len(mine),
            "timed": len(timed),
            "metaflow_cannot_compile": sorted(r["flow"] for r in mine
                                              if r["status"].startswith("metaflow-") or r.get("metaflow_status")),
            "flowc_cannot_compile": sorted(r["flow"] for r in mine if r["status"] == "flowc-failed"),
            "flowc_target_missing": any(r["status"] == "flowc-target-missing" for r in mine),
            "failed_when_timed": sorted(r["flow"] for r in mine if r["status"] == "failed-when-timed"),
            "timed_run_failures": sum(r.get("flowc_failures", 0) + r.get("metaflow_failures", 0) for r in timed),
            "geomean_ratio": round(g, 1) if g else None,
            "min_ratio": min((r["ratio"] for r in timed), default=None),
            "max_ratio": max((r["ratio"] for r in timed), default=None),
            "target_ratio": TARGET_RATIO,
            "target_met": (g is not None and g >= TARGET_RATIO),
        }
    return summary


STATUS_NOTES = {
    "flowc-target-missing": "flowc has no such target yet",
    "flowc-failed": "flowc cannot compile it",
    "metaflow-failed": "Metaflow cannot compile it",
    "metaflow-timeout": "Metaflow timed out",
    "failed-when-timed": "every timed run of a tool failed",
}


def print_table(rows):
    head = ("flow", "steps", "target", "flowc ms", "(best)", "Metaflow s", "(best)", "ratio", "CPU ratio", "runs",
            "note")
    lines = [head]
    for r in rows:
        flowc_cells = ("-", "")
        if "flowc_median" in r:
            flowc_cells = ("%.1f" % (1000 * r["flowc_median"]), "%.1f" % (1000 * r["flowc_best"]))
        mf_cells = ("-", "")
        if "metaflow_median" in r:
            mf_cells = ("%.2f" % r["metaflow_median"], "%.2f" % r["metaflow_best"])
        ratios = ("-", "-")
        if r["status"] == "timed":
            ratios = ("%.0fx" % r["ratio"], "%.0fx" % r["cpu_ratio"])
        runs = "-"
        if "metaflow_seconds" in r:
            runs = "%d/%d" % (len(r.get("flowc_seconds", ())), len(r["metaflow_seconds"]))
        notes = []
        if r["status"] != "timed":
            label = STATUS_NOTES.get(r["status"], r["status"])
            err = r.get("error") or ""
            if r["status"] == "flowc-target-missing":
                notes.append(err or label)
            else:
                notes.append("%s: %s" % (label, err[:200]) if err else label)
        if r.get("metaflow_status"):
            notes.append("%s: %s" % (STATUS_NOTES[r["metaflow_status"]], (r.get("metaflow_error") or "")[:200]))
        if r.get("flowc_failures") or r.get("metaflow_failures"):
            notes.append("%d flowc / %d Metaflow timed runs failed" % (r["flowc_failures"], r["metaflow_failures"]))
        lines.append((r["flow"], str(r["steps"]), r["target"]) + flowc_cells + mf_cells + ratios
                     + (runs, "; ".join(notes)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    for n, line in enumerate(lines):
        cells = [c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        print("  ".join(cells + [line[-1]]).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths) + "  ----")


def markdown(report):
    """The saved `compile` report as Markdown: one table per target, then what was not
    timed, for bench/README.md."""
    out = []
    for target, s in sorted(report["summary"].items()):
        rows = [r for r in report["flows"] if r["target"] == target]
        timed = [r for r in rows if r["status"] == "timed"]
        out.append("**%s** (%s)" % (target, "geometric mean %.0fx over %d flows, min %.0fx, max %.0fx"
                                    % (s["geomean_ratio"], s["timed"], s["min_ratio"], s["max_ratio"])
                                    if timed else "nothing timed"))
        out.append("")
        if timed:
            out.append("| flow | steps | flowc ms | Metaflow s | ratio | CPU: flowc ms | CPU: Metaflow s | CPU ratio |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            for r in timed:
                out.append("| `%s` | %d | %.1f | %.2f | %.0fx | %.1f | %.2f | %.0fx |" % (
                    r["flow"], r["steps"], 1000 * r["flowc_median"], r["metaflow_median"], r["ratio"],
                    1000 * r["flowc_cpu_median"], r["metaflow_cpu_median"], r["cpu_ratio"]))
            out.append("")
        skipped = [r for r in rows if r["status"] != "timed"]
        if skipped:
            out.append("Not timed:")
            out.append("")
            for r in skipped:
                who = STATUS_NOTES.get(r["status"], r["status"])
                out.append("- `%s`: %s (%s)" % (r["flow"], who, (r.get("error") or "").strip()))
            out.append("")
    return "\n".join(out)


def inner(args, state):
    """The measurement itself; inside the network namespace when there is one."""
    # A plain `kill` still stops moto (the `finally` below runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    tmp = state["tmp"]
    isolated = state["netns"]
    if isolated:
        loopback_up()
        if not no_route_out():
            fail("the network namespace has a route beyond the loopback")
    flow_root = os.path.join(tmp, "flows")
    os.makedirs(flow_root, exist_ok=True)
    cases = collect_cases(args, flow_root)
    if not cases:
        fail("no flow matches")
    # moto gets the same fenced environment, minus the endpoints that point at itself.
    moto_env = run_env(tmp, "http://127.0.0.1:0")
    for key in ("AWS_ENDPOINT_URL", "METAFLOW_S3_ENDPOINT_URL"):
        moto_env.pop(key)
    moto = Moto(state["moto_python"], tmp, moto_env)
    try:
        seed_env = run_env(tmp, moto.url)
        moto.seed(state["moto_python"], seed_env)
        bench = Bench(args, tmp, state["flowc"], state["mf_python"], moto)
        started = datetime.datetime.now(datetime.timezone.utc)
        load_start = loadavg()
        log("%d flows x %d target(s); network namespace: %s; moto on %s; load %s"
            % (len(cases), len(args.targets), "yes" if isolated else "NO", moto.url, load_start))
        rows = []
        unavailable = {}
        for case in cases:
            for target in args.targets:
                t0 = time.perf_counter()
                row = bench.measure(case, target, unavailable)
                rows.append(row)
                if row["status"] == "timed":
                    log("  %-40s %-4s flowc %7.1f ms  Metaflow %7.2f s  %6.0fx  (%.0f s, load %s)"
                        % (case.name, target, 1000 * row["flowc_median"], row["metaflow_median"], row["ratio"],
                           time.perf_counter() - t0, loadavg()))
                else:
                    extra = ""
                    if "metaflow_median" in row:
                        extra = " (Metaflow alone: %.2f s)" % row["metaflow_median"]
                    elif row.get("metaflow_status"):
                        extra = " (Metaflow: %s)" % row["metaflow_status"]
                    log("  %-40s %-4s %s: %s%s" % (case.name, target, row["status"], (row.get("error") or "")[:160],
                                                   extra))
        load_end = loadavg()
    finally:
        moto.stop()
    summary = summarize(rows, args.targets)
    report = {
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), REPO)] + sys.argv[1:]),
        "network_isolated": isolated,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "machine": runtime.describe_machine(state["mf_python"]),
        "moto": MOTO_VERSION,
        "settings": {
            "repeat": args.repeat,
            "repeat_slow": args.repeat_slow,
            "slow_seconds": args.slow_seconds,
            "flowc_repeat": args.flowc_repeat,
            "timeout": args.timeout,
            "flowc_extra_args": args.flowc_extra,
        },
        "summary": summary,
        "flows": rows,
    }
    print("flowc vs Metaflow %s: compile time, wall clock of the whole process, median of the runs"
          % METAFLOW_VERSION)
    print("ratio = Metaflow median / flowc median; CPU ratio = the same for user+system CPU of the process tree")
    print()
    print_table(rows)
    print()
    for target, s in summary.items():
        if s["timed"]:
            print("%-4s geometric mean %.1fx over %d flows (min %.0fx, max %.0fx); aim %gx: %s"
                  % (target, s["geomean_ratio"], s["timed"], s["min_ratio"], s["max_ratio"], TARGET_RATIO,
                     "met" if s["target_met"] else "MISSED"))
        else:
            print("%-4s nothing timed" % target)
        if s["metaflow_cannot_compile"]:
            print("     Metaflow cannot compile (reported, not timed): " + ", ".join(s["metaflow_cannot_compile"]))
        if s["flowc_cannot_compile"]:
            print("     flowc cannot compile (reported, not timed): " + ", ".join(s["flowc_cannot_compile"]))
        if s["flowc_target_missing"]:
            print("     flowc has no `--target %s` yet" % target)
        if s["timed_run_failures"]:
            print("     %d timed runs failed (left out of the medians)" % s["timed_run_failures"])
    print("load average (1, 5, 15 min): %s at start, %s at end (2 cores shared with other work inflate both tools)"
          % (load_start, load_end))
    print("network: %s" % ("a namespace with only the loopback; moto answered every AWS call" if isolated else
                           "NOT isolated (no `unshare --net`): loopback moto and a dead proxy only"))
    if args.save or args.output:
        out = args.output or RESULTS
        existing = {}
        if os.path.exists(out):
            with open(out) as f:
                existing = json.load(f)
            if not isinstance(existing, dict):
                fail("%s does not hold a JSON object" % out)
        existing["compile"] = report
        with open(out, "w") as f:
            json.dump(existing, f, indent=2, sort_keys=True)
            f.write("\n")
        log("wrote the `compile` key of " + out)


def main():
    args = parse_args()
    if args.markdown:
        try:
            with open(args.markdown) as f:
                report = json.load(f)["compile"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            log("error: no `compile` results in %s (%s)" % (args.markdown, e))
            sys.exit(1)
        print(markdown(report))
        return
    state_text = os.environ.get(INNER_ENV)
    if state_text:
        # The re-executed copy, inside the namespace: the outer one prepared everything.
        try:
            inner(args, json.loads(state_text))
        except BenchFailure as e:
            log("error: %s" % e)
            sys.exit(1)
        return
    tmp = tempfile.mkdtemp(prefix="flowc-compile-bench-")
    keep = args.keep_temp
    try:
        flowc = build_flowc(args.no_build)
        state = {
            "tmp": tmp,
            "flowc": flowc,
            "mf_python": prepare_metaflow(tmp),
            "moto_python": prepare_moto(tmp),
            "netns": (not args.no_netns) and netns_works(),
        }
        if state["netns"]:
            env = dict(os.environ)
            env[INNER_ENV] = json.dumps(state)
            rc = subprocess.call(["unshare", "--net", "--", sys.executable, os.path.abspath(__file__)]
                                 + sys.argv[1:], env=env)
            if rc != 0:
                keep = True
                sys.exit(rc)
        else:
            log("warning: `unshare --net` does not work here (it needs root); the runs are not in a network "
                "namespace, only pointed at the loopback moto with a dead proxy for everything else")
            inner(args, state)
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
