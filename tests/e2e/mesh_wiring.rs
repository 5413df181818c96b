//! The transparent mesh's wiring on the engine, seen through the Docker API: a meshed service's
//! DNS names go to its forwarder container (`<project>-<service>-mesh`, told its service, ports,
//! intake and token), the service's own containers keep only their container names, links to it
//! lead to the forwarder, a re-up keeps the forwarder, and `down` removes it and the token.
//! Needs the forwarder image (`engine::forwarder::ensure_image`).

use std::process::Command;

use crate::util::{httpd_service, ps_json, Project};

/// `docker inspect` of one object, as JSON; `None` when the engine has no such object.
fn inspect(kind: &str, name: &str) -> Option<serde_json::Value> {
    let output = Command::new("docker")
        .args([kind, "inspect", name])
        .output()
        .expect("docker inspect");
    if !output.status.success() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("inspect JSON");
    value.get(0).cloned()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A project with its own data folder (where the mesh token is kept).
fn run(project: &Project, data: &std::path::Path, args: &[&str]) -> crate::util::Run {
    let mut command = project.command(args);
    command.env("SANDBOX_DATA_DIR", data);
    project.run_with(command)
}

#[test]
fn a_meshed_services_names_move_to_its_forwarder_and_down_removes_it() {
    let project = Project::new("meshwire");
    let data = tempfile::tempdir().expect("temp dir");
    let item = httpd_service(
        &project,
        "item",
        "    networks:\n      default:\n        aliases: [catalogue]\n",
    );
    let user = httpd_service(&project, "user", "    links: ['item:items']\n");
    project.manifest(&format!("services:\n{item}{user}"));
    run(&project, data.path(), &["up", "-d"]).success();

    let name = &project.name;
    let network = format!("{name}_default");
    let forwarder_name = format!("{name}-item-mesh");
    let forwarder = inspect("container", &forwarder_name)
        .unwrap_or_else(|| panic!("no forwarder {forwarder_name}: {:?}", project.containers()));

    let labels = &forwarder["Config"]["Labels"];
    assert_eq!(labels["dev.sandbox.project"], name.as_str(), "{labels}");
    assert_eq!(labels["dev.sandbox.mesh-service"], "item", "{labels}");
    assert!(
        labels.get("dev.sandbox.service").is_none(),
        "a forwarder is no replica of `item`: {labels}"
    );
    assert_eq!(labels["dev.sandbox.role"], "mesh-forwarder", "{labels}");
    assert!(
        labels["dev.sandbox.config-hash"]
            .as_str()
            .is_some_and(|hash| !hash.is_empty()),
        "{labels}"
    );
    assert_eq!(
        forwarder["HostConfig"]["RestartPolicy"]["Name"],
        "unless-stopped"
    );

    let environment = strings(&forwarder["Config"]["Env"]);
    let variable = |key: &str| {
        environment
            .iter()
            .find_map(|entry| entry.strip_prefix(&format!("{key}=")))
            .map(String::from)
            .unwrap_or_else(|| panic!("no {key} in the forwarder's environment"))
    };
    assert_eq!(variable("SANDBOX_MESH_SERVICE"), "item");
    assert_eq!(variable("SANDBOX_MESH_PORTS"), "8080");
    let gateway = inspect("network", &network).expect("the project's network")["IPAM"]["Config"][0]
        ["Gateway"]
        .as_str()
        .expect("a gateway address")
        .to_string();
    assert_eq!(variable("SANDBOX_MESH_INTAKE"), format!("{gateway}:15002"));
    let token = variable("SANDBOX_MESH_TOKEN");
    assert_eq!(token.len(), 64, "32 random bytes, hex");
    let token_file = data.path().join("mesh").join(format!("{name}.token"));
    assert_eq!(
        std::fs::read_to_string(&token_file).expect("the stored token"),
        token
    );
    // The handoff socket's folder, private to the user, mounted where the variable points.
    let handoff = data.path().join("mesh").join("handoff").join(name.as_str());
    assert_eq!(
        variable("SANDBOX_MESH_HANDOFF"),
        "/run/sandbox-mesh/intake.sock"
    );
    let mounts = forwarder["Mounts"].as_array().cloned().unwrap_or_default();
    assert!(
        mounts.iter().any(
            |mount| mount["Source"] == handoff.to_string_lossy().as_ref()
                && mount["Destination"] == "/run/sandbox-mesh"
        ),
        "{mounts:?}"
    );
    {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let folder_mode = std::fs::metadata(&handoff)
            .expect("the folder")
            .permissions()
            .mode();
        assert_eq!(folder_mode & 0o777, 0o700);
        let socket = std::fs::metadata(handoff.join("intake.sock")).expect("the socket");
        assert!(socket.file_type().is_socket());
    }

    let forwarder_aliases = strings(&forwarder["NetworkSettings"]["Networks"][&network]["Aliases"]);
    for alias in ["item", "catalogue"] {
        assert!(
            forwarder_aliases.iter().any(|found| found == alias),
            "the forwarder answers to `{alias}`: {forwarder_aliases:?}"
        );
    }
    let replica = inspect("container", &format!("{name}-item-1")).expect("item's container");
    let replica_aliases = strings(&replica["NetworkSettings"]["Networks"][&network]["Aliases"]);
    assert!(
        replica_aliases
            .iter()
            .all(|alias| alias != "item" && alias != "catalogue"),
        "the service's container lost its names: {replica_aliases:?}"
    );
    assert!(
        replica_aliases.contains(&format!("{name}-item-1")),
        "it keeps its container name: {replica_aliases:?}"
    );
    let caller = inspect("container", &format!("{name}-user-1")).expect("user's container");
    let links = strings(&caller["NetworkSettings"]["Networks"][&network]["Links"]);
    assert_eq!(links, [format!("{forwarder_name}:items")]);

    let status = ps_json(&project);
    let listed = |list: &str, key: &str| -> Vec<String> {
        let items = status[list].as_array().cloned().unwrap_or_default();
        strings(&items.iter().map(|item| item[key].clone()).collect())
    };
    assert_eq!(
        listed("services", "service"),
        ["item", "user"],
        "forwarders are no replicas"
    );
    assert_eq!(
        listed("mesh", "name"),
        [forwarder_name.clone(), format!("{name}-user-mesh")]
    );

    // A re-up with nothing changed keeps the forwarder (its config hash is stable).
    run(&project, data.path(), &["up", "-d"]).success();
    let again = inspect("container", &forwarder_name).expect("the forwarder");
    assert_eq!(again["Id"], forwarder["Id"], "the forwarder was recreated");

    run(&project, data.path(), &["down", "-t", "0"]).success();
    assert!(
        inspect("container", &forwarder_name).is_none(),
        "`down` removes the forwarder"
    );
    assert_eq!(project.leftovers(), Vec::<String>::new());
    assert!(!token_file.exists(), "`down` removes the token");
    assert!(!handoff.exists(), "`down` removes the handoff folder");
}
