"""Redis memory per million customers, orders and SKUs, measured on a private redis-server.

    .venv/bin/python -m bench.redis_memory --records 100000

For each kind it starts a fresh private redis-server (tests/support/redis_server.PrivateRedis), writes
N records' worth of the fleet's state, and reports the growth of ``used_memory`` (and RSS) scaled to
1,000,000 records. The state is written with the fleet's own stores where they exist (``sync.ledger.Ledger``,
``sync.fingerprints.FingerprintStore``, both with their retention TTLs) and with representative raw keys
where the owning code does not exist yet:

  customer  fingerprint entry in ``<p>:fp:customers`` (12 field digests), 1 ledger entry (profile upsert,
            with Klaviyo's profile id) and its per-record ledger index
  order     (the old layout, kept for comparison) latest documents, ``<p>:order-docs:<order>`` hash (~1.5 KB of
            JSON), fingerprint entry (16 field digests), 5 ledger entries and the per-record ledger index
  open      an open order as the fleet keeps it today, written by the order flow itself (``flows.orders
            .sync_orders`` over ``state.orders.RedisOrderState``: documents, lifecycle state, computed events, facts),
            its events recorded in the ledger as the delivery engine does, and the poller's fingerprints of its
            documents (16 field digests each): a confirmed web order of 2 lines (one of 3 partly shipped)
  closed    a closed order past its grace period: the same, shipped and invoiced in full, one in 5 with a credit
            memo, then released (``flows.order_release.release_due``): its facts and its released-index entry stay
  sku       fingerprint entry in ``<p>:fp:skus`` (8 field digests), last delivered stock version in
            ``<p>:stock-delivered`` (version string)
  facts     an order's durable facts (``state.order_facts.OrderFactsStore``, kept as long as the customer, no
            retention): one field of its profile's ``<p>:order-facts:<profile key>`` hash, written by the store
            itself; ``--orders-per-customer`` orders per profile (3), a storefront reference on every order, a
            partial cancellation on one in 10, a refund on one in 5 (with its refund id: the memo under the
            order-level id)

Broker queues, dead letters and exceptions are not included: they are bounded by backlog and retention, not
by the size of the tenant.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import redis

from bench.doc_blocks import write_block
from config.mapping import Mapping
from flows.order_release import release_due
from flows.orders import OrderContext, sync_orders
from state.exceptions import ExceptionRegister
from state.fingerprints import FingerprintStore
from state.ledger import Ledger
from state.order_facts import OrderFactsStore
from state.orders import RedisOrderState
from sync.fingerprints import NAME_BYTES, VALUE_BYTES, StoredFingerprint
from sync.ledger import LedgerEntry
from sync.operations import Operation
from sync.orders.facts import OrderFacts
from sync.orders.status import OrderStatus
from tests.support.orders import ErpOrder
from tests.support.redis_server import PrivateRedis  # noqa: E402

PREFIX = "bcsync"
CHUNK = 1000
PER_MILLION = 1_000_000
COLORS = ["BLK", "NVY", "RED", "GRN"]
SIZES = ["XS", "S", "M", "L", "XL"]


def digest(seed: str, size: int) -> bytes:
    return hashlib.blake2b(seed.encode(), digest_size=size).digest()


def stored_fingerprint(record: str, fields: int) -> StoredFingerprint:
    digests = {digest(f"field{i}", NAME_BYTES): digest(f"{record}/{i}", VALUE_BYTES) for i in range(fields)}
    return StoredFingerprint(digest(record, 16).hex(), "2026-11-26T10:20:30", 1, digests)


def order_documents(order: str) -> dict[str, str]:
    """~1.5 KB of JSON, shaped like a Blue Cherry order header, two lines and a shipment."""
    header = {
        "order_no": order, "customer": "C" + order[2:], "status": "E", "ord_date": "2026-11-20T09:14:00",
        "ship_via": "UPS GROUND", "terms": "NET30", "currency": "USD", "total": "245.90",
        "ship_to": {"name": "J. Doe", "addr1": "12 Example Street", "city": "Springfield", "state": "IL",
                    "zip": "62704", "country": "US"},
        "division": "01", "season": "FA26", "last_mod": "2026-11-20T09:15:02",
    }
    lines = [
        {"line_seq": i, "style": f"ST{i:04d}", "color": "BLK", "size": "M", "upc": f"0123456789{i:02d}",
         "qty": 1, "price": "122.95", "discount": "0.00", "status": "O", "desc": "Relaxed wool coat"}
        for i in range(1, 3)
    ]
    shipments = [
        {"shipment_no": f"SH{order[2:]}", "ship_date": "2026-11-21", "carrier": "UPS",
         "tracking": "1Z999AA10123456784", "lines": [{"line_seq": 1, "qty": 1}, {"line_seq": 2, "qty": 1}]}
    ]
    return {"header": json.dumps(header), "lines": json.dumps(lines), "shipments": json.dumps(shipments)}


def ledger_entry(
    key: str, record: str, endpoint: str, status: int, response: dict[str, str] | None = None
) -> LedgerEntry:
    return LedgerEntry(key=key, delivered_at=time.time(), status=status, endpoint=endpoint, version=None,
                       record=record, response=response)


def write_customers(client: redis.Redis, ids: range) -> None:
    fingerprints = FingerprintStore(client, PREFIX)
    ledger = Ledger(client, PREFIX)
    for chunk in chunks(ids):
        keys = [f"{100000 + i}" for i in chunk]
        fingerprints.remember("customers", [(k, stored_fingerprint(k, 12)) for k in keys])
        ledger.record([ledger_entry(f"profile:{k}", f"customer:{k}", "profile-import", 200,
                                    {"id": "01J" + digest(k, 12).hex()[:23].upper(), "type": "profile"})
                       for k in keys])


def write_orders(client: redis.Redis, ids: range) -> None:
    fingerprints = FingerprintStore(client, PREFIX)
    ledger = Ledger(client, PREFIX)
    ttl = 400 * 86400
    metrics = ["Placed Order", "Ordered Product", "Ordered Product", "Fulfilled Order", "Updated Order"]
    for chunk in chunks(ids):
        keys = [f"SO{1000000 + i}" for i in chunk]
        pipe = client.pipeline(transaction=False)
        for order in keys:
            pipe.hset(f"{PREFIX}:order-docs:{order}", mapping=order_documents(order))  # type: ignore[arg-type]
            pipe.expire(f"{PREFIX}:order-docs:{order}", ttl)
        pipe.execute()
        fingerprints.remember("orders", [(k, stored_fingerprint(k, 16)) for k in keys])
        ledger.record([ledger_entry(f"event:{metric}:{order}-{n}", f"order:{order}", "events", 202)
                       for order in keys for n, metric in enumerate(metrics)])


def write_skus(client: redis.Redis, ids: range) -> None:
    fingerprints = FingerprintStore(client, PREFIX)
    for chunk in chunks(ids):
        # style-color-size, like a Blue Cherry SKU
        keys = [f"ST{i // 40:05d}-{COLORS[i % 4]}-{SIZES[i % 5]}{i % 2}" for i in chunk]
        fingerprints.remember("skus", [(k, stored_fingerprint(k, 8)) for k in keys])
        versions = {k: f"2026-11-26T10:20:30.{i:06d}" for i, k in zip(chunk, keys, strict=True)}
        client.hset(f"{PREFIX}:stock-delivered", mapping=versions)  # type: ignore[arg-type]


ORDERS_PER_CUSTOMER = 3  # --orders-per-customer
FLOW_PAGE = 200  # orders per `sync_orders` call, as a backfill page
RESOURCES = (("order", "raw_order"), ("pick", "raw_picks"), ("invoice", "raw_invoices"), ("creditmemo", "raw_memos"))


def erp_order(i: int, closed: bool, per_customer: int = ORDERS_PER_CUSTOMER) -> ErpOrder:
    """Order `i` of the tenant: confirmed; closed ones shipped and invoiced in full (one in 5 with a credit memo),
    open ones partly shipped one time in 3."""
    mapping = MAPPING
    erp = ErpOrder(mapping, number=f"{1000000 + i}", customer=f"C{1000000 + i // per_customer}",
                   email=f"shopper{i // per_customer}@example.com")
    erp.confirm()
    if closed:
        erp.ship(f"P{1000000 + i}")
        erp.invoice(f"I{1000000 + i}")
        if i % 5 == 0:
            erp.credit(f"M{1000000 + i}", "30.00", {1: 1})
        erp.close()
    elif i % 3 == 0:
        erp.ship(f"P{1000000 + i}", {1: 1})
    return erp


MAPPING = Mapping()


def _listed(records: dict[str, object] | list[dict[str, object]]) -> list[dict[str, object]]:
    return records if isinstance(records, list) else [records]


def flow_writer(closed: bool, per_customer: int = ORDERS_PER_CUSTOMER) -> Callable[[redis.Redis, range], None]:
    """Orders through the order flow, delivered into the ledger, fingerprinted as the poller does; closed ones then
    released past their grace period."""
    def write(client: redis.Redis, ids: range) -> None:
        text = client  # measure() reads replies as text, as the fleet does
        ledger = Ledger(text, PREFIX)

        def delivered(ops: list[Operation]) -> None:
            ledger.record([ledger_entry(op.key, op.record or "", "events" if op.kind == "event" else
                                        "profile-import", 202) for op in ops])
        state = RedisOrderState(text, PREFIX, MAPPING, grace_days=30)
        ctx = OrderContext(text, PREFIX, MAPPING, state, ledger, ExceptionRegister(text, PREFIX, MAPPING.owners),
                           delivered)
        fingerprints = FingerprintStore(text, PREFIX)
        for start in range(ids.start, ids.stop, FLOW_PAGE):
            page = [erp_order(i, closed, per_customer) for i in range(start, min(start + FLOW_PAGE, ids.stop))]
            for resource, method in RESOURCES:
                records = [r for erp in page for r in _listed(getattr(erp, method)())]
                state.put_documents(resource, records)
                key = getattr(MAPPING.resources, resource).key
                fingerprints.remember(resource, [(str(r[key]), stored_fingerprint(str(r[key]), 16))
                                                 for r in records])
            sync_orders([erp.number for erp in page], ctx)
        if closed:
            while release_due(ctx, now=time.time() + 31 * 86400, limit=2000):
                pass
    return write


def order_facts(i: int, per_customer: int = ORDERS_PER_CUSTOMER) -> OrderFacts:
    """A closed web order's facts, shaped like the fleet's (values vary with `i`)."""
    number = f"{1000000 + i}"
    placed = Decimal(100 + i % 400) + Decimal(i % 100) / 100
    cancelled = Decimal(20) if i % 10 == 0 else Decimal(0)
    refunded = Decimal(35) + Decimal(i % 100) / 100 if i % 5 == 0 else Decimal(0)
    return OrderFacts(
        number=number, profile=f"external_id:C{1000000 + i // per_customer}", status=OrderStatus.CLOSED,
        placed_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=7 * i), placed_value=placed,
        cancelled_value=cancelled, shipped_value=placed - cancelled, refunded=refunded,
        storefront_ref=f"SHOP#{number}", refund_order_id_memo=f"CM{number}" if refunded else None,
    )


def facts_writer(per_customer: int) -> Callable[[redis.Redis, range], None]:
    def write_facts(client: redis.Redis, ids: range) -> None:
        store = OrderFactsStore(client, PREFIX)
        for chunk in chunks(ids):
            pipe = client.pipeline(transaction=False)
            for i in chunk:
                store.put(order_facts(i, per_customer), pipe)
            pipe.execute()
    return write_facts


KINDS: dict[str, Callable[[redis.Redis, range], None]] = {
    "customers": write_customers, "open": flow_writer(False), "closed": flow_writer(True), "skus": write_skus,
    "facts": facts_writer(ORDERS_PER_CUSTOMER), "orders": write_orders,
}
DEFAULT_KINDS = ("customers", "open", "closed", "skus")


def chunks(ids: range) -> Iterator[range]:
    for start in range(ids.start, ids.stop, CHUNK):
        yield range(start, min(start + CHUNK, ids.stop))


@dataclass
class Measurement:
    kind: str
    records: int
    used_bytes: int
    rss_bytes: int
    keys: int
    seconds: float

    @property
    def bytes_per_record(self) -> float:
        return self.used_bytes / self.records

    @property
    def mib_per_million(self) -> float:
        return self.used_bytes / self.records * PER_MILLION / 2**20

    @property
    def rss_mib_per_million(self) -> float:
        return self.rss_bytes / self.records * PER_MILLION / 2**20


def memory(client: redis.Redis) -> tuple[int, int]:
    info = client.info("memory")
    return int(info["used_memory"]), int(info["used_memory_rss"])


def measure(kind: str, records: int) -> Measurement:
    server = PrivateRedis.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        used_before, rss_before = memory(client)
        started = time.perf_counter()
        KINDS[kind](client, range(records))
        seconds = time.perf_counter() - started
        used_after, rss_after = memory(client)
        keys = int(client.dbsize())
        client.close()
        return Measurement(kind, records, used_after - used_before, rss_after - rss_before, keys, seconds)
    finally:
        server.stop()


def table(results: list[Measurement], version: str) -> str:
    rows = [
        f"Redis {version}; used_memory growth, scaled from {results[0].records:,} records per kind",
        "",
        "| kind | keys per record | bytes per record | MiB per 1,000,000 (used_memory) "
        "| MiB per 1,000,000 (RSS) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for m in results:
        rows.append(f"| {LABELS.get(m.kind, m.kind)} | {m.keys / m.records:.2f} | {m.bytes_per_record:,.0f} | "
                    f"{m.mib_per_million:,.0f} | {m.rss_mib_per_million:,.0f} |")
    total = sum(m.mib_per_million for m in results)
    total_rss = sum(m.rss_mib_per_million for m in results)
    names = " + ".join(f"1M {LABELS.get(m.kind, m.kind)}" for m in results)
    rows.append(f"| **{names}** | | | **{total:,.0f}** | **{total_rss:,.0f}** |")
    closed = next((m for m in results if m.kind == "closed"), None)
    if closed is not None:
        verdict = "within" if closed.used_bytes / closed.records * PER_MILLION <= 2**30 else "OVER"
        rows += ["", f"Closed orders past their grace period: {closed.mib_per_million:,.0f} MiB per million "
                 f"({verdict} the 1 GiB per million bound). Their RSS growth counts the pages of the documents "
                 "released during the run, which the allocator keeps for reuse."]
    return "\n".join(rows)


LABELS = {"open": "open orders", "closed": "closed orders", "skus": "SKUs", "orders": "orders (old layout)"}


def main() -> int:
    parser = argparse.ArgumentParser(description="Redis memory per million customers, orders and SKUs.")
    parser.add_argument("--records", type=int, default=100_000, help="records written per kind (scaled)")
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS),
                        help=f"comma-separated, of: {','.join(KINDS)} (default {','.join(DEFAULT_KINDS)})")
    parser.add_argument("--orders-per-customer", type=int, default=ORDERS_PER_CUSTOMER,
                        help="orders per profile for the facts (one hash per profile)")
    parser.add_argument("--write", type=Path, help="put the table into this markdown file (a generated block)")
    args = parser.parse_args()
    KINDS["facts"] = facts_writer(max(1, args.orders_per_customer))
    KINDS["open"] = flow_writer(False, max(1, args.orders_per_customer))
    KINDS["closed"] = flow_writer(True, max(1, args.orders_per_customer))
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or args.records <= 0:
        parser.error(f"unknown kinds {unknown}" if unknown else "--records must be positive")
    results = []
    for kind in kinds:
        result = measure(kind, args.records)
        print(f"{kind}: {result.records:,} records, {result.keys:,} keys, {result.seconds:.1f} s",
              file=sys.stderr, flush=True)
        results.append(result)
    server = PrivateRedis.start()
    try:
        version = str(redis.Redis.from_url(server.url).info("server")["redis_version"])
    finally:
        server.stop()
    block = table(results, version)
    print(block)
    if args.write:
        command = f"python -m bench.redis_memory --records {args.records} --kinds {','.join(kinds)}"
        write_block(args.write, f"bench.redis_memory {','.join(kinds)}", f"`{command}`\n\n{block}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
