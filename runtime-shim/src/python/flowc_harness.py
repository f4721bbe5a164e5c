"""The flowc task harness: runs one step of a flow inside the process flowc-shim starts.

flowc-shim starts `python3 -c 'import flowc_harness; flowc_harness.main()'` with this
file's directory first on PYTHONPATH and a control channel (a socket) on the fd named
by FLOWC_CONTROL_FD. The user's stdout and stderr are the process's own and pass
through untouched; everything else goes over the channel as frames:

    u32 header length | u64 body length | header (JSON object) | body (raw bytes)

The shim sends `init` first. The harness then asks for artifacts by hash (`get`,
answered by `chunk` frames and an `end` frame), streams pickled values to the shim
(`put_begin`, `put_chunk`..., `put_end`, answered by `stored` with the content hash),
and ends with one `done` frame that describes the task's outcome. docs/runtime.md
describes every message.

Only the standard library's cheap modules are imported up front: every task pays
for this import, and tracebacks are formatted only when something fails.
"""

import json
import os
import pickle
import struct
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_PREFIX = struct.Struct(">IQ")
_CHUNK = 1 << 20
_PICKLE_PROTOCOL = 4
# Values of these types cannot change in place, so one loaded from a parent and left
# alone is passed on by its hash instead of being pickled again.
_IMMUTABLE = (bool, int, float, complex, str, bytes, type(None))
_PARAMETERS_STEP = "_parameters"


class ShimError(Exception):
    """The shim reported an error, or the control channel broke."""


class StepError(Exception):
    """A user-facing error found by the harness itself (not raised by user code)."""


class Channel:
    """The framed control channel to flowc-shim."""

    def __init__(self, fd):
        self._fd = fd
        self._buf = bytearray()

    def send(self, header, body=b""):
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        self._write(_PREFIX.pack(len(raw), len(body)) + raw)
        if len(body):
            self._write(body)

    def recv(self):
        header_len, body_len = _PREFIX.unpack(self._take(_PREFIX.size))
        header = json.loads(self._take(header_len))
        body = self._take(body_len) if body_len else b""
        if header.get("op") == "error":
            raise ShimError(header.get("message", "unknown error"))
        return header, body

    def request(self, header, body=b""):
        self.send(header, body)
        return self.recv()

    def _write(self, data):
        view = memoryview(data)
        while len(view):
            written = os.write(self._fd, view)
            view = view[written:]

    def _take(self, count):
        buf = self._buf
        while len(buf) < count:
            chunk = os.read(self._fd, max(count - len(buf), 65536))
            if not chunk:
                raise ShimError("flowc-shim closed the control channel")
            buf += chunk
        data = bytes(buf[:count])
        del buf[:count]
        return data


class _BlobReader:
    """A file-like view of one `get` reply, so pickle can load without the whole blob in one piece."""

    def __init__(self, channel):
        self._channel = channel
        self._chunk = b""
        self._pos = 0
        self._ended = False

    def _refill(self):
        while not self._ended and self._pos >= len(self._chunk):
            header, body = self._channel.recv()
            op = header.get("op")
            if op == "chunk":
                self._chunk, self._pos = body, 0
            elif op == "end":
                self._ended = True
                if not header.get("ok", False):
                    raise ShimError(header.get("message", "artifact could not be read"))
            else:
                raise ShimError("unexpected %r frame while reading an artifact" % op)
        return self._pos < len(self._chunk)

    def read(self, size=-1):
        parts = []
        while size != 0 and self._refill():
            end = len(self._chunk) if size < 0 else min(len(self._chunk), self._pos + size)
            parts.append(self._chunk[self._pos:end])
            if size > 0:
                size -= end - self._pos
            self._pos = end
        return b"".join(parts)

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._refill():
            take = min(len(view) - filled, len(self._chunk) - self._pos)
            view[filled:filled + take] = self._chunk[self._pos:self._pos + take]
            self._pos += take
            filled += take
        return filled

    def readline(self):
        parts = []
        while self._refill():
            newline = self._chunk.find(b"\n", self._pos)
            end = len(self._chunk) if newline < 0 else newline + 1
            parts.append(self._chunk[self._pos:end])
            self._pos = end
            if newline >= 0:
                break
        return b"".join(parts)

    def drain(self):
        while self._refill():
            self._pos = len(self._chunk)


