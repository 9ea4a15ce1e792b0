from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, redis_server


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """One real redis-server for the session's broadcast tests (tests/redis_server.py)."""
    with redis_server() as server:
        yield server
