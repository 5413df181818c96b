//! A compose project as people write them, brought up by `sandbox up --wait` unedited: two
//! networks (with an alias), a secret, a `CMD-SHELL` healthcheck gating `service_healthy`, a
//! one-shot job gating `service_completed_successfully`, and a profile. Services reach each other by
//! name and alias exactly where compose would let them, and `down` leaves only the named volume.

use std::process::Command;

use crate::util::{busybox_context, Project};

/// Runs `sh -c SCRIPT` in a container; (exit code, output).
fn exec(container: &str, script: &str) -> (i32, String) {
    let output = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("docker exec");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn manifest(project: &Project, image: &str) -> String {
    let serve = |name: &str| {
        format!("[\"sh\", \"-c\", \"mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www\"]")
    };
    format!(
        r#"name: {name}
services:
  migrate:
    image: {image}
    build: ./bb
    command: ["sh", "-c", "sleep 1 && echo migrated > /shared/done"]
    volumes: [shared:/shared]
    networks: [back]
  db:
    image: {image}
    command: {db}
    networks:
      back:
        aliases: [database]
    secrets: [db_password]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/ || exit 1"]
      interval: 1s
      retries: 30
  api:
    image: {image}
    command: {api}
    networks: [front, back]
    volumes: [shared:/shared:ro]
    secrets:
      - source: db_password
        target: password
    depends_on:
      db: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}
  web:
    image: {image}
    command: {web}
    networks: [front]
    depends_on: [api]
  debug:
    image: {image}
    command: ["sleep", "600"]
    profiles: [debug]
networks:
  front: {{}}
  back: {{}}
secrets:
  db_password:
    file: ./db_password.txt
volumes:
  shared: {{}}
"#,
        name = project.name,
        db = serve("db"),
        api = serve("api"),
        web = serve("web"),
    )
}

fn container_of(project: &Project, service: &str) -> String {
    project
        .containers()
        .into_iter()
        .find(|(name, _)| name.starts_with(&format!("{}-{service}-", project.name)))
        .unwrap_or_else(|| panic!("no `{service}` container in {:?}", project.containers()))
        .1
}

#[test]
fn a_compose_project_comes_up_unedited_and_down_leaves_only_named_volumes() {
    let project = Project::new("compose-project");
    let image = busybox_context(&project.path("bb"));
    project.write("db_password.txt", "s3cret-value\n");
    project.write("compose.yaml", &manifest(&project, &image));

    project.run(&["up", "--wait", "--timeout", "120"]).success();
    let names: Vec<String> = project
        .containers()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(
        !names.iter().any(|name| name.contains("-debug-")),
        "`debug` is only in a profile: {names:?}"
    );

    let migrate = container_of(&project, "migrate");
    let state = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &migrate,
        ])
        .output()
        .expect("docker inspect");
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "exited 0");

    let api = container_of(&project, "api");
    let (code, text) = exec(&api, "cat /shared/done");
    assert_eq!(
        (code, text.trim()),
        (0, "migrated"),
        "api started after migrate finished"
    );
    for host in ["db", "database"] {
        let (code, text) = exec(&api, &format!("wget -q -O - http://{host}:8080/"));
        assert_eq!(
            (code, text.trim()),
            (0, "db"),
            "api reaches `{host}` on `back`"
        );
    }
    let (code, text) = exec(&api, "wget -q -O - http://web:8080/");
    assert_eq!(
        (code, text.trim()),
        (0, "web"),
        "api reaches web on `front`"
    );
    let (code, text) = exec(&api, "cat /run/secrets/password");
    assert_eq!(
        (code, text.trim()),
        (0, "s3cret-value"),
        "the secret under its target"
    );

    let web = container_of(&project, "web");
    let (code, _) = exec(&web, "wget -q -T 2 -O - http://db:8080/");
    assert_ne!(code, 0, "web is only on `front`: `db` must not answer it");
    let (code, text) = exec(&web, "wget -q -O - http://api:8080/");
    assert_eq!((code, text.trim()), (0, "api"));

    project.run(&["down"]).success();
    let left = project.leftovers();
    assert!(
        left.len() == 1 && left[0].contains("shared"),
        "only the named volume is kept by `down`: {left:?}"
    );
    project.run(&["down", "-v"]).success();
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}