class _PutWriter:
    """A file-like sink that streams what pickle writes to the shim in bounded chunks."""

    def __init__(self, channel):
        self._channel = channel
        self._buf = bytearray()

    def write(self, data):
        size = len(data)
        if size >= _CHUNK:
            # Large buffers (numpy arrays, bytes) go out as they are, never copied whole.
            self.flush()
            view = memoryview(data).cast("B")
            for start in range(0, len(view), _CHUNK):
                self._channel.send({"op": "put_chunk"}, view[start:start + _CHUNK])
        else:
            self._buf += data
            if len(self._buf) >= _CHUNK:
                self.flush()
        return size

    def flush(self):
        if self._buf:
            self._channel.send({"op": "put_chunk"}, self._buf)
            self._buf = bytearray()


def _type_name(value):
    kind = type(value)
    return "%s.%s" % (kind.__module__, kind.__qualname__)


class Store:
    """Artifact access through the shim: lazy loads by hash, streamed saves."""

    def __init__(self, channel):
        self._channel = channel

    def load(self, name, entry):
        self._channel.send({"op": "get", "hash": entry["hash"]})
        reader = _BlobReader(self._channel)
        try:
            value = pickle.Unpickler(reader).load()
        except ShimError as exc:
            raise StepError("artifact `%s` could not be read: %s" % (name, exc)) from None
        except Exception as exc:
            reader.drain()
            raise StepError(
                "artifact `%s` (%s) could not be unpickled: %s: %s"
                % (name, entry.get("type", "unknown type"), type(exc).__name__, exc)
            ) from None
        reader.drain()
        return value

    def save(self, name, value):
        self._channel.send({"op": "put_begin", "name": name})
        writer = _PutWriter(self._channel)
        try:
            pickle.Pickler(writer, protocol=_PICKLE_PROTOCOL).dump(value)
            writer.flush()
        except Exception as exc:
            self._channel.request({"op": "put_abort"})
            raise StepError(
                "artifact `%s` of type %s cannot be pickled: %s"
                % (name, _type_name(value), exc)
            ) from None
        header, _ = self._channel.request({"op": "put_end", "type": _type_name(value)})
        return {"hash": header["hash"], "type": header["type"], "size": header["size"]}


# -- loading the user's code ---------------------------------------------------------


def _place_flow_dir(flow_dir):
    """Makes the flow's own directory importable, after this package's directory.

    `python -c` puts the working directory first on sys.path; replacing it keeps a
    stray `metaflow/` directory there from shadowing the compatibility package.
    """
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    try:
        position = sys.path.index(_HERE) + 1
    except ValueError:
        position = 0
    sys.path.insert(position, flow_dir)


def _load_flow_file(path):
    """Executes the flow file as `__main__`, as `python flow.py` would, up to `Flow()`."""
    import builtins

    from metaflow import flowspec

    path = os.path.abspath(path)
    with open(path, "rb") as handle:
        source = handle.read()
    module = type(sys)("__main__")
    module.__file__ = path
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv = [path]
    code = compile(source, path, "exec")
    flowspec._LOADING_FLOW_FILE = True
    try:
        exec(code, module.__dict__)
    except flowspec.FlowFileLoaded:
        pass
    finally:
        flowspec._LOADING_FLOW_FILE = False
    return module


def _find_flow_class(module, flow_name, flow_file):
    from metaflow.flowspec import FlowSpec

    cls = module.__dict__.get(flow_name)
    if isinstance(cls, type) and issubclass(cls, FlowSpec) and cls is not FlowSpec:
        return cls
    raise StepError("flow file %s defines no FlowSpec subclass named `%s`" % (flow_file, flow_name))


