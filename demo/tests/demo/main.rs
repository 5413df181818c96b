//! Integration tests: each starts the real binary on a free port and talks HTTP to it.

mod builtins;
mod chain;
mod lifecycle;
mod limits;
mod tracing;
mod util;
mod websocket;
