"""`@step` and the step and flow decorators, kept as markers for the runtime to read.

flowc compiles decorators statically; at run time the harness only needs a few of
them (`@catch`, `@environment`), so every decorator records its attributes on the
function or class it decorates and returns it unchanged.
"""


class StepDecoratorMarker:
    """One decorator application on a step: its name and attributes."""

    __slots__ = ("name", "attributes")

    def __init__(self, name, attributes):
        self.name = name
        self.attributes = attributes

    def __repr__(self):
        return "@%s(%s)" % (
            self.name,
            ", ".join("%s=%r" % item for item in sorted(self.attributes.items())),
        )


def step(func=None, *, start=False, end=False, node_info=None):
    """Marks a method of a FlowSpec subclass as a step of the flow.

    Both spellings work: `@step`, and `@step(start=True)` / `@step(end=True)`, which
    make a step of any name the flow's entry or exit (the scheduler learns which from
    the compiled plan; the flags are kept for code that reads them).
    """

    def apply(target):
        if not callable(target):
            raise TypeError("@step decorates a method, not %r" % (target,))
        target.is_step = True
        target.name = target.__name__
        target.is_start_step = bool(start)
        target.is_end_step = bool(end)
        target.node_info = dict(node_info or {})
        if not hasattr(target, "decorators"):
            target.decorators = []
        return target

    if func is not None:
        return apply(func)
    return apply


def _step_decorator(name):
    def decorator(func=None, **attributes):
        def apply(target):
            markers = getattr(target, "decorators", None)
            if markers is None:
                markers = []
                target.decorators = markers
            markers.append(StepDecoratorMarker(name, attributes))
            return target

        # Both `@catch` and `@catch(var="x")` are valid spellings.
        if func is not None and callable(func) and not attributes:
            return apply(func)
        if func is not None:
            raise TypeError("@%s takes keyword arguments only" % name)
        return apply

    decorator.__name__ = name
    decorator.__qualname__ = name
    decorator.__doc__ = "The `@%s` step decorator (read by the flowc compiler and runtime)." % name
    return decorator


def _flow_decorator(name):
    def decorator(cls=None, **attributes):
        def apply(target):
            markers = list(vars(target).get("_flow_decorators", ()))
            markers.append(StepDecoratorMarker(name, attributes))
            target._flow_decorators = markers
            return target

        if cls is not None and isinstance(cls, type) and not attributes:
            return apply(cls)
        if cls is not None:
            raise TypeError("@%s takes keyword arguments only" % name)
        return apply

    decorator.__name__ = name
    decorator.__qualname__ = name
    decorator.__doc__ = "The `@%s` flow decorator (read by the flowc compiler)." % name
    return decorator


def step_decorator(func, name):
    """The first marker named `name` on a step function, or None."""
    for marker in getattr(func, "decorators", ()):
        if marker.name == name:
            return marker
    return None


batch = _step_decorator("batch")
card = _step_decorator("card")
catch = _step_decorator("catch")
conda = _step_decorator("conda")
environment = _step_decorator("environment")
kubernetes = _step_decorator("kubernetes")
parallel = _step_decorator("parallel")
pypi = _step_decorator("pypi")
resources = _step_decorator("resources")
retry = _step_decorator("retry")
secrets = _step_decorator("secrets")
timeout = _step_decorator("timeout")
uv = _step_decorator("uv")

conda_base = _flow_decorator("conda_base")
exit_hook = _flow_decorator("exit_hook")
project = _flow_decorator("project")
pypi_base = _flow_decorator("pypi_base")
schedule = _flow_decorator("schedule")
trigger = _flow_decorator("trigger")
trigger_on_finish = _flow_decorator("trigger_on_finish")
uv_base = _flow_decorator("uv_base")
