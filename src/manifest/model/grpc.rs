//! gRPC's status codes by name (the manifest's `retriable_status: [UNAVAILABLE]`, the proxy's
//! errors and spans), and the gateway's per-route gRPC-Web switch.

use serde::Serialize;

/// A gRPC status code (`grpc-status`), 0 to 16, as the gRPC spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrpcStatus(pub u8);

impl GrpcStatus {
    pub const OK: GrpcStatus = GrpcStatus(0);
    pub const CANCELLED: GrpcStatus = GrpcStatus(1);
    pub const UNKNOWN: GrpcStatus = GrpcStatus(2);
    pub const DEADLINE_EXCEEDED: GrpcStatus = GrpcStatus(4);
    pub const PERMISSION_DENIED: GrpcStatus = GrpcStatus(7);
    pub const RESOURCE_EXHAUSTED: GrpcStatus = GrpcStatus(8);
    pub const UNIMPLEMENTED: GrpcStatus = GrpcStatus(12);
    pub const INTERNAL: GrpcStatus = GrpcStatus(13);
    pub const UNAVAILABLE: GrpcStatus = GrpcStatus(14);
    pub const UNAUTHENTICATED: GrpcStatus = GrpcStatus(16);

    /// Every name, by code.
    pub const NAMES: [&'static str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];

    /// `UNAVAILABLE` (case-insensitive, `-` for `_` accepted) → 14.
    pub fn from_name(name: &str) -> Option<GrpcStatus> {
        let name = name.trim().to_ascii_uppercase().replace('-', "_");
        GrpcStatus::NAMES
            .iter()
            .position(|known| *known == name)
            .map(|code| GrpcStatus(code as u8))
    }

    /// The spec's name, or the number for a code past 16.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match GrpcStatus::NAMES.get(usize::from(self.0)) {
            Some(name) => std::borrow::Cow::Borrowed(name),
            None => std::borrow::Cow::Owned(self.0.to_string()),
        }
    }
}

impl Serialize for GrpcStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// `grpc_web:` on a gateway route: browsers' gRPC-Web calls are translated to gRPC for the
/// service, and CORS is answered for the origins allowed. Written back as it is read: `true`, or
/// `{allow_origins: [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcWeb {
    /// Origins (`http://localhost:3000`, or `*` for any) whose pages may call; empty (the default,
    /// `grpc_web: true`) allows any page served from this machine: `localhost`, `*.localhost`,
    /// `127.0.0.1` and `[::1]`, on any port.
    pub allow_origins: Vec<String>,
}

impl Serialize for GrpcWeb {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.allow_origins.is_empty() {
            return serializer.serialize_bool(true);
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("allow_origins", &self.allow_origins)?;
        map.end()
    }
}

impl GrpcWeb {
    /// Whether a page from `origin` (an `Origin` header's value) may call.
    pub fn allows(&self, origin: &str) -> bool {
        if self.allow_origins.is_empty() {
            return is_loopback_origin(origin);
        }
        self.allow_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }
}

/// `http://localhost:3000`, `https://app.localhost`, `http://127.0.0.1:8000`, `http://[::1]`.
fn is_loopback_origin(origin: &str) -> bool {
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(inner) => inner.split_once(']').map_or(inner, |(host, _)| host),
        None => rest.rsplit_once(':').map_or(rest, |(host, _)| host),
    }
    .to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_both_ways() {
        assert_eq!(
            GrpcStatus::from_name("unavailable"),
            Some(GrpcStatus::UNAVAILABLE)
        );
        assert_eq!(
            GrpcStatus::from_name("resource-exhausted"),
            Some(GrpcStatus::RESOURCE_EXHAUSTED)
        );
        assert_eq!(GrpcStatus::from_name("UNAVAILBLE"), None);
        assert_eq!(GrpcStatus(4).name(), "DEADLINE_EXCEEDED");
        assert_eq!(GrpcStatus(40).name(), "40");
    }

    #[test]
    fn default_origins_are_this_machine() {
        let web = GrpcWeb::default();
        for origin in [
            "http://localhost:3000",
            "https://app.localhost",
            "http://127.0.0.1:8000",
            "http://[::1]:5173",
        ] {
            assert!(web.allows(origin), "{origin}");
        }
        for origin in ["http://example.com", "http://localhost.evil.com", "null"] {
            assert!(!web.allows(origin), "{origin}");
        }
        let listed = GrpcWeb {
            allow_origins: vec!["http://example.com".into()],
        };
        assert!(listed.allows("http://example.com"));
        assert!(!listed.allows("http://localhost:3000"));
    }
}
