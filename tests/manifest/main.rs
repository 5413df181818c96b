//! The manifest module as a specification: valid manifests and what they resolve to, one fixture per
//! way a manifest can be wrong (with its exact message locked in a snapshot), templates, and
//! robustness against arbitrary bytes.

mod compose;
mod compose_parse;
mod export;
mod fuzz;
mod gateway;
mod invalid;
mod smoke;
mod spec;
mod templates;
mod util;
mod valid;
