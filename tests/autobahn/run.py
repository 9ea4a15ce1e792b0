"""Run the Autobahn|Testsuite cases against a server with the raw echo app.

    python tests/autobahn/run.py                 # core groups 1-7, 9, 10 on tinyws
    python tests/autobahn/run.py --full          # every case, compression included
    python tests/autobahn/run.py --server uvicorn --case '5.*'

The cases are driven by ``kosoku`` (a Python 3 runner of Autobahn's case
files) in its fuzzingclient mode. The server is started on a free loopback
port with ``tests.apps.echo:app`` through the same harness as the end-to-end
suite. The compression groups (12, 13) run one case at a time: in parallel
they report false timeouts. The per-case reports (Autobahn's JSON and HTML)
land in ``reports/autobahn/<server>/``; this script prints a table of
verdicts per group and exits 1 on any FAILED, UNIMPLEMENTED or ERROR case.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.servers import ROOT, SERVERS, run_server

CORE = ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*")
COMPRESSION = ("12.*", "13.*")
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED", "ERROR")
BAD = ("FAILED", "UNIMPLEMENTED", "ERROR")
CASE_TIMEOUT = 1800.0

Batch = tuple[str, tuple[str, ...], int]
Index = dict[str, dict[str, object]]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = SERVERS[args.server].missing_module()
    if missing is not None:
        print(f"server {args.server!r} not installed: cannot import {missing!r}", file=sys.stderr)
        return 2
    if args.backend is not None and args.server != "tinyws":
        print("--backend applies to the tinyws server only", file=sys.stderr)
        return 2
    batches = _batches(args)
    label = args.server if args.backend is None else f"{args.server}-{args.backend}"
    outdir = Path(args.outdir) if args.outdir else ROOT / "reports" / "autobahn" / label
    extra = [] if args.backend is None else ["--backend", args.backend]
    results: Index = {}
    with run_server(args.server, args.app, extra) as server:
        for name, cases, parallelism in batches:
            address = f"{server.address[0]}:{server.port}"
            results.update(_run_kosoku(address, cases, parallelism, outdir / name))
        if server.process.poll() is not None:
            print(server.describe(), file=sys.stderr)
            return 1
    print(summary(results))
    print(f"\nreports: {outdir}")
    bad = failures(results)
    for case_id, verdict in bad:
        print(f"{verdict}: {case_id}", file=sys.stderr)
    return 1 if bad or not results else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="tinyws", choices=sorted(SERVERS))
    parser.add_argument("--app", default="tests.apps.echo:app", help="module:attr to serve")
    parser.add_argument(
        "--backend", choices=("asyncio", "trio"), help="tinyws serve --backend (tinyws only)"
    )
    parser.add_argument(
        "--full", action="store_true", help="every case, the compression groups 12 and 13 too"
    )
    parser.add_argument(
        "--case", action="append", metavar="GLOB", help="only these cases (repeatable)"
    )
    parser.add_argument("-p", "--parallelism", type=int, default=4)
    parser.add_argument("-o", "--outdir", help="report directory")
    return parser


def _batches(args: argparse.Namespace) -> list[Batch]:
    if args.case:
        return [("selected", tuple(args.case), args.parallelism)]
    batches: list[Batch] = [("core", CORE, args.parallelism)]
    if args.full:
        batches.append(("compression", COMPRESSION, 1))
    return batches


def _run_kosoku(address: str, cases: Sequence[str], parallelism: int, outdir: Path) -> Index:
    command = [_kosoku(), address, "-p", str(parallelism), "-o", str(outdir)]
    for case in cases:
        command += ["-i", case]
    print(f"$ kosoku {' '.join(command[1:])}", file=sys.stderr, flush=True)
    # kosoku's own exit status only covers FAILED; the index is read instead.
    subprocess.run(command, cwd=ROOT, timeout=CASE_TIMEOUT, check=False, stdout=sys.stderr)
    index_path = outdir / "index.json"
    if not index_path.exists():
        raise SystemExit(f"kosoku wrote no report in {outdir}")
    index: dict[str, Index] = json.loads(index_path.read_text())
    merged: Index = {}
    for cases_of_agent in index.values():
        merged.update(cases_of_agent)
    return merged


def _kosoku() -> str:
    """kosoku's console script, next to this interpreter or else on PATH."""
    beside = Path(sys.executable).parent / "kosoku"
    found = str(beside) if beside.exists() else shutil.which("kosoku")
    if found is None:
        raise SystemExit("kosoku is not installed (it comes with the 'test' extra)")
    return found


def _case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def _group(case_id: str) -> str:
    return case_id.split(".", 1)[0]


def summary(results: Index) -> str:
    """A table of verdict counts, one row per case group and a total."""
    rows: dict[str, Counter[str]] = {}
    for case_id in sorted(results, key=_case_key):
        rows.setdefault(_group(case_id), Counter())[str(results[case_id]["behavior"])] += 1
    total: Counter[str] = sum(rows.values(), Counter())
    header = ["group", "cases", *VERDICTS]
    lines = [header, ["---"] * len(header)]
    for group, counts in [*rows.items(), ("all", total)]:
        lines.append([group, str(counts.total()), *(str(counts[v]) for v in VERDICTS)])
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def failures(results: Index) -> list[tuple[str, str]]:
    """The cases whose verdict counts as a failure, in case order."""
    return [
        (case_id, str(results[case_id]["behavior"]))
        for case_id in sorted(results, key=_case_key)
        if results[case_id]["behavior"] in BAD
    ]


if __name__ == "__main__":
    sys.exit(main())
