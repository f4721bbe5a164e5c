"""`NBRunner`: run a flow defined in a notebook cell.

flowc reads flows statically, from a file, so the cell that defines the flow class is
written to a temporary file first: the cell's text up to the end of the class (its
imports and constants included; what follows the class, such as the `NBRunner(...)`
call itself, left out). Everything the flow needs must therefore be in that cell, as
with Metaflow's NBRunner.

    run = NBRunner(TrainFlow).nbrun(alpha=0.3)    # the finished client Run
"""

import ast
import inspect
import linecache
import os
import shutil
import tempfile

from ..exception import MetaflowException
from .metaflow_runner import Runner


class NBRunnerInitializationError(MetaflowException):
    """The flow's source cannot be found, or the NBRunner is used inside a task."""

    headline = "NBRunner cannot run this flow"


def _source_file(flow):
    """The file (or notebook cell, through linecache) the flow class was defined in."""
    for value in vars(flow).values():
        func = inspect.unwrap(value) if callable(value) else None
        code = getattr(func, "__code__", None)
        if code is not None:
            return code.co_filename
    try:
        return inspect.getsourcefile(flow)
    except TypeError:
        return None


def flow_source(flow):
    """The text to write as the flow file: the flow's cell (or module) up to the end of
    the class. Raises NBRunnerInitializationError when it cannot be found."""
    filename = _source_file(flow)
    lines = linecache.getlines(filename) if filename else []
    if not lines and filename and os.path.isfile(filename):
        with open(filename, "r", encoding="utf-8") as handle:
            lines = handle.read().splitlines(keepends=True)
    if not lines:
        raise NBRunnerInitializationError(
            "cannot find the source of flow %s: define it in a notebook cell or a file"
            % getattr(flow, "__name__", flow)
        )
    text = "".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise NBRunnerInitializationError(
            "the cell defining %s does not parse: %s" % (flow.__name__, err)
        ) from None
    classes = [
        node for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == flow.__name__
    ]
    if not classes:
        raise NBRunnerInitializationError(
            "class %s is not defined at the top level of `%s`" % (flow.__name__, filename)
        )
    end = classes[-1].end_lineno
    return "".join(lines[:end]).rstrip("\n") + "\n"


class NBRunner:
    """A `Runner` for a flow class defined in a notebook cell.

    `flow` is the class. `base_dir` is the directory flowc runs in (and where the default
    `.flowc` datastore is), default the current one; the flow file itself goes to a
    private temporary directory, so that the code package of the run holds only it.
    Other arguments are the `Runner`'s. `nbrun()`/`nbresume()` wait and return the
    client `Run`, cleaning up; after `async_run()`, call `cleanup()` yourself.
    """

    def __init__(self, flow, show_output=True, profile=None, env=None, base_dir=None,
                 file_read_timeout=3600, **kwargs):
        if os.environ.get("FLOWC_CONTROL_FD"):
            # The flow file is executed by every task; an NBRunner call left in it
            # would start a run from inside each task, without end.
            raise NBRunnerInitializationError(
                "NBRunner was called inside a running task: define the flow in a cell of its "
                "own and call NBRunner from another cell"
            )
        if not inspect.isclass(flow):
            raise NBRunnerInitializationError("NBRunner expects the flow class, not %r" % (flow,))
        self.flow = flow
        source = flow_source(flow)
        self._dir = tempfile.mkdtemp(prefix="flowc-nbrunner-")
        self.flow_file = os.path.join(self._dir, "%s.py" % flow.__name__)
        with open(self.flow_file, "w", encoding="utf-8") as handle:
            handle.write(source)
        kwargs.setdefault("flow", flow.__name__)
        self.runner = Runner(
            self.flow_file,
            show_output=show_output,
            profile=profile,
            env=env,
            cwd=base_dir or os.getcwd(),
            file_read_timeout=file_read_timeout,
            **kwargs,
        )

    def nbrun(self, **kwargs):
        """Runs the flow, waits, cleans up and returns the finished client `Run`."""
        try:
            return self.runner.run(**kwargs).run
        finally:
            self.cleanup()

    def nbresume(self, **kwargs):
        """Resumes the latest run (or `origin_run_id`), waits and returns the new `Run`."""
        try:
            return self.runner.resume(**kwargs).run
        finally:
            self.cleanup()

    def run(self, **kwargs):
        return self.runner.run(**kwargs)

    def resume(self, **kwargs):
        return self.runner.resume(**kwargs)

    def async_run(self, **kwargs):
        return self.runner.async_run(**kwargs)

    def async_resume(self, **kwargs):
        return self.runner.async_resume(**kwargs)

    def cleanup(self):
        """Stops a run still going and removes the temporary flow file and logs."""
        self.runner.cleanup()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.cleanup()
