"""The client API: read runs, steps, tasks, artifacts and logs from a flowc datastore.

    from metaflow import Flow, namespace
    run = Flow('TrainFlow').latest_successful_run
    run['train'].task.data.model

The names and behaviour follow Metaflow's client (`metaflow.client`); `docs/client.md`
lists where flowc differs. The datastore is the one `flowc run` writes:
`$FLOWC_DATASTORE_ROOT`, else `.flowc` in the working directory, or whatever
`set_datastore_root(path)` (or `metadata('local@path')`) chose.
"""

from .core import (
    DataArtifact,
    Flow,
    Metaflow,
    MetaflowData,
    Run,
    Step,
    Task,
    default_metadata,
    default_namespace,
    get_datastore_root,
    get_metadata,
    get_namespace,
    metadata,
    namespace,
    set_datastore_root,
)
from .exceptions import (
    CorruptMetadataError,
    DatastoreError,
    MetaflowDataMissing,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
)

__all__ = [
    "CorruptMetadataError",
    "DataArtifact",
    "DatastoreError",
    "Flow",
    "Metaflow",
    "MetaflowData",
    "MetaflowDataMissing",
    "MetaflowInvalidPathspec",
    "MetaflowNamespaceMismatch",
    "MetaflowNotFound",
    "Run",
    "Step",
    "Task",
    "default_metadata",
    "default_namespace",
    "get_datastore_root",
    "get_metadata",
    "get_namespace",
    "metadata",
    "namespace",
    "set_datastore_root",
]
