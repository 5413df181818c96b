//! What std does not offer, through the C library std already links (no `libc` crate):
//! - exiting at once on SIGTERM and SIGINT. As PID 1 of a container the kernel delivers no
//!   signal the process has no handler for, so without one `docker stop` waits its whole grace
//!   period and then kills;
//! - closing a connection with a reset (`SO_LINGER` 0), so a caller whose connection cannot be
//!   handed on sees it refused at once rather than an orderly end;
//! - moving a connection's bytes to another through a pipe inside the kernel (`splice(2)`),
//!   without copying them through user space ([`Pipe`]);
//! - handing a connection itself to another process over a Unix socket (`SCM_RIGHTS`,
//!   [`send_connection`]).

use std::io;
use std::net::{Shutdown, TcpStream};

/// Installs handlers that end the process with code 0 on SIGTERM and SIGINT.
pub fn exit_on_terminate() {
    #[cfg(unix)]
    unix::exit_on_terminate();
}

/// Closes `stream` with a TCP reset where the platform allows, else with an orderly close.
/// `stream` must be the socket's only handle (no `try_clone`).
pub fn reset(stream: TcpStream) {
    if linger::zero(&stream) {
        return; // dropped: closed with a reset
    }
    let _ = stream.shutdown(Shutdown::Both);
}

#[cfg(unix)]
mod unix {
    use std::os::raw::c_int;

    const SIGINT: c_int = 2;
    const SIGTERM: c_int = 15;

    extern "C" {
        fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
        fn _exit(status: c_int) -> !;
    }

    extern "C" fn on_terminate(_signum: c_int) {
        // SAFETY: `_exit` is async-signal-safe; nothing is left to flush (stderr is unbuffered).
        unsafe { _exit(0) }
    }

    pub(super) fn exit_on_terminate() {
        for signum in [SIGTERM, SIGINT] {
            // SAFETY: the handler only calls `_exit`.
            unsafe {
                signal(signum, on_terminate);
            }
        }
    }
}

