//! Interruptions: Ctrl-C of a foreground `up`, and a killed detached control plane.

use std::time::{Duration, Instant};

use crate::util::{httpd_service, Project};

fn wait_for_running(project: &Project, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let running = std::process::Command::new("docker")
            .args([
                "ps",
                "-q",
                "--filter",
                &format!("label=dev.sandbox.project={}", project.name),
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&running.stdout).lines().count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the containers of {} did not start", project.name);
}

#[test]
fn sigint_to_a_foreground_up_leaves_nothing_behind() {
    let project = Project::new("sigint");
    project.manifest(&format!(
        "services:\n{}{}",
        httpd_service(&project, "web", "    healthcheck:\n      http: /health\n"),
        httpd_service(&project, "api", "    depends_on: [web]\n"),
    ));
    let mut child = project.spawn_quiet(&["up"]);
    wait_for_running(&project, 2);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted up exits 130");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        project.leftovers().is_empty(),
        "left behind: {:?}",
        project.leftovers()
    );
}

#[test]
fn a_killed_detached_control_plane_strands_nothing_that_down_cannot_find() {
    let project = Project::new("kill9");
    project.manifest(&format!(
        "services:\n{}",
        httpd_service(&project, "web", "")
    ));
    project.run(&["up", "-d"]).success();
    let ps: serde_json::Value = crate::util::ps_json(&project);
    let pid = ps["pid"].as_u64().expect("control plane pid") as i32;
    // SAFETY: killing the control plane this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        project.containers().len(),
        1,
        "the container outlives its control plane"
    );
    let ps = crate::util::ps_json(&project);
    assert!(
        ps["pid"].is_null(),
        "a dead control plane is not reported: {ps}"
    );
    project.run(&["down", "-t", "0"]).success();
    assert!(
        project.leftovers().is_empty(),
        "left behind: {:?}",
        project.leftovers()
    );
}

#[test]
fn sigkill_of_a_foreground_up_is_cleaned_up_by_the_reaper() {
    let project = Project::new("reaper");
    project.manifest(&format!(
        "volumes:\n  keep: {{}}\nservices:\n{}",
        httpd_service(
            &project,
            "web",
            "    volumes: [\"keep:/keep\", \"/scratch\"]\n"
        )
    ));
    let mut child = project.spawn_quiet(&["up"]);
    wait_for_running(&project, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    let without_volumes = || -> Vec<String> {
        project
            .leftovers()
            .into_iter()
            .filter(|resource| !resource.starts_with("volume"))
            .collect()
    };
    while !without_volumes().is_empty() && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        without_volumes().is_empty(),
        "the reaper left {:?}",
        without_volumes()
    );
    // Named volumes are data: the reaper keeps them, as `down` does.
    let volume = format!("{}_keep", project.name);
    let kept = std::process::Command::new("docker")
        .args(["volume", "inspect", &volume])
        .output()
        .unwrap();
    assert!(
        kept.status.success(),
        "named volume {volume} must survive the reaper"
    );
}

#[test]
fn a_detached_sandbox_is_not_reaped_when_its_shell_goes_away() {
    let project = Project::new("noreap");
    project.manifest(&format!(
        "services:\n{}",
        httpd_service(&project, "web", "")
    ));
    project.run(&["up", "-d"]).success();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        project.containers().len(),
        1,
        "up -d sandboxes outlive the command that started them"
    );
}

#[test]
fn sigterm_to_a_foreground_up_stops_and_removes_everything_within_seconds() {
    let project = Project::new("sigterm");
    project.manifest(&crate::util::demo_chain(&project));
    let mut child = project.spawn_quiet(&["up"]);
    wait_for_running(&project, 2);
    let started = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "a stopped up exits 130");
    assert!(
        project.leftovers().is_empty(),
        "left behind: {:?}",
        project.leftovers()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}
