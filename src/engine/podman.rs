//! Which engine answers the Docker API, and what sandbox does differently on Podman's
//! Docker-compatible API. Pure decisions (tested here); `engine::docker` asks the engine and acts on
//! them. Must not talk to the engine itself.
//!
//! Podman's differences that matter to sandbox:
//! - its network backend (netavark) creates a network's bridge, and so the host's gateway address
//!   on it, only when the first container joins, and removes it when the last one leaves; the
//!   control plane listens there before any container exists, with `IP_FREEBIND`
//!   ([`listen_before_address_exists`]), and the kernel delivers connections once the address is
//!   up (the same socket keeps working when the bridge goes and comes back);
//! - before Podman 5 it does not know `host-gateway` in `extra_hosts`: the entry is written with
//!   the container's network gateway instead ([`EngineKind::rewrites_host_gateway`]);
//! - rootless Podman keeps its bridges inside its own network namespace: the host reaches neither
//!   the gateway address nor the container IPs, only published ports.

use std::io;
use std::net::SocketAddr;

/// The engine behind the Docker API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    Podman {
        /// The major version (`4` for 4.3.1).
        major: u32,
        /// Running as a user: its networks live in a namespace of their own.
        rootless: bool,
    },
}

impl EngineKind {
    /// Tells the engine from `/version`'s component names and version, and `/info`'s security
    /// options (Podman lists `name=rootless` there when it runs as a user).
    pub fn detect(components: &[&str], version: &str, security_options: &[&str]) -> EngineKind {
        if !components.iter().any(|name| name.starts_with("Podman")) {
            return EngineKind::Docker;
        }
        EngineKind::Podman {
            major: version
                .split('.')
                .next()
                .and_then(|major| major.parse().ok())
                .unwrap_or(0),
            rootless: security_options.contains(&"name=rootless"),
        }
    }

    /// Whether this is Podman (for messages and tests).
    pub fn is_podman(self) -> bool {
        matches!(self, EngineKind::Podman { .. })
    }

    /// Running rootless: container IPs and gateway addresses are out of the host's reach.
    pub fn rootless(self) -> bool {
        matches!(self, EngineKind::Podman { rootless: true, .. })
    }

    /// A bridge network's gateway address appears on the host only when its first container
    /// joins (rootful Podman): the control plane listens there before it exists.
    pub fn gateway_appears_on_attach(self) -> bool {
        matches!(
            self,
            EngineKind::Podman {
                rootless: false,
                ..
            }
        )
    }

    /// `NAME:host-gateway` entries must be given an address (Podman before 5 refuses or drops
    /// them, and the name does not resolve).
    pub fn rewrites_host_gateway(self) -> bool {
        matches!(self, EngineKind::Podman { major, .. } if major < 5)
    }

    /// How the engine is named in messages.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "Docker",
            EngineKind::Podman { rootless: true, .. } => "Podman (rootless)",
            EngineKind::Podman { .. } => "Podman",
        }
    }
}

/// `extra_hosts` with every `NAME:host-gateway` entry pointing at `gateway` instead (the host as
/// the container sees it on its network), or left out when there is none.
pub fn without_host_gateway(hosts: &[String], gateway: Option<&str>) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|entry| match entry.strip_suffix(":host-gateway") {
            Some(name) => gateway.map(|gateway| format!("{name}:{gateway}")),
            None => Some(entry.clone()),
        })
        .collect()
}

/// Lets `socket` bind `address` although no interface has it yet (`IP_FREEBIND`): a network
/// gateway that the engine brings up with the network's first container. Only for gateway
/// addresses the engine reported: a mistyped address would otherwise bind without error.
pub fn listen_before_address_exists(
    socket: &socket2::Socket,
    address: SocketAddr,
) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    match address {
        SocketAddr::V4(_) => socket.set_freebind_v4(true)?,
        SocketAddr::V6(_) => socket.set_freebind_v6(true)?,
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (socket, address);
    Ok(())
}

/// A listening socket (non-blocking) on a network gateway `address`, which may not exist yet
/// ([`listen_before_address_exists`]).
pub fn gateway_listener(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // As tokio and std do on Unix: a port in TIME_WAIT can be listened on again.
    socket.set_reuse_address(true)?;
    listen_before_address_exists(&socket, address)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_is_told_from_docker_by_its_version_components() {
        assert_eq!(
            EngineKind::detect(&["Engine", "containerd", "runc"], "28.2.2", &[]),
            EngineKind::Docker
        );
        let rootful = EngineKind::detect(
            &["Podman Engine", "Conmon", "OCI Runtime (runc)"],
            "4.3.1",
            &["name=seccomp,profile=default"],
        );
        assert_eq!(
            rootful,
            EngineKind::Podman {
                major: 4,
                rootless: false
            }
        );
        assert!(rootful.gateway_appears_on_attach() && rootful.rewrites_host_gateway());
        let rootless = EngineKind::detect(&["Podman Engine"], "5.2.0", &["name=rootless"]);
        assert!(rootless.rootless() && !rootless.gateway_appears_on_attach());
        assert!(
            !rootless.rewrites_host_gateway(),
            "Podman 5 knows host-gateway"
        );
        assert!(!EngineKind::Docker.gateway_appears_on_attach());
    }

    #[test]
    fn host_gateway_entries_get_the_networks_gateway_or_are_left_out() {
        let hosts = vec![
            "host.docker.internal:host-gateway".to_string(),
            "item.sandbox:10.89.0.1".to_string(),
        ];
        assert_eq!(
            without_host_gateway(&hosts, Some("10.89.0.1")),
            ["host.docker.internal:10.89.0.1", "item.sandbox:10.89.0.1"]
        );
        assert_eq!(
            without_host_gateway(&hosts, None),
            ["item.sandbox:10.89.0.1"]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_gateway_address_is_listened_on_before_it_exists() {
        // TEST-NET-2: on no interface of a test machine.
        let address: SocketAddr = "198.51.100.7:0".parse().unwrap();
        assert!(std::net::TcpListener::bind(address).is_err());
        let listener = gateway_listener(address).expect("IP_FREEBIND binds an absent address");
        assert_eq!(listener.local_addr().unwrap().ip(), address.ip());
    }
}
