//! up / ps / logs / down, re-up, scaling and orphans.

use crate::util::{httpd_service, ps_json, Project};

fn three_services(project: &Project, web_env: &str) -> String {
    let health = "    healthcheck:\n      http: /health\n      interval: 1s\n";
    format!(
        "services:\n{}{}{}",
        httpd_service(project, "db", health),
        httpd_service(
            project,
            "api",
            &format!("{health}    depends_on:\n      db: {{condition: healthy}}\n")
        ),
        httpd_service(
            project,
            "web",
            &format!(
                "{health}    environment:\n      GREETING: {web_env}\n    depends_on: [api]\n"
            )
        ),
    )
}

#[test]
fn three_services_come_up_healthy_are_listed_log_and_go_away() {
    let project = Project::new("lifecycle");
    project.manifest(&three_services(&project, "hello"));

    let up = project.run(&["up", "--wait"]);
    up.success();
    assert!(up.stderr.contains("db-1 healthy"), "{}", up.stderr);
    assert!(up.stderr.contains("ready in"), "{}", up.stderr);
    // api waited for db's health before it was created.
    let db_healthy = up.stderr.find("db-1 healthy").unwrap();
    let api_created = up.stderr.find("api-1 creating").unwrap();
    assert!(
        db_healthy < api_created,
        "api must start after db is healthy:\n{}",
        up.stderr
    );

    let ps = ps_json(&project);
    assert_eq!(ps["project"], project.name.as_str());
    assert!(
        ps["pid"].as_u64().is_some(),
        "a detached control plane is recorded: {ps}"
    );
    let services = ps["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "db", "web"]);
    for service in services {
        assert_eq!(service["state"], "running", "{service}");
        assert_eq!(service["health"], "healthy", "{service}");
        let port = &service["ports"][0];
        assert_eq!(
            port["host_ip"], "127.0.0.1",
            "published on loopback only: {service}"
        );
        assert_eq!(port["container_port"], 8080);
    }
    // The published port answers from the host.
    let host_port = services[0]["ports"][0]["host_port"].as_u64().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", host_port as u16)).unwrap();
    use std::io::{Read, Write};
    stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.") && answer.contains("200"),
        "{answer}"
    );

    let table = project.run(&["ps"]);
    table.success();
    assert!(table.stdout.starts_with("NAME"), "{}", table.stdout);
    assert!(table.stdout.contains(&format!("{}-web-1", project.name)));

    let logs = project.run(&["logs", "web"]);
    logs.success();
    assert!(
        logs.stdout.contains("web-1 | web serving"),
        "{}",
        logs.stdout
    );
    assert!(
        !logs.stdout.contains("db serving"),
        "only web's output: {}",
        logs.stdout
    );
    let tail = project.run(&["logs", "--tail", "1", "db"]);
    assert_eq!(tail.stdout.lines().count(), 1, "{}", tail.stdout);

    project.run(&["down", "-t", "1"]).success();
    assert!(
        project.leftovers().is_empty(),
        "left: {:?}",
        project.leftovers()
    );
    let ps = ps_json(&project);
    assert_eq!(ps["services"].as_array().unwrap().len(), 0);
    assert!(ps["pid"].is_null(), "down stops the control plane: {ps}");
}

#[test]
fn a_second_up_recreates_only_the_changed_service() {
    let project = Project::new("reup");
    project.manifest(&three_services(&project, "hello"));
    project.run(&["up", "--wait"]).success();
    let before = project.containers();
    assert_eq!(before.len(), 3);

    let unchanged = project.run(&["up", "--wait"]);
    unchanged.success();
    assert_eq!(
        project.containers(),
        before,
        "an unchanged up touches nothing"
    );
    assert_eq!(
        unchanged.stderr.matches("unchanged").count(),
        3,
        "{}",
        unchanged.stderr
    );

    project.manifest(&three_services(&project, "changed"));
    let changed = project.run(&["up", "--wait"]);
    changed.success();
    assert!(
        changed.stderr.contains("web-1 recreating"),
        "{}",
        changed.stderr
    );
    let after = project.containers();
    let id = |list: &[(String, String)], suffix: &str| {
        list.iter()
            .find(|(name, _)| name.ends_with(suffix))
            .map(|(_, id)| id.clone())
            .unwrap()
    };
    assert_eq!(id(&before, "-db-1"), id(&after, "-db-1"));
    assert_eq!(id(&before, "-api-1"), id(&after, "-api-1"));
    assert_ne!(id(&before, "-web-1"), id(&after, "-web-1"));
}

