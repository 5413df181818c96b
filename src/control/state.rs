//! The state file of a project's control plane: `<state dir>/<project>.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a running control plane records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlPlaneState {
    pub project: String,
    pub pid: u32,
    /// How the manifest it serves was read.
    pub source: crate::manifest::LoadSource,
    /// Unix seconds.
    pub started_at: u64,
    /// `true` for `up -d` control planes (left running on purpose).
    pub detached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<String>,
    /// The mesh intake's loopback port (forwarders that reach the host through the engine's
    /// host-gateway name use it): a re-up run by another process wires them the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake_port: Option<u16>,
    /// The OTLP/HTTP receiver (`http://127.0.0.1:4318`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_http: Option<String>,
    /// The OTLP/gRPC receiver (`http://127.0.0.1:4317`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_grpc: Option<String>,
    /// Where a detached control plane writes its own log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<PathBuf>,
    /// The listeners as the manifest asked for them (`gateway 127.0.0.1:8080, tracing default`): a
    /// re-up asking for the same reloads this control plane in place, else replaces it.
    #[serde(default)]
    pub listeners: String,
    /// How many in-place reloads this control plane has done (a re-up waits for it to move).
    #[serde(default)]
    pub reloads: u64,
}

/// What a re-up asks a running control plane to load: the manifest and the environment to read it
/// with (interpolation must see the re-up's variables, not those the control plane started with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadRequest {
    pub source: crate::manifest::LoadSource,
    pub project: String,
    pub working_dir: PathBuf,
    pub environment: std::collections::BTreeMap<String, String>,
}

impl ReloadRequest {
    fn path(project: &str) -> PathBuf {
        state_dir().join(format!("{project}.reload.json"))
    }

    /// Writes the request where the project's control plane looks on SIGHUP (private to the user:
    /// the environment may hold secrets).
    pub fn write(&self) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = state_dir();
        std::fs::create_dir_all(&dir)?;
        let temporary = dir.join(format!(
            ".{}.reload.{}.tmp",
            self.project,
            std::process::id()
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&temporary, Self::path(&self.project))
    }

    /// Takes (reads and removes) the pending request of `project`.
    pub fn take(project: &str) -> Option<ReloadRequest> {
        let path = Self::path(project);
        let text = std::fs::read(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        serde_json::from_slice(&text).ok()
    }
}

/// The folder for state files: `SANDBOX_STATE_DIR`, else `$XDG_STATE_HOME/sandbox`, else
/// `~/.local/state/sandbox`, else the system temp folder.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SANDBOX_STATE_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("sandbox");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        return PathBuf::from(home).join(".local/state/sandbox");
    }
    std::env::temp_dir().join("sandbox-state")
}

fn state_path(dir: &Path, project: &str) -> PathBuf {
    dir.join(format!("{project}.json"))
}

impl ControlPlaneState {
    /// The `listeners` text for a manifest (with the data-plane workers when set: they start with
    /// the control plane, so another count needs another control plane).
    pub fn listeners_of(manifest: &crate::manifest::Manifest) -> String {
        let mut tracing = manifest
            .tracing
            .port
            .map_or_else(|| "default".to_string(), |port| port.to_string());
        // OTLP ports only when set, so state files written before them still match.
        let otlp = [
            manifest.tracing.otlp_http_port,
            manifest.tracing.otlp_grpc_port,
        ];
        if otlp.iter().any(Option::is_some) {
            let [http, grpc] = otlp.map(|port| port.map_or("default".into(), |p| p.to_string()));
            tracing = format!("{tracing} otlp {http} {grpc}");
        }
        // The scheme is part of it: turning TLS on or off starts a new control plane; so is the
        // number of workers.
        let scheme = manifest.gateway.scheme();
        let gateway = if manifest.gateway.address_is_default() {
            "default".to_string()
        } else {
            format!("{}:{}", manifest.gateway.host, manifest.gateway.port)
        };
        match manifest.gateway.workers {
            0 => format!("gateway {scheme} {gateway}, tracing {tracing}"),
            workers => format!("gateway {scheme} {gateway}, tracing {tracing}, workers {workers}"),
        }
    }

    /// Writes the state file atomically (temp file + rename).
    pub fn write(&self) -> std::io::Result<PathBuf> {
        let dir = state_dir();
        std::fs::create_dir_all(&dir)?;
        let path = state_path(&dir, &self.project);
        let temporary = dir.join(format!(".{}.{}.tmp", self.project, std::process::id()));
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&temporary, &path)?;
        Ok(path)
    }

    /// The recorded control plane of `project`, if its process is still alive. A stale file is
    /// removed.
    pub fn read_live(project: &str) -> Option<ControlPlaneState> {
        let path = state_path(&state_dir(), project);
        let text = std::fs::read(&path).ok()?;
        let state: ControlPlaneState = serde_json::from_slice(&text).ok()?;
        if super::process::is_alive(state.pid) {
            Some(state)
        } else {
            let _ = std::fs::remove_file(&path);
            None
        }
    }

    /// Removes the state file if it still names this process.
    pub fn remove_if_mine(project: &str, pid: u32) {
        let path = state_path(&state_dir(), project);
        let mine = std::fs::read(&path)
            .ok()
            .and_then(|text| serde_json::from_slice::<ControlPlaneState>(&text).ok())
            .is_some_and(|state| state.pid == pid);
        if mine {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Where a detached control plane of `project` logs.
    pub fn log_path(project: &str) -> PathBuf {
        state_dir().join(format!("{project}.log"))
    }
}
