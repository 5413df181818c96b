//! Networks: the top-level `networks:` map, a service's `networks`, `network_mode`, `links` and
//! `external_links`, and the checks across services (networks declared, static addresses inside a
//! declared subnet, link and `service:` targets that exist, which also become dependencies).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::super::model::{
    DependencyCondition, Ipam, IpamPool, NetworkMode, NetworkSpec, ServiceNetwork, Subnet,
    DEFAULT_NETWORK,
};
use super::super::node::{Node, Value};
use super::super::suggest;
use super::check::{describe, join, Checker, Fields, Place};
use super::environment;
use super::service::{DependencyPlace, ServiceDraft};

const NETWORK_KEYS: &[&str] = &[
    "name",
    "driver",
    "driver_opts",
    "ipam",
    "external",
    "internal",
    "attachable",
    "enable_ipv6",
    "enable_ipv4",
    "labels",
];
const IPAM_KEYS: &[&str] = &["driver", "config", "options"];
const POOL_KEYS: &[&str] = &["subnet", "ip_range", "gateway", "aux_addresses"];
const EXTERNAL_KEYS: &[&str] = &["name"];

mod service;

pub use service::{read_service, ServicePlaces};

/// A declared network with the place of its key.
pub struct Declared {
    pub spec: NetworkSpec,
    pub place: Place,
}

/// Network keys name compose resources: `[a-zA-Z0-9._-]+`.
fn is_network_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-')
        })
}

/// The top-level `networks:` map.
pub fn read(checker: &mut Checker<'_>, node: &Node, project: &str) -> BTreeMap<String, Declared> {
    let mut declared = BTreeMap::new();
    if node.is_null() {
        return declared; // `networks:` with nothing under it
    }
    let Some(entries) = checker.entries(node, "networks", "a map of network names") else {
        return declared;
    };
    for entry in entries {
        let field = join("networks", entry.key);
        let place = Place {
            span: entry.key_node.span,
            field: field.clone(),
        };
        if !is_network_key(entry.key) {
            checker.error_with_hint(
                entry.key_node,
                &field,
                format!("invalid network name `{}`", entry.key),
                "use letters, digits, `.`, `_` and `-`",
            );
            continue;
        }
        if let Some(spec) = read_network(checker, entry.key, entry.value, &field, project) {
            declared.insert(entry.key.to_string(), Declared { spec, place });
        }
    }
    declared
}

fn read_network(
    checker: &mut Checker<'_>,
    key: &str,
    node: &Node,
    field: &str,
    project: &str,
) -> Option<NetworkSpec> {
    let mut spec = NetworkSpec {
        name: format!("{project}_{key}"),
        ..NetworkSpec::default()
    };
    if node.is_null() {
        return Some(spec);
    }
    let what = format!("network `{key}`");
    let fields = checker.fields(node, field, &what, NETWORK_KEYS)?;
    let key_field = |name: &str| join(field, name);
    let mut external_name = None;
    if let Some(node) = fields.get("external") {
        (spec.external, external_name) = read_external(checker, node, &key_field("external"));
    }
    let name = fields
        .get("name")
        .and_then(|node| checker.string(node, &key_field("name")));
    spec.name = match (name, external_name, spec.external) {
        (Some(name), _, _) => name,
        (None, Some(name), _) => name,
        (None, None, true) => key.to_string(),
        (None, None, false) => spec.name,
    };
    if spec.external {
        reject_with_external(checker, &fields, field);
        return Some(spec);
    }
    spec.driver = fields
        .get("driver")
        .and_then(|node| checker.string(node, &key_field("driver")));
    if let Some(node) = fields.get("driver_opts") {
        spec.driver_opts = environment::read_string_map(
            checker,
            node,
            &key_field("driver_opts"),
            "a map of options",
        );
    }
    if let Some(node) = fields.get("ipam") {
        spec.ipam = read_ipam(checker, node, &key_field("ipam"));
    }
    let mut flag = |name: &str| {
        fields
            .get(name)
            .and_then(|node| checker.boolean(node, &key_field(name)))
    };
    spec.internal = flag("internal").unwrap_or(false);
    spec.attachable = flag("attachable").unwrap_or(false);
    spec.enable_ipv6 = flag("enable_ipv6");
    if let Some(node) = fields.get("enable_ipv4") {
        if checker.boolean(node, &key_field("enable_ipv4")) == Some(false) {
            checker.warning(
                node,
                &key_field("enable_ipv4"),
                "`enable_ipv4: false` is not applied",
                "turning IPv4 off needs Docker Engine 28 (API 1.47); the network keeps IPv4",
            );
        }
    }
    if let Some(node) = fields.get("labels") {
        spec.labels = environment::read_labels(checker, node, &key_field("labels"));
    }
    Some(spec)
}

