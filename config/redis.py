"""Redis connections for the fleet's own state (the broker connection is Celery's)."""

from __future__ import annotations

from typing import Any

import hiredis
import redis
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer  # type: ignore[attr-defined]

from config.settings import get_settings


class CommandPacker:
    """Packs a command for the wire with hiredis, as redis-py 5 and 6 did, without the Python pass over every
    argument that later redis-py adds before hiredis packs them.

    That pass was about 9% of a backfill reader's CPU (py-spy, issue 18): a backfill page's pipelines and the
    delivery engine's scripts carry tens of arguments a command. hiredis encodes str, bytes, int and float itself as
    redis-py's encoder does (UTF-8, strict; a float as its repr). Anything else (a bool, None, an enum, a subclass
    hiredis refuses) and a command name with a space in it ("SCRIPT LOAD") go through redis-py's Python packer, so
    its rules and its errors (DataError) are unchanged. Only for clients with redis-py's default encoding (UTF-8,
    strict), as `redis_client` makes them: another encoding would be ignored here."""

    def __init__(self) -> None:
        self._library = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode).pack

    def pack(self, *args: Any) -> list[bytes]:
        head = args[0]
        if (b" " if isinstance(head, bytes) else " ") in head:
            return list(self._library(*args))
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return list(self._library(*args))


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
