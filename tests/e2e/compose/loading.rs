//! How a compose project is found and read, end to end: compose's file names and override file
//! without `-f`, several `-f` files merged, `COMPOSE_FILE`, `COMPOSE_PROJECT_NAME`, profiles, and
//! `x-sandbox` keys, each brought up on the real engine.

use crate::util::{busybox_context, Project};

/// A busybox service block (indented for `services:`) that serves HTTP on 8080.
fn web(project: &Project, name: &str, extra: &str) -> String {
    let image = busybox_context(&project.path("bb"));
    format!(
        "  {name}:\n    image: {image}\n    build: ./bb\n    command: [\"sh\", \"-c\", \"mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n{extra}"
    )
}

/// `docker inspect` of one container, as JSON.
fn inspect(container: &str) -> serde_json::Value {
    let output = std::process::Command::new("docker")
        .args(["inspect", container])
        .output()
        .expect("docker inspect");
    assert!(output.status.success(), "docker inspect {container} failed");
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("inspect JSON");
    parsed[0].clone()
}

fn environment_of(container: &str) -> Vec<String> {
    inspect(container)["Config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .map(|value| value.as_str().unwrap_or_default().to_string())
        .collect()
}

fn container_of(project: &Project, service: &str) -> String {
    project
        .containers()
        .into_iter()
        .find(|(name, _)| name.starts_with(&format!("{}-{service}-", project.name)))
        .unwrap_or_else(|| panic!("no container of `{service}` in {:?}", project.containers()))
        .1
}

#[test]
fn compose_yaml_and_its_override_are_found_without_flags() {
    let project = Project::new("compose-discovery");
    let service = web(
        &project,
        "web",
        "    environment:\n      - MODE=prod\n      - KEEP=1\n",
    );
    project.write(
        "compose.yaml",
        &format!("name: {}\nservices:\n{service}", project.name),
    );
    project.write(
        "compose.override.yaml",
        "services:\n  web:\n    environment:\n      MODE: dev\n",
    );
    let up = project.run(&["up", "-d"]);
    up.success();
    assert!(
        up.stderr
            .contains("from `compose.yaml` + `compose.override.yaml`"),
        "says which files it read: {}",
        up.stderr
    );
    let environment = environment_of(&container_of(&project, "web"));
    assert!(
        environment.contains(&"MODE=dev".to_string()),
        "{environment:?}"
    );
    assert!(
        environment.contains(&"KEEP=1".to_string()),
        "{environment:?}"
    );
    project.run(&["down"]).success();
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}

#[test]
fn several_files_profiles_and_the_project_variable() {
    let project = Project::new("compose-files");
    let base = format!(
        "services:\n{}{}",
        web(&project, "web", "    labels: [layer=base]\n"),
        web(&project, "debug", "    profiles: [debug]\n")
    );
    project.write("base.yaml", &base);
    project.write(
        "ci.yaml",
        "services:\n  web:\n    labels:\n      layer: ci\n      extra: \"1\"\n",
    );
    let mut command = project.command(&["up", "-d"]);
    command
        .env("COMPOSE_FILE", "base.yaml:ci.yaml")
        .env("COMPOSE_PROJECT_NAME", &project.name);
    let run = project.run_with(command);
    run.success();
    let names: Vec<String> = project
        .containers()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        [format!("{}-web-1", project.name)],
        "no profile, no `debug`"
    );
    let labels = &inspect(&container_of(&project, "web"))["Config"]["Labels"];
    assert_eq!(labels["layer"], "ci");
    assert_eq!(labels["extra"], "1");

    let mut command = project.command(&["--profile", "debug", "up", "-d"]);
    command
        .env("COMPOSE_FILE", "base.yaml:ci.yaml")
        .env("COMPOSE_PROJECT_NAME", &project.name);
    project.run_with(command).success();
    assert_eq!(project.containers().len(), 2, "{:?}", project.containers());

    let mut command = project.command(&[
        "-f",
        "base.yaml",
        "-f",
        "ci.yaml",
        "--profile",
        "debug",
        "down",
    ]);
    command.env("COMPOSE_PROJECT_NAME", &project.name);
    project.run_with(command).success();
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}

#[test]
fn x_sandbox_keys_in_a_compose_file_drive_the_gateway() {
    let project = Project::new("compose-x-sandbox");
    let service = web(&project, "web", "    x-sandbox:\n      port: 8080\n");
    project.write(
        "compose.yaml",
        &format!(
            "name: {}\nx-sandbox:\n  gateway:\n    port: 0\n    routes:\n      - match: {{prefix: /}}\n        service: web\nservices:\n{service}",
            project.name
        ),
    );
    project.run(&["up", "-d", "--wait"]).success();
    let status = crate::util::ps_json(&project);
    let gateway = status["gateway"]
        .as_str()
        .unwrap_or_else(|| panic!("ps --json names the gateway: {status}"))
        .to_string();
    let body = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", &format!("{gateway}/")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&body.stdout).trim(), "web");
    project.run(&["down"]).success();
}

#[test]
fn mistakes_in_several_files_are_reported_together_and_nothing_is_touched() {
    let project = Project::new("compose-mistakes");
    let service = web(&project, "web", "    ports: [\"8080:80\"]\n");
    project.write(
        "compose.yaml",
        &format!(
            "name: {}\nservices:\n{service}    depends_on: [dbb]\n  db:\n    image: busybox\n    environment:\n      URL: ${{DB_URL:?set DB_URL}}\n",
            project.name
        ),
    );
    project.write(
        "compose.override.yaml",
        "services:\n  web:\n    read_only: maybe\n    networks: [backend]\n",
    );
    let run = project.run(&["up", "-d"]);
    run.expect_code(3);
    for expected in [
        "compose.yaml:",
        "compose.override.yaml:",
        "services.web.depends_on[0]",
        "did you mean `db`?",
        "required variable `DB_URL` is not set: set DB_URL",
        "services.web.read_only",
        "backend",
    ] {
        assert!(
            run.stderr.contains(expected),
            "the report names `{expected}`:\n{}",
            run.stderr
        );
    }
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}

#[test]
fn a_service_without_a_port_is_routed_to_its_images_exposed_port() {
    let project = Project::new("compose-image-expose");
    let context = project.path("exposing");
    std::fs::create_dir_all(&context).expect("mkdir");
    std::fs::copy(crate::util::busybox(), context.join("busybox")).expect("copy busybox");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nEXPOSE 9000/udp 8080\n",
    )
    .expect("Dockerfile");
    project.write(
        "compose.yaml",
        &format!(
            "name: {name}\nx-sandbox:\n  gateway: {{port: 0}}\nservices:\n  web:\n    image: {name}-exposing:1\n    build: ./exposing\n    command: [\"sh\", \"-c\", \"mkdir -p /www && echo from-expose > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n",
            name = project.name
        ),
    );
    project.run(&["up", "-d"]).success();
    let status = crate::util::ps_json(&project);
    let gateway = status["gateway"].as_str().expect("gateway").to_string();
    let body = crate::util::wait_until(
        "`/web/` answers",
        std::time::Duration::from_secs(10),
        || {
            let output = std::process::Command::new("curl")
                .args(["-s", "--max-time", "2", &format!("{gateway}/web/")])
                .output()
                .ok()?;
            let body = String::from_utf8_lossy(&output.stdout).trim().to_string();
            (body == "from-expose").then_some(body)
        },
    );
    assert_eq!(body, "from-expose", "`/web/` reaches port 8080 from EXPOSE");
    project.run(&["down"]).success();
}
