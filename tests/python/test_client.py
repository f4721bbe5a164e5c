"""The client API against real runs: flows run with `flowc run` into temporary
datastores, then read back through `metaflow.client` (and its `flowc.client` alias)."""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import PACKAGE_DIR, run_flow, write_run

import metaflow
from metaflow import (
    CorruptMetadataError,
    DataArtifact,
    Flow,
    Metaflow,
    MetaflowDataMissing,
    MetaflowException,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
    Run,
    Step,
    Task,
    get_namespace,
    namespace,
    set_datastore_root,
)
from metaflow.client import datastore as client_datastore


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """A datastore with a succeeded run of ClientFlow and, after it, a failed one."""
    root = tmp_path_factory.mktemp("client") / "store"
    ok, _ = run_flow("client_flow.py", root, "--alpha", "0.25", "--run-label", "first")
    failed, done = run_flow("client_flow.py", root, env={"CLIENT_FLOW_FAIL": "1"}, check=False)
    assert done.returncode == 1, done.stderr
    return {"root": root, "ok": ok, "failed": failed}


@pytest.fixture(scope="session")
def resumed(tmp_path_factory):
    """A failed run of ClientFlow and the run `flowc resume` made of it."""
    root = tmp_path_factory.mktemp("resume") / "store"
    failed, done = run_flow("client_flow.py", root, "--alpha", "2", env={"CLIENT_FLOW_FAIL": "1"}, check=False)
    assert done.returncode == 1, done.stderr
    new, _ = run_flow("client_flow.py", root, failed, command="resume")
    return {"root": root, "failed": failed, "new": new}


@pytest.fixture
def store(runs):
    set_datastore_root(runs["root"])
    return runs


def test_run_data_is_the_end_steps_artifacts(store):
    run = Run("ClientFlow/%s" % store["ok"])
    assert run.id == store["ok"]
    assert run.pathspec == "ClientFlow/%s" % store["ok"]
    assert run.data.score == pytest.approx(14 * 0.25)
    assert run.data.done is True
    assert "score" in run.data and "nothing" not in run.data
    with pytest.raises(AttributeError):
        run.data.nothing


def test_artifacts_load_by_name_attribute_and_pathspec(store):
    task = Run("ClientFlow/%s" % store["ok"])["join"].task
    assert task.data.model == {"weights": [1, 4, 9], "alpha": 0.25}
    assert task["model"].data == task.data.model
    assert task["total"].data == 14
    artifact = DataArtifact("%s/model" % task.pathspec)
    assert artifact.data == {"weights": [1, 4, 9], "alpha": 0.25}
    assert len(artifact.sha) == 64 and artifact.size > 0
    assert artifact.type == "builtins.dict"
    names = [a.id for a in task]
    assert "model" in names and "total" in names
    assert not any(name.startswith("_") for name in names)
    assert task.artifacts.total.data == 14
    assert "model" in task and "missing" not in task
    with pytest.raises(KeyError):
        task["missing"]


def test_artifacts_are_loaded_one_at_a_time(store, monkeypatch):
    task = Run("ClientFlow/%s" % store["ok"])["join"].task
    loaded = []
    real = client_datastore.Datastore.load_bytes

    def spy(self, flow, pathspec, name, entry):
        loaded.append(name)
        return real(self, flow, pathspec, name, entry)

    monkeypatch.setattr(client_datastore.Datastore, "load_bytes", spy)
    data = task.data
    assert loaded == []
    assert data.total == 14
    assert loaded == ["total"]


