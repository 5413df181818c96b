"""Reports to an OTLP receiver with the OpenTelemetry Python SDK's own exporters.

Usage: otlp_peer.py {traces|logs|metrics} {http|grpc} ENDPOINT [PARENT_TRACE_ID PARENT_SPAN_ID]
- traces: a SERVER span with a CLIENT child (peer.service, an event, an array attribute, an error
  status, a link), optionally continuing the given remote parent.
- logs: two log records through the logging bridge, the second inside a span.
- metrics: a counter and a histogram, exported once.
Prints what it reported as JSON on its last line; exits non-zero when an export failed.
"""
import json
import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource

signal, transport, endpoint = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
resource = Resource.create({"service.name": "otel-" + transport, "deployment.environment": "test"})


def exporter(kind):
    if transport == "grpc":
        module = __import__(
            f"opentelemetry.exporter.otlp.proto.grpc.{kind}_exporter", fromlist=["x"]
        )
        names = {"trace": "OTLPSpanExporter", "_log": "OTLPLogExporter", "metric": "OTLPMetricExporter"}
        return getattr(module, names[kind])(endpoint=endpoint, insecure=True)
    module = __import__(f"opentelemetry.exporter.otlp.proto.http.{kind}_exporter", fromlist=["x"])
    paths = {"trace": "/v1/traces", "_log": "/v1/logs", "metric": "/v1/metrics"}
    names = {"trace": "OTLPSpanExporter", "_log": "OTLPLogExporter", "metric": "OTLPMetricExporter"}
    return getattr(module, names[kind])(endpoint=endpoint + paths[kind])


def traces():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

    class Checked(SpanExporter):
        """Passes spans to the real exporter and remembers whether every export succeeded."""

        def __init__(self, inner):
            self.inner, self.ok = inner, True

        def export(self, spans):
            result = self.inner.export(spans)
            self.ok = self.ok and result == SpanExportResult.SUCCESS
            return result

        def shutdown(self):
            self.inner.shutdown()

    provider = TracerProvider(resource=resource)
    recording = Checked(exporter("trace"))
    provider.add_span_processor(SimpleSpanProcessor(recording))
    tracer = provider.get_tracer("sandbox-otlp-peer", "1.2.3")
    context = None
    if len(sys.argv) > 5:
        parent = SpanContext(
            int(sys.argv[4], 16), int(sys.argv[5], 16), is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    linked = SpanContext(0x1234, 0x5678, is_remote=True)
    with tracer.start_as_current_span(
        "GET /Checkout", context=context, kind=trace.SpanKind.SERVER,
        attributes={"http.method": "GET", "http.status_code": 500, "retry": True},
        links=[Link(linked, {"reason": "batch"})],
    ) as root:
        with tracer.start_as_current_span(
            "load-cart", kind=trace.SpanKind.CLIENT,
            attributes={"peer.service": "cart", "tags": ["a", "b"], "ratio": 0.5},
        ) as child:
            child.add_event("cache.miss", {"key": "cart:1"})
            child.set_status(Status(StatusCode.ERROR, "cart unavailable"))
    provider.shutdown()
    if not recording.ok:
        sys.exit("the OTLP span export failed")
    print(json.dumps({
        "traceId": format(root.get_span_context().trace_id, "032x"),
        "rootId": format(root.get_span_context().span_id, "016x"),
        "childId": format(child.get_span_context().span_id, "016x"),
    }))


def logs():
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    provider = LoggerProvider(resource=resource)
    set_logger_provider(provider)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter("_log")))
    logger = logging.getLogger("shop.checkout")
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    logger.warning("stock low for %s", "sku-1", extra={"sku": "sku-1"})
    tracer = TracerProvider(resource=resource).get_tracer("sandbox-otlp-peer")
    with tracer.start_as_current_span("charge") as span:
        logger.error("payment declined")
    provider.shutdown()
    print(json.dumps({
        "traceId": format(span.get_span_context().trace_id, "032x"),
        "spanId": format(span.get_span_context().span_id, "016x"),
    }))


def metrics():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(exporter("metric"), export_interval_millis=60_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("sandbox-otlp-peer")
    meter.create_counter("orders").add(3, {"region": "eu"})
    meter.create_histogram("latency").record(12.5)
    provider.shutdown()
    print(json.dumps({"points": 2}))


{"traces": traces, "logs": logs, "metrics": metrics}[signal]()
