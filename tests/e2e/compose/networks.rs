//! Several networks, as compose makes them: names and aliases resolve where a service shares a
//! network and nowhere else, an `internal` network still reaches the control plane, `down` removes
//! what `up` made and keeps external networks (which must exist); links, `network_mode` forms; the
//! same file under docker-compose 1.29 gives the same networks and endpoints; and the gateway, the
//! mesh and the trace server serve services on non-default (internal) networks, also on a network
//! a re-up added.
//!
//! docker-compose 1.29 makes every network `attachable` (it passes `Attachable` on any API ≥ 1.24);
//! sandbox, like compose v2, only when the file says so: `Attachable` is left out of the parity.
//! The test image's busybox `wget` crashes on this machine (exit 139); `nc` speaks HTTP instead.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::parity::{assert_same, busybox_image, observe, write_compose, Check, Side, Up};
use crate::proxy::{demo, has_span, Sandbox, HEALTH};
use crate::util::{demo_context, wait_until, Project};

/// A /24 of its own for the test's `ipam` subnet (tests run side by side on one engine).
fn subnet_octets(project: &Project) -> (u8, u8) {
    let hash = project.name.bytes().fold(0u32, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u32::from(byte))
    });
    (200 + (hash % 50) as u8, ((hash / 50) % 250) as u8)
}

/// `web` on frontend, `db` on the internal backend at a fixed address, `api` on both with aliases.
fn two_tiers(project: &Project, image: &str) -> (String, String) {
    let (second, third) = subnet_octets(project);
    let prefix = format!("10.{second}.{third}");
    let body = format!(
        r#"services:
  web:
    image: {image}
    command: ["sleep", "600"]
    networks: [frontend]
  api:
    image: {image}
    command: ["sleep", "600"]
    networks:
      frontend:
        aliases: [api-front]
      backend:
        aliases: [api-back]
        priority: 10
  db:
    image: {image}
    command: ["sleep", "600"]
    networks:
      backend:
        ipv4_address: {prefix}.10
        aliases: [database]
networks:
  frontend:
    labels:
      com.example.tier: front
  backend:
    internal: true
    labels: [com.example.tier=back]
    ipam:
      config:
        - subnet: {prefix}.0/24
"#
    );
    (write_compose(project, &body), prefix)
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker CLI")
}

