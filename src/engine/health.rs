//! Health probes run by the control plane itself (not Docker's HEALTHCHECK, which waits a whole
//! interval before its first probe): HTTP GET, TCP connect, gRPC `Health/Check` (`grpc_health`), or
//! a command exec'd in the container.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::docker::Docker;
use crate::manifest::{HealthProbe, Healthcheck};

/// How often the control plane probes while waiting for a service to become healthy.
pub const STARTUP_PROBE_INTERVAL: Duration = Duration::from_millis(150);

/// Where to reach one replica.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub container_id: String,
    /// Address of the service's `port` as reachable from this process.
    pub address: Option<SocketAddr>,
    /// `Host` header for HTTP probes.
    pub host: String,
}

/// Where this process reaches a container's `port`: its IP on the project network when the host can
/// route to container IPs (a Linux engine), else the port's loopback publish (Docker Desktop).
pub fn reachable_address(
    docker: &Docker,
    ip: Option<&str>,
    published: &[super::docker::PublishedPort],
    port: u16,
) -> Option<SocketAddr> {
    let by_ip = ip
        .filter(|_| docker.host_reaches_containers())
        .and_then(|ip| format!("{ip}:{port}").parse::<SocketAddr>().ok());
    by_ip.or_else(|| {
        published
            .iter()
            .find(|publish| publish.container_port == port && publish.protocol == "tcp")
            .and_then(|publish| publish.local_address())
    })
}

/// Runs one probe. `Ok` carries nothing; `Err` is the probe's result in words
/// (`GET /health → 500`, `connection refused`, `exit code 1: ...`).
pub async fn probe(
    docker: &Docker,
    healthcheck: &Healthcheck,
    target: &ProbeTarget,
) -> Result<(), String> {
    let attempt = async {
        match &healthcheck.probe {
            HealthProbe::Http { path } => {
                let address = target
                    .address
                    .ok_or("the service's port is not reachable yet")?;
                http_probe(address, &target.host, path).await
            }
            HealthProbe::Tcp => {
                let address = target
                    .address
                    .ok_or("the service's port is not reachable yet")?;
                TcpStream::connect(address)
                    .await
                    .map(drop)
                    .map_err(|error| format!("TCP connect to port {}: {error}", address.port()))
            }
            HealthProbe::Grpc { service } => {
                let address = target
                    .address
                    .ok_or("the service's port is not reachable yet")?;
                super::grpc_health::probe(address, service).await
            }
            HealthProbe::Command(command) => {
                let (code, output) = docker.exec(&target.container_id, command).await?;
                if code == 0 {
                    Ok(())
                } else {
                    let output = output.trim();
                    Err(if output.is_empty() {
                        format!("`{}` exited with code {code}", command.join(" "))
                    } else {
                        format!(
                            "`{}` exited with code {code}: {}",
                            command.join(" "),
                            last_chars(output, 300)
                        )
                    })
                }
            }
            HealthProbe::Image => {
                Err("the image's HEALTHCHECK is not read yet (`sandbox up` reads it)".to_string())
            }
        }
    };
    match tokio::time::timeout(healthcheck.timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {}",
            crate::manifest::duration_text::format(healthcheck.timeout)
        )),
    }
}

/// A minimal `GET` over a fresh connection: 2xx and 3xx are healthy.
async fn http_probe(address: SocketAddr, host: &str, path: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|error| format!("GET {path}: {error}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sandbox-health\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("GET {path}: {error}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buffer = [0u8; 512];
    while !head.windows(2).any(|window| window == b"\r\n") && head.len() < 4096 {
        let read = stream
            .read(&mut buffer)
            .await
            .map_err(|error| format!("GET {path}: {error}"))?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&head);
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("GET {path}: not an HTTP answer"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} → {status}"))
    }
}

fn last_chars(text: &str, count: usize) -> &str {
    let start = text.len().saturating_sub(count);
    let start = (start..text.len())
        .find(|index| text.is_char_boundary(*index))
        .unwrap_or(text.len());
    &text[start..]
}

/// Health bookkeeping while a replica starts: failures count only after `start_period`, and a
/// replica is unhealthy once it has failed for `retries` intervals in a row (Docker's timing),
/// even though it is probed far more often than that.
#[derive(Debug)]
pub struct StartupVerdict {
    started: tokio::time::Instant,
    first_failure_after_grace: Option<tokio::time::Instant>,
}

impl StartupVerdict {
    pub fn new() -> Self {
        StartupVerdict {
            started: tokio::time::Instant::now(),
            first_failure_after_grace: None,
        }
    }

    /// Records a failed probe; returns true when the replica must now be called unhealthy.
    pub fn failed(&mut self, healthcheck: &Healthcheck) -> bool {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.started) < healthcheck.start_period {
            return false;
        }
        let since = *self.first_failure_after_grace.get_or_insert(now);
        let allowed = healthcheck.interval * healthcheck.retries.max(1);
        now.duration_since(since) >= allowed
    }
}

impl Default for StartupVerdict {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(interval_ms: u64, retries: u32, start_period_ms: u64) -> Healthcheck {
        Healthcheck {
            probe: HealthProbe::Tcp,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(100),
            retries,
            start_period: Duration::from_millis(start_period_ms),
            start_interval: None,
            from_image: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_inside_the_start_period_do_not_count() {
        let healthcheck = check(100, 1, 1000);
        let mut verdict = StartupVerdict::new();
        tokio::time::advance(Duration::from_millis(900)).await;
        assert!(!verdict.failed(&healthcheck));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(
            !verdict.failed(&healthcheck),
            "first failure after the grace only starts the count"
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(verdict.failed(&healthcheck));
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_after_retries_intervals_of_failure() {
        let healthcheck = check(1000, 3, 0);
        let mut verdict = StartupVerdict::new();
        assert!(!verdict.failed(&healthcheck));
        tokio::time::advance(Duration::from_millis(2900)).await;
        assert!(!verdict.failed(&healthcheck));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(verdict.failed(&healthcheck));
    }

    #[tokio::test]
    async fn http_probe_reads_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for status in ["200 OK", "500 Internal Server Error"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await.unwrap();
                let response = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                socket.write_all(response.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(http_probe(address, "web", "/health").await, Ok(()));
        assert_eq!(
            http_probe(address, "web", "/health").await,
            Err("GET /health → 500".to_string())
        );
    }
}
