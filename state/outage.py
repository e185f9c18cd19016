"""Klaviyo outages: the half-open probe's memory.

While Klaviyo answers 5xx or times out, envelopes wait in the delayed-retry schedule with a growing backoff
(up to ``backoff_max_seconds``). The engine notes each one here; the first sign that Klaviyo answers again - a
delivery that succeeded, or the drainer's probe (one small GET every few seconds, by one worker at a time) -
pulls every noted entry forward to now, so waiting work resumes in seconds instead of sitting out its backoff.
"""

from __future__ import annotations

import time

import redis

from state.keys import RedisKeys

# KEYS: since, waiting, the schedule's due set. ARGV: now. Moves the noted entries still waiting to now.
_RESUME = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local ids = redis.call('SMEMBERS', KEYS[2])
local moved = 0
for _, id in ipairs(ids) do
  moved = moved + redis.call('ZADD', KEYS[3], 'XX', 'CH', ARGV[1], id)
end
redis.call('DEL', KEYS[1], KEYS[2])
return moved
"""


class KlaviyoOutage:
    def __init__(self, client: redis.Redis, key_prefix: str, due_key: str) -> None:
        self.client = client
        keys = RedisKeys(key_prefix)
        self.since_key = keys.klaviyo_outage_since
        self.waiting_key = keys.klaviyo_outage_waiting
        self.probe_key = keys.klaviyo_outage_probe
        self.due_key = due_key
        self._resume = client.register_script(_RESUME)

    def note_waiting(self, entry_id: str, now: float | None = None) -> None:
        pipe = self.client.pipeline()
        pipe.set(self.since_key, now or time.time(), nx=True)
        pipe.sadd(self.waiting_key, entry_id)
        pipe.execute()

    def since(self) -> float | None:
        raw = self.client.get(self.since_key)
        return float(raw) if raw else None

    def lasting(self, at_least: float, now: float | None = None) -> bool:
        """An outage on record for at least `at_least` seconds (the probe clears it when Klaviyo answers)."""
        since = self.since()
        return since is not None and (now or time.time()) - since >= at_least

    def waiting(self) -> int:
        return int(self.client.scard(self.waiting_key))

    def resume(self, now: float | None = None, client: redis.client.Pipeline | None = None) -> int:
        """Klaviyo answers again: every noted entry is due now. Returns how many moved (-1: no outage; 0 when
        queued in `client`'s pipeline, whose result then holds the count)."""
        keys = [self.since_key, self.waiting_key, self.due_key]
        if client is not None:
            # EVAL inside a pipeline: a registered script there costs redis-py a SCRIPT EXISTS round trip first
            client.eval(_RESUME, len(keys), *keys, now or time.time())
            return 0
        return int(self._resume(keys=keys, args=[now or time.time()]))

    def may_probe(self, every_seconds: float) -> bool:
        """True for one caller per `every_seconds` fleet-wide (the probe costs Klaviyo budget)."""
        return bool(self.client.set(self.probe_key, "1", nx=True, px=max(1, int(every_seconds * 1000))))
