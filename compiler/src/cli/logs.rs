//! `flowc logs`.

use super::{Outcome, Status, Terminal};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: &Args, _terminal: &Terminal) -> Outcome {
    Outcome::failure(
        Status::Trouble,
        "error: `flowc logs` is not available yet\n".to_owned(),
    )
}
