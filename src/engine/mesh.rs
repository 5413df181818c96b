//! The transparent mesh on the engine's side: which services are meshed (and, when not, why), the
//! ports a service's forwarder listens on, and the forwarder container itself. Pure: `apply` does
//! the engine work, `control::wiring` says where each forwarder hands its connections.
//!
//! A meshed service's forwarder (`<project>-<service>-mesh`) joins every network the service is
//! on with the service's DNS names there (its name and that network's aliases); the service's own
//! containers keep only their container names, and `links` to the service point at the forwarder
//! (see `spec`). The forwarder process's contract is its environment ([`forwarder_spec`]).
//!
//! Where the control plane cannot open connections to container addresses ([`Intake::dial`]:
//! Docker Desktop, or `SANDBOX_MESH_REACH=host`), the forwarder also listens on a dial port
//! ([`dial_port`]) published on the host's loopback, and the control plane opens its upstream
//! connections through it (`proxy::upstream::DialRoutes`).

use std::collections::BTreeMap;
use std::fmt;

use super::labels;
use super::spec::{ContainerSpec, Endpoint};
use crate::manifest::{
    by_priority, Manifest, NetworkMode, PortPublish, RestartPolicy, Service, VolumeMount,
};

/// The service a forwarder stands for.
pub const SERVICE_VARIABLE: &str = "SANDBOX_MESH_SERVICE";
/// The TCP ports it listens on, comma-separated.
pub const PORTS_VARIABLE: &str = "SANDBOX_MESH_PORTS";
/// Where it hands connections: `address:port` or `host:port`.
pub const INTAKE_VARIABLE: &str = "SANDBOX_MESH_INTAKE";
/// The project's token, sent in each connection's header. Never printed.
pub const TOKEN_VARIABLE: &str = "SANDBOX_MESH_TOKEN";
/// The port the control plane sends dial requests to (in the container), when it dials.
pub const DIAL_PORT_VARIABLE: &str = "SANDBOX_MESH_DIAL_PORT";
/// On a forwarder that dials: its dial port in the container, so the control plane finds the
/// published host port.
pub const DIAL_PORT_LABEL: &str = "dev.sandbox.mesh-dial-port";
/// The dial port a forwarder takes unless its service listens there ([`dial_port`]).
pub const DIAL_PORT: u16 = 15003;
/// Where the handoff socket it uses ([`Intake::handoff`]) is: a Unix socket path in the container.
pub const HANDOFF_VARIABLE: &str = "SANDBOX_MESH_HANDOFF";
/// Where the handoff socket's folder is mounted in a forwarder.
pub const HANDOFF_FOLDER: &str = "/run/sandbox-mesh";
/// Forces the path of engines whose host cannot reach containers on an engine whose host can
/// (`host`): forwarders reach the control plane through the engine's host-gateway name and
/// dial for it. For testing that path on Linux; any other value, or none, changes nothing.
pub const REACH_VARIABLE: &str = "SANDBOX_MESH_REACH";

/// Whether [`REACH_VARIABLE`] forces the host-gateway path.
pub fn reach_forced() -> bool {
    std::env::var(REACH_VARIABLE).is_ok_and(|value| value.trim() == "host")
}

/// Where one service's forwarder reaches the control plane's mesh intake (from `control::wiring`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    /// `172.18.0.1:15002`, or `host.docker.internal:41234` where only the host gateway reaches it.
    pub address: String,
    /// `/etc/hosts` entries the forwarder needs for `address` (`host.docker.internal:host-gateway`).
    pub extra_hosts: Vec<String>,
    /// The control plane cannot connect container addresses: the forwarder listens on a dial
    /// port too, published on the host's loopback, and connects replicas for it.
    pub dial: bool,
    /// The host folder of the control plane's handoff socket (`proxy::handoff`), mounted at
    /// [`HANDOFF_FOLDER`]: the forwarder hands HTTP connections over whole on it.
    pub handoff: Option<std::path::PathBuf>,
}

/// Whether a service is meshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A forwarder holds its names and listens on `ports` (sorted, each once).
    Meshed { ports: Vec<u16> },
    /// Callers reach its containers directly.
    Off(Off),
}

