"""tinyws.broadcast: publish/subscribe on memory:// and on a real Redis, on both backends."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import anyio
import pytest

from tests.redis_server import RedisServer
from tinyws.broadcast import Broadcast, SlowSubscriber

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    redis: RedisServer = request.getfixturevalue("redis")
    return redis.url


async def test_order_and_types_are_preserved_for_every_subscriber(url: str) -> None:
    sent: list[str | bytes] = [
        f"text {i}" if i % 2 else b"\x00\xffbytes %d" % i for i in range(300)
    ]
    sent += ["", b"", "ünïcødé ☃", "\x01starts with the text marker", b"\x02and the binary one"]
    async with (
        Broadcast(url) as hub,
        hub.subscribe("room:a") as first,
        hub.subscribe("room:a") as second,
    ):
        for message in sent:
            await hub.publish("room:a", message)
        with anyio.fail_after(TIMEOUT):
            got_first = [await anext(first) for _ in sent]
            got_second = [await anext(second) for _ in sent]
    assert got_first == sent
    assert got_second == sent
    assert [type(m) for m in got_first] == [type(m) for m in sent]


async def test_channels_are_isolated(url: str) -> None:
    async with (
        Broadcast(url) as hub,
        hub.subscribe("room:a") as a,
        hub.subscribe("room:b") as b,
    ):
        await hub.publish("room:a", "for a")
        await hub.publish("room:b", "for b")
        await hub.publish("room:c", "for nobody")
        await hub.publish("room:a", "end")
        await hub.publish("room:b", "end")
        with anyio.fail_after(TIMEOUT):
            assert [await anext(a), await anext(a)] == ["for a", "end"]
            assert [await anext(b), await anext(b)] == ["for b", "end"]


async def test_a_slow_subscriber_is_dropped_and_nobody_waits_for_it(url: str) -> None:
    received: list[str | bytes] = []
    async with (
        Broadcast(url, max_queue=10) as hub,
        hub.subscribe("feed") as fast,
        hub.subscribe("feed") as slow,
    ):

        async def read_fast() -> None:
            async for message in fast:
                received.append(message)
                if message == "99":
                    return

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_fast)
                for i in range(100):
                    await hub.publish("feed", str(i))
            with pytest.raises(SlowSubscriber, match="fell 10 messages behind"):
                await anext(slow)
    assert received == [str(i) for i in range(100)]


async def test_a_subscriber_may_be_max_queue_behind(url: str) -> None:
    async with (
        Broadcast(url, max_queue=5) as hub,
        hub.subscribe("feed") as sub,
        hub.subscribe("feed") as marker,
    ):
        for i in range(5):
            await hub.publish("feed", str(i))
        with anyio.fail_after(TIMEOUT):
            assert [await anext(marker) for _ in range(5)] == ["0", "1", "2", "3", "4"]
            assert [await anext(sub) for _ in range(5)] == ["0", "1", "2", "3", "4"]


async def test_iteration_ends_when_the_hub_stops(url: str) -> None:
    hub = Broadcast(url)
    async with hub, hub.subscribe("feed") as sub:
        await hub.publish("feed", "last")
        with anyio.fail_after(TIMEOUT):
            assert await anext(sub) == "last"
        await hub.__aexit__(None, None, None)
        assert [message async for message in sub] == []
        await hub.__aenter__()  # the hub can be started again, for the outer block
    with pytest.raises(RuntimeError, match="async with hub"):
        await hub.publish("feed", "after")


async def test_the_hub_must_be_running() -> None:
    hub = Broadcast()
    with pytest.raises(RuntimeError, match="async with hub"):
        await hub.publish("feed", "x")
    with pytest.raises(RuntimeError, match="async with hub"):
        async with hub.subscribe("feed"):
            pass
    sub = hub.subscribe("feed")
    with pytest.raises(RuntimeError, match=r"inside `async with hub\.subscribe"):
        await anext(sub)


@pytest.mark.parametrize(
    "channel",
    ["", "é" * 513, "x" * 1025, "\udc80", b"bytes", None, 7],
    ids=["empty", "1026-utf8-bytes", "1025-bytes", "surrogate", "bytes", "none", "int"],
)
async def test_invalid_channels_are_refused(channel: object) -> None:
    async with Broadcast() as hub:
        with pytest.raises(ValueError, match="channel"):
            await hub.publish(channel, "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="channel"):
            hub.subscribe(channel)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="channel"):
            hub.join(channel, object())  # type: ignore[arg-type]


async def test_the_longest_channel_is_1024_utf8_bytes(url: str) -> None:
    channel = "é" * 512
    async with Broadcast(url) as hub, hub.subscribe(channel) as sub:
        await hub.publish(channel, "fits")
        with anyio.fail_after(TIMEOUT):
            assert await anext(sub) == "fits"


async def test_only_str_and_bytes_are_published() -> None:
    async with Broadcast() as hub, hub.subscribe("feed") as sub:
        with pytest.raises(TypeError, match="str or bytes, got dict"):
            await hub.publish("feed", {"a": 1})  # type: ignore[arg-type]
        await hub.publish("feed", bytearray(b"ba"))  # type: ignore[arg-type]
        assert await anext(sub) == b"ba"


@pytest.mark.parametrize(
    "bad",
    [
        "http://127.0.0.1:6379",
        "redis:/127.0.0.1",
        "memory://somewhere",
        "redis://127.0.0.1:99999",
        "redis://127.0.0.1/zero",
        "redis://127.0.0.1/0?ssl=true",
        "",
        "REDIS",
    ],
)
def test_unsupported_urls_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        Broadcast(bad)


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(ValueError) as refused:
        Broadcast("http://user:secret@example.com")
    assert "secret" not in str(refused.value)


def test_url_is_shown_without_password() -> None:
    hub = Broadcast("rediss://app:s3cr%40t@redis.example:6380/2")
    assert hub.url == "rediss://app:***@redis.example:6380/2"
    assert hub.address.password == "s3cr@t"
    assert hub.address.username == "app"
    assert hub.address.tls
    assert Broadcast("redis://localhost").url == "redis://localhost:6379/0"


@pytest.mark.parametrize("max_queue", [0, -1, True, 1.5])
def test_max_queue_must_be_a_positive_int(max_queue: object) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        Broadcast(max_queue=max_queue)  # type: ignore[arg-type]


def test_without_the_extra_redis_urls_raise_import_error_naming_it() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["hiredis"] = None  # as if `pip install tinyws` had no [redis]
        from tinyws.broadcast import Broadcast
        Broadcast("memory://")  # the core needs no extra
        try:
            Broadcast("redis://127.0.0.1:6379/0")
        except ImportError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == (
        'redis:// needs the "redis" extra: pip install "tinyws[redis]"'
    )
