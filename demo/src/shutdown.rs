//! SIGTERM and SIGINT: exit promptly with 0. As PID 1 in a container the default action would ignore
//! SIGTERM, so the signals are blocked in every thread and one thread waits for them with `sigwait` —
//! the ordinary code that runs next (span flush, logging) needs no async-signal safety.

use std::sync::Arc;

use crate::app::App;

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a plain sigset_t we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in the calling thread and the threads it starts afterwards. Call first thing.
pub fn block_signals() {
    let set = signal_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Starts the thread that waits for SIGTERM/SIGINT and exits with 0.
pub fn spawn_waiter(app: Arc<App>) {
    let spawned = std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            let set = signal_set();
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is initialised and `signal` is a valid out pointer.
            let result = unsafe { libc::sigwait(&set, &mut signal) };
            let name = match signal {
                libc::SIGTERM => "SIGTERM",
                libc::SIGINT => "SIGINT",
                _ => "a signal",
            };
            if result == 0 {
                app.exit(0, &format!("received {name}"));
            }
        });
    if let Err(error) = spawned {
        crate::log::warn(&format!("cannot start the signal thread: {error}"));
    }
}
