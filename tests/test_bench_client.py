"""``tinyws bench`` against small fake servers, each misbehaving in one way.

The servers are plain blocking sockets in threads, so they run the same under
either anyio backend of the client; each connection gets its own thread and a
socket timeout, so a confused test fails instead of hanging.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tinyws.bench import cli, runner
from tinyws.bench.results import Results

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Handler = Callable[[socket.socket], None]
HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


# The client has one driver for uvloop and another for asyncio's loop and trio:
# both run every test here.
@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param(
            ("asyncio", {"use_uvloop": True}),
            id="uvloop",
            marks=pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed"),
        ),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


class FakeServer:
    """Accepts on a free 127.0.0.1 port and runs ``handler`` on every connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self.run_handler, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def run_handler(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            # OSError: the client hung up first; the tests check what it saw.
            with suppress(OSError):
                self.handler(conn)


@contextmanager
def fake_server(handler: Handler) -> Iterator[FakeServer]:
    server = FakeServer(handler)
    acceptor = threading.Thread(target=server.serve, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        server.stopping.set()
        acceptor.join(5)
        server.listener.close()
        for thread in server.threads:
            thread.join(5)


def read_request(conn: socket.socket, server: FakeServer | None = None) -> bytes:
    """Read the upgrade request and return its Sec-WebSocket-Key."""
    buffer = bytearray()
    while buffer.find(b"\r\n\r\n", max(0, len(buffer) - 65536)) < 0:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client left before its request was complete")
        buffer += chunk
    data = bytes(buffer)
    if server is not None:
        server.requests.append(data)
    for line in data.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"sec-websocket-key":
            return value.strip()
    raise AssertionError("no Sec-WebSocket-Key in the request")


def accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def switching(key: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept(key) + b"\r\n" + extra + b"\r\n"
    )


def read_client_close(conn: socket.socket) -> int:
    """Read one masked frame from the client; return its close code."""
    data = b""
    while len(data) < 8:
        chunk = conn.recv(64)
        if not chunk:
            raise ConnectionError("client left before its close frame")
        data += chunk
    assert data[0] == 0x88 and data[1] == 0x82, data
    mask, payload = data[2:6], data[6:8]
    code: int = struct.unpack("!H", bytes(b ^ mask[i] for i, b in enumerate(payload)))[0]
    return code


def wait_for_eof(conn: socket.socket) -> None:
    while conn.recv(4096):
        pass


def accepting(conn: socket.socket) -> None:
    key = read_request(conn)
    conn.sendall(switching(key))
    assert read_client_close(conn) == 1000
    conn.sendall(b"\x88\x02\x03\xe8")


@contextmanager
def recording_server() -> Iterator[FakeServer]:
    """An accepting server that also keeps each request head for inspection."""
    holder: list[FakeServer] = []

    def handler(conn: socket.socket) -> None:
        key = read_request(conn, holder[0])
        conn.sendall(switching(key))
        read_client_close(conn)
        conn.sendall(b"\x88\x02\x03\xe8")

    with fake_server(handler) as server:
        holder.append(server)
        yield server


async def bench(url: str, *args: str) -> Results:
    plan = cli.make_plan(cli.make_parser().parse_args([url, *args]))
    return await runner.run(plan)


@pytest.mark.anyio
async def test_accepting_server() -> None:
    with recording_server() as server:
        results = await bench(server.url("/ws?room=1"), "-n", "20", "-c", "4")
    assert dict(results.statuses) == {101: 20}
    assert not results.errors
    assert results.responses == results.attempts == 20
    assert 0 < results.latency.min <= results.latency.max
    assert results.handshakes_per_s > 0
    request = server.requests[0]
    assert request.startswith(b"GET /ws?room=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in request
    assert b"Sec-WebSocket-Version: 13\r\n" in request
    keys = {r.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0] for r in server.requests}
    assert len(keys) == 20  # a fresh key for every handshake
    assert all(len(base64.b64decode(key)) == 16 for key in keys)


@pytest.mark.anyio
async def test_headers_and_subprotocols_are_sent() -> None:
    with recording_server() as server:
        await bench(
            server.url(),
            *("-n", "1", "-H", "Host: example.test", "-H", "X-Token:  abc "),
            *("--subprotocol", "chat,json", "--subprotocol", "v2"),
        )
    request = server.requests[0]
    assert b"Host: example.test\r\n" in request
    assert b"127.0.0.1" not in request  # the given Host replaced the default one
    assert b"X-Token: abc\r\n" in request
    assert b"Sec-WebSocket-Protocol: chat, json, v2\r\n" in request


@pytest.mark.anyio
async def test_request_larger_than_the_socket_buffers() -> None:
    def handler(conn: socket.socket) -> None:
        time.sleep(0.2)  # let the client's send fill the buffers and wait
        accepting(conn)

    big = "X-Big: " + "b" * 8_000_000
    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "1", "-H", big)
    assert dict(results.statuses) == {101: 1}
    assert not results.errors


@pytest.mark.anyio
async def test_wrong_accept_key() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(switching(b"not the key the client sent"))
        wait_for_eof(conn)

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "3")
    assert dict(results.errors) == {"bad_accept": 3}
    assert dict(results.statuses) == {101: 3}


