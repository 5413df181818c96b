//! `port:`, `ports:` and `expose:` entries.
//!
//! Short forms of `ports:`: `"8080"`, `"3000-3005"`, `"9000:8080"`, `"9090-9091:8080-8081"`,
//! `"8000-8010:80"` (the engine picks a free host port in the range), `"127.0.0.1:9000:8080"`,
//! `"127.0.0.1::8080"`, `"[::1]:9000:8080"` (also `"::1:9000:8080"`), each with an optional `/tcp` or
//! `/udp`; a bare number. Long form `{target, published, host_ip, protocol, mode, name,
//! app_protocol}`. Ranges are expanded into one publish per port, as compose does.
//!
//! The host address defaults to `127.0.0.1`, where compose uses `0.0.0.0`: a sandbox is reachable
//! from other machines only when the file names an address (a deliberate security default).

use std::net::IpAddr;

use super::super::model::{ExposedPort, PortPublish};
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Kind, Place};

/// Host address used when an entry names none.
pub const DEFAULT_HOST_IP: &str = "127.0.0.1";
const LONG_KEYS: &[&str] = &[
    "target",
    "published",
    "host_ip",
    "protocol",
    "mode",
    "name",
    "app_protocol",
];
const FORMS_HINT: &str =
    "write `\"8080\"`, `\"9000:8080\"`, `\"127.0.0.1:9000:8080\"`, `\"8000-8002:80-82\"` or `\"9000:8080/udp\"`";
const EXPOSE_HINT: &str =
    "write a container port or range, like `\"3000\"`, `\"8080-8085\"` or `\"53/udp\"`";

/// An inclusive port range; a single port is `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u16,
    end: u16,
}

impl Range {
    fn len(self) -> u32 {
        u32::from(self.end - self.start) + 1
    }

    fn ports(self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

/// Reads `ports:`; each publish comes back with the place of its entry.
pub fn read_ports(
    checker: &mut Checker<'_>,
    node: &Node,
    field: &str,
) -> Vec<(PortPublish, Place)> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error_with_hint(
            node,
            field,
            format!("expected a list of ports, found {found}"),
            FORMS_HINT,
        );
        return Vec::new();
    };
    let mut ports = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let publishes = match &item.value {
            Value::Mapping(_) => read_long(checker, item, &item_field),
            _ => read_short(checker, item, &item_field),
        };
        for port in publishes.unwrap_or_default() {
            let place = Place {
                span: item.span,
                field: item_field.clone(),
            };
            ports.push((port, place));
        }
    }
    ports
}

fn read_short(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Vec<PortPublish>> {
    let text = checker.string(node, field)?;
    match parse_ports(&text) {
        Ok(ports) => Some(ports),
        Err(message) => {
            checker.error_with_hint(node, field, message, FORMS_HINT);
            None
        }
    }
}

fn read_long(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<Vec<PortPublish>> {
    let fields = checker.fields(node, field, "a port", LONG_KEYS)?;
    let errors_before = checker.errors.len();
    let text = |checker: &mut Checker<'_>, key: &str| {
        fields
            .get(key)
            .and_then(|value| checker.string(value, &join(field, key)))
    };
    let container_port = match fields.get("target") {
        Some(target) => read_port_number(checker, target, &join(field, "target")),
        None => {
            checker.error_with_hint(
                node,
                field,
                "missing field `target`",
                "`target` is the port inside the container",
            );
            None
        }
    };
    let published = match fields.get("published") {
        Some(published) => {
            let published_field = join(field, "published");
            let text = checker.string(published, &published_field)?;
            match parse_range(&text) {
                Ok(range) => Some(range),
                Err(message) => {
                    checker.error_with_hint(
                        published,
                        &published_field,
                        message,
                        "write a host port like `8080`, or a range like `\"8000-8010\"`",
                    );
                    None
                }
            }
        }
        None => None,
    };
    let host_ip = match fields.get("host_ip") {
        Some(value) => {
            let host_ip_field = join(field, "host_ip");
            let address = checker.string(value, &host_ip_field)?;
            if let Err(message) = check_address(&address) {
                checker.error(value, &host_ip_field, message);
            }
            address
        }
        None => DEFAULT_HOST_IP.to_string(),
    };
    let protocol = match fields.get("protocol") {
        Some(value) => read_protocol(checker, value, &join(field, "protocol")),
        None => Some("tcp".to_string()),
    };
    if let Some(mode) = fields.get("mode") {
        let mode_field = join(field, "mode");
        if let Some(text) = checker.string(mode, &mode_field) {
            if text != "host" && text != "ingress" {
                checker.error_with_hint(
                    mode,
                    &mode_field,
                    format!("unknown port mode `{text}`"),
                    "use `host` or `ingress` (both publish on this engine's host)",
                );
            }
        }
    }
    let name = text(checker, "name");
    let app_protocol = text(checker, "app_protocol");
    if checker.errors.len() > errors_before {
        return None;
    }
    let mut port = PortPublish::new(&host_ip, None, container_port?, &protocol?);
    port.name = name;
    port.app_protocol = app_protocol;
    if let Some(range) = published {
        port.host_port = Some(range.start);
        port.host_port_end = (range.end != range.start).then_some(range.end);
    }
    Some(vec![port])
}

fn read_protocol(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let protocol = checker.string(node, field)?.to_lowercase();
    if protocol == "tcp" || protocol == "udp" {
        return Some(protocol);
    }
    checker.error(
        node,
        field,
        format!("unknown protocol `{protocol}`: expected `tcp` or `udp`"),
    );
    None
}

/// A port number 1–65535, written as an integer or a string.
pub fn read_port_number(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<u16> {
    let scalar = checker.scalar(node, field, "a port number")?;
    let number = match scalar.kind {
        Kind::Integer(number) => Some(number),
        Kind::Text => scalar.text.trim().parse().ok(),
        _ => None,
    };
    match number
        .and_then(|number| u16::try_from(number).ok())
        .filter(|number| *number > 0)
    {
        Some(port) => Some(port),
        None => {
            let message = format!(
                "`{}` is not a port number: expected 1 to 65535",
                scalar.text
            );
            checker.error(node, field, message);
            None
        }
    }
}

/// Reads `expose:`: container ports or ranges, numbers or strings, with an optional protocol.
pub fn read_expose(checker: &mut Checker<'_>, node: &Node, field: &str) -> Vec<ExposedPort> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        let message = format!("expected a list of ports, found {found}");
        checker.error_with_hint(node, field, message, EXPOSE_HINT);
        return Vec::new();
    };
    let mut exposed: Vec<ExposedPort> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(text) = checker.string(item, &item_field) else {
            continue;
        };
        match parse_expose(&text) {
            Ok(ports) => {
                for port in ports {
                    if !exposed.contains(&port) {
                        exposed.push(port);
                    }
                }
            }
            Err(message) => checker.error_with_hint(item, &item_field, message, EXPOSE_HINT),
        }
    }
    exposed
}

