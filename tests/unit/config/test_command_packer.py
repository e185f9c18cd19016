"""The fleet's command packer (config/redis.py) puts on the wire exactly the bytes redis-py's own packer would,
for the argument types redis-py takes and those it refuses (with redis-py's error)."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from kombu import Connection
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer  # type: ignore[attr-defined]  # newer than types-redis
from redis.exceptions import DataError

from config.redis import COMMAND_PACKER, redis_client
from state.broker_transport import Transport

# redis-py's Python packer: the same bytes as its hiredis packer, in every redis-py from 5.0 on
LIBRARY = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Ratio(float):
    pass


class Blob(bytes):
    pass


ARGUMENTS = st.one_of(
    st.text(), st.binary(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
    st.sampled_from(["é", "\u2603", "1e-07", " ", "", Colour.RED, Level.HIGH, Ratio(0.1), Blob(b"b"), True, None]),
    st.binary(max_size=8).map(bytearray), st.binary(max_size=8).map(lambda b: memoryview(b)),
)


def _wire(chunks: list[bytes]) -> bytes:
    return b"".join(bytes(c) for c in chunks)


@given(st.sampled_from(["SET", "EVALSHA", "HSET", b"ZADD", "SCRIPT LOAD", b"CLIENT SETNAME"]),
       st.lists(ARGUMENTS, max_size=12))
def test_packs_the_bytes_redis_py_packs(command: str | bytes, args: list[Any]) -> None:
    try:
        expected = _wire(LIBRARY.pack(command, *args))
    except (UnicodeEncodeError, DataError) as refused:  # a lone surrogate, a bool, None: both refuse it alike
        with pytest.raises(type(refused)):
            COMMAND_PACKER.pack(command, *args)
        return
    assert _wire(COMMAND_PACKER.pack(command, *args)) == expected


@pytest.mark.parametrize("bad", [True, None, [1], {"a": 1}])
def test_refuses_what_redis_py_refuses_with_its_error(bad: Any) -> None:
    with pytest.raises(DataError):
        COMMAND_PACKER.pack("SET", "k", bad)


def test_the_fleets_clients_and_the_broker_transport_use_it(redis_url: str) -> None:
    client = redis_client(redis_url)
    try:
        client.hset("packed", mapping={"é": 1764000000.123456, "n": -3, "b": b"\xff".decode("latin-1")})
        assert client.hgetall("packed") == {"é": "1764000000.123456", "n": "-3", "b": "\xff"}
        assert client.connection_pool.make_connection()._command_packer is COMMAND_PACKER
    finally:
        client.close()
    with Connection(redis_url, transport=Transport) as conn:
        channel = conn.default_channel
        assert channel.client.connection_pool.make_connection()._command_packer is COMMAND_PACKER
        assert channel.async_pool.make_connection()._command_packer is COMMAND_PACKER  # the consumer's take
        channel.client.set("via-kombu", "ok")
    assert redis.Redis.from_url(redis_url).get("via-kombu") == b"ok"
