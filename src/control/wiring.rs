//! What containers are given to reach the control plane: the Zipkin variables, `<DEP>_URL` for each
//! dependency (through the mesh), host entries, and where each service's mesh forwarder hands its
//! connections (the mesh intake). A pure function of the manifest and the
//! gateway addresses, so an `up` run by another process (a re-up while a control plane runs)
//! computes the very same container configuration, and nothing is recreated for no reason.
//!
//! Each service is wired through one of its networks: the first, by `priority`, whose gateway
//! address the control plane listens on, the project's own networks before shared ones (external
//! networks and `bridge`, where another project's control plane may hold the ports). The mesh and
//! the trace server listen on every such gateway, so a service reaches them on a network it is on,
//! internal ones included (the host's bridge address stays reachable there).
//!
//! Where the host has no address on the containers' networks ([`HostGateway`]: Docker Desktop,
//! or forced with `SANDBOX_MESH_REACH=host`), containers reach the control plane through the
//! engine's host-gateway name, forwarders included: they hand connections to the intake at
//! `host.docker.internal:<intake port>` and dial replicas for the control plane.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::engine::docker::{Docker, NetworkInfo};
use crate::engine::mesh::Intake;
use crate::engine::spec::Wiring;
use crate::manifest::{by_priority, Manifest, NetworkMode, Service};

/// The port the mesh listens on, on each network's gateway address.
pub const MESH_PORT: u16 = 15001;
/// The port the mesh's forwarders hand connections to, on each network's gateway address (a
/// PROXY protocol v2 header first; see `sandbox_forwarder::wire`).
pub const MESH_INTAKE_PORT: u16 = 15002;
/// The standard Zipkin port, where containers reach the trace server.
pub const ZIPKIN_PORT: u16 = crate::trace::DEFAULT_PORT;
/// The host name containers use for the control plane where the gateway address cannot be bound
/// (Docker Desktop): the engine maps it to the host.
pub const HOST_GATEWAY_NAME: &str = "host.docker.internal";
/// The domain of mesh host names: `item.sandbox` is service `item` through the mesh.
pub const MESH_DOMAIN: &str = "sandbox";
/// How deep `network_mode: service:` chains are followed (validation rejects cycles).
const MAX_SHARED_DEPTH: usize = 8;

/// How containers reach the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSide {
    /// Gateway addresses this process can listen on, by the network's engine name: mesh and trace
    /// server there, at fixed ports. Empty on Docker Desktop.
    pub gateways: BTreeMap<String, IpAddr>,
    /// The networks of `gateways` that are not the project's own (external ones, `bridge`).
    pub shared: BTreeSet<String>,
    /// The control plane's loopback ports.
    pub loopback: Loopback,
    /// Where the engine's host-gateway name arrives: the mesh works through it when it arrives
    /// where the control plane listens.
    pub host_gateway: HostGateway,
    /// The folder of the project's handoff socket ([`handoff_folder`]), mounted into forwarders
    /// that reach the intake on a gateway address: they hand HTTP connections over whole.
    pub handoff: Option<PathBuf>,
}

/// Where a container's connection to the engine's host-gateway name (`host.docker.internal`)
/// arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostGateway {
    /// At the host's loopback (Docker Desktop), where the trace server and the intake listen.
    Loopback,
    /// At this address of the host: on Linux, the default bridge's gateway, where the
    /// host-gateway name points. Used only when forced (`SANDBOX_MESH_REACH=host`): the control
    /// plane then listens there (trace server, OTLP, intake, at their loopback ports) instead of
    /// on the networks' gateways, as if it could not.
    Forced(IpAddr),
    /// Somewhere the control plane does not listen (a remote engine's host, rootless Podman's
    /// namespace), or not used (Linux, where the networks' gateways serve): no mesh through it.
    Elsewhere,
}