/// `external: true`, `external: false`, or the obsolete `external: {name: NAME}`.
fn read_external(checker: &mut Checker<'_>, node: &Node, field: &str) -> (bool, Option<String>) {
    if let Value::Mapping(_) = node.value {
        let Some(fields) = checker.fields(node, field, "`external`", EXTERNAL_KEYS) else {
            return (true, None);
        };
        let name = fields
            .get("name")
            .and_then(|name| checker.string(name, &join(field, "name")));
        return (true, name);
    }
    (checker.boolean(node, field).unwrap_or(false), None)
}

/// An external network is used as it is: only `name` may go with it (compose's rule).
fn reject_with_external(checker: &mut Checker<'_>, fields: &Fields<'_>, field: &str) {
    for key in NETWORK_KEYS
        .iter()
        .filter(|key| !matches!(**key, "name" | "external"))
    {
        if let Some(node) = fields.get(key) {
            checker.error_with_hint(
                node,
                &join(field, key),
                format!("an external network cannot set `{key}`"),
                "sandbox uses an external network as it is; remove the key, or remove `external: true` to let sandbox create the network",
            );
        }
    }
}

fn read_ipam(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Ipam> {
    let fields = checker.fields(node, field, "`ipam`", IPAM_KEYS)?;
    let mut ipam = Ipam {
        driver: fields
            .get("driver")
            .and_then(|node| checker.string(node, &join(field, "driver"))),
        ..Ipam::default()
    };
    if let Some(node) = fields.get("options") {
        ipam.options = environment::read_string_map(
            checker,
            node,
            &join(field, "options"),
            "a map of options",
        );
    }
    if let Some(node) = fields.get("config") {
        let config_field = join(field, "config");
        match &node.value {
            Value::Sequence(items) => {
                for (index, item) in items.iter().enumerate() {
                    let item_field = format!("{config_field}[{index}]");
                    if let Some(pool) = read_pool(checker, item, &item_field) {
                        ipam.config.push(pool);
                    }
                }
            }
            _ => {
                let found = describe(node);
                checker.error_with_hint(
                    node,
                    &config_field,
                    format!("expected a list of address pools, found {found}"),
                    "write `config: [{subnet: 172.28.0.0/16}]`",
                );
            }
        }
    }
    Some(ipam)
}

fn read_pool(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<IpamPool> {
    let fields = checker.fields(node, field, "an address pool", POOL_KEYS)?;
    let mut cidr = |key: &str| {
        let node = fields.get(key)?;
        let key_field = join(field, key);
        let text = checker.string(node, &key_field)?;
        if Subnet::parse(&text).is_none() {
            checker.error_with_hint(
                node,
                &key_field,
                format!("`{text}` is not a subnet in CIDR notation"),
                "write an address and a prefix length, like `172.28.0.0/16`",
            );
            return None;
        }
        Some(text)
    };
    let subnet = cidr("subnet");
    let ip_range = cidr("ip_range");
    let gateway = fields
        .get("gateway")
        .and_then(|node| read_address(checker, node, &join(field, "gateway")))
        .map(|address| address.to_string());
    let mut aux_addresses = BTreeMap::new();
    if let Some(node) = fields.get("aux_addresses") {
        let aux_field = join(field, "aux_addresses");
        for entry in checker
            .entries(node, &aux_field, "a map of host names to addresses")
            .unwrap_or_default()
        {
            if let Some(address) = read_address(checker, entry.value, &join(&aux_field, entry.key))
            {
                aux_addresses.insert(entry.key.to_string(), address.to_string());
            }
        }
    }
    let subnet_parsed = subnet.as_deref().and_then(Subnet::parse);
    for (key, value) in [("gateway", &gateway), ("ip_range", &ip_range)] {
        let address = value
            .as_deref()
            .and_then(|text| text.split('/').next()?.parse::<IpAddr>().ok());
        if let (Some(subnet), Some(address), Some(node)) = (subnet_parsed, address, fields.get(key))
        {
            if !subnet.contains(address) {
                checker.error_with_hint(
                    node,
                    &join(field, key),
                    format!(
                        "`{key}` {address} is outside the subnet {}",
                        subnet_text(&subnet)
                    ),
                    "choose an address inside `subnet`",
                );
            }
        }
    }
    Some(IpamPool {
        subnet,
        ip_range,
        gateway,
        aux_addresses,
    })
}

fn subnet_text(subnet: &Subnet) -> String {
    format!("{}/{}", subnet.address, subnet.prefix)
}

/// An IPv4 or IPv6 address.
pub(super) fn read_address(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<IpAddr> {
    let text = checker.string(node, field)?;
    match text.parse::<IpAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            checker.error_with_hint(
                node,
                field,
                format!("`{text}` is not an IP address"),
                "write an IPv4 address like `172.28.0.10` or an IPv6 one like `2001:db8::10`",
            );
            None
        }
    }
}

/// Checks across services, fills the implicit `default` network and makes links and `service:`
/// modes dependencies (started), as compose does. Returns the project's networks.
pub fn resolve(
    checker: &mut Checker<'_>,
    services: &mut [ServiceDraft],
    declared: BTreeMap<String, Declared>,
    project: &str,
) -> BTreeMap<String, NetworkSpec> {
    let names: Vec<String> = services
        .iter()
        .map(|draft| draft.service.name.clone())
        .collect();
    let mut uses_default = false;
    for draft in services.iter_mut() {
        let service = &mut draft.service;
        if service.network_mode.is_networks() && service.networks.is_empty() {
            service
                .networks
                .insert(DEFAULT_NETWORK.to_string(), ServiceNetwork::default());
        }
        uses_default |= service.networks.contains_key(DEFAULT_NETWORK);
        check_networks(checker, draft, &declared);
        link_dependencies(checker, draft, &names);
    }
    let mut networks: BTreeMap<String, NetworkSpec> = declared
        .into_iter()
        .map(|(key, declared)| (key, declared.spec))
        .collect();
    if uses_default && !networks.contains_key(DEFAULT_NETWORK) {
        networks.insert(
            DEFAULT_NETWORK.to_string(),
            super::super::model::default_network(project),
        );
    }
    networks
}

fn check_networks(
    checker: &mut Checker<'_>,
    draft: &ServiceDraft,
    declared: &BTreeMap<String, Declared>,
) {
    let service = &draft.service.name;
    let keys: Vec<&str> = declared.keys().map(String::as_str).collect();
    for (network, place) in &draft.networking.networks {
        if network == DEFAULT_NETWORK || declared.contains_key(network) {
            continue;
        }
        let hint = match suggest::did_you_mean(network, keys.iter().copied()) {
            Some(name) => format!("did you mean `{name}`?"),
            None => format!("declare it at the top level: `networks: {{{network}: {{}}}}`"),
        };
        let message =
            format!("service `{service}` uses network `{network}`, which is not declared");
        checker.error_at(Some(place.span), &place.field, message, Some(hint));
    }
    for (network, address, place) in &draft.networking.addresses {
        if draft.service.replicas > 1 {
            let message = format!(
                "service `{service}` has {} replicas but a fixed address {address} on network `{network}`",
                draft.service.replicas
            );
            let hint =
                "each replica needs its own address: remove the fixed address, or run one replica";
            checker.error_at(
                Some(place.span),
                &place.field,
                message,
                Some(hint.to_string()),
            );
        }
        let Some(declared) = declared.get(network) else {
            continue;
        };
        if declared.spec.external || declared.spec.covers(*address) {
            continue;
        }
        let message = format!(
            "address {address} of service `{service}` is not in a subnet of network `{network}`"
        );
        let hint = format!(
            "a fixed address needs an `ipam` subnet that holds it, like `networks: {{{network}: {{ipam: {{config: [{{subnet: ...}}]}}}}}}` (line {})",
            declared.place.span.line
        );
        checker.error_at(Some(place.span), &place.field, message, Some(hint));
    }
}

/// Links and `network_mode: service:NAME` name services that must exist; each becomes a
/// dependency (started) unless `depends_on` already names it.
fn link_dependencies(checker: &mut Checker<'_>, draft: &mut ServiceDraft, names: &[String]) {
    let service = draft.service.name.clone();
    let mut targets: Vec<(String, Place, &str)> = draft
        .service
        .links
        .iter()
        .zip(&draft.networking.links)
        .map(|(link, place)| (link.target.clone(), place.clone(), "links to"))
        .collect();
    if let (NetworkMode::Service(target), Some(place)) =
        (&draft.service.network_mode, &draft.networking.mode)
    {
        targets.push((target.clone(), place.clone(), "uses the network of"));
    }
    let candidates: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| *name != service)
        .collect();
    for (target, place, verb) in targets {
        if target == service || !names.contains(&target) {
            let hint = match suggest::did_you_mean(&target, candidates.iter().copied()) {
                Some(name) => format!("did you mean `{name}`?"),
                None if target == service => "name another service".to_string(),
                None => format!("the services are: {}", suggest::list(&candidates)),
            };
            let what = if target == service {
                "itself".to_string()
            } else {
                format!("`{target}`, which is not a service")
            };
            let message = format!("service `{service}` {verb} {what}");
            checker.error_at(Some(place.span), &place.field, message, Some(hint));
            continue;
        }
        if draft.service.depends_on.contains_key(&target) {
            continue;
        }
        draft
            .service
            .depends_on
            .insert(target.clone(), DependencyCondition::Started);
        draft.dependencies.insert(
            target,
            DependencyPlace {
                place,
                condition: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::is_network_key;

    #[test]
    fn network_keys() {
        for key in ["front", "back-tier", "a.b", "A_1"] {
            assert!(is_network_key(key), "{key}");
        }
        for key in ["", "a b", "a/b", "é"] {
            assert!(!is_network_key(key), "{key}");
        }
    }
}
