//! The proxy as a specification: routing, resilience, faults, the mesh, error pages, hot swaps,
//! passthrough (WebSocket, streaming), bad input and trace propagation. No Docker: upstreams are
//! in-process hyper servers or the demo service binary on 127.0.0.1.

/// `both_paths!(name);` above `async fn name() { … }` makes two tests, `name::fast` and
/// `name::hyper`: the same body with the proxy's HTTP/1.1 fast path on and off
/// (`Limits::fast_path`), so the accelerator and hyper, its reference, must agree. The helpers
/// that start a proxy ([`util::start_with`]) read the mode; a function left out of the macro is
/// unused, which `clippy -D warnings` refuses. Runtime options follow the name:
/// `both_paths!(name, flavor = "multi_thread")`.
macro_rules! both_paths {
    ($name:ident $(, $($runtime:tt)*)?) => {
        mod $name {
            #[tokio::test$(($($runtime)*))?]
            async fn fast() {
                crate::util::FAST_PATH.scope(true, super::$name()).await
            }
            #[tokio::test$(($($runtime)*))?]
            async fn hyper() {
                crate::util::FAST_PATH.scope(false, super::$name()).await
            }
        }
    };
}

mod access_log;
mod bad_input;
mod body_limit;
mod errors;
mod faults;
mod framing;
mod grpc;
mod grpc_peers;
mod grpc_real;
mod grpc_web;
mod mesh;
mod passthrough;
mod resilience;
mod routing;
mod stale;
mod swap;
mod tls;
mod tracing;
mod util;
mod workers;
