"""What the attribution report keeps in Redis so that a run reads only what changed, and never more than the
day's share of the values reports (225 a day for the whole Klaviyo account).

- Values report chunks (`<p>:attribution:values:<kind>:<metric>:<start>/<end>`): the totals per campaign or flow
  of one month chunk (`sync.attribution.klaviyo.chunks`) and when they were read. A settled chunk is never read
  again; an open one once its copy is older than the refresh interval.
- The day's values requests (`<p>:attribution:values-calls:<YYYY-MM-DD>`, UTC day, kept two days): counted before
  each request, refused beyond the daily budget.
- Conversion events per metric (`<p>:attribution:events:<metric>`: event id -> the event's join key, value, time
  and attribution) and the latest event time read (`...:mark`): a run reads events from the mark less an
  overlap (events arriving late with an earlier time), not the whole period again.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import redis

from sync.attribution.join import Conversion


class AttributionCache:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.prefix = f"{key_prefix}:attribution"

    # --- values report chunks -----------------------------------------------------------------------
    def _chunk_key(self, kind: str, metric: str, chunk: str) -> str:
        return f"{self.prefix}:values:{kind}:{metric}:{chunk}"

    def chunk(self, kind: str, metric: str, chunk: str) -> tuple[float, dict[str, tuple[Decimal, int]]] | None:
        """(read at, totals per campaign or flow) of a cached chunk, or None."""
        raw = self.client.get(self._chunk_key(kind, metric, chunk))
        if not raw:
            return None
        body = json.loads(raw)
        return float(body["at"]), {send: (Decimal(v), int(n)) for send, (v, n) in body["totals"].items()}

    def put_chunk(self, kind: str, metric: str, chunk: str, totals: dict[str, tuple[Decimal, int]],
                  at: float | None = None) -> None:
        body = {"at": time.time() if at is None else at,
                "totals": {send: [str(v), n] for send, (v, n) in totals.items()}}
        self.client.set(self._chunk_key(kind, metric, chunk), json.dumps(body))

    def take_values_call(self, budget: int, now: float | None = None) -> bool:
        """Count one values request against today's budget (UTC day); False: the budget is spent, do not call."""
        day = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%d")
        key = f"{self.prefix}:values-calls:{day}"
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, 2 * 86400)
        count, _ = pipe.execute()
        if int(count) > budget:
            self.client.decr(key)
            return False
        return True

    def values_calls_today(self, now: float | None = None) -> int:
        day = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%d")
        return int(self.client.get(f"{self.prefix}:values-calls:{day}") or 0)

    # --- conversion events --------------------------------------------------------------------------
    def events(self, metric: str) -> list[Conversion]:
        stored = self.client.hgetall(f"{self.prefix}:events:{metric}")
        return [_conversion(event_id, raw) for event_id, raw in stored.items()]

    def covered_since(self, metric: str) -> datetime | None:
        """The earliest event time the cache holds every event from (up to the mark)."""
        raw = self.client.get(f"{self.prefix}:events:{metric}:from")
        return datetime.fromisoformat(_text(raw)) if raw else None

    def mark(self, metric: str) -> datetime | None:
        raw = self.client.get(f"{self.prefix}:events:{metric}:mark")
        return datetime.fromisoformat(_text(raw)) if raw else None

    def put_events(self, metric: str, conversions: list[Conversion], mark: datetime | None,
                   covered_since: datetime | None = None) -> None:
        pipe = self.client.pipeline()
        if covered_since is not None:
            pipe.set(f"{self.prefix}:events:{metric}:from", covered_since.isoformat())
        if conversions:
            pipe.hset(f"{self.prefix}:events:{metric}", mapping={c.event_id: _encoded(c) for c in conversions})
        if mark is not None:
            pipe.set(f"{self.prefix}:events:{metric}:mark", mark.isoformat())
        pipe.execute()

    def forget(self) -> int:
        """Drop every cached report and event (`bcsync report attribution --refresh`)."""
        keys = list(self.client.scan_iter(f"{self.prefix}:*", count=1000))
        return int(self.client.delete(*keys)) if keys else 0


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _encoded(c: Conversion) -> str:
    return json.dumps([c.order_key, str(c.value), c.time.isoformat(), c.kind, c.send_id, c.message_id])


def _conversion(event_id: str | bytes, raw: str | bytes) -> Conversion:
    key, value, moment, kind, send, message = json.loads(raw)
    return Conversion(event_id=_text(event_id), order_key=key, value=Decimal(value),
                      time=datetime.fromisoformat(moment), kind=kind, send_id=send, message_id=message)
