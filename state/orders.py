"""What the fleet keeps per order in Redis, behind a small interface so the domain stays pure.

Per order number (``<prefix>:orders:...``):
- ``doc:<num>``      hash ``<resource>:<key>`` -> the latest raw ERP record (header+lines, pick tickets,
                     invoices, credit memos), newest `last_mod` wins; picks/invoices/memos find their order
                     through the mapping's ``order`` field;
- ``meta:<num>``     hash: ``revision`` (last delivered `Revision` JSON), ``pending`` (revision waiting for
                     its Placed/Updated keys to reach the ledger, with those keys), ``refund_pin`` (memo that
                     went out with the order-level refund id);
- ``seen:<num>``     list of the ERP versions seen (newest last, capped), for `bcsync audit order`;
- ``computed:<num>`` hash ledger key -> JSON of the event computed for it (first computation kept).
A profile's orders are found through its durable facts (`state.order_facts`: one hash per profile).

Release: an order that is closed or cancelled (its stage per the mapping) keeps all of the above for a grace period
after its last change (``order_document_grace_days``: how long the ERP may still change it), listed in
``orders:closing`` by when it is due; then `flows.order_release` releases it: its facts are written from its
full documents, everything above goes, with its ledger entries and the poller's fingerprints of its documents, and
``order-released:<bucket>`` keeps which profile's facts it is in. What the ERP says of it later is computed from
those facts (`sync.orders.compacted`). Open orders are kept. A re-scan after lost state rebuilds all of it from
the ERP (the desired-state design makes that safe).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import redis
from redis.client import Pipeline

from config.mapping import Mapping
from state.keys import RedisKeys
from sync import json_text
from sync.changes import is_change_version
from sync.fields import field_text, normalised
from sync.localtime import local_to_utc
from sync.orders.revision import Revision
from sync.orders.state import (
    FINAL_STAGES,
    ORDER_RESOURCES,
    SEEN_KEPT,
    OrderSnapshot,
    PendingRevision,
    StoredDocuments,
    pending_from_json,
    stored_documents,
)
from sync.orders.status import classify_status

RELEASED_BUCKETS = 8192  # up to ~1M released orders, each bucket stays a listpack (<= 128 entries)

# A page's documents in one command (a backfill writes hundreds of thousands; one script call per page costs
# the client one command and one reply, where a MULTI of three commands a document cost it three of each).
# Each document is kept unless a newer read of it is stored: an older read arriving late never replaces a newer
# one (stamps compared byte by byte: Lua's own string order follows the server's collation locale).
# KEYS: per document its `doc` hash and its `seen` list; ARGV: how many sightings to keep, then per document
# its slot in the hash, its entry, its sighting and its stamp. Returns the (1-based) documents not stored.
_PUT_DOCUMENTS = """
local function stamp_of(held)
  local stamp = string.match(held, '^{"stamp":"([^"\\\\]*)"')
  if stamp then return stamp end
  local ok, entry = pcall(cjson.decode, held)
  if ok and type(entry) == 'table' and type(entry['stamp']) == 'string' then return entry['stamp'] end
  return ''
end
local function after(a, b)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local kept = tonumber(ARGV[1])
local skipped = {}
for i = 1, #KEYS / 2 do
  local doc, seen, at = KEYS[2 * i - 1], KEYS[2 * i], 4 * i - 2
  local held = redis.call('HGET', doc, ARGV[at])
  if held and after(stamp_of(held), ARGV[at + 3]) then
    table.insert(skipped, i)
  else
    redis.call('HSET', doc, ARGV[at], ARGV[at + 1])
    redis.call('RPUSH', seen, ARGV[at + 2])
    redis.call('LTRIM', seen, -kept, -1)
  end
