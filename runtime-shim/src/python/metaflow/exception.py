"""Exceptions of the flowc compatibility package (what `metaflow.exception` offers flows)."""


class MetaflowException(Exception):
    """Base class of the errors this package raises for a flow's misuse of the API."""

    headline = "Flow failed"

    def __init__(self, msg="", lineno=None, source_file=None):
        self.message = msg
        self.line_no = lineno
        self.source_file = source_file
        super().__init__(msg)

    def __str__(self):
        return self.message


class InvalidNextException(MetaflowException):
    headline = "Invalid self.next() transition detected"


class MergeArtifactsException(MetaflowException):
    headline = "Unable to merge artifacts"

    def __init__(self, msg, names):
        super().__init__(msg)
        self.artifact_names = list(names)


class UnhandledInMergeArtifactsException(MergeArtifactsException):
    headline = "Unhandled artifacts in merge"


class MissingInMergeArtifactsException(MergeArtifactsException):
    headline = "Missing artifacts in merge"


class MetaflowNotFound(MetaflowException):
    """The flow, run, step, task or artifact a pathspec names does not exist."""

    headline = "Object not found"


class MetaflowNamespaceMismatch(MetaflowException):
    """The object exists but is outside the current namespace."""

    headline = "Object not in the current namespace"

    def __init__(self, namespace):
        self.namespace = namespace
        super().__init__(
            "object not in namespace '%s'; call namespace(None) to see objects of every namespace"
            % (namespace,)
        )


class MetaflowInvalidPathspec(MetaflowException):
    """A pathspec with the wrong number of parts, or a part that is not a valid name."""

    headline = "Invalid pathspec"


class MetaflowDataMissing(MetaflowException):
    """An artifact's stored bytes are gone, or cannot be decoded into a value."""

    headline = "Data missing"


class MetaflowExceptionWrapper(Exception):
    """A picklable record of an exception: what `@catch(var=...)` stores.

    The original exception may not be picklable (it can hold sockets, locks, ...), so
    only its type name, message and formatted traceback are kept.
    """

    def __init__(self, exc=None, stacktrace=None):
        super().__init__()
        if exc is not None:
            self.exception = str(exc)
            self.type = "%s.%s" % (type(exc).__module__, type(exc).__name__)
            self.stacktrace = stacktrace
        else:
            self.exception = None
            self.type = None
            self.stacktrace = stacktrace

    # Exception's own pickling passes `args` to __init__; keep the state in __dict__ instead.
    def __reduce__(self):
        return MetaflowExceptionWrapper, (), self.__dict__

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        return "MetaflowExceptionWrapper(%s: %s)" % (self.type, self.exception)

    def __str__(self):
        if self.stacktrace:
            return self.stacktrace
        return "%s: %s" % (self.type, self.exception)