def test_steps_tasks_and_foreach(store):
    run = Run("ClientFlow/%s" % store["ok"])
    names = [step.id for step in run]
    assert sorted(names) == ["end", "join", "square", "start", "train"]
    # Newest first, as Metaflow: the end step leads.
    assert names[0] == "end" and names[-1] == "start"
    assert "_parameters" not in names
    assert "square" in run and "nope" not in run
    squares = list(run["square"].tasks())
    assert len(squares) == 3
    assert sorted(t.index for t in squares) == [0, 1, 2]
    assert sorted(t.data.value for t in squares) == [1, 4, 9]
    assert run["train"].task.index is None
    step = Step("ClientFlow/%s/square" % store["ok"])
    assert len(list(step)) == 3
    one = squares[0]
    assert Task(one.pathspec).data.value == one.data.value
    assert one.parent == step
    assert one.parent.parent.id == store["ok"]
    parents = list(run["join"].task.parent_tasks)
    assert sorted(t.pathspec for t in parents) == sorted(t.pathspec for t in squares)
    children = list(run["start"].task.child_tasks)
    assert len(children) == 3


def test_stdout_and_stderr(store):
    run = Run("ClientFlow/%s" % store["ok"])
    start = run["start"].task
    assert "starting with alpha 0.25" in start.stdout
    assert "a warning on stderr" in start.stderr
    assert start.stdout_size == len(start.stdout.encode())
    assert list(start.loglines("stdout")) == [(None, "starting with alpha 0.25")]
    assert start.current_attempt == 0 and start.attempts[0]["status"] == "succeeded"
    outputs = sorted(t.stdout.strip() for t in run["square"])
    assert outputs == ["square of 1 is 1", "square of 2 is 4", "square of 3 is 9"]
    assert Task(start.pathspec, attempt=0).stdout == start.stdout
    with pytest.raises(MetaflowNotFound):
        Task(start.pathspec, attempt=3)


def test_parameters_status_and_timings(store):
    run = Run("ClientFlow/%s" % store["ok"])
    # By attribute name, as `run.data` has them (the parameter is named `run-label`).
    assert run.parameters == {"alpha": 0.25, "label": "first"}
    assert run.successful and run.finished and run.status == "succeeded"
    assert isinstance(run.created_at, datetime.datetime)
    assert isinstance(run.finished_at, datetime.datetime)
    assert run.created_at <= run.finished_at
    for step in run:
        for task in step:
            assert task.successful and task.finished
            assert run.created_at <= task.created_at <= task.finished_at <= run.finished_at
    assert run["end"].finished_at == run["end"].task.finished_at
    assert run.origin_run_id is None and run.origin_pathspec is None


def test_failed_run_and_latest_runs(store):
    flow = Flow("ClientFlow")
    ids = [run.id for run in flow]
    assert ids == [store["failed"], store["ok"]]
    latest = flow.latest_run
    assert latest.id == store["failed"]
    assert not latest.successful and latest.finished and latest.status == "failed"
    assert latest.data is None  # the end step never ran
    assert flow.latest_successful_run.id == store["ok"]
    train = latest["train"].task
    assert not train.successful and train.finished
    assert "training diverged" in train.stderr
    # A failed task keeps what it had when it failed, not what it never made.
    assert "total" in train and "score" not in train
    assert latest["join"].task.data.total == 14
    assert latest.parameters == {"alpha": 0.5, "label": "plain"}
    assert [f.id for f in Metaflow()] == ["ClientFlow"]
    assert Metaflow()["ClientFlow"].latest_run.id == store["failed"]


def test_resume_records_its_origin(resumed):
    set_datastore_root(resumed["root"])
    run = Flow("ClientFlow").latest_run
    assert run.id == resumed["new"]
    assert run.successful
    assert run.origin_run_id == resumed["failed"]
    assert run.origin_pathspec == "ClientFlow/%s" % resumed["failed"]
    assert run.data.score == pytest.approx(28.0)  # alpha=2 came from the origin run
    assert run.parameters["alpha"] == 2
    cloned = run["join"].task
    assert cloned.origin_run_id == resumed["failed"]
    assert cloned.origin_pathspec.startswith("ClientFlow/%s/join/" % resumed["failed"])
    assert cloned.data.total == 14
    assert run["train"].task.origin_run_id is None  # re-executed


