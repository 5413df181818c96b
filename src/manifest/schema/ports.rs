//! `port:` and `ports:` entries. Short forms: `"8080"`, `"9000:8080"`, `"127.0.0.1:9000:8080"`,
//! `"127.0.0.1::8080"`, `"[::1]:9000:8080"`, each with an optional `/tcp` or `/udp`; long form
//! `{target, published, host_ip, protocol}`. The host address defaults to `127.0.0.1` (compose uses
//! `0.0.0.0`; we only publish to other machines when asked).

use super::super::model::PortPublish;
use super::super::node::{Node, Value};
use super::check::{describe, join, Checker, Kind, Place};

/// Host address used when an entry names none.
pub const DEFAULT_HOST_IP: &str = "127.0.0.1";
const LONG_KEYS: &[&str] = &["target", "published", "host_ip", "protocol"];
const FORMS_HINT: &str =
    "write `\"8080\"`, `\"9000:8080\"`, `\"127.0.0.1:9000:8080\"` or `\"9000:8080/udp\"`";

/// Reads `ports:`; each entry comes back with its place.
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
        let port = match &item.value {
            Value::Mapping(_) => read_long(checker, item, &item_field),
            _ => read_short(checker, item, &item_field),
        };
        if let Some(port) = port {
            let place = Place {
                span: item.span,
                field: item_field,
            };
            ports.push((port, place));
        }
    }
    ports
}

fn read_short(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<PortPublish> {
    let text = checker.string(node, field)?;
    match parse_port(&text) {
        Ok(port) => Some(port),
        Err(message) => {
            checker.error_with_hint(node, field, message, FORMS_HINT);
            None
        }
    }
}

fn read_long(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<PortPublish> {
    let fields = checker.fields(node, field, "a port", LONG_KEYS)?;
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
    let host_port = fields
        .get("published")
        .and_then(|published| read_port_number(checker, published, &join(field, "published")));
    let host_ip = fields
        .get("host_ip")
        .and_then(|host_ip| checker.string(host_ip, &join(field, "host_ip")))
        .unwrap_or_else(|| DEFAULT_HOST_IP.to_string());
    let protocol = match fields.get("protocol") {
        Some(protocol) => read_protocol(checker, protocol, &join(field, "protocol"))?,
        None => "tcp".to_string(),
    };
    Some(PortPublish {
        host_ip,
        host_port,
        container_port: container_port?,
        protocol,
    })
}

fn read_protocol(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<String> {
    let protocol = checker.string(node, field)?;
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

/// Parses the short form of a `ports:` entry.
pub fn parse_port(text: &str) -> Result<PortPublish, String> {
    let (addresses, protocol) = match text.rsplit_once('/') {
        Some((addresses, protocol)) => (addresses, protocol),
        None => (text, "tcp"),
    };
    if protocol != "tcp" && protocol != "udp" {
        return Err(format!(
            "unknown protocol `{protocol}` in `{text}`: expected `tcp` or `udp`"
        ));
    }
    let (host_ip, rest) =
        split_host_ip(addresses).ok_or_else(|| format!("invalid port `{text}`"))?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host_port, container_port) = match (host_ip, parts.as_slice()) {
        (None, [container]) => (None, "", *container),
        (None, [host, container]) if !host.is_empty() => (None, *host, *container),
        (None, [ip, host, container]) => (Some(*ip), *host, *container),
        (Some(ip), [host, container]) => (Some(ip), *host, *container),
        _ => return Err(format!("invalid port `{text}`")),
    };
    if host_port.contains('-') || container_port.contains('-') {
        return Err(format!(
            "port ranges like `{text}` are not supported; list each port"
        ));
    }
    let number = |port: &str| {
        port.parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| {
                format!("`{port}` in `{text}` is not a port number: expected 1 to 65535")
            })
    };
    Ok(PortPublish {
        host_ip: match host_ip {
            Some("") => return Err(format!("invalid port `{text}`: empty host address")),
            Some(ip) => ip.to_string(),
            None => DEFAULT_HOST_IP.to_string(),
        },
        host_port: if host_port.is_empty() {
            None
        } else {
            Some(number(host_port)?)
        },
        container_port: number(container_port)?,
        protocol: protocol.to_string(),
    })
}

/// `[::1]:9000:8080` → (`::1`, `9000:8080`); other text unchanged.
fn split_host_ip(text: &str) -> Option<(Option<&str>, &str)> {
    match text.strip_prefix('[') {
        Some(bracketed) => {
            let (ip, rest) = bracketed.split_once(']')?;
            Some((Some(ip), rest.strip_prefix(':')?))
        }
        None => Some((None, text)),
    }
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
        PortPublish {
            host_ip: host_ip.into(),
            host_port,
            container_port,
            protocol: protocol.into(),
        }
    }

    #[test]
    fn short_forms() {
        assert_eq!(parse_port("8080"), Ok(port("127.0.0.1", None, 8080, "tcp")));
        assert_eq!(
            parse_port("9000:8080"),
            Ok(port("127.0.0.1", Some(9000), 8080, "tcp"))
        );
        assert_eq!(
            parse_port("0.0.0.0:9000:8080"),
            Ok(port("0.0.0.0", Some(9000), 8080, "tcp"))
        );
        assert_eq!(
            parse_port("127.0.0.1::8080"),
            Ok(port("127.0.0.1", None, 8080, "tcp"))
        );
        assert_eq!(
            parse_port("9000:8080/udp"),
            Ok(port("127.0.0.1", Some(9000), 8080, "udp"))
        );
        assert_eq!(
            parse_port("[::1]:9000:53/udp"),
            Ok(port("::1", Some(9000), 53, "udp"))
        );
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
            "9000-9001:8080-8081",
            ":8080",
            "[::1]9000:80",
            ":9000:80",
        ] {
            assert!(parse_port(text).is_err(), "{text:?}");
        }
    }
}
