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
# The flow module a zygote imported once (`module`), the `key` (`_preload_key`) of the
# file it came from and the environment (`env`) it was executed in.
_PRELOADED = {}
# In a forked task: the variables its shim set for it alone (`@environment`).
_TASK_ENV = {}


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
    # A forked task inherits the zygote's sys.path, which may hold the directory already.
    if sys.path[position:position + 1] != [flow_dir]:
        sys.path.insert(position, flow_dir)


def _load_flow_file(path):
    """Executes the flow file as `__main__`, as `python flow.py` would, up to `Flow()`.

    In a task forked from a zygote that preloaded this very file, under the same
    environment, the preloaded module is used instead: its module-level code (and the
    imports it makes) already ran once, in the zygote.
    """
    import builtins

    from metaflow import flowspec

    path = os.path.abspath(path)
    preloaded = _preloaded_module(path)
    if preloaded is not None:
        sys.modules["__main__"] = preloaded
        sys.argv = [path]
        return preloaded
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


def _end_step(cls):
    """The flow's exit step: the one marked `@step(end=True)`, else the step named `end`
    (Metaflow's rule; the compiler has already refused two marked steps)."""
    marked = sorted(
        name
        for name in dir(cls)
        if getattr(getattr(cls, name, None), "is_step", False)
        and getattr(getattr(cls, name), "is_end_step", False)
    )
    return marked[0] if len(marked) == 1 else "end"


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
    cards = _start_cards(func, current)
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
        end_step = _end_step(cls)
        if step_name == end_step and transition is not None:
            raise InvalidNextException("the end step `%s` cannot call self.next()" % step_name)
        if step_name != end_step and transition is None:
            raise InvalidNextException(
                "step `%s` ended without calling self.next(); every step but the end step `%s` must"
                % (step_name, end_step)
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
    report = _card_report(cards, flow, parameters)
    return _finish(channel, status, table, transition, stack, error, report)


# -- cards (`@card`) -------------------------------------------------------------------


def _start_cards(func, current):
    """Sets up `current.card` from the step's `@card` decorators; None without any.

    Decorators apply bottom-up, so the markers are reversed into source order, the
    order in which the task's cards are listed.
    """
    markers = [
        marker.attributes
        for marker in reversed(getattr(func, "decorators", ()))
        if marker.name == "card"
    ]
    if not markers:
        return None
    from metaflow.cards import CardComponentCollector

    collector = CardComponentCollector(markers)
    current._update_env({"card": collector})
    return collector


def _card_report(collector, flow, parameters):
    """The `cards` part of `done`: each card's components, and short values of the
    parameters and of the artifacts this task holds in memory (for the default card's
    tables; inherited artifacts the step never read are not loaded for it)."""
    if collector is None:
        return None
    try:
        from metaflow.cards import _short_repr
        from metaflow.flowspec import FlowSpec

        cards = collector.report()
        values, params = {}, {}
        if any(card["type"] == "default" for card in cards):
            state = flow.__dict__
            for name in sorted(state):
                if not name.startswith("_") and name not in FlowSpec._EPHEMERAL:
                    values[name] = _short_repr(state[name], 200)
            for name in sorted(parameters):
                try:
                    params[name] = _short_repr(getattr(flow, name), 200)
                except Exception:
                    pass
        return {"cards": cards, "values": values, "parameters": params}
    except Exception as exc:
        # Cards never fail a task: the shim renders an error page for each card instead.
        sys.stderr.write("@card: the cards could not be prepared: %s: %s\n" % (type(exc).__name__, exc))
        return {"cards": [], "values": {}, "parameters": {}, "error": "%s: %s" % (type(exc).__name__, exc)}


def _finish(channel, status, table, transition, stack, error, cards=None):
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
    if cards is not None:
        message["cards"] = cards
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
    sys.exit(_serve(Channel(fd)))


def _serve(channel):
    """Runs the task the shim describes on `channel`; returns the process's exit code.

    The one code path of a task, whether the shim started this interpreter or a zygote
    forked it.
    """
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
    return code


# -- the zygote: a warm interpreter that forks one process per task ------------------
#
# `flowc-shim zygote` starts `python -c 'import flowc_harness; flowc_harness.zygote()'
# CONFIG`. The zygote pays once for what every task would pay again (starting the
# interpreter, importing this module, the compatibility package and, when asked, the
# user's flow module with its numpy or pandas), then forks a fresh process per task.
# A task is thus isolated exactly as a new interpreter would be: whatever one task
# changes lives and dies in its own process, and the next task forks from the
# untouched zygote.
#
# Requests come over a Unix socket, one connection per request, in the frames of the
# control channel. `{"op": "hello"}` is answered with the zygote's pid, interpreter and
# harness directory. `{"op": "fork", "harness_dir", "cwd", "env", "task_env"}` (`env`
# is the task's whole environment, `task_env` the part its shim set for it alone, from
# `@environment`) must carry three
# file descriptors (SCM_RIGHTS): the task's control socket, its stdout and its stderr.
# The zygote forks, answers `{"op": "forked", "pid"}`, and once the task's process has
# ended, `{"op": "exit", "pid", "status"}` with the raw wait status. A requester that
# hangs up first (the shim was killed, e.g. by `@timeout`) takes its task with it: the
# zygote kills the task's process group.

_MAX_REQUEST = 1 << 24


def _preload_key(path):
    """What identifies the flow file a zygote preloaded: a task whose file has another
    key (it was edited since) executes it again."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_mtime_ns, st.st_size, st.st_ino)


def _preloaded_module(path):
    """The zygote's module for `path`, if a task may use it: same file, and no variable
    of the task's own (`@environment`, which module-level code may read) that the
    preload did not see with the same value. The rest of the environment is the one the
    scheduler gave the zygote and every shim alike."""
    module = _PRELOADED.get("module")
    if module is None or _PRELOADED["key"] != _preload_key(path):
        return None
    seen = _PRELOADED["env"]
    if any(seen.get(key) != value for key, value in _TASK_ENV.items()):
        return None
    return module


def _warm_up(config):
    """Imports what every task imports, and the flow module when asked to."""
    import traceback  # noqa: F401  (a failing task formats its traceback with it)

    import metaflow
    from metaflow import decorators, exception, flowspec, metaflow_current, parameters  # noqa: F401

    if not _is_internal(metaflow.__file__):
        raise SystemExit(
            "flowc zygote: `import metaflow` resolves to %s, not to flowc's package" % metaflow.__file__
        )
    flow_file = config.get("flow_file")
    if not flow_file:
        return
    flow_file = os.path.abspath(flow_file)
    _place_flow_dir(os.path.dirname(flow_file))
    if not config.get("preload"):
        return
    # The key is taken before the module runs: code that sets environment variables at
    # import time must not make every task's environment look different.
    key = _preload_key(flow_file)
    env = dict(os.environ)
    try:
        module = _load_flow_file(flow_file)
    except BaseException as exc:
        # Each task then loads the file itself and reports the error as a step failure.
        sys.stderr.write(
            "flowc zygote: %s could not be preloaded; each task will load it itself:\n%s"
            % (flow_file, _format_user_traceback(exc))
        )
        return
    if key is not None:
        _PRELOADED.update(module=module, key=key, env=env)


def _listen(path):
    """A listening socket at `path`, which appears only once it accepts connections."""
    import socket

    temporary = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(temporary)
    listener.listen(128)
    os.rename(temporary, path)
    listener.setblocking(False)
    return listener


def _parse_frame(buf):
    """The first whole frame in `buf` as (header, body, length), or None."""
    if len(buf) < _PREFIX.size:
        return None
    header_len, body_len = _PREFIX.unpack(bytes(buf[:_PREFIX.size]))
    end = _PREFIX.size + header_len + body_len
    if end > _MAX_REQUEST:
        raise ValueError("request of %d bytes is too large" % end)
    if len(buf) < end:
        return None
    header = json.loads(bytes(buf[_PREFIX.size:_PREFIX.size + header_len]))
    if not isinstance(header, dict):
        raise ValueError("request header is not a JSON object")
    return header, bytes(buf[_PREFIX.size + header_len:end]), end


def _send_frame(conn, header):
    """Sends one small frame; a requester that is gone is not the zygote's problem."""
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    try:
        conn.setblocking(True)
        conn.sendall(_PREFIX.pack(len(raw), 0) + raw)
        conn.setblocking(False)
    except OSError:
        pass


class _Client:
    """One requester's connection: what it sent so far and, once forked, its task."""

    __slots__ = ("conn", "buf", "fds", "pid")

    def __init__(self, conn):
        self.conn = conn
        self.buf = bytearray()
        self.fds = []
        self.pid = None

    def close_fds(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


class _Zygote:
    def __init__(self, listener, watch_stdin):
        import selectors
        import signal
        import socket

        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        # SIGCHLD needs a real handler (SIG_IGN would make the kernel reap the children
        # and lose their status); the wakeup fd is what interrupts the select.
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.signal(signal.SIGTERM, _terminate)
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        if watch_stdin:
            self.selector.register(0, selectors.EVENT_READ, "stdin")
        self.clients = {}
        # pid -> the client waiting for its status, or None once that client left.
        self.children = {}

    def run(self):
        try:
            while True:
                for key, _ in self.selector.select():
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wakeups()
                        self._reap()
                    elif key.data == "stdin":
                        if not os.read(0, 4096):
                            return
                    else:
                        self._on_readable(key.data)
                # A child may have exited between the last wakeup and now.
                self._reap()
        finally:
            self._shutdown()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            client = _Client(conn)
            self.clients[conn.fileno()] = client
            self.selector.register(conn, 1, client)

    def _drain_wakeups(self):
        while True:
            try:
                if not self.wake_r.recv(4096):
                    return
            except (BlockingIOError, InterruptedError):
                return

    def _drop(self, client):
        client.close_fds()
        try:
            self.selector.unregister(client.conn)
        except (KeyError, ValueError):
            pass
        self.clients.pop(client.conn.fileno(), None)
        client.conn.close()

    def _on_readable(self, client):
        import signal
        import socket

        if client.pid is not None:
            # Nothing is expected from a requester whose task runs: this is its hang-up.
            try:
                data = client.conn.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                try:
                    os.killpg(client.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.children[client.pid] = None
                self._drop(client)
            return
        try:
            data, fds, _flags, _addr = socket.recv_fds(client.conn, 65536, 8)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.fds.extend(fds)
        if not data:
            self._drop(client)
            return
        client.buf += data
        try:
            frame = _parse_frame(client.buf)
        except ValueError as exc:
            _send_frame(client.conn, {"op": "error", "message": str(exc)})
            self._drop(client)
            return
        if frame is None:
            return
        header, _body, _end = frame
        op = header.get("op")
        if op == "hello":
            _send_frame(client.conn, {
                "op": "hello",
                "pid": os.getpid(),
                "executable": sys.executable,
                "harness_dir": _HERE,
                "preloaded": _PRELOADED["key"][0] if _PRELOADED else None,
            })
            self._drop(client)
        elif op == "fork":
            self._fork(client, header)
        else:
            _send_frame(client.conn, {"op": "error", "message": "unknown request %r" % op})
            self._drop(client)

    def _fork(self, client, request):
        problem = None
        if len(client.fds) != 3:
            problem = "a fork request carries 3 file descriptors, not %d" % len(client.fds)
        elif os.path.realpath(str(request.get("harness_dir"))) != os.path.realpath(_HERE):
            problem = "this zygote runs the harness in %s, not in %s" % (_HERE, request.get("harness_dir"))
        elif not all(isinstance(request.get(name), dict) for name in ("env", "task_env")) or not isinstance(
            request.get("cwd"), str
        ):
            problem = "a fork request needs `env`, `task_env` and `cwd`"
        if problem is not None:
            _send_frame(client.conn, {"op": "error", "message": problem})
            self._drop(client)
            return
        # Whatever the zygote buffered must not come out again in the task's output.
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
        try:
            pid = os.fork()
        except OSError as exc:
            _send_frame(client.conn, {"op": "error", "message": "fork failed: %s" % exc})
            self._drop(client)
            return
        if pid == 0:
            code = 70
            try:
                code = self._become_task(client, request)
            except BaseException:
                try:
                    import traceback

                    traceback.print_exc()
                except BaseException:
                    pass
            finally:
                os._exit(code)
        client.close_fds()
        client.pid = pid
        self.children[pid] = client
        _send_frame(client.conn, {"op": "forked", "pid": pid})

    def _reap(self):
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            client = self.children.pop(pid, None)
            if client is not None:
                _send_frame(client.conn, {"op": "exit", "pid": pid, "status": status})
                self._drop(client)

    def _shutdown(self):
        """Takes every running task down with the zygote: none may outlive the run."""
        import signal

        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        self.children.clear()
        for client in list(self.clients.values()):
            self._drop(client)

    def _become_task(self, client, request):
        """In the forked child: drop the zygote's state, become a task, run it."""
        import signal

        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        control, out_fd, err_fd = client.fds
        client.fds = []
        for other in list(self.clients.values()):
            other.close_fds()
            other.conn.close()
        self.selector.close()
        self.listener.close()
        self.wake_r.close()
        self.wake_w.close()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (out_fd, err_fd):
            if fd > 2:
                os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        _TASK_ENV.update({str(k): str(v) for k, v in request["task_env"].items()})
        _fresh_stdio()
        _reseed()
        sys.argv = ["-c"]
        try:
            code = _serve(Channel(control))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        _exit_like_interpreter()
        return code


def _terminate(signum, frame):
    raise SystemExit(0)


def _fresh_stdio():
    """Buffers stdout and stderr as a new interpreter would for the task's own fds."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None:
            import io

            stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), write_through=True)
            setattr(sys, name, stream)
            continue
        # stderr is always line-buffered (Python 3.9+); stdout only on a terminal.
        stream.reconfigure(
            line_buffering=name == "stderr" or os.isatty(fd),
            write_through=unbuffered,
        )


def _reseed():
    """Gives the task random state of its own: a fork copies the zygote's."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    np_random = sys.modules.get("numpy.random")
    if np_random is not None and hasattr(np_random, "seed"):
        try:
            np_random.seed()
        except Exception:
            pass


def _exit_like_interpreter():
    """What an interpreter does on a normal exit: wait for non-daemon threads, run the
    atexit handlers, flush stdio (the caller then leaves with `os._exit`, so the
    zygote's own frames never run in the task)."""
    import threading

    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            try:
                thread.join()
            except RuntimeError:
                pass
    import atexit

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is not None:
        run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


def zygote():
    """The entry point of `flowc-shim zygote`; sys.argv[1] is its JSON configuration:
    `socket` (where to listen), `flow_file` and `preload` (import the flow once, here),
    `watch_stdin` (exit when stdin ends: whoever started the zygote is gone)."""
    if sys.version_info < (3, 9):
        raise SystemExit("flowc zygote: needs Python 3.9 or newer (socket.recv_fds)")
    config = json.loads(sys.argv[1])
    # `python -c` puts the working directory first on sys.path: a stray `metaflow/`
    # there must not shadow the compatibility package.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    # A received descriptor must never land on 0-2, which every task replaces.
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)
    _warm_up(config)
    listener = _listen(config["socket"])
    try:
        _Zygote(listener, bool(config.get("watch_stdin"))).run()
    finally:
        try:
            os.unlink(config["socket"])
        except OSError:
            pass
