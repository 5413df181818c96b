//! Copying a connection's bytes both ways, one thread per direction with one fixed buffer each.
//! A direction that reads the end of its stream shuts down writing on the other socket (the peer
//! sees the half-close) while the other direction goes on; an error in either direction ends
//! both. There is no idle timeout: database sessions and WebSockets may sit quiet for hours.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;

/// Stack of the per-direction threads: they only copy through a heap buffer.
pub const STACK_SIZE: usize = 128 * 1024;

/// Copies `left` ⇄ `right` until both directions ended, with `buffer`-byte buffers. Returns the
/// bytes copied (left to right, right to left).
pub fn both_ways(left: TcpStream, right: TcpStream, buffer: usize) -> io::Result<(u64, u64)> {
    let (left_reader, right_writer) = (left.try_clone()?, right.try_clone()?);
    let forward = thread::Builder::new()
        .name("splice".to_string())
        .stack_size(STACK_SIZE)
        .spawn(move || one_way(&left_reader, &right_writer, buffer))?;
    let backward = one_way(&right, &left, buffer);
    let forward = forward.join().unwrap_or(0);
    Ok((forward, backward))
}

/// Copies `from` → `to` until `from` ends (then `to` is shut for writing) or fails (then both
/// are shut, which also ends the other direction). Returns the bytes copied.
fn one_way(from: &TcpStream, to: &TcpStream, buffer: usize) -> u64 {
    let mut buffer = vec![0u8; buffer];
    let mut copied = 0u64;
    loop {
        match (&*from).read(&mut buffer) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return copied;
            }
            Ok(read) => {
                if (&*to).write_all(&buffer[..read]).is_err() {
                    break;
                }
                copied += read as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    copied
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair of sockets on loopback.
    fn pair() -> (TcpStream, TcpStream) {
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
