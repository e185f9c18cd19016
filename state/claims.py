"""Claims: work taken out of a Redis buffer is held in a claim until it is published, then deleted.

Taking items out of a buffer and then publishing them loses the items if the process dies (or the broker
fails) in between. Here, like the delayed-retry schedule's drain (`state/delayed.py`), a Lua script moves
the items atomically out of the buffer into a claim record with its claim time; the caller publishes them
and only then deletes the claim (`ClaimStore.publishing`). A claim older than the reclaim age belongs to a
process that died: `reclaim_stale` puts its items back into their buffer. A crash can thus repeat a
publish (harmless: deliveries are idempotent through the ledger) but never lose one.

Two kinds of buffer:
- a list (the order bulk buffers): items are popped from the head and put back at the head, in order;
- a hash of JSON objects with a ``version`` string (the stock pending figures, the catalog outbox): a
  field is put back only if the buffer holds nothing newer for it - a figure or row written meanwhile with
  the same or a newer version wins, so a put-back never reverts a newer one.

Keys (named in `state.keys.RedisKeys`):
  claims               zset claim id -> claim time
  claim:<id>           the claimed items: a list, or a hash field -> value
  claim:<id>:meta      hash: buffer (its key), since_key, since (the buffer's `since` when claimed)
  <buffer>:since       when a list buffer or the catalog outbox last became non-empty (set by writers, NX;
                       deleted by the claim that empties the buffer; restored by a put-back)
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from redis.client import Pipeline

from state.keys import RedisKeys

log = logging.getLogger(__name__)

RECLAIM_AFTER = 30.0  # seconds: a claim this old belongs to a process that died (a flush takes well under 1 s)

# The claim record, shared by both claim scripts. KEYS: buffer, since, claims zset, claim items, claim meta;
# ARGV: now, claim id, track since ('1'/'0'). The buffer's `since` goes with the claim (a put-back restores
# it) and is deleted once the buffer is empty.
_RECORD = """
local function record(count, empty)
  if count == 0 then return end
  local since = ''
  if ARGV[3] == '1' then
    since = redis.call('GET', KEYS[2]) or ARGV[1]
    if empty then redis.call('DEL', KEYS[2]) end
  end
  redis.call('HSET', KEYS[5], 'buffer', KEYS[1], 'since_key', ARGV[3] == '1' and KEYS[2] or '', 'since', since)
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
end
"""

# ARGV[4]: how many items to claim from the head of the list; ARGV[5]: claim nothing unless the list holds at
# least this many (a whole bulk job, decided atomically: two flushes never split one chunk into two tails);
# ARGV[6] '1': the items left behind count their age from now (they wait for the next chunk or the age bound).
_CLAIM_LIST = _RECORD + """
if redis.call('LLEN', KEYS[1]) < tonumber(ARGV[5]) then return {} end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[4]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for _, item in ipairs(items) do redis.call('RPUSH', KEYS[4], item) end
local left = redis.call('LLEN', KEYS[1])
record(#items, left == 0)
if left > 0 and ARGV[6] == '1' then redis.call('SET', KEYS[2], ARGV[1]) end
return items
"""

# ARGV[4] '1': claim a field only if it still holds the value given after it (compare-and-claim);
# ARGV[5..]: fields (each followed by its expected value when comparing). Returns field, value pairs.
_CLAIM_FIELDS = _RECORD + """
local compare = ARGV[4] == '1'
local step = compare and 2 or 1
local taken = {}
for i = 5, #ARGV, step do
  local value = redis.call('HGET', KEYS[1], ARGV[i])
  if value and ((not compare) or value == ARGV[i + 1]) then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HSET', KEYS[4], ARGV[i], value)
    table.insert(taken, ARGV[i])
    table.insert(taken, value)
  end
end
record(#taken / 2, redis.call('HLEN', KEYS[1]) == 0)
return taken
"""

# KEYS: claims zset, claim items, claim meta, buffer, since; ARGV: claim id, since when claimed ('' none).
# Returns how many items went back, -1 when the claim was already released or reclaimed.
_PUT_BACK = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
  return -1
end
local function version(raw)
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' and type(doc['version']) == 'string' then return doc['version'] end
  return ''
end
local kind = redis.call('TYPE', KEYS[2])['ok']
local restored = 0
if kind == 'list' then
  local items = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = #items, 1, -1 do redis.call('LPUSH', KEYS[4], items[i]) end
  restored = #items
elseif kind == 'hash' then
  local flat = redis.call('HGETALL', KEYS[2])
  for i = 1, #flat, 2 do
    local held = redis.call('HGET', KEYS[4], flat[i])
    if (not held) or version(flat[i + 1]) > version(held) then
      redis.call('HSET', KEYS[4], flat[i], flat[i + 1])
      restored = restored + 1
    end
  end
end
if ARGV[2] ~= '' and restored > 0 then
  local held = redis.call('GET', KEYS[5])
  if (not held) or tonumber(held) > tonumber(ARGV[2]) then redis.call('SET', KEYS[5], ARGV[2]) end
end
redis.call('DEL', KEYS[2], KEYS[3])
return restored
"""


@dataclass(frozen=True)
class Claim:
    """Items claimed from `buffer`: a list's items, or a hash's values with their `fields` (same order)."""

    id: str
    buffer: str
    values: list[str]
    fields: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


class ClaimStore:
    def __init__(self, client: redis.Redis, key_prefix: str, reclaim_after: float | None = None) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)
        self.reclaim_after = reclaim_after
        self._claim_list = client.register_script(_CLAIM_LIST)
        self._claim_fields = client.register_script(_CLAIM_FIELDS)
        self._put_back = client.register_script(_PUT_BACK)

    # --- writers ---------------------------------------------------------------------------------
    def push(self, buffer: str, items: list[str]) -> int:
        """Append to a list buffer (noting when it became non-empty); returns the buffer's length."""
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(buffer, *items)
        self.mark_since(buffer, pipe)
        return int(pipe.execute()[0])

    def mark_since(self, buffer: str, pipe: Pipeline) -> None:
        """Note now as the time `buffer` became non-empty, unless it already was (on the writer's pipeline)."""
        pipe.set(RedisKeys.buffer_since(buffer), f"{time.time():.6f}", nx=True)

    # --- claiming ----------------------------------------------------------------------------------
    def _keys(self, buffer: str, claim_id: str) -> list[str]:
        k = self.keys
        return [buffer, RedisKeys.buffer_since(buffer), k.claims, k.claim(claim_id), k.claim_meta(claim_id)]

    def claim_list(self, buffer: str, limit: int, *, whole: bool = False) -> Claim | None:
        """Claim up to `limit` items from the head of a list buffer; None when it is empty. `whole`: claim
        exactly `limit` items or nothing (None while fewer are held), and restart the age of what is left."""
        claim_id = uuid.uuid4().hex
        args = [time.time(), claim_id, "1", limit, limit if whole else 1, "1" if whole else "0"]
        items = self._claim_list(keys=self._keys(buffer, claim_id), args=args)
        return Claim(claim_id, buffer, [str(i) for i in items]) if items else None

    def claim_fields(self, buffer: str, fields: list[str], *, track_since: bool = True) -> Claim | None:
        """Claim these fields of a hash buffer, whatever they hold now (absent ones are skipped)."""
        return self._fields(buffer, [*fields], compare=False, track_since=track_since)

    def claim_if_same(self, buffer: str, expected: dict[str, str], *, track_since: bool = True) -> Claim | None:
        """Claim each field of a hash buffer only if it still holds the expected value (a field rewritten
        since it was read is left for a later claim)."""
        flat = [part for pair in expected.items() for part in pair]
        return self._fields(buffer, flat, compare=True, track_since=track_since)

    def _fields(self, buffer: str, args: list[str], *, compare: bool, track_since: bool) -> Claim | None:
        if not args:
            return None
        claim_id = uuid.uuid4().hex
        flags = ["1" if track_since else "0", "1" if compare else "0"]
        taken = self._claim_fields(keys=self._keys(buffer, claim_id), args=[time.time(), claim_id, *flags, *args])
        if not taken:
            return None
        return Claim(claim_id, buffer, [str(v) for v in taken[1::2]], [str(f) for f in taken[0::2]])

    # --- after publishing, or instead of it ------------------------------------------------------------
    def release(self, claim: Claim) -> None:
        """The claim's items are published: forget them."""
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self.keys.claims, claim.id)
        pipe.delete(self.keys.claim(claim.id), self.keys.claim_meta(claim.id))
        pipe.execute()

    @contextmanager
    def publishing(self, *claims: Claim | None) -> Iterator[None]:
        """Release the claims once the block has published them; if it fails, put them back at once (the
        block may have published part of them: a repeat is harmless, a loss is not)."""
        held = [c for c in claims if c is not None]
        try:
            yield
        except BaseException:
            for claim in held:
                try:
                    self.put_back(claim.id)
                except redis.RedisError:  # still claimed: `reclaim_stale` puts it back later
                    log.exception("could not put back claim %s of %s", claim.id, claim.buffer)
            raise
        for claim in held:
            self.release(claim)

    def put_back(self, claim_id: str) -> int:
        """Return a claim's items to their buffer (never over a newer hash entry); -1 if already gone."""
        meta = self.client.hgetall(self.keys.claim_meta(claim_id))
        if not meta:  # released (or put back) meanwhile
            self.client.zrem(self.keys.claims, claim_id)
            return -1
        keys = [self.keys.claims, self.keys.claim(claim_id), self.keys.claim_meta(claim_id), str(meta["buffer"]),
                str(meta["since_key"] or RedisKeys.buffer_since(str(meta["buffer"])))]
        return int(self._put_back(keys=keys, args=[claim_id, str(meta["since"])]))

    def reclaim_stale(self, older_than: float | None = None, now: float | None = None) -> int:
        """Put back every claim older than `older_than` seconds (default: `reclaim_after`, else
        `RECLAIM_AFTER`); returns how many items went back."""
        age = older_than if older_than is not None else self.reclaim_after
        cutoff = (now if now is not None else time.time()) - (age if age is not None else RECLAIM_AFTER)
        restored = 0
        # newest first: each put-back goes to the head of a list, so the oldest claim ends up first again
        for claim_id in self.client.zrevrangebyscore(self.keys.claims, cutoff, "-inf"):
            back = self.put_back(str(claim_id))
            if back > 0:
                log.warning("claim %s was not published in time (its process died?): %d items put back",
                            claim_id, back)
                restored += back
        return restored

    # --- for operators -------------------------------------------------------------------------------
    def open_claims(self) -> tuple[int, float | None]:
        """Items held in open claims, and when the oldest open claim was made (None: no claim)."""
        oldest = self.client.zrange(self.keys.claims, 0, 0, withscores=True)
        ids = [str(i) for i in self.client.zrange(self.keys.claims, 0, -1)]
        pipe = self.client.pipeline(transaction=False)
        for claim_id in ids:
            pipe.type(self.keys.claim(claim_id))
        kinds = pipe.execute()
        for claim_id, kind in zip(ids, kinds, strict=True):
            if str(kind) == "list":
                pipe.llen(self.keys.claim(claim_id))
            else:
                pipe.hlen(self.keys.claim(claim_id))
        items = sum(int(n) for n in pipe.execute()) if ids else 0
        return items, (float(oldest[0][1]) if oldest else None)
