//! The reaper: a small detached process that holds a lease on the process that started a sandbox
//! (in the spirit of Testcontainers' Ryuk, without an image to pull). The lease is a pipe: the owner
//! keeps the write end; if the owner dies without releasing it (kill -9, a cancelled CI job), the
//! reaper reads end-of-file and removes the project's containers, networks and anonymous volumes.
//! Named volumes are kept, as `down` keeps them.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

/// What the owner writes to say "I cleaned up myself; stand down".
const RELEASE: &[u8] = b"release\n";

/// The owner's side of the lease. Dropping it without [`Lease::release`] (or dying) triggers reaping.
pub struct Lease {
    writer: Option<ChildStdin>,
    child: Child,
}

/// Starts a reaper for `project` (a detached `sandbox -p PROJECT reap` reading the lease on stdin).
pub fn spawn(project: &str) -> std::io::Result<Lease> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["--project-name", project, "reap"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    super::process::detach_from_terminal(&mut command);
    let mut child = command.spawn()?;
    let writer = child.stdin.take();
    Ok(Lease { writer, child })
}

impl Lease {
    /// The owner tore down (or means to keep the sandbox): the reaper exits without touching anything.
    pub fn release(mut self) {
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.write_all(RELEASE);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Not released: closing the pipe is the signal. Reap the child later if it is quick.
        self.writer.take();
        let _ = self.child.try_wait();
    }
}

/// The reaper's side: blocks until the lease ends; true when the owner is gone without releasing.
pub fn owner_abandoned(mut lease: impl Read) -> bool {
    let mut received = Vec::new();
    let mut buffer = [0u8; 64];
    loop {
        match lease.read(&mut buffer) {
            Ok(0) => return true,
            Ok(read) => {
                received.extend_from_slice(&buffer[..read]);
                if received
                    .windows(RELEASE.len())
                    .any(|window| window == RELEASE)
                {
                    return false;
                }
                if received.len() > 1024 {
                    received.drain(..received.len() - RELEASE.len());
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_file_without_release_means_abandoned() {
        assert!(owner_abandoned(&b""[..]));
        assert!(owner_abandoned(&b"noise"[..]));
        assert!(!owner_abandoned(RELEASE));
        assert!(
            !owner_abandoned(&b"release\nmore"[..]),
            "the release counts as soon as it arrives"
        );
    }
}
