"""Crossed freshness thresholds, so each crossing is reported once (an exception, a Sentry message), not once
per check, and its clearing resolves it once.

Hash ``<prefix>:freshness:crossed``: ``<check>|<subject>`` (e.g. ``watermark_age|customer``) -> JSON `Crossing`.
`over` starts a crossing or keeps it (True only for the call that started it); `under` clears it once its value
has stayed under the threshold for `clear_after` seconds (True only for the call that cleared it). Both are one
Lua script each, so two checks running at once (a slow one overlapping the next) can never both report.
"""

from __future__ import annotations

import json

import redis
from pydantic import BaseModel

from state.keys import RedisKeys

# Times are whole milliseconds: cjson writes numbers with 14 significant digits, which epoch seconds with a
# fraction exceed (a clear could then come a few microseconds early or late).
# KEYS: hash. ARGV: field, now ms, value, threshold. Returns 1 when this call started the crossing.
_OVER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local now, value, threshold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not raw then
  local rec = {since_ms = now, value = value, threshold = threshold, at_ms = now}
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
  return 1
end
local rec = cjson.decode(raw)
rec.value, rec.threshold, rec.at_ms, rec.below_ms = value, threshold, now, nil
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 0
"""

# KEYS: hash. ARGV: field, now ms, clear_after ms, value. Returns 1 when this call cleared the crossing.
_UNDER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local now, after = tonumber(ARGV[2]), tonumber(ARGV[3])
local rec = cjson.decode(raw)
if type(rec.below_ms) ~= 'number' then rec.below_ms = now end
if now - rec.below_ms >= after then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
if ARGV[4] ~= '' then rec.value = tonumber(ARGV[4]) end
rec.at_ms = now
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 0
"""


class Crossing(BaseModel):
    since: float  # when the value first went over its threshold
    value: float  # the latest value seen
    threshold: float
    at: float  # when it was last checked
    below_since: float | None = None  # back under the threshold since (not cleared yet: clear_after)

    @classmethod
    def from_stored(cls, raw: str) -> Crossing:
        data = json.loads(raw)
        below = data.get("below_ms")
        return cls(since=data["since_ms"] / 1000, value=data["value"], threshold=data["threshold"],
                   at=data["at_ms"] / 1000, below_since=None if below is None else below / 1000)


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


class FreshnessCrossings:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).freshness_crossings
        self._over = client.register_script(_OVER)
        self._under = client.register_script(_UNDER)

    def over(self, check: str, subject: str, value: float, threshold: float, now: float) -> bool:
        """The value is over its threshold; True when this call started the crossing."""
        return bool(self._over(keys=[self.key], args=[f"{check}|{subject}", _ms(now), repr(float(value)),
                                                      repr(float(threshold))]))

    def under(self, check: str, subject: str, now: float, clear_after: float, value: float | None = None) -> bool:
        """The value is under its threshold (or gone); True when this call cleared the crossing."""
        return bool(self._under(keys=[self.key], args=[f"{check}|{subject}", _ms(now), _ms(clear_after),
                                                       "" if value is None else repr(float(value))]))

    def all(self) -> dict[tuple[str, str], Crossing]:
        out: dict[tuple[str, str], Crossing] = {}
        for field, raw in self.client.hgetall(self.key).items():
            check, _, subject = str(field).partition("|")
            out[(check, subject)] = Crossing.from_stored(raw)
        return out
