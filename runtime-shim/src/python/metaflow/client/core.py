"""The client objects: `Metaflow`, `Flow`, `Run`, `Step`, `Task`, `DataArtifact`, with
Metaflow's names and behaviour, over a flowc datastore.

Each object reads its own metadata file once, when it is made, and keeps it; children
are made from what their parent listed, so walking a run reads every file once.
Artifact values are loaded only when asked for, one at a time (`task.data.model` loads
`model` and nothing else).

Namespaces follow Metaflow: the current namespace is a tag, and only runs carrying it
are visible (`namespace(None)` shows everything). The default namespace is
`user:<you>`. A run records its owner as `user` in `run.json` (shown as the system tag
`user:<name>`) and its tags as `tags`; a run whose metadata records no user belongs to
no one in particular and is visible in every namespace, so runs made before the owner
was recorded never disappear behind the default namespace.
"""

import os
from collections import namedtuple
from datetime import datetime

from . import datastore as _ds
from .exceptions import (
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
)

# False: not chosen yet; the default is resolved on first use, so that environment
# changes made after import (METAFLOW_USER, ...) still count.
_current_namespace = False


def _username():
    for var in ("METAFLOW_USER", "USER", "USERNAME", "LOGNAME", "SUDO_USER"):
        value = os.environ.get(var)
        if value:
            return value
    return None


def namespace(ns):
    """Switches the namespace (a tag) that filters what the client shows; None shows all.

    Returns the namespace now in effect.
    """
    global _current_namespace
    _current_namespace = ns
    return get_namespace()


def get_namespace():
    """The namespace currently filtering objects (None: no filtering)."""
    if _current_namespace is False:
        default_namespace()
    return _current_namespace


def default_namespace():
    """Goes back to the default namespace, `user:<name>` (None if no user name is known)."""
    global _current_namespace
    user = _username()
    _current_namespace = "user:%s" % user if user else None
    return get_namespace()


def metadata(ms):
    """Points the client at a datastore: `local@/path/to/root` or just the path.

    Returns the metadata string now in effect (`local@<root>`), as Metaflow's does.
    """
    if ms is not None and ms.startswith("local@"):
        ms = ms[len("local@"):]
    _ds.set_datastore_root(ms)
    return get_metadata()


def get_metadata():
    """The datastore the client reads, as `local@<root>`."""
    return "local@%s" % _ds.get_datastore_root()


def default_metadata():
    """Goes back to the default datastore root (`$FLOWC_DATASTORE_ROOT`, else `.flowc`)."""
    _ds.set_datastore_root(None)
    return get_metadata()


def set_datastore_root(path):
    """Makes the client read the datastore at `path` (None: back to the default)."""
    return _ds.set_datastore_root(path)


def get_datastore_root():
    """The absolute path of the datastore the client reads."""
    return _ds.get_datastore_root()


def _store():
    return _ds.Datastore(_ds.get_datastore_root())


def _time(ms):
    return None if ms is None else datetime.fromtimestamp(ms / 1000.0)


def _run_tags(doc):
    """(user tags, system tags) of a run's metadata."""
    user_tags = frozenset(str(tag) for tag in doc.get("tags") or ())
    system = set(str(tag) for tag in doc.get("system_tags") or ())
    if doc.get("user"):
        system.add("user:%s" % doc["user"])
    return user_tags, frozenset(system)


def _run_in_namespace(doc, ns):
    if ns is None:
        return True
    if not doc.get("user"):
        # No recorded owner: visible everywhere (see the module docstring).
        return True
    user_tags, system_tags = _run_tags(doc)
    return ns in user_tags or ns in system_tags


def _split(pathspec, count, expected):
    if not isinstance(pathspec, str):
        raise MetaflowInvalidPathspec("expects %s, not %r" % (expected, pathspec))
    parts = pathspec.split("/")
    if len(parts) != count:
        raise MetaflowInvalidPathspec("expects %s, not %r" % (expected, pathspec))
    return parts


def _id_key(run_or_task_id):
    """Integer ids in numeric order, then the others in byte order (the store's order)."""
    if run_or_task_id.isdigit():
        return (0, int(run_or_task_id), "")
    return (1, 0, run_or_task_id)


