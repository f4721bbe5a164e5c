"""`metaflow.plugins.cards.card_modules`: Metaflow's import path of the card components."""

from ....cards import MetaflowCardComponent  # noqa: F401
