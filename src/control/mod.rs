//! The control plane's bookkeeping: where a running control plane is (state file: pid, ports), and
//! the process plumbing to find, signal and detach it. Containers are never found through here —
//! always by label — so a lost state file or a killed process strands nothing.

pub mod log_follow;
pub mod mesh_token;
pub mod monitor;
pub mod plane;
pub mod process;
pub mod reaper;
pub mod spans;
pub mod state;
pub mod wiring;

pub use state::{ControlPlaneState, ReloadRequest};
