//! gRPC against real containers: the static `grpc-peer` (tests/peers/grpc-peer) as an h2c service
//! (`http2: true`) with a `healthcheck: {grpc: ...}`; Python's grpcio through the gateway, the
//! peer's own client through the mesh from another container, and the gRPC health probe gating
//! `depends_on: {condition: service_healthy}`.
//!
//! The gateway test needs the virtualenv of `tests/peers/grpc/setup.sh` (`.ci/setup` runs it) and
//! fails naming that script when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::proxy::{has_span, Sandbox};
use crate::util::{ps_json, wait_until, Project};

/// Builds the static peer (`build.sh`), copies its image context into the project's `grpc-peer/`
/// and returns an image tag of the project's own.
fn peer_context(project: &Project) -> String {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpc-peer");
    let status = Command::new("sh")
        .arg(peer.join("build.sh"))
        .stdout(Stdio::null())
        .status()
        .expect("run tests/peers/grpc-peer/build.sh");
    assert!(status.success(), "tests/peers/grpc-peer/build.sh failed");
    let context = project.path("grpc-peer");
    std::fs::create_dir_all(&context).expect("mkdir");
    for file in ["Dockerfile", "grpc-peer"] {
        std::fs::copy(peer.join("image").join(file), context.join(file))
            .expect("copy the grpc-peer image context");
    }
    format!("sandbox-grpc-peer:{}", project.name)
}

/// A peer service block (indented for `services:`): `grpc-peer serve` on 50051, with `extra` lines.
fn peer_service(image: &str, name: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    image: {image}\n    build: ./grpc-peer\n    port: 50051\n    http2: true\n{extra}"
    )
}

