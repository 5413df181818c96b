//! The mesh forwarder's image on the real engine: built by `ensure_image`, run on a network of
//! its own with a service's alias, handing a container's call to an intake this test listens
//! with on the network's gateway; and removed by `sandbox prune` once no container uses it.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sandbox::engine::{forwarder, Docker};
use sandbox_forwarder::sniff::Sniffed;
use sandbox_forwarder::wire::Header;

use crate::util::{busybox_context, Project};

const TOKEN: &str = "e2e0123456789abcdef";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs the docker CLI; panics with its output unless it succeeds; returns stdout, trimmed.
fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("docker");
    assert!(
        output.status.success(),
        "docker {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Removes an image when dropped (declare it before the [`Project`] whose containers use it).
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "--no-prune", &self.0])
            .output();
    }
}

/// An intake on `ip`: reads one connection's header and first line, answers `pong` and closes.
fn intake(ip: IpAddr) -> (SocketAddr, mpsc::Receiver<(Header, Vec<u8>)>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind the intake on the network's gateway");
    let address = listener.local_addr().expect("intake address");
    let (report, reported) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 512];
        while let Ok(read @ 1..) = stream.read(&mut chunk) {
            bytes.extend_from_slice(&chunk[..read]);
            if let Ok(Some((header, used))) = Header::decode(&bytes) {
                if bytes[used..].contains(&b'\n') {
                    let _ = stream.write_all(b"pong from the intake\n");
                    let _ = report.send((header, bytes[used..].to_vec()));
                    return;
                }
            }
        }
    });
    (address, reported)
}

#[test]
fn a_container_calling_the_service_alias_reaches_the_intake_through_the_forwarder() {
    let project = Project::new("forwarder");
    let image = runtime().block_on(async {
        let docker = Docker::connect().await.expect("engine");
        forwarder::ensure_image(&docker)
            .await
            .expect("forwarder image")
    });
    assert!(image.starts_with("sandbox-forwarder:"), "{image}");
    let label = format!("dev.sandbox.project={}", project.name);
    let network = project.name.clone();
    docker(&["network", "create", "--label", &label, &network]);
    let gateway: IpAddr = docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        &network,
    ])
    .parse()
    .expect("the network's gateway address");
    let (intake, reported) = intake(gateway);
    let forwarder_name = format!("{}-item-mesh", project.name);
    docker(&[
        "run",
        "-d",
        "--name",
        &forwarder_name,
        "--label",
        &label,
        "--network",
        &network,
        "--network-alias",
        "item",
        "-e",
        "SANDBOX_MESH_SERVICE=item",
        "-e",
        "SANDBOX_MESH_PORTS=8080,9090",
        "-e",
        &format!("SANDBOX_MESH_INTAKE={intake}"),
        "-e",
        &format!("SANDBOX_MESH_TOKEN={TOKEN}"),
        &image,
    ]);
    let forwarder_ip: IpAddr = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &forwarder_name,
    ])
    .parse()
    .expect("the forwarder's address");

    let busybox = busybox_context(&project.path("bb"));
    docker(&[
        "build",
        "-q",
        "-t",
        &busybox,
        &project.path("bb").to_string_lossy(),
    ]);
    let client = docker(&[
        "run",
        "--rm",
        "--label",
        &label,
        "--network",
        &network,
        &busybox,
        "sh",
        "-c",
        // An HTTP request: the forwarder hands it over with its bytes after the header (other
        // bytes wait for the intake's L4 verdict, which this stand-in does not give).
        "hostname -i; (printf 'GET /ping HTTP/1.1\\r\\nHost: item\\r\\n\\r\\n'; sleep 3) | timeout 20 nc item 9090",
    ]);
    let mut lines = client.lines();
    let client_ip: IpAddr = lines
        .next()
        .and_then(|line| line.split_whitespace().next())
        .and_then(|ip| ip.parse().ok())
        .unwrap_or_else(|| panic!("the client printed its address first: {client}"));
    assert!(
        client.contains("pong from the intake"),
        "the intake's answer came back: {client}"
    );
    let (header, data) = reported
        .recv_timeout(Duration::from_secs(10))
        .expect("the intake received a connection");
    assert_eq!(header.service, "item");
    assert_eq!(header.token, TOKEN.as_bytes());
    assert!(!header.dial);
    assert_eq!(header.source.ip(), client_ip, "the caller is the client");
    assert_eq!(header.destination, SocketAddr::new(forwarder_ip, 9090));
    assert!(
        data.starts_with(b"GET /ping HTTP/1.1\r\n"),
        "the caller's bytes follow the header: {:?}",
        String::from_utf8_lossy(&data)
    );
    assert_eq!(
        header.sniffed,
        Some(Sniffed::Http),
        "the forwarder says what it sniffed"
    );

    let logs = Command::new("docker")
        .args(["logs", &forwarder_name])
        .output()
        .expect("docker logs");
    let logs = String::from_utf8_lossy(&logs.stderr);
    assert!(logs.contains("service `item`: listening on"), "{logs}");
    assert!(!logs.contains(TOKEN), "the token is never logged: {logs}");
    // As PID 1 the forwarder still ends on SIGTERM, without the 10 s grace period.
    let started = Instant::now();
    docker(&["stop", "-t", "10", &forwarder_name]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "docker stop took {:?}",
        started.elapsed()
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &forwarder_name]),
        "0"
    );
}

#[test]
fn prune_removes_forwarder_images_once_no_container_uses_them() {
    // Another build of the forwarder (its bytes differ, so its tag does), built twice at once.
    let variant = runtime().block_on(async {
        let docker = Docker::connect().await.expect("engine");
        let mut binary = forwarder::binary()
            .await
            .expect("forwarder binary")
            .to_vec();
        binary.extend_from_slice(format!("\0e2e variant {}", std::process::id()).as_bytes());
        let (first, second) = tokio::join!(
            forwarder::ensure_image_of(&docker, &binary),
            forwarder::ensure_image_of(&docker, &binary)
        );
        let first = first.expect("first concurrent build");
        assert_eq!(first, second.expect("second concurrent build"));
        first
    });
    let _image = ImageGuard(variant.clone());
    let user = Project::new("forwarder-user");
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"dev.sandbox.forwarder\"}}",
            &variant
        ]),
        "true"
    );
    let container = docker(&[
        "create",
        "--label",
        &format!("dev.sandbox.project={}", user.name),
        &variant,
    ]);
    // Only projects of a prefix no project has: no project is touched, but forwarder images of
    // other builds that no container uses are removed.
    let prefix = format!("nothing-{}", std::process::id());
    let kept = user.run(&["prune", "--prefix", &prefix]);
    kept.success();
    assert!(
        !kept.stdout.contains(&variant),
        "an image a container uses is kept: {}",
        kept.stdout
    );
    docker(&["rm", &container]);
    let pruned = user.run(&["prune", "--prefix", &prefix]);
    pruned.success();
    assert!(
        pruned.stdout.contains(&format!("removed image {variant}")),
        "{}",
        pruned.stdout
    );
    let gone = Command::new("docker")
        .args(["image", "inspect", &variant])
        .output()
        .expect("docker image inspect");
    assert!(!gone.status.success(), "{variant} is still on the engine");
}
