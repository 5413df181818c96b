//! The mesh on engines whose host has no address on the containers' networks (Docker Desktop,
//! remote engines), forced on this Linux engine with `SANDBOX_MESH_REACH=host`: forwarders hand
//! connections to the intake through `host.docker.internal:<intake port>` (where host-gateway
//! arrives: the default bridge's gateway here, loopback on Desktop), and the control plane opens
//! every upstream connection through the callee's forwarder (its dial port, published on the
//! host's loopback), never to a container address itself.
//!
//! What runs: the demo chain calling `http://item:8080` directly (one trace gateway → user →
//! item with the mesh's spans), an L4 transfer of 10 MiB each way, proof that the replica was
//! connected by its forwarder (a CGI answers with the address it was called from), and the
//! dial port refusing requests without the token; retries hiding a killed replica; a stopped
//! callee and closed ports failing at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sandbox_forwarder::wire::{Header, DIAL_CONNECTED};

use crate::mesh::{
    container, direct_chain, docker, echo, exec, handoffs, sleeper, tag_number, traces,
    user_calls_item_directly,
};
use crate::proxy::{has_span, Sandbox};
use crate::util::{cgi_service, wait_until, Project};

/// What forces the host-gateway path.
const FORCED: [(&str, &str); 1] = [("SANDBOX_MESH_REACH", "host")];

/// A busybox httpd on 8080 whose `/cgi-bin/peer` answers with the address that called it.
fn peer(project: &Project, name: &str) -> String {
    cgi_service(
        project,
        name,
        "peer",
        r#"#!/bin/sh\necho Content-Type: text/plain\necho\necho "$$REMOTE_ADDR"\n"#,
        "",
    )
}

/// The forwarder of `service`: its environment and its dial port's host address.
fn forwarder(sandbox: &Sandbox, service: &str) -> (String, SocketAddr) {
    let name = format!("{}-{service}-mesh", sandbox.project.name);
    let environment = docker(&["inspect", "-f", "{{json .Config.Env}}", &name]);
    let published = docker(&["port", &name, "15003/tcp"]);
    let address = published
        .lines()
        .find_map(|line| line.trim().parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("the dial port is published: {published:?}"));
    (environment, address)
}

/// An address as busybox httpd writes it (`[::ffff:172.26.0.5]`: it listens on IPv6) as IPv4.
fn unmapped(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix("[::ffff:")
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text)
}

/// The IP of `container` on the project's default network.
fn ip_on_default(sandbox: &Sandbox, container: &str) -> String {
    let network = format!("{}_default", sandbox.project.name);
    docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        container,
    ])
    .trim()
    .to_string()
}

