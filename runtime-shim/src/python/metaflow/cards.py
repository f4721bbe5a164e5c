"""Card components (`from metaflow.cards import Markdown, Table, ...`) and `current.card`.

A step decorated with `@card` adds components to its cards through `current.card`.
Nothing is rendered in Python: when the step ends, the harness asks every card for a
small JSON description of its components (`describe()`: a `type` and that type's
fields, images as base64) and sends it to flowc-shim, which renders the HTML page.
Components therefore show their state at the end of the task: a `ProgressBar`
updated in a loop shows its last value.

Names and constructor arguments follow Metaflow's, so card code written for Metaflow
runs unchanged. Cards never fail a task: a component that cannot be described becomes
an error box on its card.
"""

import base64
import json
import sys
import textwrap

# How much of a value's repr an `Artifact` or a table cell shows before truncating.
_REPR_LIMIT = 2000
# Rows `Table.from_dataframe(truncate=True)` keeps.
_DATAFRAME_ROWS = 100
# The types a table cell may hold as plain text.
_PLAIN = (str, bool, int, float, type(None))

# Card types whose pages show user components (Metaflow's `ALLOW_USER_COMPONENTS`).
EDITABLE_CARD_TYPES = ("default", "blank")


class MetaflowCardComponent:
    """Base class of every card component."""

    REALTIME_UPDATABLE = False

    def describe(self):
        """The component's JSON description (a dict with `type`)."""
        raise NotImplementedError

    def update(self, *args, **kwargs):
        """Changes the component's content (only some components support it)."""


class UserComponent(MetaflowCardComponent):
    """Base class of the components a step may append."""


def _short_repr(value, limit=_REPR_LIMIT):
    """`repr(value)` abbreviated by reprlib and cut at `limit` characters."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = 200
    shortener.maxother = 200
    shortener.maxlist = shortener.maxtuple = shortener.maxset = 20
    shortener.maxdict = 20
    shortener.maxlevel = 4
    try:
        text = shortener.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the card
        text = "<%s: repr failed: %s>" % (type(value).__name__, exc)
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


def _full_repr(value):
    try:
        return repr(value)
    except Exception as exc:
        return "<%s: repr failed: %s>" % (type(value).__name__, exc)


def _cell(value):
    """One table cell: a component's description, or the value as text."""
    if isinstance(value, MetaflowCardComponent):
        return describe_component(value)
    if isinstance(value, str):
        return {"type": "text", "text": value}
    if isinstance(value, _PLAIN):
        return {"type": "text", "text": str(value)}
    return {"type": "text", "text": _short_repr(value)}


def describe_component(component):
    """`component.describe()`, or an error box saying why it failed."""
    if not isinstance(component, MetaflowCardComponent):
        return {
            "type": "error",
            "title": "not a card component",
            "text": "%s is not a card component (use Markdown, Table, Image, Artifact, "
            "ProgressBar or VegaChart)" % _short_repr(component, 200),
        }
    try:
        description = component.describe()
        # The description crosses to flowc-shim as JSON: check it here, where the
        # error can still name the component.
        json.dumps(description, allow_nan=False)
        return description
    except Exception as exc:
        return {
            "type": "error",
            "title": "%s could not be shown" % type(component).__name__,
            "text": "%s: %s" % (type(exc).__name__, exc),
        }


class Markdown(UserComponent):
    """A block of Markdown text; common indentation is removed, as in Metaflow."""

    REALTIME_UPDATABLE = True

    def __init__(self, text=None):
        self._text = _dedent(text)

    def update(self, text=None):
        self._text = _dedent(text)

    def describe(self):
        return {"type": "markdown", "text": "" if self._text is None else str(self._text)}


def _dedent(text):
    return None if text is None else textwrap.dedent(str(text))


class Artifact(UserComponent):
    """Any Python value, shown as its repr (abbreviated unless `compressed=False`)."""

    REALTIME_UPDATABLE = True

    def __init__(self, artifact, name=None, compressed=True):
        self._artifact = artifact
        self._name = name
        self._compressed = compressed

    def update(self, artifact):
        self._artifact = artifact

    def describe(self):
        value = self._artifact
        text = _short_repr(value) if self._compressed else _full_repr(value)
        return {
            "type": "artifact",
            "name": None if self._name is None else str(self._name),
            "value_type": "%s.%s" % (type(value).__module__, type(value).__qualname__),
            "repr": text,
        }


