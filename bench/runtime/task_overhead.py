#!/usr/bin/env python3
"""Where a trivial flowc task's time goes: one `body` task of `foreach_trivial.py`, run
on its own many times, next to what it is made of.

    python3 bench/runtime/task_overhead.py [--repeat 20] [--mf-python /tmp/mfvenv/bin/python]

Rows (min and median wall seconds over `--repeat` runs, each a fresh process):

- `python -c pass`: starting the interpreter, the floor of any spawned task;
- `python: harness imports`: the interpreter plus the modules the harness imports;
- `flowc-shim task (disk)`: a real task, datastore on the disk (as `flowc run` uses it);
- `flowc-shim task (tmpfs)`: the same with the datastore on /dev/shm, where `fsync`
  costs nothing: the difference is the datastore's durability cost;
- `flowc-shim task --zygote`: forked from a warm `flowc-shim zygote --preload-flow`
  instead of starting Python (what the scheduler will do);
- `metaflow: import metaflow` (with `--mf-python`): what every Metaflow task pays
  before its step runs, since each task is a new `python flow.py step ...` process.

It then runs one task under `strace -f -c` (when strace exists) and prints the
`fsync`, `execve` and process-creation counts. Only the standard library is used.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(REPO, "target", "release")
FLOW = "ForeachTrivialFlow"


def timed(cmd, env, cwd):
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit("error: %s exited with %d:\n%s" % (" ".join(cmd), out.returncode, out.stderr.decode()[-3000:]))
    return seconds


def series(name, make_cmd, repeat, env, cwd, rows):
    times = [timed(make_cmd(i), env, cwd) for i in range(repeat)]
    rows.append((name, min(times), statistics.median(times)))
    print("  %-34s min %6.3f s  median %6.3f s" % (name, min(times), statistics.median(times)), file=sys.stderr)


def prepare_store(root, flow_file, env, cwd):
    """A run whose `start` task exists, so `body` tasks can be started against it."""
    cmd = [os.path.join(BIN, "flowc"), "run", flow_file, "--max-workers", "1", "--datastore-root", root,
           "--width", "2"]
    if subprocess.run(cmd, env=env, cwd=cwd, capture_output=True).returncode != 0:
        sys.exit("error: the set-up run `%s` failed" % " ".join(cmd))


def task_cmd(flow_file, root, task_id, extra=()):
    return [os.path.join(BIN, "flowc-shim"), "task", "--flow-file", flow_file, "--flow", FLOW, "--step", "body",
            "--run-id", "1", "--task-id", task_id, "--input-paths", "1/start/1", "--split-index", "0",
            "--datastore-root", root] + list(extra)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--mf-python", help="a Python with metaflow installed, to time `import metaflow`")
    p.add_argument("--disk-dir", default=tempfile.gettempdir(), help="where the on-disk datastore goes")
    args = p.parse_args()
    python = os.path.realpath(sys.executable)
    tmp = tempfile.mkdtemp(prefix="flowc-task-", dir=args.disk_dir)
    shm = tempfile.mkdtemp(prefix="flowc-task-", dir="/dev/shm") if os.path.isdir("/dev/shm") else None
    zygote = None
    try:
        flow_dir = os.path.join(tmp, "flow")
        os.makedirs(flow_dir)
        flow_file = os.path.join(flow_dir, "foreach_trivial.py")
        shutil.copy(os.path.join(HERE, "foreach_trivial.py"), flow_file)
        env = {k: v for k, v in os.environ.items() if k not in ("FLOWC_DATASTORE_ROOT",)}
        env.update({"FLOWC_PYTHON": python, "FLOWC_CACHE_DIR": os.path.join(tmp, "cache")})
        disk_root = os.path.join(tmp, "store")
        prepare_store(disk_root, flow_file, env, tmp)
        rows = []
        n = args.repeat
        print("one trivial task, %d runs each (python %s)" % (n, python), file=sys.stderr)
        series("python -c pass", lambda i: [python, "-c", "pass"], n, env, tmp, rows)
        series("python: harness imports", lambda i: [python, "-c", "import json, pickle, socket, struct, threading"],
               n, env, tmp, rows)
        series("flowc-shim task (disk)", lambda i: task_cmd(flow_file, disk_root, "d%d" % i), n, env, tmp, rows)
        if shm:
            shm_root = os.path.join(shm, "store")
            prepare_store(shm_root, flow_file, env, tmp)
            series("flowc-shim task (tmpfs)", lambda i: task_cmd(flow_file, shm_root, "s%d" % i), n, env, tmp, rows)
        sock = os.path.join(tmp, "zygote.sock")
        zygote = subprocess.Popen([os.path.join(BIN, "flowc-shim"), "zygote", "--socket", sock, "--python", python,
                                   "--flow-file", flow_file, "--preload-flow", "--exit-with-stdin"],
                                  env=env, cwd=tmp, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and time.monotonic() < deadline and zygote.poll() is None:
            time.sleep(0.05)
        if os.path.exists(sock):
            series("flowc-shim task --zygote (disk)",
                   lambda i: task_cmd(flow_file, disk_root, "z%d" % i, ["--zygote", sock]), n, env, tmp, rows)
        else:
            print("  (the zygote did not start; its row is left out)", file=sys.stderr)
        if args.mf_python:
            series("metaflow: import metaflow", lambda i: [args.mf_python, "-c", "import metaflow"], n, env, tmp, rows)
        strace = shutil.which("strace")
        if strace:
            out_file = os.path.join(tmp, "strace.txt")
            cmd = [strace, "-f", "-c", "-o", out_file, "-e",
                   "trace=fsync,fdatasync,execve,clone,clone3,fork,vfork,rename,renameat,renameat2"]
            subprocess.run(cmd + task_cmd(flow_file, disk_root, "strace"), env=env, cwd=tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            print("strace -f -c of one `flowc-shim task` (disk):", file=sys.stderr)
            with open(out_file) as f:
                sys.stderr.write(f.read())
        print("| what | min s | median s |")
        print("|---|---:|---:|")
        for name, lo, med in rows:
            print("| %s | %.3f | %.3f |" % (name, lo, med))
    finally:
        if zygote is not None:
            zygote.stdin.close()
            try:
                zygote.wait(timeout=10)
            except subprocess.TimeoutExpired:
                zygote.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if shm:
            shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