/// `SO_LINGER` where its constants are the generic Linux ones (the architectures engines run on).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod linger {
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;
    use std::os::raw::{c_int, c_void};

    const SOL_SOCKET: c_int = 1;
    const SO_LINGER: c_int = 13;

    #[repr(C)]
    struct Linger {
        on: c_int,
        seconds: c_int,
    }

    extern "C" {
        fn setsockopt(
            socket: c_int,
            level: c_int,
            name: c_int,
            value: *const c_void,
            length: u32,
        ) -> c_int;
    }

    /// Whether closing `stream` now sends a reset.
    pub(super) fn zero(stream: &TcpStream) -> bool {
        let linger = Linger { on: 1, seconds: 0 };
        // SAFETY: a valid socket and a `struct linger` of the size given.
        let result = unsafe {
            setsockopt(
                stream.as_raw_fd(),
                SOL_SOCKET,
                SO_LINGER,
                (&linger as *const Linger).cast(),
                std::mem::size_of::<Linger>() as u32,
            )
        };
        result == 0
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod linger {
    /// Elsewhere the close stays orderly.
    pub(super) fn zero(_stream: &std::net::TcpStream) -> bool {
        false
    }
}

/// A pipe that moves bytes from one socket to another in the kernel (`splice(2)`): [`Pipe::fill`]
/// takes bytes from a socket into the pipe, [`Pipe::drain`] gives them to another. Both block as
/// the sockets do. Closed on drop. Only on Linux (x86_64, aarch64): elsewhere
/// [`Pipe::new`] fails with [`io::ErrorKind::Unsupported`] and callers copy.
pub struct Pipe {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    ends: splice::Ends,
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
impl Pipe {
    /// A new pipe of at least `capacity` bytes where the kernel allows (else its default).
    pub fn new(capacity: usize) -> io::Result<Pipe> {
        Ok(Pipe {
            ends: splice::Ends::new(capacity)?,
        })
    }

    /// Moves at most `max` bytes from `from` into the pipe, which must be empty; 0 at the end of
    /// `from`'s stream.
    pub fn fill(&self, from: &TcpStream, max: usize) -> io::Result<usize> {
        self.ends.fill(from, max)
    }

    /// Moves up to `len` bytes from the pipe to `to`; returns how many.
    pub fn drain(&self, to: &TcpStream, len: usize) -> io::Result<usize> {
        self.ends.drain(to, len)
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
impl Pipe {
    /// Not on this platform.
    pub fn new(_capacity: usize) -> io::Result<Pipe> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn fill(&self, _from: &TcpStream, _max: usize) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn drain(&self, _to: &TcpStream, _len: usize) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod splice {
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::raw::{c_int, c_uint};

    const O_CLOEXEC: c_int = 0o2_000_000;
    const F_SETPIPE_SZ: c_int = 1031;
    const SPLICE_F_MOVE: c_uint = 1;

    extern "C" {
        fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
        fn fcntl(fd: c_int, command: c_int, ...) -> c_int;
        fn splice(
            fd_in: c_int,
            off_in: *mut i64,
            fd_out: c_int,
            off_out: *mut i64,
            len: usize,
            flags: c_uint,
        ) -> isize;
    }

    pub(super) struct Ends {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl Ends {
        pub(super) fn new(capacity: usize) -> io::Result<Ends> {
            let mut fds = [-1 as c_int; 2];
            // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
            if unsafe { pipe2(fds.as_mut_ptr(), O_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: both descriptors were just created and are owned here alone.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            let size = c_int::try_from(capacity).unwrap_or(c_int::MAX);
            // SAFETY: a valid pipe descriptor and an int argument. A refusal (above the
            // system's pipe-max-size) leaves the default size, which works as well.
            unsafe {
                fcntl(write.as_raw_fd(), F_SETPIPE_SZ, size);
            }
            Ok(Ends { read, write })
        }

        pub(super) fn fill(&self, from: &TcpStream, max: usize) -> io::Result<usize> {
            move_bytes(from.as_raw_fd(), self.write.as_raw_fd(), max)
        }

        pub(super) fn drain(&self, to: &TcpStream, len: usize) -> io::Result<usize> {
            move_bytes(self.read.as_raw_fd(), to.as_raw_fd(), len)
        }
    }

    /// One `splice(2)` call, retried when interrupted.
    fn move_bytes(from: c_int, to: c_int, len: usize) -> io::Result<usize> {
        loop {
            // SAFETY: two open descriptors, no offsets (neither end is a file).
            let moved = unsafe {
                splice(
                    from,
                    std::ptr::null_mut(),
                    to,
                    std::ptr::null_mut(),
                    len,
                    SPLICE_F_MOVE,
                )
            };
            if moved >= 0 {
                return Ok(moved as usize);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

/// Sends `header` and a duplicate of `connection`'s descriptor over `socket` in one message
/// (`sendmsg(2)` with `SCM_RIGHTS`): the receiver then owns the caller's connection itself. The
/// forwarder's own handle may be dropped once this returns; the connection stays open with the
/// receiver's.
#[cfg(unix)]
pub fn send_connection(
    socket: &std::os::unix::net::UnixStream,
    header: &[u8],
    connection: &TcpStream,
) -> io::Result<()> {
    rights::send(socket, header, connection)
}

/// `SCM_RIGHTS` where the kernel's structures have the layout of the 64-bit Linux ABIs engines run
/// on (glibc's and musl's agree there).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod rights {
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;
    use std::os::raw::{c_int, c_void};
    use std::os::unix::net::UnixStream;

    const SOL_SOCKET: c_int = 1;
    const SCM_RIGHTS: c_int = 1;
    const MSG_NOSIGNAL: c_int = 0x4000;

    #[repr(C)]
    struct IoVec {
        base: *const c_void,
        len: usize,
    }

    #[repr(C)]
    struct MsgHdr {
        name: *mut c_void,
        name_len: u32,
        iov: *const IoVec,
        iov_len: usize,
        control: *mut c_void,
        control_len: usize,
        flags: c_int,
    }

    /// A `cmsghdr` with one descriptor after it: `CMSG_SPACE(sizeof(int))` bytes, 8-aligned.
    #[repr(C, align(8))]
    struct OneDescriptor {
        len: usize,
        level: c_int,
        kind: c_int,
        descriptor: c_int,
        padding: c_int,
    }

    extern "C" {
        fn sendmsg(socket: c_int, message: *const MsgHdr, flags: c_int) -> isize;
    }

    pub(super) fn send(
        socket: &UnixStream,
        header: &[u8],
        connection: &TcpStream,
    ) -> io::Result<()> {
        if header.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a descriptor travels with at least one byte",
            ));
        }
        let mut control = OneDescriptor {
            // CMSG_LEN(sizeof(int)): the header, then the descriptor.
            len: std::mem::size_of::<usize>()
                + 2 * std::mem::size_of::<c_int>()
                + std::mem::size_of::<c_int>(),
            level: SOL_SOCKET,
            kind: SCM_RIGHTS,
            descriptor: connection.as_raw_fd(),
            padding: 0,
        };
        let iov = IoVec {
            base: header.as_ptr().cast(),
            len: header.len(),
        };
        let message = MsgHdr {
            name: std::ptr::null_mut(),
            name_len: 0,
            iov: &iov,
            iov_len: 1,
            control: (&mut control as *mut OneDescriptor).cast(),
            control_len: std::mem::size_of::<OneDescriptor>(),
            flags: 0,
        };
        loop {
            // SAFETY: `message` points at live, correctly laid out structures for the call's
            // duration; the kernel only reads them.
            let sent = unsafe { sendmsg(socket.as_raw_fd(), &message, MSG_NOSIGNAL) };
            if sent >= 0 {
                // A Unix stream socket takes a message this small whole, or not at all.
                return if sent as usize == header.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the header was sent in part",
                    ))
                };
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

#[cfg(all(
    unix,
    not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))
))]
mod rights {
    /// Elsewhere connections are not handed over (the intake's TCP path serves).
    pub(super) fn send(
        _socket: &std::os::unix::net::UnixStream,
        _header: &[u8],
        _connection: &std::net::TcpStream,
    ) -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "handing connections over needs Linux",
        ))
    }
}
