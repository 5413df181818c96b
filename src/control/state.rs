//! The state file of a project's control plane: `<state dir>/<project>.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a running control plane records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlPlaneState {
    pub project: String,
    pub pid: u32,
    /// The manifest it serves.
    pub manifest: PathBuf,
    /// Unix seconds.
    pub started_at: u64,
    /// `true` for `up -d` control planes (left running on purpose).
    pub detached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<String>,
    /// Where a detached control plane writes its own log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<PathBuf>,
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
    /// Writes the state file atomically (temp file + rename).
    pub fn write(&self) -> std::io::Result<PathBuf> {
        let dir = state_dir();
        std::fs::create_dir_all(&dir)?;
        let path = state_path(&dir, &self.project);
        let temporary = dir.join(format!(".{}.{}.tmp", self.project, std::process::id()));
        std::fs::write(&temporary, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
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
