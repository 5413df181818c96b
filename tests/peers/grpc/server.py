"""A real gRPC server (Python grpcio) for the proxy's tests: service `test.Echo` with generic
handlers on raw bytes (no protobuf), one method per call kind.

  Unary         echoes the request message
  ServerStream  the request is a count N: answers `message 1` .. `message N`
  ClientStream  reads every message, answers JSON {"messages": n, "bytes": total}
  Bidi          answers each message with `echo: <message>` as it arrives
  Fail          the request is `CODE message`: sends one message, then trailing metadata
                `x-trailer: kept` and that status with that message (its details)
  Slow          waits the request's seconds (or until the call ends), then answers `late`
  Deadline      answers the time the server saw left of the call's deadline, in seconds (or `none`)

Usage: server.py [--mode ok|unavailable] [--name NAME]. Prints `{"port": N}` on its first line
once it listens on 127.0.0.1. In `unavailable` mode every call fails at once with UNAVAILABLE
(a trailers-only response), naming the replica.
"""

import argparse
import json
import sys
import time
from concurrent import futures

import grpc

UNLIMITED = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="ok", choices=["ok", "unavailable"])
    parser.add_argument("--name", default="echo")
    args = parser.parse_args()

    def guard(handler):
        def wrapped(request, context):
            if args.mode == "unavailable":
                context.abort(grpc.StatusCode.UNAVAILABLE, f"replica {args.name} is unavailable")
            return handler(request, context)

        return wrapped

    def unary(request, context):
        context.set_trailing_metadata((("x-replica", args.name),))
        return request

    def server_stream(request, context):
        for index in range(int(request.decode() or "0")):
            yield f"message {index + 1}".encode()

    def client_stream(requests, context):
        messages = total = 0
        for message in requests:
            messages += 1
            total += len(message)
        return json.dumps({"messages": messages, "bytes": total}).encode()

    def bidi(requests, context):
        for message in requests:
            yield b"echo: " + message

    def fail(request, context):
        code_name, _, message = request.decode().partition(" ")
        yield b"before the failure"
        context.set_trailing_metadata((("x-trailer", "kept"),))
        context.set_code(getattr(grpc.StatusCode, code_name))
        context.set_details(message)

    def slow(request, context):
        end = time.monotonic() + float(request.decode() or "10")
        while time.monotonic() < end and context.is_active():
            time.sleep(0.01)
        return b"late"

    def deadline(request, context):
        remaining = context.time_remaining()
        return (b"none" if remaining is None else f"{remaining:.3f}".encode())

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(guard(unary)),
        "ServerStream": grpc.unary_stream_rpc_method_handler(guard(server_stream)),
        "ClientStream": grpc.stream_unary_rpc_method_handler(guard(client_stream)),
        "Bidi": grpc.stream_stream_rpc_method_handler(guard(bidi)),
        "Fail": grpc.unary_stream_rpc_method_handler(guard(fail)),
        "Slow": grpc.unary_unary_rpc_method_handler(guard(slow)),
        "Deadline": grpc.unary_unary_rpc_method_handler(guard(deadline)),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=UNLIMITED)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"port": port}), flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
