"""Metaflow's `metaflow.plugins` import paths, for code that imports card components from there."""