/// Why a service is not meshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Off {
    /// The top-level `mesh: false`.
    Project,
    /// The service's own `mesh: false`.
    Service,
    /// `external:`: a process on the host, reached by the proxy at its address.
    External,
    /// A network stack that is not a network of the project's (`host`, `none`, `service:`,
    /// `container:`): there are no names of its own to hand to a forwarder.
    NetworkMode(NetworkMode),
    /// No TCP port to listen on. `image_read`: the image's `EXPOSE` ports were looked at too
    /// (`up`); else only the manifest was (`config`).
    NoPort { image_read: bool },
}

impl fmt::Display for Off {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Off::Project => write!(formatter, "the project turns the mesh off (`mesh: false`)"),
            Off::Service => write!(formatter, "opted out (`mesh: false`)"),
            Off::External => write!(formatter, "`external`: a process on the host"),
            Off::NetworkMode(mode) => write!(formatter, "`network_mode: {mode}`"),
            Off::NoPort { image_read: true } => write!(
                formatter,
                "no known port (`port`, `expose`, `ports` or the image's `EXPOSE`)"
            ),
            Off::NoPort { image_read: false } => write!(
                formatter,
                "no known port in the manifest (`port`, `expose`, `ports`); `up` also reads the image's `EXPOSE`"
            ),
        }
    }
}

impl Verdict {
    pub fn is_meshed(&self) -> bool {
        matches!(self, Verdict::Meshed { .. })
    }
}

/// Whether `service` is meshed. `image_ports`: the TCP ports its image exposes, when the image has
/// been inspected (`None` when it has not, as for `sandbox config`).
pub fn verdict(manifest: &Manifest, service: &Service, image_ports: Option<&[u16]>) -> Verdict {
    let off = if !manifest.mesh {
        Some(Off::Project)
    } else if !service.mesh {
        Some(Off::Service)
    } else if service.external.is_some() {
        Some(Off::External)
    } else if !matches!(
        service.network_mode,
        NetworkMode::Networks | NetworkMode::Bridge
    ) {
        Some(Off::NetworkMode(service.network_mode.clone()))
    } else {
        None
    };
    if let Some(off) = off {
        return Verdict::Off(off);
    }
    let ports = ports(service, image_ports.unwrap_or_default());
    if ports.is_empty() {
        return Verdict::Off(Off::NoPort {
            image_read: image_ports.is_some(),
        });
    }
    Verdict::Meshed { ports }
}

/// The TCP ports a service listens on as far as sandbox knows: its `port`, `expose`, the container
/// side of `ports`, and its image's exposed ports; sorted, each once.
pub fn ports(service: &Service, image_ports: &[u16]) -> Vec<u16> {
    let mut ports: Vec<u16> = service
        .port
        .into_iter()
        .chain(
            service
                .expose
                .iter()
                .filter(|exposed| exposed.protocol == "tcp")
                .map(|exposed| exposed.port),
        )
        .chain(
            service
                .ports
                .iter()
                .filter(|publish| publish.protocol == "tcp")
                .map(|publish| publish.container_port),
        )
        .chain(image_ports.iter().copied())
        .filter(|port| *port != 0)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Everything a forwarder container is made from, besides the service.
#[derive(Debug, Clone, Copy)]
pub struct ForwarderInputs<'a> {
    /// The forwarder image (`engine::forwarder::ensure_image`).
    pub image: &'a str,
    pub intake: &'a Intake,
    pub token: &'a str,
}

