"""`Runner`: start `flowc run` / `flowc resume` from Python and get the client `Run` back.

    with Runner('train.py', max_workers=4) as runner:
        result = runner.run(alpha=0.3)      # waits; result.run is the finished Run
        print(result.run.data.model, result.status)

    running = Runner('train.py').async_run(alpha=0.3)   # returns once the run has an id
    for line in running.stream_log('stdout'):
        print(line)
    running.wait(timeout=600)

The flow is read by the `flowc` binary (`$FLOWC_BIN`, else `flowc` on PATH), as on the
command line. A flow with errors, bad parameters or a missing file raise
`FlowcRunnerError` carrying flowc's rendered diagnostics; a run that starts and then
fails is an `ExecutingRun` with `status == 'failed'` (its `Run` tells what failed).

How the run id is learnt: `flowc run --run-id-file FILE` writes the id once the run
exists; the Runner waits for that file or for flowc to exit, whichever comes first.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from ..client import Run
from ..client.datastore import BIN_ENV_VAR, ROOT_ENV_VAR, Datastore
from ..exception import MetaflowException

# Options of `flowc run` / `flowc resume` a Runner accepts as keyword arguments (in the
# constructor, for every run, or per call); every other keyword of `run()` is a flow
# parameter. Values: the option, and whether it is a flag without a value.
_RUN_OPTIONS = {
    "max_workers": ("--max-workers", False),
    "max_num_splits": ("--max-num-splits", False),
    "datastore_root": ("--datastore-root", False),
    "flow": ("--flow", False),
    "python": ("--python", False),
    "no_warm_interpreter": ("--no-warm-interpreter", True),
}
_POLL_SECONDS = 0.05


class FlowcRunnerError(MetaflowException):
    """`flowc` refused to start the run: the message is what it printed (diagnostics,
    a parameter error, a missing file), `returncode` its exit status."""

    headline = "flowc could not start the run"

    def __init__(self, message, returncode=None, command=None):
        self.returncode = returncode
        self.command = list(command or [])
        super().__init__(message)


def _flowc(env):
    configured = env.get(BIN_ENV_VAR)
    if configured:
        return configured
    found = shutil.which("flowc", path=env.get("PATH"))
    if found is None:
        raise FlowcRunnerError(
            "cannot find the `flowc` binary: put it on PATH or set %s to its path" % BIN_ENV_VAR
        )
    return found


def _text(value):
    """A keyword argument's value as flowc's command line takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


class _LogStream:
    """The lines of one of flowc's output streams, followed while the process runs.

    Iterating gives the lines (without the newline) and ends once flowc has exited and
    every line has been read. `async for position, line in ...` gives Metaflow's form:
    the byte offset after each line, and the line; pass an offset as `position` to
    `stream_log` to go on from there.
    """

    def __init__(self, executing, path, position):
        self._executing = executing
        self._path = path
        self._position = position or 0

    def _read_available(self, final):
        lines = []
        try:
            with open(self._path, "rb") as handle:
                handle.seek(self._position)
                data = handle.read()
        except FileNotFoundError:
            return lines
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            lines.append((self._position + end + 1, data[start:end].decode("utf-8", "replace")))
            start = end + 1
        if final and start < len(data):
            # The last line of a finished process may lack its newline.
            lines.append((self._position + len(data), data[start:].decode("utf-8", "replace")))
            start = len(data)
        self._position += start
        return lines

    def _poll(self):
        """One poll: (lines now available, whether the stream has ended)."""
        finished = self._executing.returncode is not None
        return self._read_available(final=finished), finished

    def __iter__(self):
        while True:
            lines, finished = self._poll()
            for _, line in lines:
                yield line
            if finished:
                return
            if not lines:
                time.sleep(_POLL_SECONDS)

    async def __aiter__(self):
        while True:
            lines, finished = self._poll()
            for item in lines:
                yield item
            if finished:
                return
            if not lines:
                await asyncio.sleep(_POLL_SECONDS)


