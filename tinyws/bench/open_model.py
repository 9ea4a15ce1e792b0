"""``--rate R``: the open model, where handshakes start on a timetable, not when others end.

A closed-loop client (``-c C``) starts a handshake when one ends, so a
server that stalls for 300 ms also stops the client from sending: the stall
shows in C samples instead of in every handshake that would have arrived
meanwhile (coordinated omission). Here one scheduler task starts handshake
``i`` at its fixed time ``t0 + offset(i)`` whatever the server does, each in
its own task, and its latency counts from that *scheduled* time. A
handshake that starts late (the client's loop was busy, or ``--max-inflight``
handshakes were already in flight) still counts from its scheduled time, so
lateness can only make the figures worse, never hide a stall.

``service`` keeps the time from the actual start, as a closed-loop tool would
report it. ``Schedule`` says how well the timetable was kept: a start more
than ``LATE_NS`` behind schedule is a late start. It is the cap's doing when
the handshake was due before the scheduler last had to wait for room under
``--max-inflight``; otherwise the client itself (its CPU, or the machine's)
could not keep up, and the report warns about that.

The scheduler wakes ``EARLY_NS`` before a start is due: event loops round
sleeps up to whole milliseconds, so waking exactly on time would make most
starts late by up to 1 ms. A handshake started early counts from its actual start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TextIO

import anyio
from anyio.abc import TaskGroup

from tinyws.bench.client_handshake import Attempt, HandshakeError
from tinyws.bench.results import Results, Schedule
from tinyws.bench.runner import DEAD_AFTER, PROGRESS_INTERVAL, Plan, check_dead
from tinyws.bench.socket_driver import pick_driver

LATE_NS = 1_000_000
EARLY_NS = 500_000
# Above this share of late starts the client's own lateness gets a warning.
LATE_WARN_SHARE = 0.01


def offsets(rate: float, ramp: float = 0.0) -> Iterator[float]:
    """Yield the scheduled start of each handshake, in seconds from the first.

    During the ramp the rate grows linearly from 0 to ``rate``: the number of
    starts by time t is ``rate * t**2 / (2 * ramp)``, so handshake i is due at
    ``sqrt(2 * ramp * i / rate)``; after it, one every ``1 / rate`` seconds.
    """
    in_ramp = rate * ramp / 2
    i = 0
    while True:
        if i < in_ramp:
            yield math.sqrt(2 * ramp * i / rate)
        else:
            yield ramp + (i - in_ramp) / rate
        i += 1


class _OpenPhase:
    def __init__(self, plan: Plan, progress: TextIO | None) -> None:
        assert plan.rate is not None
        self.plan = plan
        self.progress = progress
        self.schedule = Schedule(target_rate=plan.rate)
        self.results = Results(expect=plan.expect, schedule=self.schedule)
        self.inflight = 0
        self.room = anyio.Event()
        self.driver = pick_driver(plan.target.tls is not None)
        self.dead_after = min(DEAD_AFTER, plan.count or DEAD_AFTER)
        self.t0 = time.perf_counter_ns()

    async def run(self) -> Results:
        async with anyio.create_task_group() as handshakes:
            if self.progress is not None:
                handshakes.start_soon(self._draw, self.progress)
            await self._schedule(handshakes)
            while self.inflight:
                await self._wait_for_room()
            handshakes.cancel_scope.cancel()  # the progress line
        return self.results

    async def _schedule(self, handshakes: TaskGroup) -> None:
        plan, schedule = self.plan, self.schedule
        assert plan.rate is not None
        limit = math.inf if plan.count is None else plan.count
        horizon = math.inf if plan.duration is None else plan.duration
        self.t0 = released = time.perf_counter_ns()
        for offset in offsets(plan.rate, plan.ramp):
            if schedule.scheduled >= limit or offset >= horizon or self.results.stopped:
                break
            due = self.t0 + int(offset * 1e9)
            wait = due - EARLY_NS - time.perf_counter_ns()
            if wait > 0:
                await anyio.sleep(wait / 1e9)
            while self.inflight >= plan.max_inflight:
                await self._wait_for_room()
                released = time.perf_counter_ns()
            # Due before the scheduler last waited for room: any lateness is the cap's.
            capped = due < released
            self.inflight += 1
            schedule.scheduled += 1
            handshakes.start_soon(self._one, due, capped)

    async def _wait_for_room(self) -> None:
        self.room = anyio.Event()
        await self.room.wait()

    async def _one(self, due: int, capped: bool) -> None:
        start = time.perf_counter_ns()
        self._note_start(start, due, capped)
        attempt, results = Attempt(), self.results
        late = max(0, start - due)
        with anyio.move_on_after(self.plan.timeout) as scope:
            try:
                await self.driver(self.plan.target, attempt)
            except HandshakeError as exc:
                self._failed(exc.kind, attempt, late, str(exc))
            else:
                results.add(attempt.status, attempt.latency_ns + late)
                results.service.record(attempt.latency_ns)
                results.split(attempt)
        if scope.cancelled_caught:
            self._failed("timeout", attempt, late, f"no response within {self.plan.timeout:g} s")
        self.inflight -= 1
        self.room.set()

    def _note_start(self, start: int, due: int, capped: bool) -> None:
        schedule = self.schedule
        schedule.span_s = (start - self.t0) / 1e9
        lag = start - due
        if lag > LATE_NS:
            schedule.late_starts += 1
            schedule.late_by_client += not capped
        schedule.max_lag_ns = max(schedule.max_lag_ns, lag)

    def _failed(self, kind: str, attempt: Attempt, late: int, detail: str) -> None:
        results = self.results
        latency = attempt.latency_ns + late if attempt.status else 0
        results.fail(kind, attempt.status, latency, detail)
        if attempt.status:
            results.service.record(attempt.latency_ns)
            results.split(attempt)
        check_dead(results, self.dead_after)

    async def _draw(self, out: TextIO) -> None:
        while True:
            await anyio.sleep(PROGRESS_INTERVAL)
            results, schedule = self.results, self.schedule
            errors = sum(results.errors.values())
            out.write(
                f"\r  {results.attempts} handshakes, {self.inflight} in flight, "
                f"{schedule.late_starts} late, {errors} errors "
            )
            out.flush()


def client_late(schedule: Schedule) -> bool:
    """Say whether the client's own lateness, not the cap, spoilt the timetable."""
    return schedule.late_by_client > max(1, LATE_WARN_SHARE * schedule.scheduled)


async def run(plan: Plan, progress: TextIO | None = None) -> Results:
    """Run the measured phase of the open model (the runner does the warmup)."""
    return await _OpenPhase(plan, progress).run()
