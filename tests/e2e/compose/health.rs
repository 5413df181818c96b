//! Health probes left to the image's `HEALTHCHECK`, as compose leaves them: a `service_healthy`
//! dependency that writes no `healthcheck:`, and a `healthcheck:` with timings only (the image's
//! command, the file's timings). An image with no `HEALTHCHECK` is refused before anything starts.

use crate::util::{busybox_context, ps_json, Project};

/// Writes a busybox build context in `bb/` whose image serves HTTP on 8080 after `delay` seconds,
/// with the `HEALTHCHECK` line `healthcheck` (none when empty); returns the image's tag (the
/// project's own, removed with it).
fn server_image(project: &Project, delay: u32, healthcheck: &str) -> String {
    busybox_context(&project.path("bb"));
    project.write(
        "bb/Dockerfile",
        &format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n{healthcheck}\nCMD [\"sh\", \"-c\", \"sleep {delay}; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n"
        ),
    );
    format!("sandbox-test-health:{}", project.name)
}

const WGET_HEALTHCHECK: &str =
    "HEALTHCHECK CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1";

/// `db` from the image built in `bb/` (with `db_extra` lines), and `app`, which waits for `db` to be
/// healthy and exits 3 unless `db` answers when it starts.
fn compose_file(project: &Project, image: &str, db_extra: &str) -> String {
    format!(
        r#"name: {name}
services:
  db:
    image: {image}
    build: ./bb
{db_extra}  app:
    image: {image}
    command: ["sh", "-c", "wget -q -O /dev/null http://db:8080/ || exit 3; exec sleep 600"]
    depends_on:
      db:
        condition: service_healthy
"#,
        name = project.name
    )
}

fn health_of(status: &serde_json::Value, service: &str) -> String {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["service"] == service)
        .and_then(|entry| entry["health"].as_str())
        .unwrap_or_else(|| panic!("ps --json lists `{service}`: {status}"))
        .to_string()
}

#[test]
fn a_dependency_without_a_healthcheck_is_probed_with_its_images() {
    let project = Project::new("imagehealth");
    let image = server_image(&project, 2, WGET_HEALTHCHECK);
    project.write("compose.yaml", &compose_file(&project, &image, ""));
    let config = project.run(&["--json", "config"]);
    config.success();
    assert!(
        config.stdout.contains(r#""probe": "image""#),
        "config shows the probe comes from the image: {}",
        config.stdout
    );
    // `app` exits 3 if it starts before `db` serves (db sleeps 2s first).
    project.run(&["up", "--wait"]).success();
    let status = ps_json(&project);
    assert_eq!(health_of(&status, "db"), "healthy", "{status}");
    let app = project
        .containers()
        .into_iter()
        .find(|(name, _)| name.starts_with(&format!("{}-app-", project.name)))
        .expect("app container");
    let state = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.State.Status}}", &app.1])
        .output()
        .expect("docker inspect");
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "running");
}

#[test]
fn healthcheck_timings_without_a_test_override_the_images() {
    let project = Project::new("imagetimings");
    // The image gives up after one failed second; the server needs four.
    let image = server_image(
        &project,
        4,
        "HEALTHCHECK --interval=1s --retries=1 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1",
    );
    project.write("compose.yaml", &compose_file(&project, &image, ""));
    let run = project.run(&["up", "--wait", "--timeout", "60"]);
    run.expect_code(6);
    assert!(
        run.stderr.contains("`db`"),
        "with the image's timings `db` is unhealthy: {}",
        run.stderr
    );
    project.run(&["down"]).success();

    let timings = "    healthcheck:\n      interval: 500ms\n      retries: 30\n";
    project.write("compose.yaml", &compose_file(&project, &image, timings));
    let config = project.run(&["--json", "config"]);
    assert!(
        config.stdout.contains(r#""retries": 30"#),
        "{}",
        config.stdout
    );
    project.run(&["up", "--wait", "--timeout", "60"]).success();
    assert_eq!(health_of(&ps_json(&project), "db"), "healthy");
}

#[test]
fn an_image_without_a_healthcheck_is_refused_before_anything_starts() {
    let project = Project::new("noimagehealth");
    let image = server_image(&project, 0, "");
    project.write("compose.yaml", &compose_file(&project, &image, ""));
    let run = project.run(&["up", "--wait"]);
    run.expect_code(5);
    for words in [
        "service `app` waits for `db` to be healthy",
        &format!("its image `{image}` has no HEALTHCHECK"),
        "container has no healthcheck configured",
        "hint: add a `healthcheck:` to `db`",
    ] {
        assert!(run.stderr.contains(words), "{words}: {}", run.stderr);
    }
    assert!(
        project.containers().is_empty(),
        "{:?}",
        project.containers()
    );
}