#[test]
fn forced_host_gateway_mesh_carries_the_direct_chain_and_an_l4_transfer() {
    let project = Project::new("mesh-host");
    let manifest = format!(
        "{}{}{}{}",
        direct_chain(&project, "", ""),
        echo(&project, "echo"),
        sleeper(&project, "client", ""),
        peer(&project, "peer"),
    );
    let sandbox = Sandbox::up(project, &manifest, &FORCED);

    // The wiring: forwarders reach the intake by the host-gateway name, and dial.
    let (environment, dial) = forwarder(&sandbox, "item");
    assert!(
        environment.contains("SANDBOX_MESH_INTAKE=host.docker.internal:"),
        "{environment}"
    );
    assert!(
        environment.contains("SANDBOX_MESH_DIAL_PORT=15003"),
        "{environment}"
    );
    assert!(
        dial.ip().is_loopback(),
        "published on loopback only: {dial}"
    );

    // L7: `user` calls `http://item:8080` by name, relayed through the intake's port (a
    // descriptor cannot cross into Docker Desktop's VM, so there is no handoff socket).
    user_calls_item_directly(&sandbox, |_| true);
    assert_eq!(handoffs(&sandbox), 0);
    assert!(
        !environment.contains("SANDBOX_MESH_HANDOFF"),
        "{environment}"
    );

    // The replica was connected by its forwarder, not by the host: it sees the forwarder's
    // address, from a caller's call and from the gateway's.
    let client = container(&sandbox, "client", 1);
    let peer_forwarder = ip_on_default(&sandbox, &format!("{}-peer-mesh", sandbox.project.name));
    let (ok, out, err) = exec(
        &client,
        "printf 'GET /cgi-bin/peer HTTP/1.0\\r\\nHost: peer\\r\\n\\r\\n' | timeout 10 nc peer 8080",
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        unmapped(out.lines().last().unwrap_or("")),
        peer_forwarder,
        "the callee is called from its forwarder: {out}"
    );
    let through_gateway = sandbox.get("/peer/cgi-bin/peer");
    assert_eq!(through_gateway.status, 200, "{through_gateway:?}");
    assert_eq!(
        unmapped(&through_gateway.body),
        peer_forwarder,
        "{through_gateway:?}"
    );

    // L4: 10 MiB each way, intact, with its span.
    let started = std::time::Instant::now();
    let (ok, out, err) = exec(
        &client,
        "mkdir -p /tmp; (printf x; head -c 10485759 /dev/urandom) > /tmp/in; sha256sum < /tmp/in; \
         timeout 60 nc echo 7000 < /tmp/in | sha256sum; rm /tmp/in",
    );
    assert!(ok, "{out}{err}");
    let sums: Vec<&str> = out
        .lines()
        .map(|line| line.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(sums.len(), 2, "{out}{err}");
    assert_eq!(sums[0], sums[1], "the bytes came back intact: {out}{err}");
    eprintln!(
        "10 MiB each way through the forced host-gateway mesh in {:?}",
        started.elapsed()
    );
    let spans = wait_until(
        "the connection's span is stored",
        Duration::from_secs(10),
        || {
            let spans = traces(&sandbox, "client", "tcp 7000");
            has_span(&spans, "CLIENT", "client", "echo").then_some(spans)
        },
    );
    let span = spans
        .iter()
        .find(|span| span["kind"] == "CLIENT" && span["localEndpoint"]["serviceName"] == "client")
        .expect("the client span");
    assert_eq!(tag_number(span, "sandbox.bytes_sent"), 10 * 1024 * 1024);
    assert_eq!(tag_number(span, "sandbox.bytes_received"), 10 * 1024 * 1024);
}

#[test]
fn forced_host_gateway_retries_hide_a_killed_replica() {
    // The dead replica is dialed by its forwarder, which answers that it could not connect: a
    // connect failure, retried on the other replica.
    crate::mesh::retries_hide_a_killed_replica("mesh-host-retries", &FORCED);
}

#[test]
fn forced_host_gateway_bad_cases_fail_at_once() {
    // A port the service does not listen on: the forwarder answers the dial "refused".
    crate::mesh::stopped_callee_and_closed_ports_fail_at_once("mesh-host-down", &FORCED);
}

/// Sends `bytes` to `address` and reads what comes back before the connection ends.
fn answer_to(address: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).expect("the dial port accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).expect("write");
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(error) => assert_ne!(
            error.kind(),
            std::io::ErrorKind::WouldBlock,
            "the forwarder never hangs a refused request"
        ),
    }
    answer
}

#[test]
fn a_forwarders_dial_port_refuses_requests_without_the_token() {
    let project = Project::new("mesh-host-token");
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        echo(&project, "echo"),
        sleeper(&project, "client", ""),
    );
    let sandbox = Sandbox::up(project, &manifest, &FORCED);
    let (_, dial) = forwarder(&sandbox, "echo");
    let echo_ip = ip_on_default(&sandbox, &container(&sandbox, "echo", 1));
    let destination: SocketAddr = format!("{echo_ip}:7000").parse().unwrap();
    let request = |token: &[u8]| {
        let mut bytes = Header {
            source: "0.0.0.0:0".parse().unwrap(),
            destination,
            token: token.to_vec(),
            service: String::new(),
            dial: true,
            sniffed: None,
        }
        .encode();
        bytes.extend_from_slice(b"hello\n");
        bytes
    };
    for (what, bytes) in [
        ("a wrong token", request(b"not-the-token")),
        ("no token", request(b"")),
        ("no header at all", b"hello\n".to_vec()),
    ] {
        let answer = answer_to(dial, &bytes);
        assert!(
            answer.is_empty(),
            "{what}: refused without an answer, nothing dialed: {answer:?}"
        );
        assert!(!answer.contains(&DIAL_CONNECTED));
    }
    // From a container on the network, by the service's name: refused too.
    let client = container(&sandbox, "client", 1);
    let (_, out, _) = exec(&client, "printf 'hello\\n' | timeout 10 nc echo 15003");
    assert!(out.is_empty(), "refused: {out:?}");
    // The service itself still works through the mesh.
    let (ok, out, err) = exec(&client, "printf 'ping\\n' | timeout 10 nc echo 7000");
    assert!(ok && out.trim() == "ping", "{out}{err}");
    let stderr = std::process::Command::new("docker")
        .args(["logs", &format!("{}-echo-mesh", sandbox.project.name)])
        .output()
        .expect("docker logs");
    let stderr = String::from_utf8_lossy(&stderr.stderr);
    assert!(
        stderr.contains("refused a dial request"),
        "the forwarder says why: {stderr}"
    );
    assert!(!stderr.contains("not-the-token"), "no token in its logs");
}