class ExecutingRun:
    """A run started by a `Runner`: its `flowc` process, and the client `Run` once known.

    `status` is `running`, `successful`, `failed`, or `timeout` (after `wait(timeout=...)`
    ran out and stopped the run). Attributes it does not have itself are those of `run`,
    so `runner.run().data.x` reads the finished run's artifact as `runner.run().run.data.x`
    does. It is awaitable (`await runner.async_run()` gives the object itself), so
    Metaflow's asynchronous spelling works too.
    """

    def __init__(self, runner, process, command, stdout_path, stderr_path, flow_name, run_id, root):
        self.runner = runner
        self.process = process
        self.command = command
        self._stdout_path = stdout_path
        self._stderr_path = stderr_path
        self._flow_name = flow_name
        self.run_id = run_id
        self._root = root
        self._timed_out = False

    # -- the run ------------------------------------------------------------------------

    @property
    def run(self):
        """The client `Run` (read afresh each time, so its status follows the run)."""
        return Run(
            "%s/%s" % (self._flow_name, self.run_id),
            _store=Datastore(self._root),
            _namespace_check=False,
        )

    @property
    def pathspec(self):
        return "%s/%s" % (self._flow_name, self.run_id)

    def __getattr__(self, name):
        # Only reached for names this class lacks (or whose property raised
        # AttributeError: never forward those, or `run` would recurse): ask the Run.
        if name.startswith("_") or name in _OWN_ATTRIBUTES:
            raise AttributeError(name)
        return getattr(self.run, name)

    def __getitem__(self, step):
        return self.run[step]

    # -- the process ----------------------------------------------------------------------

    @property
    def returncode(self):
        """flowc's exit status: None while it runs, 0 after a successful run."""
        return self.process.poll()

    @property
    def status(self):
        if self._timed_out:
            return "timeout"
        code = self.process.poll()
        if code is None:
            return "running"
        return "successful" if code == 0 else "failed"

    def wait(self, timeout=None, stream=None):
        """Waits for the run to end; returns this object.

        With `timeout` (seconds), a run still going when it expires is stopped as
        `kill()` does and `status` becomes `timeout`. With `stream` (`stdout` or
        `stderr`), that output is copied to this process's stdout while waiting.
        """
        echo = None
        if stream:
            echo = threading.Thread(
                target=_copy_lines, args=(self.stream_log(stream), sys.stdout), daemon=True
            )
            echo.start()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._timed_out = True
            self.kill()
        if echo is not None:
            echo.join()
        return self

    def stream_log(self, stream, position=None):
        """The lines of flowc's `stdout` or `stderr` as they are written (see `_LogStream`)."""
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream must be 'stdout' or 'stderr', not %r" % (stream,))
        path = self._stdout_path if stream == "stdout" else self._stderr_path
        return _LogStream(self, path, position)

    def _read(self, path):
        try:
            with open(path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    @property
    def stdout(self):
        """What flowc printed on stdout so far (the steps' output, prefixed by task)."""
        return self._read(self._stdout_path)

    @property
    def stderr(self):
        """What flowc printed on stderr so far (progress, summary, errors)."""
        return self._read(self._stderr_path)

    def kill(self, termination_timeout=5.0):
        """Stops the run so that it is recorded as `killed` (and can be resumed).

        SIGINT goes to flowc first, which stops the tasks and marks the run killed, as
        Ctrl-C does; if flowc is still there after `termination_timeout` seconds,
        SIGTERM goes to its whole process group, then SIGKILL.
        """
        if self.process.poll() is not None:
            return self
        for sig, group in ((signal.SIGINT, False), (signal.SIGTERM, True), (signal.SIGKILL, True)):
            try:
                if group:
                    os.killpg(self.process.pid, sig)
                else:
                    os.kill(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=termination_timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process.wait()
        return self

    def __await__(self):
        async def itself():
            return self

        return itself().__await__()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.runner.cleanup()

    def __str__(self):
        return "ExecutingRun('%s', status=%s)" % (self.pathspec, self.status)

    __repr__ = __str__


_OWN_ATTRIBUTES = frozenset(
    name for name in dir(ExecutingRun) if not name.startswith("_")
) | {"runner", "process", "command", "run_id"}


class Runner:
    """Runs a flow file with `flowc` from Python.

    `flow_file` is the path of the flow. `show_output` copies flowc's output to this
    process's stdout/stderr during the blocking `run()`/`resume()`. `env` adds
    environment variables for flowc and the tasks; `cwd` is the directory flowc runs in
    (default: the current one). `file_read_timeout` bounds the wait for the run's id.
    Other keywords are run options: `max_workers`, `max_num_splits`, `datastore_root`,
    `flow` (the class, when the file defines several), `python`, `no_warm_interpreter`,
    `tags` (a list); they apply to every run and can also be given per call.

    As a context manager, leaving the block stops a run still going and removes the
    temporary files (logs, the run-id file).
    """

    def __init__(self, flow_file, show_output=True, profile=None, env=None, cwd=None,
                 file_read_timeout=3600, **kwargs):
        self.cwd = os.path.abspath(cwd) if cwd else os.getcwd()
        self.flow_file = os.path.join(self.cwd, flow_file) if not os.path.isabs(flow_file) else flow_file
        self.show_output = show_output
        self.profile = profile
        self.env_vars = dict(os.environ)
        self.env_vars.update({str(k): str(v) for k, v in (env or {}).items()})
        self.file_read_timeout = file_read_timeout
        self.top_level_kwargs = dict(kwargs)
        self._tmpdir = None
        self._executions = []
        self._flow_ir = None
        self._serial = 0

    # -- public API -------------------------------------------------------------------------

    def run(self, **kwargs):
        """Runs the flow with `kwargs` as parameters (and run options); waits for the end.

        Returns the finished `ExecutingRun` (its `.run` is the client `Run`).
        """
        executing = self._start("run", kwargs)
        return self._finish(executing)

    def resume(self, **kwargs):
        """`flowc resume`: re-runs the latest run (or `origin_run_id`) from its first
        failed step (or `step_to_rerun`); waits for the end."""
        executing = self._start("resume", kwargs)
        return self._finish(executing)

    def async_run(self, **kwargs):
        """Starts the run and returns its `ExecutingRun` as soon as the run has an id."""
        return self._start("run", kwargs)

    def async_resume(self, **kwargs):
        """Starts `flowc resume` and returns its `ExecutingRun` once the new run has an id."""
        return self._start("resume", kwargs)

    def cleanup(self):
        """Stops any run still going and removes the temporary files."""
        for executing in self._executions:
            if executing.process.poll() is None:
                executing.kill()
        self._executions = []
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.cleanup()

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc_value, traceback):
        self.cleanup()

    # -- internals ------------------------------------------------------------------------

    def _scratch(self):
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="flowc-runner-")
        return self._tmpdir

    def _ir(self, flowc, options):
        """The flow's IR from `flowc inspect` (its name and parameters); raises with
        flowc's diagnostics when the flow has errors."""
        if self._flow_ir is None:
            command = [flowc, "inspect", self.flow_file, "--format", "json"]
            if options.get("flow"):
                command += ["--flow", str(options["flow"])]
            done = self._check_output(command)
            try:
                self._flow_ir = json.loads(done)
            except ValueError as err:
                raise FlowcRunnerError("`flowc inspect` printed no IR: %s" % err, command=command) from None
        return self._flow_ir

    def _check_output(self, command):
        try:
            done = subprocess.run(command, cwd=self.cwd, env=self.env_vars, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        except OSError as err:
            raise FlowcRunnerError("cannot start `%s`: %s" % (command[0], err), command=command) from None
        if done.returncode != 0:
            raise FlowcRunnerError(
                done.stderr.decode("utf-8", "replace").strip() or "flowc exited with status %d" % done.returncode,
                returncode=done.returncode,
                command=command,
            )
        return done.stdout.decode("utf-8", "replace")

    def _root(self, options):
        configured = options.get("datastore_root") or self.env_vars.get(ROOT_ENV_VAR)
        if configured:
            configured = os.fspath(configured)
            if configured.startswith("s3://"):
                return configured
            return os.path.join(self.cwd, configured)
        return os.path.join(self.cwd, ".flowc")

    def _start(self, command_name, kwargs):
        flowc = _flowc(self.env_vars)
        options = dict(self.top_level_kwargs)
        params = {}
        tags = list(options.pop("tags", None) or ())
        for key, value in kwargs.items():
            if key == "tags":
                tags += list(value or ())
            elif key in _RUN_OPTIONS:
                options[key] = value
            else:
                params[key] = value
        ir = self._ir(flowc, options)
        flow_name = ir.get("name")
        root = self._root(options)
        options["datastore_root"] = root
        if not options.get("python") and not self.env_vars.get("FLOWC_PYTHON"):
            # The tasks use this interpreter (a notebook's kernel), which has the
            # user's libraries, rather than whatever `python3` is on PATH.
            options["python"] = sys.executable

        scratch = self._scratch()
        self._serial += 1
        serial = self._serial
        run_id_file = os.path.join(scratch, "run-id-%d" % serial)
        stdout_path = os.path.join(scratch, "stdout-%d" % serial)
        stderr_path = os.path.join(scratch, "stderr-%d" % serial)

        command = [flowc, command_name, self.flow_file]
        if command_name == "resume":
            origin = params.pop("origin_run_id", None)
            step = params.pop("step_to_rerun", None) or params.pop("step", None)
            if params:
                raise TypeError("resume() got unexpected arguments: %s" % ", ".join(sorted(params)))
            if origin is not None:
                command.append(str(origin))
            if step is not None:
                command += ["--step", str(step)]
        for key, value in sorted(options.items()):
            if key not in _RUN_OPTIONS:
                raise TypeError("unknown Runner option %r (options: %s, tags)" % (key, ", ".join(sorted(_RUN_OPTIONS))))
            flag, is_flag = _RUN_OPTIONS[key]
            if is_flag:
                if value:
                    command.append(flag)
            elif value is not None:
                command += [flag, _text(value)]
        for tag in tags:
            command += ["--tag", str(tag)]
        command += ["--run-id-file", run_id_file]
        command += _parameter_args(ir, params)

        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            try:
                process = subprocess.Popen(command, cwd=self.cwd, env=self.env_vars, stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=err, start_new_session=True)
            except OSError as error:
                raise FlowcRunnerError("cannot start `%s`: %s" % (flowc, error), command=command) from None
        run_id = self._wait_for_run_id(process, run_id_file, stderr_path, command)
        executing = ExecutingRun(self, process, command, stdout_path, stderr_path, flow_name, run_id, root)
        self._executions.append(executing)
        return executing

    def _wait_for_run_id(self, process, path, stderr_path, command):
        deadline = time.monotonic() + self.file_read_timeout
        while True:
            exited = process.poll() is not None
            try:
                with open(path, "r", encoding="utf-8") as handle:
                    run_id = handle.read().strip()
            except FileNotFoundError:
                run_id = ""
            if run_id:
                return run_id
            if exited:
                with open(stderr_path, "rb") as handle:
                    message = handle.read().decode("utf-8", "replace").strip()
                raise FlowcRunnerError(
                    message or "flowc exited with status %d before the run started" % process.returncode,
                    returncode=process.returncode,
                    command=command,
                )
            if time.monotonic() >= deadline:
                _stop(process)
                raise FlowcRunnerError(
                    "the run did not start within %s seconds" % self.file_read_timeout, command=command
                )
            time.sleep(_POLL_SECONDS)

    def _finish(self, executing):
        try:
            return self._wait_showing_output(executing)
        except KeyboardInterrupt:
            # flowc runs in a session of its own, so the Ctrl-C (or a notebook's
            # "interrupt") reached only this process: pass it on, so the run stops and
            # is recorded as killed rather than going on unwatched.
            executing.kill()
            raise

    def _wait_showing_output(self, executing):
        if self.show_output:
            echo = [
                threading.Thread(target=_copy_lines, args=(executing.stream_log(name), target), daemon=True)
                for name, target in (("stdout", sys.stdout), ("stderr", sys.stderr))
            ]
            for thread in echo:
                thread.start()
            executing.wait()
            for thread in echo:
                thread.join()
        else:
            executing.wait()
        return executing


def _copy_lines(lines, target):
    for line in lines:
        target.write(line + "\n")
    target.flush()


def _stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def _parameter_args(ir, params):
    """`--name value` for each flow parameter given as a keyword.

    A keyword may be the parameter's name with `-` spelled `_` (`n_trials` for
    `n-trials`), its attribute name, or its exact name; one matching nothing is passed
    as it is, so flowc reports it (with a suggestion).
    """
    lookup = {}
    for param in ir.get("parameters") or []:
        name = param.get("name")
        if not isinstance(name, str):
            continue
        for key in (name, name.replace("-", "_"), param.get("attr")):
            if isinstance(key, str):
                lookup.setdefault(key, param)
    args = []
    for key, value in params.items():
        param = lookup.get(key)
        name = param["name"] if param else key
        separator = param.get("separator") if param else None
        if isinstance(value, (list, tuple)) and isinstance(separator, str):
            text = separator.join(_text(item) for item in value)
        else:
            text = _text(value)
        args.append("--%s=%s" % (name, text))
    return args
