//! Container output of several replicas, merged into one stream as lines arrive.

use futures_util::stream::{SelectAll, StreamExt};
use futures_util::Stream;

use super::docker::{Docker, LogLine};

/// Which replica a line came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaLine {
    /// `service-replica`, the prefix users see.
    pub source: String,
    pub service: String,
    pub line: LogLine,
}

/// A container whose output to read.
#[derive(Debug, Clone)]
pub struct LogSource {
    pub container_id: String,
    pub service: String,
    pub replica: u32,
}

/// Merges the output of `sources` (the last `tail` lines of each, then new ones while `follow`).
pub fn merged(
    docker: &Docker,
    sources: &[LogSource],
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
) -> impl Stream<Item = ReplicaLine> + 'static {
    let mut all = SelectAll::new();
    for source in sources {
        let prefix = format!("{}-{}", source.service, source.replica);
        let service = source.service.clone();
        let stream = docker
            .logs(&source.container_id, follow, tail, timestamps)
            .filter_map(move |line| {
                let item = line.ok().map(|line| ReplicaLine {
                    source: prefix.clone(),
                    service: service.clone(),
                    line,
                });
                async move { item }
            })
            .boxed();
        all.push(stream);
    }
    all
}
