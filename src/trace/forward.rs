//! Forwarding: every ingested span is also sent to an external Zipkin collector as JSON v2, in
//! batches, from a background task. The queue is bounded; when it is full spans are dropped and
//! counted, so ingest never waits on the remote collector. Only `http://` URLs are supported; a URL
//! without a path gets `/api/v2/spans`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::trace::codec::json;
use crate::trace::metrics::{add, Metrics};
use crate::trace::model::Span;
use crate::trace::TraceError;

/// Spans waiting to be forwarded, at most.
const QUEUE: usize = 50_000;
/// Spans per POST, at most.
const BATCH: usize = 500;
/// How long a partial batch waits for more spans.
const LINGER: Duration = Duration::from_millis(200);
/// Timeout of one POST.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The store's side of the forwarder: a non-blocking queue.
pub(crate) struct Forwarder {
    sender: mpsc::Sender<Span>,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    /// Queues copies of `spans`; drops (and counts) what does not fit.
    pub(crate) fn offer(&self, spans: &[Span]) {
        let mut dropped = 0;
        for span in spans {
            if self.sender.try_send(span.clone()).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            add(&self.metrics.forward_dropped_spans, dropped);
            tracing::warn!(dropped, "trace forward queue full; spans dropped");
        }
    }
}

/// Parses the forward URL: `http://host:port[/path]`.
pub(crate) fn parse_url(url: &str) -> Result<http::Uri, TraceError> {
    let invalid = |reason: &str| TraceError::InvalidForwardUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("only http:// collectors are supported"));
    }
    if uri.host().is_none() {
        return Err(invalid("missing host"));
    }
    if uri.path() == "/" || uri.path().is_empty() {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        return format!("http://{authority}/api/v2/spans")
            .parse()
            .map_err(|_| invalid("not a URL"));
    }
    Ok(uri)
}

/// Starts the background sender; it stops when `shutdown` is cancelled, flushing what it holds.
pub(crate) fn start(
    url: &str,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Forwarder, TraceError> {
    let uri = parse_url(url)?;
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(run(uri, receiver, metrics.clone(), shutdown));
    Ok(Forwarder { sender, metrics })
}

async fn run(
    uri: http::Uri,
    mut receiver: mpsc::Receiver<Span>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let first = tokio::select! {
            span = receiver.recv() => span,
            () = shutdown.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(span)) => batch.push(span),
                _ => break,
            }
        }
        send(&client, &uri, &batch, &metrics).await;
    }
    // Flush what is already queued, without waiting for more.
    let mut rest = Vec::new();
    while let Ok(span) = receiver.try_recv() {
        rest.push(span);
    }
    for batch in rest.chunks(BATCH) {
        send(&client, &uri, batch, &metrics).await;
    }
}

async fn send(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    uri: &http::Uri,
    batch: &[Span],
    metrics: &Metrics,
) {
    let body = Bytes::from(json::encode(batch));
    let request = http::Request::post(uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body));
    let Ok(request) = request else { return };
    let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("collector answered {status}"))
        }
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()));
    match outcome {
        Ok(()) => add(&metrics.forwarded_spans, batch.len() as u64),
        Err(error) => {
            add(&metrics.forward_failed_spans, batch.len() as u64);
            tracing::warn!(%uri, spans = batch.len(), %error, "forwarding spans failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_gets_the_default_path_and_https_is_refused() {
        assert_eq!(
            parse_url("http://zipkin:9411").unwrap().to_string(),
            "http://zipkin:9411/api/v2/spans"
        );
        assert_eq!(parse_url("http://z:1/custom").unwrap().path(), "/custom");
        assert!(parse_url("https://z").is_err());
        assert!(parse_url("not a url").is_err());
    }
}
