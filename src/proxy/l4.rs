//! L4: a mesh intake connection that is not HTTP (a database, a cache, a broker, TLS between
//! services) spliced to a replica of the service its forwarder stands for, at the port the
//! caller dialed. The service's policies that make sense for bytes apply:
//! - `faults`: `delay` delays the connect, `abort` refuses the connection (each at its
//!   percentage);
//! - the circuit breaker admits the connection (a slot while it lives);
//! - `upstream_peer`: a replica by the service's load balancing, skipping unhealthy and ejected
//!   ones; a connect failure counts for outlier detection and, when the retry policy retries
//!   connect failures (`connect-failure`, `gateway-error`, `5xx`), the next try goes to another
//!   replica after the policy's back-off.
//!
//! No replica, a closed port, an abort: the caller's connection is reset at once (never a hang).
//! Bytes then pass both ways in bounded buffers, each side's end passed on to the other (half
//! close), with no idle timeout. When the connection ends: one client and one server span (a new
//! trace: nothing to propagate at L4), named `tcp <port>` or `tls <server name>`, an access-log
//! line and the `sandbox_proxy_l4_*` metrics.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::manifest::{RetryOn, RetryPolicy};

use super::config::ProxyConfig;
use super::error::ProxyError;
use super::faults;
use super::forward::backoff;
use super::phases::sample;
use super::propagation::TraceContext;
use super::session::Called;
use super::span::{now_micros, ProxySpan, SpanKind};
use super::status::Caller;
use super::upstream::{AdmitGuard, Replica, ReplicaGuard};
use super::Shared;

/// Each direction's buffer.
const BUFFER: usize = 32 * 1024;

/// An intake connection to splice: who called what.
pub(super) struct Connection {
    /// The caller's address (the PROXY header's source).
    pub source: SocketAddr,
    pub caller: Option<Caller>,
    pub called: Called,
    /// It opened with a TLS ClientHello.
    pub tls: bool,
    /// The server name the ClientHello asked for.
    pub sni: Option<String>,
}

/// How an L4 connection ended (the span's `sandbox.close`, the metric's `close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// The caller closed its side first (the service's answer, if any, passed on after).
    Client,
    /// The service closed its side first.
    Upstream,
    /// No replica could take it (none up, the port closed, the circuit breaker full).
    Refused,
    /// An injected `abort`.
    Fault,
    /// A side reset the connection or failed mid-stream.
    Reset,
    /// The control plane is stopping.
    Shutdown,
}

impl Close {
    fn name(self) -> &'static str {
        match self {
            Close::Client => "client",
            Close::Upstream => "upstream",
            Close::Refused => "refused",
            Close::Fault => "fault",
            Close::Reset => "reset",
            Close::Shutdown => "shutdown",
        }
    }
}

/// What happened to a connection, for the span, the log and the metrics.
struct Report {
    close: Close,
    /// Bytes from the caller to the service.
    sent: u64,
    /// Bytes from the service to the caller.
    received: u64,
    replica: Option<Arc<Replica>>,
    retries: u32,
    annotations: Vec<(u64, String)>,
    error: Option<String>,
}

/// A connection to a replica, holding its circuit-breaker slot and its place in the replica's
/// count while it lives.
struct Opened {
    stream: TcpStream,
    _admit: AdmitGuard,
    _replica: ReplicaGuard,
}

/// Splices `client` to a replica of the called service until both sides have ended.
pub(super) async fn serve(
    shared: Arc<Shared>,
    client: TcpStream,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let config = shared.config();
    let started = Instant::now();
    let start_micros = now_micros();
    let mut report = Report {
        close: Close::Client,
        sent: 0,
        received: 0,
        replica: None,
        retries: 0,
        annotations: Vec::new(),
        error: None,
    };
    let opened = tokio::select! {
        opened = open(&shared, &config, &connection, &mut report) => opened,
        () = shutdown.cancelled() => Err(Close::Shutdown),
    };
    match opened {
        Ok(opened) => splice(client, opened.stream, &shutdown, &mut report).await,
        Err(close) => {
            report.close = close;
            // A reset, at once: the caller's client sees its connection refused, not a hang.
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            drop(client);
        }
    }
    finish(&shared, &config, &connection, report, started, start_micros);
}