class MetaflowObject:
    """What every client object has: an id, a pathspec, tags, a creation time, a parent."""

    _NAME = "base"

    def __init__(self, _store, _namespace_check, _current_namespace):
        self._ds = _store
        self._current_namespace = _current_namespace
        # With no namespace, children are never checked either.
        self._namespace_check = bool(_namespace_check) and _current_namespace is not None

    def _child_kwargs(self):
        return {
            "_store": self._ds,
            "_namespace_check": self._namespace_check,
            "_current_namespace": self._current_namespace if self._namespace_check else None,
        }

    @property
    def pathspec(self):
        """The object's path, `Flow/run/step/task[/artifact]`; what its constructor takes."""
        return self._pathspec

    @property
    def path_components(self):
        return self._pathspec.split("/")

    @property
    def tags(self):
        """User and system tags of the run this object belongs to."""
        return self.user_tags | self.system_tags

    @property
    def user_tags(self):
        return self._tags()[0]

    @property
    def system_tags(self):
        return self._tags()[1]

    def _tags(self):
        return frozenset(), frozenset()

    @property
    def created_at(self):
        """When the object was created (a naive local `datetime`, as Metaflow's)."""
        return self._created_at()

    def is_in_namespace(self):
        """Whether the object is visible in the current namespace."""
        return self._in_namespace(get_namespace())

    def _in_namespace(self, ns):
        user_tags, system_tags = self._tags()
        return ns is None or ns in user_tags or ns in system_tags

    def _ipython_key_completions_(self):
        return [child.id for child in self]

    def __iter__(self):
        return iter(())

    def __contains__(self, child_id):
        """Whether the child exists, in the current namespace or not (as Metaflow)."""
        try:
            self[child_id]
        except KeyError:
            return False
        except MetaflowNamespaceMismatch:
            return True
        return True

    def __eq__(self, other):
        return type(self) is type(other) and self._pathspec == other._pathspec

    def __hash__(self):
        return hash((type(self).__name__, self._pathspec))

    def __str__(self):
        return "%s('%s')" % (type(self).__name__, self._pathspec)

    def __repr__(self):
        return str(self)


class Metaflow:
    """Entry point to everything in the datastore: the flows with a run in the namespace."""

    def __init__(self, _store=None):
        self._ds = _store or _store_default()

    @property
    def flows(self):
        return list(self)

    def __iter__(self):
        for name in self._ds.flows():
            try:
                yield Flow(name, _store=self._ds)
            except (MetaflowNamespaceMismatch, MetaflowNotFound):
                continue

    def __getitem__(self, name):
        return Flow(name, _store=self._ds)

    def _ipython_key_completions_(self):
        return [flow.id for flow in self]

    def __str__(self):
        return "Metaflow()"

    __repr__ = __str__


def _store_default():
    return _store()


