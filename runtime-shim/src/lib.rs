//! flowc-shim as a library: the runtime pieces the `flowc-shim` binary and `flowc run`
//! share.

pub mod cards;
pub mod client;
pub mod package;
pub mod python;
pub mod scheduler;
pub mod store;
pub mod task;
