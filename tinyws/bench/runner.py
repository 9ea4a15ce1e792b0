"""Drive handshakes from C concurrent workers and collect the results.

Each worker runs handshakes back to back until the plan says stop: after
``count`` handshakes in all, or once ``duration`` seconds have passed (those
in flight then finish). Warmup handshakes run the same way first and are
thrown away.

Timeouts cost nothing per handshake: instead of a cancel scope with a
deadline around every handshake (a timer armed and disarmed each time), a
worker only writes its deadline into a slot, and one ticker task checks the
slots a few times per timeout period and cancels the scope of a worker whose
handshake is overdue. The ticker also draws the progress line. A timeout is
therefore honoured to within a quarter of its length (at most 0.1 s).

A dead target stops the run early: when the first ``DEAD_AFTER`` handshakes of
a phase (or all of them, when the phase has fewer) have all failed before any
response, each refused, reset, unreachable or timed out, the phase ends there
and ``Results.stopped`` says so, naming the first error. One response anywhere
disarms the check; handshakes in flight at the stop still finish.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import anyio

from tinyws.bench.client_handshake import Attempt, HandshakeError, Target
from tinyws.bench.results import Results
from tinyws.bench.socket_driver import pick_driver

PROGRESS_INTERVAL = 0.25
DEAD_AFTER = 100
# Failures that say "nothing is answering there", as opposed to a server that
# answered badly: these alone count towards the early stop.
UNREACHABLE = frozenset(
    {
        "refused",
        "reset",
        "timeout",
        "oserror:EHOSTUNREACH",
        "oserror:ENETUNREACH",
        "oserror:EHOSTDOWN",
    }
)


@dataclass(frozen=True)
class Plan:
    """What to run: ``count`` handshakes or, when it is None, ``duration`` seconds."""

    target: Target
    concurrency: int = 1
    count: int | None = 1000
    duration: float | None = None
    warmup: int = 0
    timeout: float = 10.0
    expect: int | None = None
    rate: float | None = None  # the open model (open_model.py) when set
    max_inflight: int = 1000
    ramp: float = 0.0
    server_pids: tuple[int, ...] = ()  # their CPU time over the measured phase is reported


class _Slot:
    """A worker's in-flight deadline and the scope the ticker cancels when it passes."""

    __slots__ = ("deadline", "scope")

    def __init__(self) -> None:
        self.deadline = math.inf
        self.scope = anyio.CancelScope()


class _Phase:
    def __init__(self, plan: Plan, count: int | None, progress: TextIO | None) -> None:
        self.plan = plan
        self.left = count
        self.stop_at = math.inf
        self.started = time.monotonic()
        self.progress = progress
        self.results = Results(expect=plan.expect)
        self.dead_after = min(DEAD_AFTER, count or DEAD_AFTER)
        self.slots = [_Slot() for _ in range(min(plan.concurrency, count or plan.concurrency))]

    def take(self) -> bool:
        """Claim the next handshake, or say that the phase is over."""
        if self.results.stopped is not None:
            return False
        if self.left is None:
            return time.monotonic() < self.stop_at
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    async def run(self) -> Results:
        self.started = time.monotonic()
        if self.plan.duration is not None and self.left is None:
            self.stop_at = time.monotonic() + self.plan.duration
        async with anyio.create_task_group() as ticker:
            ticker.start_soon(self._tick)
            async with anyio.create_task_group() as workers:
                for slot in self.slots:
                    workers.start_soon(self._work, slot)
            ticker.cancel_scope.cancel()
        return self.results

    async def _work(self, slot: _Slot) -> None:
        target, timeout, results = self.plan.target, self.plan.timeout, self.results
        handshake, attempt = pick_driver(target.tls is not None), Attempt()
        while True:
            with anyio.CancelScope() as slot.scope:
                while self.take():
                    slot.deadline = time.monotonic() + timeout
                    try:
                        await handshake(target, attempt)
                    except HandshakeError as exc:
                        self._failed(exc.kind, attempt, str(exc))
                    else:
                        results.add(attempt.status, attempt.latency_ns)
                        results.split(attempt)
                    slot.deadline = math.inf
            if not slot.scope.cancelled_caught:
                return
            self._failed("timeout", attempt, f"no response within {timeout:g} s")

    def _failed(self, kind: str, attempt: Attempt, detail: str) -> None:
        self.results.fail(kind, attempt.status, attempt.latency_ns, detail)
        self.results.split(attempt)
        check_dead(self.results, self.dead_after)

    async def _tick(self) -> None:
        interval = min(0.1, self.plan.timeout / 4)
        next_progress = time.monotonic() + PROGRESS_INTERVAL
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            for slot in self.slots:
                if slot.deadline < now:
                    slot.deadline = math.inf
                    slot.scope.cancel()
            if self.progress is not None and now >= next_progress:
                next_progress = now + PROGRESS_INTERVAL
                self._draw(self.progress)

    def _draw(self, out: TextIO) -> None:
        results = self.results
        total = f"/{self.plan.count}" if self.left is not None else ""
        errors = sum(results.errors.values())
        rate = results.attempts / max(time.monotonic() - self.started, 1e-9)
        out.write(f"\r  {results.attempts}{total} handshakes, {rate:.0f}/s, {errors} errors ")
        out.flush()


def check_dead(results: Results, dead_after: int) -> None:
    """Stop the phase when its first ``dead_after`` handshakes all found nobody there."""
    if results.responses or results.stopped is not None or results.attempts < dead_after:
        return
    if all(kind in UNREACHABLE for kind in results.errors):
        results.stopped = (
            f"stopped early: the first {results.attempts} handshakes all failed "
            f"without a response (first error {results.first_error})"
        )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pids: tuple[int, ...]) -> float | None:
    """Return the user+system CPU seconds of the processes so far (Linux's /proc),
    or None when one of them is gone."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                # The command name (field 2) may hold spaces: count fields after its ")".
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15
    return total / CLOCK_TICKS


def _cpu_times() -> tuple[float, float]:
    """User and system CPU of this process (on Windows, the total as user time)."""
    if sys.platform == "win32":  # no resource module there
        return time.process_time(), 0.0
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def run(plan: Plan, progress: TextIO | None = None) -> Results:
    """Run the warmup, then the measured phase; return the measured results."""
    if plan.warmup:
        warmup = await _Phase(plan, plan.warmup, None).run()
        if warmup.stopped is not None:
            return warmup
    server = process_cpu(plan.server_pids) if plan.server_pids else None
    user, system = _cpu_times()
    started = time.perf_counter()
    if plan.rate is not None:
        from tinyws.bench import open_model  # it builds on this module

        results = await open_model.run(plan, progress)
    else:
        results = await _Phase(plan, plan.count, progress).run()
    results.elapsed = time.perf_counter() - started
    user_end, system_end = _cpu_times()
    results.cpu_user, results.cpu_system = user_end - user, system_end - system
    server_end = process_cpu(plan.server_pids) if server is not None else None
    if server is not None and server_end is not None:
        results.server_cpu = server_end - server
    elif plan.server_pids:
        results.server_gone = True
    if progress is not None:
        progress.write("\r" + " " * 60 + "\r")
        progress.flush()
    return results


def progress_stream(quiet: bool) -> TextIO | None:
    """Return stderr when a live progress line makes sense there."""
    return None if quiet or not sys.stderr.isatty() else sys.stderr
