//! HTTP/2 by hand: the preface, frames, a few HPACK literals, and a reader of the server's
//! frames — enough to write floods frame by frame.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Frame type `DATA`.
pub const DATA: u8 = 0;
/// Frame type `HEADERS`.
pub const HEADERS: u8 = 1;
/// Frame type `RST_STREAM`.
pub const RST_STREAM: u8 = 3;
/// Frame type `SETTINGS`.
pub const SETTINGS: u8 = 4;
/// Frame type `PING`.
pub const PING: u8 = 6;
/// Frame type `GOAWAY`.
pub const GOAWAY: u8 = 7;
/// Frame type `CONTINUATION`.
pub const CONTINUATION: u8 = 9;
/// Flag `END_STREAM`.
pub const END_STREAM: u8 = 1;
/// Flag `END_HEADERS`.
pub const END_HEADERS: u8 = 4;
/// Error code `ENHANCE_YOUR_CALM`.
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
/// Error code `REFUSED_STREAM`.
pub const REFUSED_STREAM: u32 = 0x7;

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A literal header field without indexing, with a new name (HPACK, no Huffman).
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00];
    b.extend(string(name));
    b.extend(string(value));
    b
}

fn string(s: &str) -> Vec<u8> {
    // HPACK integer with a 7-bit prefix.
    let mut out = Vec::new();
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(s.as_bytes());
    out
}

/// `GET path` (`:method GET`, `:scheme http` from the static table).
pub fn get(path: &str) -> Vec<u8> {
    request(0x82, path)
}

/// `POST path` (`:method POST` from the static table).
pub fn post(path: &str) -> Vec<u8> {
    request(0x83, path)
}

fn request(method: u8, path: &str) -> Vec<u8> {
    let mut b = vec![method, 0x86];
    b.extend(literal(":path", path));
    b.extend(literal(":authority", "x"));
    b
}

/// A connection with the preface and an empty SETTINGS frame sent.
pub fn connect(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    s
}

/// A frame read from the server.
#[derive(Debug)]
pub struct Frame {
    /// The frame type.
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream.
    pub stream: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }
}

/// The next frame, or `None` when the server closed or went quiet for the read timeout.
pub fn read(s: &mut TcpStream) -> Option<Frame> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).ok()?;
    let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
        payload,
    })
}

/// Writes `frames` from another thread (stopping at the first write error, the server
/// closing) while this one reads the server's frames until `stop` says so, the server
/// closes, or it is quiet for 10 s; returns the frames read (without DATA) and how many
/// were written.
pub fn flood(
    addr: &str,
    frames: impl Iterator<Item = Vec<u8>> + Send + 'static,
    mut stop: impl FnMut(&Frame) -> bool,
) -> (Vec<Frame>, usize) {
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let writer = std::thread::spawn(move || {
        let mut n = 0;
        for f in frames {
            if w.write_all(&f).is_err() {
                break;
            }
            n += 1;
        }
        n
    });
    let mut got = Vec::new();
    while let Some(f) = read(&mut s) {
        let done = stop(&f);
        // Keep only what the tests look at (DATA and SETTINGS acks add nothing).
        if f.kind != DATA {
            got.push(f);
        }
        if done {
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let written = writer.join().unwrap();
    (got, written)
}
