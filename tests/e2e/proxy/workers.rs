//! The data plane: `gateway: {workers: N}` runs N workers on the gateway's port, each accepting.

use std::net::TcpListener;

use super::*;

/// An HTTP/1.1 upstream on the host that answers `ok` to anything and closes; stops when the
/// test process ends.
fn host_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the host upstream");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

#[test]
fn gateway_workers_share_the_port_and_each_accepts() {
    let project = Project::new("proxy-workers");
    let upstream = host_upstream();
    let manifest = format!(
        "gateway: {{port: 0, workers: 2}}\nservices:\n  up:\n    external: http://127.0.0.1:{upstream}\n"
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    let clients: Vec<_> = (0..32)
        .map(|_| {
            let port = sandbox.gateway;
            std::thread::spawn(move || send(port, "GET", "/up/", &[]))
        })
        .collect();
    for client in clients {
        let answer = client.join().expect("client thread");
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "ok"),
            "{answer:?}"
        );
    }

    let metrics = sandbox.get("/__sandbox/metrics").body;
    let accepted: Vec<u64> = metrics
        .lines()
        .filter(|line| line.starts_with("sandbox_proxy_worker_accepted_connections_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(accepted.len(), 2, "two workers: {metrics}");
    assert!(
        accepted.iter().all(|count| *count > 0),
        "both workers accepted connections: {accepted:?}"
    );
}
