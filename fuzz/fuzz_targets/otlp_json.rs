//! OTLP JSON bodies (OTLP/HTTP `application/json`).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|body: &[u8]| common::run(sandbox::trace::otlp::Encoding::Json, body));
