//! The errors users must get, each provoked for real.

use crate::util::{busybox_context, httpd_service, Project};

#[test]
fn an_unreachable_engine_names_where_it_looked_and_how_to_fix_it() {
    let project = Project::new("noengine");
    project.manifest("services:\n  web:\n    image: example/web:1\n");
    let mut command = project.command(&["up", "--wait"]);
    command.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let run = project.run_with(command);
    run.expect_code(4);
    assert!(run.stderr.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"), "{}", run.stderr);
    assert!(run.stderr.contains("DOCKER_HOST"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().filter(|line| line.starts_with("error:")).count(), 1, "{}", run.stderr);
}

#[test]
fn a_missing_image_names_the_image_the_service_and_the_registry_error() {
    let project = Project::new("noimage");
    project.manifest("services:\n  web:\n    image: sandbox-test-no-such-image:404\n");
    let run = project.run(&["up", "--wait"]);
    run.expect_code(5);
    assert!(run.stderr.contains("image `sandbox-test-no-such-image:404`"), "{}", run.stderr);
    assert!(run.stderr.contains("service `web`"), "{}", run.stderr);
    // The engine's own words about the pull come through (no registry is reachable here).
    assert!(run.stderr.contains("could not be pulled: "), "{}", run.stderr);
    assert!(project.containers().is_empty());
}

#[test]
fn a_failing_build_shows_the_failing_step_and_its_output() {
    let project = Project::new("badbuild");
    busybox_context(&project.path("bb"));
    project.write("bb/Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo about to fail; exit 7\"]\n");
    project.manifest(&format!("services:\n  web:\n    image: sandbox-test-badbuild:{}\n    build: ./bb\n", project.name));
    let run = project.run(&["up", "--wait"]);
    run.expect_code(5);
    assert!(run.stderr.contains("building image"), "{}", run.stderr);
    assert!(run.stderr.contains("| Step 3/4 : RUN [\"/bin/busybox\""), "the failing step is shown: {}", run.stderr);
    assert!(run.stderr.contains("about to fail"), "its output is shown: {}", run.stderr);
    assert!(run.stderr.contains("returned a non-zero code: 7"), "{}", run.stderr);
}

#[test]
fn a_taken_host_port_names_the_port_and_the_container_holding_it() {
    // A port held by a plain process.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let project = Project::new("porttaken");
    project.manifest(&format!("services:\n{}", httpd_service(&project, "web", &format!("    ports: [\"{port}:8080\"]\n"))));
    let run = project.run(&["up", "--wait"]);
    run.expect_code(5);
    assert!(run.stderr.contains(&format!("cannot publish host port {port}")), "{}", run.stderr);
    assert!(run.stderr.contains("another process on this machine holds it"), "{}", run.stderr);
    drop(listener);

    // A port held by another sandbox's container.
    let holder = Project::new("portholder");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    holder.manifest(&format!("services:\n{}", httpd_service(&holder, "web", &format!("    ports: [\"{free}:8080\"]\n"))));
    holder.run(&["up", "--wait"]).success();
    project.manifest(&format!("services:\n{}", httpd_service(&project, "web", &format!("    ports: [\"{free}:8080\"]\n"))));
    let run = project.run(&["up", "--wait"]);
    run.expect_code(5);
    assert!(run.stderr.contains(&format!("cannot publish host port {free}")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("container `{}-web-1` holds it", holder.name)), "{}", run.stderr);
}

#[test]
fn a_container_that_exits_reports_its_code_and_logs_and_dependents_do_not_start() {
    let project = Project::new("exits");
    let image = busybox_context(&project.path("bb"));
    project.manifest(&format!(
        "services:\n  db:\n    image: {image}\n    build: ./bb\n    command: [\"sh\", \"-c\", \"echo connecting to disk; echo disk full >&2; exit 3\"]\n    port: 8080\n    healthcheck:\n      tcp: true\n  api:\n    image: {image}\n    command: [\"sleep\", \"60\"]\n    depends_on:\n      db: {{condition: healthy}}\n"
    ));
    let run = project.run(&["up", "--wait"]);
    run.expect_code(6);
    assert!(run.stderr.contains("service `db` exited with code 3"), "{}", run.stderr);
    assert!(run.stderr.contains("| connecting to disk"), "{}", run.stderr);
    assert!(run.stderr.contains("| disk full"), "{}", run.stderr);
    assert!(run.stderr.contains("sandbox logs db"), "{}", run.stderr);
    let names: Vec<String> = project.containers().into_iter().map(|(name, _)| name).collect();
    assert!(!names.iter().any(|name| name.contains("-api-")), "api must not be created: {names:?}");
}

#[test]
fn an_unhealthy_service_reports_the_last_probe_and_its_logs() {
    let project = Project::new("unhealthy");
    project.manifest(&format!(
        "services:\n{}",
        httpd_service(&project, "web", "    healthcheck:\n      http: /missing\n      interval: 200ms\n      retries: 2\n")
    ));
    let run = project.run(&["up", "--wait", "--timeout", "30"]);
    run.expect_code(6);
    assert!(run.stderr.contains("service `web` is unhealthy"), "{}", run.stderr);
    assert!(run.stderr.contains("last probe: GET /missing → 404"), "{}", run.stderr);
    assert!(run.stderr.contains("| web serving"), "{}", run.stderr);
}

#[test]
fn manifest_errors_come_all_at_once_with_exit_code_3() {
    let project = Project::new("badmanifest");
    project.manifest("services:\n  web:\n    image: x\n    depend_on: [db]\n  api:\n    image: y\n    ports: 80\n");
    let run = project.run(&["up", "--wait"]);
    run.expect_code(3);
    assert!(run.stderr.contains("did you mean `depends_on`?"), "{}", run.stderr);
    assert!(run.stderr.contains("sandbox.yaml:5:5"), "{}", run.stderr);
    assert!(run.stderr.contains("2 errors in"), "{}", run.stderr);
    let validate = project.run(&["validate"]);
    validate.expect_code(3);
}

#[test]
fn an_unknown_service_on_the_command_line_is_a_usage_error() {
    let project = Project::new("unknownservice");
    project.manifest("services:\n  web:\n    image: x\n");
    let run = project.run(&["logs", "wbe"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no service `wbe`"), "{}", run.stderr);
}
