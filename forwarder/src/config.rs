//! What a forwarder is told by its environment (the container's variables, set by sandbox's
//! engine wiring), checked once at startup: a bad or missing variable is named in the error and
//! the process exits with code 2 before it listens anywhere.

use std::fmt;

/// The service the forwarder stands for (`item`).
pub const SERVICE: &str = "SANDBOX_MESH_SERVICE";
/// The TCP ports to listen on, comma separated (`8080,9090`).
pub const PORTS: &str = "SANDBOX_MESH_PORTS";
/// Where to hand connections: `host:port` (`172.18.0.1:15002`, `host.docker.internal:41234`,
/// `[fd00::1]:15002`).
pub const INTAKE: &str = "SANDBOX_MESH_INTAKE";
/// The sandbox's secret, sent verbatim (its UTF-8 bytes) in the header's token TLV.
pub const TOKEN: &str = "SANDBOX_MESH_TOKEN";
/// Optional: a port on which the control plane asks the forwarder to dial (dial mode).
pub const DIAL_PORT: &str = "SANDBOX_MESH_DIAL_PORT";
/// Optional: the control plane's handoff socket (a Unix socket path in the container, mounted
/// from the host), where HTTP connections are handed over whole instead of relayed.
pub const HANDOFF: &str = "SANDBOX_MESH_HANDOFF";
/// The longest path a Unix socket address holds (`sun_path`, less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The longest service name or token taken: both travel in one header of at most
/// [`crate::wire::MAX_LEN`] bytes.
const MAX_FIELD_LEN: usize = 400;

/// A validated configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub service: String,
    /// Distinct, in the order given. Port 0 (any free port) is only for tests.
    pub ports: Vec<u16>,
    pub intake: Intake,
    pub token: Vec<u8>,
    pub dial_port: Option<u16>,
    /// Where HTTP connections are handed over ([`HANDOFF`]); relayed to the intake without it.
    pub handoff: Option<std::path::PathBuf>,
}

impl fmt::Debug for Config {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("service", &self.service)
            .field("ports", &self.ports)
            .field("intake", &self.intake)
            .field("token", &"<redacted>")
            .field("dial_port", &self.dial_port)
            .field("handoff", &self.handoff)
            .finish()
    }
}

/// The intake's address as written: a host (an IP address or a name resolved at each connection
/// attempt) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A variable that is missing or wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required = |variable: &'static str| match lookup(variable) {
            Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
            _ => Err(error(variable, "is missing (it is set by sandbox)")),
        };
        let service = required(SERVICE)?;
        if service.len() > MAX_FIELD_LEN {
            return Err(error(SERVICE, "is too long"));
        }
        let ports = ports(&required(PORTS)?)?;
        let intake = intake(&required(INTAKE)?)?;
        let token = required(TOKEN)?.into_bytes();
        if token.len() > MAX_FIELD_LEN {
            return Err(error(TOKEN, "is too long"));
        }
        let dial_port = match lookup(DIAL_PORT).filter(|value| !value.trim().is_empty()) {
            None => None,
            Some(value) => {
                let port = port(DIAL_PORT, value.trim())?;
                if ports.contains(&port) {
                    return Err(error(
                        DIAL_PORT,
                        format!("{port} is also one of the service's ports ({PORTS})"),
                    ));
                }
                Some(port)
            }
        };
        let handoff = match lookup(HANDOFF).filter(|value| !value.trim().is_empty()) {
            None => None,
            Some(value) => Some(handoff(value.trim())?),
        };
        Ok(Config {
            service,
            ports,
            intake,
            token,
            dial_port,
            handoff,
        })
    }
}

fn error(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

fn port(variable: &'static str, text: &str) -> Result<u16, ConfigError> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(error(
            variable,
            format!("`{text}` is not a TCP port (1-65535)"),
        )),
    }
}

fn ports(text: &str) -> Result<Vec<u16>, ConfigError> {
    let mut ports = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let port = port(PORTS, item)?;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    if ports.is_empty() {
        return Err(error(PORTS, "names no port"));
    }
    Ok(ports)
}

fn handoff(text: &str) -> Result<std::path::PathBuf, ConfigError> {
    if !text.starts_with('/') {
        return Err(error(HANDOFF, format!("`{text}` is not an absolute path")));
    }
    if text.len() > MAX_SOCKET_PATH {
        return Err(error(
            HANDOFF,
            format!("is longer than a Unix socket path may be ({MAX_SOCKET_PATH} bytes)"),
        ));
    }
    Ok(std::path::PathBuf::from(text))
}

