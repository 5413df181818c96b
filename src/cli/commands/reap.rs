//! `sandbox reap` (internal): the reaper process behind a foreground sandbox; see
//! [`crate::control::reaper`].

use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::control::reaper;
use crate::engine::{self, Docker, DownOptions};

/// How long after the first sweep the reaper looks again.
const LATE_CREATES: Duration = Duration::from_secs(2);

pub async fn run(global: &GlobalArgs) -> anyhow::Result<u8> {
    let Some(project) = global.project.clone() else {
        return Ok(2);
    };
    let abandoned =
        tokio::task::spawn_blocking(|| reaper::owner_abandoned(std::io::stdin().lock())).await?;
    if !abandoned {
        return Ok(0);
    }
    let docker = Docker::connect().await?;
    let options = DownOptions {
        remove_volumes: false,
        timeout: Some(Duration::from_secs(1)),
    };
    // A second sweep catches what the engine was still creating when the owner died (a create
    // request in flight completes after the first sweep has listed the project).
    for sweep in 0..2 {
        if sweep > 0 {
            tokio::time::sleep(LATE_CREATES).await;
        }
        engine::down(
            &docker,
            &project,
            &options,
            &crate::events::EventSink::discard(),
        )
        .await?;
    }
    Ok(0)
}
