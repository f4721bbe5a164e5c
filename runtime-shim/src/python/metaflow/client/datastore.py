"""Read-only access to a flowc datastore: where it is, its metadata files and its blobs.

The layout is the one `docs/datastore.md` describes (layout version 1):

    <root>/<Flow>/runs/<run>/run.json
    <root>/<Flow>/runs/<run>/<step>/<task>/task.json, manifest.json, attempt-<n>.stdout|stderr
    <root>/<Flow>/data/<hh>/<sha256>          one zstd frame; the name hashes the plain bytes

Metadata is plain JSON and read directly. Artifact bytes are decompressed here with the
`zstandard` module when it is importable (checking the SHA-256 the blob is named by),
otherwise `flowc artifact get PATH NAME --raw` does it, so the client works with nothing
installed but the `flowc` binary.

Nothing in this module writes to the store: the runtime (Rust) is its only writer.
"""

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess

from .exceptions import (
    CorruptMetadataError,
    DatastoreError,
    MetaflowDataMissing,
    MetaflowInvalidPathspec,
)

ROOT_ENV_VAR = "FLOWC_DATASTORE_ROOT"
BIN_ENV_VAR = "FLOWC_BIN"
# Set to a non-empty value other than "0" to read artifacts through `flowc artifact get`
# even when `zstandard` is importable (the path a machine without the module takes).
USE_CLI_ENV_VAR = "FLOWC_CLIENT_USE_CLI"
LAYOUT_VERSION = 1

_root_override = None

# The name rules of the store (`docs/datastore.md`, "Names"); checking them before a
# name is joined onto a path keeps `Run('F/../../etc')` from reading outside the store.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_HASH = re.compile(r"[0-9a-f]{64}\Z")
_RULES = {
    "flow name": (_IDENTIFIER, "letters, digits and `_`, not starting with a digit"),
    "step name": (_IDENTIFIER, "letters, digits and `_`, not starting with a digit"),
    "artifact name": (_IDENTIFIER, "letters, digits and `_`, not starting with a digit"),
    "run id": (_ID, "letters, digits, `_`, `.` and `-`, starting with a letter, digit or `_`"),
    "task id": (_ID, "letters, digits, `_`, `.` and `-`, starting with a letter, digit or `_`"),
}


def check_name(kind, value):
    """Returns `value` if it is a valid `kind` of name, else raises MetaflowInvalidPathspec."""
    pattern, rule = _RULES[kind]
    if not isinstance(value, str) or not value or len(value.encode()) > 200 or not pattern.match(value):
        raise MetaflowInvalidPathspec("invalid %s %r: it must be 1 to 200 %s" % (kind, value, rule))
    return value


def set_datastore_root(path):
    """Makes the client read the datastore at `path`; `None` goes back to the default.

    The default is resolved as `flowc` does: `$FLOWC_DATASTORE_ROOT`, else `.flowc` in the
    working directory. Returns the root now in use.
    """
    global _root_override
    _root_override = None if path is None or str(path) == "" else _absolute(os.fspath(path))
    return get_datastore_root()


def _absolute(root):
    # An S3 root is kept as given, as flowc does; it is refused when used (Datastore).
    return root if root.startswith("s3://") else os.path.abspath(root)


def get_datastore_root():
    """The absolute path of the datastore the client reads."""
    if _root_override is not None:
        return _root_override
    env = os.environ.get(ROOT_ENV_VAR)
    if env:
        return _absolute(env)
    return os.path.join(os.getcwd(), ".flowc")


def flowc_binary():
    """The `flowc` executable: `$FLOWC_BIN`, else `flowc` on PATH; None when neither exists."""
    configured = os.environ.get(BIN_ENV_VAR)
    if configured:
        return configured
    return shutil.which("flowc")


def _describe_json_error(err):
    return "is not valid JSON (line %d, column %d: %s)" % (err.lineno, err.colno, err.msg)