#[test]
fn replicas_scale_in_place_and_removed_services_are_cleaned_up() {
    let project = Project::new("scale");
    let web =
        |replicas: u32| httpd_service(&project, "web", &format!("    replicas: {replicas}\n"));
    let worker = httpd_service(&project, "worker", "");
    project.manifest(&format!("services:\n{}{}", web(1), worker));
    project.run(&["up", "--wait"]).success();
    let first = project.containers();
    assert_eq!(first.len(), 2);

    project.manifest(&format!("services:\n{}", web(3)));
    let scaled = project.run(&["up", "--wait"]);
    scaled.success();
    assert!(
        scaled
            .stderr
            .contains("(service `worker` is no longer in the manifest)"),
        "{}",
        scaled.stderr
    );
    let names: Vec<String> = project
        .containers()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        [1, 2, 3].map(|n| format!("{}-web-{n}", project.name)),
        "three web replicas, worker gone"
    );
    let web_1 = |list: &[(String, String)]| {
        list.iter()
            .find(|(name, _)| name.ends_with("-web-1"))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(
        web_1(&first),
        web_1(&project.containers()),
        "replica 1 kept while scaling"
    );

    project.manifest(&format!("services:\n{}", web(1)));
    project.run(&["up", "--wait"]).success();
    assert_eq!(project.containers().len(), 1);
}

#[test]
fn down_keeps_named_volumes_unless_asked() {
    let project = Project::new("volumes");
    project.manifest(&format!(
        "volumes:\n  data: {{}}\nservices:\n{}",
        httpd_service(
            &project,
            "web",
            "    volumes:\n      - data:/data\n      - ./site:/site:ro\n"
        )
    ));
    project.write("site/index.html", "hi");
    project.run(&["up", "--wait"]).success();
    let volume = format!("{}_data", project.name);
    let exists = || {
        std::process::Command::new("docker")
            .args(["volume", "inspect", &volume])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(exists());
    project.run(&["down", "-t", "0"]).success();
    assert!(exists(), "down keeps named volumes");
    project.run(&["up", "--wait"]).success();
    project.run(&["down", "-v", "-t", "0"]).success();
    assert!(!exists(), "down -v removes them");
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}

#[test]
fn config_prints_the_resolved_manifest_and_validate_checks_it() {
    let project = Project::new("config");
    project.write(".env", "WEB_PORT=9123\n");
    project.manifest(
        "services:\n  web:\n    image: example/web:1\n    port: ${WEB_PORT}\n    environment:\n      MODE: ${MODE:-dev}\n      DB_PASSWORD: hunter2\n",
    );
    let config = project.run(&["config"]);
    config.success();
    assert!(config.stdout.contains("port: 9123"), "{}", config.stdout);
    assert!(config.stdout.contains("MODE: dev"), "{}", config.stdout);
    assert!(
        !config.stdout.contains("hunter2"),
        "secrets are masked: {}",
        config.stdout
    );
    assert!(
        config.stdout.contains("DB_PASSWORD: '********'")
            || config.stdout.contains("DB_PASSWORD: \"********\""),
        "{}",
        config.stdout
    );
    let shown = project.run(&["config", "--show-secrets"]);
    assert!(shown.stdout.contains("hunter2"), "{}", shown.stdout);
    let json = project.run(&["--json", "config"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["services"]["web"]["port"], 9123);
    let validate = project.run(&["validate"]);
    validate.success();
    assert!(validate.stderr.contains("is valid"), "{}", validate.stderr);
}
