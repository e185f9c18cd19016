"""The durable per-order facts (`sync.orders.facts`) in Redis: one hash per profile
(``<prefix>:order-facts:<profile key>``, order number -> compact facts JSON), with no expiry.

An order's documents expire once it is closed or cancelled (`state.orders`); its facts stay for as long as its
customer, so the customer's aggregates always cover the whole history. They are written with the order's
computed state (the order flow's write pipeline) and dropped only by an erasure (`state.erasure`) or when the
order leaves the mapping's filters. One hash per profile: the aggregates of a profile are one HGETALL, and the
hash is the customer's index of orders too.

They are also the fleet's record of the refund ids given to the order's credit memos (which memo has the
order-level Refunded Order id, which ones their composite id: docs/order-lifecycle.md, "Refund ids"), read
before every computation of the order (`refund_ids`). Rewriting an order's facts never changes a decision
already recorded (in one Lua call: the memo under the order-level id stays, composite memos only grow), so
facts rebuilt from the documents never forget what went out, and the first decision wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import redis
from redis.client import Pipeline

from config.mapping import Mapping
from state.keys import RedisKeys
from sync.orders.facts import OrderFacts, decode_facts, encode_facts, order_facts
from sync.orders.lifecycle import profile_key
from sync.orders.records import OrderDocuments
from sync.orders.refund_ids import SentRefunds

# KEYS[1] the profile's facts hash; ARGV[1] the order number, ARGV[2] its new facts (JSON). The refund ids
# already recorded win: the stored memo under the order-level id (ro) stays, the composite memos (rc) are the
# union of both, without the order-level one, sorted - as `encode_facts` writes them. A memo date already
# recorded (md, memo -> ISO instant) stays: the first recorded is the memo's date for good.
_PUT = """
local new = ARGV[2]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local prev = cjson.decode(old)
  if prev.md then
    local cur = cjson.decode(new)
    local dates = cur.md or {}
    for memo, moment in pairs(prev.md) do dates[memo] = moment end
    cur.md = dates
    new = cjson.encode(cur)
  end
  if prev.ro or prev.rc then
    local cur = cjson.decode(new)
    if prev.ro then cur.ro = prev.ro end
    local memos, seen = {}, {}
    for _, list in ipairs({prev.rc or {}, cur.rc or {}}) do
      for _, memo in ipairs(list) do
        if memo ~= cur.ro and not seen[memo] then
          seen[memo] = true
          memos[#memos + 1] = memo
        end
      end
    end
    table.sort(memos)
    cur.rc = nil
    if #memos > 0 then cur.rc = memos end
    new = cjson.encode(cur)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], new)
