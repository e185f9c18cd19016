"""How long the oldest message of each lane has waited, read from the broker's lists without taking it.

kombu pushes a lane's messages on the left of ``<prefix>:broker:<lane>`` and consumers take from the right
(state/broker_transport.py moves each into the lane's taking list, right to left, until it is recorded), so the
oldest message of a lane is the rightmost of either list. Its age is the time since it was published: the
``bcsync_sent`` header every publish adds (config/celery.py), else - a message published before that header
existed - a delivery envelope's `created`; else unknown (None).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from typing import Any

import redis

from state.keys import RedisKeys

SENT_HEADER = "bcsync_sent"


def message_time(raw: str | bytes | None) -> float | None:
    """When a queued kombu message was published (epoch seconds), None if it cannot tell."""
    if raw is None:
        return None
    try:
        message = json.loads(raw)
        sent = (message.get("headers") or {}).get(SENT_HEADER)
        if sent is not None:
            return float(sent)
        body: Any = message.get("body")
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        created = args[0].get("created") if args and isinstance(args[0], dict) else None
        return None if created is None else float(created)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def oldest_ages(client: redis.Redis, key_prefix: str, lanes: Collection[str], now: float) -> dict[str, float | None]:
    """Lane -> age in seconds of its oldest waiting message (0.0: nothing waits; None: one waits, age unknown)."""
    keys = RedisKeys(key_prefix)
    pipe = client.pipeline(transaction=False)
    for lane in lanes:
        pipe.lindex(keys.queue_taking(lane), -1)
        pipe.lindex(keys.queue(lane), -1)
    found = pipe.execute()
    out: dict[str, float | None] = {}
    for i, lane in enumerate(lanes):
        taking, queued = found[2 * i], found[2 * i + 1]
        if taking is None and queued is None:
            out[lane] = 0.0
            continue
        times = [t for t in (message_time(taking), message_time(queued)) if t is not None]
        out[lane] = round(max(0.0, now - min(times)), 3) if times else None
    return out