/// The Python of `tests/peers/grpc/.venv`, with grpcio and grpcio-health-checking.
fn grpc_python() -> PathBuf {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpc");
    let python = peers.join(".venv/bin/python");
    let works = Command::new(&python)
        .args(["-c", "import grpc, grpc_health.v1"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        works,
        "this test needs Python's grpcio in {}: run `sh tests/peers/grpc/setup.sh` (.ci/setup does)",
        python.display()
    );
    python
}

/// The container of replica 1 of `service`.
fn container(project: &Project, service: &str) -> String {
    let prefix = format!("{}-{service}-", project.name);
    project
        .containers()
        .into_iter()
        .find(|(name, _)| name.starts_with(&prefix))
        .map(|(_, id)| id)
        .unwrap_or_else(|| panic!("no container of `{service}`: {:?}", project.containers()))
}

fn inspect(container: &str, format: &str) -> String {
    let output = Command::new("docker")
        .args(["inspect", "--format", format, container])
        .output()
        .expect("docker inspect");
    assert!(output.status.success(), "docker inspect {container}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn replica_entry<'a>(status: &'a Value, service: &str) -> &'a Value {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["service"] == service)
        .unwrap_or_else(|| panic!("ps --json lists `{service}`: {status}"))
}

#[test]
fn grpc_calls_of_every_kind_pass_the_gateway_with_statuses_and_trailers() {
    let python = grpc_python();
    let project = Project::new("grpc-gateway");
    let image = peer_context(&project);
    let manifest = format!(
        "gateway:\n  port: 0\n  routes:\n    - {{match: {{prefix: /demo.Echo/}}, service: echo}}\n    - {{match: {{prefix: /grpc.health.v1.Health/}}, service: echo}}\nservices:\n{}",
        peer_service(&image, "echo", "    healthcheck: {grpc: \"\", interval: 1s}\n")
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    assert_eq!(
        replica_entry(&sandbox.status, "echo")["health"],
        "healthy",
        "{}",
        sandbox.status
    );

    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpc/e2e_client.py");
    let output = Command::new(python)
        .arg(client)
        .arg(format!("127.0.0.1:{}", sandbox.gateway))
        .output()
        .expect("run e2e_client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the grpcio client failed:\n{report}"
    );
    let checks: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let names: Vec<&str> = checks
        .iter()
        .filter(|check| check["ok"] == true)
        .filter_map(|check| check["check"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "unary",
            "server-stream",
            "client-stream",
            "bidi",
            "status",
            "health"
        ],
        "{report}"
    );
    // The trailers the server added, and a status it was asked for, came through unchanged.
    assert_eq!(checks[2]["trailers"]["echo-count"], "4", "{report}");
    assert_eq!(checks[4]["code"], "PERMISSION_DENIED", "{report}");
    assert_eq!(checks[4]["details"], "requested status 7", "{report}");
}

#[test]
fn grpc_calls_of_every_kind_pass_the_mesh_between_containers_as_spans() {
    let project = Project::new("grpc-mesh");
    let image = peer_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        peer_service(
            &image,
            "echo",
            "    healthcheck: {grpc: \"\", interval: 1s}\n"
        ),
        peer_service(
            &image,
            "caller",
            "    depends_on: {echo: {condition: healthy}}\n"
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let caller = container(&sandbox.project, "caller");
    let environment = inspect(&caller, "{{json .Config.Env}}");
    let environment: Vec<String> = serde_json::from_str(&environment).expect("env as JSON");
    let echo_url = environment
        .iter()
        .find_map(|variable| variable.strip_prefix("ECHO_URL="))
        .unwrap_or_else(|| panic!("caller has ECHO_URL: {environment:?}"))
        .to_string();
    assert_eq!(echo_url, "http://echo.sandbox:15001");

    for (index, kind) in ["unary", "server-stream", "client-stream", "bidi", "health"]
        .into_iter()
        .enumerate()
    {
        let trace_id = format!("{:016x}{:016x}", std::process::id(), 0x9c00 + index);
        let output = Command::new("docker")
            .args(["exec", &caller, "/grpc-peer", "call", &echo_url, kind])
            .args(["--count", "4", "--size", "1000", "--trace-id", &trace_id])
            .output()
            .expect("docker exec");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{kind} through the mesh: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}"));
        assert_eq!(
            (report["ok"].clone(), report["status"].clone()),
            (true.into(), 0.into()),
            "{report}"
        );
        let expected = match kind {
            "unary" => vec![1000],
            "server-stream" | "bidi" => vec![1000; 4],
            "client-stream" => vec![4000],
            _ => vec![2],
        };
        assert_eq!(
            report["received"],
            serde_json::json!(expected),
            "{kind}: {report}"
        );
        if kind == "client-stream" {
            assert_eq!(report["trailers"]["echo-count"], "4", "{report}");
        }

        let spans = sandbox.trace(&trace_id, |spans| {
            has_span(spans, "CLIENT", "caller", "echo")
                && has_span(spans, "SERVER", "echo", "caller")
        });
        let trace = serde_json::to_string(&spans).unwrap_or_default();
        let mesh = spans
            .iter()
            .find(|span| span["kind"] == "CLIENT" && span["tags"]["sandbox.route"] == "mesh")
            .unwrap_or_else(|| panic!("the mesh's client span for caller → echo: {trace}"));
        let method = if kind == "health" {
            "/grpc.health.v1.Health/Check".to_string()
        } else {
            let name = match kind {
                "unary" => "Unary",
                "server-stream" => "ServerStream",
                "client-stream" => "ClientStream",
                _ => "Bidi",
            };
            format!("/demo.Echo/{name}")
        };
        assert_eq!(mesh["tags"]["http.path"], method.as_str(), "{trace}");
        assert!(mesh["tags"].get("error").is_none(), "{trace}");
    }
}

/// `2026-12-01T16:30:01.123456789Z` (docker's `StartedAt`) as seconds since the epoch.
fn timestamp(text: &str) -> f64 {
    let number = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("not a timestamp: {text}"))
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    // Days since 1970-01-01 (the civil calendar, March-based years).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + number(11..13) * 3600 + number(14..16) * 60 + number(17..19);
    let fraction: f64 = text
        .get(19..)
        .and_then(|rest| rest.trim_end_matches('Z').parse().ok())
        .unwrap_or(0.0);
    seconds as f64 + fraction
}

#[test]
fn the_grpc_probe_gates_a_dependent_until_the_service_is_serving() {
    let project = Project::new("grpc-gating");
    let image = peer_context(&project);
    project.manifest(&format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        peer_service(
            &image,
            "echo",
            "    environment: {HEALTH_DELAY: 5s}\n    healthcheck: {grpc: \"\", interval: 1s, retries: 20}\n"
        ),
        peer_service(
            &image,
            "app",
            "    depends_on: {echo: {condition: service_healthy}}\n"
        ),
    ));
    let config = project.run(&["--json", "config"]);
    config.success();
    assert!(
        config.stdout.contains(r#""grpc": {"#),
        "config shows the gRPC probe: {}",
        config.stdout
    );
    project.run(&["up", "--wait", "--timeout", "60"]).success();

    let started = |service: &str| {
        timestamp(&inspect(
            &container(&project, service),
            "{{.State.StartedAt}}",
        ))
    };
    let waited = started("app") - started("echo");
    assert!(
        waited >= 4.5,
        "`app` started {waited:.1}s after `echo`, before its health answered SERVING (after 5s)"
    );
    let status = ps_json(&project);
    assert_eq!(
        replica_entry(&status, "echo")["health"],
        "healthy",
        "{status}"
    );
    let table = project.run(&["ps"]);
    table.success();
    let line = table
        .stdout
        .lines()
        .find(|line| line.contains("echo"))
        .unwrap_or_else(|| panic!("ps lists echo: {}", table.stdout));
    assert!(
        line.contains("healthy") && !line.contains("unhealthy"),
        "{line}"
    );

    // The peer stops on SIGTERM at once (what `docker stop` sends first), exiting 0.
    let app = container(&project, "app");
    let begun = std::time::Instant::now();
    let stop = Command::new("docker")
        .args(["stop", "--time", "10", &app])
        .output()
        .expect("docker stop");
    assert!(stop.status.success(), "docker stop {app}");
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "grpc-peer took {:?} to stop on SIGTERM",
        begun.elapsed()
    );
    assert_eq!(inspect(&app, "{{.State.ExitCode}}"), "0");
}

#[test]
fn a_grpc_probe_that_is_not_serving_reports_unhealthy_with_the_reason() {
    let project = Project::new("grpc-unhealthy");
    let image = peer_context(&project);
    project.manifest(&format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        peer_service(
            &image,
            "stuck",
            "    environment: {HEALTH_DELAY: 1h}\n    healthcheck: {grpc: \"\", interval: 500ms, retries: 2}\n"
        ),
        peer_service(
            &image,
            "unknown",
            "    healthcheck: {grpc: pkg.Missing, interval: 500ms, retries: 2}\n"
        ),
    ));
    let run = project.run(&["up", "--wait", "--timeout", "30"]);
    run.expect_code(6);
    // Whichever replica is found unhealthy first, `up` names what its probe got.
    let stuck = "last probe: gRPC health → NOT_SERVING";
    let unknown = "last probe: gRPC health of `pkg.Missing` → NOT_FOUND: the health service does not know `pkg.Missing`";
    assert!(
        (run.stderr.contains("service `stuck` is unhealthy") && run.stderr.contains(stuck))
            || (run.stderr.contains("service `unknown` is unhealthy")
                && run.stderr.contains(unknown)),
        "up names what the probe got: {}",
        run.stderr
    );
    let status = wait_until("both replicas are probed", Duration::from_secs(10), || {
        let status = ps_json(&project);
        let probed = ["stuck", "unknown"]
            .iter()
            .all(|service| replica_entry(&status, service)["state"] == "running");
        probed.then_some(status)
    });
    let stuck = replica_entry(&status, "stuck");
    assert_eq!(stuck["health"], "unhealthy", "{status}");
    assert_eq!(
        stuck["health_detail"], "gRPC health → NOT_SERVING",
        "{status}"
    );
    let unknown = replica_entry(&status, "unknown");
    assert_eq!(unknown["health"], "unhealthy", "{status}");
    assert_eq!(
        unknown["health_detail"],
        "gRPC health of `pkg.Missing` → NOT_FOUND: the health service does not know `pkg.Missing`",
        "{status}"
    );
}
