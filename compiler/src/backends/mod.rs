//! Backends: pure functions from a checked [`flowc_ir::Flow`] to the documents a target
//! runs. A backend never reads files or the environment; the CLI writes what it returns.

pub mod argo;
pub mod local;
pub mod sfn;
