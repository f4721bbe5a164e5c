"""Shared fixtures of the Python tests of the client and Runner APIs.

Nothing is built here: the tests drive the `flowc` binary named by `FLOWC_BIN`
(default `target/debug/flowc` of this repository, with `flowc-shim` beside it), and
import the compatibility package from `runtime-shim/src/python`, the files embedded in
the binaries.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "runtime-shim" / "src" / "python"
FLOWS = Path(__file__).resolve().parent / "flows"

# Keep the package directory (embedded in the binaries) free of __pycache__.
sys.dont_write_bytecode = True
sys.path.insert(0, str(PACKAGE_DIR))
os.environ.setdefault("FLOWC_BIN", str(REPO / "target" / "debug" / "flowc"))
# Tasks run with this interpreter (it has pytest's environment, zstandard included).
os.environ.setdefault("FLOWC_PYTHON", sys.executable)

import metaflow.client.core as client_core  # noqa: E402
from metaflow.client import datastore as client_datastore  # noqa: E402


def flowc_bin():
    path = os.environ["FLOWC_BIN"]
    if not os.path.isfile(path):
        pytest.fail(
            "the flowc binary %s does not exist: build it with `cargo build -p flowc -p flowc-shim` "
            "or set FLOWC_BIN" % path
        )
    return path


def flowc(*args, cwd=None, env=None, check=True):
    """Runs `flowc ARGS`; returns the CompletedProcess (text output)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    done = subprocess.run(
        [flowc_bin(), *map(str, args)],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            "flowc %s exited with %d\nstdout:\n%s\nstderr:\n%s"
            % (" ".join(map(str, args)), done.returncode, done.stdout, done.stderr)
        )
    return done


def run_flow(flow, root, *args, env=None, check=True, command="run"):
    """`flowc run FLOW --datastore-root ROOT ARGS`; returns (run id, CompletedProcess)."""
    id_file = Path(root).parent / ("run-id-%d" % len(list(Path(root).parent.glob("run-id-*"))))
    done = flowc(command, FLOWS / flow, *args, "--datastore-root", root, "--run-id-file", id_file,
                 env=env, check=check)
    run_id = id_file.read_text().strip() if id_file.exists() else None
    return run_id, done


@pytest.fixture(autouse=True)
def fresh_client_state():
    """Each test starts with the default namespace and datastore, and leaves them so."""
    client_core._current_namespace = False
    client_datastore.set_datastore_root(None)
    yield
    client_core._current_namespace = False
    client_datastore.set_datastore_root(None)


def write_run(root, flow, run_id, status="succeeded", created_ms=1_700_000_000_000, finished_ms=None,
              user=None, tags=None, extra=None):
    """Writes a `run.json` (and the layout marker) directly, as the runtime would."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / ".flowc-format"
    if not marker.exists():
        marker.write_text('{"format":"flowc-datastore","layout_version":1}')
    run_dir = root / flow / "runs" / str(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "flow": flow,
        "run_id": str(run_id),
        "status": status,
        "created_at_unix_ms": created_ms,
        "parameters": {},
        "source_sha256": "0" * 64,
        "flow_ir": {"ir_version": 1, "name": flow, "end_step": "end"},
    }
    if finished_ms is not None:
        doc["finished_at_unix_ms"] = finished_ms
    if user is not None:
        doc["user"] = user
    if tags is not None:
        doc["tags"] = list(tags)
    doc.update(extra or {})
    (run_dir / "run.json").write_text(json.dumps(doc, indent=2) + "\n")
    return run_dir