class Flow(MetaflowObject):
    """A flow: every run of the `FlowSpec` class of that name in the datastore.

    `Flow('TrainFlow')` raises MetaflowNotFound when the flow has no run in the datastore,
    MetaflowNamespaceMismatch when it has none in the current namespace.
    """

    _NAME = "flow"

    def __init__(self, pathspec, _store=None, _namespace_check=True, _current_namespace=None):
        store = _store or _store_default()
        ns = _current_namespace if _current_namespace is not None else get_namespace()
        super().__init__(store, _namespace_check, ns)
        (name,) = _split(pathspec, 1, "Flow('FlowName')")
        _ds.check_name("flow name", name)
        if not store.has_flow(name):
            raise MetaflowNotFound(
                "Flow('%s') does not exist: the datastore `%s` has no run of it" % (name, store.root)
            )
        self.id = name
        self._pathspec = name
        self._runs = {}
        if self._namespace_check and not any(True for _ in self):
            raise MetaflowNamespaceMismatch(self._current_namespace)

    def _run_docs(self):
        """Every run's metadata, newest first.

        The runs are listed afresh each time (so a Flow object sees runs made after it),
        but each `run.json` is read once per Flow object: what a listing uses of it (id,
        creation time, tags, owner) never changes, and a Run re-reads its own status
        while it is running.
        """
        cache = self._runs
        docs = []
        for run_id in self._ds.run_ids(self.id):
            doc = cache.get(run_id)
            if doc is None:
                doc = self._ds.read_run(self.id, run_id)
                if doc is None:
                    continue
                cache[run_id] = doc
            docs.append(doc)
        docs.sort(key=lambda d: (d["created_at_unix_ms"], _id_key(d["run_id"])), reverse=True)
        return docs

    def __iter__(self):
        """The runs in the current namespace, newest first."""
        ns = self._current_namespace if self._namespace_check else None
        for doc in self._run_docs():
            if _run_in_namespace(doc, ns):
                yield Run(_object=doc, _parent=self, **self._child_kwargs())

    def runs(self, *tags):
        """The runs carrying every tag in `tags` (all runs without tags), newest first."""
        for run in self:
            if all(tag in run.tags for tag in tags):
                yield run

    @property
    def latest_run(self):
        """The newest run, whatever its state; None if there is none."""
        for run in self:
            return run
        return None

    @property
    def latest_successful_run(self):
        """The newest run that succeeded; None if there is none."""
        for run in self:
            if run.successful:
                return run
        return None

    def __getitem__(self, run_id):
        try:
            return Run("%s/%s" % (self.id, run_id), _parent=self, **self._child_kwargs())
        except (MetaflowNotFound, MetaflowInvalidPathspec):
            raise KeyError(run_id) from None

    def _tags(self):
        return frozenset(), frozenset()

    def _in_namespace(self, ns):
        return any(_run_in_namespace(doc, ns) for doc in self._run_docs())

    def _created_at(self):
        docs = self._run_docs()
        return _time(min(d["created_at_unix_ms"] for d in docs)) if docs else None

    @property
    def parent(self):
        return None