def _find_step(cls, step_name):
    func = getattr(cls, step_name, None)
    if not callable(func) or not getattr(func, "is_step", False):
        raise StepError("flow `%s` has no step `%s`" % (cls.__name__, step_name))
    return func


def _takes_inputs(func):
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    code = getattr(func, "__code__", None)
    return code is not None and code.co_argcount >= 2


def _is_internal(filename):
    return os.path.abspath(filename).startswith(_HERE + os.sep)


def _format_user_traceback(exc):
    """The traceback of `exc` with the harness's and this package's frames left out."""
    import traceback

    exc_type = type(exc)
    summary = traceback.TracebackException(exc_type, exc, exc.__traceback__)
    pending = [summary]
    seen = set()
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.stack = traceback.StackSummary.from_list(
            [frame for frame in item.stack if not _is_internal(frame.filename)]
        )
        pending.append(item.__cause__)
        pending.append(item.__context__)
    return "".join(summary.format())


# -- parameters (the `_parameters` task) ---------------------------------------------


def _username():
    for var in ("METAFLOW_USER", "USER", "USERNAME", "LOGNAME", "SUDO_USER"):
        value = os.environ.get(var)
        if value:
            return value
    return None


def _resolve_parameters(cls, values, username):
    from metaflow.parameters import flow_parameters

    params = flow_parameters(cls)
    lookup = {}
    for attr, param in params:
        for key in (param.name, param.name.replace("-", "_"), attr):
            lookup.setdefault(key, attr)
    unknown = sorted(key for key in values if key not in lookup)
    if unknown:
        raise StepError(
            "flow `%s` has no parameter %s (its parameters: %s)"
            % (
                cls.__name__,
                ", ".join("`%s`" % key for key in unknown),
                ", ".join("`%s`" % param.name for _, param in params) or "none",
            )
        )
    given = {lookup[key]: value for key, value in values.items()}
    resolved = []
    for attr, param in params:
        if attr in given:
            value = param._convert(given[attr])
        elif param.required:
            raise StepError("parameter `%s` is required but has no value" % param.name)
        else:
            value = param._resolve_default(cls.__name__, username)
        resolved.append((attr, value))
    return resolved


def _run_init(channel, store, init):
    flow_file = init["flow_file"]
    try:
        module = _load_flow_file(flow_file)
        cls = _find_flow_class(module, init["flow"], flow_file)
        values = init.get("params") or {}
        if not isinstance(values, dict):
            raise StepError("parameter values must be a JSON object")
        table = {}
        for attr, value in _resolve_parameters(cls, values, _username()):
            table[attr] = store.save(attr, value)
    except (StepError, ShimError) as exc:
        sys.stderr.write("parameters of the run could not be set: %s\n" % exc)
        return _finish(channel, "failed", {}, None, [], exc)
    except Exception as exc:
        sys.stderr.write("parameters of the run could not be set:\n" + _format_user_traceback(exc))
        return _finish(channel, "failed", {}, None, [], exc)
    return _finish(channel, "ok", table, None, [], None)


# -- one step ------------------------------------------------------------------------


