"""Reports a two-span trace with the OpenTelemetry Zipkin exporters.

Usage: otel_peer.py {json-v2|json-v1|proto} BASE_URL
Prints the ids it reported as JSON. Run one format per process: the JSON and protobuf exporters'
generated protobuf modules clash when imported together.
"""
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

fmt, base = sys.argv[1], sys.argv[2].rstrip("/")
if fmt == "proto":
    from opentelemetry.exporter.zipkin.proto.http import ZipkinExporter

    exporter = ZipkinExporter(endpoint=base + "/api/v2/spans")
else:
    from opentelemetry.exporter.zipkin.encoder import Protocol
    from opentelemetry.exporter.zipkin.json import ZipkinExporter

    if fmt == "json-v1":
        # max_tag_value_length works around the v1 encoder comparing None > 0.
        exporter = ZipkinExporter(
            version=Protocol.V1, endpoint=base + "/api/v1/spans", max_tag_value_length=1024
        )
    else:
        exporter = ZipkinExporter(version=Protocol.V2, endpoint=base + "/api/v2/spans")

provider = TracerProvider(resource=Resource.create({"service.name": "OTel-" + fmt}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("sandbox-peer")
with tracer.start_as_current_span(
    "GET /Checkout", kind=trace.SpanKind.SERVER, attributes={"http.method": "GET"}
) as root:
    with tracer.start_as_current_span(
        "load-cart", kind=trace.SpanKind.CLIENT, attributes={"peer.service": "cart"}
    ) as child:
        child.add_event("cache.miss")
provider.shutdown()

root_context, child_context = root.get_span_context(), child.get_span_context()
print(json.dumps({
    "traceId": format(root_context.trace_id, "032x"),
    "rootId": format(root_context.span_id, "016x"),
    "childId": format(child_context.span_id, "016x"),
}))
