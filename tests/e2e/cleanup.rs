//! Removing every sandbox at once, and sandboxes side by side.

use crate::util::{httpd_service, ps_json, Project};

#[test]
fn prune_removes_every_matching_sandbox_and_lists_what_it_removed() {
    let prefix = format!("prune{}x", std::process::id());
    let first = Project::named(format!("{prefix}-a"));
    let second = Project::named(format!("{prefix}-b"));
    let bystander = Project::new("bystander");
    for project in [&first, &second, &bystander] {
        project.manifest(&format!(
            "volumes:\n  data: {{}}\nservices:\n{}",
            httpd_service(project, "web", "    volumes: [\"data:/data\"]\n")
        ));
        project.run(&["up", "-d"]).success();
    }
    let prune = first.run(&["prune", "-v", "--prefix", &prefix]);
    prune.success();
    for project in [&first, &second] {
        assert!(
            prune
                .stdout
                .contains(&format!("removed container {}-web-1", project.name)),
            "{}",
            prune.stdout
        );
        assert!(
            prune
                .stdout
                .contains(&format!("removed network {}_default", project.name)),
            "{}",
            prune.stdout
        );
        assert!(
            prune
                .stdout
                .contains(&format!("removed volume {}_data", project.name)),
            "{}",
            prune.stdout
        );
        assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
    }
    assert!(prune.stderr.contains("of 2 projects"), "{}", prune.stderr);
    assert_eq!(
        bystander.containers().len(),
        1,
        "other projects are untouched"
    );
    let again = first.run(&["down", "--all", "--prefix", &prefix]);
    again.success();
    assert!(
        again.stderr.contains("no sandbox resources"),
        "{}",
        again.stderr
    );
}

#[test]
fn two_projects_of_the_same_manifest_run_side_by_side() {
    let left = Project::new("side-a");
    let right = Project::new("side-b");
    for project in [&left, &right] {
        project.manifest(&format!(
            "services:\n{}",
            httpd_service(project, "web", "    healthcheck: {http: /health}\n")
        ));
        project.run(&["up", "--wait"]).success();
    }
    let port = |project: &Project| {
        ps_json(project)["services"][0]["ports"][0]["host_port"]
            .as_u64()
            .unwrap()
    };
    assert_ne!(port(&left), port(&right), "each gets its own host port");
    // Both asked for the default gateway port: the second moves to a free one rather than joining
    // the first one's data-plane workers on a shared (`SO_REUSEPORT`) port.
    assert_ne!(
        ps_json(&left)["gateway"],
        ps_json(&right)["gateway"],
        "each gets its own gateway"
    );
    left.run(&["down", "-t", "0"]).success();
    assert!(left.leftovers().is_empty());
    let status = ps_json(&right);
    assert_eq!(
        status["services"][0]["health"], "healthy",
        "the other project keeps running: {status}"
    );
}
