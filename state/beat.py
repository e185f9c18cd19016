"""Beat's heartbeat: the time of the schedule's last tick, for `bcsync status` and a watchdog.

Redis string ``<prefix>:beat:last-tick``: epoch seconds written by the beat that holds the schedule lock, on
every tick that reached Redis. A standby beat does not write it, so its age is how long no beat has run the
schedule (the one-second `flush-stock` entry is the only thing that sends debounced stock figures).
"""

from __future__ import annotations

import redis

from state.keys import RedisKeys


class BeatHeartbeat:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).beat_last_tick

    def tick(self, now: float) -> None:
        self.client.set(self.key, repr(float(now)))

    def last_tick(self) -> float | None:
        """Epoch seconds of the last tick, or None when no beat has ticked since Redis was (re)started."""
        raw = self.client.get(self.key)
        if raw is None:
            return None
        return float(raw if isinstance(raw, str) else raw.decode())

    def age(self, now: float) -> float | None:
        """Seconds since the last tick at `now` (None: never ticked)."""
        last = self.last_tick()
        return None if last is None else max(0.0, now - last)
