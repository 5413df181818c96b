//! Storage, ports, images and start order: `volumes` (short and long syntax, tmpfs, read-only),
//! top-level `volumes` with `driver_opts`, `ports` ranges, `expose`, `build` with args and labels,
//! `pull_policy`, a disabled healthcheck (the image's turned off too), and a `CMD-SHELL` healthcheck
//! gating `depends_on: service_healthy`.
//!
//! docker-compose 1.29 is too old for `bind.create_host_path` (compose 2.x), `dockerfile_inline`
//! (compose 2.17) and `start_interval`; those are checked against the engine with sandbox alone.

use std::process::Command;

use serde_json::Value;

use super::parity::{assert_same, busybox_image, observe, write_compose, Check, Side, Up};
use crate::util::{free_port, Project};

/// Removes the images both tools built for a project (`<project>-<service>` by sandbox,
/// `<project>-dc_<service>` by docker-compose 1.29) when dropped, also when the test fails.
struct BuiltImages(String);

impl Drop for BuiltImages {
    fn drop(&mut self) {
        // The containers go first (the project's own drop would come too late for `rmi`).
        for label in [
            format!("label=dev.sandbox.project={}", self.0),
            format!("label=com.docker.compose.project={}-dc", self.0),
        ] {
            let Ok(ids) = Command::new("docker")
                .args(["ps", "-aq", "--filter", &label])
                .output()
            else {
                continue;
            };
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", "-v", id]).output();
            }
        }
        let listed = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output();
        let Ok(listed) = listed else { return };
        for image in String::from_utf8_lossy(&listed.stdout).lines() {
            if image.starts_with(&format!("{}-", self.0)) {
                // `--no-prune`: the build cache underneath is shared with other tests' builds.
                let _ = Command::new("docker")
                    .args(["rmi", "-f", "--no-prune", image])
                    .output();
            }
        }
    }
}