/// Runs `command` in `container`; (exit status success, stdout + stderr).
fn exec(container: &str, command: &[&str]) -> (bool, String) {
    let output = docker(&[&["exec", container], command].concat());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn resolves(container: &str, name: &str) -> bool {
    exec(container, &["nslookup", name]).0
}

/// The project's networks by name (`docker network ls` filtered by sandbox's label).
fn labelled_networks(project: &str) -> Vec<String> {
    let output = docker(&[
        "network",
        "ls",
        "--filter",
        &format!("label=dev.sandbox.project={project}"),
        "--format",
        "{{.Name}}",
    ]);
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn services_meet_only_on_the_networks_they_share() {
    let project = Project::new("networks-tiers");
    let image = busybox_image(&project);
    let (file, prefix) = two_tiers(&project, &image);
    project
        .run(&["-f", &file, "-p", &project.name, "up", "-d", "--wait"])
        .success();
    let name = |service: &str| format!("{}-{service}-1", project.name);
    let (web, api, db) = (name("web"), name("api"), name("db"));

    // Names and aliases on a shared network.
    for alias in ["api", "api-front", &api] {
        assert!(resolves(&web, alias), "web resolves `{alias}`");
    }
    for alias in ["db", "database", "api-back"] {
        assert!(resolves(&api, alias), "api resolves `{alias}`");
    }
    let (reached, output) = exec(&api, &["ping", "-c1", "-W2", "database"]);
    assert!(reached, "api pings db by its alias: {output}");
    assert!(
        output.contains(&format!("{prefix}.10")),
        "db has its fixed address: {output}"
    );
    let (reached, output) = exec(&db, &["ping", "-c1", "-W2", "api-back"]);
    assert!(reached, "db pings api on backend: {output}");

    // Isolation: the frontend service knows nothing of the backend-only one, nor of api's
    // backend-only alias; an alias is scoped to its network.
    for alias in ["db", "database", "api-back"] {
        assert!(!resolves(&web, alias), "web must not resolve `{alias}`");
    }
    assert!(!resolves(&db, "web"), "db must not resolve `web`");
    assert!(
        !resolves(&db, "api-front"),
        "db must not resolve `api-front`"
    );
    let web_ip = docker(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &web,
    ]);
    let web_ip = String::from_utf8_lossy(&web_ip.stdout).trim().to_string();
    let (reached, output) = exec(&db, &["ping", "-c1", "-W1", &web_ip]);
    assert!(
        !reached,
        "db must not reach web's address {web_ip}: {output}"
    );

    // The internal network still reaches the control plane on its bridge address, at the trace
    // server address the container was given.
    let environment = docker(&["inspect", "--format", "{{json .Config.Env}}", &db]);
    let environment: Vec<String> =
        serde_json::from_slice(&environment.stdout).expect("the container's environment");
    let endpoint = environment
        .iter()
        .find_map(|pair| pair.strip_prefix("ZIPKIN_ENDPOINT="))
        .expect("db is given ZIPKIN_ENDPOINT");
    let authority = endpoint
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port");
    assert!(
        authority.starts_with(&format!("{prefix}.1:")),
        "db reaches the trace server on its network's gateway: {endpoint}"
    );
    let (host, port) = authority.rsplit_once(':').expect("host:port");
    let request =
        format!("printf 'GET /api/v2/services HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}");
    let answer = wait_until(
        "the trace server answers on the internal network",
        Duration::from_secs(15),
        || {
            let (_, answer) = exec(&db, &["sh", "-c", &request]);
            answer.starts_with("HTTP/1.0 200").then_some(answer)
        },
    );
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");

    let expected = vec![
        format!("{}_backend", project.name),
        format!("{}_frontend", project.name),
    ];
    assert_eq!(labelled_networks(&project.name), expected);
    let backend = inspect_network(&format!("{}_backend", project.name));
    assert_eq!(backend["Internal"], true, "{backend}");
    assert_eq!(
        backend["IPAM"]["Config"][0]["Subnet"],
        format!("{prefix}.0/24")
    );

    let down = project.run(&["-f", &file, "-p", &project.name, "down", "-t", "0"]);
    down.success();
    assert!(
        labelled_networks(&project.name).is_empty(),
        "`down` removes the project's networks: {}",
        down.stderr
    );
    for network in &expected {
        assert!(
            !docker(&["network", "inspect", network]).status.success(),
            "{network} is gone"
        );
    }
}

fn inspect_network(name: &str) -> Value {
    let output = docker(&["network", "inspect", name]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    value[0].clone()
}

/// What parity compares of one container: its networks by the key the file gives them, each with
/// the aliases the file gave (the engine's own short-id alias and sandbox's container-name alias
/// left out) and its IPAM settings, and which network it was created on.
fn endpoints(side: &Side, service: &str) -> Value {
    let container = side.container(service);
    let short_id: String = container["Id"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(12)
        .collect();
    let name = container["Name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let prefix = format!("{}_", side.project);
    let mut networks = serde_json::Map::new();
    for (network, endpoint) in container["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let mut aliases: Vec<String> = endpoint["Aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|alias| *alias != short_id && *alias != name)
            .map(str::to_string)
            .collect();
        aliases.sort();
        networks.insert(
            network.trim_start_matches(&prefix).to_string(),
            serde_json::json!({"Aliases": aliases, "IPAMConfig": endpoint["IPAMConfig"]}),
        );
    }
    let mode = container["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches(&prefix)
        .to_string();
    serde_json::json!({"Networks": networks, "NetworkMode": mode})
}

/// A project network's inspection: user labels, IPAM, flags.
fn network(side: &Side, key: &str) -> Value {
    let mut network = side.network(key);
    let labels: serde_json::Map<String, Value> = network["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(label, _)| label.starts_with("com.example."))
        .map(|(label, value)| (label.clone(), value.clone()))
        .collect();
    network["Labels"] = Value::Object(labels);
    network
}

#[test]
fn networks_and_endpoints_match_docker_compose() {
    let project = Project::new("networks-parity");
    let image = busybox_image(&project);
    let (file, _) = two_tiers(&project, &image);
    let (compose, sandbox) = observe(&project, &file, Up::Wait, |side| {
        let services: Vec<Value> = ["web", "api", "db"]
            .iter()
            .map(|service| endpoints(side, service))
            .collect();
        let networks: Vec<Value> = ["frontend", "backend"]
            .iter()
            .map(|key| network(side, key))
            .collect();
        (services, networks)
    });
    for (index, service) in ["web", "api", "db"].iter().enumerate() {
        assert_same(
            service,
            &compose.0[index],
            &sandbox.0[index],
            &[Check::Equal("/Networks"), Check::Equal("/NetworkMode")],
        );
    }
    // The engine picks frontend's subnet (a different one for each project): only the backend's
    // written subnet is compared.
    for (index, key) in ["frontend", "backend"].iter().enumerate() {
        let mut checks = vec![
            Check::Equal("/Labels"),
            Check::Equal("/Driver"),
            Check::Equal("/Internal"),
            Check::Equal("/EnableIPv6"),
            Check::Equal("/IPAM/Driver"),
            Check::Equal("/IPAM/Options"),
        ];
        if *key == "backend" {
            checks.push(Check::Equal("/IPAM/Config"));
        }
        assert_same(
            &format!("network {key}"),
            &compose.1[index],
            &sandbox.1[index],
            &checks,
        );
    }
    // What the file says, so that equal-but-empty cannot pass for parity.
    assert_eq!(
        sandbox.0[1]["Networks"]["backend"]["Aliases"],
        serde_json::json!(["api", "api-back"]),
        "{}",
        sandbox.0[1]
    );
    assert_eq!(
        sandbox.0[1]["NetworkMode"], "backend",
        "the highest priority first"
    );
    assert_eq!(sandbox.1[1]["Internal"], true);
    assert_eq!(sandbox.1[0]["Labels"]["com.example.tier"], "front");
}

#[test]
fn gateway_mesh_and_traces_work_on_an_internal_network() {
    let project = Project::new("networks-mesh");
    let image = demo_context(&project);
    let networks = "    networks: [back]\n";
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}networks:\n  back:\n    internal: true\n",
        demo(
            &image,
            "user",
            "GET /users/{id} => call $${ITEM_URL}/items/{id} as item",
            &format!("{HEALTH}    depends_on: {{item: {{condition: healthy}}}}\n{networks}")
        ),
        demo(
            &image,
            "item",
            r#"GET /items/{id} => json {"id": "{id}"}"#,
            &format!("{HEALTH}{networks}")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);
    let network = format!("{}_back", sandbox.project.name);
    let user = format!("{}-user-1", sandbox.project.name);
    let attached = docker(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        &user,
    ]);
    let attached: Value = serde_json::from_slice(&attached.stdout).expect("JSON");
    let keys: Vec<&String> = attached.as_object().expect("a map").keys().collect();
    assert_eq!(keys, [&network], "user is on the internal network only");

    // The gateway reaches a service that is only on a non-default, internal network.
    let direct = sandbox.get("/item/items/3");
    assert_eq!(direct.status, 200, "{direct:?}");
    assert_eq!(direct.json()["id"], "3", "{direct:?}");

    // `ITEM_URL` goes through the mesh on that network's gateway address; the call is traced
    // and attributed to the calling service.
    let answer = sandbox.get("/user/users/5");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["item"]["id"], "5", "{answer:?}");
    let trace_id = answer.header("x-sandbox-trace-id").expect("a trace id");
    // The proxy's spans are ingested off the request path: wait for both hops.
    let spans = sandbox.trace(trace_id, |spans| {
        has_span(spans, "CLIENT", "user", "item") && has_span(spans, "CLIENT", "gateway", "user")
    });
    let trace = serde_json::to_string(&spans).unwrap();
    assert!(
        spans.iter().any(|span| span["kind"] == "CLIENT"
            && span["localEndpoint"]["serviceName"] == "user"
            && span["tags"]["sandbox.route"] == "mesh"),
        "the mesh's client span for user → item: {trace}"
    );
    assert!(has_span(&spans, "SERVER", "item", "user"), "{trace}");
    assert!(has_span(&spans, "CLIENT", "gateway", "user"), "{trace}");
    let gateway = attached[&network]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let environment = docker(&["inspect", "--format", "{{join .Config.Env \"\\n\"}}", &user]);
    let environment = String::from_utf8_lossy(&environment.stdout).to_string();
    assert!(
        environment.contains("ITEM_URL=http://item.sandbox:15001"),
        "{environment}"
    );
    let zipkin = environment
        .lines()
        .find_map(|line| line.strip_prefix("ZIPKIN_ENDPOINT="))
        .unwrap_or_default()
        .to_string();
    assert!(
        !gateway.is_empty() && zipkin == format!("http://{gateway}:9411/api/v2/spans"),
        "the trace server on the internal network's gateway ({gateway}): {zipkin}"
    );
}

/// Removes a network made by the test itself (not labelled: sandbox must neither create nor remove
/// it) when dropped.
struct OwnNetwork(String);

impl Drop for OwnNetwork {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.0]);
    }
}