@pytest.mark.anyio
async def test_missing_upgrade_header() -> None:
    def handler(conn: socket.socket) -> None:
        key = read_request(conn)
        conn.sendall(switching(key).replace(b"Upgrade: websocket\r\n", b""))
        wait_for_eof(conn)

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "1")
    assert dict(results.errors) == {"bad_upgrade": 1}


@pytest.mark.anyio
async def test_subprotocol_not_offered() -> None:
    def handler(conn: socket.socket) -> None:
        key = read_request(conn)
        conn.sendall(switching(key, b"Sec-WebSocket-Protocol: other\r\n"))
        wait_for_eof(conn)

    with fake_server(handler) as server:
        refused = await bench(server.url(), "-n", "1", "--subprotocol", "chat")
    assert dict(refused.errors) == {"bad_subprotocol": 1}


@pytest.mark.anyio
async def test_split_head_frames_before_close_and_split_close() -> None:
    def handler(conn: socket.socket) -> None:
        key = read_request(conn)
        response = switching(key, b"X-Padding: " + b"p" * 300 + b"\r\n")
        for part in (response[:10], response[10:200], response[200:-1], response[-1:]):
            conn.sendall(part)
            time.sleep(0.01)
        read_client_close(conn)
        # A text frame and a 300-byte binary frame from the app, then a split close.
        conn.sendall(b"\x81\x05hello" + b"\x82\x7e\x01\x2c" + b"x" * 300 + b"\x88")
        time.sleep(0.01)
        conn.sendall(b"\x02\x03\xe8")

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "2")
    assert dict(results.statuses) == {101: 2}
    assert not results.errors
    assert results.latency.min >= 30_000_000  # three 10 ms pauses before the head ended


@pytest.mark.anyio
async def test_denial_with_content_length_on_a_kept_alive_connection() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\n\r\nnot ")
        time.sleep(0.02)
        conn.sendall(b"allowed!")
        wait_for_eof(conn)  # keep-alive: only the client can end this

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "2", "--timeout", "2")
    assert dict(results.statuses) == {403: 2}
    assert not results.errors  # without --expect a denial is a response, not an error


@pytest.mark.anyio
async def test_denial_body_until_close() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\n\r\npart one, ")
        time.sleep(0.02)
        conn.sendall(b"part two")

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "2", "--expect", "403")
    assert dict(results.statuses) == {403: 2}
    assert not results.errors


@pytest.mark.anyio
async def test_chunked_denial() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        head = b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = b"5;ext=1\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
        conn.sendall(head + body[:9])
        for start in range(9, len(body), 7):
            time.sleep(0.002)
            conn.sendall(body[start : start + 7])
        wait_for_eof(conn)  # the terminating chunk, not EOF, ends the body

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "2", "--timeout", "2")
    assert dict(results.statuses) == {401: 2}
    assert not results.errors


@pytest.mark.anyio
async def test_unexpected_status_with_expect() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        wait_for_eof(conn)

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "3", "--expect", "101")
    assert dict(results.errors) == {"unexpected_status": 3}
    assert dict(results.statuses) == {403: 3}


@pytest.mark.anyio
async def test_server_that_never_answers_times_out() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        wait_for_eof(conn)

    with fake_server(handler) as server:
        started = time.monotonic()
        results = await bench(server.url(), "-n", "3", "-c", "3", "--timeout", "0.3")
        elapsed = time.monotonic() - started
    assert dict(results.errors) == {"timeout": 3}
    assert not results.statuses
    assert 0.3 <= elapsed < 1.5


@pytest.mark.anyio
async def test_server_that_never_closes_times_out() -> None:
    def handler(conn: socket.socket) -> None:
        key = read_request(conn)
        conn.sendall(switching(key))
        wait_for_eof(conn)  # ignores the close frame: no close, no FIN

    with fake_server(handler) as server:
        started = time.monotonic()
        results = await bench(server.url(), "-n", "2", "--timeout", "0.2")
    assert dict(results.errors) == {"timeout": 2}
    assert dict(results.statuses) == {101: 2}  # the head did arrive before the time ran out
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_closed_without_close_frame() -> None:
    def handler(conn: socket.socket) -> None:
        key = read_request(conn)
        conn.sendall(switching(key))
        read_client_close(conn)  # read first: closing on unread data would send a reset

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "2")
    assert dict(results.errors) == {"eof": 2}
    assert dict(results.statuses) == {101: 2}  # the head did arrive


@pytest.mark.anyio
async def test_reset() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "3")
    assert dict(results.errors) == {"reset": 3}


