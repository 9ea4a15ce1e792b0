"""wss:// handshakes: server CPU per handshake with TLS, every server, interleaved.

Each server runs the raw app over TLS with an ECDSA P-256 and an RSA-2048
certificate (made here with trustme), pinned to CPU 0; ``tinyws bench
wss://`` runs pinned to CPU 1. The tinyws servers are also measured over
plain ``ws://`` in the same rounds, so that "wss minus ws" is what TLS adds
to a handshake on them; ``tls_floor.py`` (OpenSSL alone, one handshake at a
time) runs in every round for the raw cost of the TLS handshake itself.
Targets are interleaved over rounds (A B ... B A); figures are medians.

    python benchmarks/wss_run.py [--rounds 3] [-n 500] [--json FILE] [--md FILE]

Only 127.0.0.1 is used; only the processes started here are stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import trustme
from cryptography.hazmat.primitives import serialization

EXPECTED = {"accept": 101, "reject": 403}
DEFAULT_SERVERS = ["tinyws", "tinyws-uvloop", "uvicorn-wsproto", "uvicorn", "hypercorn", "granian"]
PLAIN_SERVERS = ("tinyws", "tinyws-uvloop")  # also over ws://, for the TLS layer's share
KEYS = {"ecdsa": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}


@dataclass(frozen=True)
class Target:
    server: str
    key: str  # "ecdsa", "rsa" or "plain" (ws://)


@dataclass(frozen=True)
class Certs:
    ca: str  # the CA certificate, for the client's --cacert
    chain: str  # the server's certificate chain
    key: str  # its private key, PKCS#8 (granian takes no other)


def make_certs(key: str, tmp: Path) -> Certs:
    ca = trustme.CA(key_type=KEYS[key])
    leaf = ca.issue_cert("127.0.0.1", "localhost", key_type=KEYS[key])
    private = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    paths = Certs(*(str(tmp / f"{key}-{name}.pem") for name in ("ca", "chain", "key")))
    ca.cert_pem.write_to_path(paths.ca)
    Path(paths.chain).write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    Path(paths.key).write_bytes(pkcs8)
    return paths


def bench(url: str, cacert: str | None, n: int, opts: argparse.Namespace) -> dict[str, Any]:
    """``tinyws bench`` on CPU 1; its JSON report."""
    report = Path(opts.tmp, "bench.json")
    report.unlink(missing_ok=True)
    path = url.rsplit("/", 1)[1]
    args = [sys.executable, "-m", "tinyws", "bench", url, "-n", str(n), "-c", str(opts.c)]
    args += ["--quiet", "--expect", str(EXPECTED[path]), "--timeout", "20", "--json", str(report)]
    args += ["--cacert", cacert] if cacert else []
    done = subprocess.run(
        harness.pinned(1, args, opts.taskset),
        capture_output=True,
        timeout=120 + n / 10,
        check=False,
    )
    if done.returncode not in (0, 1) or not report.exists():
        raise RuntimeError(f"tinyws bench exited {done.returncode}: {done.stderr.decode()[-800:]}")
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def measure(
    target: Target, certs: dict[str, Certs], opts: argparse.Namespace
) -> list[dict[str, Any]]:
    """One round of one target: warm up, then every path, server CPU read around each."""
    tls = certs.get(target.key)
    launch = harness.Launch(tls=(tls.chain, tls.key) if tls else None)
    scheme, cacert = ("wss", tls.ca) if tls else ("ws", None)
    log = Path(opts.tmp, "server.log")
    rows = []
    with harness.server_process(target.server, "raw", opts.taskset, log, launch) as (pgid, port):
        for path in opts.paths:
            bench(f"{scheme}://{harness.HOST}:{port}/{path}", cacert, opts.warmup, opts)
        for path in opts.paths:
            before = harness.cpu_snapshot(pgid)
            data = bench(f"{scheme}://{harness.HOST}:{port}/{path}", cacert, opts.n, opts)
            cpu, source = harness.cpu_between(before, harness.cpu_snapshot(pgid))
            count = int(data["handshakes"]) or 1
            rows.append({
                "server": target.server, "key": target.key, "path": path,
                "cpu_us": cpu * 1e6 / count, "rate": data["handshakes_per_s"],
                "p50_us": data["latency_us"]["p50"], "errors": data["errors"],
                "phases_us": data.get("phases_us"), "cpu_source": source,
            })  # fmt: skip
    return rows


def tls_floor(opts: argparse.Namespace) -> list[dict[str, Any]]:
    """OpenSSL alone (and through tinyws' TLS layer), one handshake at a time."""
    report = Path(opts.tmp, "floor.json")
    script = str(harness.HERE / "tls_floor.py")
    args = [sys.executable, script, "-n", str(opts.n), "--key", *opts.keys]
    args += ["--server", "ssl", "layer", "--json", str(report)]
    subprocess.run(args, capture_output=True, timeout=600, check=True)
    rows: list[dict[str, Any]] = json.loads(report.read_text())
    return rows


def run(opts: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    targets = [Target(s, k) for k in opts.keys for s in opts.servers]
    targets += [Target(s, "plain") for s in opts.servers if s in PLAIN_SERVERS]
    out: dict[str, list[dict[str, Any]]] = {"runs": [], "floor": [], "failures": []}
    with tempfile.TemporaryDirectory(prefix="tinyws-wss-") as opts.tmp:
        certs = {key: make_certs(key, Path(opts.tmp)) for key in opts.keys}
        for rnd in range(opts.rounds):
            for target in targets if rnd % 2 == 0 else targets[::-1]:
                try:
                    rows = measure(target, certs, opts)
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                    out["failures"].append({"target": str(target), "error": str(exc)})
                    print(f"FAIL {target}: {exc}", file=sys.stderr)
                    continue
                out["runs"] += [{**row, "round": rnd} for row in rows]
                print(f"round {rnd + 1} {target.server} {target.key}", file=sys.stderr)
            if not opts.no_floor:
                out["floor"] += [{**row, "round": rnd} for row in tls_floor(opts)]
    return out


def summary(found: dict[str, list[dict[str, Any]]]) -> list[str]:
    """A markdown table: median server CPU per handshake, spread, rate, over rounds."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in found["runs"]:
        groups.setdefault((row["server"], row["key"], row["path"]), []).append(row)
    lines = ["| server | certificate | path | server CPU µs/handshake (median) | "
             "max/min over rounds | handshakes/s | runs with errors |",
             "|---|---|---|--:|--:|--:|--:|"]  # fmt: skip
    for (server, key, path), rows in sorted(groups.items()):
        cpu = [r["cpu_us"] for r in rows]
        bad = sum(1 for r in rows if r["errors"])
        lines.append(
            f"| {server} | {key} | {path} | {statistics.median(cpu):.0f} | "
            f"{max(cpu) / min(cpu):.2f} | {statistics.median(r['rate'] for r in rows):.0f} | "
            f"{bad}/{len(rows)} |"
        )
    floors: dict[tuple[str, str], list[float]] = {}
    for row in found["floor"]:
        floors.setdefault((row["key"], row["server"]), []).append(
            float(row["server_cpu_us_per_handshake"])
        )
    for (key, kind), values in sorted(floors.items()):
        lines.append(
            f"| tls_floor.py ({kind}, C=1) | {key} | handshake | {statistics.median(values):.0f} | "
            f"{max(values) / min(values):.2f} | — | — |"
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--rounds", type=int, default=3)
    add("-n", type=int, default=500, help="measured handshakes per run (default 500)")
    add("--warmup", type=int, default=64, help="unmeasured handshakes per path")
    add("-c", type=int, default=32, help="concurrency (default 32)")
    add("--servers", type=harness.csv_choices(list(harness.SERVERS)), default=DEFAULT_SERVERS)
    add("--keys", type=harness.csv_choices(list(KEYS)), default=list(KEYS))
    add("--paths", type=harness.csv_choices(list(EXPECTED)), default=list(EXPECTED))
    add("--no-floor", action="store_true", help="skip tls_floor.py")
    add("--json", metavar="FILE", help="write every run as JSON")
    add("--md", metavar="FILE", help="write the summary table as markdown")
    opts = parser.parse_args(argv)
    opts.taskset = harness.find_taskset()
    found = run(opts)
    table = "\n".join(summary(found))
    print(table)
    if opts.json:
        Path(opts.json).write_text(json.dumps(found, indent=1) + "\n")
    if opts.md:
        Path(opts.md).write_text(table + "\n")
    return 1 if found["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
