//! A simulated phone behind a real adb server, for tests and for trying hwnas without a phone.

use crate::adb::host::{self, wait_bounded, AdbError};
use crate::adb::AdbTarget;
use crate::target::TargetError;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const HOST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a simulated phone (or its private adb server) did not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no free port")]
    NoPort(#[source] std::io::Error),
    #[error("cannot run {} (install Android platform-tools or `apt install adb`)", .adb.display())]
    NoAdb {
        adb: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every attempt failed; the last one's error.
    #[error("could not start an adb server")]
    Server(#[source] AdbError),
    #[error("cannot start {} (build it with `cargo build -p latency`)", .daemon.display())]
    NoDaemon {
        daemon: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} did not start (first line {line:?})", .daemon.display())]
    Silent { daemon: PathBuf, line: String },
    #[error(transparent)]
    Adb(#[from] AdbError),
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it right away).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A real adb server on a private port, killed (`adb -P PORT kill-server`) when dropped.
#[derive(Debug)]
pub struct AdbServer {
    adb: PathBuf,
    port: u16,
}

impl AdbServer {
    /// Starts `adb` (from PATH) on a free port.
    pub fn start() -> Result<AdbServer, SimError> {
        AdbServer::start_with(Path::new("adb"))
    }

    /// Starts the given adb binary on a free port (retrying if another process takes the port first).
    pub fn start_with(adb: &Path) -> Result<AdbServer, SimError> {
        let mut last = None;
        for _ in 0..3 {
            let port = free_port().map_err(SimError::NoPort)?;
            let child = Command::new(adb)
                .args(["-P", &port.to_string(), "start-server"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|source| SimError::NoAdb { adb: adb.into(), source })?;
            let server = AdbServer { adb: adb.to_path_buf(), port };
            match wait_bounded(child, START_TIMEOUT, "adb start-server")
                .and_then(|_| host::request(&server.addr(), "host:version", HOST_TIMEOUT))
            {
                Ok(_) => return Ok(server),
                Err(e) => last = Some(e), // dropping `server` kills whatever started
            }
        }
        Err(SimError::Server(last.expect("three attempts")))
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for AdbServer {
    fn drop(&mut self) {
        if let Ok(child) = Command::new(&self.adb)
            .args(["-P", &self.port.to_string(), "kill-server"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            let _ = wait_bounded(child, Duration::from_secs(10), "adb kill-server");
        }
    }
}

/// How the simulated phone looks and misbehaves.
#[derive(Clone, Debug)]
pub struct PhoneOptions {
    pub model: String,
    pub soc: String,
    pub board: String,
    /// Default: the host CPU's Android ABI.
    pub abi: Option<String>,
    pub props: Vec<(String, String)>,
    /// Features announced to the adb server (default `shell_v2,cmd`; "" emulates an old phone).
    pub features: Option<String>,
    /// Unplug (drop the connection and exit) when command N+1 arrives.
    pub exit_after_commands: Option<usize>,
    /// Never answer commands matching this regex.
    pub hang_on: Option<String>,
    /// Answer `muted` (exit 0) instead of running commands matching this regex.
    pub mute_on: Option<String>,
    /// The `hwnas-adbd` binary; default: `$HWNAS_ADBD`, else next to the running executable, else PATH.
    pub daemon: Option<PathBuf>,
    /// The `adb` binary for the private server; default `adb` from PATH.
    pub adb: Option<PathBuf>,
    /// Let the daemon log to this process's stderr.
    pub verbose: bool,
}

impl Default for PhoneOptions {
    fn default() -> Self {
        PhoneOptions {
            model: "hwnas-sim".into(),
            soc: "simulated".into(),
            board: "hwnas".into(),
            abi: None,
            props: Vec::new(),
            features: None,
            exit_after_commands: None,
            hang_on: None,
            mute_on: None,
            daemon: None,
            adb: None,
            verbose: false,
        }
    }
}

/// Where `hwnas-adbd` lives when not given: `$HWNAS_ADBD`, beside the current executable
/// (or one directory up, for test binaries in target/*/deps), else `hwnas-adbd` on PATH.
pub fn find_daemon() -> PathBuf {
    if let Some(p) = std::env::var_os("HWNAS_ADBD") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("hwnas-adbd");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("hwnas-adbd")
}

static NEXT_ROOT: AtomicUsize = AtomicUsize::new(0);

/// A running `hwnas-adbd` adopted by an adb server. Dropping it disconnects the device,
/// stops the daemon, removes its sandbox and (if it started one) kills its adb server.
#[derive(Debug)]
pub struct SimulatedPhone {
    daemon: Child,
    root: PathBuf,
    serial: String,
    server_addr: String,
    /// Declared last: the server outlives the daemon while dropping.
    own_server: Option<AdbServer>,
}

impl SimulatedPhone {
    /// Starts a simulator and a private adb server, and connects them.
    pub fn start(opts: PhoneOptions) -> Result<SimulatedPhone, SimError> {
        let server = match &opts.adb {
            Some(adb) => AdbServer::start_with(adb)?,
            None => AdbServer::start()?,
        };
        let addr = server.addr();
        SimulatedPhone::launch(&addr, Some(server), opts)
    }

    /// Starts a simulator and connects it to an adb server that is already running
    /// (several phones can share one server).
    pub fn start_on(server: &str, opts: PhoneOptions) -> Result<SimulatedPhone, SimError> {
        SimulatedPhone::launch(server, None, opts)
    }

    fn launch(server: &str, own_server: Option<AdbServer>, opts: PhoneOptions) -> Result<SimulatedPhone, SimError> {
        let daemon_path = opts.daemon.clone().unwrap_or_else(find_daemon);
        let root = std::env::temp_dir().join(format!(
            "hwnas-sim-{}-{}",
            std::process::id(),
            NEXT_ROOT.fetch_add(1, Ordering::SeqCst)
        ));
        let mut cmd = Command::new(&daemon_path);
        cmd.args(["--port", "0", "--root"]).arg(&root);
        cmd.args(["--model", &opts.model, "--soc", &opts.soc, "--board", &opts.board]);
        if let Some(abi) = &opts.abi {
            cmd.args(["--abi", abi]);
        }
        for (k, v) in &opts.props {
            cmd.arg("--prop").arg(format!("{k}={v}"));
        }
        if let Some(f) = &opts.features {
            cmd.arg(format!("--features={f}"));
        }
        if let Some(n) = opts.exit_after_commands {
            cmd.args(["--exit-after-commands", &n.to_string()]);
        }
        if let Some(r) = &opts.hang_on {
            cmd.args(["--hang-on", r]);
        }
        if let Some(r) = &opts.mute_on {
            cmd.args(["--mute-on", r]);
        }
        if opts.verbose {
            cmd.arg("--verbose");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        cmd.stderr(if opts.verbose { Stdio::inherit() } else { Stdio::null() });
        let mut daemon = cmd.spawn().map_err(|source| SimError::NoDaemon { daemon: daemon_path.clone(), source })?;

        // The daemon prints its port first; read it on a thread so a stuck daemon cannot hang us.
        let stdout = daemon.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let mut phone =
            SimulatedPhone { daemon, root, serial: String::new(), server_addr: server.to_string(), own_server };
        let Some(device_addr) = line.trim().strip_prefix("hwnas-adbd listening on ").map(str::to_string) else {
            return Err(SimError::Silent { daemon: daemon_path, line: line.trim().into() });
        };
        phone.serial = host::connect(server, &device_addr, START_TIMEOUT)?;
        Ok(phone)
    }

    /// `host:port` of the adb server the phone is connected to.
    pub fn server(&self) -> String {
        self.server_addr.clone()
    }

    /// The adb serial (`127.0.0.1:PORT`).
    pub fn serial(&self) -> String {
        self.serial.clone()
    }

    /// The sandbox directory holding the phone's /data, /sdcard, ...
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of a device path inside the sandbox (e.g. to check a pushed file).
    pub fn host_path(&self, device_path: &str) -> PathBuf {
        PathBuf::from(format!("{}{device_path}", self.root.display()))
    }

    /// An [`AdbTarget`] for this phone.
    pub fn target(&self) -> Result<AdbTarget, TargetError> {
        AdbTarget::new(&self.server_addr, &self.serial)
    }

    /// Kills the daemon abruptly, like pulling the cable.
    pub fn unplug(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl Drop for SimulatedPhone {
    fn drop(&mut self) {
        if self.own_server.is_none() && !self.serial.is_empty() {
            let _ = host::disconnect(&self.server_addr, &self.serial, HOST_TIMEOUT);
        }
        self.unplug();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