return 1
"""

# KEYS[1] the profile's facts hash, KEYS[2] the mark that every refund id given is recorded
# (`refunds_all_recorded`), KEYS[3] its generation; ARGV[1] the order number. Drops the order's facts; if they held
# refund ids, the mark is voided (those ids are forgotten while Klaviyo may hold the refunds). Facts without refund
# ids (an order that never had any, or one never stored: most orders outside the filters) keep the mark.
_DROP = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local ok, prev = pcall(cjson.decode, old)
if not ok or type(prev) ~= 'table' or prev.ro or (prev.rc and #prev.rc > 0) then
  redis.call('DEL', KEYS[2])
  redis.call('INCR', KEYS[3])
end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""
# KEYS[1] the mark, KEYS[2] its generation; ARGV[1] the generation read before Klaviyo was asked, ARGV[2] the
# metric. Set only if nothing voided a mark since (a drop between the read and now may have forgotten refund ids).
_MARK = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


class OrderFactsStore:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)
        self._put = client.register_script(_PUT)
        self._drop = client.register_script(_DROP)
        self._mark = client.register_script(_MARK)

    def key(self, profile: str) -> str:
        return self.keys.order_facts(profile)

    def record(self, docs: OrderDocuments, mapping: Mapping, pipe: Pipeline | None = None,
               refund_ids: SentRefunds | None = None) -> OrderFacts | None:
        """Keep the order's facts as its documents say now, with the refund ids its computation gave its memos
        (kept unless already decided); an order outside the mapping's filters has its facts dropped (it no longer
        counts), one whose profile cannot be told has none (and no events). Returns what was written."""
        profile = profile_key(docs.order, mapping)
        if profile is None:
            return None
        facts = order_facts(docs, mapping, profile, refund_ids)
        with _batch(self.client, pipe) as p:
            if facts is None:
                self._drop(keys=[self.key(profile), self.keys.refunds_all_recorded,
                                 self.keys.refunds_recorded_generation], args=[docs.order.number], client=p)
            else:
                self.put(facts, p)
        return facts

    def put(self, facts: OrderFacts, pipe: Pipeline | None = None) -> None:
        if not facts.profile:
            raise ValueError(f"order {facts.number}: facts without a profile key cannot be stored")
        with _batch(self.client, pipe) as p:
            self._put(keys=[self.key(facts.profile)], args=[facts.number, encode_facts(facts)], client=p)

    def refunds_all_recorded(self, metric: str) -> bool:
        """Whether Klaviyo held no `metric` event at all once these facts were being kept (`mark_...`): every
        refund id given since is recorded here before it is sent, so an order with none recorded has no refund in
        Klaviyo, and nothing need be read back. Lost with the facts (a state loss reads back again); voided
        (`void_refunds_recorded`) when refund ids are forgotten or sent without being recorded here."""
        return self.client.get(self.keys.refunds_all_recorded) == metric

    def refunds_generation(self) -> str:
        """Read before asking Klaviyo: `mark_refunds_all_recorded` sets the mark only if nothing voided one since."""
        return str(self.client.get(self.keys.refunds_recorded_generation) or "0")

    def mark_refunds_all_recorded(self, metric: str, generation: str) -> bool:
        keys = [self.keys.refunds_all_recorded, self.keys.refunds_recorded_generation]
        return bool(self._mark(keys=keys, args=[generation, metric]))

    def void_refunds_recorded(self, pipe: Pipeline | None = None) -> None:
        """Refund ids were forgotten (an erasure) or sent without being recorded here (a reconcile repair):
        Klaviyo is read back again from now on, and a mark decided before this is not set."""
        with _batch(self.client, pipe) as p:
            p.delete(self.keys.refunds_all_recorded)
            p.incr(self.keys.refunds_recorded_generation)

    def of_profile(self, profile: str) -> list[OrderFacts]:
        return self.of_profiles([profile])[profile]

    def of_profiles(self, profiles: list[str]) -> dict[str, list[OrderFacts]]:
        """Every order's facts of each profile (by order number), in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for profile in profiles:
            pipe.hgetall(self.key(profile))
        out: dict[str, list[OrderFacts]] = {}
        for profile, raw in zip(profiles, pipe.execute(), strict=True):
            entries = sorted((_text(number), value) for number, value in raw.items())
            out[profile] = [decode_facts(number, profile, value) for number, value in entries]
        return out

    def refund_ids(self, orders: dict[str, OrderDocuments], mapping: Mapping) -> dict[str, SentRefunds | None]:
        """The refund ids recorded for each order's memos, one round trip (None: none recorded - no refund of it
        was computed, or its facts are gone: state lost, the customer erased)."""
        profiles = {number: profile_key(docs.order, mapping) for number, docs in orders.items()}
        asked = [(number, profile) for number, profile in profiles.items() if profile is not None]
        pipe = self.client.pipeline(transaction=False)
        for number, profile in asked:
            pipe.hget(self.key(profile), number)
        out: dict[str, SentRefunds | None] = dict.fromkeys(orders)
        for (number, profile), raw in zip(asked, pipe.execute(), strict=True):
            if raw:
                out[number] = decode_facts(number, profile, raw).refund_ids
        return out

    def memo_dates(self, orders: dict[str, OrderDocuments], mapping: Mapping) -> dict[str, dict[str, datetime]]:
        """The memo dates recorded for each order (`OrderFacts.memo_dates`), one round trip; only orders with an
        undated memo are asked (none at all for a tenant whose memos carry their date)."""
        asked = [(number, profile) for number, docs in orders.items()
                 if any(memo.date is None for memo in docs.credit_memos)
                 and (profile := profile_key(docs.order, mapping)) is not None]
        if not asked:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for number, profile in asked:
            pipe.hget(self.key(profile), number)
        return {number: decode_facts(number, profile, raw).memo_dates
                for (number, profile), raw in zip(asked, pipe.execute(), strict=True) if raw}

    def every_order(self, batch: int = 500) -> Iterator[OrderFacts]:
        """Every order's facts of every profile (the attribution report's ERP side): SCAN over the profiles'
        hashes, `batch` of them per round trip."""
        prefix = self.key("")
        keys: list[str] = []
        for key in self.client.scan_iter(f"{prefix}*", count=1000):
            keys.append(_text(key))
            if len(keys) >= batch:
                yield from self._of_keys(prefix, keys)
                keys = []
        yield from self._of_keys(prefix, keys)

    def _of_keys(self, prefix: str, keys: list[str]) -> Iterator[OrderFacts]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        for key, raw in zip(keys, pipe.execute(), strict=True):
            profile = key[len(prefix):]
            for number, value in raw.items():
                yield decode_facts(_text(number), profile, value)

    def forget(self, profile: str) -> int:
        """Drop a profile's facts (an erasure); returns how many orders' facts there were."""
        pipe = self.client.pipeline()
        pipe.hlen(self.key(profile))
        pipe.delete(self.key(profile))
        self.void_refunds_recorded(pipe)  # its refund ids are forgotten: Klaviyo's deletion of them is asynchronous
        count, *_ = pipe.execute()
        return int(count)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextmanager
def _batch(client: redis.Redis, pipe: Pipeline | None) -> Iterator[Pipeline]:
    """Queue writes on the caller's pipeline, or on an own one executed at the end."""
    if pipe is not None:
        yield pipe
        return
    own = client.pipeline()
    yield own
    own.execute()
