//! The 24-byte ADB message header and its payload (AOSP `protocol.txt`).

use std::io::{self, Read, Write};

pub const CNXN: u32 = 0x4e58_4e43;
pub const OPEN: u32 = 0x4e45_504f;
pub const OKAY: u32 = 0x5941_4b4f;
pub const WRTE: u32 = 0x4554_5257;
pub const CLSE: u32 = 0x4553_4c43;
pub const AUTH: u32 = 0x4854_5541;
pub const STLS: u32 = 0x534c_5453;

/// The protocol version we announce (checksums optional, but we always fill them in:
/// adb_client's direct transport verifies every message).
pub const VERSION: u32 = 0x0100_0001;
/// Largest payload we send or accept.
pub const MAX_PAYLOAD: u32 = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub data: Vec<u8>,
}

impl Message {
    pub fn new(command: u32, arg0: u32, arg1: u32, data: Vec<u8>) -> Self {
        Message { command, arg0, arg1, data }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.data.len());
        let checksum: u32 = self.data.iter().map(|&b| b as u32).sum();
        for word in [self.command, self.arg0, self.arg1, self.data.len() as u32, checksum, self.command ^ 0xffff_ffff] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())?;
        w.flush()
    }

    /// Reads one message; `Ok(None)` on a clean end of stream between messages.
    /// The checksum is not verified: hosts at version 0x01000001 may send 0.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Message>> {
        let mut header = [0u8; 24];
        let mut got = 0;
        while got < header.len() {
            match r.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-header")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let word = |i: usize| u32::from_le_bytes(header[i * 4..i * 4 + 4].try_into().unwrap());
        let (command, arg0, arg1, len, magic) = (word(0), word(1), word(2), word(3), word(5));
        if magic != command ^ 0xffff_ffff {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad magic for command {command:#010x}")));
        }
        if len > 16 * MAX_PAYLOAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("payload of {len} bytes is too large")));
        }
        let mut data = vec![0u8; len as usize];
        r.read_exact(&mut data)?;
        Ok(Some(Message { command, arg0, arg1, data }))
    }
}

/// The command's four ASCII letters, for logs and errors.
pub fn name(command: u32) -> String {
    String::from_utf8_lossy(&command.to_le_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_checksum_and_magic() {
        let m = Message::new(WRTE, 7, 9, b"ab".to_vec());
        let bytes = m.encode();
        assert_eq!(&bytes[0..4], b"WRTE");
        assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), (b'a' + b'b') as u32);
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), WRTE ^ 0xffff_ffff);
        let back = Message::read_from(&mut &bytes[..]).unwrap().unwrap();
        assert_eq!(back, m);
        assert_eq!(name(CNXN), "CNXN");
    }

    #[test]
    fn bad_magic_and_truncation_are_errors() {
        let mut bytes = Message::new(OKAY, 1, 2, vec![]).encode();
        bytes[20] ^= 1;
        assert!(Message::read_from(&mut &bytes[..]).is_err());
        let bytes = Message::new(OKAY, 1, 2, vec![]).encode();
        assert!(Message::read_from(&mut &bytes[..10]).is_err());
        assert!(Message::read_from(&mut &[][..]).unwrap().is_none());
    }
}
