//! Processes: liveness, signals, and detaching a control plane from the terminal.

use std::time::{Duration, Instant};

/// Whether a process with this pid exists (and is not a zombie we could reap).
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // A zombie (exited, not yet reaped) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Sends SIGTERM and waits up to `grace` for the process to go, then SIGKILL.
/// Returns true when the process is gone.
pub fn terminate(pid: u32, grace: Duration) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    // SAFETY: plain signal delivery to a pid we recorded.
    unsafe { libc::kill(raw, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(raw, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(50));
    !is_alive(pid)
}

/// Makes a child start its own session, so a Ctrl-C in the user's terminal does not reach it.
pub fn detach_from_terminal(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Points this process's stdout and stderr at `file` (a detached control plane, once its parent
/// has read the bring-up events and gone).
pub fn redirect_output(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: dup2 onto the standard descriptors with a valid open fd.
    unsafe {
        libc::dup2(fd, 1);
        libc::dup2(fd, 2);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(super::is_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!super::is_alive(pid));
    }
}
