//! A pooled upstream connection that turns out stale: both HTTP/1.1 clients follow one rule
//! (`clients::may_resend`). A request that fails on a reused connection before any of its
//! response arrived is sent again on a fresh connection when it is idempotent and bodiless (or
//! was provably never written); a POST that was written is not, because the upstream may have
//! acted on it. The upstream here closes a kept-alive connection as soon as a second request
//! arrives on it, which is the race an upstream's idle timeout makes, made deterministic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::util::{get, send, start};

/// Answers the first request on each connection, then closes the connection, unanswered, when
/// the next request's head arrives.
struct OneShotUpstream {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
}

impl OneShotUpstream {
    async fn start() -> OneShotUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (connections, answered) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (connection_count, answer_count) = (connections.clone(), answered.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                connection_count.fetch_add(1, Ordering::SeqCst);
                let answer_count = answer_count.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let mut heads = 0;
                    loop {
                        if let Some(end) = find(&buffer, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                            let body = head
                                .lines()
                                .find_map(|line| line.strip_prefix("content-length:"))
                                .and_then(|value| value.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if buffer.len() >= end + 4 + body {
                                buffer.drain(..end + 4 + body);
                                heads += 1;
                                if heads > 1 {
                                    return;
                                }
                                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                                if stream.write_all(answer).await.is_err() {
                                    return;
                                }
                                answer_count.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(count) => buffer.extend_from_slice(&chunk[..count]),
                        }
                    }
                });
            }
        });
        OneShotUpstream {
            address,
            connections,
            answered,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

both_paths!(a_get_on_a_stale_connection_is_sent_again_a_written_post_is_not);
async fn a_get_on_a_stale_connection_is_sent_again_a_written_post_is_not() {
    let upstream = OneShotUpstream::start().await;
    let running = start(&format!(
        "services:\n  once:\n    external: http://{}\n",
        upstream.address
    ))
    .await;
    let url = running.url("/once/x");

    let first = get(&url, &[]).await;
    assert_eq!((first.status, first.body.as_str()), (200, "ok"));
    // Reuses the pooled connection, which closes unanswered: sent again on a fresh one.
    let second = get(&url, &[]).await;
    assert_eq!(
        (second.status, second.body.as_str()),
        (200, "ok"),
        "{second:?}"
    );
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);

    // The same happens to a POST, but it was written: the upstream may have acted on it.
    let post = send("POST", &url, &[("content-length", "0")], "").await;
    assert_eq!(post.status, 502, "{post:?}");
    assert_eq!(post.header("x-sandbox-error-source"), "upstream");
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        2,
        "not sent again"
    );

    // The closed connection is not reused.
    let after = get(&url, &[]).await;
    assert_eq!((after.status, after.body.as_str()), (200, "ok"));
    assert_eq!(upstream.answered.load(Ordering::SeqCst), 3);
}
