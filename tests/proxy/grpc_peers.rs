//! Real gRPC peers for the proxy's tests: Python grpcio's server (`tests/peers/grpc/server.py`)
//! as an upstream and its client (`client.py`) as the caller, from the virtualenv that
//! `tests/peers/grpc/setup.sh` installs. Missing peers fail the test with that command. Every
//! Python process is killed when its guard drops, a failing test's included.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

fn peers() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpc")
}

/// The virtualenv's Python, checked once to import `grpc`.
pub fn python() -> PathBuf {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let venv = std::env::var_os("SANDBOX_GRPC_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| peers().join(".venv"));
        let python = venv.join("bin/python");
        let imports = Command::new(&python)
            .args(["-c", "import grpc"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if imports {
            Ok(python)
        } else {
            Err(format!(
                "the real gRPC peers are missing ({} cannot import grpc): run `sh tests/peers/grpc/setup.sh`",
                python.display()
            ))
        }
    });
    match checked {
        Ok(python) => python.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// A grpcio server on 127.0.0.1; killed on drop.
pub struct GrpcServer {
    pub address: SocketAddr,
    child: Child,
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GrpcServer {
    /// `server.py --name NAME` (every call answered), or with `unavailable` every call failing
    /// with UNAVAILABLE.
    pub fn start(name: &str, unavailable: bool) -> GrpcServer {
        let mode = if unavailable { "unavailable" } else { "ok" };
        let mut child = Command::new(python())
            .arg(peers().join("server.py"))
            .args(["--name", name, "--mode", mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start server.py");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        // The guard exists before the wait, so a server that never answers is killed too.
        let mut server = GrpcServer {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
        };
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("server.py prints its port within 30 s");
        let port = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|value| value["port"].as_u64())
            .unwrap_or_else(|| panic!("server.py printed `{line}`, not its port"));
        server.address.set_port(port as u16);
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// One call by `client.py` (see its usage) to `target`; its JSON outcome. The process is killed
/// if it runs over 120 s or the test stops waiting.
pub async fn grpc_call(target: SocketAddr, kind: &str, options: &[&str]) -> Value {
    let mut command = tokio::process::Command::new(python());
    command
        .arg(peers().join("client.py"))
        .arg(target.to_string())
        .arg(kind)
        .args(options)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("client.py {kind} did not finish within 120 s"))
        .expect("run client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "client.py {kind} printed no outcome:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The texts of an outcome's responses.
pub fn texts(outcome: &Value) -> Vec<String> {
    outcome["responses"]
        .as_array()
        .map(|responses| {
            responses
                .iter()
                .map(|response| response["text"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A gRPC message: uncompressed flag, big-endian length, payload.
pub fn message(payload: &[u8]) -> Bytes {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(payload);
    Bytes::from(framed)
}

/// The frames of a (gRPC or gRPC-Web) body: (flag, payload).
pub fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let end = (5 + length).min(body.len());
        frames.push((body[0], body[5..end].to_vec()));
        body = &body[end..];
    }
    frames
}
