//! `hwnas`: hardware-aware neural architecture search from the command line.
mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
