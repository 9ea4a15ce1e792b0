"""Broadcast on a real Redis: across processes, Redis's own counters, outages."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest
from wsproto.events import AcceptConnection

from tests.redis_server import RedisServer, redis_server
from tests.server_helpers import WSClient
from tests.servers import ROOT, free_port, run_server
from tinyws.broadcast import Broadcast, BroadcastError, Subscription

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, to count its commands or to restart it."""
    with redis_server() as server:
        yield server


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tinyws.broadcast" and r.levelno == logging.WARNING
    ]


async def test_two_hubs_on_one_redis_deliver_to_each_other(redis: RedisServer) -> None:
    async with (
        Broadcast(redis.url) as one,
        Broadcast(redis.url) as two,
        one.subscribe("news") as on_one,
        two.subscribe("news") as on_two,
    ):
        await one.publish("news", "from one")
        await two.publish("news", b"from two")
        with anyio.fail_after(TIMEOUT):
            for sub in (on_one, on_two):
                assert {await anext(sub), await anext(sub)} == {"from one", b"from two"}


async def test_one_publish_per_message_and_one_subscribe_per_process_per_channel(
    private_redis: RedisServer,
) -> None:
    private_redis.cli("CONFIG", "RESETSTAT")
    async with Broadcast(private_redis.url) as one, Broadcast(private_redis.url) as two:
        subs: list[Subscription] = [one.subscribe("room") for _ in range(5)]
        subs += [two.subscribe("room") for _ in range(3)]
        for sub in subs:
            await sub.__aenter__()
        for i in range(100):
            await one.publish("room", str(i))
        with anyio.fail_after(TIMEOUT):
            for sub in subs:
                assert [await anext(sub) for _ in range(100)] == [str(i) for i in range(100)]
        assert private_redis.calls("publish") == 100
        assert private_redis.calls("subscribe") == 2
        assert private_redis.subscribers("room") == 2
        for sub in subs[:4]:
            await sub.__aexit__(None, None, None)
        assert private_redis.calls("unsubscribe") == 0  # one of process one's is left
        await subs[4].__aexit__(None, None, None)  # the last of process one
        with anyio.fail_after(TIMEOUT):
            while private_redis.subscribers("room") != 1:
                await anyio.sleep(0.02)
        assert private_redis.calls("unsubscribe") == 1
        for sub in subs[5:]:
            await sub.__aexit__(None, None, None)


async def test_unreachable_redis_fails_startup_naming_the_url() -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/3"
    with pytest.raises(BroadcastError) as failed:
        async with Broadcast(url):
            pass
    message = str(failed.value)
    assert f"redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in message
    assert "secret" not in message


async def test_a_wrong_password_fails_startup() -> None:
    with redis_server() as server:
        server.cli("CONFIG", "SET", "requirepass", "right")
        url = server.url.replace("redis://", "redis://:wrong@")
        with pytest.raises(BroadcastError, match=r"cannot reach Redis at redis://:\*\*\*@"):
            async with Broadcast(url):
                pass
        right = server.url.replace("redis://", "redis://:right@")
        async with Broadcast(right) as hub, hub.subscribe("x") as sub:
            await hub.publish("x", "authenticated")
            with anyio.fail_after(TIMEOUT):
                assert await anext(sub) == "authenticated"


async def test_redis_restart_one_warning_publish_fails_then_delivery_resumes(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinyws.broadcast")
    async with Broadcast(private_redis.url) as hub, hub.subscribe("feed") as sub:
        await hub.publish("feed", "before")
        with anyio.fail_after(TIMEOUT):
            assert await anext(sub) == "before"

        await anyio.to_thread.run_sync(private_redis.stop)
        with anyio.fail_after(TIMEOUT):
            while not warnings_of(caplog):
                await anyio.sleep(0.02)
        with pytest.raises(BroadcastError, match="unreachable"):
            await hub.publish("feed", "during")
        await anyio.sleep(0.5)  # several reconnection attempts fail meanwhile

        await anyio.to_thread.run_sync(private_redis.start)
        with anyio.fail_after(TIMEOUT):
            while True:  # at most once: what is published before the resubscription is lost
                with anyio.move_on_after(0.1):
                    if await anext(sub) == "after":
                        break
                with contextlib.suppress(BroadcastError):
                    await hub.publish("feed", "after")
    assert len(warnings_of(caplog)) == 1
    assert private_redis.url in warnings_of(caplog)[0]


# -- `tinyws serve` as its own process -------------------------------------------


async def ws_member(port: int, path: str) -> WSClient:
    client = WSClient(await anyio.connect_tcp("127.0.0.1", port))
    assert isinstance(await client.handshake(path), AcceptConnection)
    return client


async def test_tinyws_serve_members_and_another_process_share_a_room(redis: RedisServer) -> None:
    env = {"TINYWS_TEST_BROADCAST": redis.url}
    with run_server("tinyws", "tests.apps.broadcast_room:app", env=env) as server:
        async with Broadcast(redis.url) as hub, hub.subscribe("room:lobby") as sub:
            alice = await ws_member(server.port, "/rooms/lobby")
            bob = await ws_member(server.port, "/rooms/lobby")
            other = await ws_member(server.port, "/rooms/other")
            async with alice.stream, bob.stream, other.stream:
                with anyio.fail_after(TIMEOUT):
                    await alice.send_text("from the server's process")
                    assert await anext(sub) == "from the server's process"
                    for member in (alice, bob):
                        assert await member.receive_message() == "from the server's process"
                    await hub.publish("room:lobby", b"from the test's process")
                    for member in (alice, bob):
                        assert await member.receive_message() == b"from the test's process"
                    await other.send_text("only other")
                    assert await other.receive_message() == "only other"


def test_tinyws_serve_exits_non_zero_naming_an_unreachable_redis() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    command = [sys.executable, "-m", "tinyws", "serve", "tests.apps.broadcast_room:app"]
    command += ["--port", str(free_port()), "--lifespan", "on"]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={"TINYWS_TEST_BROADCAST": url, "PATH": "", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"cannot reach Redis at {url}" in result.stdout + result.stderr
