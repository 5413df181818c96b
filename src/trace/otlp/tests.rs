//! Decoders (protobuf and the JSON mapping, with the specification's example bodies), the mapping
//! onto the Zipkin model, and random and mutated inputs (in place of a cargo-fuzz target: this
//! toolchain has no nightly).

use std::collections::BTreeMap;

use prost::Message;

use super::map::{self, value_text};
use super::proto::*;
use super::{decode, Accepted, Encoding, Signal};
use crate::trace::model::{Kind, SpanId, TraceId};

/// The trace example of the OTLP specification's `examples/trace.json`, as written there.
const SPEC_TRACE: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [
          { "key": "service.name", "value": { "stringValue": "my.service" } }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              { "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } }
            ]
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "parentSpanId": "EEE19B7EC3C1B173",
              "name": "I'm a server span",
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": "1544712661000000000",
              "kind": 2,
              "attributes": [
                { "key": "my.span.attr", "value": { "stringValue": "some value" } }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

/// The logs example of the specification's `examples/logs.json`, trimmed to its record.
const SPEC_LOGS: &str = r#"{
  "resourceLogs": [
    {
      "resource": {
        "attributes": [
          { "key": "service.name", "value": { "stringValue": "my.service" } }
        ]
      },
      "scopeLogs": [
        {
          "scope": { "name": "my.library", "version": "1.0.0" },
          "logRecords": [
            {
              "timeUnixNano": "1544712660300000000",
              "observedTimeUnixNano": "1544712660300000000",
              "severityNumber": 10,
              "severityText": "Information",
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "body": { "stringValue": "Example log record" },
              "attributes": [
                { "key": "string.attribute", "value": { "stringValue": "some string" } },
                { "key": "boolean.attribute", "value": { "boolValue": true } },
                { "key": "int.attribute", "value": { "intValue": "10" } },
                { "key": "double.attribute", "value": { "doubleValue": 637.704 } },
                { "key": "array.attribute", "value": { "arrayValue": { "values": [
                  { "stringValue": "many" }, { "stringValue": "values" } ] } } },
                { "key": "map.attribute", "value": { "kvlistValue": { "values": [
                  { "key": "some.map.key", "value": { "stringValue": "some value" } } ] } } }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

/// The metrics example's shape: a sum with one point, a gauge with one, a histogram with one.
const SPEC_METRICS: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[]},"scopeMetrics":[{
  "scope":{"name":"my.library"},"metrics":[
  {"name":"my.counter","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
    {"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000"}]}},
  {"name":"my.gauge","gauge":{"dataPoints":[{"asDouble":10,"timeUnixNano":"1544712660300000000"}]}},
  {"name":"my.histogram","histogram":{"aggregationTemporality":1,"dataPoints":[
    {"count":2,"sum":2,"bucketCounts":[1,1],"explicitBounds":[1],"min":0,"max":2}]}}]}]}]}"#;

fn string(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::String(text.into())),
    })
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn sample_request() -> ExportTraceServiceRequest {
    let span = OtlpSpan {
        trace_id: (1..=16).collect(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, 2],
        parent_span_id: vec![0, 0, 0, 0, 0, 0, 0, 1],
        trace_state: "vendor=1".into(),
        name: "GET /Cart".into(),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_002_500_000,
        attributes: vec![
            attribute("server.address", Value::String("cart.internal".into())),
            attribute("network.peer.address", Value::String("10.0.0.7".into())),
            attribute("server.port", Value::Int(8080)),
            attribute("http.status_code", Value::Int(503)),
            attribute("retry", Value::Bool(true)),
            attribute("ratio", Value::Double(0.25)),
            attribute("blob", Value::Bytes(vec![1, 2, 3])),
            attribute(
                "list",
                Value::Array(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::Int(1)),
                        },
                        string("two").unwrap(),
                    ],
                }),
            ),
        ],
        events: vec![
            Event {
                time_unix_nano: 1_700_000_000_001_000_000,
                name: "retry".into(),
                attributes: vec![],
                dropped_attributes_count: 0,
            },
            Event {
                time_unix_nano: 1_700_000_000_002_000_000,
                name: "exception".into(),
                attributes: vec![attribute("exception.type", Value::String("Timeout".into()))],
                dropped_attributes_count: 1,
            },
        ],
        links: vec![Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: String::new(),
            attributes: vec![attribute("why", Value::String("fan-in".into()))],
            dropped_attributes_count: 0,
        }],
        status: Some(Status {
            message: "upstream down".into(),
            code: 2,
        }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    attribute("service.name", Value::String("Checkout".into())),
                    attribute("host.name", Value::String("box".into())),
                ],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "2.0".into(),
                }),
                spans: vec![span],
            }],
        }],
    }
}