def _foreach_stack(step_name, is_join, inputs, split_index):
    """The foreach frames of this task, from its parents' frames (Metaflow's rules)."""
    if not inputs:
        return []
    stacks = [list(inp.get("foreach_stack") or []) for inp in inputs]
    if is_join:
        first = stacks[0]
        tops = {stack[-1]["index"] for stack in stacks if stack}
        foreach_join = bool(first) and (len(inputs) == 1 or len(tops) > 1)
        if not foreach_join:
            if any(stack != first for stack in stacks):
                raise StepError("join `%s` joins branches that come from different foreach splits" % step_name)
            return first
        bottoms = [stack[:-1] for stack in stacks]
        if any(not stack for stack in stacks) or any(b != bottoms[0] for b in bottoms):
            raise StepError("join `%s` joins tasks that come from different foreach splits" % step_name)
        expected = first[-1]["num_splits"]
        if len(inputs) != expected or len(tops) != expected:
            raise StepError(
                "foreach join `%s` expected %d inputs, one per split, but got %d"
                % (step_name, expected, len(inputs))
            )
        return bottoms[0]
    parent = inputs[0]
    split = parent.get("foreach")
    if not split:
        return stacks[0]
    if split_index is None:
        raise StepError(
            "step `%s` follows foreach step `%s`, so it needs a split index (--split-index)"
            % (step_name, parent["step"])
        )
    if not 0 <= split_index < split["num_splits"]:
        raise StepError(
            "split index %d is out of range: foreach step `%s` made %d splits"
            % (split_index, parent["step"], split["num_splits"])
        )
    frame = {
        "step": step_name,
        "var": split["var"],
        "num_splits": split["num_splits"],
        "index": split_index,
    }
    return stacks[0] + [frame]


def _apply_environment(func):
    from metaflow.decorators import step_decorator

    marker = step_decorator(func, "environment")
    if marker is not None:
        for key, value in (marker.attributes.get("vars") or {}).items():
            os.environ[str(key)] = str(value)


def _persist(flow, store, parameters, stack, best_effort):
    """The task's manifest: inherited and merged artifacts by hash, new values saved."""
    from metaflow.flowspec import FlowSpec

    state = flow.__dict__
    table = {name: entry for name, entry in state["_flowc_data"].items() if not name.startswith("_")}
    loaded = state["_flowc_loaded"]
    for name in sorted(state):
        if name.startswith("_") or name in FlowSpec._EPHEMERAL:
            continue
        value = state[name]
        entry = loaded.get(name)
        if entry is not None and type(value) in _IMMUTABLE:
            table[name] = entry
            continue
        try:
            table[name] = store.save(name, value)
        except StepError:
            if not best_effort:
                raise
            table.pop(name, None)
    table.update(parameters)
    table["_foreach_stack"] = store.save("_foreach_stack", stack)
    return table


