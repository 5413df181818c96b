//! Data-plane workers: listeners served by single-threaded runtimes on their own threads, one
//! socket each on a shared port; every worker accepts, the mesh runs on them too, and shutdown
//! stops them all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandbox::proxy::{Caller, NoStatus, Proxy};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::util::{config_from, get, http2, manifest, TestUpstream, FAST_PATH};

/// Connections opened at once, and requests sent on each (keep-alive).
const CONNECTIONS: usize = 64;
const REQUESTS: usize = 3;

fn proxy(yaml: &str) -> (Proxy, tempfile::TempDir) {
    let (mut config, directory) = config_from(yaml);
    config.limits.fast_path = FAST_PATH
        .try_with(|fast_path| *fast_path)
        .expect("a proxy test runs inside `both_paths!`");
    (Proxy::new(config, Arc::new(NoStatus), None), directory)
}

/// `REQUESTS` requests for `path` on one new connection (HTTP/2 when `http2`); their statuses.
async fn on_one_connection(address: SocketAddr, path: &str, http2: bool) -> Vec<u16> {
    let io = TokioIo::new(TcpStream::connect(address).await.expect("connect"));
    // HTTP/2 names the host in the URI (`:authority`), HTTP/1.1 in `Host`.
    let request = || {
        let request = match http2 {
            true => Request::get(format!("http://{address}{path}")),
            false => Request::get(path).header("host", "gateway"),
        };
        request.body(Empty::<Bytes>::new()).expect("request")
    };
    let mut statuses = Vec::new();
    if http2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("handshake");
        tokio::spawn(connection);
        for _ in 0..REQUESTS {
            let response = sender.send_request(request()).await.expect("response");
            statuses.push(response.status().as_u16());
            response.into_body().collect().await.expect("body");
        }
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("handshake");
        tokio::spawn(connection);
        for _ in 0..REQUESTS {
            let response = sender.send_request(request()).await.expect("response");
            statuses.push(response.status().as_u16());
            response.into_body().collect().await.expect("body");
        }
    }
    statuses
}

both_paths!(two_workers_share_a_port_and_both_accept);
async fn two_workers_share_a_port_and_both_accept() {
    let upstream = TestUpstream::start("a").await;
    let (proxy, _directory) = proxy(&manifest(&[&upstream], ""));
    let shutdown = CancellationToken::new();
    let (address, workers) = proxy
        .serve_gateway_workers("127.0.0.1:0".parse().expect("address"), 2, shutdown.clone())
        .await
        .expect("workers listen");
    assert_ne!(address.port(), 0, "port 0 becomes the port picked");
    assert_eq!(workers.count(), 2);

    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(on_one_connection(address, "/a/items", http2())))
        .collect();
    for client in clients {
        assert_eq!(client.await.expect("client"), vec![200; REQUESTS]);
    }
    assert_eq!(upstream.hits(), CONNECTIONS * REQUESTS);

    let accepted = proxy.metrics().accepted_by_worker();
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert_eq!(accepted.iter().sum::<u64>(), CONNECTIONS as u64);
    assert!(
        accepted.iter().all(|count| *count > 0),
        "the kernel spreads connections over both workers' sockets: {accepted:?}"
    );
    let page = get(&format!("http://{address}/__sandbox/metrics"), &[]).await;
    assert!(
        page.body
            .contains("sandbox_proxy_worker_accepted_connections_total{worker=\"1\"}"),
        "{}",
        page.body
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), workers.stopped())
        .await
        .expect("the workers stop within their grace period")
        .expect("no worker failed");
    assert!(
        TcpStream::connect(address).await.is_err(),
        "no worker listens after shutdown"
    );
}

both_paths!(the_mesh_is_served_by_the_same_workers);
async fn the_mesh_is_served_by_the_same_workers() {
    let item = TestUpstream::start("item").await;
    let (proxy, _directory) = proxy(&manifest(&[&item], ""));
    proxy.set_callers(HashMap::from([(
        "127.0.0.1".parse().expect("ip"),
        Caller {
            service: "user".into(),
            replica: "user-1".into(),
        },
    )]));
    let shutdown = CancellationToken::new();
    let workers = proxy
        .start_workers(2, shutdown.clone())
        .expect("workers start");
    let any = "127.0.0.1:0".parse().expect("address");
    let gateway = workers.listen_gateway(any).await.expect("gateway");
    let mesh = workers.listen_mesh(any).await.expect("mesh");
    assert_ne!(gateway, mesh);

    let answer = get(
        &format!("http://{mesh}/items/1"),
        &[("host", "item.sandbox:15001")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["path"], "/items/1");
    let taken = workers.listen_mesh(mesh).await;
    assert!(taken.is_err(), "a port in use is refused: {taken:?}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), workers.stopped())
        .await
        .expect("the workers stop within their grace period")
        .expect("no worker failed");
    assert!(TcpStream::connect(mesh).await.is_err());
}
