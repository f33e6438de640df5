//! The simulator's wire protocol, byte by byte: handshake, flow control, split sync
//! requests, shell v2 packets, refused services, fault injection. No adb server involved.

use latency::adb::sim::message::{Message, CLSE, CNXN, OKAY, OPEN, WRTE};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Daemon {
    child: Child,
    port: u16,
    root: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn daemon(extra: &[&str]) -> Daemon {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let root = std::env::temp_dir().join(format!(
        "hwnas-proto-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hwnas-adbd"))
        .args(["--port", "0", "--model", "Proto Phone", "--root"])
        .arg(&root)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().rsplit_once(':').unwrap().1.parse().unwrap();
    Daemon { child, port, root }
}

struct Host {
    s: TcpStream,
}

impl Host {
    fn connect(d: &Daemon) -> (Host, Message) {
        let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut h = Host { s };
        h.send(CNXN, 0x0100_0001, 4096, b"host::features=shell_v2\0");
        let banner = h.recv();
        (h, banner)
    }
    fn send(&mut self, cmd: u32, a0: u32, a1: u32, data: &[u8]) {
        Message::new(cmd, a0, a1, data.to_vec()).write_to(&mut self.s).unwrap();
    }
    fn recv(&mut self) -> Message {
        Message::read_from(&mut self.s).unwrap().expect("a message")
    }
    /// Opens a service as local id 1; returns the device's id.
    fn open(&mut self, service: &str) -> u32 {
        self.send(OPEN, 1, 0, format!("{service}\0").as_bytes());
        let m = self.recv();
        assert_eq!((m.command, m.arg1), (OKAY, 1), "open {service}");
        m.arg0
    }
    /// Reads WRTEs (acknowledging each) until CLSE; returns the concatenated payload.
    fn read_to_close(&mut self, remote: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let m = self.recv();
            match m.command {
                WRTE => {
                    assert!(m.data.len() <= 4096, "WRTE above the host's max payload");
                    out.extend(m.data);
                    self.send(OKAY, 1, remote, &[]);
                }
                CLSE => return out,
                other => panic!("unexpected {other:#x}"),
            }
        }
    }
}

#[test]
fn handshake_banner_and_refused_service() {
    let d = daemon(&[]);
    let (mut h, banner) = Host::connect(&d);
    assert_eq!(banner.command, CNXN);
    let text = String::from_utf8(banner.data).unwrap();
    assert!(text.starts_with("device::") && text.contains("ro.product.model=Proto_Phone;"), "{text}");
    assert!(text.contains("features=shell_v2,cmd") && !text.contains("stat_v2"), "{text}");
    h.send(OPEN, 7, 0, b"reboot:\0");
    let m = h.recv();
    assert_eq!((m.command, m.arg0, m.arg1), (CLSE, 0, 7));
}

#[test]
fn shell_v2_packets_and_flow_control() {
    let d = daemon(&[]);
    let (mut h, _) = Host::connect(&d);
    let remote = h.open("shell,v2,raw:head -c 10000 /dev/zero | tr '\\0' x; echo oops >&2; exit 9");
    // Only one WRTE may be outstanding: with no OKAY from us, nothing else arrives.
    let first = h.recv();
    assert_eq!(first.command, WRTE);
    h.s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(Message::read_from(&mut h.s).is_err(), "a second WRTE came before our OKAY");
    h.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    h.send(OKAY, 1, remote, &[]);
    let mut bytes = first.data;
    bytes.extend(h.read_to_close(remote));
    let (mut stdout, mut stderr, mut exit) = (Vec::new(), Vec::new(), None);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[1..5].try_into().unwrap()) as usize;
        let body = &rest[5..5 + len];
        match rest[0] {
            1 => stdout.extend_from_slice(body),
            2 => stderr.extend_from_slice(body),
            3 => exit = Some(body[0]),
            id => panic!("packet id {id}"),
        }
        rest = &rest[5 + len..];
    }
    assert_eq!(stdout, vec![b'x'; 10000]);
    assert_eq!(stderr, b"oops\n");
    assert_eq!(exit, Some(9));
}

#[test]
fn sync_requests_split_across_writes_and_quit_with_an_unacked_write() {
    let d = daemon(&[]);
    std::fs::write(d.root.join("data/local/tmp/f.txt"), b"12345").unwrap();
    let (mut h, _) = Host::connect(&d);
    let remote = h.open("sync:");
    let path = b"/data/local/tmp/f.txt";
    // STAT id and length in one WRTE, the path in another (seen from real hosts).
    let mut head = b"STAT".to_vec();
    head.extend((path.len() as u32).to_le_bytes());
    h.send(WRTE, 1, remote, &head);
    assert_eq!(h.recv().command, OKAY);
    h.send(WRTE, 1, remote, path);
    assert_eq!(h.recv().command, OKAY);
    let stat = h.recv();
    assert_eq!(stat.command, WRTE);
    assert_eq!(&stat.data[0..4], b"STAT");
    assert_eq!(u32::from_le_bytes(stat.data[8..12].try_into().unwrap()), 5);
    // Leave that WRTE unacknowledged and quit: CLSE must still come.
    h.send(WRTE, 1, remote, b"QUIT\0\0\0\0");
    assert_eq!(h.recv().command, OKAY);
    let m = h.recv();
    assert_eq!((m.command, m.arg1), (CLSE, 1));
}

#[test]
fn exit_after_commands_drops_the_connection_and_exits() {
    let mut d = daemon(&["--exit-after-commands", "1"]);
    let (mut h, _) = Host::connect(&d);
    let remote = h.open("exec:echo one");
    assert_eq!(h.read_to_close(remote), b"one\n");
    h.send(OPEN, 2, 0, b"exec:echo two\0");
    assert!(matches!(Message::read_from(&mut h.s), Ok(None) | Err(_)), "connection should drop");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while d.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "daemon still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(TcpStream::connect(("127.0.0.1", d.port)).is_err());
}
