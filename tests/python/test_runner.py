"""The Runner API against the real `flowc` binary: blocking and asynchronous runs,
streaming, waiting, killing, resuming, the context manager, NBRunner, and flows that
flowc refuses."""

import asyncio
import linecache
import os
import signal
import time

import pytest

from conftest import FLOWS, flowc

from metaflow import ExecutingRun, FlowcRunnerError, NBRunner, Run, Runner
from metaflow.runner.nbrun import NBRunnerInitializationError, flow_source


@pytest.fixture
def root(tmp_path):
    return tmp_path / "store"


def runner(flow, root, **kwargs):
    kwargs.setdefault("show_output", False)
    return Runner(str(FLOWS / flow), datastore_root=str(root), **kwargs)


def test_run_waits_and_returns_the_finished_run(root):
    with runner("client_flow.py", root) as r:
        result = r.run(alpha=0.3, run_label="tuned")
        assert isinstance(result, ExecutingRun)
        assert result.status == "successful" and result.returncode == 0
        run = result.run
        assert isinstance(run, Run) and run.finished and run.successful
        assert run.pathspec == "ClientFlow/%s" % result.run_id
        assert run.data.score == pytest.approx(14 * 0.3)
        assert run.parameters == {"alpha": 0.3, "label": "tuned"}
        # The ExecutingRun answers for its Run too.
        assert result.data.score == pytest.approx(14 * 0.3)
        assert result["square"].task.data.value in (1, 4, 9)
        assert "score 4.2" in result.stdout
        assert "run id: %s" % result.run_id in result.stderr


def test_show_output_copies_flowcs_output(root, capsys):
    runner("client_flow.py", root, show_output=True).run()
    captured = capsys.readouterr()
    assert "score 7.0" in captured.out
    assert "run id:" in captured.err


def test_async_run_streams_and_waits(root):
    r = runner("slow_flow.py", root, env={"NAP_SECONDS": "2"})
    try:
        running = r.async_run()
        assert running.status == "running" and running.returncode is None
        live = running.run
        assert live.status == "running" and not live.finished and live.finished_at is None
        lines = list(running.stream_log("stdout"))
        assert any(line.endswith("napping") for line in lines), lines
        assert any(line.endswith("woke up") for line in lines), lines
        assert running.wait(timeout=120) is running
        assert running.status == "successful"
        assert running.run.successful and running.run["nap"].task.data.rested is True
        # A Run made while the run was going follows it to the end.
        assert live.finished and live.successful and live.finished_at is not None
        assert [step.id for step in live][0] == "end"
        progress = list(running.stream_log("stderr"))
        assert any("nap done" in line for line in progress), progress
    finally:
        r.cleanup()


def test_async_spelling_works_with_await(root):
    async def main():
        r = runner("client_flow.py", root)
        running = await r.async_run(alpha=1)
        seen = [item async for item in running.stream_log("stdout")]
        await running.wait()
        return running, seen

    running, seen = asyncio.run(main())
    assert running.status == "successful"
    positions = [position for position, _ in seen]
    assert positions == sorted(positions) and positions[-1] == len(running.stdout.encode())
    assert any(line.endswith("score 14.0") for _, line in seen)


def _wait_for_line(running, text):
    for line in running.stream_log("stdout"):
        if text in line:
            return
    raise AssertionError("the run ended without printing %r" % text)


def test_kill_marks_the_run_killed(root):
    with runner("slow_flow.py", root) as r:
        running = r.async_run()
        _wait_for_line(running, "napping")
        started = time.monotonic()
        running.kill()
        assert time.monotonic() - started < 60
        assert running.status == "failed"
        assert running.returncode == 128 + signal.SIGINT
        assert running.run.status == "killed"
        assert "interrupted" in running.stderr
        nap = running.run["nap"].task
        assert nap.attempts[-1]["status"] == "killed"


def test_wait_with_a_timeout_stops_the_run(root):
    with runner("slow_flow.py", root) as r:
        running = r.async_run()
        _wait_for_line(running, "napping")
        running.wait(timeout=0.5)
        assert running.status == "timeout"
        assert running.returncode is not None
        assert running.run.status == "killed"


def test_leaving_the_context_manager_stops_the_run_and_cleans_up(root):
    with runner("slow_flow.py", root) as r:
        running = r.async_run()
        _wait_for_line(running, "napping")
        scratch = r._tmpdir
        assert os.path.isdir(scratch)
    assert running.returncode is not None
    assert not os.path.exists(scratch)
    assert running.run.status == "killed"


def test_resume_reruns_the_failed_run(root):
    with runner("client_flow.py", root, env={"CLIENT_FLOW_FAIL": "1"}) as r:
        failed = r.run(alpha=2)
        assert failed.status == "failed" and failed.returncode == 1
        assert not failed.run.successful and failed.run.status == "failed"
        assert "training diverged" in failed.run["train"].task.stderr
    with runner("client_flow.py", root) as r:
        resumed = r.resume()
        assert resumed.status == "successful"
        assert resumed.run.origin_run_id == failed.run_id
        assert resumed.run.data.score == pytest.approx(28.0)
        again = r.resume(origin_run_id=failed.run_id, step_to_rerun="join")
        assert again.status == "successful"
        assert again.run.origin_run_id == failed.run_id
        assert again.run["join"].task.origin_run_id is None
        assert again.run["square"].task.origin_run_id == failed.run_id


