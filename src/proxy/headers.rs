//! Header handling shared by both directions: hop-by-hop headers, `X-Forwarded-*`, request ids.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::message::Headers;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1): `Connection`,
/// `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Trailer`,
/// `Transfer-Encoding`.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    is_hop_by_hop_name(name.as_str().as_bytes())
}

/// [`is_hop_by_hop`] on a name's text, in any case. Most names are ruled out by their length.
pub fn is_hop_by_hop_name(name: &[u8]) -> bool {
    let candidates: &[&[u8]] = match name.len() {
        2 => &[b"te"],
        7 => &[b"trailer"],
        10 => &[b"connection", b"keep-alive"],
        16 => &[b"proxy-connection"],
        17 => &[b"transfer-encoding"],
        18 => &[b"proxy-authenticate"],
        19 => &[b"proxy-authorization"],
        _ => return false,
    };
    candidates
        .iter()
        .any(|known| known.eq_ignore_ascii_case(name))
}

/// Whether the request asks to switch protocols (WebSocket and the like).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers and those the `Connection` header names. With `upgrade`, keeps
/// `Connection: upgrade` and `Upgrade` so the switch reaches the other side.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // One pass over the names, compared with the `Connection` tokens (split once, no names
    // built, nothing allocated unless there are many); most messages have none or one
    // (`Connection: keep-alive`).
    let mut tokens: [&str; 8] = [""; 8];
    let mut extra: Vec<&str> = Vec::new();
    let mut token_count = 0;
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',') {
            let token = token.trim();
            match tokens.get_mut(token_count) {
                Some(slot) => *slot = token,
                None => extra.push(token),
            }
            token_count += 1;
        }
    }
    let listed = &tokens[..token_count.min(tokens.len())];
    let named = |name: &HeaderName| {
        let name = name.as_str();
        listed
            .iter()
            .chain(&extra)
            .any(|token| token.len() == name.len() && token.eq_ignore_ascii_case(name))
    };
    let mut few: [Option<HeaderName>; 4] = Default::default();
    let mut more: Vec<HeaderName> = Vec::new();
    let mut count = 0;
    for name in headers.keys() {
        let doomed = if *name == header::UPGRADE {
            !upgrade
        } else {
            is_hop_by_hop(name) || named(name)
        };
        if doomed {
            match few.get_mut(count) {
                Some(slot) => *slot = Some(name.clone()),
                None => more.push(name.clone()),
            }
            count += 1;
        }
    }
    for name in few.into_iter().flatten().chain(more) {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Which `X-Forwarded-*` headers a request already has.
#[derive(Debug, Default, Clone, Copy)]
pub struct Forwarded {
    pub for_: bool,
    pub proto: bool,
    pub host: bool,
}

impl Forwarded {
    /// Notes `name` if it is one of them; `false` when it is not.
    pub fn note(&mut self, name: &str) -> bool {
        match name {
            "x-forwarded-for" => self.for_ = true,
            "x-forwarded-proto" => self.proto = true,
            "x-forwarded-host" => self.host = true,
            _ => return false,
        }
        true
    }
}

/// Appends the client to `X-Forwarded-For`, sets `X-Forwarded-Proto` and `X-Forwarded-Host` when
/// absent. `present` says which of them `headers` has (the absent ones are added without a lookup);
/// `scheme` is how the client reached the proxy (`http` or `https`).
pub fn add_forwarded(headers: &mut Headers, present: Forwarded, client: IpAddr, scheme: &[u8]) {
    if present.for_ {
        let previous = headers
            .get(&X_FORWARDED_FOR)
            .and_then(|value| std::str::from_utf8(value).ok());
        if let Some(Ok(value)) = previous.map(|previous| {
            HeaderValue::from_maybe_shared(bytes::Bytes::from(format!("{previous}, {client}")))
        }) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    } else {
        headers.append(&X_FORWARDED_FOR, &address_value(client));
    }
    if !present.proto {
        headers.append_text(&X_FORWARDED_PROTO, &[scheme]);
    }
    if !present.host {
        if let Some(host) = headers.get(&header::HOST).map(<[u8]>::to_vec) {
            headers.append_text(&X_FORWARDED_HOST, &[&host]);
        }
    }
}

/// `client` as a header value; the last one is kept per thread (connections come from few
/// addresses), so most requests do not format an address.
fn address_value(client: IpAddr) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((address, value)) if *address == client => value.clone(),
            _ => {
                let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(client.to_string()))
                    .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
                *last = Some((client, value.clone()));
                value
            }
        }
    })
}

/// A random request id in UUID v4 form.
pub fn new_request_id() -> String {
    let bits: u128 =
        super::ids::random_u128() & !(0xf << 76) & !(0x3 << 62) | (0x4 << 76) | (0x2 << 62);
    let mut digits = [0u8; 32];
    super::ids::hex_into(bits, &mut digits);
    let mut text = [b'-'; 36];
    text[..8].copy_from_slice(&digits[..8]);
    text[9..13].copy_from_slice(&digits[8..12]);
    text[14..18].copy_from_slice(&digits[12..16]);
    text[19..23].copy_from_slice(&digits[16..20]);
    text[24..].copy_from_slice(&digits[20..]);
    std::str::from_utf8(&text)
        .map(str::to_owned)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_named_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers, false);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn every_hop_by_hop_name_goes() {
        let mut headers = HeaderMap::new();
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "proxy-authenticate",
            "proxy-authorization",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "x-kept",
            "Te-Not",
        ] {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_static("1"),
            );
        }
        strip_hop_by_hop(&mut headers, false);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["te-not", "x-kept"]);
    }

    #[test]
    fn upgrade_survives() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("Upgrade"));
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&headers));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["connection"], "upgrade");
    }

    #[test]
    fn forwarded_for_appends() {
        let mut map = HeaderMap::new();
        map.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        map.insert("host", HeaderValue::from_static("shop.local"));
        let mut present = Forwarded::default();
        for name in map.keys() {
            present.note(name.as_str());
        }
        let mut headers = Headers::from_map(map);
        add_forwarded(&mut headers, present, IpAddr::from([127, 0, 0, 1]), b"http");
        let headers = headers.into_header_map();
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-host"], "shop.local");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers.get_all("x-forwarded-proto").iter().count(), 1);
        let id = new_request_id();
        assert_eq!((id.len(), &id[14..15]), (36, "4"));
    }
}
