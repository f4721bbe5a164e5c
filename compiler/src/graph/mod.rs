//! Renderings of a flow's step graph: text (like Metaflow's `show`), Mermaid, DOT, JSON.