#[test]
fn external_networks_must_exist_and_are_kept_by_down() {
    // Declared first, so dropped after the project (whose containers use it).
    let outside = OwnNetwork(format!("t{}-networks-outside", std::process::id()));
    let project = Project::new("networks-external");
    let image = busybox_image(&project);
    let file = write_compose(
        &project,
        &format!(
            "services:\n  app:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n    networks: [outside, default]\nnetworks:\n  outside:\n    external: true\n    name: {}\n",
            outside.0
        ),
    );
    let up = [
        "-f",
        file.as_str(),
        "-p",
        project.name.as_str(),
        "up",
        "-d",
        "--wait",
    ];
    let missing = project.run(&up);
    assert_ne!(missing.code, 0, "{}", missing.stderr);
    let said = format!("{}{}", missing.stdout, missing.stderr);
    assert!(
        said.contains(&format!("network `{}` does not exist", outside.0))
            && said.contains(&format!("docker network create {}", outside.0)),
        "{said}"
    );
    assert!(project.containers().is_empty(), "no container was made");

    assert!(docker(&["network", "create", &outside.0]).status.success());
    project.run(&up).success();
    let app = format!("{}-app-1", project.name);
    let attached = docker(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        &app,
    ]);
    let attached: Value = serde_json::from_slice(&attached.stdout).expect("JSON");
    assert!(attached.get(&outside.0).is_some(), "{attached}");
    assert!(
        attached.get(format!("{}_default", project.name)).is_some(),
        "{attached}"
    );

    project
        .run(&["-f", &file, "-p", &project.name, "down", "-t", "0"])
        .success();
    assert!(labelled_networks(&project.name).is_empty());
    assert!(
        docker(&["network", "inspect", &outside.0]).status.success(),
        "`down` keeps the external network"
    );
}

