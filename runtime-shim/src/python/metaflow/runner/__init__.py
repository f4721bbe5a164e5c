"""The Runner API: start flows from Python and get the client `Run` back.

`Runner('flow.py')` runs a flow file through the `flowc` binary; `NBRunner(FlowClass)`
runs a flow defined in a notebook cell. See `docs/client.md`.
"""

from .metaflow_runner import ExecutingRun, FlowcRunnerError, Runner
from .nbrun import NBRunner, NBRunnerInitializationError

__all__ = [
    "ExecutingRun",
    "FlowcRunnerError",
    "NBRunner",
    "NBRunnerInitializationError",
    "Runner",
]
