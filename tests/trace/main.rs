//! Integration tests of the trace server: each starts the server in-process on `127.0.0.1:0`
//! and talks HTTP to it, as a Zipkin client or UI would.
//!
//! Where the Zipkin API spec and the Zipkin server differ, these tests follow the server (or a
//! documented choice of ours):
//! - `GET /api/v2/spans` returns span *names* (strings), not spans, as the server does.
//! - `GET /api/v2/remoteServices` exists (the spec omits it) and needs `serviceName`.
//! - Bad parameters answer 400 with the server's wording (`limit <= 0`, `endTs <= 0`,
//!   `maxDuration is only valid with minDuration`, ...); the spec lists few 400s.
//! - `/api/v2/dependencies` without `lookback` uses the server's default (one day), not `endTs`.
//! - `/api/v2/traceMany` with one id or a repeated id is a 400, as the server answers.
//! - A trace read back is merged as the server's `Trace.merge` does (fragments of one span become
//!   one; a server half sharing the client's id is marked `shared`) — for `/trace`, `/traceMany`
//!   and `/traces` alike.
//! - `/api/v2/spans` accepts an optional `spanKind` filter (an extension; invalid values are 400).
//! - The store evicts whole traces by first-ingest order, not by span timestamp (see `Store`).
//! - Empty annotationQuery terms (`error and `) are ignored rather than matching nothing.
//! - Names lists carry no `Cache-Control` header (the server adds one past 3 services).
//! - v1 Thrift is not accepted (400 saying so); v1 and v2 JSON and proto3 are.
//! - An empty POST body and an unsupported `Content-Encoding` are 400s with a message.
//! - `/api/v2/traces` applies the time window to the trace's timestamp (its root's, else its
//!   earliest), the timestamp the server's `QueryRequest.test` checks.
//! - Ingest is counted in `zipkin_collector_*{transport="http"}` as the server does; forwarding and
//!   storage have their own `zipkin_forward_*` and `zipkin_storage_*` series.
//! - OTLP (`otlp`): traces, logs and metrics over OTLP/HTTP and OTLP/gRPC from the OpenTelemetry
//!   Python SDK's own exporters (`tests/peers/otel/setup.sh`), joined with Zipkin spans.

mod api;
mod collector;
mod forward;
mod otlp;
mod peers;
mod server;
mod util;
