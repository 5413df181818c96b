//! What containers are given to reach the control plane: the Zipkin variables, `<DEP>_URL` for each
//! dependency (through the mesh), and host entries. A pure function of the manifest and the network,
//! so an `up` run by another process (a re-up while a control plane runs) computes the very same
//! container configuration, and nothing is recreated for no reason.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::engine::docker::NetworkInfo;
use crate::engine::spec::Wiring;
use crate::manifest::Manifest;

/// The port the mesh listens on, on the network's gateway address.
pub const MESH_PORT: u16 = 15001;
/// The standard Zipkin port, where containers reach the trace server.
pub const ZIPKIN_PORT: u16 = crate::trace::DEFAULT_PORT;
/// The host name containers use for the control plane where the gateway address cannot be bound
/// (Docker Desktop): the engine maps it to the host.
pub const HOST_GATEWAY_NAME: &str = "host.docker.internal";
/// The domain of mesh host names: `item.sandbox` is service `item` through the mesh.
pub const MESH_DOMAIN: &str = "sandbox";

/// How containers reach the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerSide {
    /// The host listens on the network's gateway address (Linux engines): mesh and trace server
    /// there, at fixed ports.
    Gateway(IpAddr),
    /// Only through the engine's host-gateway name, to loopback listeners (Docker Desktop). No mesh:
    /// dependencies are called directly; the trace server at its loopback port.
    HostGateway { zipkin_port: u16 },
}

impl ContainerSide {
    /// The gateway address when this process can listen on it.
    pub fn detect(network: &NetworkInfo, zipkin_port: u16) -> ContainerSide {
        let gateway: Option<IpAddr> = network.gateway.as_deref().and_then(|ip| ip.parse().ok());
        match gateway {
            Some(ip) if std::net::TcpListener::bind(SocketAddr::new(ip, 0)).is_ok() => {
                ContainerSide::Gateway(ip)
            }
            _ => ContainerSide::HostGateway { zipkin_port },
        }
    }
}

/// The wiring for every container of `manifest`.
pub fn wiring(manifest: &Manifest, network: &NetworkInfo, side: ContainerSide) -> Wiring {
    let (zipkin_base, extra_hosts) = match side {
        ContainerSide::Gateway(ip) => (
            format!(
                "http://{ip}:{}",
                manifest.tracing.port.unwrap_or(ZIPKIN_PORT)
            ),
            Vec::new(),
        ),
        ContainerSide::HostGateway { zipkin_port } => (
            format!("http://{HOST_GATEWAY_NAME}:{zipkin_port}"),
            vec![format!("{HOST_GATEWAY_NAME}:host-gateway")],
        ),
    };
    let mut service_environment = BTreeMap::new();
    let mut service_extra_hosts = BTreeMap::new();
    for service in manifest.services.values() {
        let mut environment =
            BTreeMap::from([("OTEL_SERVICE_NAME".to_string(), service.name.clone())]);
        let mut hosts = Vec::new();
        for dependency in service.depends_on.keys() {
            let variable = format!("{}_URL", dependency.to_uppercase().replace('-', "_"));
            let url = match side {
                ContainerSide::Gateway(ip) => {
                    hosts.push(format!("{dependency}.{MESH_DOMAIN}:{ip}"));
                    format!("http://{dependency}.{MESH_DOMAIN}:{MESH_PORT}")
                }
                ContainerSide::HostGateway { .. } => {
                    let port = manifest
                        .services
                        .get(dependency)
                        .and_then(|dependency| dependency.port)
                        .unwrap_or(80);
                    format!("http://{dependency}:{port}")
                }
            };
            environment.insert(variable, url);
        }
        service_environment.insert(service.name.clone(), environment);
        service_extra_hosts.insert(service.name.clone(), hosts);
    }
    Wiring {
        network: network.name.clone(),
        environment: zipkin_environment(&zipkin_base),
        service_environment,
        extra_hosts,
        service_extra_hosts,
    }
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
    use crate::manifest::{LoadOptions, Manifest};

    fn manifest() -> Manifest {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(
            directory.path().join("sandbox.yaml"),
            "name: shop\nservices:\n  user:\n    image: demo\n    port: 8080\n    depends_on: [item-store]\n  item-store:\n    image: demo\n    port: 9090\n",
        )
        .unwrap();
        crate::manifest::load(&LoadOptions {
            file: None,
            project: None,
            working_dir: directory.path().to_path_buf(),
            environment: Default::default(),
        })
        .unwrap()
    }

    fn network() -> NetworkInfo {
        NetworkInfo {
            name: "shop_default".into(),
            gateway: Some("172.18.0.1".into()),
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
    fn dependencies_are_reached_through_the_mesh_on_linux_engines() {
        let wiring = wiring(
            &manifest(),
            &network(),
            ContainerSide::Gateway("172.18.0.1".parse().unwrap()),
        );
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
            wiring.environment["ZIPKIN_ENDPOINT"],
            "http://172.18.0.1:9411/api/v2/spans"
        );
    }

    #[test]
    fn without_the_gateway_address_dependencies_are_called_directly() {
        let wiring = wiring(
            &manifest(),
            &network(),
            ContainerSide::HostGateway { zipkin_port: 41000 },
        );
        assert_eq!(
            wiring.service_environment["user"]["ITEM_STORE_URL"],
            "http://item-store:9090"
        );
        assert_eq!(wiring.extra_hosts, ["host.docker.internal:host-gateway"]);
        assert_eq!(
            wiring.environment["ZIPKIN_ENDPOINT"],
            "http://host.docker.internal:41000/api/v2/spans"
        );
    }
}