def test_flowc_client_alias():
    import flowc.client

    assert flowc.client.Flow is Flow
    assert flowc.client.Run is metaflow.Run
    assert "Task" in flowc.client.__all__


def test_zstandard_and_flowc_artifact_get_give_the_same_values(store, monkeypatch):
    task = Run("ClientFlow/%s" % store["ok"])["join"].task
    pytest.importorskip("zstandard")
    direct = (task.data.model, task.data.total)
    monkeypatch.setenv(client_datastore.USE_CLI_ENV_VAR, "1")
    calls = []
    real_run = subprocess.run

    def recording_run(command, *args, **kwargs):
        calls.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(client_datastore.subprocess, "run", recording_run)
    through_cli = (task.data.model, task.data.total)
    assert through_cli == direct
    assert [c[1:] for c in calls] == [
        ["artifact", "get", task.pathspec, "model", "--raw"],
        ["artifact", "get", task.pathspec, "total", "--raw"],
    ]


def test_missing_zstandard_falls_back_to_flowc(store, monkeypatch):
    task = Run("ClientFlow/%s" % store["ok"])["join"].task
    monkeypatch.setattr(client_datastore, "_zstandard", lambda: None)
    assert task.data.total == 14
    monkeypatch.setenv("FLOWC_BIN", "/nonexistent/flowc")
    with pytest.raises(MetaflowDataMissing, match="cannot start"):
        task.data.total


