"""`metaflow.plugins.cards`: Metaflow's import path of the card machinery; see `metaflow.cards`."""
