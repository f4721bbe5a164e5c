"""Flow parameters: `Parameter`, `JSONType` and `IncludeFile`, and how their values are resolved.

A parameter is a class attribute of the flow. Its value is resolved once per run (by the
run's `_parameters` task, from the values the scheduler passes and the defaults) and
stored as an artifact; every step then reads it as a read-only attribute.
"""

import os
import sys
import json

from .exception import MetaflowException


class ParameterError(MetaflowException):
    headline = "Invalid parameter value"


class JSONTypeClass:
    """Marks a parameter whose value is JSON text, stored as the decoded object."""

    name = "JSON"

    def convert(self, value):
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ParameterError("%r is not valid JSON: %s" % (value, exc)) from None

    def __repr__(self):
        return "JSON"


JSONType = JSONTypeClass()


class ParameterContext:
    """What a callable default receives (Metaflow's deploy-time field context)."""

    def __init__(self, flow_name, user_name, parameter_name):
        self.flow_name = flow_name
        self.user_name = user_name
        self.parameter_name = parameter_name
        self.logger = print
        self.ds_type = "local"
        self.configs = None


_TRUE = frozenset(("1", "true", "t", "yes", "y", "on"))
_FALSE = frozenset(("0", "false", "f", "no", "n", "off"))


class Parameter:
    """A run-time parameter of the flow, read in every step as `self.<attribute>`.

    The value is read-only: assigning it in a step raises an AttributeError naming the
    parameter, because a parameter is shared by every task of the run.
    """

    IS_INCLUDE_FILE = False

    def __init__(
        self,
        name,
        default=None,
        type=None,
        help=None,
        required=None,
        show_default=None,
        separator=None,
        **kwargs
    ):
        self.name = name
        self.default = default
        self.type = type
        self.help = help
        self.required = bool(required)
        self.show_default = show_default
        self.separator = separator
        self.kwargs = kwargs
        self._attribute = None

    def __set_name__(self, owner, attribute):
        self._attribute = attribute

    def __get__(self, flow, owner=None):
        if flow is None:
            return self
        return flow._flowc_parameter(self._attribute or self.name)

    def __set__(self, flow, value):
        raise AttributeError(
            "parameter `%s` is read-only: a step cannot assign it (store a derived "
            "value under another name instead)" % (self._attribute or self.name)
        )

    def __delete__(self, flow):
        raise AttributeError("parameter `%s` is read-only" % (self._attribute or self.name))

    def __repr__(self):
        return "Parameter(%r)" % self.name

    # The harness's `_parameters` task resolves each value through these methods.

    def _effective_type(self):
        if self.type is not None:
            return self.type
        default = self.default
        if default is None or callable(default):
            return str
        return type(default)

    def _resolve_default(self, flow_name, user_name):
        default = self.default
        if callable(default) and not isinstance(default, type):
            default = default(ParameterContext(flow_name, user_name, self.name))
        if isinstance(self.type, JSONTypeClass) and isinstance(default, str):
            return self.type.convert(default)
        # Metaflow splits the value by the separator wherever it came from, so a
        # default string becomes a list just as a value given on the command line does.
        return self._split(default)

    def _convert(self, value):
        """Converts a value the scheduler passed (JSON: often a string) to the parameter's type."""
        kind = self._effective_type()
        if self._splits(value):
            return [self._convert_scalar(kind, part) for part in value.split(self.separator)]
        return self._convert_scalar(kind, value)

    def _splits(self, value):
        # As in Metaflow: an empty string and an empty separator split nothing, and the
        # parts are kept as they are (no stripping).
        return bool(self.separator) and isinstance(value, str) and value != ""

    def _split(self, value):
        return value.split(self.separator) if self._splits(value) else value

    def _convert_scalar(self, kind, value):
        if value is None:
            return None
        if isinstance(kind, JSONTypeClass):
            return kind.convert(value)
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE:
                return True
            if isinstance(value, str) and value.strip().lower() in _FALSE:
                return False
            raise ParameterError(
                "parameter `%s` expects a boolean, got %r" % (self.name, value)
            )
        if kind is int:
            if isinstance(value, bool):
                raise ParameterError("parameter `%s` expects an integer, got %r" % (self.name, value))
            if isinstance(value, float) and not value.is_integer():
                raise ParameterError("parameter `%s` expects an integer, got %r" % (self.name, value))
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ParameterError(
                    "parameter `%s` expects an integer, got %r" % (self.name, value)
                ) from None
        if kind is float:
            if isinstance(value, bool):
                raise ParameterError("parameter `%s` expects a number, got %r" % (self.name, value))
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ParameterError(
                    "parameter `%s` expects a number, got %r" % (self.name, value)
                ) from None
        if kind is str:
            if isinstance(value, (list, dict)):
                raise ParameterError("parameter `%s` expects a string, got %r" % (self.name, value))
            return value if isinstance(value, str) else json.dumps(value)
        if callable(kind) and isinstance(value, str):
            return kind(value)
        return value


class IncludeFile(Parameter):
    """A parameter whose value is a file's content, read when the run starts."""

    IS_INCLUDE_FILE = True

    def __init__(self, name, required=None, is_text=True, encoding="utf-8", help=None, **kwargs):
        default = kwargs.pop("default", None)
        super().__init__(name, default=default, type=None, help=help, required=required, **kwargs)
        self.is_text = is_text
        self.encoding = encoding

    def _effective_type(self):
        return str

    def _resolve_default(self, flow_name, user_name):
        path = super()._resolve_default(flow_name, user_name)
        return None if path is None else self._read(path)

    def _convert(self, value):
        if not isinstance(value, str):
            raise ParameterError("parameter `%s` expects a file path, got %r" % (self.name, value))
        return self._read(value)

    def _read(self, path):
        path = _include_path(path)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ParameterError(
                "parameter `%s` names file %r, which cannot be read: %s"
                % (self.name, path, exc.strerror)
            ) from None
        return data.decode(self.encoding) if self.is_text else data


def _include_path(path):
    """Where an `IncludeFile` path points: as given when it exists from the working
    directory (as for `python flow.py run`), else beside the flow file. An orchestrated
    task runs in an empty directory with the flow's code package unpacked elsewhere, and
    the package holds the files next to the flow."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    main = sys.modules.get("__main__")
    flow_file = getattr(main, "__file__", None)
    if flow_file:
        beside = os.path.join(os.path.dirname(os.path.abspath(flow_file)), path)
        if os.path.exists(beside):
            return beside
    return path


def flow_parameters(cls):
    """The flow class's parameters as sorted (attribute name, Parameter) pairs, inherited ones included."""
    found = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Parameter):
                found[attr] = value
            elif attr in found:
                del found[attr]
    return sorted(found.items())