#[test]
fn the_specification_trace_example_decodes_and_maps() {
    let request: ExportTraceServiceRequest =
        decode(Signal::Traces, Encoding::Json, SPEC_TRACE.as_bytes()).unwrap();
    let mapped = map::spans(request);
    assert_eq!(mapped.rejected, 0);
    let span = &mapped.items[0];
    assert_eq!(span.trace_id, TraceId(0x5b8efff798038103d269b633813fc60c));
    assert_eq!(span.id, SpanId(0xeee19b7ec3c1b174));
    assert_eq!(span.parent_id, Some(SpanId(0xeee19b7ec3c1b173)));
    assert_eq!(span.kind, Some(Kind::Server));
    assert_eq!(span.timestamp, Some(1_544_712_660_000_000));
    assert_eq!(span.duration, Some(1_000_000));
    assert_eq!(span.local_service_name(), Some("my.service"));
    assert_eq!(span.tags["my.span.attr"], "some value");
    assert_eq!(span.tags["otel.scope.name"], "my.library");
    assert_eq!(span.tags["otel.scope.version"], "1.0.0");
    assert!(!span.tags.contains_key("service.name"));
}

#[test]
fn the_specification_logs_example_decodes_and_maps() {
    let request = decode(Signal::Logs, Encoding::Json, SPEC_LOGS.as_bytes()).unwrap();
    let mapped = map::logs(request, 42);
    assert_eq!(mapped.rejected, 0);
    let record = &mapped.items[0];
    assert_eq!(record.time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(record.severity_number, 10);
    assert_eq!(record.severity_text.as_deref(), Some("Information"));
    assert_eq!(record.body, "Example log record");
    assert_eq!(record.service.as_deref(), Some("my.service"));
    assert_eq!(
        record.trace_id,
        Some(TraceId(0x5b8efff798038103d269b633813fc60c))
    );
    assert_eq!(record.span_id, Some(SpanId(0xeee19b7ec3c1b174)));
    let attributes: BTreeMap<_, _> = record.attributes.iter().cloned().collect();
    assert_eq!(attributes["int.attribute"], "10");
    assert_eq!(attributes["double.attribute"], "637.704");
    assert_eq!(attributes["boolean.attribute"], "true");
    assert_eq!(attributes["array.attribute"], r#"["many","values"]"#);
    assert_eq!(
        attributes["map.attribute"],
        r#"{"some.map.key":"some value"}"#
    );
}

#[test]
fn metric_data_points_are_counted_in_both_encodings() {
    let request: ExportMetricsServiceRequest =
        decode(Signal::Metrics, Encoding::Json, SPEC_METRICS.as_bytes()).unwrap();
    assert_eq!(request.data_points(), 3);
    let again: ExportMetricsServiceRequest = decode(
        Signal::Metrics,
        Encoding::Protobuf,
        &request.encode_to_vec(),
    )
    .unwrap();
    assert_eq!(again.data_points(), 3);
}

#[test]
fn protobuf_and_json_decode_to_the_same_request() {
    let request = sample_request();
    let from_protobuf: ExportTraceServiceRequest =
        decode(Signal::Traces, Encoding::Protobuf, &request.encode_to_vec()).unwrap();
    assert_eq!(from_protobuf, request);
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"Checkout"}}]},
      "scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000002",
      "kind":3,"startTimeUnixNano":1700000000000000000,"endTimeUnixNano":"1700000000002500000",
      "status":{"code":2},"unknownField":{"x":[1,2]}}]}]}]}"#;
    let from_json: ExportTraceServiceRequest =
        decode(Signal::Traces, Encoding::Json, json.as_bytes()).unwrap();
    let span = &from_json.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        span.trace_id,
        request.resource_spans[0].scope_spans[0].spans[0].trace_id
    );
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(span.status.as_ref().unwrap().code, 2);
}

