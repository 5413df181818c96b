//! The mesh's handoff socket: where forwarders on the engine's host hand HTTP connections over
//! whole. A forwarder connects this Unix socket (its folder is mounted into the forwarder's
//! container) and sends its PROXY v2 header with the caller's connection itself attached
//! (`SCM_RIGHTS`, `sandbox_forwarder::os::send_connection`); the intake then serves the caller's
//! socket directly, as if it had accepted it (`intake::serve_handed_over`). Each request then
//! crosses one process (this one) instead of two (the forwarder relaying to the intake, then
//! this one), which is most of the mesh's added latency on the L7 path.
//!
//! Only where the control plane and the engine share a kernel (a Linux engine on this host,
//! Podman): a descriptor cannot cross into Docker Desktop's VM, so there forwarders relay
//! through the intake's TCP port as before, as they do whenever a handoff fails.
//!
//! Receiving is bounded: one header of at most `wire::MAX_LEN` bytes, within the intake's
//! header timeout, with exactly one descriptor, which must be a TCP socket; anything else is
//! refused and every descriptor received is closed.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::raw::{c_int, c_void};
use std::path::Path;

use sandbox_forwarder::wire::{self, Header};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// The socket's name in its folder (host side) and in the forwarder (mounted).
pub const SOCKET_NAME: &str = "intake.sock";

/// Descriptors one message may carry before it is taken as not a forwarder's (one expected).
const MAX_DESCRIPTORS: usize = 4;

/// Why a handed-over connection was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("reading the handoff failed: {0}")]
    Io(#[from] io::Error),
    #[error("the handoff ended before its header")]
    Ended,
    #[error("not a PROXY v2 header of the mesh's")]
    Header,
    #[error("{0} descriptors came with the header, not one")]
    Descriptors(usize),
    #[error("the descriptor handed over is not a TCP connection")]
    NotTcp,
}

