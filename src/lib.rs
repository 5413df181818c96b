//! # sandbox
//!
//! A whole microservice system on one machine: containers on the real Docker engine, an L7 proxy and a
//! Zipkin-compatible trace server, all driven by one manifest (`sandbox.yaml`).
//!
//! # Layout
//! - [`manifest`]: reads `sandbox.yaml` (spanned YAML → interpolation → validation) into a [`manifest::Manifest`].
//! - [`ca`]: the local certificate authority (in the user's data folder) and the gateway's certificate.
//! - [`engine`]: the Docker side: connection, plan (desired vs. observed), apply, health, logs.
//! - [`trace`]: the in-memory Zipkin: model, codecs, bounded store, query, HTTP API.
//! - [`dashboard`]: the live web dashboard on the trace server's port (resources, actions, pages).
//! - [`proxy`]: the gateway and mesh L7 proxy.
//! - [`smoke`]: smoke checks against a running sandbox, and their JUnit report.
//! - [`events`]: progress events the core emits; only the CLI renders them.
//! - [`output`]: rendering of events, tables and colours for terminals, CI and JSON.
//! - [`control`]: where a running control plane is (state file), and detaching it.
//! - [`cli`]: argument parsing and one file per command; the only layer that prints.

pub mod ca;
pub mod cli;
pub mod control;
pub mod dashboard;
pub mod engine;
pub mod events;
pub mod manifest;
pub mod output;
pub mod proxy;
pub mod smoke;
pub mod trace;

/// mimalloc for every binary built on this crate (`sandbox`, the benches, the tests): the proxy
/// allocates and frees a handful of small buffers per request, and glibc's allocator spent about
/// a tenth of its instructions on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
