//! The labels and names by which sandbox finds its own resources on the engine. No state file is
//! needed to find them: `down` after a crash works from these alone.

/// Project name; on containers, networks, volumes and built images.
pub const PROJECT: &str = "dev.sandbox.project";
/// Service name, on containers.
pub const SERVICE: &str = "dev.sandbox.service";
/// Replica number (1-based), on containers.
pub const REPLICA: &str = "dev.sandbox.replica";
/// Hash of the container's resolved configuration; a change means "recreate".
pub const CONFIG_HASH: &str = "dev.sandbox.config-hash";
/// The manifest file the container came from (for `ps` and humans).
pub const MANIFEST: &str = "dev.sandbox.manifest";
/// The key a project network has in the manifest (`default`, `backend`), on networks.
pub const NETWORK: &str = "dev.sandbox.network";
/// What a container is when it is not a replica of its service: [`MESH_FORWARDER`].
pub const ROLE: &str = "dev.sandbox.role";
/// [`ROLE`] of a mesh forwarder: the container that holds a meshed service's DNS names and hands
/// every connection to the control plane's mesh intake. Never counted as a replica.
pub const MESH_FORWARDER: &str = "mesh-forwarder";
/// On a mesh forwarder, the service it stands for (instead of [`SERVICE`], so whatever looks for
/// a service's containers by label finds its replicas only).
pub const MESH_SERVICE: &str = "dev.sandbox.mesh-service";

/// A replica's container name (compose v2's scheme).
pub fn container_name(project: &str, service: &str, replica: u32) -> String {
    format!("{project}-{service}-{replica}")
}

/// The container name of a service's mesh forwarder.
pub fn forwarder_name(project: &str, service: &str) -> String {
    format!("{project}-{service}-mesh")
}

/// A named volume's engine name.
pub fn volume_name(project: &str, volume: &str) -> String {
    format!("{project}_{volume}")
}