impl HostGateway {
    /// Where the host-gateway name arrives on the engine `docker` talks to.
    pub async fn of(docker: &Docker) -> HostGateway {
        if crate::engine::mesh::reach_forced() {
            return match docker.network_info("bridge", "bridge").await {
                Ok(Some(NetworkInfo {
                    gateway: Some(gateway),
                    ..
                })) => match gateway.parse() {
                    Ok(ip) => HostGateway::Forced(ip),
                    Err(_) => HostGateway::Elsewhere,
                },
                _ => {
                    tracing::warn!(
                        "`SANDBOX_MESH_REACH=host`: the engine has no `bridge` gateway, so no mesh"
                    );
                    HostGateway::Elsewhere
                }
            };
        }
        let local =
            docker.endpoint().starts_with("unix://") || docker.endpoint().starts_with("npipe://");
        if local && !docker.host_reaches_containers() && !docker.kind().is_podman() {
            HostGateway::Loopback
        } else {
            HostGateway::Elsewhere
        }
    }

    /// Whether forwarders can reach the intake through it.
    fn meshes(self) -> bool {
        !matches!(self, HostGateway::Elsewhere)
    }

    /// The address the control plane must listen on besides loopback, when forced.
    pub fn listen_address(self) -> Option<IpAddr> {
        match self {
            HostGateway::Forced(ip) => Some(ip),
            HostGateway::Loopback | HostGateway::Elsewhere => None,
        }
    }
}

/// The folder of `project`'s handoff socket (`proxy::handoff`), where forwarders can use one:
/// the engine runs on this host's kernel (a local socket, not Docker Desktop's VM: a descriptor
/// cannot cross into it; not the forced host-gateway path, which stands for Desktop) and the
/// socket's path fits a Unix socket address. A function of the engine and the project only, so
/// the control plane and a re-up give forwarders the same mount.
pub fn handoff_folder(
    docker: &Docker,
    project: &str,
    host_gateway: HostGateway,
) -> Option<PathBuf> {
    let local = docker.endpoint().starts_with("unix://");
    if !local || host_gateway != HostGateway::Elsewhere {
        return None;
    }
    let folder = crate::control::mesh_token::handoff_folder(project).ok()?;
    let socket = folder.join(crate::proxy::handoff::SOCKET_NAME);
    (socket.as_os_str().len() <= MAX_SOCKET_PATH).then_some(folder)
}

/// The longest path a Unix socket address holds (`sun_path`, less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The control plane's ports on the host's loopback: for `network_mode: host` containers, and
/// through the engine's host-gateway name for containers on no network with a bound gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loopback {
    /// The trace server (Zipkin API).
    pub zipkin: u16,
    /// The mesh intake, where forwarders hand connections over.
    pub intake: u16,
    /// The OTLP/HTTP receiver.
    pub otlp_http: u16,
}

impl ContainerSide {
    /// The networks whose gateway address this process can listen on (none when the
    /// host-gateway path is forced).
    pub fn detect(
        networks: &[NetworkInfo],
        loopback: Loopback,
        host_gateway: HostGateway,
    ) -> ContainerSide {
        let gateways = networks
            .iter()
            .filter(|_| !matches!(host_gateway, HostGateway::Forced(_)))
            .filter_map(|network| Some((network.name.clone(), network.listenable_gateway()?)))
            .collect();
        let shared = networks
            .iter()
            .filter(|network| network.shared)
            .map(|network| network.name.clone())
            .collect();
        ContainerSide {
            gateways,
            shared,
            loopback,
            host_gateway,
            handoff: None,
        }
    }

    /// This side with forwarders handing connections over on the socket in `folder`.
    pub fn with_handoff(self, folder: Option<PathBuf>) -> ContainerSide {
        ContainerSide {
            handoff: folder,
            ..self
        }
    }

    /// Every gateway address once, sorted, and whether it is on a shared network: where the mesh
    /// and the trace server listen.
    pub fn listen_addresses(&self) -> Vec<(IpAddr, bool)> {
        let mut addresses: Vec<(IpAddr, bool)> = self
            .gateways
            .iter()
            .map(|(name, ip)| (*ip, self.shared.contains(name)))
            .collect();
        addresses.sort();
        addresses.dedup_by_key(|(ip, _)| *ip);
        addresses
    }
}

