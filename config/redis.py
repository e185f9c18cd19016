"""Redis connections for the fleet's own state (the broker connection is Celery's)."""

from __future__ import annotations

from typing import Any

import hiredis
import redis
from redis._parsers.encoders import Encoder
from redis.connection import HiredisRespSerializer, PythonRespSerializer  # type: ignore[attr-defined]

from config.settings import get_settings


class CommandPacker:
    """Packs a command for the wire as redis-py's hiredis packer does, without its Python pass over every argument.

    redis-py hands each argument to its encoder in Python before hiredis packs them: for a backfill page's pipelines
    and the delivery engine's scripts (tens of arguments a command) that pass was about 9% of a backfill reader's
    CPU (py-spy, issue 18). hiredis encodes str, bytes, int and float itself, as the encoder would (utf-8, strict;
    a float as its repr). Anything else (a bool, None, an enum, a memoryview) and a command name with a space in
    it ("SCRIPT LOAD") go through redis-py's own packer, so its rules and its errors are unchanged."""

    def __init__(self) -> None:
        encoder = Encoder("utf-8", "strict", False)
        self._library = HiredisRespSerializer(PythonRespSerializer(6000, encoder.encode).pack, encoder.encode)

    def pack(self, *args: Any) -> list[bytes]:
        head = args[0]
        if (b" " if isinstance(head, bytes) else " ") in head:
            return list(self._library.pack(*args))
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return list(self._library.pack(*args))


# stateless: one for every connection (types-redis describes redis-py 4, before packers: hence the ignores)
COMMAND_PACKER = CommandPacker()


def redis_client(url: str | None = None) -> redis.Redis:
    """A client with decoded strings; one connection pool per call site that keeps it."""
    return redis.Redis.from_url(  # type: ignore[call-overload]
        url or get_settings().redis_url, decode_responses=True, health_check_interval=30,
        # a Redis host that silently drops packets must fail a command, not hang it
        socket_connect_timeout=5, socket_timeout=30, command_packer=COMMAND_PACKER,
    )


def broker_key_prefix(prefix: str) -> str:
    """Where kombu keeps the lanes' queues (``<prefix>:broker:<lane>``): Celery's keys, not the fleet's. Here,
    not in config/celery.py, so `state.keys` can name them without importing the Celery app."""
    return f"{prefix}:broker:"


# kombu's own separator (no lane name contains it), then "taking": the list a lane's consumers take into
TAKING_SUFFIX = "\x06\x16taking"


def taking_key(lane_key: str) -> str:
    """The list a lane's consumers take each message into before recording it (state/broker_transport.py)."""
    return lane_key + TAKING_SUFFIX
