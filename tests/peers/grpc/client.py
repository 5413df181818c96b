"""A real gRPC client (Python grpcio) for the proxy's tests: one call of one kind to `test.Echo`
(see server.py), its outcome printed as one JSON object:

  {"code": "OK", "details": "...", "responses": [{"len", "sha256", "text"}],
   "initial": {...}, "trailing": {...}, "elapsed": seconds}

Usage: client.py TARGET KIND [options]
  KIND: unary | server-stream | client-stream | bidi | fail | slow | deadline | method
  --authority NAME   the :authority (Host) sent, e.g. `echo.sandbox:15001` for the mesh
  --message TEXT     the request message (unary, server-stream: the count, fail: `CODE text`, slow)
  --size N           unary: a message of N bytes instead (a repeating pattern)
  --chunks N --chunk-size M   client-stream: N messages of M bytes
  --count N          bidi: N messages, each sent only after the answer to the one before
  --deadline S       the call's deadline in seconds (grpcio sends it as `grpc-timeout`)
  --method PATH      kind `method`: a unary call to any path (e.g. one no route matches)
  --metadata K=V     request metadata (repeatable)
"""

import argparse
import hashlib
import json
import queue
import sys
import time

import grpc

UNLIMITED = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
]


def summary(message):
    text = message[:200].decode("utf-8", "replace") if len(message) <= 200 else None
    return {"len": len(message), "sha256": hashlib.sha256(message).hexdigest(), "text": text}


def pattern(size):
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("kind")
    parser.add_argument("--authority")
    parser.add_argument("--message", default="hello")
    parser.add_argument("--size", type=int)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=5)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--deadline", type=float)
    parser.add_argument("--method")
    parser.add_argument("--metadata", action="append", default=[])
    args = parser.parse_args()

    options = list(UNLIMITED)
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    channel = grpc.insecure_channel(args.target, options=options)
    metadata = [tuple(item.split("=", 1)) for item in args.metadata]
    message = pattern(args.size) if args.size is not None else args.message.encode()
    kinds = {
        "unary": ("Unary", channel.unary_unary),
        "server-stream": ("ServerStream", channel.unary_stream),
        "client-stream": ("ClientStream", channel.stream_unary),
        "bidi": ("Bidi", channel.stream_stream),
        "fail": ("Fail", channel.unary_stream),
        "slow": ("Slow", channel.unary_unary),
        "deadline": ("Deadline", channel.unary_unary),
    }
    if args.kind == "method":
        path, factory = args.method, channel.unary_unary
    else:
        name, factory = kinds[args.kind]
        path = f"/test.Echo/{name}"
    callable_ = factory(path)
    started = time.monotonic()
    responses = []
    outcome = {"code": "OK", "details": "", "initial": {}, "trailing": {}}
    call = None
    try:
        if args.kind == "client-stream":
            chunks = (pattern(args.chunk_size) for _ in range(args.chunks))
            response, call = callable_.with_call(chunks, timeout=args.deadline, metadata=metadata)
            responses.append(response)
        elif args.kind == "bidi":
            outgoing = queue.Queue()

            def requests():
                while True:
                    item = outgoing.get()
                    if item is None:
                        return
                    yield item

            call = callable_(requests(), timeout=args.deadline, metadata=metadata)
            for index in range(args.count):
                outgoing.put(f"{args.message} {index + 1}".encode())
                # The next message goes only after this answer came back through the proxy.
                responses.append(next(call))
            outgoing.put(None)
            for response in call:
                responses.append(response)
        elif args.kind in ("server-stream", "fail"):
            call = callable_(message, timeout=args.deadline, metadata=metadata)
            for response in call:
                responses.append(response)
        else:
            response, call = callable_.with_call(message, timeout=args.deadline, metadata=metadata)
            responses.append(response)
    except grpc.RpcError as error:
        call = error
        outcome["code"] = error.code().name
        outcome["details"] = error.details() or ""
    if call is not None:
        try:
            outcome["initial"] = dict(call.initial_metadata() or ())
            outcome["trailing"] = dict(call.trailing_metadata() or ())
            if outcome["code"] == "OK" and call.code() is not None:
                outcome["code"] = call.code().name
                outcome["details"] = call.details() or ""
        except Exception:  # noqa: BLE001 - metadata is best effort on a failed call
            pass
    outcome["responses"] = [summary(response) for response in responses]
    outcome["elapsed"] = time.monotonic() - started
    outcome["expected_sha256"] = hashlib.sha256(message).hexdigest()
    print(json.dumps(outcome, default=str))


if __name__ == "__main__":
    sys.exit(main())