/// How one service's containers reach the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Through a gateway address the control plane listens on: mesh and trace server.
    Gateway(IpAddr),
    /// Through the engine's host-gateway name (Docker Desktop): the trace server, and the mesh
    /// intake where the name arrives where it listens ([`HostGateway`]).
    HostGateway,
    /// The host's own network stack (`network_mode: host`): the trace server on loopback.
    Loopback,
    /// No networking, or a stack sandbox does not know (`none`, `container:`).
    Nothing,
}

/// How a service reaches the control plane, and whether its own `/etc/hosts` can be written (not
/// when it shares another container's network stack).
fn reach(
    manifest: &Manifest,
    service: &Service,
    side: &ContainerSide,
    depth: usize,
) -> (Reach, bool) {
    let gateway = |name: &str| side.gateways.get(name).copied();
    match &service.network_mode {
        NetworkMode::Networks => {
            let names: Vec<&str> = by_priority(&service.networks)
                .into_iter()
                .filter_map(|(key, _)| Some(manifest.networks.get(key)?.name.as_str()))
                .collect();
            let found = names
                .iter()
                .filter(|name| !side.shared.contains(**name))
                .chain(names.iter().filter(|name| side.shared.contains(**name)))
                .find_map(|name| gateway(name));
            (found.map_or(Reach::HostGateway, Reach::Gateway), true)
        }
        NetworkMode::Bridge => (
            gateway("bridge").map_or(Reach::HostGateway, Reach::Gateway),
            true,
        ),
        NetworkMode::Host => (Reach::Loopback, true),
        NetworkMode::None | NetworkMode::Container(_) => (Reach::Nothing, false),
        NetworkMode::Service(target) => match manifest.services.get(target) {
            Some(target) if depth < MAX_SHARED_DEPTH => {
                (reach(manifest, target, side, depth + 1).0, false)
            }
            _ => (Reach::Nothing, false),
        },
    }
}

/// The wiring for every container of `manifest`.
pub fn wiring(manifest: &Manifest, side: &ContainerSide) -> Wiring {
    let zipkin_fixed = manifest.tracing.port.unwrap_or(ZIPKIN_PORT);
    let otlp_fixed = manifest
        .tracing
        .otlp_http_port
        .unwrap_or(crate::trace::otlp::DEFAULT_HTTP_PORT);
    let mut service_environment = BTreeMap::new();
    let mut service_extra_hosts = BTreeMap::new();
    let mut mesh_intake = BTreeMap::new();
    for service in manifest.services.values() {
        let (reach, own_hosts) = reach(manifest, service, side, 0);
        if let (Some(intake), true) = (intake(reach, side), own_hosts) {
            mesh_intake.insert(service.name.clone(), intake);
        }
        let mut environment =
            BTreeMap::from([("OTEL_SERVICE_NAME".to_string(), service.name.clone())]);
        let mut hosts = Vec::new();
        match reach {
            Reach::Gateway(ip) => {
                environment.extend(telemetry_environment(
                    &format!("http://{}", SocketAddr::new(ip, zipkin_fixed)),
                    &format!("http://{}", SocketAddr::new(ip, otlp_fixed)),
                ));
            }
            Reach::HostGateway => {
                let host = |port: u16| format!("http://{HOST_GATEWAY_NAME}:{port}");
                environment.extend(telemetry_environment(
                    &host(side.loopback.zipkin),
                    &host(side.loopback.otlp_http),
                ));
                if own_hosts {
                    hosts.push(format!("{HOST_GATEWAY_NAME}:host-gateway"));
                }
            }
            Reach::Loopback => {
                let local = |port: u16| format!("http://127.0.0.1:{port}");
                environment.extend(telemetry_environment(
                    &local(side.loopback.zipkin),
                    &local(side.loopback.otlp_http),
                ));
            }
            Reach::Nothing => {}
        }
        for dependency in service.depends_on.keys() {
            let variable = format!("{}_URL", dependency.to_uppercase().replace('-', "_"));
            let url = match reach {
                Reach::Gateway(ip) if own_hosts => {
                    hosts.push(format!("{dependency}.{MESH_DOMAIN}:{ip}"));
                    format!("http://{dependency}.{MESH_DOMAIN}:{MESH_PORT}")
                }
                // Called directly, by its name on a shared network.
                Reach::Gateway(_) | Reach::HostGateway => {
                    let port = manifest
                        .services
                        .get(dependency)
                        .and_then(|dependency| dependency.port)
                        .unwrap_or(80);
                    format!("http://{dependency}:{port}")
                }
                Reach::Loopback | Reach::Nothing => continue,
            };
            environment.insert(variable, url);
        }
        service_environment.insert(service.name.clone(), environment);
        service_extra_hosts.insert(service.name.clone(), hosts);
    }
    Wiring {
        environment: BTreeMap::new(),
        service_environment,
        extra_hosts: Vec::new(),
        service_extra_hosts,
        mesh_intake,
        meshed: BTreeSet::new(),
    }
}

