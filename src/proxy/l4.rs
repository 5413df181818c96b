//! L4: a mesh connection that is not HTTP (a database, a cache, a broker, TLS between services)
//! joined to a replica of the service its forwarder stands for, at the port the caller dialed.
//! The service's policies that make sense for bytes apply:
//! - `faults`: `delay` delays the connect, `abort` refuses the connection (each at its
//!   percentage);
//! - the circuit breaker admits the connection (a slot while it lives);
//! - `upstream_peer`: a replica by the service's load balancing, skipping unhealthy and ejected
//!   ones; a connect failure counts for outlier detection and, when the retry policy retries
//!   connect failures (`connect-failure`, `gateway-error`, `5xx`), the next try goes to another
//!   replica after the policy's back-off.
//!
//! The replicas to try are chosen up front ([`plan`]: the first try and one per retry the policy
//! allows, each avoiding the one before it). Who connects them and carries the bytes:
//! - a forwarder that sniffed the connection itself ([`serve_remote`]) gets them as a
//!   [`Message::Dial`] verdict on its intake connection (or [`Message::Refuse`]), connects them
//!   in order, splices the caller to the replica on its own network (the bytes never reach the
//!   control plane) and reports which replica took it ([`Message::Dialed`]) and how it ended
//!   ([`Message::Ended`]). The circuit-breaker slot and the replica's count are held while the
//!   control connection is open; a control connection that ends early is recorded as `reset`
//!   with what is known (the forwarder splices on);
//! - a forwarder that did not sniff (an older image: no sniffed TLV) hands the bytes over, and
//!   [`serve`] connects and splices here, in bounded buffers.
//!
//! No replica, a closed port, an abort: the caller's connection is reset at once (never a hang).
//! Bytes pass both ways, each side's end passed on to the other (half close), with no idle
//! timeout. When the connection ends: one client and one server span (a new trace: nothing to
//! propagate at L4), named `tcp <port>` or `tls <server name>`, an access-log line and the
//! `sandbox_proxy_l4_*` metrics.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox_forwarder::wire::{self, Dial, Ending, Message, MESSAGE_HEAD};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::manifest::{RetryOn, RetryPolicy, TrafficPolicy};

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

impl Report {
    fn new() -> Report {
        Report {
            close: Close::Client,
            sent: 0,
            received: 0,
            replica: None,
            retries: 0,
            annotations: Vec::new(),
            error: None,
        }
    }
}

/// What [`plan`] decided for a connection: its circuit-breaker slot and the replicas to try, in
/// order, with the pause before each retry.
struct Plan<'a> {
    traffic: &'a TrafficPolicy,
    admit: AdmitGuard,
    candidates: Vec<Arc<Replica>>,
    /// `backoffs[i]` before `candidates[i + 1]`.
    backoffs: Vec<Duration>,
}

/// Splices `client` to a replica of the called service until both sides have ended: the
/// intake-side splice, for forwarders that hand the bytes over.
pub(super) async fn serve(
    shared: Arc<Shared>,
    client: TcpStream,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let config = shared.config();
    let started = Instant::now();
    let start_micros = now_micros();
    let mut report = Report::new();
    let opened = tokio::select! {
        opened = open(&shared, &config, &connection, &mut report) => opened,
        () = shutdown.cancelled() => Err(Close::Shutdown),
    };
    match opened {
        Ok((upstream, _admit, _replica)) => {
            splice(client, upstream, &shutdown, &mut report).await;
        }
        Err(close) => {
            report.close = close;
            // A reset, at once: the caller's client sees its connection refused, not a hang.
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            drop(client);
        }
    }
    finish(&shared, &config, &connection, report, started, start_micros);
}

