//! The mesh's forwarder, and the header it speaks with the control plane ([`wire`]).
//!
//! Std only: the binary is compiled by sandbox's build script with `rustc` alone and packaged
//! `FROM scratch`, so this crate has no dependencies.

pub mod wire;
