//! Host services of an adb server (`host:devices-l`, `host:connect:`, `host:version`),
//! spoken directly over the smart-socket protocol with connect and read timeouts.
//!
//! Why not `adb_client::server::ADBServer` for these: on every connection to a loopback
//! address it runs `adb start-server` for the *default* port (it cannot pass `-P`), which
//! would start a stray server on 5037 when we talk to 127.0.0.1:15037, and it has no
//! connect timeout, so an unreachable remote server would stall discovery.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The default local adb server.
pub const DEFAULT_SERVER: &str = "127.0.0.1:5037";

/// An adb server address that is not `HOST:PORT`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AddressError {
    #[error("an adb server address is HOST:PORT, got nothing")]
    Empty,
    #[error("`{0}` has no host before the `:` (HOST:PORT)")]
    NoHost(String),
    #[error("`{server}`: the port `{port}` is not a number (HOST:PORT, e.g. 127.0.0.1:5037)")]
    PortNotANumber { server: String, port: String },
    #[error("`{server}`: port {port} is not a valid TCP port (1-65535)")]
    BadPort { server: String, port: String },
}

/// Why an adb server could not be asked, or did not do what it was asked. Each names the
/// server; a socket error is the source.
#[derive(Debug, thiserror::Error)]
pub enum AdbError {
    #[error("adb server {0}")]
    Address(AddressError),
    #[error("adb server {server}: cannot resolve")]
    Resolve {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("adb server {0}: no IPv4 address")]
    NoIpv4(String),
    /// `hint`: how to start a local server when none listens.
    #[error("adb server {server}: cannot connect{hint}")]
    Connect {
        server: String,
        hint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("adb server {server}: no answer to {service} within {timeout:?}")]
    NoAnswer { server: String, service: String, timeout: Duration },
    #[error("adb server {server}: {service}")]
    Io {
        server: String,
        service: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{server} is not an adb server (it answered {answered:?})")]
    NotAdb { server: String, answered: String },
    /// The server refused the request, saying why.
    #[error("adb server {server}: {said}")]
    Refused { server: String, said: String },
    /// `adb connect` said it did not connect.
    #[error("adb server {server}: connect {device}: {said}")]
    NotConnected { server: String, device: String, said: String },
    #[error("adb server {server}: {device} did not come online within {timeout:?} (state: {state})")]
    NotOnline { server: String, device: String, timeout: Duration, state: String },
    /// A child process (`adb start-server`, …).
    #[error("{what} failed ({status})")]
    ChildFailed { what: String, status: std::process::ExitStatus },
    #[error("{what} did not finish within {timeout:?}")]
    ChildTimeout { what: String, timeout: Duration },
    #[error("{what}")]
    Child {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Checks the form of an adb server address (`HOST:PORT`, or a bare `HOST` meaning port 5037)
/// without resolving it, so a bad `--adb` value is refused when the command line is read.
pub fn check_address(server: &str) -> Result<String, AddressError> {
    let named = |port: &str| (server.to_string(), port.to_string());
    match server.rsplit_once(':') {
        _ if server.trim().is_empty() => Err(AddressError::Empty),
        Some(("", _)) => Err(AddressError::NoHost(server.into())),
        Some((_, port)) if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) => {
            let (server, port) = named(port);
            Err(AddressError::PortNotANumber { server, port })
        }
        Some((_, port)) => match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(server.to_string()),
            _ => {
                let (server, port) = named(port);
                Err(AddressError::BadPort { server, port })
            }
        },
        None => Ok(server.to_string()),
    }
}

/// Resolves `host:port` (a bare host means port 5037) to an IPv4 socket address;
/// adb_client only talks IPv4.
pub fn resolve(server: &str) -> Result<std::net::SocketAddrV4, AdbError> {
    check_address(server).map_err(AdbError::Address)?;
    let with_port = if server.contains(':') { server.to_string() } else { format!("{server}:5037") };
    let addrs = with_port.to_socket_addrs().map_err(|source| AdbError::Resolve { server: server.into(), source })?;
    addrs
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| AdbError::NoIpv4(server.into()))
}

/// Sends one host request and returns the length-prefixed answer.
pub fn request(server: &str, service: &str, timeout: Duration) -> Result<String, AdbError> {
    let addr = resolve(server)?;
    let mut s = TcpStream::connect_timeout(&addr.into(), timeout).map_err(|source| {
        let hint = if source.kind() == std::io::ErrorKind::ConnectionRefused && addr.ip().is_loopback() {
            format!(" (start one with `adb -P {} start-server`)", addr.port())
        } else {
            String::new()
        };
        AdbError::Connect { server: server.into(), hint, source }
    })?;
    let io_err = |source: std::io::Error| {
        if matches!(source.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            AdbError::NoAnswer { server: server.into(), service: service.into(), timeout }
        } else {
            AdbError::Io { server: server.into(), service: service.into(), source }
        }
    };
    s.set_read_timeout(Some(timeout)).and_then(|_| s.set_write_timeout(Some(timeout))).map_err(io_err)?;
    s.write_all(format!("{:04x}{service}", service.len()).as_bytes()).map_err(io_err)?;
    let mut status = [0u8; 4];
    s.read_exact(&mut status).map_err(io_err)?;
    if &status != b"OKAY" && &status != b"FAIL" {
        return Err(AdbError::NotAdb {
            server: server.into(),
            answered: String::from_utf8_lossy(&status).into_owned(),
        });
    }
    let body = read_hex_block(&mut s).map_err(io_err)?;
    match &status {
        b"OKAY" => Ok(body),
        _ => Err(AdbError::Refused { server: server.into(), said: body }),
    }
}

