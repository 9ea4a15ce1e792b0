"""The floor of a TLS handshake: server CPU per full handshake, OpenSSL alone.

A minimal blocking server made of nothing but the `ssl` module accepts a
connection, completes the TLS handshake and closes; a client in this
process makes full handshakes one after another (no session resumption).
The server runs in its own process pinned to one CPU and the client to
another (like `taskset -c 0` / `taskset -c 1`), and the server's own CPU time
(user + system, from getrusage) is divided by the handshakes it completed.

`--server layer` runs the same loop through tinyws' sans-IO `TLSLayer`
(MemoryBIO + SSLObject) instead of an `SSLSocket`: the difference is what the
layer adds over OpenSSL.

    python benchmarks/tls_floor.py [-n 2000] [--key ecdsa rsa] [--server ssl layer]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import ssl
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import trustme

from tinyws.server.tls import TLSLayer, build_ssl_context

KEYS = {"ecdsa": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}


def serve(pem: str, kind: str, cpu: int, counts: tuple[int, int], pipe: Connection) -> None:
    """The server process: `total` handshakes, CPU measured after the warm-up."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    context = build_ssl_context(pem)
    handshake = _ssl_handshake if kind == "ssl" else _layer_handshake
    warmup, total = counts
    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        pipe.send(listener.getsockname()[1])
        start = time.perf_counter(), _cpu()
        for done in range(total):
            if done == warmup:
                start = time.perf_counter(), _cpu()
            sock, _ = listener.accept()
            with sock:
                handshake(context, sock)
        pipe.send((total - warmup, _cpu() - start[1], time.perf_counter() - start[0]))


def _ssl_handshake(context: ssl.SSLContext, sock: socket.socket) -> None:
    with context.wrap_socket(sock, server_side=True):
        pass  # wrap_socket ran the handshake; closing without close_notify, as servers do


def _layer_handshake(context: ssl.SSLContext, sock: socket.socket) -> None:
    layer = TLSLayer(context)
    while not layer.established:
        data = sock.recv(65536)
        layer.receive(data)
        out = layer.data_to_send()
        if out:
            sock.sendall(out)
        if not data or layer.failure is not None:
            raise RuntimeError(f"handshake failed: {layer.reason or 'EOF'}")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    key: str, kind: str, counts: tuple[int, int], cpus: tuple[int, int], tmp: Path
) -> dict[str, object]:
    """One server run: `counts` is (warm-up, measured) handshakes."""
    ca = trustme.CA(key_type=KEYS[key])
    pem = tmp / f"{key}.pem"
    ca.issue_cert("localhost", key_type=KEYS[key]).private_key_and_cert_chain_pem.write_to_path(
        str(pem)
    )
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ours, theirs = multiprocessing.Pipe()
    total = sum(counts)
    job = (str(pem), kind, cpus[0], (counts[0], total), theirs)
    server = multiprocessing.Process(target=serve, args=job)
    server.start()
    port = ours.recv()
    for _ in range(total):
        with (
            socket.create_connection(("127.0.0.1", port)) as sock,
            client.wrap_socket(sock, server_hostname="localhost") as tls,
        ):
            version = tls.version()
            tls.recv(1)  # TLS 1.3 tickets, then the server's close
    handshakes, cpu, wall = ours.recv()
    server.join(10)
    return {
        "key": key,
        "server": kind,
        "tls": version,
        "handshakes": handshakes,
        "server_cpu_us_per_handshake": round(cpu / handshakes * 1e6, 1),
        "handshakes_per_s": round(handshakes / wall),
    }


def _run(args: argparse.Namespace) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.key:
            for kind in args.server:
                cpus = (args.cpus[0], args.cpus[1])
                row = measure(key, kind, (args.warmup, args.n), cpus, Path(tmp))
                rows.append(row)
                print(
                    f"{key:6} {kind:6} {row['tls']}: {row['server_cpu_us_per_handshake']} µs "
                    f"server CPU per handshake, {row['handshakes_per_s']}/s",
                    flush=True,
                )
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="measured handshakes per run")
    parser.add_argument("--warmup", type=int, default=50, help="handshakes before measuring")
    parser.add_argument("--key", nargs="+", choices=sorted(KEYS), default=["ecdsa", "rsa"])
    parser.add_argument("--server", nargs="+", choices=["ssl", "layer"], default=["ssl"])
    parser.add_argument("--cpus", type=int, nargs=2, default=[0, 1], metavar=("SERVER", "CLIENT"))
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    args = parser.parse_args(argv)
    pinned = hasattr(os, "sched_setaffinity")
    before = os.sched_getaffinity(0) if pinned else set()
    if pinned:
        os.sched_setaffinity(0, {args.cpus[1]})
    try:
        rows = _run(args)
    finally:
        if pinned:  # as it was: main() also runs inside the test suite
            os.sched_setaffinity(0, before)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
