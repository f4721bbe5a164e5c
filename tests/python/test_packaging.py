"""`runtime-shim/src/python/pyproject.toml` builds a wheel holding the `metaflow`
compatibility package and `flowc`, and the installed copy works from anywhere."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import PACKAGE_DIR, write_run


def _can_build_wheels():
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    if (major, minor) >= (70, 1):
        return True  # bdist_wheel is part of setuptools from 70.1 on
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _can_build_wheels(), reason="needs setuptools>=70.1, or setuptools and wheel")
def test_wheel_installs_metaflow_and_flowc(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(PACKAGE_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("flowc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("metaflow/__init__.py", "metaflow/client/core.py", "metaflow/client/datastore.py",
                     "metaflow/runner/metaflow_runner.py", "metaflow/runner/nbrun.py",
                     "flowc/__init__.py", "flowc/client.py", "flowc/runner.py", "metaflow/flowspec.py"):
        assert expected in names, sorted(names)
    assert "flowc_harness.py" not in names

    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    store = tmp_path / "store"
    write_run(store, "F", 4)
    code = (
        "import metaflow, flowc.client, flowc.runner\n"
        "assert metaflow.__file__.startswith(%r), metaflow.__file__\n"
        "print(flowc.client.Flow('F').latest_run.id, flowc.runner.Runner.__name__)\n" % str(target)
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"PYTHONPATH": str(target), "FLOWC_DATASTORE_ROOT": str(store)})
    done = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True)
    assert done.stdout.split() == ["4", "Runner"], done.stderr
