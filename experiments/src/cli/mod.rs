//! One module per subcommand; this file only wires them up and reports errors.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// `println!` for command output. When stdout is closed early (`hwnas spaces --json | head`)
/// the process ends quietly with success, as `head` users expect, instead of panicking on
/// the broken pipe. Rust ignores SIGPIPE, and restoring it would also kill hwnas on a
/// write to an exited child, so the pipe is handled here, where output is written.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout_line(format_args!($($arg)*))
    };
}

pub(crate) fn write_stdout_line(line: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        panic!("failed printing to stdout: {e}");
    }
}

mod arch;
mod devices;
mod eval_predictor;
mod experiments;
mod export;
mod fit;
mod fit_import;
mod local_lut;
mod measure_args;
mod numeric;
mod profile;
mod search;
mod search_dnas;
mod spaces_cmd;
mod train;

#[derive(Parser)]
#[command(
    name = "hwnas",
    version,
    about = "Hardware-aware neural architecture search: profile phones, fit latency predictors, search and export"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the search spaces, their dimensions and sizes.
    Spaces(spaces_cmd::Args),
    /// Inspect and sample architectures.
    #[command(subcommand)]
    Arch(arch::ArchCommand),
    /// List phones on adb servers with model, SoC, ABI, cores, frequencies, governor and temperature.
    Devices(devices::Args),
    /// Fit a latency predictor (lut, kernel, mlp, flops, or all to compare) and report held-out metrics.
    Fit(Box<fit::Args>),
    /// Score a saved predictor on a dataset (RMSE, MAPE, ±5/10 %, Kendall τ, Spearman ρ).
    EvalPredictor(eval_predictor::Args),
    /// Time a space's layer table or sampled networks on phones (adb) or the host, resumably, into Parquet.
    Profile(Box<profile::Args>),
    /// Export an architecture as a JSON config, TorchScript, TFLite or ONNX (seeded or given weights).
    Export(Box<export::Args>),
    /// Search a space under a latency target (evolution, regularized, nsga2, random, rl).
    Search(Box<search::Args>),
    /// Train a supernet (ofa-*, singlepath, fbnet*) or one architecture, with resumable checkpoints.
    Train(Box<train::TrainArgs>),
    /// Top-1/top-5 of a checkpoint's (sub-)network after BN re-calibration; optional TorchScript export.
    Eval(Box<train::EvalArgs>),
    /// Time an OFA supernet training step against its extracted largest sub-network.
    BenchTrain(train::BenchArgs),
    /// Reproductions of the papers' tables and figures (list, run NAME).
    #[command(subcommand)]
    Experiments(experiments::Command),
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Spaces(a) => spaces_cmd::run(a),
        Command::Arch(c) => arch::run(c),
        Command::Devices(a) => devices::run(a),
        Command::Fit(a) => fit::run(*a),
        Command::EvalPredictor(a) => eval_predictor::run(a),
        Command::Profile(a) => profile::run(*a),
        Command::Export(a) => export::run(*a),
        Command::Search(a) => search::run(*a),
        Command::Train(a) => train::train(*a),
        Command::Eval(a) => train::eval(*a),
        Command::BenchTrain(a) => train::bench(a),
        Command::Experiments(c) => experiments::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