fn read_hex_block(s: &mut TcpStream) -> std::io::Result<String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = usize::from_str_radix(std::str::from_utf8(&len).unwrap_or("x"), 16)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad length prefix"))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// One line of `host:devices-l`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DeviceLine {
    pub serial: String,
    /// `device`, `offline`, `unauthorized`, `no permissions`, `authorizing`, `connecting`, ...
    pub state: String,
    pub product: Option<String>,
    pub model: Option<String>,
    pub device: Option<String>,
    pub transport_id: Option<u32>,
}

/// Parses `host:devices-l` output: `SERIAL STATE [key:value ...]`, where the state may be
/// several words (`no permissions (...); see [...]`).
pub fn parse_devices(text: &str) -> Vec<DeviceLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(serial) = words.next() else { continue };
        let mut d = DeviceLine {
            serial: serial.to_string(),
            state: String::new(),
            product: None,
            model: None,
            device: None,
            transport_id: None,
        };
        // State words come before the first known `key:value` field.
        let mut state = Vec::new();
        let mut in_fields = false;
        for w in words {
            match w.split_once(':') {
                Some(("product", v)) => d.product = Some(v.to_string()),
                Some(("model", v)) => d.model = Some(v.to_string()),
                Some(("device", v)) => d.device = Some(v.to_string()),
                Some(("transport_id", v)) => d.transport_id = v.parse().ok(),
                Some(("usb", _)) => {}
                _ => {
                    if !in_fields {
                        state.push(w);
                    }
                    continue;
                }
            }
            in_fields = true;
        }
        d.state = if state.first() == Some(&"no") && state.get(1) == Some(&"permissions") {
            "no permissions".to_string()
        } else {
            state.first().map(|s| s.to_string()).unwrap_or_default()
        };
        out.push(d);
    }
    out
}

/// Whether a serial is a device the server reaches over TCP (`HOST:PORT`, as `adb connect`
/// names it), which an adb server forgets or leaves offline until it is connected again.
pub fn is_tcp_serial(serial: &str) -> bool {
    serial.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
}

/// The `adb` command line that reaches `server` (`-H`/`-P` unless it is the default server).
pub fn adb_command(server: &str, rest: &str) -> String {
    let (host, port) = server.rsplit_once(':').unwrap_or((server, "5037"));
    let mut cmd = String::from("adb");
    if !matches!(host, "127.0.0.1" | "localhost") {
        cmd += &format!(" -H {host}");
    }
    if port != "5037" {
        cmd += &format!(" -P {port}");
    }
    format!("{cmd} {rest}")
}

/// How to bring a device that dropped off back: a TCP device needs `adb connect` (the server
/// does not reconnect it by itself), a USB one a replug or `adb reconnect offline`.
pub fn reconnect_advice(server: &str, serial: &str) -> String {
    if is_tcp_serial(serial) {
        format!("reconnect it with `{}`", adb_command(server, &format!("connect {serial}")))
    } else {
        format!("replug it, or `{}`", adb_command(server, "reconnect offline"))
    }
}

/// [`state_problem`] with advice for this device on this server (e.g. `adb connect` for TCP devices).
pub fn device_problem(server: &str, serial: &str, state: &str) -> Option<String> {
    match state {
        "offline" => Some(format!("offline: the device stopped answering ({})", reconnect_advice(server, serial))),
        _ => state_problem(state),
    }
}

/// What to tell the user about a device that is listed but cannot be used.
pub fn state_problem(state: &str) -> Option<String> {
    Some(match state {
        "device" => return None,
        "offline" => "offline: the device stopped answering (replug it, or `adb reconnect offline`)".into(),
        "unauthorized" => "unauthorized: accept the USB debugging prompt on the phone, then list again".into(),
        "authorizing" => "authorizing: waiting for the phone to accept this computer's key".into(),
        "connecting" => "connecting: the adb server has not finished the handshake yet".into(),
        "no permissions" => "no permissions: this user may not open the USB device (install adb udev rules)".into(),
        "recovery" | "sideload" | "rescue" | "bootloader" => format!("{state}: the phone is not booted into Android"),
        other => format!("{other}: not usable for profiling"),
    })
}

