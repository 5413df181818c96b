//! Who may change state: a request carrying the sandbox's token (the `sandbox_token` cookie the
//! page set from `/?token=…`, or an `x-sandbox-token` header) AND coming from the dashboard's own
//! origin (`Sec-Fetch-Site: same-origin`, else an `Origin` naming this host). A web page in the
//! developer's browser can send a cookie-less form POST or a cookie-carrying one from another
//! origin; neither passes. Reads need neither (the trace server listens on loopback).

use http::{header, HeaderMap};
use rand::RngCore;

/// The cookie that keeps the token after the first visit.
pub const COOKIE: &str = "sandbox_token";
/// The header a script (or a test) may carry the token in instead.
pub const TOKEN_HEADER: &str = "x-sandbox-token";

/// A fresh random token: 32 hex digits (128 bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(expected: &str, given: &str) -> bool {
    let (expected, given) = (expected.as_bytes(), given.as_bytes());
    if expected.len() != given.len() || expected.is_empty() {
        return false;
    }
    expected
        .iter()
        .zip(given)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// The `Set-Cookie` value that keeps `token`: HttpOnly (scripts never see it), SameSite=Strict
/// (no other site's request carries it), for the whole port.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// The token a request carries: the header first, else the cookie.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(token);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// Why a state-changing request is refused (answered 403 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("cross-origin request refused: the dashboard's actions take requests from its own page only")]
    CrossOrigin,
    #[error("this action needs the sandbox's dashboard token: open the URL `sandbox up` printed (`…/?token=…`)")]
    NoToken,
    #[error("wrong dashboard token: open the URL the running `sandbox up` printed")]
    WrongToken,
}

/// Whether the request comes from a page of this origin. Browsers send `Sec-Fetch-Site` (and an
/// `Origin` on every POST); a request with neither is not from a browser page (curl, a test) and
/// the token alone decides.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    match text(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = text(header::HOST).unwrap_or_default();
            !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"))
        }
    }
}

/// Decides a state-changing request: same origin first, then the token.
pub fn authorize(headers: &HeaderMap, check: impl Fn(&str) -> bool) -> Result<(), Refusal> {
    if !same_origin(headers) {
        return Err(Refusal::CrossOrigin);
    }
    match token_of(headers) {
        None => Err(Refusal::NoToken),
        Some(token) if check(token) => Ok(()),
        Some(_) => Err(Refusal::WrongToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).expect("value"));
        }
        headers
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn decide(pairs: &[(&'static str, &str)]) -> Result<(), Refusal> {
        authorize(&headers(pairs), |token| same_secret(TOKEN, token))
    }

    #[test]
    fn tokens_are_fresh_and_compared_whole() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..31]));
        assert!(!same_secret("", ""), "an empty token never matches");
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let cookie = set_cookie(TOKEN);
        assert!(cookie.starts_with(&format!("{COOKIE}={TOKEN};")));
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Strict"));
    }

    #[test]
    fn the_token_comes_from_the_cookie_or_the_header() {
        let cookie = format!("theme=dark; {COOKIE}={TOKEN}; other=1");
        assert_eq!(token_of(&headers(&[("cookie", &cookie)])), Some(TOKEN));
        assert_eq!(
            token_of(&headers(&[("x-sandbox-token", "abc"), ("cookie", &cookie)])),
            Some("abc")
        );
        assert_eq!(token_of(&headers(&[("cookie", "theme=dark")])), None);
    }

    #[test]
    fn a_same_origin_request_with_the_token_passes() {
        let cookie = format!("{COOKIE}={TOKEN}");
        assert_eq!(
            decide(&[
                ("host", "127.0.0.1:9411"),
                ("origin", "http://127.0.0.1:9411"),
                ("sec-fetch-site", "same-origin"),
                ("cookie", &cookie),
            ]),
            Ok(())
        );
        // Not a browser: the token alone decides.
        assert_eq!(decide(&[("x-sandbox-token", TOKEN)]), Ok(()));
    }

    #[test]
    fn cross_origin_requests_are_refused_even_with_the_token() {
        let cookie = format!("{COOKIE}={TOKEN}");
        assert_eq!(
            decide(&[
                ("host", "127.0.0.1:9411"),
                ("origin", "http://evil.example"),
                ("cookie", &cookie),
            ]),
            Err(Refusal::CrossOrigin)
        );
        assert_eq!(
            decide(&[
                ("host", "127.0.0.1:9411"),
                ("sec-fetch-site", "cross-site"),
                ("cookie", &cookie),
            ]),
            Err(Refusal::CrossOrigin)
        );
        // Another port of the same host is another origin.
        assert_eq!(
            decide(&[
                ("host", "127.0.0.1:9411"),
                ("origin", "http://127.0.0.1:8080"),
                ("x-sandbox-token", TOKEN),
            ]),
            Err(Refusal::CrossOrigin)
        );
    }

    #[test]
    fn a_missing_or_wrong_token_is_refused() {
        assert_eq!(
            decide(&[
                ("host", "127.0.0.1:9411"),
                ("origin", "http://127.0.0.1:9411")
            ]),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            decide(&[("x-sandbox-token", "0123")]),
            Err(Refusal::WrongToken)
        );
    }
}