def test_a_flow_with_errors_raises_with_the_diagnostics(root):
    with pytest.raises(FlowcRunnerError) as err:
        runner("broken_flow.py", root).run()
    message = str(err.value)
    assert "flowc::graph::unknown-step" in message
    assert "step `start` names unknown step `trian`" in message
    assert "did you mean `train`?" in message
    assert err.value.returncode == 1


def test_bad_parameters_and_options_raise(root):
    with pytest.raises(FlowcRunnerError, match="has no parameter `--alhpa`; did you mean `--alpha`"):
        runner("client_flow.py", root).run(alhpa=1)
    with pytest.raises(FlowcRunnerError, match="takes a float"):
        runner("client_flow.py", root).run(alpha="fast")
    with pytest.raises(TypeError, match="unknown Runner option"):
        Runner(str(FLOWS / "client_flow.py"), colour=True).run()
    with pytest.raises(FlowcRunnerError, match="cannot find|cannot start"):
        runner("client_flow.py", root, env={"FLOWC_BIN": "/nonexistent/flowc"}).run()


def test_tags_and_options_reach_flowc(root):
    with runner("client_flow.py", root, max_workers=1) as r:
        result = r.run(tags=["nightly"], alpha=0)
        assert "--max-workers" in result.command and "1" in result.command
        assert result.command[result.command.index("--tag") + 1] == "nightly"
        assert result.run.data.score == 0


CELL = '''\
import math

from metaflow import FlowSpec, Parameter, step

OFFSET = 10


class CellFlow(FlowSpec):
    factor = Parameter("factor", type=int, default=2)

    @step
    def start(self):
        self.value = self.factor * math.floor(OFFSET + 0.5)
        self.next(self.end)

    @step
    def end(self):
        print("value", self.value)

print("this line comes after the class and must not be run by the tasks")
'''


def _define_in_cell(source, name):
    """Defines the cell's flow as Jupyter does: code compiled from a registered cell."""
    filename = "<ipython-input-7-%s>" % name
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__"}
    body = source.split("print(\"this line")[0]
    exec(compile(body, filename, "exec"), namespace)
    return namespace[name]


def test_nbrunner_runs_a_flow_defined_in_a_cell(root, tmp_path):
    flow = _define_in_cell(CELL, "CellFlow")
    source = flow_source(flow)
    assert source.startswith("import math") and "OFFSET = 10" in source
    assert "after the class" not in source
    nb = NBRunner(flow, base_dir=str(tmp_path), show_output=False, datastore_root=str(root))
    flow_file = nb.flow_file
    run = nb.nbrun(factor=3)
    assert run.successful and run.data.value == 30
    assert "value 30" in run["end"].task.stdout
    assert not os.path.exists(flow_file)


def test_nbrunner_async_and_cleanup(root, tmp_path):
    flow = _define_in_cell(CELL, "CellFlow")
    nb = NBRunner(flow, base_dir=str(tmp_path), show_output=False, datastore_root=str(root))
    running = nb.async_run()
    assert running.wait().status == "successful"
    assert running.run.data.value == 20
    nb.cleanup()
    assert not os.path.exists(nb.flow_file)


def test_nbrunner_refuses_inside_a_task_and_without_source(monkeypatch):
    flow = _define_in_cell(CELL, "CellFlow")
    monkeypatch.setenv("FLOWC_CONTROL_FD", "3")
    with pytest.raises(NBRunnerInitializationError, match="inside a running task"):
        NBRunner(flow)
    monkeypatch.delenv("FLOWC_CONTROL_FD")
    namespace = {"__name__": "__main__"}
    exec(compile(CELL.split("print(\"this line")[0], "<no-source>", "exec"), namespace)
    with pytest.raises(NBRunnerInitializationError, match="cannot find the source"):
        NBRunner(namespace["CellFlow"])


def test_run_id_file_holds_the_id_flowc_prints(tmp_path):
    id_file = tmp_path / "id"
    done = flowc("run", FLOWS / "client_flow.py", "--datastore-root", tmp_path / "store",
                 "--run-id-file", id_file)
    assert "run id: %s" % id_file.read_text() in done.stderr
    done = flowc("resume", FLOWS / "client_flow.py", "--datastore-root", tmp_path / "store",
                 "--run-id-file", id_file, "--step", "train")
    assert id_file.read_text() == "2"
    assert "run id: 2" in done.stderr


def test_interrupting_a_blocking_run_kills_it(root, monkeypatch):
    def interrupted_wait(self, timeout=None, stream=None):
        _wait_for_line(self, "napping")
        raise KeyboardInterrupt  # what Ctrl-C in the notebook raises meanwhile

    monkeypatch.setattr(ExecutingRun, "wait", interrupted_wait)
    with runner("slow_flow.py", root) as r:
        with pytest.raises(KeyboardInterrupt):
            r.run()
        (running,) = r._executions
        assert running.returncode == 128 + signal.SIGINT
        assert running.run.status == "killed"