class Run(MetaflowObject):
    """One execution of a flow: `Run('TrainFlow/42')`, a container of its steps."""

    _NAME = "run"

    def __init__(self, pathspec=None, _object=None, _parent=None, _store=None,
                 _namespace_check=True, _current_namespace=None):
        store = _store or _store_default()
        ns = _current_namespace if _current_namespace is not None else get_namespace()
        super().__init__(store, _namespace_check, ns)
        if _object is None:
            flow, run_id = _split(pathspec, 2, "Run('FlowName/RunID')")
            _ds.check_name("flow name", flow)
            _ds.check_name("run id", run_id)
            _object = store.read_run(flow, run_id)
            if _object is None:
                raise MetaflowNotFound(
                    "Run('%s/%s') does not exist in the datastore `%s`" % (flow, run_id, store.root)
                )
        self._object = _object
        self.id = _object["run_id"]
        self._flow_name = _object["flow"]
        self._pathspec = "%s/%s" % (self._flow_name, self.id)
        self._parent = _parent
        self._steps = None
        if self._namespace_check and not _run_in_namespace(_object, self._current_namespace):
            raise MetaflowNamespaceMismatch(self._current_namespace)

    def _doc(self):
        """The run's metadata; re-read on each use while the run is still going, so a
        loop like `while not run.finished: ...` sees it end."""
        if self._object["status"] == "running":
            fresh = self._ds.read_run(self._flow_name, self.id)
            if fresh is not None:
                self._object = fresh
            self._steps = None
        return self._object

    def _tags(self):
        return _run_tags(self._object)

    def _in_namespace(self, ns):
        return _run_in_namespace(self._object, ns)

    def _created_at(self):
        return _time(self._object["created_at_unix_ms"])

    @property
    def parent(self):
        if self._parent is None:
            self._parent = Flow(self._flow_name, _store=self._ds, _namespace_check=False)
        return self._parent

    @property
    def status(self):
        """`running`, `succeeded`, `failed` or `killed` (interrupted), as `run.json` says."""
        return self._doc()["status"]

    @property
    def successful(self):
        """True once the run has finished and every step succeeded."""
        return self._doc()["status"] == "succeeded"

    @property
    def finished(self):
        """True once the run is over, whether it succeeded, failed or was killed."""
        return self._doc()["status"] != "running"

    @property
    def finished_at(self):
        """When the run ended; None while it runs."""
        return _time(self._doc().get("finished_at_unix_ms"))

    @property
    def origin_run_id(self):
        """For a run made by `flowc resume`, the id of the run it resumed; else None."""
        return self._object.get("origin_run_id")

    @property
    def origin_pathspec(self):
        origin = self.origin_run_id
        return None if origin is None else "%s/%s" % (self._flow_name, origin)

    @property
    def end_step_name(self):
        name = _ds.flow_ir(self._object).get("end_step")
        return name if isinstance(name, str) and name else "end"

    @property
    def end_task(self):
        """The task of the flow's end step, once it exists; else None."""
        try:
            return self[self.end_step_name].task
        except KeyError:
            return None

    @property
    def data(self):
        """The end step's artifacts (`run.data.x`); None until the end step has run."""
        end = self.end_task
        return end.data if end is not None else None

    @property
    def parameters(self):
        """The run's parameter values by attribute name, defaults included.

        They are the artifacts of the run's `_parameters` task (loaded now, one by one);
        a run without that task gives the values given on the command line, by name.
        """
        try:
            task = self._step("_parameters").task
        except KeyError:
            task = None
        if task is None:
            return dict(self._object.get("parameters") or {})
        return {artifact.id: artifact.data for artifact in task}

    @property
    def flow_ir(self):
        """The flow's IR as the run recorded it (`flowc inspect --format json`)."""
        return _ds.flow_ir(self._object)

    @property
    def code(self):
        return None

    def _step_names(self):
        # A running run gains steps: list them afresh (`_doc` drops the cache then).
        self._doc()
        if self._steps is None:
            self._steps = self._ds.step_names(self._flow_name, self.id)
        return self._steps

    def _step(self, name):
        """The Step `name`, private (`_parameters`) included; KeyError if it has no task."""
        if name not in self._step_names():
            raise KeyError(name)
        step = Step(_flow=self._flow_name, _run=self, _name=name, **self._child_kwargs())
        if not step._task_docs():
            raise KeyError(name)
        return step

    def __iter__(self):
        """The steps that have run, newest first (the end step first), as Metaflow."""
        steps = []
        for name in self._step_names():
            if name.startswith("_"):
                continue
            try:
                steps.append(self._step(name))
            except KeyError:
                continue
        steps.sort(key=lambda s: (s.created_at or datetime.min, s.id), reverse=True)
        return iter(steps)

    def steps(self, *tags):
        for step in self:
            if all(tag in step.tags for tag in tags):
                yield step

    def __getitem__(self, name):
        if not isinstance(name, str):
            raise KeyError(name)
        try:
            _ds.check_name("step name", name)
        except MetaflowInvalidPathspec:
            raise KeyError(name) from None
        return self._step(name)


