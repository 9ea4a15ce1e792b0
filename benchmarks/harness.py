"""What the benchmark scripts share: the servers, the apps, and ``/proc``.

A server target is started as a real process in a session (so a process
group) of its own, pinned to CPU 0 when ``taskset`` and a second CPU are
there, and stopped by its process group. Its CPU time and memory are read
from ``/proc`` for every process of that group, so that servers with worker
processes (granian) are measured whole.

Only 127.0.0.1 is used.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS_DIR = HERE / "apps"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
PROC = Path("/proc")


@dataclass(frozen=True)
class Launch:
    """What a server command may depend on besides the app and the port."""

    path: str | None = None  # set for servers that serve one path per process
    connections: int = 0  # idle connections it must hold at once (0: the defaults do)
    tls: tuple[str, str] | None = None  # (certificate chain, private key) PEM files: wss://


# (app "module:attr", port, launch) -> arguments after the interpreter
Command = Callable[[str, int, Launch], list[str]]


@dataclass(frozen=True)
class Server:
    modules: tuple[str, ...]  # what must be importable
    command: Command
    loop: str  # what it runs on, for the report
    apps: tuple[str, ...] | None = None  # the apps it can serve; None: any ASGI app
    per_path: bool = False  # one process per benchmarked path, told which (floor)
    needs_loop_flag: bool = False  # only with a `tinyws serve` that has --loop
    baseline: bool = False  # runs tinyws from the baseline tree (see set_baseline_tree)


# Another source tree of tinyws (an earlier commit's checkout) for the
# "-before" targets; set by the scripts' --baseline-tree option.
_baseline_tree: list[Path] = []


def set_baseline_tree(path: Path) -> None:
    _baseline_tree[:] = [path.resolve()]


def baseline_tree() -> Path | None:
    return _baseline_tree[0] if _baseline_tree else None


def _uvicorn(*flags: str) -> Command:
    def command(app: str, port: int, launch: Launch) -> list[str]:
        base = ["-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--loop", "asyncio"]
        tls = tls_args("uvicorn", launch)
        return [*base, *flags, *tls, "--log-level", "warning", "--no-access-log"]

    return command


def _tinyws(*flags: str, loop: str | None = None, baseline: bool = False) -> Command:
    def command(app: str, port: int, launch: Launch) -> list[str]:
        args = ["-m", "tinyws", "serve", app, "--host", HOST, "--port", str(port), *flags]
        if tinyws_has_flag("--no-access-log", baseline):  # as uvicorn runs here: no log I/O
            args.append("--no-access-log")
        if loop is not None and tinyws_has_loop_flag():
            args += ["--loop", loop]
        args += tls_args("tinyws", launch)
        if launch.connections:
            args += ["--max-connections", str(max(1000, launch.connections + 1000))]
        return args

    return command


def _hypercorn(app: str, port: int, launch: Launch) -> list[str]:
    tls = tls_args("hypercorn", launch)
    return ["-m", "hypercorn", app, "--bind", f"{HOST}:{port}", "--workers", "1", *tls]


def _granian(app: str, port: int, launch: Launch) -> list[str]:
    flags = ["--interface", "asgi", "--host", HOST, "--port", str(port), "--workers", "1"]
    if launch.connections:  # otherwise a worker holds at most backlog/workers at once
        flags += ["--backpressure", str(launch.connections + 1000)]
    return ["-m", "granian", *flags, *tls_args("granian", launch), app]


def _floor(app: str, port: int, launch: Launch) -> list[str]:
    args = [str(HERE / "floor_server.py"), "--host", HOST, "--port", str(port)]
    return [*args, "--reject"] if launch.path == "reject" else args


TLS_FLAGS = {
    "tinyws": ("--ssl-certfile", "--ssl-keyfile"),
    "uvicorn": ("--ssl-certfile", "--ssl-keyfile"),
    "hypercorn": ("--certfile", "--keyfile"),
    "granian": ("--ssl-certificate", "--ssl-keyfile"),  # the key in PKCS#8 only
}


def tls_args(family: str, launch: Launch) -> list[str]:
    if launch.tls is None:
        return []
    cert_flag, key_flag = TLS_FLAGS[family]
    return [cert_flag, launch.tls[0], key_flag, launch.tls[1]]


SERVERS: dict[str, Server] = {
    "tinyws": Server(("tinyws",), _tinyws(loop="asyncio"), "asyncio"),
    "tinyws-uvloop": Server(
        ("tinyws", "uvloop"), _tinyws(loop="uvloop"), "uvloop", needs_loop_flag=True
    ),
    "tinyws-before": Server(
        ("tinyws",), _tinyws(loop="asyncio", baseline=True), "asyncio", baseline=True
    ),
    "tinyws-before-uvloop": Server(
        ("tinyws", "uvloop"),
        _tinyws(loop="uvloop", baseline=True),
        "uvloop",
        needs_loop_flag=True,
        baseline=True,
    ),
    "tinyws-trio": Server(("tinyws", "trio"), _tinyws("--backend", "trio"), "trio"),
    "uvicorn-wsproto": Server(
        ("uvicorn", "h11", "wsproto"), _uvicorn("--http", "h11", "--ws", "wsproto"), "asyncio"
    ),
    "uvicorn": Server(
        ("uvicorn", "httptools", "websockets"),
        _uvicorn("--http", "httptools", "--ws", "websockets-sansio"),
        "asyncio",
    ),
    "hypercorn": Server(("hypercorn",), _hypercorn, "asyncio"),
    "granian": Server(("granian",), _granian, "granian's default (auto: uvloop when installed)"),
    "floor": Server(("uvloop",), _floor, "uvloop", apps=("raw",), per_path=True),
}
# name -> (module:attr inside benchmarks/apps, modules it needs)
APPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "raw": ("raw:app", ()),
    "tinyws": ("tinyws_app:app", ("tinyws",)),
    "starlette": ("starlette_app:app", ("starlette",)),
    "fastapi": ("fastapi_app:app", ("fastapi",)),
    "falcon": ("falcon_app:app", ("falcon",)),
    "litestar": ("litestar_app:app", ("litestar",)),
}


def tinyws_has_loop_flag() -> bool:
    """Whether this tinyws's ``serve`` takes ``--loop`` (it has not always)."""
    return tinyws_has_flag("--loop")