/// Where a forwarder on a network reached as `reach` hands its connections: the mesh intake on
/// the network's gateway address; or, where the control plane is reached only through the
/// engine's host-gateway name and it arrives where the intake listens ([`HostGateway`]),
/// `host.docker.internal:<intake port>`, the forwarder dialing replicas for the control plane
/// (the host cannot open connections to container addresses there). Elsewhere (a remote engine,
/// rootless Podman) the service is not meshed.
fn intake(reach: Reach, side: &ContainerSide) -> Option<Intake> {
    match reach {
        Reach::Gateway(ip) => Some(Intake {
            address: SocketAddr::new(ip, MESH_INTAKE_PORT).to_string(),
            extra_hosts: Vec::new(),
            dial: false,
            handoff: side.handoff.clone(),
        }),
        Reach::HostGateway if side.host_gateway.meshes() => Some(Intake {
            address: format!("{HOST_GATEWAY_NAME}:{}", side.loopback.intake),
            extra_hosts: vec![format!("{HOST_GATEWAY_NAME}:host-gateway")],
            dial: true,
            handoff: None,
        }),
        Reach::HostGateway | Reach::Loopback | Reach::Nothing => None,
    }
}

/// What telemetry SDKs read: the Zipkin variables for a trace server at `zipkin`, then the OTLP
/// ones for a receiver at `otlp` (so `OTEL_TRACES_EXPORTER` is `otlp`, the exporter every
/// OpenTelemetry SDK ships).
fn telemetry_environment(zipkin: &str, otlp: &str) -> BTreeMap<String, String> {
    let mut environment = zipkin_environment(zipkin);
    environment.extend(crate::trace::otlp::environment::otlp_environment(otlp));
    environment
}

