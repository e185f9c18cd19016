from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_server import PrivateRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[PrivateRedis]:
    """One private redis-server per test session on a free port; stopped by its pid at the end."""
    server = PrivateRedis.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: PrivateRedis) -> Iterator[str]:
    """A clean database for each test: flushed before and after."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield redis_server.url
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def dialect(request: pytest.FixtureRequest) -> str:
    """The Blue Cherry tenant dialect a module's fleet serves and reads (tests.support.fleet.DIALECTS):
    "default", unless the module or test opts in to every dialect with `tests.support.fleet.both_dialects`."""
    return str(getattr(request, "param", "default"))
