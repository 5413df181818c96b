//! A service's `networks` (list or map with aliases, static addresses, priorities), its
//! `network_mode`, `links` and `external_links`, with the places the checks across services use.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::super::super::model::{Link, NetworkMode, ServiceNetwork};
use super::super::super::node::{Node, Value};
use super::super::check::{describe, join, Checker, Fields, Kind, Place};
use super::super::environment::read_string_map;
use super::read_address;

const SERVICE_NETWORK_KEYS: &[&str] = &[
    "aliases",
    "ipv4_address",
    "ipv6_address",
    "link_local_ips",
    "mac_address",
    "priority",
    "gw_priority",
    "driver_opts",
    "interface_name",
];
const MODE_HINT: &str = "use `bridge`, `host`, `none`, `service:NAME` or `container:NAME`";

/// Where a service names networks, links and its `network_mode` (for checks across services).
#[derive(Default)]
pub struct ServicePlaces {
    /// Each network the service names, where.
    pub networks: BTreeMap<String, Place>,
    /// Parallel to `Service::links`.
    pub links: Vec<Place>,
    /// The `network_mode` value.
    pub mode: Option<Place>,
    /// Static addresses: network, address, where.
    pub addresses: Vec<(String, IpAddr, Place)>,
}

/// What a service says about its networking.
#[derive(Default)]
pub struct ServiceNetworking {
    pub networks: BTreeMap<String, ServiceNetwork>,
    pub network_mode: NetworkMode,
    pub links: Vec<Link>,
    pub external_links: Vec<Link>,
    pub places: ServicePlaces,
}

/// A service's `networks`, `network_mode`, `links` and `external_links`.
pub fn read_service(
    checker: &mut Checker<'_>,
    fields: &Fields<'_>,
    field: &str,
) -> ServiceNetworking {
    let mut networking = ServiceNetworking::default();
    if let Some(node) = fields.get("networks") {
        read_service_networks(checker, node, &join(field, "networks"), &mut networking);
    }
    if let Some(node) = fields.get("network_mode") {
        let mode_field = join(field, "network_mode");
        if let Some(mode) = read_mode(checker, node, &mode_field) {
            networking.network_mode = mode;
            networking.places.mode = Some(Place {
                span: node.span,
                field: mode_field.clone(),
            });
            if fields.get("networks").is_some() {
                checker.error_with_hint(
                    node,
                    &mode_field,
                    "`network_mode` cannot be used together with `networks`",
                    "keep `networks:` to join the project's networks, or `network_mode:` alone",
                );
            }
        }
    }
    for (key, external) in [("links", false), ("external_links", true)] {
        let Some(node) = fields.get(key) else {
            continue;
        };
        for (link, place) in read_links(checker, node, &join(field, key)) {
            if external {
                networking.external_links.push(link);
            } else {
                networking.links.push(link);
                networking.places.links.push(place);
            }
        }
    }
    networking
}

fn read_service_networks(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
    networking: &mut ServiceNetworking,
) {
    match &node.value {
        Value::Sequence(items) => {
            for (name, item, place) in checker.listed(items, field) {
                let item_field = place.field.clone();
                if networking
                    .places
                    .networks
                    .insert(name.clone(), place)
                    .is_some()
                {
                    checker.error(
                        item,
                        &item_field,
                        format!("network `{name}` is listed twice"),
                    );
                }
                networking.networks.insert(name, ServiceNetwork::default());
            }
        }
        Value::Mapping(_) => {
            for entry in checker
                .entries(node, field, "a list or map of networks")
                .unwrap_or_default()
            {
                let entry_field = join(field, entry.key);
                let place = Place {
                    span: entry.key_node.span,
                    field: entry_field.clone(),
                };
                let settings = read_service_network(checker, entry.value, &entry_field, entry.key);
                if let Some((settings, addresses)) = settings {
                    for (address, node, key) in addresses {
                        networking.places.addresses.push((
                            entry.key.to_string(),
                            address,
                            Place {
                                span: node.span,
                                field: join(&entry_field, key),
                            },
                        ));
                    }
                    networking.networks.insert(entry.key.to_string(), settings);
                }
                networking
                    .places
                    .networks
                    .insert(entry.key.to_string(), place);
            }
        }
        Value::Scalar { .. } => {
            let found = describe(node);
            checker.error_with_hint(
                node,
                field,
                format!("expected a list or map of networks, found {found}"),
                "write `networks: [front, back]`, or `networks: {back: {aliases: [db]}}`",
            );
        }
    }
}

type StaticAddresses<'n> = Vec<(IpAddr, &'n Node, &'static str)>;

