"""Redis connections for the fleet's own state (the broker connection is Celery's)."""

from __future__ import annotations

import redis

from config.settings import get_settings


def redis_client(url: str | None = None) -> redis.Redis:
    """A client with decoded strings; one connection pool per call site that keeps it."""
    return redis.Redis.from_url(
        url or get_settings().redis_url, decode_responses=True, health_check_interval=30,
        # a Redis host that silently drops packets must fail a command, not hang it
        socket_connect_timeout=5, socket_timeout=30,
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