/// Binds the handoff socket at `path` (a stale socket file left there by an earlier control plane
/// is replaced), readable and writable by its owner only.
pub fn bind(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("`{}` exists and is not a socket", path.display()),
            ))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Reads one handoff from `stream`: the header and the TCP connection that came with it (set
/// non-blocking, ready for tokio). The caller bounds the time it takes.
pub async fn receive(stream: &UnixStream) -> Result<(Header, std::net::TcpStream), HandoffError> {
    let mut bytes = [0u8; wire::MAX_LEN];
    let mut filled = 0;
    let mut descriptors: Vec<OwnedFd> = Vec::new();
    loop {
        let read = stream
            .async_io(Interest::READABLE, || {
                receive_some(stream, &mut bytes[filled..], &mut descriptors)
            })
            .await?;
        if descriptors.len() > MAX_DESCRIPTORS {
            return Err(HandoffError::Descriptors(descriptors.len()));
        }
        if read == 0 {
            return Err(HandoffError::Ended);
        }
        filled += read;
        match Header::decode(&bytes[..filled]) {
            // The forwarder sends the header alone: anything after it is not a forwarder's.
            Ok(Some((header, used))) if used == filled => {
                return Ok((header, connection(descriptors)?));
            }
            Ok(None) if filled < bytes.len() => continue,
            _ => return Err(HandoffError::Header),
        }
    }
}

/// The one descriptor received, as a non-blocking TCP stream.
fn connection(mut descriptors: Vec<OwnedFd>) -> Result<std::net::TcpStream, HandoffError> {
    if descriptors.len() != 1 {
        return Err(HandoffError::Descriptors(descriptors.len()));
    }
    let socket = socket2::Socket::from(descriptors.remove(0));
    let tcp = matches!(socket.r#type(), Ok(socket2::Type::STREAM))
        && matches!(
            socket.domain(),
            Ok(socket2::Domain::IPV4 | socket2::Domain::IPV6)
        );
    if !tcp {
        return Err(HandoffError::NotTcp);
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// One `recvmsg(2)` into `buffer`, the descriptors of its `SCM_RIGHTS` messages appended to
/// `descriptors` (owned, so closed whatever happens next). `WouldBlock` when nothing is there.
fn receive_some(
    stream: &UnixStream,
    buffer: &mut [u8],
    descriptors: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // Room for MAX_DESCRIPTORS descriptors, aligned for `cmsghdr`.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast::<c_void>(),
        iov_len: buffer.len(),
    };
    // SAFETY: an all-zero `msghdr` is a valid empty one; its pointers are set below.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast::<c_void>();
    message.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `message` points at `buffer` and `control`, both alive and as long as it says.
    let read = unsafe {
        libc::recvmsg(
            stream.as_raw_fd(),
            &mut message,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        )
    };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `message`'s control buffer; the CMSG macros walk within it.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header).cast::<c_int>();
                let length = (*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for index in 0..length / std::mem::size_of::<c_int>() {
                    let descriptor = std::ptr::read_unaligned(data.add(index));
                    descriptors.push(OwnedFd::from_raw_fd(descriptor));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    if message.msg_flags & libc::MSG_CTRUNC != 0 {
        // Descriptors were dropped by the kernel for want of room: more than a forwarder sends.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more descriptors than a handoff carries",
        ));
    }
    Ok(read as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn header(token: &[u8]) -> Header {
        Header {
            source: "172.18.0.5:40000".parse().expect("address"),
            destination: "172.18.0.9:8080".parse().expect("address"),
            token: token.to_vec(),
            service: "item".into(),
            dial: false,
            sniffed: Some(sandbox_forwarder::sniff::Sniffed::Http),
        }
    }

    fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn a_connection_sent_with_its_header_arrives_whole_and_usable() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        let (mut caller, accepted) = tcp_pair();
        sandbox_forwarder::os::send_connection(&theirs, &header(b"token").encode(), &accepted)
            .expect("send");
        // The sender's handles are gone: the connection lives on in the one received.
        drop((theirs, accepted));
        ours.set_nonblocking(true).expect("non-blocking");
        let ours = UnixStream::from_std(ours).expect("tokio");
        let (received, connection) = receive(&ours).await.expect("a handoff");
        assert_eq!(received, header(b"token"));
        let mut connection = {
            connection.set_nonblocking(false).expect("blocking");
            connection
        };
        caller.write_all(b"ping").expect("write");
        let mut four = [0u8; 4];
        connection.read_exact(&mut four).expect("read");
        assert_eq!(&four, b"ping");
        connection.write_all(b"pong").expect("write back");
        caller.read_exact(&mut four).expect("read back");
        assert_eq!(&four, b"pong");
    }

    #[tokio::test]
    async fn a_header_without_a_connection_or_with_bytes_after_it_is_refused() {
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        theirs.write_all(&header(b"token").encode()).expect("write");
        drop(theirs);
        ours.set_nonblocking(true).expect("non-blocking");
        let ours = UnixStream::from_std(ours).expect("tokio");
        assert!(matches!(
            receive(&ours).await,
            Err(HandoffError::Descriptors(0))
        ));

        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        let (_caller, accepted) = tcp_pair();
        let mut bytes = header(b"token").encode();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        sandbox_forwarder::os::send_connection(&theirs, &bytes, &accepted).expect("send");
        ours.set_nonblocking(true).expect("non-blocking");
        let ours = UnixStream::from_std(ours).expect("tokio");
        assert!(matches!(receive(&ours).await, Err(HandoffError::Header)));
    }

    #[tokio::test]
    async fn a_descriptor_that_is_not_a_tcp_socket_is_refused() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        let (_other, unix) = std::os::unix::net::UnixStream::pair().expect("pair");
        // Sent as if it were a connection: the receiver checks what it got.
        let fake: std::net::TcpStream = OwnedFd::from(unix).into();
        sandbox_forwarder::os::send_connection(&theirs, &header(b"token").encode(), &fake)
            .expect("send");
        ours.set_nonblocking(true).expect("non-blocking");
        let ours = UnixStream::from_std(ours).expect("tokio");
        assert!(matches!(receive(&ours).await, Err(HandoffError::NotTcp)));
    }

    #[test]
    fn binding_replaces_a_stale_socket_but_not_a_file() {
        let folder = tempfile::tempdir().expect("folder");
        let path = folder.path().join(SOCKET_NAME);
        drop(bind(&path).expect("first"));
        let listener = bind(&path).expect("over the stale socket");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(listener);
        let file = folder.path().join("file");
        std::fs::write(&file, b"x").expect("file");
        let error = bind(&file).expect_err("a file is not replaced");
        assert!(error.to_string().contains("is not a socket"), "{error}");
    }
}