#[test]
fn links_and_shared_network_stacks() {
    let project = Project::new("networks-links");
    let image = busybox_image(&project);
    let file = write_compose(
        &project,
        &format!(
            r#"services:
  db:
    image: {image}
    command: ["sleep", "600"]
  web:
    image: {image}
    command: ["sleep", "600"]
    links: ["db:database"]
  other:
    image: {image}
    command: ["sleep", "600"]
  sidecar:
    image: {image}
    command: ["sleep", "600"]
    network_mode: "service:db"
  local:
    image: {image}
    command: ["sleep", "600"]
    network_mode: host
  isolated:
    image: {image}
    command: ["sleep", "600"]
    network_mode: none
"#
        ),
    );
    project
        .run(&["-f", &file, "-p", &project.name, "up", "-d", "--wait"])
        .success();
    let name = |service: &str| format!("{}-{service}-1", project.name);
    let (reached, output) = exec(&name("web"), &["ping", "-c1", "-W2", "database"]);
    assert!(
        reached,
        "the link alias resolves from the linking service: {output}"
    );
    assert!(
        !resolves(&name("other"), "database"),
        "a link alias is the linking service's own"
    );

    let inspect = |service: &str, format: &str| {
        let output = docker(&["inspect", "--format", format, &name(service)]);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let db_id = inspect("db", "{{.Id}}");
    assert_eq!(
        inspect("sidecar", "{{.HostConfig.NetworkMode}}"),
        format!("container:{db_id}")
    );
    assert_eq!(inspect("local", "{{.HostConfig.NetworkMode}}"), "host");
    assert_eq!(inspect("isolated", "{{.HostConfig.NetworkMode}}"), "none");
    // Sharing db's stack, the sidecar resolves db's network neighbours.
    assert!(
        resolves(&name("sidecar"), "web"),
        "the sidecar is on db's network"
    );
    let local_environment = inspect("local", "{{join .Config.Env \"\\n\"}}");
    assert!(
        local_environment.contains("ZIPKIN_ENDPOINT=http://127.0.0.1:"),
        "the host's stack reaches the trace server on loopback: {local_environment}"
    );
    let isolated_environment = inspect("isolated", "{{join .Config.Env \"\\n\"}}");
    assert!(
        !isolated_environment.contains("ZIPKIN_ENDPOINT"),
        "{isolated_environment}"
    );
}

#[test]
fn a_re_up_that_adds_a_network_is_served_there_too() {
    let project = Project::new("networks-reload");
    let image = busybox_image(&project);
    let service = |name: &str, extra: &str| {
        format!("  {name}:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n{extra}")
    };
    let up = ["-p", project.name.as_str(), "up", "-d", "--wait"];
    write_compose(&project, &format!("services:\n{}", service("web", "")));
    project.run(&up).success();
    // The control plane keeps running; the re-up adds a network and a service on it only.
    write_compose(
        &project,
        &format!(
            "services:\n{}{}networks:\n  extra: {{internal: true}}\n",
            service("web", ""),
            service("late", "    networks: [extra]\n")
        ),
    );
    let reload = project.run(&up);
    reload.success();
    assert!(
        reload.stderr.contains("reloaded in place"),
        "{}",
        reload.stderr
    );

    let late = format!("{}-late-1", project.name);
    let attached = docker(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        &late,
    ]);
    let attached: Value = serde_json::from_slice(&attached.stdout).expect("JSON");
    let network = format!("{}_extra", project.name);
    let gateway = attached[&network]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!gateway.is_empty(), "{attached}");
    let request =
        format!("printf 'GET /api/v2/services HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gateway} 9411");
    let answer = wait_until(
        "the trace server answers on the new network",
        Duration::from_secs(10),
        || {
            let (_, answer) = exec(&late, &["sh", "-c", &request]);
            answer.starts_with("HTTP/1.0 200").then_some(answer)
        },
    );
    assert!(answer.contains("application/json"), "{answer}");
    let mesh = std::net::TcpStream::connect((gateway.as_str(), 15001));
    assert!(
        mesh.is_ok(),
        "the mesh listens on {gateway}:15001: {mesh:?}"
    );
}
