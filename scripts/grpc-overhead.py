#!/usr/bin/env python3
"""Per-call cost of a Python gRPC unary call against a raw TCP ping-pong.

The expert-parallelism study (arXiv 2506.23635) exchanges expert outputs between
Mac Studios with gRPC from Python. This times, over loopback on the machine it runs
on, a unary call carrying one DBRX expert output for one token (6144 x 2 bytes =
12,288 bytes) with a 1-byte reply, and the same bytes over a plain Python TCP socket
(TCP_NODELAY), each as the median of N calls after a warm-up. The difference is
what gRPC's stack (HTTP/2 framing, its thread pool, Python) adds per call.

    python3 -m venv /tmp/grpc && /tmp/grpc/bin/pip install grpcio
    /tmp/grpc/bin/python scripts/grpc-overhead.py [--bytes 12288] [--calls 3000]

Used by the README's DBRX section; it is not part of the tests.
"""
import argparse
import socket
import statistics
import threading
import time
from concurrent import futures

import grpc


def timed(call, n, warmup):
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return samples


def report(what, samples):
    print(
        f"{what}: median {samples[len(samples) // 2] * 1e6:.1f} us, "
        f"fastest {samples[0] * 1e6:.1f} us, mean {statistics.mean(samples) * 1e6:.1f} us"
    )


def grpc_calls(payload, n, warmup):
    identity = lambda b: b  # noqa: E731 - bytes in, bytes out, no protobuf
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: b"k",
        request_deserializer=identity,
        response_serializer=identity,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("probe.Exchange", {"Put": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    put = channel.unary_unary(
        "/probe.Exchange/Put", request_serializer=identity, response_deserializer=identity
    )
    samples = timed(lambda: put(payload), n, warmup)
    channel.close()
    server.stop(None)
    return samples


def tcp_calls(payload, n, warmup):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def echo():
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            got = 0
            while got < len(payload):
                data = conn.recv(1 << 16)
                if not data:
                    return
                got += len(data)
            conn.sendall(b"k")

    threading.Thread(target=echo, daemon=True).start()
    client = socket.create_connection(listener.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call():
        client.sendall(payload)
        client.recv(1)

    samples = timed(call, n, warmup)
    client.close()
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=12288)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    payload = bytes(args.bytes)
    warmup = 300
    report(f"grpc unary call, {args.bytes} B", grpc_calls(payload, args.calls, warmup))
    report(f"python tcp ping-pong, {args.bytes} B", tcp_calls(payload, args.calls, warmup))


if __name__ == "__main__":
    main()
