//! One open ADB stream on the device side: flow-controlled writes (at most one
//! unacknowledged WRTE), buffered input from the host, and closing.

use super::message::{Message, CLSE, WRTE};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};

/// The socket shared by all streams of one connection; every message is written whole.
pub type Wire = Arc<Mutex<TcpStream>>;

pub fn send(wire: &Wire, m: &Message) -> io::Result<()> {
    let mut w = wire.lock().unwrap_or_else(|e| e.into_inner());
    m.write_to(&mut *w)
}

#[derive(Default)]
struct State {
    /// The host acknowledged our last WRTE (true before the first one).
    may_write: bool,
    closed: bool,
    input: VecDeque<Vec<u8>>,
}

pub struct Stream {
    pub local: u32,
    pub remote: u32,
    wire: Wire,
    max_payload: usize,
    state: Mutex<State>,
    changed: Condvar,
    /// Serialises writers so a multi-WRTE block is never interleaved with another.
    writer: Mutex<()>,
}

impl Stream {
    pub fn new(local: u32, remote: u32, wire: Wire, max_payload: usize) -> Arc<Stream> {
        Arc::new(Stream {
            local,
            remote,
            wire,
            max_payload: max_payload.max(1),
            state: Mutex::new(State { may_write: true, ..State::default() }),
            changed: Condvar::new(),
            writer: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `data` as one or more WRTEs, each after the host acknowledged the previous one.
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        let _one_writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in data.chunks(self.max_payload) {
            let mut st = self.lock();
            while !st.may_write && !st.closed {
                st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.closed {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream closed by the host"));
            }
            st.may_write = false;
            drop(st);
            send(&self.wire, &Message::new(WRTE, self.local, self.remote, chunk.to_vec()))?;
        }
        Ok(())
    }

    /// The host's OKAY for our last WRTE.
    pub fn acknowledged(&self) {
        self.lock().may_write = true;
        self.changed.notify_all();
    }

    /// Data the host wrote to this stream.
    pub fn deliver(&self, data: Vec<u8>) {
        self.lock().input.push_back(data);
        self.changed.notify_all();
    }

    /// The next block of host input; `None` once the stream is closed and drained.
    pub fn read(&self) -> Option<Vec<u8>> {
        let mut st = self.lock();
        loop {
            if let Some(d) = st.input.pop_front() {
                return Some(d);
            }
            if st.closed {
                return None;
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The host closed the stream (or the connection dropped): wake every waiter.
    pub fn closed_by_host(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// We end the stream: CLSE goes out even while a WRTE is unacknowledged
    /// (adb_client's direct push waits for it after QUIT without acknowledging).
    pub fn close(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        drop(st);
        self.changed.notify_all();
        let _ = send(&self.wire, &Message::new(CLSE, self.local, self.remote, Vec::new()));
    }
}

/// `io::Write` over a stream, for copying process output.
pub struct StreamWriter<'a>(pub &'a Stream);

impl Write for StreamWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