class Table(UserComponent):
    """A table of rows; a cell holds text, a number or another component."""

    REALTIME_UPDATABLE = True

    def __init__(self, data=None, headers=None, disable_updates=False):
        self._data = [list(row) for row in (data or [])]
        self._headers = [str(header) for header in (headers or [])]
        self._note = None
        if disable_updates:
            self.REALTIME_UPDATABLE = False

    def update(self, *args, **kwargs):
        sys.stderr.write(
            "@card: a Table cannot be updated; update the components inside it instead\n"
        )

    @classmethod
    def from_dataframe(cls, dataframe=None, truncate=True):
        """A table of a pandas DataFrame: its columns as headers, its first rows."""
        kind = "%s.%s" % (type(dataframe).__module__, type(dataframe).__qualname__)
        if kind != "pandas.core.frame.DataFrame":
            return cls(headers=["Object type %s not supported" % kind], disable_updates=True)
        total = len(dataframe)
        frame = dataframe.head(_DATAFRAME_ROWS) if truncate else dataframe
        headers = [str(column) for column in frame.columns]
        rows = [list(row) for row in frame.itertuples(index=False, name=None)]
        table = cls(data=rows, headers=headers, disable_updates=True)
        if len(rows) < total:
            table._note = "showing the first %d of %d rows" % (len(rows), total)
        return table

    def describe(self):
        return {
            "type": "table",
            "headers": list(self._headers),
            "rows": [[_cell(value) for value in row] for row in self._data],
            "note": self._note,
        }


# Magic numbers of the image formats a browser shows from a data: URL.
_IMAGE_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _image_mime(data):
    for magic, mime in _IMAGE_FORMATS:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class Image(UserComponent):
    """An image from PNG (or JPEG, GIF, WebP) bytes, a matplotlib figure or a PIL image."""

    REALTIME_UPDATABLE = True

    def __init__(self, src=None, label=None, disable_updates=True):
        self._src = src
        self._label = label
        if disable_updates:
            self.REALTIME_UPDATABLE = False

    def update(self, image, label=None):
        if isinstance(image, Image):
            self._src, self._label = image._src, image._label
        else:
            self._src = image
        if label is not None:
            self._label = label

    @classmethod
    def from_matplotlib(cls, plot, label=None, disable_updates=False):
        """An image of a matplotlib Figure (or of the figure of an Axes), as PNG."""
        import io

        figure = plot if hasattr(plot, "savefig") else getattr(plot, "get_figure", lambda: None)()
        if figure is None or not hasattr(figure, "savefig"):
            return _ImageError(
                "Image.from_matplotlib needs a matplotlib Figure or Axes, not %s"
                % type(plot).__name__,
                label,
            )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return cls(buffer.getvalue(), label=label, disable_updates=disable_updates)

    @classmethod
    def from_pil_image(cls, pilImage, label=None, disable_updates=False):  # noqa: N803 (Metaflow's name)
        """An image of a PIL image, as PNG."""
        import io

        if not hasattr(pilImage, "save"):
            return _ImageError(
                "Image.from_pil_image needs a PIL image, not %s" % type(pilImage).__name__, label
            )
        buffer = io.BytesIO()
        pilImage.save(buffer, format="PNG")
        return cls(buffer.getvalue(), label=label, disable_updates=disable_updates)

    def describe(self):
        label = None if self._label is None else str(self._label)
        src = self._src
        if isinstance(src, str) and src.startswith("data:"):
            head, _, payload = src.partition(",")
            if ";base64" not in head:
                raise ValueError("an image data URL must be base64-encoded")
            src = base64.b64decode(payload, validate=True)
        if isinstance(src, (bytearray, memoryview)):
            src = bytes(src)
        if not isinstance(src, bytes):
            raise TypeError(
                "Image takes the image's bytes (PNG, JPEG, GIF or WebP), not %s"
                % type(src).__name__
            )
        mime = _image_mime(src)
        if mime is None:
            raise ValueError("the bytes are not a PNG, JPEG, GIF or WebP image")
        return {
            "type": "image",
            "mime": mime,
            "data": base64.b64encode(src).decode("ascii"),
            "label": label,
        }


