"""`FlowSpec`: the base class of a flow, with the run-time semantics of Metaflow's.

Artifacts are plain attributes. Those a step inherits from its parent are loaded
lazily, on first read, through the loader the harness installs (so a step that never
reads a 500 MB artifact never fetches it); what a step assigns is persisted when it
ends. Parameters and class-level constants are read-only.
"""

from itertools import islice

from .exception import (
    InvalidNextException,
    MetaflowException,
    MissingInMergeArtifactsException,
    UnhandledInMergeArtifactsException,
)
from .parameters import Parameter

# Set by the harness while it executes the flow file, so that the customary
# `if __name__ == "__main__": MyFlow()` stops the file there instead of starting a run.
_LOADING_FLOW_FILE = False


class FlowFileLoaded(BaseException):
    """Raised by `FlowSpec()` while the harness loads the flow file: the file is fully read.

    A BaseException so that a user's `except Exception` around the call cannot swallow it.
    """


class TaskState:
    """What every flow object of one task shares: the loader and the run's parameters."""

    def __init__(self, loader, parameters, is_join):
        # loader(name, entry) -> object: fetches and unpickles one artifact by its manifest entry.
        self.loader = loader
        # Parameter attribute name -> manifest entry of the run's `_parameters` task.
        self.parameters = parameters
        self.parameter_cache = {}
        self.is_join = is_join


class Inputs:
    """The parents of a join step: iterable, indexable, and by step name (`inputs.train`)."""

    def __init__(self, flows):
        self._flows = list(flows)
        for flow in self._flows:
            setattr(self, flow._flowc_step, flow)

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return getattr(self, key)
            except AttributeError:
                raise KeyError(key) from None
        return self._flows[key]

    def __iter__(self):
        return iter(self._flows)

    def __len__(self):
        return len(self._flows)

    def __repr__(self):
        return "<inputs from %s>" % ", ".join(f._flowc_step for f in self._flows)


def _is_class_constant(cls, name):
    """True for a class-level value that Metaflow treats as a read-only flow attribute."""
    if name.startswith("_"):
        return False
    for klass in cls.__mro__:
        if name in vars(klass):
            value = vars(klass)[name]
            return not (
                callable(value)
                or isinstance(value, (property, staticmethod, classmethod, type, Parameter))
            )
    return False


def _step_name_of(dst):
    func = getattr(dst, "__func__", None)
    if func is None or not getattr(func, "is_step", False):
        return None
    return func.__name__


