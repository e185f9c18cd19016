"""What the fleet keeps per order in Redis, behind a small interface so the domain stays pure.

Per order number (``<prefix>:orders:...``):
- ``doc:<num>``      hash ``<resource>:<key>`` -> the latest raw ERP record (header+lines, pick tickets,
                     invoices, credit memos), newest `last_mod` wins; picks/invoices/memos find their order
                     through the mapping's ``order`` field;
- ``meta:<num>``     hash: ``revision`` (last delivered `Revision` JSON), ``pending`` (revision waiting for
                     its Placed/Updated keys to reach the ledger, with those keys), ``refund_pin`` (memo that
                     went out with the order-level refund id), ``profile`` (whose aggregates it counts for);
- ``seen:<num>``     list of the ERP versions seen (newest last, capped), for `bcsync audit order`;
- ``computed:<num>`` hash ledger key -> JSON of the event computed for it (first computation kept);
- ``customer:<profile key>`` set of the order numbers of one profile (for the ERP aggregates).

Retention: an order that is closed or cancelled (its stage per the mapping) expires with everything above
after ``fingerprint_ttl_days`` from its last change, like the poller's fingerprints; open orders are kept.
A re-scan after lost state rebuilds all of it from the ERP (the desired-state design makes that safe).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis

from config.mapping import Mapping
from sync.orders.revision import Revision
from sync.orders.status import OrderStatus, classify_status
from sync.watermarks import local_to_utc

ORDER_RESOURCES = ("order", "pick", "invoice", "creditmemo")
SEEN_KEPT = 200
FINAL_STAGES = (OrderStatus.CLOSED, OrderStatus.CANCELLED)


@dataclass
class StoredDocuments:
    """The raw documents of one order as stored (the header may be missing: children seen first)."""

    order: dict[str, Any] | None = None
    picks: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    credit_memos: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PendingRevision:
    revision: Revision
    keys: tuple[str, ...]


class OrderStateStore(Protocol):
    """The state the order flow needs; `RedisOrderState` is the production one."""

    def order_number(self, resource: str, record: dict[str, Any]) -> str | None: ...
    def put_document(self, resource: str, record: dict[str, Any], version: str = "") -> str | None: ...
    def documents(self, number: str) -> StoredDocuments: ...
    def delivered_revision(self, number: str) -> Revision | None: ...
    def set_delivered_revision(self, number: str, revision: Revision) -> None: ...
    def pending_revision(self, number: str) -> PendingRevision | None: ...
    def set_pending_revision(self, number: str, revision: Revision, keys: Iterable[str]) -> None: ...
    def refund_pin(self, number: str) -> str | None: ...
    def set_refund_pin(self, number: str, memo: str) -> None: ...
    def index_customer(self, number: str, profile_key: str) -> None: ...
    def customer_orders(self, profile_key: str) -> list[str]: ...
    def note_computed(self, number: str, entries: dict[str, dict[str, Any]]) -> None: ...
    def computed(self, number: str) -> dict[str, dict[str, Any]]: ...
    def versions_seen(self, number: str) -> list[dict[str, Any]]: ...


class RedisOrderState:
    def __init__(self, client: redis.Redis, key_prefix: str, mapping: Mapping,
                 retention_days: int = 400) -> None:
        self.client = client
        self.mapping = mapping
        self.base = f"{key_prefix}:orders"
        self.ttl = int(retention_days * 86400)
        self.zone = ZoneInfo(mapping.tenant.timezone)

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
        value = record.get(link)
        text = "" if value is None else str(value).strip()
        return text or None

    def _stamp(self, record: dict[str, Any], resource: str) -> str:
        raw = record.get(getattr(self.mapping.resources, resource).last_mod)
        try:
            return local_to_utc(str(raw), self.zone).isoformat() if raw else ""
        except ValueError:
            return ""

    def put_document(self, resource: str, record: dict[str, Any], version: str = "") -> str | None:
        """Keep `record` as the latest version of its document unless a newer one is stored. Returns the
        order number it belongs to (None: the record names no order, nothing stored)."""
        if resource not in ORDER_RESOURCES:
            raise ValueError(f"not an order document resource: {resource!r}")
        number = self.order_number(resource, record)
        if number is None:
            return None
        res = getattr(self.mapping.resources, resource)
        number_field = getattr(self.mapping.fields, resource).number
        ident = f"{resource}:{record.get(res.key) or record.get(number_field)}"
        stamp = self._stamp(record, resource)
        doc_key = self._key("doc", number)
        stored = self.client.hget(doc_key, ident)
        if stored:
            old = json.loads(stored)
            if old.get("stamp", "") > stamp:  # an older read arriving late never replaces a newer one
                return number
        entry = {"stamp": stamp, "version": version, "record": record}
        seen = {"resource": resource, "key": ident, "version": version, "last_mod": record.get(res.last_mod),
                "stored_at": time.time()}
        if resource == "order":
            seen["status"] = record.get(self.mapping.fields.order.status)
        pipe = self.client.pipeline()
        pipe.hset(doc_key, ident, json.dumps(entry))
        pipe.rpush(self._key("seen", number), json.dumps(seen))
        pipe.ltrim(self._key("seen", number), -SEEN_KEPT, -1)
        pipe.execute()
        self._retain(number, record if resource == "order" else None)
        return number

    def _retain(self, number: str, header: dict[str, Any] | None) -> None:
        """Closed/cancelled orders expire after the retention; open ones are kept (persist)."""
        if header is None:
            raw = self.client.hget(self._key("doc", number), f"order:{self._header_ident(number)}")
            header = json.loads(raw)["record"] if raw else None
        code = str((header or {}).get(self.mapping.fields.order.status, "")).strip()
        final = classify_status(code, self.mapping.lifecycle) in FINAL_STAGES
        pipe = self.client.pipeline()
        for key in self._order_keys(number):
            if final:
                pipe.expire(key, self.ttl)
            else:
                pipe.persist(key)
        pipe.execute()

    def _header_ident(self, number: str) -> str:
        fields = self.client.hkeys(self._key("doc", number))
        return next((f.split(":", 1)[1] for f in fields if f.startswith("order:")), "")

    def documents(self, number: str) -> StoredDocuments:
        out = StoredDocuments()
        for ident, raw in sorted(self.client.hgetall(self._key("doc", number)).items()):
            resource = ident.split(":", 1)[0]
            record = json.loads(raw)["record"]
            if resource == "order":
                out.order = record
            elif resource == "pick":
                out.picks.append(record)
            elif resource == "invoice":
                out.invoices.append(record)
            else:
                out.credit_memos.append(record)
        return out

    # --- what was delivered -----------------------------------------------------------------------
    def delivered_revision(self, number: str) -> Revision | None:
        raw = self.client.hget(self._key("meta", number), "revision")
        return Revision.model_validate_json(raw) if raw else None

    def set_delivered_revision(self, number: str, revision: Revision) -> None:
        pipe = self.client.pipeline()
        pipe.hset(self._key("meta", number), "revision", revision.model_dump_json())
        pipe.hdel(self._key("meta", number), "pending")
        pipe.execute()

    def pending_revision(self, number: str) -> PendingRevision | None:
        raw = self.client.hget(self._key("meta", number), "pending")
        if not raw:
            return None
        data = json.loads(raw)
        return PendingRevision(Revision.model_validate(data["revision"]), tuple(data["keys"]))

    def set_pending_revision(self, number: str, revision: Revision, keys: Iterable[str]) -> None:
        body = {"revision": revision.model_dump(mode="json"), "keys": list(keys)}
        self.client.hset(self._key("meta", number), "pending", json.dumps(body))

    def refund_pin(self, number: str) -> str | None:
        value = self.client.hget(self._key("meta", number), "refund_pin")
        return str(value) if value else None

    def set_refund_pin(self, number: str, memo: str) -> None:
        self.client.hset(self._key("meta", number), "refund_pin", memo)

    # --- customers, audit ---------------------------------------------------------------------------
    def index_customer(self, number: str, profile_key: str) -> None:
        pipe = self.client.pipeline()
        pipe.sadd(self._key("customer", profile_key), number)
        pipe.expire(self._key("customer", profile_key), self.ttl)
        pipe.hset(self._key("meta", number), "profile", profile_key)
        pipe.execute()

    def customer_orders(self, profile_key: str) -> list[str]:
        """The profile's orders still in state (expired ones are pruned from the index)."""
        numbers = sorted(self.client.smembers(self._key("customer", profile_key)))  # type: ignore[arg-type]
        pipe = self.client.pipeline()
        for number in numbers:
            pipe.exists(self._key("doc", number))
        alive = pipe.execute()
        gone = [n for n, ok in zip(numbers, alive, strict=True) if not ok]
        if gone:
            self.client.srem(self._key("customer", profile_key), *gone)
        return [n for n, ok in zip(numbers, alive, strict=True) if ok]

    def note_computed(self, number: str, entries: dict[str, dict[str, Any]]) -> None:
        if not entries:
            return
        pipe = self.client.pipeline()
        for key, entry in entries.items():
            pipe.hsetnx(self._key("computed", number), key, json.dumps(entry))
        pipe.execute()

    def computed(self, number: str) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.client.hgetall(self._key("computed", number)).items()}

    def versions_seen(self, number: str) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.client.lrange(self._key("seen", number), 0, -1)]
