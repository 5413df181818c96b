//! Networks: the project's top-level `networks:` and how each service joins them (`networks`,
//! `network_mode`, `links`, `external_links`), resolved: engine names computed, the implicit
//! `default` network added where compose adds it, addresses parsed.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// The key of the network services join when they name none.
pub const DEFAULT_NETWORK: &str = "default";

/// A network of the project (top-level `networks:` entry, or the implicit `default`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    /// The engine's name: `name:` as written, else `<project>_<key>` (the key itself when external).
    pub name: String,
    /// Used as it is: never created nor removed; `up` fails when it does not exist.
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    /// `bridge` when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    /// No route out of the network (containers still reach each other and the host's bridge address).
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub attachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Not written in the file: the `default` network compose adds for services that name none.
    #[serde(skip)]
    pub implicit: bool,
}

impl NetworkSpec {
    /// Whether `address` lies in one of the subnets of the network's `ipam.config`.
    pub fn covers(&self, address: IpAddr) -> bool {
        self.ipam.iter().flat_map(|ipam| &ipam.config).any(|pool| {
            pool.subnet
                .as_deref()
                .and_then(Subnet::parse)
                .is_some_and(|subnet| subnet.contains(address))
        })
    }
}

/// IP address management of a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// One `ipam.config` entry; every field is validated text (CIDR or address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IpamPool {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
}

/// How a service's containers are networked; written as compose writes it (`host`, `service:db`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// The project networks in [`crate::manifest::Service::networks`] (compose's default).
    #[default]
    Networks,
    /// The engine's own `bridge` network.
    Bridge,
    /// The host's network stack: no mesh; the trace server on loopback.
    Host,
    /// No networking at all.
    None,
    /// The network stack of this service's first container (a start-order dependency).
    Service(String),
    /// The network stack of a container outside the project, by name or id.
    Container(String),
}

impl NetworkMode {
    pub fn is_networks(&self) -> bool {
        *self == NetworkMode::Networks
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkMode::Networks => write!(formatter, "networks"),
            NetworkMode::Bridge => write!(formatter, "bridge"),
            NetworkMode::Host => write!(formatter, "host"),
            NetworkMode::None => write!(formatter, "none"),
            NetworkMode::Service(service) => write!(formatter, "service:{service}"),
            NetworkMode::Container(container) => write!(formatter, "container:{container}"),
        }
    }
}

impl Serialize for NetworkMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How a service joins one network (`networks: {NAME: {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceNetwork {
    /// Extra DNS names of the service on this network (the service name is always one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<Ipv6Addr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<IpAddr>,
    /// Lower-case `aa:bb:cc:dd:ee:ff`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Higher first: the highest is the network the container is created on, the others are
    /// connected in this order.
    #[serde(skip_serializing_if = "is_zero")]
    pub priority: i64,
    /// The network with the highest `gw_priority` gives the default route (engines with API 1.48+).
    #[serde(skip_serializing_if = "is_zero")]
    pub gw_priority: i64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
}

/// `links:` / `external_links:` entry: `TARGET` or `TARGET:ALIAS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// A service of the project (`links`) or a container outside it (`external_links`).
    pub target: String,
    /// The name the target answers to from the linking service (the target when not given).
    pub alias: String,
}

/// Whether a service's networks are none (under a `network_mode`) or just the implicit `default`
/// (left out of `config` output).
pub fn is_implicit_default(networks: &BTreeMap<String, ServiceNetwork>) -> bool {
    networks.is_empty()
        || networks.len() == 1
            && networks
                .get(DEFAULT_NETWORK)
                .is_some_and(|network| *network == ServiceNetwork::default())
}

/// Whether a project's networks are just the implicit `default` (left out of `config` output).
pub fn only_implicit_default(networks: &BTreeMap<String, NetworkSpec>) -> bool {
    networks.values().all(|network| network.implicit)
}

/// The `default` network compose makes when the file declares none: `<project>_default`.
pub fn default_network(project: &str) -> NetworkSpec {
    NetworkSpec {
        name: format!("{project}_{DEFAULT_NETWORK}"),
        implicit: true,
        ..NetworkSpec::default()
    }
}

/// Services' networks in the order containers join them: highest `priority` first, then by name.
pub fn by_priority(networks: &BTreeMap<String, ServiceNetwork>) -> Vec<(&String, &ServiceNetwork)> {
    let mut ordered: Vec<(&String, &ServiceNetwork)> = networks.iter().collect();
    ordered.sort_by(|(first_key, first), (second_key, second)| {
        second
            .priority
            .cmp(&first.priority)
            .then(first_key.cmp(second_key))
    });
    ordered
}

/// A subnet in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    /// `172.28.0.0/16`, `2001:db8::/64`; the prefix must fit the address family.
    pub fn parse(text: &str) -> Option<Subnet> {
        let (address, prefix) = text.split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Subnet { address, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_contain_their_addresses() {
        let subnet = Subnet::parse("172.28.0.0/16").unwrap();
        assert!(subnet.contains("172.28.5.9".parse().unwrap()));
        assert!(!subnet.contains("172.29.0.1".parse().unwrap()));
        assert!(!subnet.contains("2001:db8::1".parse().unwrap()));
        let everything = Subnet::parse("0.0.0.0/0").unwrap();
        assert!(everything.contains("8.8.8.8".parse().unwrap()));
        let v6 = Subnet::parse("2001:db8::/64").unwrap();
        assert!(v6.contains("2001:db8::10".parse().unwrap()));
        assert!(!v6.contains("2001:db9::10".parse().unwrap()));
        for bad in [
            "172.28.0.0",
            "172.28.0.0/33",
            "nope/8",
            "10.0.0.0/x",
            "::/129",
        ] {
            assert_eq!(Subnet::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn networks_join_by_priority_then_name() {
        let network = |priority| ServiceNetwork {
            priority,
            ..ServiceNetwork::default()
        };
        let networks = BTreeMap::from([
            ("a".to_string(), network(0)),
            ("b".to_string(), network(10)),
            ("c".to_string(), network(0)),
        ]);
        let order: Vec<&str> = by_priority(&networks)
            .into_iter()
            .map(|(key, _)| key.as_str())
            .collect();
        assert_eq!(order, ["b", "a", "c"]);
    }

    #[test]
    fn covers_reads_the_ipam_subnets() {
        let spec = NetworkSpec {
            ipam: Some(Ipam {
                config: vec![IpamPool {
                    subnet: Some("10.5.0.0/24".into()),
                    ..IpamPool::default()
                }],
                ..Ipam::default()
            }),
            ..NetworkSpec::default()
        };
        assert!(spec.covers("10.5.0.7".parse().unwrap()));
        assert!(!spec.covers("10.6.0.7".parse().unwrap()));
        assert!(!NetworkSpec::default().covers("10.5.0.7".parse().unwrap()));
    }
}
