"""Reports a two-span trace with py-zipkin through its HTTP transport handler.

Usage: py_zipkin_peer.py {json-v1|json-v2|proto} HOST PORT
Prints the ids it reported as JSON.
"""
import json
import sys

from py_zipkin import Encoding, Kind
from py_zipkin.transport import SimpleHTTPTransport
from py_zipkin.zipkin import zipkin_span

fmt, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
encoding = {"json-v1": Encoding.V1_JSON, "json-v2": Encoding.V2_JSON, "proto": Encoding.V2_PROTO3}[fmt]
transport = SimpleHTTPTransport(host, port)

with zipkin_span(
    service_name="py-zipkin-" + fmt,
    span_name="GET /Orders",
    transport_handler=transport,
    sample_rate=100.0,
    encoding=encoding,
    kind=Kind.SERVER,
    binary_annotations={"http.method": "GET"},
) as root:
    with zipkin_span(service_name="py-zipkin-" + fmt, span_name="load-order") as child:
        child.update_binary_annotations({"db.table": "orders"})

print(json.dumps({
    "traceId": root.zipkin_attrs.trace_id,
    "rootId": root.zipkin_attrs.span_id,
    "childId": child.zipkin_attrs.span_id,
}))