@pytest.mark.anyio
async def test_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = await bench(f"ws://127.0.0.1:{port}/", "-n", "4", "-c", "2")
    assert dict(results.errors) == {"refused": 4}
    assert results.responses == 0
    assert results.handshakes_per_s == 0


@pytest.mark.anyio
async def test_garbage_response() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH\r\nwhat: ever\r\n\r\n")

    with fake_server(handler) as server:
        results = await bench(server.url(), "-n", "1")
    assert dict(results.errors) == {"bad_response": 1}


@pytest.mark.anyio
async def test_warmup_is_not_counted() -> None:
    with recording_server() as server:
        results = await bench(server.url(), "-n", "5", "--warmup", "3")
    assert results.attempts == 5
    assert len(server.requests) == 8


@pytest.mark.anyio
async def test_duration_and_progress_line() -> None:
    def handler(conn: socket.socket) -> None:
        time.sleep(0.01)
        accepting(conn)

    progress = io.StringIO()
    with fake_server(handler) as server:
        plan = cli.make_plan(cli.make_parser().parse_args([server.url(), "--duration", "0.6"]))
        started = time.monotonic()
        results = await runner.run(plan, progress)
        elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 1.5
    assert 5 < results.attempts == results.statuses[101]
    assert "\r  " in progress.getvalue() and " handshakes, " in progress.getvalue()
    assert "/s, 0 errors" in progress.getvalue()
    assert progress.getvalue().endswith("\r")  # the live line is wiped at the end


def test_cli_json_file_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "result.json"
    with fake_server(accepting) as server:
        status = cli.main([server.url(), "-n", "10", "-c", "2", "--json", str(out), "--quiet"])
    assert status == 0
    text = capsys.readouterr().out
    assert "101: 10" in text and "errors       none" in text and "handshakes/s" in text
    data = json.loads(out.read_text())
    assert data["statuses"] == {"101": 10}
    assert data["errors"] == {}
    assert data["handshakes"] == data["responses"] == 10
    assert data["handshakes_per_s"] > 0
    latency = data["latency_us"]
    assert set(latency) >= {"min", "p50", "p90", "p99", "p99_9", "max"}
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"]
    assert latency["p99"] <= latency["p99_9"] <= latency["max"]
    assert data["config"]["count"] == 10 and data["config"]["concurrency"] == 2
    assert set(data["client_cpu"]) >= {"user_s", "system_s", "share_of_core", "bound"}


def test_cli_exit_status_one_on_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert cli.main([f"ws://127.0.0.1:{port}/", "-n", "2", "--backend", "trio"]) == 1
    assert "refused: 2" in capsys.readouterr().out


BUILT_IN_APP = """
async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    if scope["path"] == "/deny":
        start = {"type": "websocket.http.response.start", "status": 403, "headers": []}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": b"go away"})
        return
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass
"""


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def built_in_server(tmp_path: Path) -> Iterator[int]:
    """Run ``python -m tinyws serve`` on a free port in a child process."""
    (tmp_path / "bench_app.py").write_text(BUILT_IN_APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    command = [sys.executable, "-m", "tinyws", "serve", "bench_app:app", "--port", str(port)]
    command += ["--lifespan", "off"]
    with subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE) as process:
        try:
            deadline = time.monotonic() + 20
            while not listening(port):
                assert process.poll() is None, process.stderr and process.stderr.read()
                assert time.monotonic() < deadline, "the server did not start listening"
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(10)


def test_against_the_built_in_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with built_in_server(tmp_path) as port:
        accepted = cli.main([f"ws://127.0.0.1:{port}/", "-n", "50", "-c", "4", "--quiet"])
        accepted_out = capsys.readouterr().out
        denied = cli.main([f"ws://127.0.0.1:{port}/deny", "-n", "50", "-c", "4", "--expect", "403"])
        denied_out = capsys.readouterr().out
    assert accepted == 0, accepted_out
    assert "101: 50" in accepted_out
    assert denied == 0, denied_out
    assert "403: 50" in denied_out


def test_interrupt_exits_130() -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        wait_for_eof(conn)

    # A shell job started under `trap "" INT` hands SIGINT down ignored, and
    # Python leaves an ignored SIGINT ignored: the child installs Python's own
    # handler first, whatever it inherited. Every wait is bounded: a lost signal
    # ends in a failure within seconds (3 handshakes of at most 5 s), not hours.
    restore_sigint = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from tinyws.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    with fake_server(handler) as server:
        command = [sys.executable, "-c", restore_sigint, "bench", server.url(), "-n", "3"]
        command += ["--timeout", "5"]
        with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
            try:
                deadline = time.monotonic() + 20
                while not server.threads and time.monotonic() < deadline:
                    time.sleep(0.02)  # until the handshake is in flight
                assert server.threads, "the handshake never started"
                process.send_signal(signal.SIGINT)
                _, err = process.communicate(timeout=20)
            finally:
                if process.poll() is None:
                    process.kill()
    assert process.returncode == 130
    assert "tinyws bench: interrupted" in err
