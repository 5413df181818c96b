//! Finding the intake at each connection attempt, so a control plane that moved (a new address
//! behind `host.docker.internal`) is found without restarting the forwarder: an IP literal is
//! used as it is, a name is looked up in `/etc/hosts` first (where the engine writes
//! `host.docker.internal` and `extra_hosts`; a static binary in a `FROM scratch` image has no
//! other name service it can count on), then through the system resolver.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crate::config::Intake;

const HOSTS_FILE: &str = "/etc/hosts";

/// Connects the intake: each of its addresses in turn, each within `timeout`.
pub fn connect(intake: &Intake, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for address in addresses(intake, Path::new(HOSTS_FILE))? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{}` resolves to no address", intake.host),
        )
    }))
}

/// The intake's addresses, `hosts` being the hosts file to read first.
pub fn addresses(intake: &Intake, hosts: &Path) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = intake.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, intake.port)]);
    }
    let text = std::fs::read_to_string(hosts).unwrap_or_default();
    let listed = hosts_lookup(&text, &intake.host);
    if !listed.is_empty() {
        return Ok(listed
            .into_iter()
            .map(|ip| SocketAddr::new(ip, intake.port))
            .collect());
    }
    (intake.host.as_str(), intake.port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot resolve `{}`: {error}", intake.host),
            )
        })
}

/// The addresses a hosts file gives `name` (case-insensitive), IPv4 first, in file order.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let ip = fields.next()?.parse::<IpAddr>().ok()?;
            fields
                .any(|alias| alias.eq_ignore_ascii_case(name))
                .then_some(ip)
        })
        .collect();
    found.sort_by_key(IpAddr::is_ipv6);
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n\
        # 10.0.0.9 host.docker.internal (a comment)\n\
        fd00::1 host.docker.internal\n172.17.0.1\tHost.Docker.Internal gateway # trailing\n";

    #[test]
    fn the_hosts_file_names_the_intake_ipv4_first() {
        assert_eq!(
            hosts_lookup(HOSTS, "host.docker.internal"),
            [
                "172.17.0.1".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
        assert_eq!(
            hosts_lookup(HOSTS, "gateway"),
            ["172.17.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(hosts_lookup(HOSTS, "item").is_empty());
    }

    #[test]
    fn literals_names_and_the_resolver() {
        let directory =
            std::env::temp_dir().join(format!("forwarder-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let hosts = directory.join("hosts");
        std::fs::write(&hosts, HOSTS).unwrap();
        let intake = |host: &str| Intake {
            host: host.to_string(),
            port: 15002,
        };
        assert_eq!(
            addresses(&intake("fd00::7"), &hosts).unwrap(),
            ["[fd00::7]:15002".parse().unwrap()]
        );
        assert_eq!(
            addresses(&intake("host.docker.internal"), &hosts).unwrap()[0],
            "172.17.0.1:15002".parse().unwrap()
        );
        // Not in the file: the system resolver answers for `localhost`.
        let resolved = addresses(&intake("localhost"), &directory.join("absent")).unwrap();
        assert!(resolved.iter().all(|address| address.ip().is_loopback()));
        let unknown = addresses(&intake("no-such-host.invalid"), &hosts).unwrap_err();
        assert!(
            unknown.to_string().contains("no-such-host.invalid"),
            "{unknown}"
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