/// `"8080-8082/udp"` → three exposed UDP ports.
pub fn parse_expose(text: &str) -> Result<Vec<ExposedPort>, String> {
    let (ports, protocol) = split_protocol(text)?;
    if ports.contains(':') {
        return Err(format!(
            "`{text}` names a host port; `expose` takes container ports only (publish with `ports:`)"
        ));
    }
    let range = parse_range_in(ports, Some(text))?;
    Ok(range
        .ports()
        .map(|port| ExposedPort {
            port,
            protocol: protocol.to_string(),
        })
        .collect())
}

/// `"9000:80/udp"` → (`"9000:80"`, `udp`).
fn split_protocol(text: &str) -> Result<(&str, &str), String> {
    match text.rsplit_once('/') {
        Some((ports, protocol)) if protocol == "tcp" || protocol == "udp" => Ok((ports, protocol)),
        Some((_, protocol)) => Err(format!(
            "unknown protocol `{protocol}` in `{text}`: expected `tcp` or `udp`"
        )),
        None => Ok((text, "tcp")),
    }
}

/// Parses the short form of a `ports:` entry into one publish per port.
pub fn parse_ports(text: &str) -> Result<Vec<PortPublish>, String> {
    let (addresses, protocol) = split_protocol(text)?;
    let parts: Vec<&str> = addresses.split(':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [container] => (None, "", *container),
        [host, container] => (None, *host, *container),
        [ip, host, container] => (Some(*ip), *host, *container),
        [ip @ .., host, container] => (Some(&addresses[..ip.join(":").len()]), *host, *container),
        [] => return Err(format!("invalid port `{text}`")),
    };
    let host_ip = match host_ip {
        None => DEFAULT_HOST_IP.to_string(),
        Some("") => return Err(format!("invalid port `{text}`: empty host address")),
        Some(ip) => {
            let ip = ip
                .strip_prefix('[')
                .and_then(|ip| ip.strip_suffix(']'))
                .unwrap_or(ip);
            check_address(ip).map_err(|message| format!("{message} in `{text}`"))?;
            ip.to_string()
        }
    };
    if host.is_empty() && parts.len() == 2 {
        return Err(format!("invalid port `{text}`: empty host port"));
    }
    let container = parse_range_in(container, Some(text))?;
    let host = if host.is_empty() {
        None
    } else {
        Some(parse_range_in(host, Some(text))?)
    };
    let publish = |host_port: Option<u16>, host_port_end: Option<u16>, container_port: u16| {
        let mut port = PortPublish::new(&host_ip, host_port, container_port, protocol);
        port.host_port_end = host_port_end;
        port
    };
    match host {
        None => Ok(container
            .ports()
            .map(|port| publish(None, None, port))
            .collect()),
        Some(host) if host.len() == container.len() => Ok(host
            .ports()
            .zip(container.ports())
            .map(|(host_port, container_port)| publish(Some(host_port), None, container_port))
            .collect()),
        Some(host) if container.len() == 1 => Ok(vec![publish(
            Some(host.start),
            Some(host.end),
            container.start,
        )]),
        Some(host) => Err(format!(
            "the host range of `{text}` has {} ports and the container range {}: they must match",
            host.len(),
            container.len()
        )),
    }
}