class _ImageError(Image):
    """What `Image.from_*` returns for an object it cannot convert: an error box."""

    def __init__(self, message, label):
        super().__init__(None, label=label)
        self._message = message

    def describe(self):
        return {"type": "error", "title": "image could not be made", "text": self._message}


class Error(UserComponent):
    """An exception (or any value) shown as an error box, with an optional title."""

    def __init__(self, exception, title=None):
        self._exception = exception
        self._title = title

    def describe(self):
        return {
            "type": "error",
            "title": None if self._title is None else str(self._title),
            "text": _full_repr(self._exception),
        }


class ProgressBar(UserComponent):
    """A progress bar; `update(new_value)` moves it (the card shows the last value)."""

    type = "progressBar"
    REALTIME_UPDATABLE = True

    def __init__(self, max=100, label=None, value=0, unit=None, metadata=None):  # noqa: A002
        self._max = max
        self._label = label
        self._value = value
        self._unit = unit
        self._metadata = metadata

    def update(self, new_value, metadata=None):
        self._value = new_value
        if metadata is not None:
            self._metadata = metadata

    def describe(self):
        def number(value, what):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("ProgressBar %s must be a number, not %s" % (what, type(value).__name__))
            return value

        def text(value):
            return None if value is None else str(value)

        return {
            "type": "progress_bar",
            "max": number(self._max, "max"),
            "value": number(self._value, "value"),
            "label": text(self._label),
            "unit": text(self._unit),
            "metadata": text(self._metadata),
        }


class VegaChart(UserComponent):
    """A Vega or Vega-Lite chart from its spec (a dict); rendered offline in the card."""

    type = "vegaChart"
    REALTIME_UPDATABLE = True

    def __init__(self, spec, show_controls=False):
        self._spec = spec
        self._show_controls = show_controls

    def update(self, spec=None):
        if spec is not None:
            self._spec = spec

    @classmethod
    def from_altair_chart(cls, altair_chart):
        """A chart of an Altair chart (its Vega-Lite spec)."""
        return cls(altair_chart.to_dict())

    def describe(self):
        if not isinstance(self._spec, dict):
            raise TypeError("VegaChart takes a spec dict, not %s" % type(self._spec).__name__)
        # Round-trips through JSON so that only JSON values reach the page; NaN has no
        # JSON spelling.
        spec = json.loads(json.dumps(self._spec, allow_nan=False))
        return {"type": "vega_chart", "spec": spec, "show_controls": bool(self._show_controls)}


# -- current.card ----------------------------------------------------------------------


class CardComponentManager:
    """The components of one card: what `current.card[id]` returns."""

    def __init__(self, card_type, card_id):
        self.type = card_type
        self.id = card_id
        self._components = []

    def append(self, component, id=None):  # noqa: A002 (Metaflow's name)
        self._components.append(component)

    def extend(self, components):
        for component in components:
            self.append(component)

    def clear(self):
        self._components = []

    def refresh(self, *args, **kwargs):
        """Cards are rendered once, when the task ends; there is nothing to refresh."""

    def components(self):
        return list(self._components)

    def __iter__(self):
        return iter(list(self._components))

    def __len__(self):
        return len(self._components)


class _Detached(CardComponentManager):
    """What `current.card[...]` gives for a card that does not exist: a list that no
    card shows (as in Metaflow), after one warning."""


