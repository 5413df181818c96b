//! The Docker side of a sandbox: connection and error translation ([`docker`]), what a container
//! should be ([`spec`]; its secrets and configs in [`files`]), what to change ([`plan`], pure),
//! doing it ([`apply`]), images ([`image`]; the probes they bring in [`image_health`]), health
//! probes ([`health`]; gRPC's in [`grpc_health`]), the transparent mesh's forwarders ([`mesh`];
//! their image in [`forwarder`]), the labels that find everything again ([`labels`]) and what
//! differs on Podman's Docker-compatible API ([`podman`]); one shared look at a project's containers
//! ([`watch`]).
//!
//! Only `docker.rs` (and its `docker/` submodules) talks to bollard; everything else works with
//! this module's own types.

pub mod apply;
pub mod docker;
pub mod error;
pub mod files;
pub mod forwarder;
pub mod grpc_health;
pub mod health;
pub mod image;
pub mod image_health;
pub mod labels;
pub mod logs;
pub mod mesh;
pub mod plan;
pub mod podman;
pub mod spec;
pub mod status;
pub mod watch;

pub use apply::{down, prepare, up, DownOptions, DownOutcome, UpOptions, UpOutcome};
pub use docker::Docker;
pub use error::EngineError;