def _copy_run(runs, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(runs["root"], root)
    set_datastore_root(root)
    return root, root / "ClientFlow" / "runs" / runs["ok"]


def test_corrupt_run_json_names_the_file(runs, tmp_path):
    root, run_dir = _copy_run(runs, tmp_path)
    (run_dir / "run.json").write_text('{"flow": "ClientFlow", "run_id": ')
    with pytest.raises(CorruptMetadataError) as err:
        Run("ClientFlow/%s" % runs["ok"])
    message = str(err.value)
    assert str(run_dir / "run.json") in message and "not valid JSON" in message
    assert isinstance(err.value, MetaflowException)
    with pytest.raises(CorruptMetadataError):
        Flow("ClientFlow").latest_run

    (run_dir / "run.json").write_text(json.dumps({"flow": "ClientFlow", "run_id": runs["ok"]}))
    with pytest.raises(CorruptMetadataError, match="has no `status` field"):
        Run("ClientFlow/%s" % runs["ok"])
    (run_dir / "run.json").write_text("[1, 2]")
    with pytest.raises(CorruptMetadataError, match="instead of a JSON object"):
        Run("ClientFlow/%s" % runs["ok"])


def test_run_json_of_another_run_is_refused(runs, tmp_path):
    root, run_dir = _copy_run(runs, tmp_path)
    doc = json.loads((run_dir / "run.json").read_text())
    doc["run_id"] = "77"
    (run_dir / "run.json").write_text(json.dumps(doc))
    with pytest.raises(CorruptMetadataError, match="describes run id '77'"):
        Run("ClientFlow/%s" % runs["ok"])


def test_missing_manifest_and_bad_task_json_name_the_file(runs, tmp_path):
    root, run_dir = _copy_run(runs, tmp_path)
    task_dir = next((run_dir / "join").iterdir())
    (task_dir / "manifest.json").unlink()
    task = Run("ClientFlow/%s" % runs["ok"])["join"].task
    with pytest.raises(CorruptMetadataError) as err:
        task.data.total
    assert str(task_dir / "manifest.json") in str(err.value)
    assert "is missing" in str(err.value)

    (task_dir / "task.json").write_text('{"flow": "ClientFlow", "attempts": 3')
    with pytest.raises(CorruptMetadataError, match="task.json"):
        list(Run("ClientFlow/%s" % runs["ok"])["join"])


def test_corrupt_blob_is_reported(runs, tmp_path):
    pytest.importorskip("zstandard")
    root, run_dir = _copy_run(runs, tmp_path)
    task = Run("ClientFlow/%s" % runs["ok"])["join"].task
    blob = root / "ClientFlow" / "data" / task["model"].sha[:2] / task["model"].sha
    blob.write_bytes(blob.read_bytes()[:-3])
    with pytest.raises(MetaflowDataMissing, match="corrupt"):
        task.data.model
    blob.unlink()
    with pytest.raises(MetaflowDataMissing, match="not found"):
        task.data.model


def test_lookups_that_fail(store):
    with pytest.raises(MetaflowNotFound, match="Flow\\('NoSuchFlow'\\) does not exist"):
        Flow("NoSuchFlow")
    with pytest.raises(MetaflowNotFound):
        Run("ClientFlow/999")
    with pytest.raises(MetaflowNotFound):
        Task("ClientFlow/%s/start/999" % store["ok"])
    with pytest.raises(MetaflowNotFound):
        Step("ClientFlow/%s/nope" % store["ok"])
    with pytest.raises(MetaflowInvalidPathspec):
        Run("ClientFlow")
    with pytest.raises(MetaflowInvalidPathspec, match="invalid run id"):
        Run("ClientFlow/..")
    with pytest.raises(MetaflowInvalidPathspec, match="invalid flow name"):
        Flow("..")
    with pytest.raises(KeyError):
        Flow("ClientFlow")["999"]
    with pytest.raises(KeyError):
        Run("ClientFlow/%s" % store["ok"])["nope"]
    with pytest.raises(KeyError):
        Run("ClientFlow/%s" % store["ok"])["_parameters/x"]


def test_newer_layout_is_refused(tmp_path):
    write_run(tmp_path, "F", 1)
    (tmp_path / ".flowc-format").write_text('{"format":"flowc-datastore","layout_version":2}')
    set_datastore_root(tmp_path)
    with pytest.raises(metaflow.client.DatastoreError, match="newer than this client supports"):
        Flow("F")


def test_an_s3_root_is_refused_clearly(monkeypatch):
    monkeypatch.setenv("FLOWC_DATASTORE_ROOT", "s3://bucket/prefix")
    assert metaflow.get_datastore_root() == "s3://bucket/prefix"
    with pytest.raises(metaflow.client.DatastoreError, match="is in S3"):
        Flow("F")


def test_namespaces_follow_the_recorded_user_and_tags(tmp_path, monkeypatch):
    write_run(tmp_path, "F", 1, created_ms=1000, user="alice", tags=["nightly"])
    write_run(tmp_path, "F", 2, created_ms=2000, user="bob", tags=["nightly", "gpu"])
    write_run(tmp_path, "F", 3, created_ms=3000)  # records no user
    set_datastore_root(tmp_path)
    monkeypatch.setenv("METAFLOW_USER", "alice")

    assert get_namespace() == "user:alice"
    assert [r.id for r in Flow("F")] == ["3", "1"]
    assert Run("F/1").tags == {"user:alice", "nightly"}
    assert Run("F/1").user_tags == {"nightly"}
    assert Run("F/1").system_tags == {"user:alice"}
    with pytest.raises(MetaflowNamespaceMismatch, match="user:alice"):
        Run("F/2")
    with pytest.raises(MetaflowNamespaceMismatch):
        Task("F/2/start/1")
    assert "2" in Flow("F") and "4" not in Flow("F")
    with pytest.raises(MetaflowNamespaceMismatch):
        Flow("F")["2"]

    assert namespace("user:bob") == "user:bob"
    assert [r.id for r in Flow("F")] == ["3", "2"]
    assert [r.id for r in Flow("F").runs("gpu")] == ["2"]

    namespace("nightly")
    assert [r.id for r in Flow("F")] == ["3", "2", "1"]
    namespace("no-such-tag")
    assert [r.id for r in Flow("F")] == ["3"]

    assert namespace(None) is None
    assert [r.id for r in Flow("F")] == ["3", "2", "1"]
    assert [r.id for r in Flow("F").runs("nightly")] == ["2", "1"]
    assert [r.id for r in Flow("F").runs("nightly", "gpu")] == ["2"]
    assert Run("F/2").is_in_namespace()

    flow = Flow("F")
    assert flow.latest_run.id == "3"
    write_run(tmp_path, "F", 4, created_ms=4000, user="carol")
    assert flow.latest_run.id == "4"  # a Flow sees runs made after it

    assert metaflow.default_namespace() == "user:alice"


def test_a_flow_with_no_run_in_the_namespace_is_a_mismatch(tmp_path, monkeypatch):
    write_run(tmp_path, "G", 1, user="bob")
    set_datastore_root(tmp_path)
    monkeypatch.setenv("METAFLOW_USER", "alice")
    with pytest.raises(MetaflowNamespaceMismatch):
        Flow("G")
    assert list(Metaflow()) == []
    namespace(None)
    assert Flow("G").latest_run.id == "1"


def test_datastore_root_follows_the_environment_and_metadata(tmp_path, monkeypatch):
    write_run(tmp_path / "a", "F", 1)
    write_run(tmp_path / "b", "F", 1)
    write_run(tmp_path / "b", "F", 2, created_ms=1_800_000_000_000)
    monkeypatch.setenv("FLOWC_DATASTORE_ROOT", str(tmp_path / "a"))
    assert Flow("F").latest_run.id == "1"
    assert metaflow.metadata("local@%s" % (tmp_path / "b")) == "local@%s" % (tmp_path / "b")
    assert Flow("F").latest_run.id == "2"
    assert metaflow.default_metadata() == "local@%s" % (tmp_path / "a")
    monkeypatch.delenv("FLOWC_DATASTORE_ROOT")
    monkeypatch.chdir(tmp_path / "a")
    shutil.copytree(tmp_path / "b", tmp_path / "a" / ".flowc")
    assert metaflow.get_datastore_root() == str(tmp_path / "a" / ".flowc")
    assert Flow("F").latest_run.id == "2"


def test_listing_1000_runs(tmp_path):
    """Lists 1,000 runs made directly as metadata files and reports the time taken."""
    flow_ir = {"ir_version": 1, "name": "BigFlow", "end_step": "end",
               "steps": [{"name": "s%d" % i, "doc": "x" * 200} for i in range(30)]}
    for i in range(1, 1001):
        status = "failed" if i % 10 == 0 else "succeeded"
        write_run(tmp_path, "BigFlow", i, status=status, created_ms=1_700_000_000_000 + i * 1000,
                  finished_ms=1_700_000_000_000 + i * 1000 + 500, extra={"flow_ir": flow_ir})
    set_datastore_root(tmp_path)
    namespace(None)
    start = time.perf_counter()
    flow = Flow("BigFlow")
    runs = list(flow)
    listed = time.perf_counter() - start
    assert len(runs) == 1000
    assert [r.id for r in runs[:3]] == ["1000", "999", "998"]
    summary = [(r.id, r.status, r.successful, r.created_at, r.finished_at) for r in runs]
    all_attrs = time.perf_counter() - start
    assert sum(1 for s in summary if not s[2]) == 100
    start = time.perf_counter()
    latest_ok = Flow("BigFlow").latest_successful_run
    latest = time.perf_counter() - start
    assert latest_ok.id == "999"
    print(
        "\nlisting 1000 runs: %.3f s to list, %.3f s with status and times; "
        "latest_successful_run from a fresh Flow: %.3f s" % (listed, all_attrs, latest)
    )


def test_importing_metaflow_does_not_import_the_client():
    code = (
        "import sys, metaflow\n"
        "assert 'metaflow.client' not in sys.modules, 'client imported eagerly'\n"
        "assert 'metaflow.runner' not in sys.modules, 'runner imported eagerly'\n"
        "from metaflow import Flow, Runner, namespace\n"
        "assert Flow.__module__ == 'metaflow.client.core'\n"
        "missing = [n for n in metaflow.__all__ if not hasattr(metaflow, n)]\n"
        "assert not missing, missing\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(PACKAGE_DIR)},
                          capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


def test_every_package_file_is_embedded():
    """Each Python file of the client, runner and flowc packages is in FILES of mod.rs,
    so the binaries ship it."""
    mod_rs = (PACKAGE_DIR / "mod.rs").read_text()
    files = ["metaflow/__init__.py"]
    for sub in ("metaflow/client", "metaflow/runner", "flowc"):
        files += sorted(p.relative_to(PACKAGE_DIR).as_posix() for p in (PACKAGE_DIR / sub).glob("*.py"))
    assert len(files) > 10
    missing = [f for f in files if 'include_str!("%s")' % f not in mod_rs]
    assert missing == []


def test_run_json_in_any_json_layout_reads_the_same(tmp_path):
    ir = {"ir_version": 1, "name": "F", "end_step": "finish", "doc": "a\n  \"x\": 1\n}"}
    pretty = write_run(tmp_path, "F", 1, extra={"flow_ir": ir})
    doc = json.loads((pretty / "run.json").read_text())
    compact = write_run(tmp_path, "F", 2)
    (compact / "run.json").write_text(json.dumps(dict(doc, run_id="2")))
    last = write_run(tmp_path, "F", 3)
    reordered = {k: v for k, v in doc.items() if k != "flow_ir"}
    reordered["run_id"] = "3"
    reordered["flow_ir"] = ir
    (last / "run.json").write_text(json.dumps(reordered, indent=2) + "\n")
    set_datastore_root(tmp_path)
    namespace(None)
    for run_id in ("1", "2", "3"):
        run = Run("F/%s" % run_id)
        assert run.flow_ir == ir
        assert run.end_step_name == "finish"
        assert run.status == "succeeded"


def test_a_damaged_flow_ir_is_reported_when_it_is_needed(tmp_path):
    run_dir = write_run(tmp_path, "F", 1, extra={"flow_ir": {"end_step": "end", "steps": []}})
    text = (run_dir / "run.json").read_text().replace('"steps": []', '"steps": [')
    (run_dir / "run.json").write_text(text)
    set_datastore_root(tmp_path)
    namespace(None)
    run = Run("F/1")
    assert run.status == "succeeded"
    with pytest.raises(CorruptMetadataError, match="invalid `flow_ir`"):
        run.data
    (run_dir / "run.json").write_text(text[: text.index('"steps"')])
    with pytest.raises(CorruptMetadataError, match="not valid JSON"):
        Run("F/1")


def test_a_real_run_records_its_user_and_tags(tmp_path, monkeypatch):
    root = tmp_path / "store"
    env = dict(os.environ, METAFLOW_USER="carol")
    run_id, _ = run_flow("client_flow.py", root, "--tag", "nightly", "--tag", "gpu",
                         "--tag", "nightly", env=env)
    other_id, _ = run_flow("client_flow.py", root, env=dict(os.environ, METAFLOW_USER="dave"))
    set_datastore_root(root)
    monkeypatch.setenv("METAFLOW_USER", "carol")
    namespace(None)
    run = Run("ClientFlow/%s" % run_id)
    assert run.tags == {"user:carol", "nightly", "gpu"}
    assert run.user_tags == {"nightly", "gpu"}
    assert [r.id for r in Flow("ClientFlow").runs("gpu")] == [run_id]
    namespace("user:carol")
    assert [r.id for r in Flow("ClientFlow")] == [run_id]
    with pytest.raises(MetaflowNamespaceMismatch):
        Run("ClientFlow/%s" % other_id)