#[test]
fn spans_map_as_the_collectors_zipkin_exporter_maps_them() {
    let span = map::spans(sample_request()).items.remove(0);
    assert_eq!(span.kind, Some(Kind::Client));
    assert_eq!(span.name.as_deref(), Some("GET /Cart"));
    assert_eq!(span.local_service_name(), Some("Checkout"));
    let remote = span.remote_endpoint.as_ref().unwrap();
    assert_eq!(remote.service_name.as_deref(), Some("cart.internal"));
    assert_eq!(remote.ipv4, Some("10.0.0.7".parse().unwrap()));
    assert_eq!(remote.port, Some(8080));
    assert_eq!(span.duration, Some(2500));
    let tags = &span.tags;
    assert_eq!(tags["error"], "upstream down");
    assert_eq!(tags["otel.status_code"], "ERROR");
    assert_eq!(tags["otel.status_description"], "upstream down");
    assert_eq!(tags["http.status_code"], "503");
    assert_eq!(tags["retry"], "true");
    assert_eq!(tags["ratio"], "0.25");
    assert_eq!(tags["blob"], "AQID");
    assert_eq!(tags["list"], r#"[1,"two"]"#);
    assert_eq!(tags["host.name"], "box");
    assert_eq!(tags["otel.scope.name"], "io.opentelemetry.http");
    assert_eq!(tags["w3c.tracestate"], "vendor=1");
    assert_eq!(
        tags["otlp.link.0"],
        r#"09090909090909090909090909090909|0808080808080808||{"why":"fan-in"}|0"#
    );
    let annotations: Vec<(u64, &str)> = span
        .annotations
        .iter()
        .map(|a| (a.timestamp, a.value.as_str()))
        .collect();
    assert_eq!(
        annotations,
        [
            (1_700_000_000_001_000, "retry"),
            (
                1_700_000_000_002_000,
                r#"exception|{"exception.type":"Timeout"}|1"#
            )
        ]
    );
}

#[test]
fn server_spans_take_no_remote_service_from_their_own_address() {
    let mut request = sample_request();
    let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
    span.kind = 2;
    span.status = Some(Status {
        message: String::new(),
        code: 1,
    });
    span.attributes.push(attribute("error", Value::Bool(false)));
    let span = map::spans(request).items.remove(0);
    let remote = span.remote_endpoint.unwrap();
    assert_eq!(remote.service_name, None);
    assert_eq!(remote.port, None, "server.port is the server's own");
    assert_eq!(span.tags["otel.status_code"], "OK");
    assert!(!span.tags.contains_key("error"));
}

#[test]
fn internal_spans_and_missing_service_names() {
    let mut request = sample_request();
    request.resource_spans[0].resource = None;
    request.resource_spans[0].scope_spans[0].spans[0].kind = 1;
    request.resource_spans[0].scope_spans[0].spans[0].status = Some(Status {
        message: String::new(),
        code: 2,
    });
    let span = map::spans(request).items.remove(0);
    assert_eq!(span.kind, None);
    assert_eq!(span.tags["span.kind"], "internal");
    assert_eq!(span.tags["error"], "true");
    assert_eq!(span.local_service_name(), Some(map::NO_SERVICE_NAME));
}

#[test]
fn spans_with_bad_ids_are_rejected_alone() {
    let mut request = sample_request();
    let good = request.resource_spans[0].scope_spans[0].spans[0].clone();
    let mut short = good.clone();
    short.trace_id = vec![1, 2, 3];
    let mut zero = good.clone();
    zero.span_id = vec![0; 8];
    let mut parent = good.clone();
    parent.parent_span_id = vec![1];
    request.resource_spans[0].scope_spans[0].spans = vec![short, good, zero, parent];
    let mapped = map::spans(request);
    assert_eq!(mapped.items.len(), 1);
    assert_eq!(mapped.rejected, 3);
    assert_eq!(
        mapped.reason.as_deref(),
        Some("span 0: trace_id must be 16 bytes, was 3")
    );
    let accepted = Accepted {
        rejected: 3,
        message: mapped.reason.unwrap(),
    };
    let json: serde_json::Value =
        serde_json::from_slice(&accepted.to_json(Signal::Traces)).unwrap();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "3");
    let response = ExportResponse::decode(accepted.to_protobuf().as_slice()).unwrap();
    assert_eq!(response.partial_success.unwrap().rejected, 3);
    assert_eq!(Accepted::default().to_protobuf(), Vec::<u8>::new());
    assert_eq!(Accepted::default().to_json(Signal::Logs), b"{}");
}