class FlowSpec:
    """Base class of a flow: subclass it and mark its methods with `@step`."""

    # Instance attributes that are runtime state, never artifacts.
    _EPHEMERAL = frozenset(("name",))

    def __init__(self, use_cli=True):
        if _LOADING_FLOW_FILE:
            raise FlowFileLoaded()
        if use_cli:
            import sys

            sys.stderr.write(
                "this flow is run by flowc: use `flowc run %s`\n" % (sys.argv[0] or "flow.py")
            )
            raise SystemExit(2)

    # -- construction by the harness -------------------------------------------------

    @classmethod
    def _flowc_create(cls, task, step, data, stack):
        """A flow object for one task (or one input of a join), bypassing __init__."""
        flow = cls.__new__(cls)
        state = flow.__dict__
        state["name"] = cls.__name__
        state["_flowc_task"] = task
        state["_flowc_step"] = step
        # Artifact name -> manifest entry, for the values this object can load lazily.
        state["_flowc_data"] = dict(data)
        # Artifact name -> the manifest entry a cached attribute was loaded from.
        state["_flowc_loaded"] = {}
        state["_flowc_stack"] = list(stack)
        state["_flowc_input_cache"] = {}
        state["_flowc_transition"] = None
        return flow

    # -- attribute access ------------------------------------------------------------

    def __getattr__(self, name):
        # Only called when normal lookup fails: a lazily loaded artifact, or an error.
        if name.startswith("__") or name.startswith("_flowc_"):
            raise AttributeError(name)
        state = self.__dict__
        data = state.get("_flowc_data")
        if data is not None and name in data:
            entry = data[name]
            value = state["_flowc_task"].loader(name, entry)
            state[name] = value
            state["_flowc_loaded"][name] = entry
            return value
        raise AttributeError(
            "flow %s has no attribute '%s'" % (type(self).__name__, name)
        )

    def __setattr__(self, name, value):
        if _is_class_constant(type(self), name):
            raise AttributeError(
                "flow-level attribute `%s` is read-only: a step cannot assign it" % name
            )
        object.__setattr__(self, name, value)
        self.__dict__.get("_flowc_loaded", {}).pop(name, None)

    def __delattr__(self, name):
        state = self.__dict__
        found = False
        if name in state:
            del state[name]
            state.get("_flowc_loaded", {}).pop(name, None)
            found = True
        data = state.get("_flowc_data")
        if data is not None and name in data:
            del data[name]
            found = True
        if not found:
            object.__delattr__(self, name)

    def _flowc_parameter(self, name):
        task = self.__dict__.get("_flowc_task")
        if task is None:
            raise AttributeError("parameter `%s` is only readable while a step runs" % name)
        cache = task.parameter_cache
        if name not in cache:
            entry = task.parameters.get(name)
            if entry is None:
                raise AttributeError(
                    "parameter `%s` has no value in this run (the run's `_parameters` "
                    "task did not store it)" % name
                )
            cache[name] = task.loader(name, entry)
        return cache[name]

    def _flowc_has(self, name):
        """hasattr() without loading anything."""
        state = self.__dict__
        return name in state or name in state["_flowc_data"] or hasattr(type(self), name)

    def __reduce__(self):
        raise MetaflowException(
            "flows cannot be stored as artifacts: did you assign `self` or one of the "
            "join's `inputs` to an attribute? Store the values you need instead, "
            "e.g. `self.x = inputs.a.x`"
        )

    def __str__(self):
        step = self.__dict__.get("_flowc_step")
        if step is None:
            return "<flow %s>" % type(self).__name__
        index = ",".join(str(frame["index"]) for frame in self._flowc_stack)
        if index:
            return "<flow %s step %s[%s]>" % (type(self).__name__, step, index)
        return "<flow %s step %s>" % (type(self).__name__, step)

    # -- foreach ---------------------------------------------------------------------

    @property
    def index(self):
        """The zero-based index of this task in the innermost foreach, or None."""
        stack = self.__dict__.get("_flowc_stack")
        return stack[-1]["index"] if stack else None

    @property
    def input(self):
        """The element of the innermost foreach's list this task processes, or None."""
        stack = self.__dict__.get("_flowc_stack")
        return self._flowc_find_input(len(stack) - 1) if stack else None

    def foreach_stack(self):
        """(index, number of splits, value) for each enclosing foreach, outermost first."""
        return [
            (frame["index"], frame["num_splits"], self._flowc_find_input(level))
            for level, frame in enumerate(self.__dict__.get("_flowc_stack", ()))
        ]

    def _flowc_find_input(self, level):
        cache = self.__dict__["_flowc_input_cache"]
        if level not in cache:
            frame = self._flowc_stack[level]
            try:
                values = getattr(self, frame["var"])
            except AttributeError:
                # Past a join the list is gone unless the join merged it; Metaflow gives
                # None too. Not cached: a later merge_artifacts may bring it back.
                return None
            else:
                try:
                    cache[level] = values[frame["index"]]
                except TypeError:
                    cache[level] = next(islice(values, frame["index"], frame["index"] + 1))
        return cache[level]

    # -- transitions -----------------------------------------------------------------

    def next(self, *dsts, **kwargs):
        """Names the step(s) that run after this one; see Metaflow's `FlowSpec.next`."""
        step = self._flowc_step
        foreach = kwargs.pop("foreach", None)
        condition = kwargs.pop("condition", None)
        kwargs.pop("num_parallel", None)
        if kwargs:
            raise InvalidNextException(
                "step `%s` passes unknown keyword argument `%s` to self.next()"
                % (step, next(iter(kwargs)))
            )
        if self._flowc_transition is not None:
            raise InvalidNextException(
                "step `%s` calls self.next() more than once; call it exactly once" % step
            )

        if condition is not None:
            self._flowc_transition = self._flowc_switch(step, dsts, condition, foreach)
            return
        if len(dsts) == 1 and isinstance(dsts[0], dict):
            raise InvalidNextException(
                "step `%s` passes a dictionary to self.next() without `condition=`" % step
            )
        if not dsts:
            raise InvalidNextException(
                "step `%s` calls self.next() without a target step" % step
            )
        targets = []
        for position, dst in enumerate(dsts, 1):
            name = _step_name_of(dst)
            if name is None:
                raise InvalidNextException(
                    "argument %d of self.next() in step `%s` is not a step of the flow "
                    "(write `self.<step name>`)" % (position, step)
                )
            targets.append(name)

        if foreach is None:
            kind = "linear" if len(targets) == 1 else "branch"
            self._flowc_transition = {"kind": kind, "targets": targets}
            return
        if not isinstance(foreach, str):
            raise InvalidNextException(
                "step `%s`: the `foreach` argument of self.next() must be a string naming "
                "an artifact" % step
            )
        if len(targets) != 1:
            raise InvalidNextException(
                "step `%s`: a foreach transition takes exactly one target step" % step
            )
        try:
            values = getattr(self, foreach)
        except AttributeError:
            raise InvalidNextException(
                "foreach variable `self.%s` in step `%s` does not exist; assign it before "
                "calling self.next()" % (foreach, step)
            ) from None
        try:
            num_splits = len(values)
        except TypeError:
            try:
                num_splits = sum(1 for _ in values)
            except TypeError as exc:
                raise InvalidNextException(
                    "foreach variable `self.%s` in step `%s` is not iterable: %s"
                    % (foreach, step, exc)
                ) from None
        if num_splits == 0:
            raise InvalidNextException(
                "foreach variable `self.%s` in step `%s` is empty: a foreach needs at "
                "least one element" % (foreach, step)
            )
        self._flowc_transition = {
            "kind": "foreach",
            "targets": targets,
            "foreach_var": foreach,
            "num_splits": num_splits,
        }

    def _flowc_switch(self, step, dsts, condition, foreach):
        if len(dsts) != 1 or not isinstance(dsts[0], dict) or not dsts[0]:
            raise InvalidNextException(
                "step `%s`: with `condition=`, self.next() takes one non-empty dictionary "
                "mapping condition values to steps" % step
            )
        if not isinstance(condition, str):
            raise InvalidNextException(
                "step `%s`: the `condition` argument of self.next() must be a string naming "
                "an artifact" % step
            )
        if foreach is not None:
            raise InvalidNextException(
                "step `%s`: a switch cannot be combined with `foreach`" % step
            )
        cases = dsts[0]
        try:
            value = getattr(self, condition)
        except AttributeError:
            raise InvalidNextException(
                "condition variable `self.%s` in step `%s` does not exist; assign it before "
                "calling self.next()" % (condition, step)
            ) from None
        try:
            chosen = cases[value]
        except (KeyError, TypeError):
            raise RuntimeError(
                "switch condition variable '%s' has value %r which is not in the available "
                "cases: %r" % (condition, value, list(cases))
            ) from None
        name = _step_name_of(chosen)
        if name is None:
            raise InvalidNextException(
                "step `%s`: the switch case %r does not name a step of the flow" % (step, value)
            )
        return {
            "kind": "switch",
            "targets": [name],
            "condition": condition,
            "case": value if isinstance(value, (str, int, float, bool)) or value is None else repr(value),
        }

    # -- joins -----------------------------------------------------------------------

    def merge_artifacts(self, inputs, exclude=None, include=None):
        """Copies the artifacts of a join's inputs that agree (same value) onto this step.

        Only names this step has not set are considered. A name whose value differs
        between inputs is a conflict: nothing is merged and the error lists every
        conflicting name, so the step can set those explicitly first.
        """
        step = self._flowc_step
        include = list(include or ())
        exclude = set(exclude or ())
        if not self._flowc_task.is_join or not isinstance(inputs, Inputs):
            raise MetaflowException(
                "merge_artifacts can only be called in a join step, with its `inputs`; "
                "step `%s` is not a join" % step
            )
        if include and exclude:
            raise MetaflowException(
                "merge_artifacts takes `include` or `exclude`, not both"
            )
        wanted = set(include)
        to_merge = {}
        unresolved = []
        for inp in inputs:
            for name, entry in inp._flowc_data.items():
                if include:
                    if name not in wanted:
                        continue
                elif name in exclude or name.startswith("_"):
                    continue
                if self._flowc_has(name):
                    continue
                previous = to_merge.setdefault(name, entry)
                if previous["hash"] != entry["hash"] and name not in unresolved:
                    unresolved.append(name)
        if unresolved:
            raise UnhandledInMergeArtifactsException(
                "step `%s` cannot merge artifacts whose values differ between its inputs: "
                "[%s]; set them explicitly (self.<name> = ...) before calling "
                "merge_artifacts" % (step, ", ".join(sorted(unresolved))),
                sorted(unresolved),
            )
        missing = [name for name in include if name not in to_merge and not self._flowc_has(name)]
        if missing:
            raise MissingInMergeArtifactsException(
                "step `%s` asks merge_artifacts to include [%s], which no input has"
                % (step, ", ".join(missing)),
                missing,
            )
        self._flowc_data.update(to_merge)
