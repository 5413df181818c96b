//! The proxy as a specification: routing, resilience, faults, the mesh, error pages, hot swaps,
//! passthrough (WebSocket, streaming), bad input and trace propagation. No Docker: upstreams are
//! in-process hyper servers or the demo service binary on 127.0.0.1.
//!
//! Each test runs as three variants: the proxy's HTTP/1.1 fast path on (`fast`) and off (`hyper`),
//! and an HTTP/2 client (`h2`: the request helpers speak h2c with prior knowledge), so every
//! feature must behave the same for HTTP/1.1 and HTTP/2 requests. A test that cannot apply to
//! HTTP/2 by nature (raw HTTP/1.1 bytes, chunked framing, `Connection: close`, upgrades) is
//! declared `h1_only!`, with the reason above it.

/// `both_paths!(name);` above `async fn name() { … }` makes three tests: `name::fast` and
/// `name::hyper`, the same body with the proxy's HTTP/1.1 fast path on and off
/// (`Limits::fast_path`), so the accelerator and hyper, its reference, must agree; and `name::h2`,
/// where the client helpers ([`util::send`], [`util::get`]) speak HTTP/2 with prior knowledge,
/// so every feature must work the same for HTTP/2 requests. The helpers that start a proxy
/// ([`util::start_with`]) and send requests read the variant; a task spawned by a test keeps it
/// through [`util::spawn`]. A function left out of the macro is unused, which
/// `clippy -D warnings` refuses. Runtime options follow the name:
/// `both_paths!(name, flavor = "multi_thread")`.
macro_rules! both_paths {
    ($name:ident $(, $($runtime:tt)*)?) => {
        variants!(
            $name,
            tokio::test$(($($runtime)*))?,
            fast(true, false),
            hyper(false, false),
            h2(true, true)
        );
    };
}

/// `h1_only!(name);`: `name::fast` and `name::hyper` only, for a test that cannot apply to
/// HTTP/2 by nature (raw HTTP/1.1 bytes, chunked framing, `Connection: close`, upgrades,
/// HTTP/1.1 keep-alive); a one-line comment above it says why.
macro_rules! h1_only {
    ($name:ident $(, $($runtime:tt)*)?) => {
        variants!(
            $name,
            tokio::test$(($($runtime)*))?,
            fast(true, false),
            hyper(false, false)
        );
    };
}

/// One test per variant: `variant(fast_path, http2)`.
macro_rules! variants {
    ($name:ident, $test:meta, $($variant:ident($fast_path:expr, $http2:expr)),*) => {
        mod $name {
            $(
                #[$test]
                async fn $variant() {
                    crate::util::variant($fast_path, $http2, super::$name()).await
                }
            )*
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
mod intake;
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
