//! The mesh's forwarder: it holds a service's DNS names and ports beside the service's
//! containers and hands every connection it accepts to the sandbox control plane, prefixed by a
//! PROXY protocol v2 header ([`wire`]) that says who called, which service and port, and carries
//! the sandbox's token. In dial mode it also opens connections on the control plane's behalf.
//!
//! Std only: the binary is compiled by sandbox's build script with `rustc` alone and packaged
//! `FROM scratch`, so this crate has no dependencies.
//!
//! # Layout
//! - [`config`]: the environment the forwarder is started with, validated.
//! - [`forward`]: the listeners and what happens to each accepted connection.
//! - [`listen`]: binding a port on every address family the container has.
//! - [`resolve`]: finding and connecting the intake (IP literal, `/etc/hosts`, the resolver).
//! - [`splice`]: copying bytes both ways with half-close propagated.
//! - [`os`]: the two things std does not offer: exiting on SIGTERM as PID 1, and closing a
//!   connection with a reset.
//! - [`wire`]: the header's format, shared with the control plane.

pub mod config;
pub mod forward;
pub mod listen;
pub mod os;
pub mod resolve;
pub mod sniff;
pub mod splice;
pub mod wire;