/// The forwarder container of meshed `service` listening on `ports`; labelled, not yet hashed.
pub fn forwarder_spec(
    manifest: &Manifest,
    service: &Service,
    ports: &[u16],
    inputs: ForwarderInputs<'_>,
) -> ContainerSpec {
    let name = labels::forwarder_name(&manifest.project, &service.name);
    let listed: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut environment = BTreeMap::from([
        (SERVICE_VARIABLE, service.name.clone()),
        (PORTS_VARIABLE, listed.join(",")),
        (INTAKE_VARIABLE, inputs.intake.address.clone()),
        (TOKEN_VARIABLE, inputs.token.to_string()),
    ]);
    let mut container_labels = BTreeMap::from([
        (labels::PROJECT.to_string(), manifest.project.clone()),
        (labels::MESH_SERVICE.to_string(), service.name.clone()),
        (labels::ROLE.to_string(), labels::MESH_FORWARDER.to_string()),
    ]);
    let mut publishes = Vec::new();
    if inputs.intake.dial {
        let dial = dial_port(ports);
        environment.insert(DIAL_PORT_VARIABLE, dial.to_string());
        container_labels.insert(DIAL_PORT_LABEL.to_string(), dial.to_string());
        // Loopback only, on a port the engine picks: the control plane alone dials.
        publishes.push(PortPublish::new("127.0.0.1", None, dial, "tcp"));
    }
    let mut volumes = Vec::new();
    if let Some(folder) = &inputs.intake.handoff {
        environment.insert(
            HANDOFF_VARIABLE,
            format!("{HANDOFF_FOLDER}/{}", crate::proxy::handoff::SOCKET_NAME),
        );
        volumes.push(VolumeMount::Bind {
            source: folder.clone(),
            target: HANDOFF_FOLDER.to_string(),
            read_only: false,
            // The control plane makes it (private to the user) before any forwarder.
            create_host_path: true,
            propagation: None,
            selinux: None,
        });
    }
    let networks = forwarder_endpoints(manifest, service);
    let network_mode = match service.network_mode {
        NetworkMode::Bridge => "bridge".to_string(),
        _ => networks
            .first()
            .map(|endpoint| endpoint.network.clone())
            .unwrap_or_else(|| "none".to_string()),
    };
    ContainerSpec {
        hostname: name.clone(),
        name,
        service: service.name.clone(),
        replica: 0,
        image: inputs.image.to_string(),
        command: None,
        entrypoint: None,
        environment: environment
            .into_iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect(),
        labels: container_labels,
        publishes,
        volumes,
        network_mode,
        networks,
        links: Vec::new(),
        // Plumbing: back after a crash or an engine restart, gone only with `down`.
        restart: RestartPolicy::UnlessStopped,
        working_dir: None,
        user: None,
        extra_hosts: inputs.intake.extra_hosts.clone(),
        container: Default::default(),
        healthcheck_disabled: false,
        exposed: Vec::new(),
        volumes_from: Vec::new(),
        files: Vec::new(),
    }
}

/// The forwarder's dial port: [`DIAL_PORT`], or the next port its service does not listen on.
pub fn dial_port(ports: &[u16]) -> u16 {
    (DIAL_PORT..=u16::MAX)
        .find(|port| !ports.contains(port))
        .unwrap_or(DIAL_PORT - 1)
}

/// The service's networks in join order, each with the service's DNS names there: its name, then
/// that network's aliases (fixed addresses and MACs stay with the service's own container).
fn forwarder_endpoints(manifest: &Manifest, service: &Service) -> Vec<Endpoint> {
    by_priority(&service.networks)
        .into_iter()
        .filter_map(|(key, settings)| {
            let network = manifest.networks.get(key)?;
            Some(Endpoint {
                network: network.name.clone(),
                aliases: dns_names(service, &settings.aliases),
                ..Endpoint::default()
            })
        })
        .collect()
}

