//! `hwnas-adbd`: a simulated Android phone for trying hwnas without one.
//!
//! It listens on 127.0.0.1:PORT and speaks the device side of the ADB protocol, so a real
//! adb server adopts it with `adb connect 127.0.0.1:PORT`. Commands run on the host with
//! `sh -c`; device storage (/data, /sdcard, /storage, /system, /vendor) lives under `--root`,
//! while /sys (CPU frequencies, thermal zones) and /proc are the host's own.
//! It listens on loopback only, but any local user can connect and run commands as the user
//! who started it, exactly as with a phone in debugging mode: run it on machines you own.

use clap::Parser;
use latency::adb::sim::daemon::{serve, Config};
use latency::adb::sim::sandbox::{host_abi, Identity, Sandbox};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hwnas-adbd", version, about = "A simulated phone that a real adb server can connect to")]
struct Args {
    /// TCP port on 127.0.0.1 (0 picks a free one; the chosen port is printed first on stdout).
    #[arg(long, default_value_t = 5555)]
    port: u16,
    /// Sandbox directory holding the device's /data, /sdcard, /storage, /system and /vendor.
    #[arg(long)]
    root: PathBuf,
    /// ro.product.model
    #[arg(long, default_value = "hwnas-sim")]
    model: String,
    /// ro.product.name and ro.product.device (shown as product:/device: by `adb devices -l`).
    #[arg(long, default_value = "hwnas_sim")]
    product: String,
    /// ro.product.board, ro.board.platform and ro.hardware.
    #[arg(long, default_value = "hwnas")]
    board: String,
    /// ro.soc.model
    #[arg(long, default_value = "simulated")]
    soc: String,
    /// ro.product.cpu.abi (default: the host CPU's Android ABI).
    #[arg(long)]
    abi: Option<String>,
    /// ro.serialno
    #[arg(long, default_value = "HWNASSIM0001")]
    serialno: String,
    /// Features announced to the host (comma-separated); leave out shell_v2 to emulate a
    /// pre-Android-7 phone whose shell merges stderr into stdout and reports no exit code.
    #[arg(long, default_value = "shell_v2,cmd")]
    features: String,
    /// Any other property, as KEY=VALUE (repeatable).
    #[arg(long = "prop", value_name = "KEY=VALUE")]
    props: Vec<String>,
    /// Fault injection: after N shell/exec commands, drop every connection and exit (an unplugged phone).
    #[arg(long, value_name = "N")]
    exit_after_commands: Option<usize>,
    /// Fault injection: never answer shell/exec commands whose text (as the host sent it, wrappers
    /// included) matches this regular expression (a hung command).
    #[arg(long, value_name = "REGEX")]
    hang_on: Option<String>,
    /// Fault injection: do not run shell/exec commands matching this regular expression; answer
    /// `muted` with exit code 0 instead (a shell that ignores what it is given).
    #[arg(long, value_name = "REGEX")]
    mute_on: Option<String>,
    /// Log connections, services and commands to stderr.
    #[arg(short, long)]
    verbose: bool,
}

/// Why the simulator did not start or stopped serving; the io or regex error is the source.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("--prop {0:?}: expected KEY=VALUE")]
    Prop(String),
    #[error("{flag}")]
    Regex {
        flag: &'static str,
        #[source]
        source: regex::Error,
    },
    #[error("--root {}", .0.display())]
    Root(PathBuf, #[source] std::io::Error),
    #[error("127.0.0.1:{0}")]
    Listen(u16, #[source] std::io::Error),
    #[error("serving adb")]
    Serve(#[source] std::io::Error),
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hwnas-adbd: error: {}", latency::error::Chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn regex(flag: &'static str, pattern: &Option<String>) -> Result<Option<regex::Regex>, Error> {
    pattern.as_deref().map(regex::Regex::new).transpose().map_err(|source| Error::Regex { flag, source })
}

fn run(a: Args) -> Result<(), Error> {
    let mut props = Vec::new();
    for p in &a.props {
        let (k, v) = p.split_once('=').ok_or_else(|| Error::Prop(p.clone()))?;
        props.push((k.to_string(), v.to_string()));
    }
    let hang_on = regex("--hang-on", &a.hang_on)?;
    let mute_on = regex("--mute-on", &a.mute_on)?;
    let identity = Identity {
        model: a.model,
        product: a.product,
        board: a.board,
        soc: a.soc,
        abi: a.abi.unwrap_or_else(|| host_abi().to_string()),
        serialno: a.serialno,
        features: a.features,
        props,
    };
    let sandbox = Sandbox::create(&a.root, &identity).map_err(|e| Error::Root(a.root.clone(), e))?;
    let listener = TcpListener::bind(("127.0.0.1", a.port)).map_err(|e| Error::Listen(a.port, e))?;
    let port = listener.local_addr().map_err(|e| Error::Listen(a.port, e))?.port();
    // The first stdout line is the contract with launchers (SimulatedPhone reads it).
    println!("hwnas-adbd listening on 127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    eprintln!(
        "hwnas-adbd: {} ({}) on 127.0.0.1:{port}; device storage under {}; adb connect 127.0.0.1:{port}",
        identity.model,
        identity.abi,
        sandbox.root().display()
    );
    let config =
        Config { sandbox, identity, exit_after_commands: a.exit_after_commands, hang_on, mute_on, verbose: a.verbose };
    serve(listener, config).map_err(Error::Serve)
}
