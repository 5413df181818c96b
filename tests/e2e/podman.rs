//! The core scenarios on Podman's Docker-compatible API: each test starts `podman system service`
//! on a socket of its own (with `podman/containers.conf`), points sandbox and the docker CLI at it
//! with `DOCKER_HOST`, builds its images into Podman's store through sandbox's `build:`, and stops
//! the service when it ends. They fail, never skip, when Podman is missing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::example::{example_manifest, get, port_of, trace_id_of, trace_spans};
use crate::proxy::has_span;
use crate::util::{busybox_context, httpd_service, ps_json, wait_until, Project};

/// A `podman system service` of this test, stopped when dropped (after the project, which is
/// declared later and so dropped first: its cleanup still reaches the engine).
struct Podman {
    service: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Podman {
    /// Starts the service and waits until it answers; panics with the next step when it cannot.
    fn start() -> Podman {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("podman.sock");
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/podman/containers.conf");
        let log = std::fs::File::create(dir.path().join("service.log")).expect("service log");
        let service = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .env("CONTAINERS_CONF", &config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("these tests need Podman (`podman`: {error}); .ci/setup installs it with apt-get install podman")
            });
        let mut podman = Podman {
            service,
            socket,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !podman.answers() {
            if let Ok(Some(status)) = podman.service.try_wait() {
                panic!(
                    "`podman system service` exited ({status}): {}",
                    podman.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "`podman system service` did not answer within 30s: {}",
                podman.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        podman
    }

    /// `DOCKER_HOST` for this service.
    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return false;
        };
        let mut answer = String::new();
        stream
            .write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            .and_then(|()| stream.read_to_string(&mut answer))
            .is_ok()
            && answer.ends_with("OK")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // SAFETY: signalling the service this test started.
        unsafe { libc::kill(self.service.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.service.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

/// The project's running service containers (its mesh forwarders left out).
fn running(project: &Project) -> usize {
    let output = project
        .docker()
        .args([
            "ps",
            "--filter",
            &format!("label=dev.sandbox.project={}", project.name),
            "--format",
            "{{.ID}} {{.Label \"dev.sandbox.role\"}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.trim_end().split(' ').nth(1).unwrap_or("").is_empty())
        .count()
}

fn assert_nothing_left(project: &Project) {
    let leftovers = project.leftovers();
    assert!(leftovers.is_empty(), "left behind on Podman: {leftovers:?}");
}

#[test]
fn on_podman_the_example_is_traced_gateway_user_item_and_its_checks_pass() {
    let podman = Podman::start();
    let project = Project::on_engine("pm-example", &podman.host());
    project.manifest(&example_manifest(&project));
    project.run(&["up", "-d", "--wait"]).success();
    let status = ps_json(&project);
    let gateway = port_of(&status, "gateway");
    let zipkin = port_of(&status, "zipkin");

    let answer = get(gateway, "/users/7");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(r#"{"service":"user","id":"7","item":{"id": "7", "name": "item 7"}}"#),
        "{answer}"
    );
    let trace_id = trace_id_of(&answer);
    // The mesh's spans (user → item through the gateway address Podman brought up with the first
    // container) and the demo's own, sent to the trace server on that address.
    wait_until(
        "the trace holds the mesh's and the services' spans",
        Duration::from_secs(15),
        || {
            let spans = trace_spans(zipkin, &trace_id)?;
            let has = |kind: &str, local: &str, remote: &str| has_span(&spans, kind, local, remote);
            let complete = has("CLIENT", "gateway", "user")
                && has("CLIENT", "user", "item")
                && has("SERVER", "item", "user")
                && spans.iter().any(|span| span["name"] == "get /items/{id}");
            complete.then_some(())
        },
    );

    let test = project.run(&["test"]);
    test.success();
    assert!(
        test.stdout.contains("✔ pass  user answers with its item"),
        "{}",
        test.stdout
    );
    project.run(&["down"]).success();
    assert_nothing_left(&project);
}

#[test]
fn on_podman_run_brings_the_sandbox_up_runs_the_command_and_removes_everything() {
    let podman = Podman::start();
    let project = Project::on_engine("pm-run", &podman.host());
    project.manifest(&example_manifest(&project));
    let seen = project.path("seen.env");
    let script = format!(
        "env | grep -E '^(USER_URL|ITEM_URL)=' | sort > {}; exit 3",
        seen.display()
    );
    project
        .run(&["run", "--", "sh", "-c", &script])
        .expect_code(3);
    let environment = std::fs::read_to_string(&seen).expect("the command ran");
    assert!(
        environment.contains("USER_URL=http://127.0.0.1:"),
        "{environment}"
    );
    assert_nothing_left(&project);
}

#[test]
fn on_podman_a_killed_detached_control_plane_strands_nothing_that_down_cannot_find() {
    let podman = Podman::start();
    let project = Project::on_engine("pm-kill9", &podman.host());
    project.manifest(&format!(
        "services:\n{}",
        httpd_service(&project, "web", "")
    ));
    project.run(&["up", "-d"]).success();
    let pid = ps_json(&project)["pid"]
        .as_u64()
        .expect("control plane pid") as i32;
    // SAFETY: killing the control plane this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        running(&project),
        1,
        "the container outlives its control plane"
    );
    let status = ps_json(&project);
    assert!(
        status["pid"].is_null(),
        "a dead control plane is not reported: {status}"
    );
    project.run(&["down", "-t", "0"]).success();
    assert_nothing_left(&project);
}

#[test]
fn on_podman_sigkill_of_a_foreground_up_is_cleaned_up_by_the_reaper() {
    let podman = Podman::start();
    let project = Project::on_engine("pm-reaper", &podman.host());
    project.manifest(&format!(
        "services:\n{}",
        httpd_service(&project, "web", "")
    ));
    let mut child = project.spawn_quiet(&["up"]);
    wait_until("the container runs", Duration::from_secs(60), || {
        (running(&project) == 1).then_some(())
    });
    child.kill().expect("kill -9 the foreground up");
    child.wait().expect("reap it");
    wait_until(
        "the reaper removed the project",
        Duration::from_secs(20),
        || project.leftovers().is_empty().then_some(()),
    );
}

/// Issue 10 on Podman: `user` calls `http://item:8080` by name (no `ITEM_URL`), and the call
/// still passes through the mesh (item's forwarder hands it to the control plane's intake).
#[test]
fn on_podman_a_direct_call_by_service_name_is_traced_through_the_mesh() {
    let podman = Podman::start();
    let project = Project::on_engine("pm-mesh", &podman.host());
    project.manifest(&crate::mesh::direct_chain(&project, "", ""));
    project.run(&["up", "-d", "--wait"]).success();
    let status = ps_json(&project);
    let gateway = port_of(&status, "gateway");
    let zipkin = port_of(&status, "zipkin");

    let answer = get(gateway, "/user/users/7");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""name": "item 7""#), "{answer}");
    let trace_id = trace_id_of(&answer);
    let spans = wait_until(
        "the trace holds the mesh's client and server spans",
        Duration::from_secs(15),
        || {
            let spans = trace_spans(zipkin, &trace_id)?;
            let mesh = |kind: &str, local: &str, remote: &str| {
                spans.iter().any(|span| {
                    span["kind"] == kind
                        && span["localEndpoint"]["serviceName"] == local
                        && span["remoteEndpoint"]["serviceName"] == remote
                        && span["tags"]["sandbox.route"] == "mesh"
                })
            };
            let complete = mesh("CLIENT", "user", "item") && mesh("SERVER", "item", "user");
            complete.then_some(spans)
        },
    );
    assert!(
        spans
            .iter()
            .any(|span| span["localEndpoint"]["serviceName"] == "gateway"),
        "{spans:?}"
    );
    project.run(&["down", "-t", "0"]).success();
    assert_nothing_left(&project);
}

#[test]
fn on_podman_a_compose_file_runs_unedited_with_its_volume_gateway_and_mesh() {
    let podman = Podman::start();
    let project = Project::on_engine("pm-compose", &podman.host());
    let image = busybox_context(&project.path("bb"));
    let name = &project.name;
    // A plain compose file (sandbox's keys under `x-sandbox`): `db` serves from its named
    // volume, `app` waits for it to be healthy and calls it by its compose name.
    project.write(
        "compose.yaml",
        &format!(
            r#"name: {name}
x-sandbox:
  gateway:
    port: 0
    routes:
      - match: {{prefix: /}}
        service: db
services:
  db:
    image: {image}
    build: ./bb
    expose: ["8080"]
    command: ["sh", "-c", "mkdir -p /www && echo from-volume > /www/index.html && exec httpd -f -p 8080 -h /www"]
    volumes: ["site:/www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
  app:
    image: {image}
    command: ["sh", "-c", "while true; do wget -q -O /dev/null http://db:8080/ && echo called; sleep 1; done"]
    depends_on:
      db:
        condition: service_healthy
volumes:
  site: {{}}
"#
        ),
    );
    project.run(&["up", "--wait"]).success();
    let status = ps_json(&project);
    let answer = get(port_of(&status, "gateway"), "/");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("from-volume"), "{answer}");
    // `app`'s calls to `db` by name pass through the mesh.
    let zipkin = port_of(&status, "zipkin");
    wait_until(
        "a mesh span app → db on Podman",
        Duration::from_secs(20),
        || {
            get(zipkin, "/api/v2/traces?serviceName=db&limit=50")
                .contains(r#""remoteEndpoint":{"serviceName":"app""#)
                .then_some(())
        },
    );
    // `down` keeps the named volume, `down -v` removes it.
    project.run(&["down"]).success();
    let volumes = || {
        let output = project
            .docker()
            .args([
                "volume",
                "ls",
                "-q",
                "--filter",
                &format!("label=dev.sandbox.project={name}"),
            ])
            .output()
            .expect("docker volume ls");
        String::from_utf8_lossy(&output.stdout).lines().count()
    };
    assert_eq!(volumes(), 1, "the named volume survives `down`");
    project.run(&["down", "-v"]).success();
    assert_eq!(volumes(), 0);
    assert_nothing_left(&project);
}