class Step(MetaflowObject):
    """A step of a run: `Step('TrainFlow/42/train')`, a container of its tasks."""

    _NAME = "step"

    def __init__(self, pathspec=None, _flow=None, _run=None, _name=None, _store=None,
                 _namespace_check=True, _current_namespace=None):
        store = _store or _store_default()
        ns = _current_namespace if _current_namespace is not None else get_namespace()
        super().__init__(store, _namespace_check, ns)
        if _run is None:
            flow, run_id, name = _split(pathspec, 3, "Step('FlowName/RunID/StepName')")
            _ds.check_name("step name", name)
            _run = Run("%s/%s" % (flow, run_id), _store=store, _namespace_check=_namespace_check,
                       _current_namespace=ns)
            _flow = flow
            _name = name
            self._run = _run
            self.id = _name
            self._flow_name = _flow
            self._pathspec = "%s/%s/%s" % (_flow, _run.id, _name)
            self._tasks = None
            if not self._task_docs():
                raise MetaflowNotFound("Step('%s') does not exist" % self._pathspec)
            return
        self._run = _run
        self.id = _name
        self._flow_name = _flow
        self._pathspec = "%s/%s/%s" % (_flow, _run.id, _name)
        self._tasks = None

    def _task_docs(self):
        if self._tasks is not None and self._run._doc()["status"] == "running":
            self._tasks = None  # the step may have gained tasks since
        if self._tasks is None:
            docs = []
            for task_id in self._ds.task_ids(self._flow_name, self._run.id, self.id):
                doc = self._ds.read_task(self._flow_name, self._run.id, self.id, task_id)
                if doc is not None:
                    docs.append(doc)
            docs.sort(key=lambda d: (_task_created_ms(d), _id_key(d["task_id"])), reverse=True)
            self._tasks = docs
        return self._tasks

    def _tags(self):
        return self._run._tags()

    def _created_at(self):
        docs = self._task_docs()
        return _time(min(_task_created_ms(d) for d in docs)) if docs else None

    @property
    def parent(self):
        return self._run

    def __iter__(self):
        """The step's tasks, newest first (as Metaflow)."""
        for doc in self._task_docs():
            yield Task(_object=doc, _step=self, **self._child_kwargs())

    def tasks(self, *tags):
        """The step's tasks (every task of a foreach), newest first."""
        for task in self:
            if all(tag in task.tags for tag in tags):
                yield task

    @property
    def task(self):
        """A task of the step: the only one, for a step outside a foreach."""
        for task in self:
            return task
        return None

    @property
    def finished_at(self):
        """When the step's last task finished; None while any task is unfinished."""
        times = [Task._finished_ms(doc) for doc in self._task_docs()]
        if not times or any(t is None for t in times):
            return None
        return _time(max(times))

    def __getitem__(self, task_id):
        if not isinstance(task_id, str):
            task_id = str(task_id)
        for doc in self._task_docs():
            if doc["task_id"] == task_id:
                return Task(_object=doc, _step=self, **self._child_kwargs())
        raise KeyError(task_id)


def _task_created_ms(doc):
    attempts = doc.get("attempts") or []
    if attempts:
        return attempts[0]["started_at_unix_ms"]
    return 0


class MetaflowData:
    """A task's artifacts by attribute: `task.data.model` loads `model` when asked."""

    def __init__(self, artifacts):
        self._artifacts = {artifact.id: artifact for artifact in artifacts}

    def __getattr__(self, name):
        artifacts = self.__dict__.get("_artifacts", {})
        if name not in artifacts:
            raise AttributeError(name)
        return artifacts[name].data

    def __contains__(self, name):
        return name in self._artifacts

    def __dir__(self):
        return list(self._artifacts) + list(object.__dir__(self))

    def __str__(self):
        return "<MetaflowData: %s>" % ", ".join(self._artifacts)

    __repr__ = __str__


