"""A grpcio client for sandbox's end-to-end tests (tests/e2e/grpc.rs) against `grpc-peer serve`
(tests/peers/grpc-peer) through sandbox's gateway: unary and the three streaming kinds of
`demo.Echo` with raw-bytes messages (identity serializers), a status the server was asked to
answer, and `grpc.health.v1.Health/Check`. Each check prints one JSON line; the exit code is the
number of failed checks (0: all passed).

usage: e2e_client.py HOST:PORT
"""

import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def payload(index, size=32):
    return bytes(ord("a") + (at + index) % 26 for at in range(size))


def report(name, ok, **details):
    print(json.dumps({"check": name, "ok": ok, **details}), flush=True)
    return 0 if ok else 1


def trailers_of(call):
    return {key: value for key, value in (call.trailing_metadata() or ())}


def main(target):
    failures = 0
    identity = dict(request_serializer=None, response_deserializer=None)
    with grpc.insecure_channel(target) as channel:
        unary = channel.unary_unary("/demo.Echo/Unary", **identity)
        answer, call = unary.with_call(payload(0), timeout=10)
        failures += report("unary", answer == payload(0) and call.code() == grpc.StatusCode.OK,
                           code=call.code().name, size=len(answer))

        stream = channel.unary_stream("/demo.Echo/ServerStream", **identity)
        call = stream(payload(1), metadata=(("echo-count", "5"),), timeout=10)
        answers = list(call)
        failures += report("server-stream", answers == [payload(1)] * 5 and call.code() == grpc.StatusCode.OK,
                           code=call.code().name, received=[len(answer) for answer in answers])

        client_stream = channel.stream_unary("/demo.Echo/ClientStream", **identity)
        sent = [payload(index) for index in range(4)]
        answer, call = client_stream.with_call(iter(sent), timeout=10)
        trailers = trailers_of(call)
        failures += report("client-stream",
                           answer == b"".join(sent) and trailers.get("echo-count") == "4",
                           code=call.code().name, size=len(answer), trailers=trailers)

        bidi = channel.stream_stream("/demo.Echo/Bidi", **identity)
        sent = [payload(index) for index in range(6)]
        call = bidi(iter(sent), timeout=10)
        answers = list(call)
        failures += report("bidi", answers == sent and call.code() == grpc.StatusCode.OK,
                           code=call.code().name, received=[len(answer) for answer in answers])

        try:
            unary(payload(0), metadata=(("echo-status", "7"),), timeout=10)
            failures += report("status", False, error="the call succeeded")
        except grpc.RpcError as error:
            failures += report("status",
                               error.code() == grpc.StatusCode.PERMISSION_DENIED
                               and error.details() == "requested status 7",
                               code=error.code().name, details=error.details())

        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        failures += report("health", answer.status == health_pb2.HealthCheckResponse.SERVING,
                           status=health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
    return failures


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