def _run_task(channel, store, init):
    from metaflow.exception import InvalidNextException, MetaflowExceptionWrapper
    from metaflow.flowspec import Inputs, TaskState
    from metaflow.metaflow_current import current

    step_name = init["step"]
    pathspec = "%s/%s/%s" % (init["run_id"], step_name, init["task_id"])
    retry_count = int(init.get("retry_count") or 0)
    max_retries = int(init.get("max_user_code_retries") or 0)
    inputs = init.get("inputs") or []
    parameters = init.get("parameters") or {}
    flow_file = init["flow_file"]
    headline = "flow `%s` step `%s` failed (task %s, attempt %d):\n" % (
        init["flow"], step_name, pathspec, retry_count
    )

    try:
        module = _load_flow_file(flow_file)
        cls = _find_flow_class(module, init["flow"], flow_file)
        func = _find_step(cls, step_name)
        is_join = _takes_inputs(func)
        if not is_join and len(inputs) > 1:
            raise StepError(
                "step `%s` is not a join (it does not take `inputs`) but has %d parent tasks"
                % (step_name, len(inputs))
            )
        stack = _foreach_stack(step_name, is_join, inputs, init.get("split_index"))
        _apply_environment(func)
    except (StepError, ShimError) as exc:
        sys.stderr.write(headline + "%s\n" % exc)
        return _finish(channel, "failed", {}, None, [], exc)
    except BaseException as exc:
        sys.stderr.write(headline + _format_user_traceback(exc))
        return _finish(channel, "failed", {}, None, [], exc)

    from metaflow.decorators import step_decorator
    from metaflow.parameters import flow_parameters

    current._set_env(
        is_running_flow=True,
        flow_name=init["flow"],
        run_id=init["run_id"],
        step_name=step_name,
        task_id=init["task_id"],
        retry_count=retry_count,
        origin_run_id=init.get("origin_run_id"),
        username=_username(),
        tags=list(init.get("tags") or []),
        parameter_names=[attr for attr, _ in flow_parameters(cls)],
    )
    task = TaskState(store.load, parameters, is_join)
    def visible(artifacts):
        return {name: entry for name, entry in artifacts.items() if not name.startswith("_")}

    if is_join:
        views = [
            cls._flowc_create(task, inp["step"], visible(inp["artifacts"]), inp.get("foreach_stack") or [])
            for inp in inputs
        ]
        flow = cls._flowc_create(task, step_name, {}, stack)
        args = (Inputs(views),)
    else:
        data = visible(inputs[0]["artifacts"]) if inputs else {}
        flow = cls._flowc_create(task, step_name, data, stack)
        args = ()

    catch = step_decorator(func, "catch")
    catch_var = catch.attributes.get("var") if catch is not None else None
    status, error = "ok", None
    try:
        getattr(flow, step_name)(*args)
        transition = flow._flowc_transition
        if step_name == "end" and transition is not None:
            raise InvalidNextException("the `end` step cannot call self.next()")
        if step_name != "end" and transition is None:
            raise InvalidNextException(
                "step `%s` ended without calling self.next(); every step but `end` must" % step_name
            )
    except BaseException as exc:
        text = _format_user_traceback(exc)
        error = exc
        if catch is not None and isinstance(exc, Exception) and retry_count >= max_retries:
            status = "caught"
            if catch.attributes.get("print_exception", True):
                sys.stderr.write("@catch caught an exception from %s:\n%s" % (pathspec, text))
            if catch_var:
                flow.__dict__[catch_var] = MetaflowExceptionWrapper(exc, text)
                flow.__dict__["_flowc_loaded"].pop(catch_var, None)
            flow.__dict__["_flowc_transition"] = None
        else:
            status = "failed"
            sys.stderr.write(headline + text)
    else:
        if catch_var:
            flow.__dict__[catch_var] = None

    try:
        table = _persist(flow, store, parameters, stack, best_effort=status == "failed")
    except (StepError, ShimError) as exc:
        sys.stderr.write(headline + "%s\n" % exc)
        return _finish(channel, "failed", {}, None, stack, exc)
    transition = flow._flowc_transition if status == "ok" else None
    return _finish(channel, status, table, transition, stack, error)


def _finish(channel, status, table, transition, stack, error):
    sys.stdout.flush()
    sys.stderr.flush()
    message = {
        "op": "done",
        "status": status,
        "artifacts": table,
        "transition": transition,
        "foreach_stack": stack,
        "error": None
        if error is None
        else {"type": _type_name(error), "message": str(error)},
    }
    channel.send(message)
    return 0 if status in ("ok", "caught") else 1


def main():
    fd_text = os.environ.get("FLOWC_CONTROL_FD")
    if fd_text is None or not fd_text.isdigit():
        sys.stderr.write("flowc_harness runs under flowc-shim (FLOWC_CONTROL_FD is not set)\n")
        sys.exit(2)
    fd = int(fd_text)
    if fd == 0:
        # The channel arrives on stdin; move it away so user code reading stdin sees EOF.
        fd = os.dup(0)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    channel = Channel(fd)
    try:
        init, _ = channel.recv()
        _place_flow_dir(os.path.dirname(os.path.abspath(init["flow_file"])))
        import metaflow

        if not _is_internal(metaflow.__file__):
            raise ShimError("`import metaflow` resolves to %s, not to flowc's package" % metaflow.__file__)
        store = Store(channel)
        if init.get("mode") == "init":
            code = _run_init(channel, store, init)
        else:
            code = _run_task(channel, store, init)
    except ShimError as exc:
        sys.stderr.write("flowc harness: %s\n" % exc)
        code = 3
    sys.exit(code)
