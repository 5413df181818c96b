//! The manifest.
pub mod model;
pub use model::*;