fn intake(text: &str) -> Result<Intake, ConfigError> {
    let malformed = || {
        error(
            INTAKE,
            format!("`{text}` is not host:port (e.g. 172.18.0.1:15002)"),
        )
    };
    let (host, port_text) = text.rsplit_once(':').ok_or_else(malformed)?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']').ok_or_else(malformed)?,
        None if host.contains(':') => return Err(malformed()),
        None => host,
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(malformed());
    }
    Ok(Intake {
        host: host.to_string(),
        port: port(INTAKE, port_text)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const GOOD: [(&str, &str); 4] = [
        (SERVICE, "item"),
        (PORTS, "8080, 9090,8080"),
        (INTAKE, "172.18.0.1:15002"),
        (TOKEN, "c0ffee"),
    ];

    #[test]
    fn a_complete_environment_reads() {
        let config = read(&GOOD).unwrap();
        assert_eq!(config.service, "item");
        assert_eq!(config.ports, [8080, 9090], "distinct, in order");
        assert_eq!(config.intake.to_string(), "172.18.0.1:15002");
        assert_eq!(config.token, b"c0ffee");
        assert_eq!(config.dial_port, None);
        assert_eq!(config.handoff, None);
        assert!(!format!("{config:?}").contains("c0ffee"));
    }

    #[test]
    fn a_handoff_socket_is_an_absolute_path_short_enough_for_a_socket() {
        let mut pairs = GOOD.to_vec();
        pairs.push((HANDOFF, "/run/sandbox-mesh/intake.sock"));
        let config = read(&pairs).unwrap();
        assert_eq!(
            config.handoff.as_deref(),
            Some(std::path::Path::new("/run/sandbox-mesh/intake.sock"))
        );
    }

    #[test]
    fn intake_hosts_may_be_names_or_bracketed_ipv6() {
        let mut pairs = GOOD.to_vec();
        pairs[2] = (INTAKE, "host.docker.internal:41234");
        let config = read(&pairs).unwrap();
        assert_eq!(config.intake.host, "host.docker.internal");
        assert_eq!(config.intake.port, 41234);
        pairs[2] = (INTAKE, "[fd00::1]:15002");
        let config = read(&pairs).unwrap();
        assert_eq!(config.intake.host, "fd00::1");
        assert_eq!(config.intake.to_string(), "[fd00::1]:15002");
    }

    #[test]
    fn each_bad_or_missing_variable_is_named() {
        let long = format!("/{}", "a".repeat(MAX_SOCKET_PATH));
        let cases: [(&str, &str, &str); 11] = [
            (SERVICE, "", "is missing"),
            (PORTS, "", "is missing"),
            (PORTS, ",", "names no port"),
            (PORTS, "80,http", "`http` is not a TCP port"),
            (PORTS, "0", "`0` is not a TCP port"),
            (INTAKE, "172.18.0.1", "is not host:port"),
            (INTAKE, "fd00::1:15002", "is not host:port"),
            (INTAKE, "host:99999", "`99999` is not a TCP port"),
            (TOKEN, " ", "is missing"),
            (HANDOFF, "run/intake.sock", "is not an absolute path"),
            (HANDOFF, &long, "is longer than a Unix socket path may be"),
        ];
        for (variable, value, problem) in cases {
            let mut pairs = GOOD.to_vec();
            pairs.retain(|(key, _)| *key != variable);
            pairs.push((variable, value));
            let failure = read(&pairs).unwrap_err();
            assert_eq!(failure.variable, variable, "{value:?}");
            let message = failure.to_string();
            assert!(message.starts_with(variable), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn a_dial_port_must_differ_from_the_service_ports() {
        let mut pairs = GOOD.to_vec();
        pairs.push((DIAL_PORT, "15003"));
        assert_eq!(read(&pairs).unwrap().dial_port, Some(15003));
        pairs.pop();
        pairs.push((DIAL_PORT, "9090"));
        let failure = read(&pairs).unwrap_err();
        assert_eq!(failure.variable, DIAL_PORT);
        assert!(failure.problem.contains("also one of the service's ports"));
    }
}