/// The plan, then its candidates connected here in order until one accepts.
async fn open(
    shared: &Shared,
    config: &ProxyConfig,
    connection: &Connection,
    report: &mut Report,
) -> Result<(TcpStream, AdmitGuard, ReplicaGuard), Close> {
    let plan = plan(shared, config, connection, report).await?;
    let port = connection.called.port;
    let tries = plan.candidates.len();
    for (attempt, replica) in plan.candidates.iter().enumerate() {
        if attempt > 0 {
            tokio::time::sleep(plan.backoffs[attempt - 1]).await;
        }
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
                connected_to(replica, plan.traffic, report);
                let _ = stream.set_nodelay(true);
                return Ok((stream, plan.admit, guard));
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no connection within {:?}", config.limits.connect_timeout),
        };
        let last = attempt + 1 == tries;
        connect_failed(
            shared,
            connection,
            plan.traffic,
            replica,
            detail,
            attempt,
            last,
            report,
        );
    }
    Err(Close::Refused)
}

/// Serves an L4 connection whose forwarder sniffed it and splices it itself: `control` carries
/// the verdict to the forwarder and its reports back (see the module's documentation).
pub(super) async fn serve_remote(
    shared: Arc<Shared>,
    mut control: TcpStream,
    connection: Connection,
    shutdown: CancellationToken,
) {
    let config = shared.config();
    let started = Instant::now();
    let start_micros = now_micros();
    let mut report = Report::new();
    let _ = control.set_nodelay(true);
    let planned = tokio::select! {
        planned = plan(&shared, &config, &connection, &mut report) => planned,
        () = shutdown.cancelled() => Err(Close::Shutdown),
    };
    match planned {
        Err(close) => {
            report.close = close;
            // The forwarder resets the caller's connection; if this write fails it does so too.
            let _ = control.write_all(&Message::Refuse.encode()).await;
        }
        Ok(plan) => {
            let port = connection.called.port;
            let dial = Message::Dial(Dial {
                candidates: plan
                    .candidates
                    .iter()
                    .map(|replica| replica.address_for(Some(port)))
                    .collect(),
                backoffs: plan.backoffs.clone(),
                connect_timeout: config.limits.connect_timeout,
            });
            let followed = tokio::select! {
                followed = follow(&shared, &mut control, &connection, &plan, &mut report, dial) => followed,
                () = shutdown.cancelled() => Err(Close::Shutdown),
            };
            if let Err(close) = followed {
                report.close = close;
            }
        }
    }
    finish(&shared, &config, &connection, report, started, start_micros);
}

/// Sends the dial verdict and follows the forwarder's reports until the connection ended; the
/// plan's slot and the connected replica's count are held until then.
async fn follow(
    shared: &Shared,
    control: &mut TcpStream,
    connection: &Connection,
    plan: &Plan<'_>,
    report: &mut Report,
    dial: Message,
) -> Result<(), Close> {
    let lost = |report: &mut Report, error: io::Error| {
        report.error = Some(format!(
            "the forwarder's control connection ended early: {error}"
        ));
        Close::Reset
    };
    if let Err(error) = control.write_all(&dial.encode()).await {
        return Err(lost(report, error));
    }
    let dialed = match read_message(control).await {
        Ok(Message::Dialed(dialed)) => dialed,
        Ok(other) => return Err(lost(report, unexpected(&other))),
        Err(error) => return Err(lost(report, error)),
    };
    let tries = match dialed.connected {
        Some(index) => usize::from(index) + 1,
        None => plan.candidates.len(),
    };
    for (attempt, failure) in dialed.failures.iter().enumerate() {
        let Some(replica) = plan.candidates.get(usize::from(failure.candidate)) else {
            continue;
        };
        report.replica = Some(replica.clone());
        let last = attempt + 1 >= tries;
        let detail = failure.error.clone();
        connect_failed(
            shared,
            connection,
            plan.traffic,
            replica,
            detail,
            attempt,
            last,
            report,
        );
    }
    let Some(replica) = dialed
        .connected
        .and_then(|index| plan.candidates.get(usize::from(index)))
    else {
        if report.error.is_none() {
            report.error = Some("no replica accepted the connection".to_string());
        }
        return Err(Close::Refused);
    };
    connected_to(replica, plan.traffic, report);
    let _guard = replica.start();
    let ended = match read_message(control).await {
        Ok(Message::Ended(ended)) => ended,
        Ok(other) => return Err(lost(report, unexpected(&other))),
        Err(error) => return Err(lost(report, error)),
    };
    report.sent = ended.sent;
    report.received = ended.received;
    report.close = match ended.close {
        Ending::Client => Close::Client,
        Ending::Upstream => Close::Upstream,
        Ending::Reset => Close::Reset,
    };
    Ok(())
}