/// Asks `server` to connect to a device listening on `device_addr` (what `adb connect` does),
/// then waits until the device is online. Returns its serial (`device_addr`).
/// `adb connect` exits 0 even on failure, so the server's answer text is checked here.
pub fn connect(server: &str, device_addr: &str, timeout: Duration) -> Result<String, AdbError> {
    let deadline = Instant::now() + timeout;
    let answer = request(server, &format!("host:connect:{device_addr}"), timeout)?;
    if !(answer.starts_with("connected to") || answer.starts_with("already connected to")) {
        return Err(AdbError::NotConnected {
            server: server.into(),
            device: device_addr.into(),
            said: answer.trim().into(),
        });
    }
    let mut last = String::from("not listed");
    while Instant::now() < deadline {
        let listed = parse_devices(&request(server, "host:devices-l", timeout)?);
        match listed.iter().find(|d| d.serial == device_addr) {
            Some(d) if d.state == "device" => return Ok(d.serial.clone()),
            Some(d) => last = d.state.clone(),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(AdbError::NotOnline { server: server.into(), device: device_addr.into(), timeout, state: last })
}

/// Starts the adb server for a loopback `server` when nothing listens there, as `adb devices`
/// does (`adb` from PATH). Best effort: a failure shows when the server is queried.
pub fn ensure_local_server(server: &str) {
    let Ok(addr) = resolve(server) else { return };
    if !addr.ip().is_loopback() || TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1)).is_ok() {
        return;
    }
    if let Ok(child) = Command::new("adb")
        .args(["-P", &addr.port().to_string(), "start-server"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        let _ = wait_bounded(child, Duration::from_secs(30), "adb start-server");
    }
}

/// Waits for a child with a deadline; kills it when it overruns.
pub(crate) fn wait_bounded(mut child: Child, timeout: Duration, what: &str) -> Result<(), AdbError> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(AdbError::ChildFailed { what: what.into(), status }),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(AdbError::ChildTimeout { what: what.into(), timeout });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => return Err(AdbError::Child { what: what.into(), source }),
        }
    }
}

/// Drops a TCP device from a server (`adb disconnect`).
pub fn disconnect(server: &str, device_addr: &str, timeout: Duration) -> Result<(), AdbError> {
    request(server, &format!("host:disconnect:{device_addr}"), timeout).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_l_lines() {
        let text = "127.0.0.1:5555         device product:sdk model:Pixel_4 device:flame transport_id:3\n\
                    0123ABCD               unauthorized usb:1-1 transport_id:4\n\
                    R58M                   no permissions (user in plugdev group); see [http://developer.android.com/tools/device.html] usb:1-2 transport_id:5\n\
                    emulator-5554          offline transport_id:6\n";
        let d = parse_devices(text);
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].serial, "127.0.0.1:5555");
        assert_eq!(
            (d[0].state.as_str(), d[0].model.as_deref(), d[0].transport_id),
            ("device", Some("Pixel_4"), Some(3))
        );
        assert_eq!(d[1].state, "unauthorized");
        assert_eq!((d[2].state.as_str(), d[2].transport_id), ("no permissions", Some(5)));
        assert_eq!(d[3].state, "offline");
        assert!(state_problem("device").is_none());
        assert!(state_problem("unauthorized").unwrap().contains("USB debugging"));
    }

    #[test]
    fn resolves_default_port_and_rejects_garbage() {
        assert_eq!(resolve("127.0.0.1").unwrap().port(), 5037);
        assert_eq!(resolve("127.0.0.1:15037").unwrap().port(), 15037);
        assert!(resolve("no such host name.invalid:1").is_err());
        // A port out of range is said to be one, not taken for part of a host name.
        let e = resolve("127.0.0.1:99999").unwrap_err().to_string();
        assert!(e.contains("port 99999 is not a valid TCP port (1-65535)") && !e.contains("resolve"), "{e}");
        assert!(check_address("127.0.0.1:0").unwrap_err().to_string().contains("port 0"));
        assert!(check_address("127.0.0.1:abc").unwrap_err().to_string().contains("`abc` is not a number"));
        assert!(check_address(":5037").unwrap_err().to_string().contains("no host"));
        assert_eq!(check_address("phone-lab").unwrap(), "phone-lab");
    }

    #[test]
    fn tcp_devices_are_told_to_connect_again() {
        assert!(is_tcp_serial("127.0.0.1:5555") && !is_tcp_serial("R58M123") && !is_tcp_serial("emulator-5554"));
        assert_eq!(
            reconnect_advice("127.0.0.1:5037", "10.0.0.7:5555"),
            "reconnect it with `adb connect 10.0.0.7:5555`"
        );
        assert_eq!(
            reconnect_advice("lab:15037", "127.0.0.1:40000"),
            "reconnect it with `adb -H lab -P 15037 connect 127.0.0.1:40000`"
        );
        assert!(reconnect_advice("127.0.0.1:5037", "R58M").contains("`adb reconnect offline`"));
        assert!(device_problem("127.0.0.1:5037", "1.2.3.4:5555", "offline")
            .unwrap()
            .contains("adb connect 1.2.3.4:5555"));
        assert!(!device_problem("127.0.0.1:5037", "1.2.3.4:5555", "offline").unwrap().contains("reconnect offline"));
    }

    #[test]
    fn unreachable_server_is_a_message_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err =
            request(&format!("127.0.0.1:{port}"), "host:version", Duration::from_secs(2)).unwrap_err().to_string();
        assert!(err.contains("cannot connect") && err.contains("start-server"), "{err}");
    }
}