class Datastore:
    """One datastore root, read directly from the file system."""

    def __init__(self, root):
        if root.startswith("s3://"):
            raise DatastoreError(
                "the datastore `%s` is in S3, and this client reads datastores on the local "
                "file system only; copy it to a directory (e.g. `aws s3 sync %s ./store`) and "
                "point the client there with set_datastore_root" % (root, root)
            )
        self.root = root
        self._checked = False

    # -- paths ----------------------------------------------------------------------

    def flow_dir(self, flow):
        return os.path.join(self.root, flow)

    def runs_dir(self, flow):
        return os.path.join(self.root, flow, "runs")

    def run_dir(self, flow, run_id):
        return os.path.join(self.root, flow, "runs", run_id)

    def step_dir(self, flow, run_id, step):
        return os.path.join(self.root, flow, "runs", run_id, step)

    def task_dir(self, flow, run_id, step, task_id):
        return os.path.join(self.root, flow, "runs", run_id, step, task_id)

    def blob_path(self, flow, sha):
        return os.path.join(self.root, flow, "data", sha[:2], sha)

    # -- the layout marker ------------------------------------------------------------

    def check_layout(self):
        """Refuses a datastore written in a newer layout than this client reads."""
        if self._checked:
            return
        marker = os.path.join(self.root, ".flowc-format")
        try:
            with open(marker, "rb") as handle:
                doc = json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            # No marker: either no datastore at all (lookups then report "not found",
            # naming the root) or an empty directory. Nothing to refuse.
            self._checked = True
            return
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise DatastoreError("cannot read the datastore marker `%s`: %s" % (marker, err)) from None
        version = doc.get("layout_version") if isinstance(doc, dict) else None
        if not isinstance(version, int):
            raise DatastoreError("the datastore marker `%s` has no layout_version" % marker)
        if version > LAYOUT_VERSION:
            raise DatastoreError(
                "datastore layout version %d in `%s` is newer than this client supports "
                "(version %d); upgrade flowc to read this datastore" % (version, marker, LAYOUT_VERSION)
            )
        self._checked = True

    # -- listings ---------------------------------------------------------------------

    @staticmethod
    def _subdirs(path):
        """Names of the subdirectories of `path` not starting with `.` (store-internal)."""
        try:
            with os.scandir(path) as entries:
                return [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as err:
            raise DatastoreError("cannot list `%s`: %s" % (path, err)) from None

    def flows(self):
        self.check_layout()
        return sorted(
            name for name in self._subdirs(self.root)
            if _IDENTIFIER.match(name) and os.path.isdir(self.runs_dir(name))
        )

    def has_flow(self, flow):
        self.check_layout()
        return os.path.isdir(self.runs_dir(flow))

    def run_ids(self, flow):
        """Ids of the runs of `flow` that have a `run.json`, in no particular order."""
        self.check_layout()
        runs = self.runs_dir(flow)
        return [
            name for name in self._subdirs(runs)
            if _ID.match(name) and os.path.isfile(os.path.join(runs, name, "run.json"))
        ]

    def step_names(self, flow, run_id):
        run = self.run_dir(flow, run_id)
        return [name for name in self._subdirs(run) if _IDENTIFIER.match(name)]

    def task_ids(self, flow, run_id, step):
        step_dir = self.step_dir(flow, run_id, step)
        return [
            name for name in self._subdirs(step_dir)
            if _ID.match(name) and os.path.isfile(os.path.join(step_dir, name, "task.json"))
        ]

    # -- metadata ---------------------------------------------------------------------

    def read_json(self, path):
        """The parsed JSON object in `path`; None if the file does not exist.

        A file that cannot be read or parsed, or that holds something else than a JSON
        object, raises CorruptMetadataError naming it.
        """
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CorruptMetadataError(path, "cannot be read: %s" % err) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptMetadataError(path, "is not UTF-8 text: %s" % err) from None
        return self._parse_text(path, text)

    @staticmethod
    def _parse_text(path, text):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise CorruptMetadataError(path, _describe_json_error(err)) from None
        if not isinstance(doc, dict):
            raise CorruptMetadataError(path, "holds %s instead of a JSON object" % type(doc).__name__)
        return doc

    def read_run(self, flow, run_id):
        """`run.json` of a run, checked; None if it does not exist.

        `flow_ir` (most of the file) is not parsed here: the document holds it as a
        `LazyJson` that parses on first use, so listing many runs costs little more
        than reading their files (see `_split_flow_ir`).
        """
        path = os.path.join(self.run_dir(flow, run_id), "run.json")
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CorruptMetadataError(path, "cannot be read: %s" % err) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptMetadataError(path, "is not UTF-8 text: %s" % err) from None
        head, flow_ir = _split_flow_ir(text)
        doc = None
        if flow_ir is not None:
            try:
                doc = json.loads(head)
            except json.JSONDecodeError:
                doc = None  # not the layout expected: parse the whole file below
        if isinstance(doc, dict):
            doc["flow_ir"] = LazyJson(path, flow_ir)
        else:
            doc = self._parse_text(path, text)
        _expect(doc, path, "flow", str, flow)
        _expect(doc, path, "run_id", str, run_id)
        _expect(doc, path, "status", str)
        _expect(doc, path, "created_at_unix_ms", int)
        _optional(doc, path, "finished_at_unix_ms", int)
        _optional(doc, path, "parameters", dict)
        _optional(doc, path, "origin_run_id", str)
        _optional(doc, path, "tags", list)
        _optional(doc, path, "system_tags", list)
        _optional(doc, path, "user", str)
        return doc

    def read_task(self, flow, run_id, step, task_id):
        path = os.path.join(self.task_dir(flow, run_id, step, task_id), "task.json")
        doc = self.read_json(path)
        if doc is None:
            return None
        _expect(doc, path, "flow", str, flow)
        _expect(doc, path, "run_id", str, run_id)
        _expect(doc, path, "step", str, step)
        _expect(doc, path, "task_id", str, task_id)
        _expect(doc, path, "status", str)
        _optional(doc, path, "parents", list)
        _optional(doc, path, "attempts", list)
        _optional(doc, path, "origin", dict)
        for index, attempt in enumerate(doc.get("attempts") or []):
            where = "attempts[%d]" % index
            if not isinstance(attempt, dict):
                raise CorruptMetadataError(path, "has a malformed `%s` (not an object)" % where)
            for key in ("attempt", "started_at_unix_ms"):
                if not isinstance(attempt.get(key), int) or isinstance(attempt.get(key), bool):
                    raise CorruptMetadataError(path, "has no integer `%s.%s`" % (where, key))
            finished = attempt.get("finished_at_unix_ms")
            if finished is not None and (not isinstance(finished, int) or isinstance(finished, bool)):
                raise CorruptMetadataError(path, "has a non-integer `%s.finished_at_unix_ms`" % where)
        for index, parent in enumerate(doc.get("parents") or []):
            if not isinstance(parent, dict) or not isinstance(parent.get("step"), str) \
                    or not isinstance(parent.get("task_id"), str):
                raise CorruptMetadataError(path, "has a malformed `parents[%d]`" % index)
        origin = doc.get("origin")
        if origin is not None and not (
            isinstance(origin.get("run_id"), str) and isinstance(origin.get("task_id"), str)
        ):
            raise CorruptMetadataError(path, "has a malformed `origin`")
        return doc

    def read_manifest(self, flow, run_id, step, task_id, task_status):
        """The `artifacts` map of a task's manifest.

        A task that succeeded must have one (the runtime writes the manifest first); a
        task still running or failed may not, and then has no artifacts.
        """
        path = os.path.join(self.task_dir(flow, run_id, step, task_id), "manifest.json")
        doc = self.read_json(path)
        if doc is None:
            if task_status == "succeeded":
                raise CorruptMetadataError(
                    path,
                    "is missing, but task %s/%s/%s/%s is marked succeeded; the datastore is "
                    "damaged: re-run the flow (or `flowc resume` from this step)"
                    % (flow, run_id, step, task_id),
                )
            return {}
        artifacts = doc.get("artifacts")
        if not isinstance(artifacts, dict):
            raise CorruptMetadataError(path, "has no `artifacts` object")
        for name, entry in artifacts.items():
            if not isinstance(entry, dict):
                raise CorruptMetadataError(path, "has a malformed entry for artifact `%s`" % name)
            sha = entry.get("hash")
            if not isinstance(sha, str) or not _HASH.match(sha):
                raise CorruptMetadataError(path, "has an invalid hash for artifact `%s`" % name)
            if not _IDENTIFIER.match(name):
                raise CorruptMetadataError(path, "names an invalid artifact %r" % name)
        return artifacts

    def read_log(self, flow, run_id, step, task_id, attempt, stream):
        path = os.path.join(self.task_dir(flow, run_id, step, task_id), "attempt-%d.%s" % (attempt, stream))
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return b""
        except OSError as err:
            raise DatastoreError("cannot read the log `%s`: %s" % (path, err)) from None

    def log_size(self, flow, run_id, step, task_id, attempt, stream):
        path = os.path.join(self.task_dir(flow, run_id, step, task_id), "attempt-%d.%s" % (attempt, stream))
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    # -- artifacts --------------------------------------------------------------------

    def load_value(self, flow, task_pathspec, name, entry):
        """The value of artifact `name` of the task at `task_pathspec`, described by `entry`."""
        data = self.load_bytes(flow, task_pathspec, name, entry)
        encoding = entry.get("encoding") or ""
        what = "artifact `%s` of task %s (%s)" % (name, task_pathspec, entry.get("type", "unknown type"))
        if encoding.startswith("pickle"):
            try:
                return pickle.loads(data)
            except Exception as err:
                raise MetaflowDataMissing(
                    "%s could not be unpickled: %s: %s (the class it holds must be importable here)"
                    % (what, type(err).__name__, err)
                ) from err
        if encoding == "json":
            try:
                return json.loads(data.decode("utf-8"))
            except ValueError as err:
                raise MetaflowDataMissing("%s is not valid JSON: %s" % (what, err)) from None
        raise MetaflowDataMissing("%s has encoding %r, which this client cannot read" % (what, encoding))

    def load_bytes(self, flow, task_pathspec, name, entry):
        sha = entry["hash"]
        zstandard = None if _use_cli() else _zstandard()
        if zstandard is not None:
            return self._read_blob(flow, sha, zstandard)
        return self._read_blob_with_cli(task_pathspec, name, sha)

    def _read_blob(self, flow, sha, zstandard):
        path = self.blob_path(flow, sha)
        digest = hashlib.sha256()
        out = bytearray()
        try:
            with open(path, "rb") as handle:
                reader = zstandard.ZstdDecompressor().stream_reader(handle)
                while True:
                    chunk = reader.read(1 << 20)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out += chunk
        except FileNotFoundError:
            raise MetaflowDataMissing(
                "blob %s of flow %s not found (looked for `%s`)" % (sha, flow, path)
            ) from None
        except (OSError, zstandard.ZstdError) as err:
            raise MetaflowDataMissing(
                "blob `%s` is corrupt (%s); delete it and re-run the task that produced it" % (path, err)
            ) from None
        actual = digest.hexdigest()
        if actual != sha:
            raise MetaflowDataMissing(
                "blob `%s` is corrupt: its content hashes to %s, not %s; delete it and re-run "
                "the task that produced it" % (path, actual, sha)
            )
        return bytes(out)

    def _read_blob_with_cli(self, task_pathspec, name, sha):
        binary = flowc_binary()
        if binary is None:
            raise MetaflowDataMissing(
                "cannot read artifact `%s` of task %s: the `zstandard` module is not installed "
                "and no `flowc` binary was found (install zstandard, put flowc on PATH or set %s)"
                % (name, task_pathspec, BIN_ENV_VAR)
            )
        env = dict(os.environ)
        env[ROOT_ENV_VAR] = self.root
        try:
            done = subprocess.run(
                [binary, "artifact", "get", task_pathspec, name, "--raw"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
        except OSError as err:
            raise MetaflowDataMissing("cannot start `%s`: %s" % (binary, err)) from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip()
            raise MetaflowDataMissing(
                "`flowc artifact get %s %s --raw` failed (exit status %d): %s"
                % (task_pathspec, name, done.returncode, message or "no message")
            )
        data = done.stdout
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise MetaflowDataMissing(
                "`flowc artifact get %s %s --raw` returned bytes hashing to %s, not %s"
                % (task_pathspec, name, actual, sha)
            )
        return data


_FLOW_IR_KEY = ',\n  "flow_ir": '


def _split_flow_ir(text):
    """Splits the text of a `run.json` into (the document without `flow_ir`, the text of
    `flow_ir`), or (text, None) when the file is not laid out as flowc writes it.

    flowc writes metadata pretty-printed with two-space indentation, and JSON strings
    cannot hold a raw newline, so a line starting with exactly two spaces and a quote is
    always a top-level key, and a line `}` the end of the document. The `flow_ir` value
    therefore runs from its key to the next such line, found with two `str.find` calls
    instead of parsing the IR (which is most of the file) on every listing.
    """
    start = text.find(_FLOW_IR_KEY)
    if start < 0:
        return text, None
    value_start = start + len(_FLOW_IR_KEY)
    ends = [i for i in (text.find('\n  "', value_start), text.find("\n}", value_start)) if i >= 0]
    if not ends:
        return text, None
    end = min(ends)
    value = text[value_start:end].rstrip()
    rest = text[end:]
    if rest.startswith('\n  "'):
        # The comma that followed the IR now separates the keys around it.
        if not value.endswith(","):
            return text, None
        value = value[:-1]
        return text[:start] + "," + rest, value
    return text[:start] + rest, value


class LazyJson:
    """A JSON value kept as text until asked for (`value()`), then parsed once."""

    def __init__(self, path, text):
        self._path = path
        self._text = text
        self._value = None
        self._parsed = False

    def value(self):
        if not self._parsed:
            try:
                self._value = json.loads(self._text)
            except json.JSONDecodeError as err:
                raise CorruptMetadataError(self._path, "has an invalid `flow_ir`: %s" % err.msg) from None
            self._parsed = True
        return self._value


def flow_ir(doc):
    """The `flow_ir` object of a run document (parsing it now if it was deferred)."""
    value = doc.get("flow_ir")
    if isinstance(value, LazyJson):
        value = value.value()
    return value if isinstance(value, dict) else {}


def _use_cli():
    value = os.environ.get(USE_CLI_ENV_VAR, "")
    return value not in ("", "0")


def _zstandard():
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def _expect(doc, path, key, kind, equal=None):
    value = doc.get(key)
    if key not in doc:
        raise CorruptMetadataError(path, "has no `%s` field" % key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CorruptMetadataError(path, "has a `%s` that is not %s" % (key, _KIND_NAMES[kind]))
    if equal is not None and value != equal:
        raise CorruptMetadataError(
            path, "describes %s %r but is stored as %r" % (key.replace("_", " "), value, equal)
        )


def _optional(doc, path, key, kind):
    if doc.get(key) is not None:
        _expect(doc, path, key, kind)


_KIND_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "a list"}