class CardComponentCollector:
    """`current.card`: the cards of the running step, from its `@card` decorators.

    `append` and `extend` go to the step's default editable card: its only card that
    shows user components, else the only such card without an `id` (Metaflow's rules).
    `current.card["id"]` picks a card by its `id`.
    """

    def __init__(self, decorators=()):
        self._cards = []
        self._by_id = {}
        self._warned = set()
        self._warnings = []
        for attributes in decorators:
            card_type = attributes.get("type", "default")
            card_type = "default" if card_type is None else str(card_type)
            card_id = attributes.get("id")
            card_id = None if card_id is None else str(card_id)
            options = attributes.get("options") or {}
            timeout = attributes.get("timeout", 45)
            self._cards.append(
                {
                    "manager": CardComponentManager(card_type, card_id),
                    "options": options if isinstance(options, dict) else {},
                    "timeout": timeout,
                    "customize": bool(attributes.get("customize", False)),
                }
            )
        ids = [card["manager"].id for card in self._cards if card["manager"].id is not None]
        for card_id in ids:
            if ids.count(card_id) > 1:
                self._warn(
                    "several @card decorators have id `%s`; `current.card['%s']` will not work"
                    % (card_id, card_id)
                )
            else:
                self._by_id[card_id] = next(
                    card["manager"] for card in self._cards if card["manager"].id == card_id
                )
        self._default = self._default_editable()

    def _default_editable(self):
        editable = [card for card in self._cards if card["manager"].type in EDITABLE_CARD_TYPES]
        if len(editable) == 1:
            return editable[0]["manager"]
        customized = [card for card in editable if card["customize"]]
        if len(customized) == 1:
            return customized[0]["manager"]
        without_id = [card for card in editable if card["manager"].id is None]
        if len(without_id) == 1:
            return without_id[0]["manager"]
        return None

    def _warn(self, message):
        if message in self._warned:
            return
        self._warned.add(message)
        self._warnings.append(message)
        sys.stderr.write("@card warning: %s\n" % message)

    def _target(self):
        if self._default is not None:
            return self._default
        if not self._cards:
            self._warn("current.card is used in a step without @card; the components are not shown")
        else:
            self._warn(
                "current.card.append cannot choose among this step's cards; "
                "use current.card['id'] with the `id` of a @card"
            )
        return _Detached("none", None)

    def append(self, component, id=None):  # noqa: A002
        self._target().append(component)

    def extend(self, components):
        self._target().extend(components)

    def clear(self):
        if self._default is not None:
            self._default.clear()

    def refresh(self, *args, **kwargs):
        """Cards are rendered once, when the task ends; there is nothing to refresh."""

    def components(self):
        return self._default.components() if self._default is not None else []

    def get(self, type=None):  # noqa: A002
        """The component lists of the cards of one type (Metaflow's `current.card.get`)."""
        return [card["manager"] for card in self._cards if card["manager"].type == type]

    def __getitem__(self, key):
        manager = self._by_id.get(key)
        if manager is not None:
            return manager
        self._warn(
            "`current.card['%s']` names no card: give a @card decorator `id='%s'`" % (key, key)
        )
        return _Detached("none", key)

    def __setitem__(self, key, value):
        manager = self[key]
        if isinstance(manager, _Detached):
            return
        manager.clear()
        if isinstance(value, MetaflowCardComponent):
            manager.append(value)
        else:
            manager.extend(value)

    def __contains__(self, key):
        return key in self._by_id

    def __iter__(self):
        return iter(self.components())

    def __len__(self):
        return len(self.components())

    def report(self):
        """What flowc-shim renders: every card's settings and described components."""
        cards = []
        for card in self._cards:
            manager = card["manager"]
            cards.append(
                {
                    "type": manager.type,
                    "id": manager.id,
                    "options": _jsonable(card["options"]),
                    "timeout": card["timeout"] if isinstance(card["timeout"], (int, float)) else None,
                    "components": [describe_component(c) for c in manager.components()],
                    "warnings": list(self._warnings),
                }
            )
        return cards


def _jsonable(options):
    """The decorator's options as JSON (values that are not JSON become their repr)."""
    try:
        return json.loads(json.dumps(options, allow_nan=False))
    except (TypeError, ValueError):
        return {str(key): _short_repr(value, 200) for key, value in options.items()}


__all__ = [
    "Artifact",
    "Error",
    "Image",
    "Markdown",
    "MetaflowCardComponent",
    "ProgressBar",
    "Table",
    "UserComponent",
    "VegaChart",
]
