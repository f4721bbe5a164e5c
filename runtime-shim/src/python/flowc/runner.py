"""`import flowc.runner`: the Runner API (the same objects as `metaflow.runner`)."""

from metaflow.runner import *  # noqa: F401,F403 - the whole public API, re-exported
from metaflow.runner import __all__  # noqa: F401
