"""flowc's Metaflow compatibility package: what `from metaflow import ...` gives a flow run by flowc.

flowc puts this package first on the task's PYTHONPATH, so a flow written for Metaflow
runs unchanged whether or not Metaflow is installed. It holds only what a running step
uses, and imports nothing heavy, because every task pays for its import.
"""

from .decorators import (
    batch,
    card,
    catch,
    conda,
    conda_base,
    environment,
    exit_hook,
    kubernetes,
    parallel,
    project,
    pypi,
    pypi_base,
    resources,
    retry,
    schedule,
    secrets,
    step,
    timeout,
    trigger,
    trigger_on_finish,
    uv,
    uv_base,
)
from .exception import MetaflowException
from .flowspec import FlowSpec
from .metaflow_current import current
from .parameters import IncludeFile, JSONType, Parameter

__version__ = "flowc"

__all__ = [
    "FlowSpec",
    "IncludeFile",
    "JSONType",
    "MetaflowException",
    "Parameter",
    "batch",
    "card",
    "catch",
    "conda",
    "conda_base",
    "current",
    "environment",
    "exit_hook",
    "kubernetes",
    "parallel",
    "project",
    "pypi",
    "pypi_base",
    "resources",
    "retry",
    "schedule",
    "secrets",
    "step",
    "timeout",
    "trigger",
    "trigger_on_finish",
    "uv",
    "uv_base",
]