class Task(MetaflowObject):
    """One execution of a step: `Task('TrainFlow/42/train/7')`, a container of artifacts.

    `Task(pathspec, attempt=n)` shows attempt `n`'s logs; by default the latest attempt's.
    """

    _NAME = "task"

    def __init__(self, pathspec=None, attempt=None, _object=None, _step=None, _store=None,
                 _namespace_check=True, _current_namespace=None):
        store = _store or _store_default()
        ns = _current_namespace if _current_namespace is not None else get_namespace()
        super().__init__(store, _namespace_check, ns)
        if _object is None:
            flow, run_id, step, task_id = _split(
                pathspec, 4, "Task('FlowName/RunID/StepName/TaskID')"
            )
            for kind, value in (("flow name", flow), ("run id", run_id), ("step name", step),
                                ("task id", task_id)):
                _ds.check_name(kind, value)
            run = Run("%s/%s" % (flow, run_id), _store=store, _namespace_check=_namespace_check,
                      _current_namespace=ns)
            _object = store.read_task(flow, run_id, step, task_id)
            if _object is None:
                raise MetaflowNotFound("Task('%s') does not exist" % pathspec)
            _step = Step(_flow=flow, _run=run, _name=step, _store=store,
                         _namespace_check=self._namespace_check, _current_namespace=ns)
        self._object = _object
        self._step = _step
        self.id = _object["task_id"]
        self._flow_name = _object["flow"]
        self._pathspec = "%s/%s/%s/%s" % (_object["flow"], _object["run_id"], _object["step"], self.id)
        self._manifest = None
        if attempt is not None:
            if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
                raise MetaflowNotFound("attempt must be a non-negative integer, not %r" % (attempt,))
            known = [a["attempt"] for a in _object.get("attempts") or []]
            if attempt not in known:
                raise MetaflowNotFound(
                    "Task('%s') has no attempt %d (its attempts: %s)"
                    % (self._pathspec, attempt, ", ".join(str(a) for a in known) or "none")
                )
        self._attempt = attempt

    def _tags(self):
        return self._step._tags()

    def _doc(self):
        """The task's metadata; re-read on each use while the task is running."""
        if self._object["status"] == "running":
            o = self._object
            fresh = self._ds.read_task(o["flow"], o["run_id"], o["step"], o["task_id"])
            if fresh is not None:
                self._object = fresh
            self._manifest = None
        return self._object

    def _attempts(self):
        return self._doc().get("attempts") or []

    def _created_at(self):
        attempts = self._attempts()
        if attempts:
            return _time(attempts[0]["started_at_unix_ms"])
        return self._step._run.created_at

    @staticmethod
    def _finished_ms(doc):
        if doc["status"] == "running":
            return None
        attempts = doc.get("attempts") or []
        return attempts[-1].get("finished_at_unix_ms") if attempts else None

    @property
    def parent(self):
        return self._step

    @property
    def successful(self):
        """True if the task succeeded (in its last attempt)."""
        return self._doc()["status"] == "succeeded"

    @property
    def finished(self):
        """True once the task has ended, successfully or not."""
        return self._doc()["status"] != "running"

    @property
    def status(self):
        """`running`, `succeeded` or `failed`, as `task.json` says."""
        return self._doc()["status"]

    @property
    def finished_at(self):
        """When the task's last attempt ended; None while it runs."""
        return _time(self._finished_ms(self._doc()))

    @property
    def current_attempt(self):
        """The attempt this object shows: the one asked for, else the latest started."""
        if self._attempt is not None:
            return self._attempt
        attempts = self._attempts()
        return attempts[-1]["attempt"] if attempts else 0

    @property
    def attempts(self):
        """Each attempt's record (`attempt`, `status`, times, `exit_code`/`signal`)."""
        return [dict(a) for a in self._attempts()]

    @property
    def origin_run_id(self):
        """For a task cloned by `flowc resume`, the run it was copied from; else None."""
        origin = self._object.get("origin")
        return origin["run_id"] if origin else None

    @property
    def origin_pathspec(self):
        origin = self._object.get("origin")
        if not origin:
            return None
        return "%s/%s/%s/%s" % (self._flow_name, origin["run_id"], self._object["step"], origin["task_id"])

    @property
    def parent_task_pathspecs(self):
        for parent in self._object.get("parents") or []:
            yield "%s/%s/%s/%s" % (self._flow_name, self._object["run_id"], parent["step"], parent["task_id"])

    @property
    def parent_tasks(self):
        run = self._step._run
        for parent in self._object.get("parents") or []:
            try:
                yield run._step(parent["step"])[parent["task_id"]]
            except KeyError:
                continue

    @property
    def child_task_pathspecs(self):
        for task in self.child_tasks:
            yield task.pathspec

    @property
    def child_tasks(self):
        run = self._step._run
        me = {"step": self._object["step"], "task_id": self.id}
        for name in run._step_names():
            try:
                step = run._step(name)
            except KeyError:
                continue
            for doc in step._task_docs():
                if me in (doc.get("parents") or []):
                    yield Task(_object=doc, _step=step, **self._child_kwargs())

    def _entries(self):
        if self._manifest is None or self._object["status"] == "running":
            o = self._doc()
            self._manifest = self._ds.read_manifest(
                o["flow"], o["run_id"], o["step"], o["task_id"], o["status"]
            )
        return self._manifest

    def __iter__(self):
        """The task's artifacts, private ones (`_name`) left out, by name."""
        for name in sorted(self._entries()):
            if not name.startswith("_"):
                yield DataArtifact(_name=name, _entry=self._entries()[name], _task=self)

    def __getitem__(self, name):
        entries = self._entries()
        if not isinstance(name, str) or name not in entries:
            raise KeyError(name)
        return DataArtifact(_name=name, _entry=entries[name], _task=self)

    @property
    def data(self):
        """The artifacts' values by attribute: `task.data.model` (loaded on access)."""
        return MetaflowData(self)

    @property
    def artifacts(self):
        """The `DataArtifact`s by attribute: `task.artifacts.model.data`."""
        arts = list(self)
        return namedtuple("MetaflowArtifacts", [a.id for a in arts])._make(arts)

    @property
    def index(self):
        """The index of this task in its innermost foreach; None outside a foreach."""
        try:
            stack = self["_foreach_stack"].data
        except KeyError:
            return None
        if not stack:
            return None
        frame = stack[-1]
        return frame.get("index") if isinstance(frame, dict) else getattr(frame, "index", None)

    def _log(self, stream):
        o = self._object
        data = self._ds.read_log(o["flow"], o["run_id"], o["step"], o["task_id"],
                                 self.current_attempt, stream)
        return data.decode("utf-8", "replace")

    @property
    def stdout(self):
        """What the task printed to stdout (the attempt this object shows)."""
        return self._log("stdout")

    @property
    def stderr(self):
        """What the task printed to stderr (the attempt this object shows)."""
        return self._log("stderr")

    @property
    def stdout_size(self):
        o = self._object
        return self._ds.log_size(o["flow"], o["run_id"], o["step"], o["task_id"], self.current_attempt, "stdout")

    @property
    def stderr_size(self):
        o = self._object
        return self._ds.log_size(o["flow"], o["run_id"], o["step"], o["task_id"], self.current_attempt, "stderr")

    def loglines(self, stream, as_unicode=True):
        """Yields `(None, line)` for each line of `stream` (flowc logs carry no timestamps)."""
        text = self._log(stream)
        for line in text.splitlines():
            yield None, line if as_unicode else line.encode("utf-8")

    @property
    def code(self):
        return None

    def __str__(self):
        if self._attempt is not None:
            return "Task('%s', attempt=%d)" % (self._pathspec, self._attempt)
        return "Task('%s')" % self._pathspec