fn unexpected(message: &Message) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected message {message:?}"),
    )
}

/// Reads one control message (bounded by [`wire::MAX_MESSAGE`]).
async fn read_message(control: &mut TcpStream) -> io::Result<Message> {
    let invalid = |error: wire::WireError| io::Error::new(io::ErrorKind::InvalidData, error);
    let mut bytes = [0u8; wire::MAX_MESSAGE];
    control.read_exact(&mut bytes[..MESSAGE_HEAD]).await?;
    let len = Message::length([bytes[0], bytes[1], bytes[2], bytes[3]]).map_err(invalid)?;
    control.read_exact(&mut bytes[MESSAGE_HEAD..len]).await?;
    match Message::decode(&bytes[..len]).map_err(invalid)? {
        Some((message, _)) => Ok(message),
        None => Err(invalid(wire::WireError::Malformed("message cut short"))),
    }
}

/// Faults, the circuit breaker, then the replicas to try: one per try the retry policy allows
/// (at most `wire::MAX_CANDIDATES`), each avoiding the one before it.
async fn plan<'a>(
    shared: &Shared,
    config: &'a ProxyConfig,
    connection: &Connection,
    report: &mut Report,
) -> Result<Plan<'a>, Close> {
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
    let retry_policy = traffic
        .retries
        .as_ref()
        .filter(|policy| retries_connect(policy));
    let max_retries = retry_policy.map_or(0, |policy| policy.attempts as usize);
    let tries = (1 + max_retries).min(wire::MAX_CANDIDATES);
    let mut candidates: Vec<Arc<Replica>> = Vec::with_capacity(tries);
    for _ in 0..tries {
        match upstream.pick(
            traffic.load_balancer,
            candidates.last().map(|r| r.as_ref()),
            Some(port),
        ) {
            Ok(replica) => candidates.push(replica),
            Err(_) if !candidates.is_empty() => break,
            Err(reason) => {
                let error = ProxyError::NoReplica {
                    service: service.to_string(),
                    reason,
                };
                report.error = Some(error.to_string());
                return Err(Close::Refused);
            }
        }
    }
    let backoffs = (1..candidates.len())
        .map(|attempt| {
            retry_policy.map_or(Duration::ZERO, |policy| backoff(policy, attempt as u32))
        })
        .collect();
    Ok(Plan {
        traffic,
        admit,
        candidates,
        backoffs,
    })
}

/// A candidate took the connection: outlier detection counts a success.
fn connected_to(replica: &Arc<Replica>, traffic: &TrafficPolicy, report: &mut Report) {
    replica.record(false, &traffic.outlier_detection);
    report.replica = Some(replica.clone());
    report.error = None;
}

/// A candidate (try `attempt`, from 0) could not be connected: outlier detection counts a
/// failure, the error is kept, and unless it was the `last` try a retry is annotated.
#[allow(clippy::too_many_arguments)]
fn connect_failed(
    shared: &Shared,
    connection: &Connection,
    traffic: &TrafficPolicy,
    replica: &Arc<Replica>,
    detail: String,
    attempt: usize,
    last: bool,
    report: &mut Report,
) {
    let service: &str = &connection.called.service;
    if replica.record(true, &traffic.outlier_detection) {
        shared.metrics.record_ejection(service);
    }
    let error = ProxyError::ConnectFailed {
        service: service.to_string(),
        replica: replica.name.clone(),
        detail,
    };
    if !last {
        let retry = attempt as u32 + 1;
        report.retries = retry;
        report
            .annotations
            .push((now_micros(), format!("retry {retry}: {error}")));
    }
    report.error = Some(error.to_string());
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
