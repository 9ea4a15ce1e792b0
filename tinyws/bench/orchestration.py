"""Run what the command line asked for — one target, or two compared — and write the outputs.

Every output file is opened before the first handshake, so that a bad path
fails at once rather than after a long run. In ``--compare`` mode each run
is its own event loop (``anyio.run``), A and B alternating as ``compare.order``
says; ``--hdr`` then writes A's distribution (all rounds merged) to FILE
and B's next to it, ``-b`` added to the file's stem.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio

from tinyws.bench import compare, hdr, plot, report, runner
from tinyws.bench.histogram import Histogram
from tinyws.bench.results import Results


def pid_exists(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}/stat")


def b_path(path: str) -> str:
    """Return where ``--hdr FILE`` puts B's distribution under ``--compare``."""
    file = Path(path)
    return str(file.with_name(f"{file.stem}-b{file.suffix}"))


@dataclass
class Outputs:
    json: TextIO | None = None
    hdr: TextIO | None = None
    hdr_b: TextIO | None = None
    plot: TextIO | None = None

    def close(self) -> None:
        for out in (self.json, self.hdr, self.hdr_b, self.plot):
            if out is not None and out is not sys.stdout:
                out.close()


class OutputError(Exception):
    """Raised when an output file cannot be created; the message names the option."""


def _create(flag: str, path: str) -> TextIO:
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {flag} file: {exc}") from exc


def open_outputs(
    json_path: str | None, hdr_path: str | None, plot_path: str | None, comparing: bool
) -> Outputs:
    """Open every output file now; OutputError names the first that cannot be written."""
    outputs = Outputs()
    try:
        if json_path == "-":
            outputs.json = sys.stdout
        elif json_path is not None:
            outputs.json = _create("--json", json_path)
        if hdr_path is not None:
            outputs.hdr = _create("--hdr", hdr_path)
            if comparing:
                outputs.hdr_b = _create("--hdr", b_path(hdr_path))
        if plot_path is not None:
            outputs.plot = _create("--plot", plot_path)
    except OutputError:
        outputs.close()
        raise
    return outputs


@dataclass(frozen=True)
class Runtime:
    backend: str
    options: dict[str, object]
    label: str
    quiet: bool

    def run(self, plan: runner.Plan) -> Results:
        progress = runner.progress_stream(self.quiet)
        return anyio.run(
            runner.run, plan, progress, backend=self.backend, backend_options=self.options
        )


def _write_json(out: TextIO, data: dict[str, Any]) -> None:
    json.dump(data, out, indent=2)
    out.write("\n")
    out.flush()


def single(url: str, plan: runner.Plan, runtime: Runtime, outputs: Outputs) -> int:
    results = runtime.run(plan)
    text_out = sys.stderr if outputs.json is sys.stdout else sys.stdout
    text_out.write(report.to_text(url, plan, results, runtime.label))
    if outputs.json is not None:
        _write_json(outputs.json, report.to_json(url, plan, results, runtime.label))
    series = [("latency", results.latency)]
    if results.schedule is not None:
        series = [("latency (from schedule)", results.latency), ("service", results.service)]
    _write_plots(outputs, series, url, results.latency)
    if results.stopped is not None:
        sys.stderr.write(f"tinyws bench: {results.stopped}; is the server up at {url}?\n")
    if "tls-verify" in results.errors:
        sys.stderr.write(
            f"tinyws bench: the server's certificate failed verification ({results.first_error}); "
            "give its CA with --cacert PEM, or skip the check with --insecure\n"
        )
    return 1 if results.errors else 0


def _write_plots(
    outputs: Outputs, series: list[tuple[str, Histogram]], title: str, main: Histogram
) -> None:
    if outputs.hdr is not None:
        outputs.hdr.write(hdr.to_hgrm(main))
        outputs.hdr.flush()
    if outputs.plot is not None and any(hist.count for _, hist in series):
        outputs.plot.write(plot.to_svg(series, f"handshake latency: {title}"))
        outputs.plot.flush()


def both(
    sides: tuple[compare.Side, compare.Side],
    plans: tuple[runner.Plan, runner.Plan],
    rounds: int,
    runtime: Runtime,
    outputs: Outputs,
) -> int:
    """Run A and B in interleaved rounds, each with its own plan; report the ratios."""
    a, b = sides
    by_label = {"A": (a, plans[0]), "B": (b, plans[1])}
    for label in compare.order(rounds):
        side, plan = by_label[label]
        if not runtime.quiet:
            sys.stderr.write(f"round {len(side.runs) + 1}/{rounds}: {label} {side.url}\n")
        side.runs.append(runtime.run(plan))
    text_out = sys.stderr if outputs.json is sys.stdout else sys.stdout
    text_out.write(compare.to_text(a, b, rounds))
    runs = [*a.runs, *b.runs]
    errors = {kind: sum(r.errors[kind] for r in runs) for r in runs for kind in r.errors}
    if errors:
        text_out.write("errors       " + ", ".join(f"{k}: {n}" for k, n in errors.items()) + "\n")
    if outputs.json is not None:
        data = {
            "schema": report.SCHEMA_VERSION,
            "compare": compare.to_json(a, b, rounds),
            "runs": {
                label: [report.to_json(side.url, plan, r, runtime.label) for r in side.runs]
                for label, (side, plan) in by_label.items()
            },
        }
        _write_json(outputs.json, data)
    merged_a, merged_b = a.merged(), b.merged()
    if outputs.hdr_b is not None:
        outputs.hdr_b.write(hdr.to_hgrm(merged_b))
    _write_plots(outputs, [(f"A {a.url}", merged_a), (f"B {b.url}", merged_b)], "A / B", merged_a)
    return 1 if errors else 0
