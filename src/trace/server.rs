//! The HTTP server: accepts on the given listeners, serves HTTP/1.1 and h2c with hyper (gRPC
//! clients speak h2c with prior knowledge, which the auto builder detects), enforces a header read
//! timeout, and on shutdown stops accepting, lets in-flight requests finish and closes
//! connections, bounded by a grace period.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::trace::api::{serve, State, Surface};

/// How long a client may take to send request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after shutdown is requested.
const GRACE: Duration = Duration::from_secs(5);

/// Serves until `shutdown` is cancelled, then drains.
pub(crate) async fn run(
    listeners: Vec<(TcpListener, Surface)>,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    for (listener, surface) in listeners {
        tracker.spawn(accept(
            listener,
            surface,
            state.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    shutdown.cancelled().await;
    tracker.close();
    if tokio::time::timeout(GRACE + Duration::from_secs(1), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("trace server: connections still open after the grace period; closing them");
    }
}

async fn accept(
    listener: TcpListener,
    surface: Surface,
    state: Arc<State>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                tracker.spawn(connection(stream, surface, state.clone(), shutdown.clone()));
            }
            Err(error) => {
                // Runtime error (e.g. out of file descriptors): report, back off, keep serving.
                tracing::warn!(%error, "trace server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    surface: Surface,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(serve(request, state, surface).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "trace server: connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, connection).await;
        }
    }
}
