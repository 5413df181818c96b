//! End-to-end tests against the real Docker engine. Each test uses its own project name and removes
//! everything it made (see `util::Project`). They fail, never skip, when Docker is missing.

mod ci;
mod cleanup;
mod compose;
mod dashboard;
mod errors;
pub mod example;
mod forwarder;
mod grpc;
mod lifecycle;
pub mod mesh;
mod mesh_host;
mod mesh_wiring;
mod otlp;
mod podman;
mod proxy;
mod signals;
mod util;
mod zipkin;
