//! What a forwarder sends the control plane before a connection's bytes: a PROXY protocol
//! version 2 header (the binary form HAProxy defined and Envoy, nginx and HAProxy read), so the
//! control plane learns who called (`source`), which service and port were called
//! (`destination` and the service TLV) and that the sender is one of this sandbox's forwarders
//! (the token TLV). The same header, with the dial TLV, asks a forwarder to open a connection
//! to `destination` on the control plane's behalf (engines whose host cannot reach container
//! addresses).
//!
//! Layout: the 12-byte signature, version and command (`0x21`: v2, PROXY), family and
//! transport (`0x11` TCP over IPv4, `0x21` TCP over IPv6), the length of the rest (big endian),
//! the addresses (source, destination, source port, destination port), then TLVs: a type byte,
//! a big-endian length and the value. sandbox's TLVs use the range the specification leaves to
//! applications (`0xE0`–`0xEF`).
//!
//! A dial request is answered with one byte before the destination's own bytes:
//! [`DIAL_CONNECTED`] once the forwarder holds the connection (then it splices), or
//! [`DIAL_REFUSED`] / [`DIAL_FAILED`] and an orderly close, so the control plane tells a
//! refused or unreachable replica (a connect failure, retried elsewhere) from a replica that
//! closed a connection it had accepted. A request without the right token gets no answer: the
//! connection is reset.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The answer to a dial request: the destination is connected; its bytes follow.
pub const DIAL_CONNECTED: u8 = 0x00;
/// The answer to a dial request: the destination refused the connection (nothing listens).
pub const DIAL_REFUSED: u8 = 0x01;
/// The answer to a dial request: no connection within the forwarder's connect timeout, or
/// another failure (no route to the address).
pub const DIAL_FAILED: u8 = 0x02;

/// Every PROXY v2 header starts with these bytes.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part: signature, version/command, family, length.
pub const FIXED_LEN: usize = 16;
/// The most a header of ours may take (a sane bound for readers; the format allows 64 KiB).
pub const MAX_LEN: usize = 1024;

const VERSION_PROXY: u8 = 0x21;
const VERSION_LOCAL: u8 = 0x20;
const TCP_V4: u8 = 0x11;
const TCP_V6: u8 = 0x21;
const UNSPECIFIED: u8 = 0x00;

/// The sandbox's secret, proving the sender is one of its forwarders (or its control plane).
pub const TLV_TOKEN: u8 = 0xE0;
/// The service the caller addressed (the forwarder's service), UTF-8.
pub const TLV_SERVICE: u8 = 0xE1;
/// Present (empty): the sender asks the receiver to dial `destination` and splice.
pub const TLV_DIAL: u8 = 0xE2;

/// One header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The caller, as the forwarder saw it.
    pub source: SocketAddr,
    /// The address the caller connected to (the forwarder's own address and the service's
    /// port), or with [`Header::dial`] the address to dial.
    pub destination: SocketAddr,
    pub token: Vec<u8>,
    pub service: String,
    pub dial: bool,
}

impl fmt::Debug for Header {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("source", &self.source)
            .field("destination", &self.destination)
            .field("token", &"<redacted>")
            .field("service", &self.service)
            .field("dial", &self.dial)
            .finish()
    }
}

