//! The proxy as a specification: routing, resilience, faults, the mesh, error pages, hot swaps,
//! passthrough (WebSocket, streaming), bad input and trace propagation. No Docker: upstreams are
//! in-process hyper servers or the demo service binary on 127.0.0.1.

mod access_log;
mod bad_input;
mod errors;
mod faults;
mod mesh;
mod passthrough;
mod resilience;
mod routing;
mod swap;
mod tracing;
mod util;