/// The variables common Zipkin and OpenTelemetry clients read, for a trace server at `base`.
pub fn zipkin_environment(base: &str) -> BTreeMap<String, String> {
    let spans = format!("{base}/api/v2/spans");
    BTreeMap::from([
        ("ZIPKIN_ENDPOINT".to_string(), spans.clone()),
        ("SPRING_ZIPKIN_BASE_URL".to_string(), format!("{base}/")),
        (
            "MANAGEMENT_ZIPKIN_TRACING_ENDPOINT".to_string(),
            spans.clone(),
        ),
        ("OTEL_EXPORTER_ZIPKIN_ENDPOINT".to_string(), spans),
        ("OTEL_TRACES_EXPORTER".to_string(), "zipkin".to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_text as load, Manifest};

    fn manifest() -> Manifest {
        load("name: shop\nservices:\n  user:\n    image: demo\n    port: 8080\n    depends_on: [item-store]\n  item-store:\n    image: demo\n    port: 9090\n")
    }

    fn side(gateways: &[(&str, &str)]) -> ContainerSide {
        ContainerSide {
            gateways: gateways
                .iter()
                .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
                .collect(),
            shared: ["bridge".to_string(), "corporate".to_string()].into(),
            loopback: Loopback {
                zipkin: 41000,
                intake: 41001,
                otlp_http: 41002,
            },
            host_gateway: HostGateway::Elsewhere,
            handoff: None,
        }
    }

    #[test]
    fn clients_find_the_trace_server_under_their_usual_names() {
        let environment = zipkin_environment("http://172.18.0.1:9411");
        assert_eq!(
            environment["ZIPKIN_ENDPOINT"],
            "http://172.18.0.1:9411/api/v2/spans"
        );
        assert_eq!(
            environment["OTEL_EXPORTER_ZIPKIN_ENDPOINT"],
            "http://172.18.0.1:9411/api/v2/spans"
        );
        assert_eq!(
            environment["MANAGEMENT_ZIPKIN_TRACING_ENDPOINT"],
            "http://172.18.0.1:9411/api/v2/spans"
        );
        assert_eq!(
            environment["SPRING_ZIPKIN_BASE_URL"],
            "http://172.18.0.1:9411/"
        );
        assert_eq!(environment["OTEL_TRACES_EXPORTER"], "zipkin");
    }

    #[test]
    fn forwarders_on_a_gateway_get_the_handoff_folder_and_host_gateway_ones_do_not() {
        let folder = PathBuf::from("/home/dev/.local/share/sandbox/mesh/handoff/shop");
        let on_gateway = side(&[("shop_default", "172.18.0.1")]).with_handoff(Some(folder.clone()));
        let on_linux = wiring(&manifest(), &on_gateway);
        assert_eq!(on_linux.mesh_intake["user"].handoff.as_ref(), Some(&folder));
        let desktop = ContainerSide {
            host_gateway: HostGateway::Loopback,
            ..side(&[]).with_handoff(Some(folder))
        };
        let on_desktop = wiring(&manifest(), &desktop);
        assert_eq!(
            on_desktop.mesh_intake["user"].handoff, None,
            "a descriptor cannot cross into Docker Desktop's VM"
        );
    }

    #[test]
    fn dependencies_are_reached_through_the_mesh_on_linux_engines() {
        let wiring = wiring(&manifest(), &side(&[("shop_default", "172.18.0.1")]));
        assert_eq!(
            wiring.service_environment["user"]["ITEM_STORE_URL"],
            "http://item-store.sandbox:15001"
        );
        assert_eq!(
            wiring.service_extra_hosts["user"],
            ["item-store.sandbox:172.18.0.1"]
        );
        assert!(
            wiring.service_extra_hosts["item-store"].is_empty(),
            "only a service's own dependencies"
        );
        assert_eq!(
            wiring.service_environment["item-store"]["OTEL_SERVICE_NAME"],
            "item-store"
        );
        assert_eq!(
            wiring.service_environment["item-store"]["ZIPKIN_ENDPOINT"],
            "http://172.18.0.1:9411/api/v2/spans"
        );
    }

    #[test]
    fn without_the_gateway_address_dependencies_are_called_directly() {
        let wiring = wiring(&manifest(), &side(&[]));
        assert_eq!(
            wiring.service_environment["user"]["ITEM_STORE_URL"],
            "http://item-store:9090"
        );
        assert_eq!(
            wiring.service_extra_hosts["item-store"],
            ["host.docker.internal:host-gateway"]
        );
        assert_eq!(
            wiring.service_environment["user"]["ZIPKIN_ENDPOINT"],
            "http://host.docker.internal:41000/api/v2/spans"
        );
    }

    const NETWORKS: &str = "name: shop
services:
  web:
    image: demo
    depends_on: [api]
    networks: [front]
  api:
    image: demo
    depends_on: [db]
    networks:
      front: {}
      back: {priority: 10}
  db:
    image: demo
    networks: [back]
networks:
  front: {}
  back: {internal: true}
";

    #[test]
    fn each_service_is_wired_through_a_network_it_is_on() {
        let manifest = load(NETWORKS);
        let wiring = wiring(
            &manifest,
            &side(&[("shop_front", "10.1.0.1"), ("shop_back", "10.2.0.1")]),
        );
        let zipkin = |service: &str| wiring.service_environment[service]["ZIPKIN_ENDPOINT"].clone();
        assert_eq!(zipkin("web"), "http://10.1.0.1:9411/api/v2/spans");
        assert_eq!(zipkin("db"), "http://10.2.0.1:9411/api/v2/spans");
        // `api` is on both: its highest-priority network wins.
        assert_eq!(zipkin("api"), "http://10.2.0.1:9411/api/v2/spans");
        assert_eq!(wiring.service_extra_hosts["web"], ["api.sandbox:10.1.0.1"]);
        assert_eq!(wiring.service_extra_hosts["api"], ["db.sandbox:10.2.0.1"]);
        assert_eq!(
            wiring.service_environment["api"]["DB_URL"],
            "http://db.sandbox:15001"
        );
    }

    #[test]
    fn a_service_whose_networks_have_no_bound_gateway_uses_the_host_gateway() {
        let manifest = load(NETWORKS);
        let wiring = wiring(&manifest, &side(&[("shop_back", "10.2.0.1")]));
        assert_eq!(
            wiring.service_environment["web"]["API_URL"],
            "http://api:80"
        );
        assert_eq!(
            wiring.service_extra_hosts["web"],
            ["host.docker.internal:host-gateway"]
        );
        assert_eq!(
            wiring.service_environment["api"]["DB_URL"],
            "http://db.sandbox:15001"
        );
    }

    #[test]
    fn network_modes_get_what_their_stack_can_reach() {
        let manifest = load(
            "name: shop
services:
  db: {image: demo, port: 5432}
  local: {image: demo, network_mode: host, depends_on: [db]}
  isolated: {image: demo, network_mode: none, depends_on: [db]}
  sidecar: {image: demo, network_mode: 'service:db', links: []}
  bridged: {image: demo, network_mode: bridge, depends_on: [db]}
",
        );
        let wiring = wiring(
            &manifest,
            &side(&[("shop_default", "10.1.0.1"), ("bridge", "172.17.0.1")]),
        );
        let environment = |service: &str| wiring.service_environment[service].clone();
        assert_eq!(
            environment("local")["ZIPKIN_ENDPOINT"],
            "http://127.0.0.1:41000/api/v2/spans"
        );
        assert!(
            !environment("local").contains_key("DB_URL"),
            "no mesh on the host's stack"
        );
        assert!(!environment("isolated").contains_key("ZIPKIN_ENDPOINT"));
        assert!(!environment("isolated").contains_key("DB_URL"));
        // `service:db` shares db's stack: db's gateway, and no host entries of its own.
        assert_eq!(
            environment("sidecar")["ZIPKIN_ENDPOINT"],
            "http://10.1.0.1:9411/api/v2/spans"
        );
        assert_eq!(environment("sidecar")["DB_URL"], "http://db:5432");
        assert!(wiring.service_extra_hosts["sidecar"].is_empty());
        assert_eq!(
            environment("bridged")["ZIPKIN_ENDPOINT"],
            "http://172.17.0.1:9411/api/v2/spans"
        );
        assert_eq!(
            wiring.service_extra_hosts["bridged"],
            ["db.sandbox:172.17.0.1"]
        );
        // Only services with networks of their own get a forwarder's intake.
        let with_intake: Vec<&str> = wiring.mesh_intake.keys().map(String::as_str).collect();
        assert_eq!(with_intake, ["bridged", "db"]);
        assert_eq!(wiring.mesh_intake["bridged"].address, "172.17.0.1:15002");
    }

    #[test]
    fn forwarders_hand_connections_to_the_intake_on_their_services_network() {
        let manifest = load(NETWORKS);
        let wiring = wiring(&manifest, &side(&[("shop_back", "10.2.0.1")]));
        let intake = |service: &str| wiring.mesh_intake.get(service).cloned();
        assert_eq!(
            intake("db"),
            Some(Intake {
                address: "10.2.0.1:15002".to_string(),
                extra_hosts: Vec::new(),
                dial: false,
                handoff: None,
            })
        );
        assert_eq!(
            intake("web"),
            None,
            "no bound gateway on `front`: the host cannot reach its containers, so no mesh"
        );
        assert!(wiring.meshed.is_empty(), "decided by `up`, with the images");
    }

    #[test]
    fn where_the_host_gateway_reaches_the_intake_forwarders_use_it_and_dial() {
        let manifest = load(NETWORKS);
        for host_gateway in [
            HostGateway::Loopback,
            HostGateway::Forced("172.17.0.1".parse().unwrap()),
        ] {
            let side = ContainerSide {
                host_gateway,
                ..side(&[])
            };
            let wiring = wiring(&manifest, &side);
            let intake = &wiring.mesh_intake["web"];
            assert_eq!(
                intake.address, "host.docker.internal:41001",
                "the intake's loopback port"
            );
            assert_eq!(intake.extra_hosts, ["host.docker.internal:host-gateway"]);
            assert!(
                intake.dial,
                "the host cannot connect containers: forwarders dial"
            );
            assert_eq!(
                wiring.service_environment["web"]["ZIPKIN_ENDPOINT"],
                "http://host.docker.internal:41000/api/v2/spans"
            );
            assert_eq!(
                wiring.service_environment["web"]["API_URL"], "http://api:80",
                "called by name: through the forwarder"
            );
        }
    }

    #[test]
    fn forcing_the_host_gateway_ignores_listenable_gateways() {
        let network = NetworkInfo {
            key: "default".to_string(),
            name: "shop_default".to_string(),
            gateway: Some("127.0.0.1".to_string()),
            internal: false,
            shared: false,
            gateway_appears_on_attach: false,
        };
        let forced = HostGateway::Forced("172.17.0.1".parse().unwrap());
        let loopback = side(&[]).loopback;
        assert!(
            ContainerSide::detect(std::slice::from_ref(&network), loopback, forced)
                .gateways
                .is_empty()
        );
        assert_eq!(forced.listen_address(), "172.17.0.1".parse().ok());
        assert_eq!(HostGateway::Loopback.listen_address(), None);
        let normal = ContainerSide::detect(&[network], loopback, HostGateway::Elsewhere);
        assert_eq!(normal.gateways.len(), 1, "a bindable gateway is used");
        assert!(
            wiring(&load(NETWORKS), &side(&[])).mesh_intake.is_empty(),
            "the host gateway arrives elsewhere: no mesh"
        );
    }

    #[test]
    fn gateway_addresses_are_listened_on_once() {
        let side = side(&[("a", "10.1.0.1"), ("bridge", "10.2.0.1"), ("c", "10.1.0.1")]);
        assert_eq!(
            side.listen_addresses(),
            [
                ("10.1.0.1".parse::<IpAddr>().unwrap(), false),
                ("10.2.0.1".parse().unwrap(), true)
            ]
        );
    }

    #[test]
    fn the_projects_own_networks_come_before_shared_ones() {
        let manifest = load(
            "name: shop
services:
  app:
    image: demo
    networks:
      outside: {priority: 100}
      default: {}
networks:
  outside: {external: true, name: corporate}
",
        );
        let wiring = wiring(
            &manifest,
            &side(&[("corporate", "10.9.0.1"), ("shop_default", "10.1.0.1")]),
        );
        assert_eq!(
            wiring.service_environment["app"]["ZIPKIN_ENDPOINT"],
            "http://10.1.0.1:9411/api/v2/spans"
        );
    }
}
