"""What a measured phase of the benchmark produced: counts, histograms, client CPU.

Latencies are recorded in nanoseconds. ``latency`` is what the report calls
the latency: from the start of each handshake in the closed model (``-c``),
from its *scheduled* start in the open model (``--rate``), where ``service``
holds the time from the actual start as well. ``phases`` splits each
handshake that got a response head into ``connect``, ``tls`` (``wss://``
only) and ``upgrade``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tinyws.bench.client_handshake import Attempt
from tinyws.bench.histogram import Histogram

PHASES = ("connect", "tls", "upgrade")


def _phases() -> dict[str, Histogram]:
    return {name: Histogram() for name in PHASES}


@dataclass
class Schedule:
    """How well the open model kept its timetable."""

    target_rate: float = 0.0
    late_starts: int = 0  # started more than LATE_NS after their scheduled time
    late_by_client: int = 0  # of those, not held back by --max-inflight: the client was busy
    max_lag_ns: int = 0  # the latest start, behind its schedule
    scheduled: int = 0
    span_s: float = 0.0  # from the first scheduled start to the last actual start

    @property
    def achieved_rate(self) -> float:
        """Handshakes started per second over the schedule's span."""
        return (self.scheduled - 1) / self.span_s if self.span_s > 0 else 0.0


@dataclass
class Results:
    """What one measured phase produced."""

    latency: Histogram = field(default_factory=Histogram)
    service: Histogram = field(default_factory=Histogram)
    phases: dict[str, Histogram] = field(default_factory=_phases)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    elapsed: float = 0.0
    cpu_user: float = 0.0
    cpu_system: float = 0.0
    expect: int | None = None
    first_error: str = ""  # "kind: detail" of the first failure, for messages
    stopped: str | None = None  # why the run stopped early, when it did
    tls: tuple[str, str] | None = None  # negotiated (version, cipher) of the first wss handshake
    schedule: Schedule | None = None  # set by the open model only
    server_cpu: float | None = None  # seconds, when --server-pid names the server
    server_gone: bool = False  # a --server-pid process ended during the run

    @property
    def responses(self) -> int:
        return self.latency.count

    @property
    def handshakes_per_s(self) -> float:
        return self.responses / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def cpu_fraction(self) -> float:
        """Client CPU time over wall time: 1.0 is one core kept fully busy."""
        return (self.cpu_user + self.cpu_system) / self.elapsed if self.elapsed > 0 else 0.0

    def add(self, status: int, latency_ns: int) -> None:
        self.attempts += 1
        self.statuses[status] += 1
        self.latency.record(latency_ns)
        if self.expect is not None and status != self.expect:
            self.errors["unexpected_status"] += 1

    def fail(self, kind: str, status: int = 0, latency_ns: int = 0, detail: str = "") -> None:
        self.attempts += 1
        self.errors[kind] += 1
        if not self.first_error:
            self.first_error = f"{kind}: {detail}" if detail and detail != kind else kind
        if status:
            self.statuses[status] += 1
            self.latency.record(latency_ns)

    def split(self, attempt: Attempt) -> None:
        """Record the phases of a handshake that got its response head."""
        connected = attempt.connected_ns
        if not attempt.status or not connected:
            return
        phases = self.phases
        phases["connect"].record(connected)
        secured = attempt.secured_ns
        if secured:
            phases["tls"].record(secured - connected)
            if self.tls is None:
                self.tls = attempt.tls
        phases["upgrade"].record(attempt.latency_ns - (secured or connected))
