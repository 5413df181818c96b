//! Follows every container of the project into the log store ([`crate::trace::logs`]), in the
//! foreground and detached alike, so `GET /api/v2/logs?traceId=` finds the lines that name a trace.
//!
//! At each new listing of the project's containers (the control plane's shared
//! [`ContainerWatch`]), and every [`POLL`] in any case, each running container not followed yet
//! gets a task reading its output. A task ends with its container (stopped, restarted, removed);
//! the next look follows it again, skipping the lines already kept (the engine's fixed-width
//! timestamps order them), so a restart neither loses nor repeats lines. On the first connection
//! only the last [`FIRST_TAIL`] lines are read.
//!
//! **Bound**: the store bounds what is kept (in all, and per service for container output, so one
//! noisy service evicts its own old lines rather than everyone's); here at most one task per
//! container and one line at a time. Runs on the control plane's runtime, never on the data
//! plane's threads; a Docker failure is logged and tried again at the next look. A follower that
//! has caught up rests [`REST`] before it waits again, so steady output costs the control plane
//! a wakeup per [`REST`] rather than per line (a demo service logging each request woke it once
//! per request).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::engine::docker::{unix_seconds, Docker, ObservedContainer};
use crate::engine::watch::ContainerWatch;
use crate::trace::logs::container::ContainerLine;
use crate::trace::logs::{LogStore, Stream};

/// How often the followers are looked at with no new listing (a follower that ended early).
pub const POLL: Duration = Duration::from_secs(1);
/// Lines read back when a container is first followed.
pub const FIRST_TAIL: usize = 1000;
/// How long a follower rests once it has read every line there was, before it waits for more:
/// lines that arrive meanwhile are read together.
pub const REST: Duration = Duration::from_millis(5);

/// The last timestamp kept per container id (the engine's text: `2024-05-01T12:34:56.123456789Z`).
type Seen = Arc<Mutex<HashMap<String, String>>>;

/// Follows the project's containers until `shutdown`.
pub async fn run(
    docker: Docker,
    containers: ContainerWatch,
    logs: LogStore,
    shutdown: CancellationToken,
) {
    let mut listings = containers.subscribe();
    let seen: Seen = Arc::default();
    let mut following: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<String> = JoinSet::new();
    loop {
        while let Some(done) = tasks.try_join_next() {
            if let Ok(id) = done {
                following.remove(&id);
            }
        }
        let latest = listings.borrow_and_update().clone();
        if let Some(containers) = latest {
            let present: HashSet<&str> = containers
                .iter()
                .map(|container| container.id.as_str())
                .collect();
            if let Ok(mut seen) = seen.lock() {
                seen.retain(|id, _| present.contains(id.as_str()));
            }
            for container in containers.iter() {
                if container.state == "running" && following.insert(container.id.clone()) {
                    let follower = follow(
                        docker.clone(),
                        container.clone(),
                        logs.clone(),
                        seen.clone(),
                        shutdown.clone(),
                    );
                    tasks.spawn(follower);
                }
            }
        }
        tokio::select! {
            changed = listings.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tasks.shutdown().await;
}

/// Reads one container's output until it ends; returns the container's id.
async fn follow(
    docker: Docker,
    container: ObservedContainer,
    logs: LogStore,
    seen: Seen,
    shutdown: CancellationToken,
) -> String {
    // Lines up to here were kept by an earlier connection to the same container.
    let resume_after = seen
        .lock()
        .ok()
        .and_then(|seen| seen.get(&container.id).cloned());
    let mut last = None;
    let mut lines = std::pin::pin!(docker.logs(&container.id, true, Some(FIRST_TAIL), true));
    loop {
        let line = match lines.next().now_or_never() {
            Some(line) => line,
            None => {
                // Nothing more yet: rest before waiting, so a chatty container's lines are read
                // in batches instead of waking the control plane once a line. The first line after
                // a quiet moment is still read as it comes.
                tokio::select! {
                    () = tokio::time::sleep(REST) => {}
                    () = shutdown.cancelled() => break,
                }
                tokio::select! {
                    line = lines.next() => line,
                    _ = shutdown.cancelled() => None,
                }
            }
        };
        let Some(Ok(line)) = line else {
            break;
        };
        let (stamp, text) = split_timestamp(&line.text);
        if let (Some(stamp), Some(resume_after)) = (stamp, &resume_after) {
            if stamp <= resume_after.as_str() {
                continue;
            }
        }
        let record = ContainerLine {
            service: &container.service,
            replica: &container.name,
            stream: if line.stderr {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            time_unix_nano: stamp.and_then(unix_nanos).unwrap_or_else(now_nanos),
            text,
        }
        .record();
        logs.push(vec![record]);
        if let Some(stamp) = stamp {
            last = Some(stamp.to_string());
        }
    }
    if let (Some(last), Ok(mut seen)) = (last.or(resume_after), seen.lock()) {
        seen.insert(container.id.clone(), last);
    }
    container.id
}

/// `2024-05-01T12:34:56.123456789Z text` → (the timestamp, the text).
fn split_timestamp(line: &str) -> (Option<&str>, &str) {
    match line.split_once(' ') {
        Some((stamp, text)) if stamp.len() >= 20 && stamp.as_bytes()[10] == b'T' => {
            (Some(stamp), text)
        }
        _ if line.len() >= 20 && line.as_bytes()[10] == b'T' && !line.contains(' ') => {
            (Some(line), "")
        }
        _ => (None, line),
    }
}

/// The engine's RFC 3339 timestamp as epoch nanoseconds.
fn unix_nanos(stamp: &str) -> Option<u64> {
    let seconds = u64::try_from(unix_seconds(stamp)?).ok()?;
    let fraction: String = stamp
        .get(19..)?
        .strip_prefix('.')
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let nanos: u64 = format!("{fraction:0<9}").get(..9)?.parse().unwrap_or(0);
    Some(seconds * 1_000_000_000 + nanos)
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_timestamp_is_split_off_and_read() {
        let (stamp, text) = split_timestamp("2024-05-01T12:34:56.000000123Z GET / 200");
        assert_eq!(stamp, Some("2024-05-01T12:34:56.000000123Z"));
        assert_eq!(text, "GET / 200");
        assert_eq!(unix_nanos(stamp.unwrap()), Some(1_714_566_896_000_000_123));
        assert_eq!(
            unix_nanos("2024-05-01T12:34:56.5Z"),
            Some(1_714_566_896_500_000_000)
        );
        assert_eq!(
            split_timestamp("2024-05-01T12:34:56.000000123Z"),
            (Some("2024-05-01T12:34:56.000000123Z"), "")
        );
        assert_eq!(split_timestamp("no stamp here"), (None, "no stamp here"));
        assert_eq!(split_timestamp("é"), (None, "é"));
    }

    #[test]
    fn fixed_width_timestamps_order_as_text() {
        assert!("2024-05-01T12:34:56.000000123Z" < "2024-05-01T12:34:56.100000000Z");
    }
}
