"""One computation per order at a time: a short lock per order number around load -> compute -> remember.

Two documents of one order handled by two workers at once would each compute the order from what they read,
and the later one could decide again what the first had just decided (which credit memo carries the
order-level refund id, the revision baseline of Updated Order). The order flow takes the lock of every order
it is about to compute, computes only those it holds, and hands the others to the delayed schedule, so
nothing waits long and nothing is dropped.

Key ``<prefix>:orders:lock:<order number>`` = the holder's token, with a TTL (a worker lost while holding it
frees it by expiry). Many orders (a backfill page) are taken in one round trip, in sorted order; a holder
only ever waits with a bound and then goes on with what it holds, so two holders can never deadlock.
`confirm` renews the holder's locks just before its results are written and says which were lost (expired
and perhaps taken by another worker): those results must not be written.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import redis

from state.keys import RedisKeys

# KEYS: the lock keys; ARGV: token, ttl ms. Returns, per key, 1 when the token holds it (taken now or before).
_ACQUIRE = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
    out[i] = 1
  elseif redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, tonumber(ARGV[2]))
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: the lock keys; ARGV: token, ttl ms (0: release). Returns, per key, 1 when the token still held it.
_RENEW_OR_RELEASE = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    if tonumber(ARGV[2]) > 0 then
      redis.call('PEXPIRE', key, tonumber(ARGV[2]))
    else
      redis.call('DEL', key)
    end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

RETRY_INTERVAL_SECONDS = 0.05


@dataclass
class Held:
    """The orders one holder computes now (`numbers`) and those another holder has (`busy`)."""

    token: str
    numbers: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


class OrderLocks:
    def __init__(self, client: redis.Redis, key_prefix: str, ttl_seconds: float = 30.0) -> None:
        self.client = client
        self.base = f"{RedisKeys(key_prefix).orders}:lock"
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self._acquire = client.register_script(_ACQUIRE)
        self._renew_or_release = client.register_script(_RENEW_OR_RELEASE)

    def key(self, number: str) -> str:
        return f"{self.base}:{number}"

    def acquire(self, numbers: list[str], wait_seconds: float) -> Held:
        """Take the locks of `numbers` (in sorted order, one round trip per try), asking again for those held
        elsewhere until `wait_seconds` have passed; the ones still held elsewhere then are `busy`."""
        held = Held(token=uuid.uuid4().hex)
        wanted = sorted(set(numbers))
        deadline = time.monotonic() + wait_seconds
        while wanted:
            got = self._acquire(keys=[self.key(n) for n in wanted], args=[held.token, self.ttl_ms])
            held.numbers.extend(n for n, ok in zip(wanted, got, strict=True) if ok)
            wanted = [n for n, ok in zip(wanted, got, strict=True) if not ok]
            if not wanted or time.monotonic() + RETRY_INTERVAL_SECONDS > deadline:
                break
            time.sleep(RETRY_INTERVAL_SECONDS)
        held.busy = wanted
        order = {n: i for i, n in enumerate(dict.fromkeys(numbers))}
        held.numbers.sort(key=order.__getitem__)  # the caller's order, for delivery in list order
        return held

    def confirm(self, held: Held) -> list[str]:
        """Renew the holder's locks; returns the orders whose lock it no longer has."""
        if not held.numbers:
            return []
        kept = self._renew_or_release(keys=[self.key(n) for n in held.numbers], args=[held.token, self.ttl_ms])
        return [n for n, ok in zip(held.numbers, kept, strict=True) if not ok]

    def release(self, held: Held) -> None:
        if held.numbers:
            self._renew_or_release(keys=[self.key(n) for n in held.numbers], args=[held.token, 0])
