"""What the fleet knows of each customer's Klaviyo profile: its id, the email and phone Klaviyo holds, the
ERP version behind each attribute written, and the lease that makes one profile write at a time.

Hash `<prefix>:profile:<customer code>`:
- `id`: the Klaviyo profile id (from a profile-import answer, or looked up by external_id after state loss);
- `email`, `phone_number`: the identifiers Klaviyo holds, as last written (unsubscribes go by these);
- `v:<attribute>`: the ERP version of the newest write of that attribute (`properties.<name>` per property),
  so an older record never overwrites a newer one, whichever path (daily batch, immediate upsert, backfill)
  carries it.
Key `<prefix>:profile-lease:<code>`: the envelope writing the customer's profile now (expires by itself).
No TTL on the hash: a profile id stays good for as long as the customer exists (erasure forgets it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis

from state.keys import RedisKeys

IDENTITY_FIELDS = ("id", "email", "phone_number")

# KEYS[1] the hash; ARGV: version, then (attribute, value-or-\0) pairs. An attribute whose recorded version
# is newer is left alone; otherwise its version is recorded, and for an identifier the value too (\0 clears).
_RECORD_WRITE = """
local version = ARGV[1]
local taken = 0
for i = 2, #ARGV, 2 do
  local attr, value = ARGV[i], ARGV[i + 1]
  local held = redis.call('HGET', KEYS[1], 'v:' .. attr)
  if not held or held <= version then
    redis.call('HSET', KEYS[1], 'v:' .. attr, version)
    if attr == 'email' or attr == 'phone_number' then
      if value == '\\0' then redis.call('HDEL', KEYS[1], attr) else redis.call('HSET', KEYS[1], attr, value) end
    end
    taken = taken + 1
  end
end
return taken
"""

# KEYS: lease keys; ARGV: holder, ttl ms. Returns 1/0 per key: taken (free, or already this holder's) or not.
_ACQUIRE = """
local out = {}
for i, key in ipairs(KEYS) do
  local cur = redis.call('GET', key)
  if not cur or cur == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', tonumber(ARGV[2]))
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: lease keys; ARGV: holder, ttl ms (0 = release). Only the holder's own leases change.
_RENEW_OR_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', key, tonumber(ARGV[2])) else redis.call('DEL', key) end
  end
end
return 1
"""


@dataclass(frozen=True)
class Identity:
    """A customer's Klaviyo profile as the fleet last saw it; None where unknown."""

    id: str | None = None
    email: str | None = None
    phone_number: str | None = None


class ProfileStore:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)
        self._record = client.register_script(_RECORD_WRITE)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew_or_release = client.register_script(_RENEW_OR_RELEASE)

    # --- identity ------------------------------------------------------------------------------------
    def identities(self, codes: Iterable[str]) -> dict[str, Identity]:
        """The known identities of these customers (customers the fleet knows nothing of are left out)."""
        codes = list(dict.fromkeys(codes))
        if not codes:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for code in codes:
            pipe.hmget(self.keys.profile(code), list(IDENTITY_FIELDS))
        found: dict[str, Identity] = {}
        for code, values in zip(codes, pipe.execute(), strict=True):
            if any(values):
                found[code] = Identity(*(str(v) if v is not None else None for v in values))
        return found

    def remember(self, identities: dict[str, Identity]) -> None:
        """Store what Klaviyo answered or holds (None fields are left as they are)."""
        pipe = self.client.pipeline(transaction=False)
        for code, identity in identities.items():
            mapping: dict[str | bytes, str] = {
                name: str(getattr(identity, name)) for name in IDENTITY_FIELDS if getattr(identity, name)
            }
            if mapping:
                pipe.hset(self.keys.profile(code), mapping=mapping)
        pipe.execute()

    def forget_id(self, code: str) -> None:
        """Klaviyo no longer knows the id (merged or deleted there): it is looked up again."""
        self.client.hdel(self.keys.profile(code), "id")

    def forget(self, code: str) -> None:
        """Erasure: nothing of the customer's profile stays with the fleet."""
        self.client.delete(self.keys.profile(code), self.keys.profile_lease(code))

    # --- field versions ------------------------------------------------------------------------------
    def versions(self, codes: Iterable[str]) -> dict[str, dict[str, str]]:
        """customer code -> {attribute: ERP version of its newest write}."""
        codes = list(dict.fromkeys(codes))
        if not codes:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for code in codes:
            pipe.hgetall(self.keys.profile(code))
        out: dict[str, dict[str, str]] = {}
        for code, raw in zip(codes, pipe.execute(), strict=True):
            out[code] = {str(k)[2:]: str(v) for k, v in raw.items() if str(k).startswith("v:")}
        return out

    def record_writes(self, writes: Iterable[tuple[str, str, dict[str, str | None]]]) -> None:
        """(code, version, {attribute: value written}) for each confirmed write: versions move forward only;
        for `email` / `phone_number` the value is kept as what Klaviyo now holds (None: cleared)."""
        pipe = self.client.pipeline(transaction=False)
        for code, version, attributes in writes:
            args: list[str] = [version]
            for attr, value in attributes.items():
                args.extend((attr, "\0" if value is None else value))
            if len(args) > 1:
                self._record(keys=[self.keys.profile(code)], args=args, client=pipe)
        pipe.execute()

    # --- leases --------------------------------------------------------------------------------------
    def acquire(self, codes: Iterable[str], holder: str, ttl_seconds: float) -> set[str]:
        """Take the write lease of each customer that is free (or already `holder`'s); returns those taken."""
        codes = list(dict.fromkeys(codes))
        if not codes:
            return set()
        taken = self._acquire(keys=[self.keys.profile_lease(c) for c in codes],
                              args=[holder, int(ttl_seconds * 1000)])
        return {code for code, ok in zip(codes, taken, strict=True) if int(ok)}

    def renew(self, codes: Iterable[str], holder: str, ttl_seconds: float) -> None:
        keys = [self.keys.profile_lease(c) for c in dict.fromkeys(codes)]
        if keys:
            self._renew_or_release(keys=keys, args=[holder, max(1, int(ttl_seconds * 1000))])

    def release(self, codes: Iterable[str], holder: str) -> None:
        keys = [self.keys.profile_lease(c) for c in dict.fromkeys(codes)]
        if keys:
            self._renew_or_release(keys=keys, args=[holder, 0])