/// `"8080"` or `"8000-8010"`.
fn parse_range(text: &str) -> Result<Range, String> {
    parse_range_in(text, None)
}

/// [`parse_range`] with errors naming the whole entry (`within`).
fn parse_range_in(text: &str, within: Option<&str>) -> Result<Range, String> {
    let inside = within.map_or_else(String::new, |entry| format!(" in `{entry}`"));
    let number = |port: &str| {
        port.trim()
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| format!("`{port}`{inside} is not a port number: expected 1 to 65535"))
    };
    let range = match text.split_once('-') {
        Some((start, end)) => Range {
            start: number(start)?,
            end: number(end)?,
        },
        None => {
            let port = number(text)?;
            Range {
                start: port,
                end: port,
            }
        }
    };
    if range.end < range.start {
        return Err(format!(
            "the port range `{text}`{inside} ends before it starts"
        ));
    }
    Ok(range)
}

fn check_address(address: &str) -> Result<(), String> {
    address
        .parse::<IpAddr>()
        .map(drop)
        .map_err(|_| format!("`{address}` is not an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(
        host_ip: &str,
        host_port: Option<u16>,
        container_port: u16,
        protocol: &str,
    ) -> PortPublish {
        PortPublish::new(host_ip, host_port, container_port, protocol)
    }

    fn one(text: &str) -> PortPublish {
        let mut ports = parse_ports(text).expect(text);
        assert_eq!(ports.len(), 1, "{text}");
        ports.remove(0)
    }

    #[test]
    fn short_forms() {
        assert_eq!(one("8080"), port("127.0.0.1", None, 8080, "tcp"));
        assert_eq!(one("9000:8080"), port("127.0.0.1", Some(9000), 8080, "tcp"));
        assert_eq!(
            one("0.0.0.0:9000:8080"),
            port("0.0.0.0", Some(9000), 8080, "tcp")
        );
        assert_eq!(one("127.0.0.1::8080"), port("127.0.0.1", None, 8080, "tcp"));
        assert_eq!(
            one("9000:8080/udp"),
            port("127.0.0.1", Some(9000), 8080, "udp")
        );
        assert_eq!(one("[::1]:9000:53/udp"), port("::1", Some(9000), 53, "udp"));
        assert_eq!(one("::1:6000:6000"), port("::1", Some(6000), 6000, "tcp"));
    }

    #[test]
    fn ranges_expand_to_one_publish_per_port() {
        assert_eq!(
            parse_ports("8000-8002:80-82"),
            Ok(vec![
                port("127.0.0.1", Some(8000), 80, "tcp"),
                port("127.0.0.1", Some(8001), 81, "tcp"),
                port("127.0.0.1", Some(8002), 82, "tcp"),
            ])
        );
        assert_eq!(
            parse_ports("9000-9001/udp"),
            Ok(vec![
                port("127.0.0.1", None, 9000, "udp"),
                port("127.0.0.1", None, 9001, "udp"),
            ])
        );
        let ranged = one("127.0.0.1:8000-8010:80");
        assert_eq!(ranged.host_port_text(), "8000-8010");
        assert_eq!(ranged.container_port, 80);
    }

    #[test]
    fn bad_short_forms() {
        for text in [
            "",
            "0",
            "70000",
            "a:b",
            "1:2:3:4",
            "9000:8080/sctp",
            "9000-9002:8080-8081",
            "9002-9000:80",
            ":8080",
            "[::1]9000:80",
            ":9000:80",
            "300.1.1.1:80:80",
            "localhost:80:80",
        ] {
            assert!(parse_ports(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn expose_forms() {
        let exposed = |port: u16, protocol: &str| ExposedPort {
            port,
            protocol: protocol.into(),
        };
        assert_eq!(parse_expose("3000"), Ok(vec![exposed(3000, "tcp")]));
        assert_eq!(
            parse_expose("8080-8081/udp"),
            Ok(vec![exposed(8080, "udp"), exposed(8081, "udp")])
        );
        for text in ["", "80:80", "x", "80/sctp", "0"] {
            assert!(parse_expose(text).is_err(), "{text:?}");
        }
    }
}