/// Faults, the circuit breaker, then a replica per try until one accepts the connection.
async fn open(
    shared: &Shared,
    config: &ProxyConfig,
    connection: &Connection,
    report: &mut Report,
) -> Result<Opened, Close> {
    let service: &str = &connection.called.service;
    let port = connection.called.port;
    let Some(service_config) = config.services.get(service) else {
        report.error = Some(
            ProxyError::UnknownService {
                service: service.to_string(),
            }
            .to_string(),
        );
        return Err(Close::Refused);
    };
    let traffic = &service_config.traffic;
    let decision = faults::decide(Some(&traffic.faults), &http::HeaderMap::new(), false);
    if let Some(delay) = decision.delay {
        shared
            .metrics
            .faults
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = crate::manifest::duration_text::format(delay);
        report
            .annotations
            .push((now_micros(), format!("fault: delay {text}")));
        tokio::time::sleep(delay).await;
    }
    if decision.abort.is_some() {
        shared
            .metrics
            .faults
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        report
            .annotations
            .push((now_micros(), "fault: abort".into()));
        report.error = Some(format!("fault injected by sandbox: abort for `{service}`"));
        return Err(Close::Fault);
    }
    let upstream = shared.upstreams.get(service);
    let Some(admit) = upstream.admit(&traffic.circuit_breaker).await else {
        report.error = Some(
            ProxyError::Overflow {
                service: service.to_string(),
            }
            .to_string(),
        );
        return Err(Close::Refused);
    };
    let max_retries = traffic
        .retries
        .as_ref()
        .filter(|policy| retries_connect(policy))
        .map_or(0, |policy| policy.attempts);
    let mut last_failed: Option<Arc<Replica>> = None;
    let mut attempt = 0;
    loop {
        let replica = match upstream.pick(traffic.load_balancer, last_failed.as_deref(), Some(port))
        {
            Ok(replica) => replica,
            Err(reason) => {
                if report.error.is_none() {
                    let error = ProxyError::NoReplica {
                        service: service.to_string(),
                        reason,
                    };
                    report.error = Some(error.to_string());
                }
                return Err(Close::Refused);
            }
        };
        report.replica = Some(replica.clone());
        let guard = replica.start();
        let address = replica.address_for(Some(port));
        let connected = tokio::time::timeout(
            config.limits.connect_timeout,
            super::upstream::connect(address),
        )
        .await;
        let detail = match connected {
            Ok(Ok(stream)) => {
                replica.record(false, &traffic.outlier_detection);
                let _ = stream.set_nodelay(true);
                report.error = None;
                return Ok(Opened {
                    stream,
                    _admit: admit,
                    _replica: guard,
                });
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no connection within {:?}", config.limits.connect_timeout),
        };
        if replica.record(true, &traffic.outlier_detection) {
            shared.metrics.record_ejection(service);
        }
        let error = ProxyError::ConnectFailed {
            service: service.to_string(),
            replica: replica.name.clone(),
            detail,
        };
        report.error = Some(error.to_string());
        if attempt >= max_retries {
            return Err(Close::Refused);
        }
        attempt += 1;
        report.retries = attempt;
        report
            .annotations
            .push((now_micros(), format!("retry {attempt}: {error}")));
        drop(guard);
        last_failed = Some(replica);
        if let Some(policy) = &traffic.retries {
            tokio::time::sleep(backoff(policy, attempt)).await;
        }
    }
}

/// Whether `policy` retries a connection that could not be opened.
fn retries_connect(policy: &RetryPolicy) -> bool {
    policy.on.iter().any(|condition| {
        matches!(
            condition,
            RetryOn::ConnectFailure | RetryOn::GatewayError | RetryOn::ServerError
        )
    })
}

/// Copies both ways until both sides have ended (or one failed, or shutdown): each side's end
/// is passed on to the other as a write shutdown, so a caller that closes its side still gets
/// the service's answer.
async fn splice(
    mut client: TcpStream,
    mut upstream: TcpStream,
    shutdown: &CancellationToken,
    report: &mut Report,
) {
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let (mut sent, mut received) = (0, 0);
    report.close = {
        let to_upstream = pipe(&mut client_read, &mut upstream_write, &mut sent);
        let to_client = pipe(&mut upstream_read, &mut client_write, &mut received);
        tokio::pin!(to_upstream, to_client);
        let first = tokio::select! {
            ended = &mut to_upstream => Some((Close::Client, ended)),
            ended = &mut to_client => Some((Close::Upstream, ended)),
            () = shutdown.cancelled() => None,
        };
        match first {
            None => Close::Shutdown,
            Some((_, Err(_))) => Close::Reset,
            Some((close, Ok(()))) => {
                let rest = async {
                    match close {
                        Close::Client => to_client.await,
                        _ => to_upstream.await,
                    }
                };
                tokio::select! {
                    rest = rest => if rest.is_ok() { close } else { Close::Reset },
                    () = shutdown.cancelled() => Close::Shutdown,
                }
            }
        }
    };
    report.sent = sent;
    report.received = received;
}

/// Copies `from` to `to` until `from` ends, then shuts `to`'s writing down; `count` grows with
/// every byte written.
async fn pipe<R, W>(from: &mut R, to: &mut W, count: &mut u64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buffer[..read]).await?;
        *count += read as u64;
    }
}