#[test]
fn values_are_written_as_the_exporter_writes_them() {
    let text = |value: Value| value_text(Some(&AnyValue { value: Some(value) }));
    assert_eq!(text(Value::Double(1e21)), "1000000000000000000000");
    assert_eq!(text(Value::Double(f64::INFINITY)), "+Inf");
    assert_eq!(text(Value::Int(-3)), "-3");
    assert_eq!(value_text(None), "");
    assert_eq!(
        text(Value::Kvlist(KeyValueList {
            values: vec![
                attribute("b", Value::Int(1)),
                attribute("a", Value::Bool(false))
            ]
        })),
        r#"{"a":false,"b":1}"#
    );
}

#[test]
fn bad_bodies_are_errors_that_name_the_encoding_and_signal() {
    let error =
        decode::<ExportTraceServiceRequest>(Signal::Traces, Encoding::Protobuf, b"\x0a\xff")
            .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("malformed OTLP protobuf traces request:"),
        "{error}"
    );
    let error =
        decode::<ExportLogsServiceRequest>(Signal::Logs, Encoding::Json, b"[1]").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("malformed OTLP JSON logs request:"),
        "{error}"
    );
}

/// A deterministic xorshift source, so a failure reproduces.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random bytes and mutations of valid bodies never panic the decoders or the mapping.
#[test]
fn random_and_mutated_bodies_never_panic() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let valid_protobuf = sample_request().encode_to_vec();
    let seeds: [&[u8]; 4] = [
        &valid_protobuf,
        SPEC_TRACE.as_bytes(),
        SPEC_LOGS.as_bytes(),
        SPEC_METRICS.as_bytes(),
    ];
    for round in 0..20_000 {
        let mut body = if round % 5 == 0 {
            (0..random.next() % 256)
                .map(|_| random.next() as u8)
                .collect()
        } else {
            seeds[round % seeds.len()].to_vec()
        };
        for _ in 0..1 + random.next() % 4 {
            if body.is_empty() {
                break;
            }
            let at = (random.next() as usize) % body.len();
            match random.next() % 3 {
                0 => body[at] = random.next() as u8,
                1 => body.truncate(at),
                _ => body.insert(at, random.next() as u8),
            }
        }
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            if let Ok(request) = decode(Signal::Traces, encoding, &body) {
                let _ = map::spans(request);
            }
            if let Ok(request) = decode(Signal::Logs, encoding, &body) {
                let _ = map::logs(request, 1);
            }
            if let Ok(request) =
                decode::<ExportMetricsServiceRequest>(Signal::Metrics, encoding, &body)
            {
                let _ = request.data_points();
            }
        }
    }
}

#[test]
fn deeply_nested_values_are_refused_not_overflowed() {
    let depth = 100_000;
    let json = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"k","value":{}{}}}]}}}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(depth),
        "]}}".repeat(depth)
    );
    assert!(
        decode::<ExportTraceServiceRequest>(Signal::Traces, Encoding::Json, json.as_bytes())
            .is_err()
    );
    // Protobuf: arrays nested past prost's recursion limit (100) are an error, not a stack overflow.
    let mut value = AnyValue {
        value: Some(Value::Int(1)),
    };
    for _ in 0..150 {
        value = AnyValue {
            value: Some(Value::Array(ArrayValue {
                values: vec![value],
            })),
        };
    }
    let mut request = sample_request();
    request.resource_spans[0].scope_spans[0].spans[0].attributes = vec![KeyValue {
        key: "deep".into(),
        value: Some(value),
    }];
    let error = decode::<ExportTraceServiceRequest>(
        Signal::Traces,
        Encoding::Protobuf,
        &request.encode_to_vec(),
    )
    .unwrap_err();
    assert!(error.reason.contains("recursion limit"), "{error}");
}
