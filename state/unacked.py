"""The broker's unacknowledged messages: kept fresh while their worker lives, and read for `bcsync status`.

kombu's Redis transport emulates acks with two keys under the broker's prefix: ``unacked`` (delivery tag ->
JSON ``[payload, exchange, routing_key]``; the routing key is the lane) and ``unacked_index`` (delivery tag ->
a time, first the time the message was taken). Every worker's periodic sweep (``QoS.restore_visible``) puts
back on its lane any message whose index score is older than the visibility timeout, whoever holds it; the
score is read nowhere else (ack, reject and restore only delete it).

So each live worker's heartbeat (`delivery/heartbeat.py`) calls `refresh` every few seconds with the tags it
holds: their scores become "now", and only a dead worker's messages ever grow old. The visibility timeout
can then be short for every lane, and a long task on a live worker is never redelivered under it.

Because the score is a heartbeat, when each message was taken is kept apart, in the fleet's own hash
``<prefix>:unacked:taken`` (tag -> the index score the heartbeat found on first sight, i.e. kombu's take time),
cleaned of tags that are no longer unacknowledged on every refresh.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import redis

from state.keys import RedisKeys

# KEYS: index, unacked, taken. ARGV: now, n_new, n_new tags first seen by this worker, then tags seen before.
# ZADD XX: a tag acknowledged or restored meanwhile is not written back (kombu already deleted it).
_REFRESH = """
local now, n_new = ARGV[1], tonumber(ARGV[2])
local refreshed = 0
for i = 3, #ARGV do
  local tag = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], tag)
  if score then
    if i < 3 + n_new then redis.call('HSET', KEYS[3], tag, score) end
    redis.call('ZADD', KEYS[1], 'XX', now, tag)
    refreshed = refreshed + 1
  end
end
for _, tag in ipairs(redis.call('HKEYS', KEYS[3])) do
  if redis.call('HEXISTS', KEYS[2], tag) == 0 then redis.call('HDEL', KEYS[3], tag) end
end
return refreshed
"""


@dataclass(frozen=True)
class LaneUnacked:
    """One lane's unacknowledged messages: how many, the age of the oldest (since its current holder took
    it), and how many no live worker has vouched for lately (their worker died: they go back on the lane
    once past the visibility timeout)."""

    count: int = 0
    oldest_seconds: float | None = None
    orphaned: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class UnackedMessages:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        keys = RedisKeys(key_prefix)
        self.unacked = keys.broker_unacked
        self.index = keys.broker_unacked_index
        self.taken = keys.unacked_taken
        self._refresh = client.register_script(_REFRESH)

    def refresh(self, new: Collection[str], known: Collection[str], now: float) -> int:
        """Vouch for the messages this worker holds (`new`: first seen since the last call); returns how many
        were still unacknowledged."""
        return int(self._refresh(keys=[self.index, self.unacked, self.taken],
                                 args=[repr(now), len(new), *new, *known]))

    def by_lane(self, lanes: Collection[str], now: float, orphaned_after: float) -> dict[str, LaneUnacked]:
        """Every lane in `lanes` (and any other routing key found), read from kombu's keys."""
        raw = self.client.hgetall(self.unacked)
        taken = self.client.hgetall(self.taken)
        vouched = dict(self.client.zrange(self.index, 0, -1, withscores=True))
        grouped: dict[str, list[tuple[float, bool]]] = {lane: [] for lane in lanes}
        for tag, value in raw.items():
            lane = _routing_key(value)
            last = vouched.get(tag)
            since = float(taken.get(tag) or last or now)
            grouped.setdefault(lane, []).append((now - since, last is None or now - last > orphaned_after))
        return {
            lane: LaneUnacked(len(ages), round(max(a for a, _ in ages), 1), sum(1 for _, o in ages if o))
            if ages else LaneUnacked()
            for lane, ages in grouped.items()
        }


def _routing_key(value: str) -> str:
    try:
        return str(json.loads(value)[2])
    except (ValueError, IndexError, TypeError):
        return "?"