/// The service's name, then `aliases`, each once: the names a forwarder takes over.
pub fn dns_names(service: &Service, aliases: &[String]) -> Vec<String> {
    let mut names = vec![service.name.clone()];
    for alias in aliases {
        if !names.contains(alias) {
            names.push(alias.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_text as load;

    fn verdict_of(manifest: &Manifest, service: &str, image: Option<&[u16]>) -> Verdict {
        verdict(manifest, &manifest.services[service], image)
    }

    const SHOP: &str = "name: shop
services:
  web: {image: demo, port: 8080, expose: ['9090', '53/udp'], ports: ['127.0.0.1:7000:7070', '5353:5353/udp']}
  db: {image: demo, expose: ['5432']}
  quiet: {image: demo}
  local: {image: demo, port: 80, network_mode: host}
  isolated: {image: demo, port: 80, network_mode: none}
  sidecar: {image: demo, port: 81, network_mode: 'service:web'}
  outside: {image: demo, port: 82, network_mode: 'container:elsewhere'}
  bridged: {image: demo, port: 83, network_mode: bridge}
  private: {image: demo, port: 84, mesh: false}
  host-app: {external: 'http://127.0.0.1:3000'}
";

    #[test]
    fn services_on_networks_with_a_port_are_meshed_by_default() {
        let manifest = load(SHOP);
        assert_eq!(
            verdict_of(&manifest, "web", Some(&[])),
            Verdict::Meshed {
                ports: vec![7070, 8080, 9090]
            }
        );
        assert_eq!(
            verdict_of(&manifest, "db", None),
            Verdict::Meshed { ports: vec![5432] }
        );
        assert_eq!(
            verdict_of(&manifest, "bridged", None),
            Verdict::Meshed { ports: vec![83] }
        );
    }

    #[test]
    fn each_reason_for_not_meshing_is_named() {
        let manifest = load(SHOP);
        let off = |service: &str| match verdict_of(&manifest, service, Some(&[])) {
            Verdict::Off(off) => off.to_string(),
            meshed => panic!("{service} is {meshed:?}"),
        };
        assert_eq!(off("local"), "`network_mode: host`");
        assert_eq!(off("isolated"), "`network_mode: none`");
        assert_eq!(off("sidecar"), "`network_mode: service:web`");
        assert_eq!(off("outside"), "`network_mode: container:elsewhere`");
        assert_eq!(off("private"), "opted out (`mesh: false`)");
        assert_eq!(off("host-app"), "`external`: a process on the host");
        assert!(
            off("quiet").starts_with("no known port"),
            "{}",
            off("quiet")
        );
        assert_eq!(
            verdict_of(&manifest, "quiet", None),
            Verdict::Off(Off::NoPort { image_read: false })
        );
    }

    #[test]
    fn the_images_exposed_ports_join_the_union() {
        let manifest = load(SHOP);
        assert_eq!(
            verdict_of(&manifest, "quiet", Some(&[6379, 6379])),
            Verdict::Meshed { ports: vec![6379] }
        );
        assert_eq!(
            verdict_of(&manifest, "web", Some(&[8080, 1234])),
            Verdict::Meshed {
                ports: vec![1234, 7070, 8080, 9090]
            }
        );
    }

    #[test]
    fn the_top_level_switch_turns_every_service_off() {
        let manifest = load("name: shop\nmesh: false\nservices:\n  web: {image: demo, port: 80}\n");
        assert_eq!(
            verdict_of(&manifest, "web", Some(&[])),
            Verdict::Off(Off::Project)
        );
    }

    const NETWORKS: &str = "name: shop
services:
  api:
    image: demo
    port: 8080
    networks:
      front: {aliases: [api.local, api], ipv4_address: 10.5.0.9}
      back: {priority: 10, aliases: [backend]}
networks:
  front: {ipam: {config: [{subnet: 10.5.0.0/24}]}}
  back: {}
";

    fn intake() -> Intake {
        Intake {
            address: "10.5.0.1:15002".to_string(),
            extra_hosts: Vec::new(),
            dial: false,
            handoff: None,
        }
    }

    fn inputs(intake: &Intake) -> ForwarderInputs<'_> {
        ForwarderInputs {
            image: "sandbox-forwarder:0123456789ab",
            intake,
            token: "ab12",
        }
    }

    /// The forwarder of `service` in the manifest `text`, with the intake above.
    fn forwarder_of(text: &str, service: &str, ports: &[u16]) -> ContainerSpec {
        let manifest = load(text);
        let intake = intake();
        forwarder_spec(
            &manifest,
            &manifest.services[service],
            ports,
            inputs(&intake),
        )
    }

    #[test]
    fn a_forwarder_holds_the_services_names_on_each_of_its_networks() {
        let spec = forwarder_of(NETWORKS, "api", &[8080]);
        assert_eq!(spec.name, "shop-api-mesh");
        assert_eq!(spec.network_mode, "shop_back", "the highest priority first");
        let names: Vec<(&str, Vec<&str>)> = spec
            .networks
            .iter()
            .map(|endpoint| {
                let aliases = endpoint.aliases.iter().map(String::as_str).collect();
                (endpoint.network.as_str(), aliases)
            })
            .collect();
        assert_eq!(
            names,
            [
                ("shop_back", vec!["api", "backend"]),
                ("shop_front", vec!["api", "api.local"])
            ]
        );
        assert!(
            spec.networks
                .iter()
                .all(|endpoint| endpoint.ipv4_address.is_none()),
            "the fixed address stays with the service's container"
        );
        assert_eq!(spec.restart, RestartPolicy::UnlessStopped);
        assert!(spec.publishes.is_empty());
    }

    #[test]
    fn a_forwarder_is_told_its_service_ports_intake_and_token() {
        let manifest = load(NETWORKS);
        let intake = Intake {
            address: "host.docker.internal:41234".to_string(),
            extra_hosts: vec!["host.docker.internal:host-gateway".to_string()],
            dial: true,
            handoff: None,
        };
        let spec = forwarder_spec(
            &manifest,
            &manifest.services["api"],
            &[80, 8080],
            inputs(&intake),
        );
        assert_eq!(
            spec.environment,
            [
                "SANDBOX_MESH_DIAL_PORT=15003",
                "SANDBOX_MESH_INTAKE=host.docker.internal:41234",
                "SANDBOX_MESH_PORTS=80,8080",
                "SANDBOX_MESH_SERVICE=api",
                "SANDBOX_MESH_TOKEN=ab12",
            ]
        );
        // The dial port on the host's loopback only, where the control plane finds it.
        assert_eq!(spec.publishes.len(), 1);
        assert_eq!(spec.publishes[0].host_ip, "127.0.0.1");
        assert_eq!(spec.publishes[0].host_port, None);
        assert_eq!(spec.publishes[0].container_port, 15003);
        assert_eq!(spec.labels[DIAL_PORT_LABEL], "15003");
        assert_eq!(spec.extra_hosts, ["host.docker.internal:host-gateway"]);
        assert_eq!(spec.labels[labels::ROLE], labels::MESH_FORWARDER);
        assert_eq!(spec.labels[labels::MESH_SERVICE], "api");
        assert!(
            !spec.labels.contains_key(labels::SERVICE),
            "no replica of `api`"
        );
        assert_eq!(spec.labels[labels::PROJECT], "shop");
        assert!(!spec.labels.contains_key(labels::REPLICA));
    }

    #[test]
    fn a_forwarder_with_a_handoff_folder_has_it_mounted_and_is_told_the_socket() {
        let manifest = load(NETWORKS);
        let intake = Intake {
            handoff: Some("/home/dev/.local/share/sandbox/mesh/handoff/shop".into()),
            ..intake()
        };
        let spec = forwarder_spec(
            &manifest,
            &manifest.services["api"],
            &[8080],
            inputs(&intake),
        );
        assert!(spec
            .environment
            .contains(&"SANDBOX_MESH_HANDOFF=/run/sandbox-mesh/intake.sock".to_string()));
        assert_eq!(
            spec.volumes,
            [VolumeMount::Bind {
                source: "/home/dev/.local/share/sandbox/mesh/handoff/shop".into(),
                target: "/run/sandbox-mesh".to_string(),
                read_only: false,
                create_host_path: true,
                propagation: None,
                selinux: None,
            }]
        );
        let without = forwarder_of(NETWORKS, "api", &[8080]);
        assert!(without.volumes.is_empty());
        assert!(!without
            .environment
            .iter()
            .any(|variable| variable.starts_with("SANDBOX_MESH_HANDOFF=")));
    }

    #[test]
    fn a_forwarders_config_hash_is_stable_and_follows_its_inputs() {
        let manifest = load(NETWORKS);
        let intake = intake();
        let service = &manifest.services["api"];
        let hash = |ports: &[u16], inputs: ForwarderInputs<'_>| {
            forwarder_spec(&manifest, service, ports, inputs)
                .with_hash_label()
                .labels[labels::CONFIG_HASH]
                .clone()
        };
        let first = hash(&[8080], inputs(&intake));
        assert_eq!(
            first,
            hash(&[8080], inputs(&intake)),
            "the same manifest, intake and token give the same hash on every run"
        );
        assert_ne!(first, hash(&[8080, 9090], inputs(&intake)));
        let other_token = ForwarderInputs {
            token: "cd34",
            ..inputs(&intake)
        };
        assert_ne!(first, hash(&[8080], other_token));
        let other_image = ForwarderInputs {
            image: "sandbox-forwarder:ba9876543210",
            ..inputs(&intake)
        };
        assert_ne!(first, hash(&[8080], other_image));
    }

    #[test]
    fn the_dial_port_avoids_the_services_own() {
        assert_eq!(dial_port(&[80, 8080]), 15003);
        assert_eq!(dial_port(&[15003, 15004, 15006]), 15005);
        let spec = forwarder_of(NETWORKS, "api", &[8080]);
        assert!(
            spec.publishes.is_empty(),
            "no dial port where the host reaches containers"
        );
        assert!(!spec.labels.contains_key(DIAL_PORT_LABEL));
    }

    #[test]
    fn a_bridged_forwarder_runs_on_the_bridge() {
        let spec = forwarder_of(SHOP, "bridged", &[83]);
        assert_eq!(spec.network_mode, "bridge");
        assert!(spec.networks.is_empty());
    }
}