/// Why bytes are not a header of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not the PROXY v2 signature: the peer speaks something else.
    NotProxyProtocol,
    /// A version or command this reader does not take (`LOCAL`, v1 text).
    Unsupported(&'static str),
    /// The declared length exceeds [`MAX_LEN`].
    TooLong(usize),
    /// The header is cut or inconsistent.
    Malformed(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotProxyProtocol => f.write_str("not a PROXY protocol v2 header"),
            WireError::Unsupported(what) => write!(f, "unsupported PROXY header: {what}"),
            WireError::TooLong(len) => {
                write!(f, "PROXY header of {len} bytes (at most {MAX_LEN})")
            }
            WireError::Malformed(what) => write!(f, "malformed PROXY header: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

impl Header {
    /// The header's bytes. Source and destination must be of one family; a mixed pair is sent
    /// with both mapped to IPv6.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.token.len() + self.service.len());
        out.extend_from_slice(&SIGNATURE);
        out.push(VERSION_PROXY);
        let addresses = match (self.source.ip(), self.destination.ip()) {
            (IpAddr::V4(source), IpAddr::V4(destination)) => {
                out.push(TCP_V4);
                let mut bytes = Vec::with_capacity(12);
                bytes.extend_from_slice(&source.octets());
                bytes.extend_from_slice(&destination.octets());
                bytes
            }
            (source, destination) => {
                out.push(TCP_V6);
                let mut bytes = Vec::with_capacity(36);
                bytes.extend_from_slice(&to_v6(source).octets());
                bytes.extend_from_slice(&to_v6(destination).octets());
                bytes
            }
        };
        let mut rest = addresses;
        rest.extend_from_slice(&self.source.port().to_be_bytes());
        rest.extend_from_slice(&self.destination.port().to_be_bytes());
        push_tlv(&mut rest, TLV_TOKEN, &self.token);
        push_tlv(&mut rest, TLV_SERVICE, self.service.as_bytes());
        if self.dial {
            push_tlv(&mut rest, TLV_DIAL, &[]);
        }
        out.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        out.extend_from_slice(&rest);
        out
    }

    /// Reads a header from the start of `bytes`: `Ok(None)` while more bytes are needed, else
    /// the header and how many bytes it took (what follows is the connection's own data).
    /// Unknown TLVs are skipped, as the specification asks.
    pub fn decode(bytes: &[u8]) -> Result<Option<(Header, usize)>, WireError> {
        let known = bytes.len().min(SIGNATURE.len());
        if bytes[..known] != SIGNATURE[..known] {
            return Err(WireError::NotProxyProtocol);
        }
        if bytes.len() < FIXED_LEN {
            return Ok(None);
        }
        match bytes[12] {
            VERSION_PROXY => {}
            VERSION_LOCAL => return Err(WireError::Unsupported("LOCAL command")),
            _ => return Err(WireError::Unsupported("version or command")),
        }
        let family = bytes[13];
        let len = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        if len > MAX_LEN - FIXED_LEN {
            return Err(WireError::TooLong(FIXED_LEN + len));
        }
        if bytes.len() < FIXED_LEN + len {
            return Ok(None);
        }
        let rest = &bytes[FIXED_LEN..FIXED_LEN + len];
        let (source, destination, tlvs) = match family {
            TCP_V4 => {
                let (addresses, tlvs) = split(rest, 12)?;
                let ip = |at: usize| {
                    IpAddr::V4(Ipv4Addr::new(
                        addresses[at],
                        addresses[at + 1],
                        addresses[at + 2],
                        addresses[at + 3],
                    ))
                };
                let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
                (
                    SocketAddr::new(ip(0), port(8)),
                    SocketAddr::new(ip(4), port(10)),
                    tlvs,
                )
            }
            TCP_V6 => {
                let (addresses, tlvs) = split(rest, 36)?;
                let ip = |at: usize| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&addresses[at..at + 16]);
                    unmap(Ipv6Addr::from(octets))
                };
                let port = |at: usize| u16::from_be_bytes([addresses[at], addresses[at + 1]]);
                (
                    SocketAddr::new(ip(0), port(32)),
                    SocketAddr::new(ip(16), port(34)),
                    tlvs,
                )
            }
            UNSPECIFIED => return Err(WireError::Unsupported("unspecified address family")),
            _ => return Err(WireError::Unsupported("address family other than TCP")),
        };
        let mut header = Header {
            source,
            destination,
            token: Vec::new(),
            service: String::new(),
            dial: false,
        };
        let mut tlvs = tlvs;
        while !tlvs.is_empty() {
            if tlvs.len() < 3 {
                return Err(WireError::Malformed("cut TLV"));
            }
            let kind = tlvs[0];
            let value_len = usize::from(u16::from_be_bytes([tlvs[1], tlvs[2]]));
            let value = tlvs
                .get(3..3 + value_len)
                .ok_or(WireError::Malformed("TLV longer than the header"))?;
            match kind {
                TLV_TOKEN => header.token = value.to_vec(),
                TLV_SERVICE => {
                    header.service = std::str::from_utf8(value)
                        .map_err(|_| WireError::Malformed("service name is not UTF-8"))?
                        .to_string();
                }
                TLV_DIAL => header.dial = true,
                _ => {}
            }
            tlvs = &tlvs[3 + value_len..];
        }
        Ok(Some((header, FIXED_LEN + len)))
    }
}

fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// The address block (both addresses and both ports: 12 bytes for IPv4, 36 for IPv6) and the
/// TLVs after it.
fn split(rest: &[u8], addresses: usize) -> Result<(&[u8], &[u8]), WireError> {
    if rest.len() < addresses {
        return Err(WireError::Malformed("addresses cut short"));
    }
    Ok(rest.split_at(addresses))
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
        IpAddr::V6(ip) => ip,
    }
}

fn unmap(ip: Ipv6Addr) -> IpAddr {
    match ip.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(ip),
    }
}

/// Compares two tokens in time independent of where they differ.
pub fn token_matches(expected: &[u8], presented: &[u8]) -> bool {
    if expected.len() != presented.len() {
        return false;
    }
    expected
        .iter()
        .zip(presented)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(source: &str, destination: &str) -> Header {
        Header {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
            token: b"s3cret".to_vec(),
            service: "item".to_string(),
            dial: false,
        }
    }

    #[test]
    fn a_header_reads_back_as_written_with_the_data_after_it() {
        let sent = header("172.18.0.5:41234", "172.18.0.9:8080");
        let mut bytes = sent.encode();
        let len = bytes.len();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (read, used) = Header::decode(&bytes).unwrap().unwrap();
        assert_eq!(read, sent);
        assert_eq!(used, len);
        assert_eq!(&bytes[used..], b"GET / HTTP/1.1\r\n");
        // The standard fixed part, readable by any PROXY v2 reader.
        assert_eq!(&bytes[..12], &SIGNATURE);
        assert_eq!(bytes[12], 0x21);
        assert_eq!(bytes[13], 0x11);
    }

    #[test]
    fn ipv6_and_mixed_families_read_back() {
        let sent = header("[fd00::5]:41234", "[fd00::9]:6379");
        assert_eq!(Header::decode(&sent.encode()).unwrap().unwrap().0, sent);
        let mixed = header("172.18.0.5:41234", "[fd00::9]:6379");
        let (read, _) = Header::decode(&mixed.encode()).unwrap().unwrap();
        assert_eq!(read, mixed, "IPv4 travels mapped and comes back as IPv4");
        let dial = Header {
            dial: true,
            ..header("10.0.0.1:1", "10.0.0.2:5432")
        };
        assert!(Header::decode(&dial.encode()).unwrap().unwrap().0.dial);
    }

    #[test]
    fn every_prefix_of_a_header_asks_for_more() {
        let bytes = header("172.18.0.5:41234", "172.18.0.9:8080").encode();
        for cut in 0..bytes.len() {
            assert_eq!(Header::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn other_protocols_and_bad_headers_are_refused() {
        assert_eq!(
            Header::decode(b"GET / HTTP/1.1\r\n"),
            Err(WireError::NotProxyProtocol)
        );
        assert_eq!(
            Header::decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Err(WireError::NotProxyProtocol)
        );
        let mut local = header("1.2.3.4:1", "5.6.7.8:2").encode();
        local[12] = 0x20;
        assert!(matches!(
            Header::decode(&local),
            Err(WireError::Unsupported(_))
        ));
        let mut long = header("1.2.3.4:1", "5.6.7.8:2").encode();
        long[14] = 0xff;
        assert!(matches!(Header::decode(&long), Err(WireError::TooLong(_))));
        let mut cut_tlv = header("1.2.3.4:1", "5.6.7.8:2").encode();
        let len = cut_tlv.len();
        cut_tlv[len - 6] = 0x7f; // the service TLV claims more than is there
        assert!(matches!(
            Header::decode(&cut_tlv),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_tlvs_are_skipped() {
        let mut bytes = header("1.2.3.4:1", "5.6.7.8:2").encode();
        // A TLV another writer might add (PP2_TYPE_AUTHORITY), appended and counted.
        bytes.extend_from_slice(&[0x02, 0x00, 0x03, b'a', b'b', b'c']);
        let len = u16::from_be_bytes([bytes[14], bytes[15]]) + 6;
        bytes[14..16].copy_from_slice(&len.to_be_bytes());
        let (read, used) = Header::decode(&bytes).unwrap().unwrap();
        assert_eq!(read.service, "item");
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(!token_matches(b"abc", b"abd"));
        assert!(!token_matches(b"abc", b"ab"));
        assert!(!format!("{:?}", header("1.2.3.4:1", "5.6.7.8:2")).contains("s3cret"));
    }
}
