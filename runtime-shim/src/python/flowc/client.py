"""`import flowc.client`: the client API (the same objects as `metaflow.client`)."""

from metaflow.client import *  # noqa: F401,F403 - the whole public API, re-exported
from metaflow.client import __all__  # noqa: F401
