//! Binding one port on every address family the container has: `[::]` (which on Linux also takes
//! IPv4, as IPv4-mapped addresses) and `0.0.0.0` when `[::]` did not cover it or IPv6 is absent.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

/// The listeners for `port` (0: one free port, the same on both families).
pub fn listen(port: u16) -> io::Result<Vec<TcpListener>> {
    let ipv6 = TcpListener::bind((Ipv6Addr::UNSPECIFIED, port));
    let port = match &ipv6 {
        Ok(listener) => listener.local_addr()?.port(),
        Err(_) => port,
    };
    let ipv4 = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port));
    match (ipv6, ipv4) {
        (Ok(ipv6), Ok(ipv4)) => Ok(vec![ipv6, ipv4]),
        // A dual-stack `[::]` already takes IPv4.
        (Ok(ipv6), Err(error)) if error.kind() == io::ErrorKind::AddrInUse => Ok(vec![ipv6]),
        (Ok(_), Err(error)) => Err(context(error, (Ipv4Addr::UNSPECIFIED, port).into())),
        // No IPv6 in this container.
        (Err(_), Ok(ipv4)) => Ok(vec![ipv4]),
        (Err(_), Err(error)) => Err(context(error, (Ipv4Addr::UNSPECIFIED, port).into())),
    }
}

fn context(error: io::Error, address: SocketAddr) -> io::Error {
    io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
}

/// The address as the caller knows it: an IPv4-mapped IPv6 address (a dual-stack listener's
/// view of an IPv4 peer) becomes the IPv4 address.
pub fn unmapped(address: SocketAddr) -> SocketAddr {
    match address {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(ipv4) => SocketAddr::new(ipv4.into(), v6.port()),
            None => address,
        },
        SocketAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn one_port_takes_ipv4_and_ipv6_callers() {
        let listeners = listen(0).unwrap();
        let port = listeners[0].local_addr().unwrap().port();
        assert!(listeners
            .iter()
            .all(|listener| listener.local_addr().unwrap().port() == port));
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("IPv4 caller");
        if listeners[0].local_addr().unwrap().is_ipv6() {
            TcpStream::connect((Ipv6Addr::LOCALHOST, port)).expect("IPv6 caller");
        }
    }

    #[test]
    fn a_taken_port_is_an_error_naming_it() {
        let taken = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let _ipv6 = TcpListener::bind((Ipv6Addr::UNSPECIFIED, port));
        let error = listen(port).unwrap_err();
        assert!(error.to_string().contains(&format!(":{port}")), "{error}");
    }

    #[test]
    fn mapped_addresses_read_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:172.18.0.5]:41234".parse().unwrap();
        assert_eq!(unmapped(mapped), "172.18.0.5:41234".parse().unwrap());
        let real: SocketAddr = "[fd00::5]:1".parse().unwrap();
        assert_eq!(unmapped(real), real);
    }
}