class DataArtifact(MetaflowObject):
    """One artifact of a task: `DataArtifact('TrainFlow/42/train/7/model')`; `.data` loads it."""

    _NAME = "artifact"

    def __init__(self, pathspec=None, _name=None, _entry=None, _task=None, _store=None,
                 _namespace_check=True, _current_namespace=None):
        if _task is None:
            flow, run_id, step, task_id, name = _split(
                pathspec, 5, "DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')"
            )
            _ds.check_name("artifact name", name)
            _task = Task("/".join((flow, run_id, step, task_id)), _store=_store,
                         _namespace_check=_namespace_check, _current_namespace=_current_namespace)
            try:
                _entry = _task._entries()[name]
            except KeyError:
                raise MetaflowNotFound("DataArtifact('%s') does not exist" % pathspec) from None
            _name = name
        super().__init__(_task._ds, _task._namespace_check, _task._current_namespace)
        self._task = _task
        self._entry = _entry
        self.id = _name
        self._pathspec = "%s/%s" % (_task.pathspec, _name)

    def _tags(self):
        return self._task._tags()

    def _created_at(self):
        return self._task.finished_at or self._task.created_at

    @property
    def parent(self):
        return self._task

    @property
    def data(self):
        """The value, loaded from the store now (each access loads it again)."""
        return self._ds.load_value(self._task._flow_name, self._task.pathspec, self.id, self._entry)

    @property
    def sha(self):
        """The SHA-256 of the stored (uncompressed) bytes, in hex."""
        return self._entry["hash"]

    @property
    def size(self):
        """Size in bytes of the stored (pickled, uncompressed) value."""
        size = self._entry.get("size")
        return size if isinstance(size, int) else 0

    @property
    def type(self):
        """The Python type of the value, as the task recorded it (`builtins.dict`)."""
        return self._entry.get("type")

    @property
    def encoding(self):
        return self._entry.get("encoding")

    @property
    def finished_at(self):
        return self.created_at


__all__ = [
    "DataArtifact",
    "Flow",
    "Metaflow",
    "MetaflowData",
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