/// One `networks: {NAME: {...}}` entry; also the static addresses with their nodes.
fn read_service_network<'n>(
    checker: &mut Checker<'_>,
    node: &'n Node,
    field: &str,
    key: &str,
) -> Option<(ServiceNetwork, StaticAddresses<'n>)> {
    let mut settings = ServiceNetwork::default();
    let mut addresses = Vec::new();
    if node.is_null() {
        return Some((settings, addresses));
    }
    let what = format!("network `{key}` of the service");
    let fields = checker.fields(node, field, &what, SERVICE_NETWORK_KEYS)?;
    let key_field = |name: &str| join(field, name);
    if let Some(node) = fields.get("aliases") {
        settings.aliases = checker
            .strings(node, &key_field("aliases"), false)
            .unwrap_or_default();
    }
    if let Some(node) = fields.get("ipv4_address") {
        match read_address(checker, node, &key_field("ipv4_address")) {
            Some(IpAddr::V4(address)) => {
                settings.ipv4_address = Some(address);
                addresses.push((IpAddr::V4(address), node, "ipv4_address"));
            }
            Some(IpAddr::V6(address)) => checker.error_with_hint(
                node,
                &key_field("ipv4_address"),
                format!("`{address}` is an IPv6 address"),
                "write it as `ipv6_address`",
            ),
            None => {}
        }
    }
    if let Some(node) = fields.get("ipv6_address") {
        match read_address(checker, node, &key_field("ipv6_address")) {
            Some(IpAddr::V6(address)) => {
                settings.ipv6_address = Some(address);
                addresses.push((IpAddr::V6(address), node, "ipv6_address"));
            }
            Some(IpAddr::V4(address)) => checker.error_with_hint(
                node,
                &key_field("ipv6_address"),
                format!("`{address}` is an IPv4 address"),
                "write it as `ipv4_address`",
            ),
            None => {}
        }
    }
    if let Some(node) = fields.get("link_local_ips") {
        let list_field = key_field("link_local_ips");
        if let Value::Sequence(items) = &node.value {
            for (index, item) in items.iter().enumerate() {
                if let Some(address) =
                    read_address(checker, item, &format!("{list_field}[{index}]"))
                {
                    settings.link_local_ips.push(address);
                }
            }
        } else {
            let found = describe(node);
            checker.error(
                node,
                &list_field,
                format!("expected a list of addresses, found {found}"),
            );
        }
    }
    if let Some(node) = fields.get("mac_address") {
        settings.mac_address = read_mac(checker, node, &key_field("mac_address"));
    }
    settings.priority = fields
        .get("priority")
        .and_then(|node| checker.integer(node, &key_field("priority")))
        .unwrap_or(0);
    settings.gw_priority = fields
        .get("gw_priority")
        .and_then(|node| checker.integer(node, &key_field("gw_priority")))
        .unwrap_or(0);
    if let Some(node) = fields.get("driver_opts") {
        settings.driver_opts =
            read_string_map(checker, node, &key_field("driver_opts"), "a map of options");
    }
    if let Some(node) = fields.get("interface_name") {
        checker.warning(
            node,
            &key_field("interface_name"),
            "`interface_name` is not applied",
            "naming the interface needs Docker Engine 28.1 (API 1.49); the engine names it",
        );
    }
    Some((settings, addresses))
}

/// `aa:bb:cc:dd:ee:ff` (either case; `-` separators too), stored lower-case with `:`.
fn read_mac(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let text = checker.string(node, field)?;
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let valid = parts.len() == 6
        && parts
            .iter()
            .all(|part| part.len() == 2 && part.chars().all(|digit| digit.is_ascii_hexdigit()));
    if !valid {
        checker.error_with_hint(
            node,
            field,
            format!("`{text}` is not a MAC address"),
            "write six hexadecimal pairs, like `02:42:ac:11:00:02`",
        );
        return None;
    }
    Some(parts.join(":").to_lowercase())
}

fn read_mode(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<NetworkMode> {
    let text = checker.string(node, field)?;
    let mode = match text.as_str() {
        "bridge" | "default" => Some(NetworkMode::Bridge),
        "host" => Some(NetworkMode::Host),
        "none" => Some(NetworkMode::None),
        other => match other.split_once(':') {
            Some(("service", name)) if !name.is_empty() => {
                Some(NetworkMode::Service(name.to_string()))
            }
            Some(("container", name)) if !name.is_empty() => {
                Some(NetworkMode::Container(name.to_string()))
            }
            _ => None,
        },
    };
    if mode.is_none() {
        checker.error_with_hint(
            node,
            field,
            format!("unknown network mode `{text}`"),
            if text.contains(':') {
                MODE_HINT.to_string()
            } else {
                format!("{MODE_HINT}; to join a network of the project, use `networks: [{text}]`")
            },
        );
    }
    mode
}

/// `SERVICE` or `SERVICE:ALIAS` entries.
fn read_links(checker: &mut Checker<'_>, node: &Node, field: &str) -> Vec<(Link, Place)> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error_with_hint(
            node,
            field,
            format!("expected a list of links, found {found}"),
            "write `[db, db:database]`",
        );
        return Vec::new();
    };
    let mut links = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(scalar) = checker.scalar(item, &item_field, "a link") else {
            continue;
        };
        let text = scalar.text;
        let (target, alias) = text.split_once(':').unwrap_or((&text, &text));
        if target.is_empty() || alias.is_empty() || alias.contains(':') || scalar.kind == Kind::Null
        {
            checker.error_with_hint(
                item,
                &item_field,
                format!("`{text}` is not a link"),
                "write `SERVICE` or `SERVICE:ALIAS`",
            );
            continue;
        }
        let place = Place {
            span: item.span,
            field: item_field,
        };
        links.push((
            Link {
                target: target.to_string(),
                alias: alias.to_string(),
            },
            place,
        ));
    }
    links
}
