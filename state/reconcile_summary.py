"""The last reconciliation's summary, kept for the console's Today page: one JSON value in Redis.

`bcsync reconcile` (and beat's scheduled runs) write it at the end of a run with `write_last` - the summary as
`workers.reconcile_cli.summary_json` gives it (compared per area, the differences, repaired, left for people,
requests, seconds); a `finished_at` (epoch seconds) and the `areas` run are added when absent. The console reads
it with `read_last`; None: no reconciliation ran yet (or its summary is unreadable).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from state.keys import RedisKeys


def write_last(client: redis.Redis, key_prefix: str, summary: dict[str, Any], areas: list[str] | None = None,
               now: float | None = None) -> None:
    kept = {"finished_at": time.time() if now is None else now, **summary}
    if areas is not None:
        kept.setdefault("areas", list(areas))
    client.set(RedisKeys(key_prefix).reconcile_last, json.dumps(kept, default=str))


def read_last(client: redis.Redis, key_prefix: str) -> dict[str, Any] | None:
    raw = client.get(RedisKeys(key_prefix).reconcile_last)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
