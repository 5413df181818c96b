//! The mesh's forwarder: it holds a service's DNS names and ports beside the service's
//! containers and hands every connection it accepts to the sandbox control plane, prefixed by a
//! PROXY protocol v2 header ([`wire`]) that says who called, which service and port, what the
//! connection's first bytes are ([`sniff`]), and carries the sandbox's token. HTTP connections
//! then pass through the control plane; for any other (L4) connection the control plane answers
//! with the replicas to connect and the forwarder splices the caller to one itself, reporting
//! back how it went. In dial mode it also opens connections on the control plane's behalf.
//!
//! Std only: the binary is compiled by sandbox's build script with `rustc` alone and packaged
//! `FROM scratch`, so this crate has no dependencies.
//!
//! # Layout
//! - [`config`]: the environment the forwarder is started with, validated.
//! - [`forward`]: the listeners and what happens to each accepted connection.
//! - [`listen`]: binding a port on every address family the container has.
//! - [`resolve`]: finding and connecting the intake (IP literal, `/etc/hosts`, the resolver).
//! - [`sniff`]: what a connection's first bytes are (HTTP, TLS and its SNI, anything else),
//!   shared with the control plane.
//! - [`splice`]: copying bytes both ways with half-close propagated.
//! - [`os`]: what std does not offer: exiting on SIGTERM as PID 1, closing a connection with a
//!   reset, and `splice(2)` through a pipe.
//! - [`wire`]: the header's and the L4 control messages' format, shared with the control plane.

pub mod config;
pub mod forward;
pub mod listen;
pub mod os;
pub mod resolve;
pub mod sniff;
pub mod splice;
pub mod wire;