/// The `logging` phase of a connection: metrics, the access log, the spans.
fn finish(
    shared: &Shared,
    config: &ProxyConfig,
    connection: &Connection,
    report: Report,
    started: Instant,
    start_micros: u64,
) {
    let service: &str = &connection.called.service;
    let elapsed = started.elapsed();
    shared
        .metrics
        .record_l4(service, report.close.name(), report.sent, report.received);
    let caller = connection
        .caller
        .as_ref()
        .map_or("unknown", |caller| caller.service.as_str());
    tracing::info!(
        target: "sandbox::access",
        caller,
        protocol = if connection.tls { "tls" } else { "tcp" },
        service,
        port = connection.called.port,
        upstream = report.replica.as_ref().map_or("-", |replica| replica.name.as_str()),
        close = report.close.name(),
        sent = report.sent,
        received = report.received,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        retries = report.retries,
        sni = connection.sni.as_deref().unwrap_or(""),
        error = report.error.as_deref().unwrap_or(""),
    );
    let Some(recorder) = &shared.recorder else {
        return;
    };
    if !sample(config.sample_rate) {
        return;
    }
    for span in spans(
        connection,
        &report,
        start_micros,
        elapsed.as_micros() as u64,
    ) {
        recorder.record(span);
    }
}

/// The client span (the caller's side) and the server span (the service's, same id) of a
/// connection, in a trace of their own.
fn spans(
    connection: &Connection,
    report: &Report,
    start_micros: u64,
    duration_micros: u64,
) -> Vec<ProxySpan> {
    let context = TraceContext::root(true);
    let port = connection.called.port;
    let service = connection.called.service.to_string();
    let caller = connection
        .caller
        .as_ref()
        .map_or_else(|| "unknown".to_string(), |caller| caller.service.clone());
    let mut tags = BTreeMap::new();
    tags.insert(
        "sandbox.protocol",
        if connection.tls { "tls" } else { "tcp" }.to_string(),
    );
    tags.insert("server.port", port.to_string());
    tags.insert("sandbox.bytes_sent", report.sent.to_string());
    tags.insert("sandbox.bytes_received", report.received.to_string());
    tags.insert("sandbox.close", report.close.name().to_string());
    if let Some(sni) = &connection.sni {
        tags.insert("tls.sni", sni.clone());
    }
    if report.retries > 0 {
        tags.insert("sandbox.retries", report.retries.to_string());
    }
    let failed = matches!(report.close, Close::Refused | Close::Fault | Close::Reset);
    if let Some(error) = report.error.as_ref().filter(|_| failed) {
        tags.insert("error", error.clone());
    } else if failed {
        tags.insert("error", report.close.name().to_string());
    }
    let name = match (&connection.sni, connection.tls) {
        (Some(sni), _) => format!("tls {sni}"),
        (None, true) => format!("tls {port}"),
        (None, false) => format!("tcp {port}"),
    };
    let replica = report.replica.as_ref();
    let client = ProxySpan {
        trace_id: context.trace_id,
        id: context.span_id,
        parent_id: None,
        kind: SpanKind::Client,
        shared: false,
        name,
        local_service: caller.clone(),
        remote_service: service.clone(),
        remote_replica: replica.map(|replica| replica.name.clone()),
        remote_address: replica.map(|replica| replica.address_for(Some(port))),
        start_micros,
        duration_micros,
        tags,
        annotations: report.annotations.clone(),
    };
    let server = ProxySpan {
        kind: SpanKind::Server,
        shared: true,
        local_service: service,
        remote_service: caller,
        remote_replica: connection
            .caller
            .as_ref()
            .map(|caller| caller.replica.clone()),
        remote_address: Some(connection.source),
        ..client.clone()
    };
    vec![client, server]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Backoff;

    #[test]
    fn close_names_are_the_documented_ones() {
        let names: Vec<&str> = [
            Close::Client,
            Close::Upstream,
            Close::Refused,
            Close::Fault,
            Close::Reset,
            Close::Shutdown,
        ]
        .into_iter()
        .map(Close::name)
        .collect();
        assert_eq!(
            names,
            ["client", "upstream", "refused", "fault", "reset", "shutdown"]
        );
    }

    #[test]
    fn connect_failures_are_retried_by_the_conditions_that_cover_them() {
        let policy = |on: Vec<RetryOn>| RetryPolicy {
            attempts: 2,
            on,
            retriable_status: Vec::new(),
            retriable_grpc_status: Vec::new(),
            per_try_timeout: None,
            backoff: Backoff::default(),
        };
        assert!(retries_connect(&policy(vec![RetryOn::ConnectFailure])));
        assert!(retries_connect(&policy(vec![RetryOn::GatewayError])));
        assert!(retries_connect(&policy(vec![RetryOn::ServerError])));
        assert!(!retries_connect(&policy(vec![
            RetryOn::Reset,
            RetryOn::RetriableStatus
        ])));
    }
}
