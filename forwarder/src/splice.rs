//! Copying a connection's bytes both ways, one thread per direction. Where the kernel offers it
//! (Linux) the bytes move through a pipe with `splice(2)` and never enter user space; elsewhere,
//! or when a socket does not take it, through one fixed buffer per direction. A direction that
//! reads the end of its stream shuts down writing on the other socket (the peer sees the
//! half-close) while the other direction goes on; an error in either direction ends both. There
//! is no idle timeout: database sessions and WebSockets may sit quiet for hours.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;

use crate::os::Pipe;

/// Stack of the per-direction threads: they only copy through a heap buffer.
pub const STACK_SIZE: usize = 128 * 1024;

/// What a splice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes copied from left to right.
    pub forward: u64,
    /// Bytes copied from right to left.
    pub backward: u64,
    /// The direction whose stream ended first.
    pub first: Direction,
    /// A side reset its connection or failed mid-stream.
    pub failed: bool,
}

/// One way of a splice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Left to right.
    Forward,
    /// Right to left.
    Backward,
}

/// Copies `left` ⇄ `right` until both directions ended, with `buffer`-byte buffers (or pipes).
/// Returns the bytes copied (left to right, right to left).
pub fn both_ways(left: TcpStream, right: TcpStream, buffer: usize) -> io::Result<(u64, u64)> {
    let outcome = both_ways_reported(left, right, buffer)?;
    Ok((outcome.forward, outcome.backward))
}

/// [`both_ways`], telling which direction ended first and whether one failed.
pub fn both_ways_reported(left: TcpStream, right: TcpStream, buffer: usize) -> io::Result<Outcome> {
    const NONE: u8 = 0;
    const FORWARD: u8 = 1;
    const BACKWARD: u8 = 2;
    let first = std::sync::Arc::new(AtomicU8::new(NONE));
    let (left_reader, right_writer) = (left.try_clone()?, right.try_clone()?);
    let forward_first = std::sync::Arc::clone(&first);
    let forward = thread::Builder::new()
        .name("splice".to_string())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let ended = one_way(&left_reader, &right_writer, buffer);
            let _ =
                forward_first.compare_exchange(NONE, FORWARD, Ordering::AcqRel, Ordering::Acquire);
            ended
        })?;
    let backward = one_way(&right, &left, buffer);
    let _ = first.compare_exchange(NONE, BACKWARD, Ordering::AcqRel, Ordering::Acquire);
    let forward = forward.join().unwrap_or(Ended {
        copied: 0,
        failed: true,
    });
    Ok(Outcome {
        forward: forward.copied,
        backward: backward.copied,
        first: match first.load(Ordering::Acquire) {
            FORWARD => Direction::Forward,
            _ => Direction::Backward,
        },
        failed: forward.failed || backward.failed,
    })
}

/// How one direction ended.
#[derive(Debug, Clone, Copy)]
struct Ended {
    copied: u64,
    failed: bool,
}

/// Copies `from` → `to` until `from` ends (then `to` is shut for writing) or fails (then both
/// are shut, which also ends the other direction).
fn one_way(from: &TcpStream, to: &TcpStream, buffer: usize) -> Ended {
    let moved = match Pipe::new(buffer) {
        Ok(pipe) => through_pipe(from, to, &pipe, buffer),
        Err(_) => Moved::Unsupported,
    };
    let moved = match moved {
        Moved::Unsupported => through_buffer(from, to, buffer),
        moved => moved,
    };
    match moved {
        Moved::Ended(copied) => {
            let _ = to.shutdown(Shutdown::Write);
            Ended {
                copied,
                failed: false,
            }
        }
        Moved::Failed(copied) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            Ended {
                copied,
                failed: true,
            }
        }
        // The buffer copy takes any socket.
        Moved::Unsupported => Ended {
            copied: 0,
            failed: true,
        },
    }
}

/// How far a copy went.
enum Moved {
    /// `from` ended after these bytes.
    Ended(u64),
    /// A socket failed after these bytes.
    Failed(u64),
    /// The pipe cannot take these sockets; nothing was moved.
    Unsupported,
}

/// The copy through a pipe, in the kernel.
fn through_pipe(from: &TcpStream, to: &TcpStream, pipe: &Pipe, chunk: usize) -> Moved {
    let mut copied = 0u64;
    loop {
        let filled = match pipe.fill(from, chunk) {
            Ok(0) => return Moved::Ended(copied),
            Ok(filled) => filled,
            // `EINVAL`: a socket splice does not take; nothing moved yet, so copy instead.
            Err(error) if copied == 0 && error.raw_os_error() == Some(22) => {
                return Moved::Unsupported
            }
            Err(_) => return Moved::Failed(copied),
        };
        let mut left = filled;
        while left > 0 {
            match pipe.drain(to, left) {
                Ok(0) | Err(_) => return Moved::Failed(copied),
                Ok(drained) => {
                    left -= drained;
                    copied += drained as u64;
                }
            }
        }
    }
}

/// The copy through a buffer of `size` bytes, in user space.
fn through_buffer(from: &TcpStream, to: &TcpStream, size: usize) -> Moved {
    let mut buffer = vec![0u8; size];
    let mut copied = 0u64;
    loop {
        match (&*from).read(&mut buffer) {
            Ok(0) => return Moved::Ended(copied),
            Ok(read) => {
                if (&*to).write_all(&buffer[..read]).is_err() {
                    return Moved::Failed(copied);
                }
                copied += read as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Moved::Failed(copied),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair of sockets on loopback: (the connecting end, the accepted end).
    pub(crate) fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        (near, far)
    }

    #[test]
    fn each_direction_ends_on_its_own() {
        // client ⇄ [a | splice | b] ⇄ server
        let (mut client, a) = pair();
        let (b, mut server) = pair();
        let splice = thread::spawn(move || both_ways(a, b, 4).unwrap());
        client.write_all(b"request bytes").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut received = Vec::new();
        server.read_to_end(&mut received).unwrap();
        assert_eq!(
            received, b"request bytes",
            "the half-close reached the server"
        );
        // The other direction still carries bytes after the client's half-close.
        server.write_all(b"response after the half-close").unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"response after the half-close");
        assert_eq!(splice.join().unwrap(), (13, 29));
    }

    #[test]
    fn a_vanished_peer_ends_both_directions() {
        let (client, a) = pair();
        let (b, mut server) = pair();
        let splice = thread::spawn(move || both_ways(a, b, 1024).unwrap());
        crate::os::reset(client);
        let mut rest = Vec::new();
        let _ = server.read_to_end(&mut rest);
        assert!(rest.is_empty());
        splice.join().unwrap();
    }
}
