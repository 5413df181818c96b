//! The HTTP/1.1 accelerator (the fast path), switched by [`super::Limits::fast_path`]: what it
//! serves, it serves faster than hyper, its reference ([`super::hyper_server`],
//! [`super::hyper_client`]), and it hands everything else to hyper. Every proxy test runs with it
//! on and off.
//!
//! - `codec`: request heads read, response and request heads written, upstream response framing
//!   (pure; `httparse`).
//! - `server`: client connections, generic over the request handler ([`server::Service`]).
//! - `client`: the fast upstream client for bodiless requests.
//! - `line_ends`: bare-LF line ends in request heads refused, for both transports.

pub mod client;
pub mod codec;
pub mod line_ends;
pub mod server;
