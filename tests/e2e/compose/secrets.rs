//! `secrets` and `configs`: a `file` source is a read-only bind mount (as docker compose makes it);
//! an `environment` or `content` source is written into the container before it starts, with the
//! grant's mode, uid and gid. Values never appear in sandbox's output, and a changed value
//! recreates the container.
//!
//! Parity with the machine's docker-compose 1.29 covers file secrets only: 1.29 predates
//! `environment` secrets (compose 2.6) and `content` configs (compose 2.23), and it ignores
//! `configs` outside swarm.

use std::process::Command;

use serde_json::{json, Value};

use super::parity::{busybox_image, observe, write_compose, Up};
use crate::util::Project;

const ENVIRONMENT_SECRET: &str = "env-secret-7f3a";

/// `docker exec CONTAINER sh -c SCRIPT`'s standard output; panics when it fails.
fn exec(container: &str, script: &str) -> String {
    let output = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("run docker exec");
    assert!(
        output.status.success(),
        "`{script}` failed in {container}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn container_id(project: &Project, service: &str) -> String {
    let name = format!("{}-{service}-1", project.name);
    project
        .containers()
        .into_iter()
        .find(|(found, _)| *found == name)
        .map(|(_, id)| id)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// `sandbox ARGS` with the environment secret's variable set to `value`.
fn sandbox(project: &Project, args: &[&str], value: &str) -> crate::util::Run {
    let mut full = vec!["-p", project.name.as_str()];
    full.extend_from_slice(args);
    let mut command = project.command(&full);
    command.env("E2E_API_KEY", value);
    project.run_with(command)
}

fn secrets_file(image: &str) -> String {
    format!(
        r#"services:
  app:
    image: {image}
    command: ["sleep", "600"]
    secrets:
      - db_token
      - source: api_key
        target: api.key
        uid: "1000"
        gid: "1001"
        mode: 0400
    configs:
      - source: app_conf
        target: /etc/app.conf
        mode: 0440
      - plain
secrets:
  db_token:
    file: ./db_token.txt
  api_key:
    environment: E2E_API_KEY
configs:
  app_conf:
    content: |
      listen=${{E2E_LISTEN:-8080}}
  plain:
    content: plain text
"#
    )
}

#[test]
fn compose_secrets_and_configs_are_files_in_the_container() {
    let project = Project::new("secrets");
    let image = busybox_image(&project);
    project.write("db_token.txt", "file-secret\n");
    let file = write_compose(&project, &secrets_file(&image));

    let up = sandbox(&project, &["-f", &file, "up", "-d"], ENVIRONMENT_SECRET);
    up.success();
    let app = container_id(&project, "app");
    let read = |path: &str| exec(&app, &format!("cat {path}"));
    let stat = |path: &str| exec(&app, &format!("stat -c '%a %u %g' {path}"));
    assert_eq!(read("/run/secrets/db_token"), "file-secret\n");
    assert_eq!(read("/run/secrets/api.key"), ENVIRONMENT_SECRET);
    assert_eq!(stat("/run/secrets/api.key"), "400 1000 1001\n");
    assert_eq!(read("/etc/app.conf"), "listen=8080\n");
    assert_eq!(stat("/etc/app.conf"), "440 0 0\n");
    assert_eq!(read("/plain"), "plain text");
    assert_eq!(stat("/plain"), "444 0 0\n", "compose's default mode");
    let written = exec(&app, "echo x > /run/secrets/db_token 2>&1 || echo refused");
    assert!(
        written.contains("refused"),
        "a file secret is read-only: {written}"
    );

    for args in [
        vec!["-f", &file, "config"],
        vec!["-f", &file, "--json", "config"],
        vec!["-f", &file, "config", "--show-secrets"],
    ] {
        let run = sandbox(&project, &args, ENVIRONMENT_SECRET);
        run.success();
        assert!(
            run.stdout.contains("E2E_API_KEY") && run.stdout.contains("/run/secrets/api.key"),
            "config shows the source and target:\n{}",
            run.stdout
        );
        for output in [&run.stdout, &run.stderr] {
            assert!(
                !output.contains(ENVIRONMENT_SECRET),
                "{args:?} printed the secret:\n{output}"
            );
        }
    }
    for output in [&up.stdout, &up.stderr] {
        assert!(
            !output.contains(ENVIRONMENT_SECRET),
            "up printed the secret"
        );
    }

    // Same value: the container is kept. A new value: it is recreated with the new content.
    sandbox(&project, &["-f", &file, "up", "-d"], ENVIRONMENT_SECRET).success();
    assert_eq!(
        container_id(&project, "app"),
        app,
        "unchanged secret, same container"
    );
    sandbox(&project, &["-f", &file, "up", "-d"], "rotated").success();
    let recreated = container_id(&project, "app");
    assert_ne!(recreated, app, "a changed secret recreates the container");
    assert_eq!(exec(&recreated, "cat /run/secrets/api.key"), "rotated");
}

/// The mounts of a container as (type, source, destination, writable), by destination.
fn mounts(container: &Value) -> Value {
    let mut mounts: Vec<Value> = container["Mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mount| {
            json!({
                "Type": mount["Type"],
                "Source": mount["Source"],
                "Destination": mount["Destination"],
                "RW": mount["RW"],
            })
        })
        .collect();
    mounts.sort_by_key(|mount| mount["Destination"].to_string());
    Value::Array(mounts)
}

#[test]
fn compose_file_secrets_mount_like_docker_compose() {
    let project = Project::new("secrets-parity");
    let image = busybox_image(&project);
    project.write("db_token.txt", "file-secret\n");
    project.write("cert.pem", "certificate\n");
    let file = write_compose(
        &project,
        &format!(
            r#"services:
  app:
    image: {image}
    command: ["sleep", "600"]
    secrets:
      - db_token
      - source: cert
        target: server.pem
      - source: cert
        target: /etc/ssl/server.pem
secrets:
  db_token:
    file: ./db_token.txt
  cert:
    file: ./cert.pem
"#
        ),
    );
    let (compose, sandbox) = observe(&project, &file, Up::Detached, |side| {
        let container = side.container("app");
        let id = container["Id"].as_str().expect("id").to_string();
        let content = exec(
            &id,
            "cat /run/secrets/db_token /run/secrets/server.pem /etc/ssl/server.pem",
        );
        (mounts(&container), content)
    });
    assert_eq!(compose.0, sandbox.0, "Mounts differ");
    assert_eq!(compose.1, sandbox.1, "file contents differ");
    assert_eq!(sandbox.1, "file-secret\ncertificate\ncertificate\n");
    let destinations: Vec<&str> = sandbox
        .0
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|mount| mount["Destination"].as_str())
        .collect();
    assert_eq!(
        destinations,
        [
            "/etc/ssl/server.pem",
            "/run/secrets/db_token",
            "/run/secrets/server.pem"
        ]
    );
}
