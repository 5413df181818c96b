//! OTLP protobuf bodies (OTLP/HTTP `application/x-protobuf`, every OTLP/gRPC message).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|body: &[u8]| common::run(sandbox::trace::otlp::Encoding::Protobuf, body));
