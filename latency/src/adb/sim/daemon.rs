//! The device side of one or more ADB connections: CNXN (no AUTH), stream bookkeeping,
//! service dispatch and fault injection.

use super::message::{self, Message, CLSE, CNXN, MAX_PAYLOAD, OKAY, OPEN, VERSION, WRTE};
use super::sandbox::{Identity, Sandbox};
use super::stream::{self, Stream, Wire};
use super::{command, sync};
use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Everything the daemon needs to know; built by `hwnas-adbd` from its options.
pub struct Config {
    pub sandbox: Sandbox,
    pub identity: Identity,
    /// Unplug after this many commands: the next shell/exec request drops every connection
    /// and the daemon exits (sync sessions do not count).
    pub exit_after_commands: Option<usize>,
    /// Commands matching this never answer (the stream stays open, nothing is run).
    pub hang_on: Option<regex::Regex>,
    /// Commands matching this are not run: the shell prints `muted` and exits 0 (a shell that
    /// answers without running what it was given, e.g. one that is not a POSIX `sh`).
    pub mute_on: Option<regex::Regex>,
    pub verbose: bool,
}

pub struct Shared {
    pub config: Config,
    commands: AtomicUsize,
    /// Open connections by number, so an unplug can drop them all.
    connections: Mutex<HashMap<usize, TcpStream>>,
    next_connection: AtomicUsize,
}

impl Shared {
    pub fn log(&self, line: &str) {
        if self.config.verbose {
            eprintln!("hwnas-adbd: {line}");
        }
    }
}

/// A service request as the host spells it in OPEN.
#[derive(Debug, PartialEq)]
enum Service {
    Command(String, command::Framing),
    Sync,
}

fn parse_service(s: &str) -> Option<Service> {
    if let Some(cmd) = s.strip_prefix("exec:") {
        return Some(Service::Command(cmd.to_string(), command::Framing::Raw));
    }
    if s == "sync:" {
        return Some(Service::Sync);
    }
    let rest = s.strip_prefix("shell")?;
    let (args, cmd) = rest.split_once(':')?;
    if !(args.is_empty() || args.starts_with(',')) {
        return None;
    }
    let framing = if args.split(',').any(|a| a == "v2") { command::Framing::V2 } else { command::Framing::Raw };
    Some(Service::Command(cmd.to_string(), framing))
}

/// Accepts connections forever (each on its own thread).
pub fn serve(listener: TcpListener, config: Config) -> io::Result<()> {
    let shared = Arc::new(Shared {
        config,
        commands: AtomicUsize::new(0),
        connections: Mutex::new(HashMap::new()),
        next_connection: AtomicUsize::new(0),
    });
    for conn in listener.incoming() {
        let conn = conn?;
        let shared = shared.clone();
        std::thread::spawn(move || {
            let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            shared.log(&format!("connection from {peer}"));
            if let Err(e) = connection(conn, &shared) {
                shared.log(&format!("connection from {peer} ended: {e}"));
            }
        });
    }
    Ok(())
}

fn connection(conn: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let number = shared.next_connection.fetch_add(1, Ordering::SeqCst);
    shared.connections.lock().unwrap_or_else(|e| e.into_inner()).insert(number, conn.try_clone()?);
    let wire: Wire = Arc::new(Mutex::new(conn.try_clone()?));
    let mut reader = BufReader::new(conn);
    let mut streams: HashMap<u32, Arc<Stream>> = HashMap::new();
    let mut max_payload = 4096usize;
    let mut next_local = 1u32;
    let result = loop {
        let m = match Message::read_from(&mut reader) {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        streams.retain(|_, s| !s.is_closed());
        match m.command {
            CNXN => {
                max_payload = m.arg1.clamp(1, MAX_PAYLOAD) as usize;
                let banner = shared.config.identity.banner().into_bytes();
                stream::send(&wire, &Message::new(CNXN, VERSION, MAX_PAYLOAD, banner))?;
            }
            OPEN => {
                let name = String::from_utf8_lossy(&m.data).trim_end_matches('\0').to_string();
                let Some(service) = parse_service(&name) else {
                    shared.log(&format!("refusing service {name:?}"));
                    stream::send(&wire, &Message::new(CLSE, 0, m.arg0, Vec::new()))?;
                    continue;
                };
                if let Service::Command(cmd, _) = &service {
                    let n = shared.commands.fetch_add(1, Ordering::SeqCst) + 1;
                    if shared.config.exit_after_commands.is_some_and(|limit| n > limit) {
                        unplug(shared, &cmd.clone());
                    }
                }
                let local = next_local;
                next_local += 1;
                let s = Stream::new(local, m.arg0, wire.clone(), max_payload);
                streams.insert(local, s.clone());
                stream::send(&wire, &Message::new(OKAY, local, m.arg0, Vec::new()))?;
                let sh = shared.clone();
                match service {
                    Service::Command(cmd, _) if sh.config.hang_on.as_ref().is_some_and(|r| r.is_match(&cmd)) => {
                        shared.log(&format!("stream {local}: hanging on {cmd:?}"));
                    }
                    Service::Command(cmd, framing) if sh.config.mute_on.as_ref().is_some_and(|r| r.is_match(&cmd)) => {
                        shared.log(&format!("stream {local}: muting {cmd:?}"));
                        std::thread::spawn(move || command::run(s, sh, "echo muted".into(), framing));
                    }
                    Service::Command(cmd, framing) => {
                        std::thread::spawn(move || command::run(s, sh, cmd, framing));
                    }
                    Service::Sync => {
                        std::thread::spawn(move || sync::run(s, sh));
                    }
                }
            }
            OKAY => {
                if let Some(s) = streams.get(&m.arg1) {
                    s.acknowledged();
                }
            }
            WRTE => {
                if let Some(s) = streams.get(&m.arg1) {
                    // Acknowledge before the service sees the data: its answer (e.g. CLSE after
                    // a sync QUIT) must not overtake this OKAY.
                    stream::send(&wire, &Message::new(OKAY, s.local, s.remote, Vec::new()))?;
                    s.deliver(m.data);
                }
            }
            CLSE => {
                if let Some(s) = streams.remove(&m.arg1) {
                    s.closed_by_host();
                }
            }
            other => shared.log(&format!("ignoring {}", message::name(other))),
        }
    };
    for s in streams.values() {
        s.closed_by_host();
    }
    shared.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(&number);
    result
}

/// Simulates pulling the cable: every connection drops at a message boundary and the
/// daemon exits, so the adb server sees the device vanish.
fn unplug(shared: &Shared, cmd: &str) -> ! {
    let short: String = cmd.chars().take(60).collect();
    eprintln!("hwnas-adbd: unplugging before command {short:?}... (--exit-after-commands)");
    for c in shared.connections.lock().unwrap_or_else(|e| e.into_inner()).values() {
        let _ = c.shutdown(Shutdown::Both);
    }
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use command::Framing;

    #[test]
    fn service_names() {
        assert_eq!(parse_service("shell:echo hi"), Some(Service::Command("echo hi".into(), Framing::Raw)));
        assert_eq!(
            parse_service("shell,v2,TERM=xterm,raw:ls -l /a:b"),
            Some(Service::Command("ls -l /a:b".into(), Framing::V2))
        );
        assert_eq!(parse_service("exec:cat '/x'"), Some(Service::Command("cat '/x'".into(), Framing::Raw)));
        assert_eq!(parse_service("sync:"), Some(Service::Sync));
        assert_eq!(parse_service("shellx:ls"), None);
        assert_eq!(parse_service("reboot:"), None);
    }
}