/// `docker inspect --format FORMAT NAME`'s output, trimmed.
fn inspect_format(kind: &str, name: &str, format: &str) -> String {
    let output = Command::new("docker")
        .args([kind, "inspect", "--format", format, name])
        .output()
        .expect("run docker inspect");
    assert!(
        output.status.success(),
        "docker {kind} inspect {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The container's mounts as `type source→destination rw`, sorted, with the project's own names
/// and folders replaced so both tools' lists compare.
fn mounts(container: &Value, project: &str, folder: &str) -> Vec<String> {
    let mut mounts: Vec<String> = container["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|mount| {
            let source = match mount["Type"].as_str() {
                Some("volume") => mount["Name"].as_str().unwrap_or_default().to_string(),
                _ => mount["Source"].as_str().unwrap_or_default().to_string(),
            };
            let source = source
                .replace(folder, "<folder>")
                .replace(project, "<project>");
            format!(
                "{} {}→{} rw={}",
                mount["Type"].as_str().unwrap_or_default(),
                source,
                mount["Destination"].as_str().unwrap_or_default(),
                mount["RW"]
            )
        })
        .collect();
    mounts.sort();
    mounts
}

/// Tmpfs mounts as `target size` from `HostConfig.Mounts` (long syntax) and `HostConfig.Tmpfs`.
fn tmpfs(container: &Value) -> Vec<String> {
    container["HostConfig"]["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|mount| mount["Type"] == "tmpfs")
        .map(|mount| {
            format!(
                "{} {} ro={}",
                mount["Target"].as_str().unwrap_or_default(),
                mount["TmpfsOptions"]["SizeBytes"],
                mount["ReadOnly"]
            )
        })
        .collect()
}

#[test]
fn compose_storage_ports_and_build_match_docker_compose() {
    let project = Project::new("storage");
    let _images = BuiltImages(project.name.clone());
    let image = busybox_image(&project);
    project.write(
        "build/Dockerfile",
        &format!(
            "FROM {image}\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\nHEALTHCHECK CMD true\n"
        ),
    );
    project.write("existing/file.txt", "present\n");
    let port = free_port();
    let file = write_compose(
        &project,
        &format!(
            r#"version: "3.8"
services:
  app:
    build:
      context: ./build
      args:
        GREETING: hello
      labels:
        com.example.team: storage
    command: ["sleep", "600"]
    healthcheck:
      disable: true
    volumes:
      - ./made-by-short:/short
      - ./existing:/existing:ro
      - data:/data
      - type: bind
        source: ./existing
        target: /long
        read_only: true
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 1048576
    ports:
      - "127.0.0.1:{port}-{next}:80-81"
      - target: 90
        published: {third}
        protocol: udp
    expose:
      - "3000"
      - "4000-4001/udp"
  holder:
    image: {image}
    command: ["sleep", "600"]
    volumes:
      - data:/data
      - ./existing:/existing
  reader:
    image: {image}
    command: ["sleep", "600"]
    volumes_from:
      - holder:ro
volumes:
  data:
    driver: local
    driver_opts:
      type: tmpfs
      device: tmpfs
      o: size=2m
"#,
            next = port + 1,
            third = port + 2,
        ),
    );
    // docker-compose up runs with `--no-build`: build its image first.
    let built = Command::new("docker-compose")
        .args(["-p", &format!("{}-dc", project.name), "-f", &file, "build"])
        .current_dir(project.dir.path())
        .output()
        .expect("run docker-compose build");
    assert!(
        built.status.success(),
        "docker-compose build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let folder = project.dir.path().display().to_string();
    let observe_side = |side: &Side| {
        let container = side.container("app");
        let volume = side.volume("data");
        let greeting = Command::new("docker")
            .args([
                "exec",
                container["Id"].as_str().expect("id"),
                "cat",
                "/greeting",
            ])
            .output()
            .expect("docker exec");
        let short_made = project.path("made-by-short").is_dir();
        let reader = side.container("reader");
        (
            (container, reader),
            volume,
            String::from_utf8_lossy(&greeting.stdout).into_owned(),
            short_made,
            side.project.clone(),
        )
    };
    let (compose, sandbox) = observe(&project, &file, Up::Detached, observe_side);
    assert_same(
        "app",
        &compose.0 .0,
        &sandbox.0 .0,
        &[
            // 1.29's long syntax has no `host_ip`: only the short entries compare.
            Check::Equal("/HostConfig/PortBindings/80~1tcp"),
            Check::Equal("/HostConfig/PortBindings/81~1tcp"),
            Check::Equal("/Config/ExposedPorts"),
            Check::Equal("/Config/Labels/com.example.team"),
            Check::Equal("/Config/Healthcheck"),
        ],
    );
    assert_eq!(
        mounts(&compose.0 .0, &compose.4, &folder),
        mounts(&sandbox.0 .0, &sandbox.4, &folder),
        "mounts differ"
    );
    assert_eq!(
        tmpfs(&compose.0 .0),
        tmpfs(&sandbox.0 .0),
        "tmpfs mounts differ"
    );
    let reader_mounts = mounts(&sandbox.0 .1, &sandbox.4, &folder);
    assert_eq!(
        mounts(&compose.0 .1, &compose.4, &folder),
        reader_mounts,
        "volumes_from mounts differ"
    );
    assert!(
        reader_mounts
            .iter()
            .any(|mount| mount.ends_with("→/data rw=false")),
        "volumes_from `:ro` mounts read-only: {reader_mounts:?}"
    );
    assert_eq!(
        tmpfs(&sandbox.0 .0),
        vec!["/scratch 1048576 ro=null".to_string()]
    );
    assert_same(
        "volume data",
        &compose.1,
        &sandbox.1,
        &[Check::Equal("/Driver"), Check::Equal("/Options")],
    );
    assert_eq!(compose.2, sandbox.2, "build args reach the build");
    assert_eq!(sandbox.2.trim(), "hello");
    assert_eq!(
        sandbox.0 .0["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"]),
        "`disable: true` turns the image's HEALTHCHECK off"
    );
    assert!(sandbox.3, "a short-syntax bind creates its host folder");
    let binds = sandbox.0 .0["HostConfig"]["Binds"].to_string();
    assert!(
        binds.contains("made-by-short:/short:rw"),
        "plain binds go to `Binds`: {binds}"
    );
    let bindings = &sandbox.0 .0["HostConfig"]["PortBindings"];
    assert_eq!(bindings["81/tcp"][0]["HostPort"], (port + 1).to_string());
    assert_eq!(
        bindings["90/udp"][0]["HostIp"], "127.0.0.1",
        "sandbox publishes on loopback unless told"
    );
}

#[test]
fn compose_long_syntax_options_reach_the_engine() {
    let project = Project::new("mounts");
    let _images = BuiltImages(project.name.clone());
    let image = busybox_image(&project);
    let file = write_compose(
        &project,
        &format!(
            r#"services:
  app:
    build:
      context: .
      dockerfile_inline: |
        FROM {image}
        LABEL com.example.inline=yes
    command: ["sleep", "600"]
    volumes:
      - type: bind
        source: ./created
        target: /created
        bind:
          create_host_path: true
      - type: volume
        source: cache
        target: /cache
        read_only: true
        volume:
          nocopy: true
      - type: tmpfs
        target: /run/small
        tmpfs:
          size: 64k
          mode: 01770
volumes:
  cache:
    name: {name}-custom-cache
    labels:
      com.example.kept: "yes"
"#,
            name = project.name
        ),
    );
    // `create_host_path: false` leaves a missing folder missing, and the engine refuses the mount
    // (a project of its own, so the failed run leaves nothing behind for the one below).
    let strict_project = Project::new("mounts-strict");
    let strict = "strict.yaml";
    strict_project.write(
        strict,
        &format!(
            "services:\n  strict:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n    volumes:\n      - type: bind\n        source: ./absent\n        target: /absent\n        bind:\n          create_host_path: false\n"
        ),
    );
    let run = strict_project.run(&["-f", strict, "-p", &strict_project.name, "up", "-d"]);
    assert_ne!(
        run.code, 0,
        "a missing bind source without create_host_path fails"
    );
    assert!(
        run.stderr.contains("absent"),
        "the error names the path: {}",
        run.stderr
    );
    assert!(!strict_project.path("absent").exists());

    project
        .run(&["-f", &file, "-p", &project.name, "up", "-d"])
        .success();
    assert!(
        project.path("created").is_dir(),
        "create_host_path makes the folder"
    );
    let container = format!("{}-app-1", project.name);
    assert_eq!(
        inspect_format(
            "container",
            &container,
            "{{index .Config.Labels \"com.example.inline\"}}"
        ),
        "yes"
    );
    let mounts = inspect_format("container", &container, "{{json .HostConfig.Mounts}}");
    let mounts: Value = serde_json::from_str(&mounts).expect("json");
    let cache = mounts
        .as_array()
        .expect("mounts")
        .iter()
        .find(|mount| mount["Target"] == "/cache")
        .expect("cache mount");
    assert_eq!(cache["Source"], format!("{}-custom-cache", project.name));
    assert_eq!(cache["ReadOnly"], true);
    assert_eq!(cache["VolumeOptions"]["NoCopy"], true);
    let small = mounts
        .as_array()
        .expect("mounts")
        .iter()
        .find(|mount| mount["Target"] == "/run/small")
        .expect("tmpfs mount");
    assert_eq!(small["TmpfsOptions"]["SizeBytes"], 65536);
    assert_eq!(small["TmpfsOptions"]["Mode"], 0o1770);
    assert_eq!(
        inspect_format(
            "volume",
            &format!("{}-custom-cache", project.name),
            "{{index .Labels \"com.example.kept\"}}"
        ),
        "yes"
    );
}

#[test]
fn compose_pull_policy_decides_between_the_local_copy_and_a_pull() {
    let project = Project::new("pull");
    let image = busybox_image(&project);
    let up = |file: &str| project.run(&["-f", file, "-p", &project.name, "up", "-d"]);

    // `never` with no local copy fails before any container is made.
    project.write(
        "never.yaml",
        "services:\n  absent:\n    image: sandbox-e2e/absent:never\n    pull_policy: never\n",
    );
    let run = up("never.yaml");
    assert_eq!(run.code, 5, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("pull_policy: never"), "{}", run.stderr);

    // No registry here: `always` must pull even with a local copy, and its failure is reported.
    project.write(
        "always.yaml",
        &format!("services:\n  fresh:\n    image: {image}\n    pull_policy: always\n"),
    );
    let run = up("always.yaml");
    assert_eq!(run.code, 5, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("pull_policy: always"), "{}", run.stderr);
    assert!(
        project.containers().is_empty(),
        "no container after a failed pull"
    );

    // `never` with the local copy runs it.
    project.write(
        "local.yaml",
        &format!("services:\n  local:\n    image: {image}\n    pull_policy: never\n    command: [\"sleep\", \"600\"]\n"),
    );
    up("local.yaml").success();
    assert_eq!(project.containers().len(), 1);
}

#[test]
fn compose_cmd_shell_healthcheck_gates_service_healthy() {
    let project = Project::new("healthy");
    let image = busybox_image(&project);
    let file = write_compose(
        &project,
        &format!(
            r#"services:
  db:
    image: {image}
    command: ["sh", "-c", "sleep 2; touch /ready; sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /ready"]
      interval: 1s
      timeout: 1s
      retries: 30
      start_interval: 1s
  web:
    image: {image}
    command: ["sleep", "600"]
    depends_on:
      db:
        condition: service_healthy
        restart: true
      cache:
        condition: service_started
        required: false
"#
        ),
    );
    let run = project.run(&["-f", &file, "-p", &project.name, "up", "-d", "--wait"]);
    run.success();
    assert!(
        run.stderr.contains("cache") || run.stdout.contains("cache"),
        "the skipped optional dependency is named"
    );
    let started = |service: &str| {
        inspect_format(
            "container",
            &format!("{}-{service}-1", project.name),
            "{{.State.StartedAt}}",
        )
    };
    let ready = inspect_format(
        "container",
        &format!("{}-db-1", project.name),
        "{{.State.StartedAt}}",
    );
    // RFC 3339 times of one engine sort as text; db needs 2s to become healthy.
    assert!(started("web") > ready, "web started after db");
    let db_started = started("db");
    let seconds = |time: &str| -> f64 {
        let clock = &time[11..time.find('Z').unwrap_or(time.len())];
        clock
            .split(':')
            .zip([3600.0, 60.0, 1.0])
            .map(|(part, scale)| part.parse::<f64>().unwrap_or(0.0) * scale)
            .sum()
    };
    assert!(
        seconds(&started("web")) - seconds(&db_started) >= 1.9,
        "web waited for db's CMD-SHELL check: db {db_started}, web {}",
        started("web")
    );
}

#[test]
fn compose_anonymous_volumes_keep_their_data_across_a_recreate_and_go_with_down() {
    let project = Project::new("anonymous");
    let image = busybox_image(&project);
    let body = |mode: &str| {
        format!(
            "services:\n  db:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n    environment:\n      MODE: {mode}\n    volumes:\n      - /data\n"
        )
    };
    let file = write_compose(&project, &body("first"));
    let up = || project.run(&["-f", &file, "-p", &project.name, "up", "-d"]);
    up().success();
    let container = format!("{}-db-1", project.name);
    let volume = |container: &str| {
        inspect_format(
            "container",
            container,
            "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}{{end}}{{end}}",
        )
    };
    let first = volume(&container);
    let written = Command::new("docker")
        .args(["exec", &container, "sh", "-c", "echo kept > /data/file"])
        .status()
        .expect("docker exec");
    assert!(written.success());

    // A changed variable recreates the container; the anonymous volume comes along.
    write_compose(&project, &body("second"));
    up().success();
    assert_eq!(
        volume(&container),
        first,
        "the recreated container mounts the same volume"
    );
    let read = Command::new("docker")
        .args(["exec", &container, "cat", "/data/file"])
        .output()
        .expect("docker exec");
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "kept");

    project
        .run(&["-f", &file, "-p", &project.name, "down"])
        .success();
    let left = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("name={first}")])
        .output()
        .expect("docker volume ls");
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "`down` removes the inherited anonymous volume {first}"
    );
}
