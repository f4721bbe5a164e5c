//! The `flowc` binary: the command line over the `flowc` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