@functools.cache
def tinyws_has_flag(flag: str, baseline: bool = False) -> bool:
    """Whether ``tinyws serve`` (this tree's, or the baseline tree's) takes ``flag``."""
    tree = baseline_tree() if baseline else None
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree is not None else None
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tinyws", "serve", "--help"],
            capture_output=True,
            cwd=APPS_DIR,
            env=env,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag.encode() in done.stdout


def serves(server: str, app: str) -> bool:
    """Whether the server can serve the app at all (floor has only its own)."""
    apps = SERVERS[server].apps
    return apps is None or app in apps


def unavailable(server: str, app: str) -> str | None:
    """Why (server, app) cannot run here, or None when it can."""
    spec = SERVERS[server]
    if spec.apps is not None and app not in spec.apps:
        return f"{server} serves only the {', '.join(spec.apps)} app"
    if spec.baseline and baseline_tree() is None:
        return "no baseline tree given (--baseline-tree)"
    for module in spec.modules + APPS[app][1]:
        if importlib.util.find_spec(module) is None:
            return f"cannot import {module!r}"
    if spec.needs_loop_flag and not tinyws_has_loop_flag():
        return "`tinyws serve` has no --loop option"
    return None


def find_taskset() -> str | None:
    """The taskset binary when there is one and a second CPU to pin to."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        print("warning: taskset or a second CPU is missing; running unpinned", file=sys.stderr)
        return None
    return taskset


def pinned(cpu: int, command: list[str], taskset: str | None) -> list[str]:
    return [taskset, "-c", str(cpu), *command] if taskset else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def raise_nofile_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextlib.contextmanager
def server_process(
    server: str, app: str, taskset: str | None, log: Path, launch: Launch = Launch()
) -> Iterator[tuple[int, int]]:
    """Start (server, app) pinned to CPU 0; yield (pid, port); stop its group."""
    port = free_port()
    args = SERVERS[server].command(APPS[app][0], port, launch)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath(server)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(0, [sys.executable, *args], taskset),
            cwd=APPS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_listening(process, port, log)
        yield process.pid, port
    finally:
        stop(process)


def pythonpath(server: str) -> str:
    """The apps, then the baseline tree for its targets (ahead of the installed tinyws)."""
    tree = baseline_tree()
    if SERVERS[server].baseline and tree is not None:
        return os.pathsep.join([str(APPS_DIR), str(tree)])
    return str(APPS_DIR)


def wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"exited with {process.returncode} before listening:\n{tail}")
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), timeout=1.0).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"did not listen within {START_TIMEOUT:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server, then SIGKILL whatever is left of its own process group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # workers left in the group made for it
    process.wait(timeout=STOP_TIMEOUT)


# --- /proc ----------------------------------------------------------------


def _stat_fields(text: str) -> list[str]:
    """The fields of a ``stat`` line after ``comm``: [0] is field 3 (state)."""
    return text.rpartition(")")[2].split()


def group_pids(pgid: int, proc: Path = PROC) -> list[int]:
    """Every live process whose process group is ``pgid``."""
    pids = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields((proc / entry / "stat").read_text())
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # field 5, pgrp
            pids.append(int(entry))
    return pids


@dataclass(frozen=True)
class CpuSnapshot:
    """The CPU time of a process group at one moment, two ways.

    ``tasks`` maps every live thread (pid, tid) to its nanoseconds on CPU
    (the first field of ``/proc/PID/task/TID/schedstat``), or is None when
    the kernel has no schedstat. ``ticks`` is utime + stime + cutime +
    cstime of every process, in clock ticks: it also holds the time of
    threads that have exited and of reaped child processes.
    """

    tasks: dict[tuple[int, int], int] | None
    ticks: int
    reaped_ticks: int  # the cutime + cstime part of ``ticks``


def cpu_snapshot(pgid: int, proc: Path = PROC) -> CpuSnapshot:
    tasks: dict[tuple[int, int], int] | None = {}
    ticks = reaped = 0
    for pid in group_pids(pgid, proc):
        try:
            fields = _stat_fields((proc / str(pid) / "stat").read_text())
            tids = os.listdir(proc / str(pid) / "task")
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        reaped += int(fields[13]) + int(fields[14])
        for tid in tids:
            if tasks is None:
                break
            try:
                schedstat = (proc / str(pid) / "task" / tid / "schedstat").read_text()
            except FileNotFoundError:
                if (proc / str(pid) / "task" / tid).exists():
                    tasks = None  # no schedstat in this kernel
                continue  # the thread is gone meanwhile
            except OSError:
                tasks = None
                continue
            tasks[(pid, int(tid))] = int(schedstat.split()[0])
    return CpuSnapshot(tasks, ticks, reaped)


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> tuple[float, str]:
    """Seconds of CPU the group used between two snapshots, and how it was read.

    Nanoseconds from schedstat when every thread seen before is still there
    and no child process was reaped meanwhile (their time would be lost);
    otherwise clock ticks.
    """
    if (
        before.tasks is not None
        and after.tasks is not None
        and before.tasks.keys() <= after.tasks.keys()
        and before.reaped_ticks == after.reaped_ticks
    ):
        return (sum(after.tasks.values()) - sum(before.tasks.values())) / 1e9, "schedstat"
    return (after.ticks - before.ticks) / os.sysconf("SC_CLK_TCK"), "ticks"


def group_memory_kib(pgid: int, proc: Path = PROC) -> int:
    """Resident memory (VmRSS) of every process in the group, in KiB."""
    total = 0
    for pid in group_pids(pgid, proc):
        try:
            lines = (proc / str(pid) / "status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])  # "VmRSS:   12345 kB"
                break
    return total


def csv_choices(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of some of ``choices``."""
    import argparse

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        for item in items:
            if choices and item not in choices:
                raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(choices)}")
        return items

    return parse