end
return skipped
"""
# Each order of a page due for release a grace period from now (closed, cancelled) or not (open), and its keys
# kept without expiry (an earlier version set one: the release takes over). KEYS: the closing index, then
# ARGV[2] keys per order (its `doc` hash first); ARGV: the due time, keys per order, then per order its number and
# '1' if final, '0' if open, '?' when the caller has no header: then an order already closing stays closing
# (due from now), one with no header stored is open, and one whose stored header must be read is returned
# undecided (untouched) - so a page of documents whose orders are not stored yet (a backfill) costs one call.
_RETAIN = """
local per = tonumber(ARGV[2])
local orders = (#ARGV - 2) / 2
local undecided = {}
for i = 1, orders do
  local number, final = ARGV[2 * i + 1], ARGV[2 * i + 2]
  local first = 2 + per * (i - 1)
  if final == '?' then
    if redis.call('ZSCORE', KEYS[1], number) then
      final = '1'
    else
      final = '0'
      for _, field in ipairs(redis.call('HKEYS', KEYS[first])) do
        if string.sub(field, 1, 6) == 'order:' then final = nil; break end
      end
    end
  end
  if final == nil then
    table.insert(undecided, number)
  else
    if final == '1' then redis.call('ZADD', KEYS[1], ARGV[1], number) else redis.call('ZREM', KEYS[1], number) end
    for k = first, first + per - 1 do redis.call('PERSIST', KEYS[k]) end
  end
end
return undecided
"""


class RedisOrderState:
    def __init__(self, client: redis.Redis, key_prefix: str, mapping: Mapping,
                 grace_days: float = 30) -> None:
        self.client = client
        self.mapping = mapping
        self.keys = RedisKeys(key_prefix)
        self.base = self.keys.orders
        self.grace = grace_days * 86400
        self.zone = ZoneInfo(mapping.tenant.timezone)
        self._put_documents = client.register_script(_PUT_DOCUMENTS)
        self._retain = client.register_script(_RETAIN)

    # --- keys -------------------------------------------------------------------------------------
    def _key(self, kind: str, ident: str) -> str:
        return f"{self.base}:{kind}:{ident}"

    def _order_keys(self, number: str) -> list[str]:
        return [self._key(kind, number) for kind in ("doc", "meta", "seen", "computed")]

    # --- documents --------------------------------------------------------------------------------
    def order_number(self, resource: str, record: dict[str, Any]) -> str | None:
        """The order a record belongs to: the header's number, or a document's `order` link."""
        fields = getattr(self.mapping.fields, resource)
        link = fields.number if resource == "order" else fields.order
        return field_text(normalised(record, fields), link) or None  # the number the parsers read

    def _slot(self, resource: str, record: dict[str, Any]) -> str:
        """The document's place in its order's hash: its key, else its number (after the normalisers)."""
        fields = getattr(self.mapping.fields, resource)
        read = normalised(record, fields)
        return f"{resource}:{read.get(getattr(self.mapping.resources, resource).key) or read.get(fields.number)}"

    def _stamp(self, record: dict[str, Any], resource: str, version: str = "") -> str:
        """What orders two reads of one document: the poller's change version where there is one (the ERP's
        counter, or last_mod placed unambiguously in a repeated hour: docs/poller.md, "Versions"), else
        last_mod read as the earlier instant (a backfill's re-read). Both start with the UTC stamp."""
        if is_change_version(version):
            return version
        raw = record.get(getattr(self.mapping.resources, resource).last_mod)
        try:
            return local_to_utc(str(raw), self.zone, self.mapping.date_formats(resource)).isoformat() if raw else ""
        except ValueError:
            return ""

    def put_document(self, resource: str, record: dict[str, Any], version: str = "") -> str | None:
        """Keep `record` as the latest version of its document unless a newer one is stored. Returns the
        order number it belongs to (None: the record names no order, nothing stored)."""
        return self.put_documents(resource, [record], version)[0]

    def put_documents(self, resource: str, records: list[dict[str, Any]], version: str = "") -> list[str | None]:
        """`put_document` for many records of one resource in two script calls (a backfill page): the newer
        versions written (`_PUT_DOCUMENTS` compares the stamps), then the orders' retention (`_retain_many`).
        Same outcome as putting them one by one in list order."""
        if resource not in ORDER_RESOURCES:
            raise ValueError(f"not an order document resource: {resource!r}")
        res = getattr(self.mapping.resources, resource)
        fields = getattr(self.mapping.fields, resource)
        numbers = [self.order_number(resource, record) for record in records]
        placed: list[tuple[str, dict[str, Any]]] = []
        keys: list[str] = []
        args: list[str | int | bytes] = [SEEN_KEPT]
        for number, record in zip(numbers, records, strict=True):
            if number is None:
                continue
            ident = self._slot(resource, record)
            stamp = self._stamp(record, resource, version)
            # the document's own number (order, pick ticket, invoice, credit memo) is what finance looks for
            read = normalised(record, fields)
            seen = {"resource": resource, "key": ident, "document": read.get(fields.number), "version": version,
                    "last_mod": record.get(res.last_mod), "stored_at": time.time()}
            if resource == "order":
                seen["status"] = read.get(self.mapping.fields.order.status)
            entry = {"stamp": stamp, "version": version, "record": record}  # the stamp first: the script reads it
            keys += [self._key("doc", number), self._key("seen", number)]
            args += [ident, json_text.dumps_bytes(entry), json_text.dumps_bytes(seen), stamp]
            placed.append((number, record))
        if not placed:
            return numbers
        skipped = {int(i) - 1 for i in self._put_documents(keys=keys, args=args)}
        headers: dict[str, dict[str, Any] | None] = {}
        for i, (number, record) in enumerate(placed):
            if resource == "order" and i not in skipped:
                headers[number] = record
            else:
                headers.setdefault(number, None)
        self._retain_many(headers)
        return numbers

    def _retain_many(self, headers: dict[str, dict[str, Any] | None]) -> None:
        """Closed/cancelled orders are due for release a grace period after this change; open ones are kept. A
        None header is the state's: decided by the script where it can be (closing already, or no header
        stored), else read here and decided in a second call."""
        undecided = self._retain_decided(headers)
        if not undecided:
            return
        pipe = self.client.pipeline(transaction=False)
        for number in undecided:
            pipe.hgetall(self._key("doc", number))
        read: dict[str, dict[str, Any] | None] = {}
        for number, docs in zip(undecided, pipe.execute(), strict=True):
            raw = next((v for k, v in sorted(docs.items()) if k.startswith("order:")), None)
            read[number] = json_text.loads(raw)["record"] if raw else {}
        self._retain_decided(read)

    def _retain_decided(self, headers: dict[str, dict[str, Any] | None]) -> list[str]:
        """One `_RETAIN` call; returns the orders it left undecided (a None header whose stored one must be read)."""
        if not headers:
            return []
        keys = [self.keys.orders_closing]
        args: list[str | float | int] = [time.time() + self.grace, len(self._order_keys(""))]
        for number, header in headers.items():
            if header is None:
                final = "?"
            else:
                code = field_text(normalised(header, self.mapping.fields.order), self.mapping.fields.order.status)
                final = "1" if classify_status(code, self.mapping.lifecycle) in FINAL_STAGES else "0"
            args += [number, final]
            keys += self._order_keys(number)
        return [str(n) for n in self._retain(keys=keys, args=args)]

    # --- release (docs: module) -------------------------------------------------------------------
    def due_for_release(self, now: float | None = None, limit: int = 500) -> list[str]:
        """Closed or cancelled orders whose grace period has passed, the longest due first."""
        now = time.time() if now is None else now
        return [str(n) for n in self.client.zrangebyscore(self.keys.orders_closing, "-inf", now, 0, limit)]

    def closing(self, numbers: list[str]) -> dict[str, float | None]:
        """When each order is due for release (None: open, or not stored)."""
        pipe = self.client.pipeline(transaction=False)
        for number in numbers:
            pipe.zscore(self.keys.orders_closing, number)
        return dict(zip(numbers, pipe.execute(), strict=True))

    @staticmethod
    def released_bucket(number: str) -> int:
        # small hashes, which Redis keeps as compact listpacks (past ~1M released orders, as plain hashes)
        return zlib.crc32(number.encode()) % RELEASED_BUCKETS

    def released(self, numbers: list[str]) -> dict[str, str]:
        """The released orders among `numbers` -> the profile key their facts are stored under."""
        if not numbers:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for number in numbers:
            pipe.hget(self.keys.orders_released(self.released_bucket(number)), number)
        return {n: str(p) for n, p in zip(numbers, pipe.execute(), strict=True) if p}

    def mark_released(self, number: str, profile: str, pipe: Pipeline) -> None:
        pipe.hset(self.keys.orders_released(self.released_bucket(number)), number, profile)

    def forget_released(self, numbers: list[str], pipe: Pipeline) -> None:
        for number in numbers:
            pipe.hdel(self.keys.orders_released(self.released_bucket(number)), number)

    def raw_documents(self, number: str) -> dict[str, dict[str, Any]]:
        """The `doc:<num>` hash as stored: ``<resource>:<key>`` -> the raw record."""
        return {k: json_text.loads(v)["record"] for k, v in self.client.hgetall(self._key("doc", number)).items()}

    def drop_order(self, number: str, pipe: Pipeline) -> None:
        """Queue the deletion of everything kept per order (documents, lifecycle state, audit trail, closing)."""
        pipe.delete(*self._order_keys(number))
        pipe.zrem(self.keys.orders_closing, number)

    def release_reads(self, numbers: list[str]) -> dict[str, tuple[float | None, dict[str, str], dict[str, Any]]]:
        """What releasing each order needs, one round trip: when it is due (None: not closing), its document hash
        as stored, and its computed events (ledger key -> entry)."""
        pipe = self.client.pipeline(transaction=False)
        for number in numbers:
            pipe.zscore(self.keys.orders_closing, number)
            pipe.hgetall(self._key("doc", number))
            pipe.hgetall(self._key("computed", number))
        replies = pipe.execute()
        return {n: (None if replies[3 * i] is None else float(replies[3 * i]), replies[3 * i + 1],
                    {k: json_text.loads(v) for k, v in replies[3 * i + 2].items()})
                for i, n in enumerate(numbers)}

    def doc_key(self, number: str) -> str:
        return self._key("doc", number)

    def documents(self, number: str) -> StoredDocuments:
        return stored_documents(self.client.hgetall(self._key("doc", number)))

    def documents_many(self, numbers: list[str]) -> dict[str, StoredDocuments]:
        pipe = self.client.pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(self._key("doc", number))
        return {n: stored_documents(raw) for n, raw in zip(numbers, pipe.execute(), strict=True)}

    def snapshots(self, numbers: list[str]) -> dict[str, OrderSnapshot]:
        """Documents, delivered/pending revision, refund pin and computed keys of many orders, one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(self._key("doc", number))
            pipe.hgetall(self._key("meta", number))
            pipe.hkeys(self._key("computed", number))
        replies = pipe.execute()
        out: dict[str, OrderSnapshot] = {}
        for i, number in enumerate(numbers):
            docs, meta, computed = replies[3 * i: 3 * i + 3]
            out[number] = OrderSnapshot(
                documents=stored_documents(docs),
                revision=Revision.model_validate_json(meta["revision"]) if meta.get("revision") else None,
                pending=pending_from_json(meta.get("pending")),
                refund_pin=str(meta["refund_pin"]) if meta.get("refund_pin") else None,
                computed=tuple(sorted(computed)),
            )
        return out

    # --- what was delivered -----------------------------------------------------------------------
    def delivered_revision(self, number: str) -> Revision | None:
        raw = self.client.hget(self._key("meta", number), "revision")
        return Revision.model_validate_json(raw) if raw else None

    def set_delivered_revision(self, number: str, revision: Revision, pipe: Pipeline | None = None) -> None:
        with _batch(self.client, pipe) as p:
            p.hset(self._key("meta", number), "revision", revision.model_dump_json())
            p.hdel(self._key("meta", number), "pending")

    def pending_revision(self, number: str) -> PendingRevision | None:
        return pending_from_json(self.client.hget(self._key("meta", number), "pending"))

    def set_pending_revision(self, number: str, revision: Revision, keys: Iterable[str],
                             pipe: Pipeline | None = None) -> None:
        body = {"revision": revision.model_dump(mode="json"), "keys": list(keys)}
        with _batch(self.client, pipe) as p:
            p.hset(self._key("meta", number), "pending", json_text.dumps(body))

    def refund_pin(self, number: str) -> str | None:
        value = self.client.hget(self._key("meta", number), "refund_pin")
        return str(value) if value else None

    def set_refund_pin(self, number: str, memo: str, pipe: Pipeline | None = None) -> None:
        with _batch(self.client, pipe) as p:
            p.hset(self._key("meta", number), "refund_pin", memo)

    # --- audit ---------------------------------------------------------------------------------------
    def note_computed(self, number: str, entries: dict[str, dict[str, Any]], pipe: Pipeline | None = None) -> None:
        if not entries:
            return
        with _batch(self.client, pipe) as p:
            for key, entry in entries.items():
                p.hsetnx(self._key("computed", number), key, json_text.dumps(entry))

    def computed(self, number: str) -> dict[str, dict[str, Any]]:
        return {k: json_text.loads(v) for k, v in self.client.hgetall(self._key("computed", number)).items()}

    def versions_seen(self, number: str) -> list[dict[str, Any]]:
        return [json_text.loads(v) for v in self.client.lrange(self._key("seen", number), 0, -1)]


@contextmanager
def _batch(client: redis.Redis, pipe: Pipeline | None) -> Iterator[Pipeline]:
    """Queue writes on the caller's pipeline, or on an own one executed at the end."""
    if pipe is not None:
        yield pipe
        return
    own = client.pipeline()
    yield own
    own.execute()

