//! What std does not offer, through the C library std already links (no `libc` crate):
//! - exiting at once on SIGTERM and SIGINT. As PID 1 of a container the kernel delivers no
//!   signal the process has no handler for, so without one `docker stop` waits its whole grace
//!   period and then kills;
//! - closing a connection with a reset (`SO_LINGER` 0), so a caller whose connection cannot be
//!   handed on sees it refused at once rather than an orderly end.

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
