"""flowc's Metaflow compatibility package: what `from metaflow import ...` gives a flow run by flowc.

flowc puts this package first on the task's PYTHONPATH, so a flow written for Metaflow
runs unchanged whether or not Metaflow is installed. It holds only what a running step
uses, and imports nothing heavy, because every task pays for its import: the client (`Flow`,
`Run`, ...) and the Runner API (`Runner`, `NBRunner`) are imported on first use, through
the module `__getattr__` below, not when a task imports `metaflow`.
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

# Names imported on first access: name -> submodule that defines it.
_LAZY = {
    "CorruptMetadataError": "metaflow.client",
    "DataArtifact": "metaflow.client",
    "DatastoreError": "metaflow.client",
    "Flow": "metaflow.client",
    "Metaflow": "metaflow.client",
    "MetaflowData": "metaflow.client",
    "MetaflowDataMissing": "metaflow.client",
    "MetaflowInvalidPathspec": "metaflow.client",
    "MetaflowNamespaceMismatch": "metaflow.client",
    "MetaflowNotFound": "metaflow.client",
    "Run": "metaflow.client",
    "Step": "metaflow.client",
    "Task": "metaflow.client",
    "default_metadata": "metaflow.client",
    "default_namespace": "metaflow.client",
    "get_datastore_root": "metaflow.client",
    "get_metadata": "metaflow.client",
    "get_namespace": "metaflow.client",
    "metadata": "metaflow.client",
    "namespace": "metaflow.client",
    "set_datastore_root": "metaflow.client",
    "ExecutingRun": "metaflow.runner",
    "FlowcRunnerError": "metaflow.runner",
    "NBRunner": "metaflow.runner",
    "NBRunnerInitializationError": "metaflow.runner",
    "Runner": "metaflow.runner",
}


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError("module 'metaflow' has no attribute %r" % name)
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY) + [
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
