"""The errors the client raises: Metaflow's names for lookups that fail, and flowc's own
for a datastore whose files are missing or damaged.

Every message names the object or the file concerned, so a notebook user sees what is
wrong without reading a traceback through the client's code.
"""

from ..exception import (  # noqa: F401  (re-exported: Metaflow's client exports them)
    MetaflowDataMissing,
    MetaflowException,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
)


class CorruptMetadataError(MetaflowException):
    """A metadata file (`run.json`, `task.json`, `manifest.json`) is missing or damaged.

    `path` is the file; the message says what is wrong with it.
    """

    headline = "Corrupt metadata"

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__("metadata file `%s` %s" % (self.path, problem))


class DatastoreError(MetaflowException):
    """The datastore cannot be used at all (no such directory, a newer layout, ...)."""

    headline = "Datastore error"
