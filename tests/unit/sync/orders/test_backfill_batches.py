"""`bcsync backfill orders` in page batches, on real Redis against a generated Blue Cherry sandbox tenant (no
workers: the submit below acts as a delivery that always succeeds, skipping and recording keys in the ledger
as the transport does)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config.mapping import Mapping, load_mapping
from connectors.bluecherry.client import BlueCherryClient
from flows.orders import OrderContext, flush_bulk_buffer, refresh_aggregates, sync_order
from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.server import ServerThread
from state.exceptions import ExceptionRegister
from state.ledger import Ledger
from state.orders import RedisOrderState
from sync.ledger import LedgerEntry
from sync.operations import Operation
from sync.orders.records import parse_order_documents
from workers.backfill_orders import DOCUMENT_RESOURCES, checkpoint_key, run_backfill

KEY = "backfill-batches-key"
PAGE = 40  # small pages: several of them, and an interruption in the middle


@pytest.fixture(scope="module")
def erp() -> Iterator[ServerThread]:
    config = BlueCherrySandboxConfig(subscription_key=KEY, customers=40, styles=6, orders=150,
                                     start_time="2026-03-02 10:00:00", frozen=True)
    with ServerThread(create_bluecherry(config)) as bc:
        yield bc


@pytest.fixture
def mapping(tmp_path: Path) -> Mapping:
    path = tmp_path / "mapping.toml"
    path.write_text("".join(f"[resources.{r}]\npage_size = {PAGE}\n" for r in (*DOCUMENT_RESOURCES, "order")),
                    encoding="utf-8")
    return load_mapping(path)


class Delivery:
    """Skips what the ledger holds or the same call already carries, records the rest (an event's record)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.ledger = Ledger(client, prefix)
        self.sent: list[Operation] = []

    def __call__(self, ops: list[Operation]) -> None:
        fresh: dict[str, Operation] = {}
        known = self.ledger.delivered([op.key for op in ops if op.kind == "event"])
        for op in ops:
            if op.kind != "event" or (op.key not in known and op.key not in fresh):
                fresh[op.key] = op
        self.sent.extend(fresh.values())
        self.ledger.record([LedgerEntry(key=op.key, delivered_at=time.time(), status=202,
                                        endpoint="event-bulk-create-jobs", version=op.version, record=op.record)
                            for op in fresh.values() if op.kind == "event"])


def context(client: redis.Redis, prefix: str, mapping: Mapping) -> tuple[OrderContext, Delivery]:
    delivery = Delivery(client, prefix)
    ctx = OrderContext(client, prefix, mapping, RedisOrderState(client, prefix, mapping), delivery.ledger,
                       ExceptionRegister(client, prefix, mapping.owners), delivery,
                       buffer=f"{prefix}:backfill:orders:bulk")
    return ctx, delivery


def events(delivery: Delivery) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for op in delivery.sent:
        if op.kind == "event":
            assert op.key not in out, f"{op.key} sent twice"
            assert op.payload["backfill"] is True and op.lane == "batch"
            out[op.key] = op.payload
    return out


def aggregates(delivery: Delivery) -> dict[str, dict[str, Any]]:
    """Latest ERP aggregates per profile."""
    return {op.key: op.payload for op in delivery.sent if op.kind == "profile_upsert"}


def test_page_batches_send_what_one_order_at_a_time_sends(erp: ServerThread, redis_client: redis.Redis,
                                                          mapping: Mapping) -> None:
    bc = BlueCherryClient(erp.url, KEY, timeout=30, mapping=mapping)
    batched, batched_sent = context(redis_client, "batched", mapping)
    stats = run_backfill(batched, bc, None)

    # The same tenant one order at a time through the single-order path.
    single, single_sent = context(redis_client, "single", mapping)
    numbers: list[str] = []
    for resource in DOCUMENT_RESOURCES:
        for page in bc.iter_pages(getattr(mapping.resources, resource), None):
            for record in page:
                single.state.put_document(resource, record, "backfill")
    for page in bc.iter_pages(mapping.resources.order, None):
        for record in page:
            number = single.state.put_document("order", record, "backfill")
            assert number is not None
            numbers.append(number)
            sync_order(number, single, backfill=True, aggregates=False)
    for number in numbers:
        stored = single.state.documents(number)
        assert stored.order is not None
        parsed = parse_order_documents(stored.order, mapping, stored.picks, stored.invoices,
                                       stored.credit_memos).documents
        if parsed is not None:
            refresh_aggregates(parsed, single, lane="batch")
    flush_bulk_buffer(single, drain=True)
    bc.close()

    assert stats.orders == 150 and stats.events == len(events(batched_sent)) > 150
    assert events(batched_sent) == events(single_sent)
    batched_profiles = {k: v["properties"] for k, v in aggregates(batched_sent).items()}
    single_profiles = {k: v["properties"] for k, v in aggregates(single_sent).items()}
    assert batched_profiles == {k: v for k, v in single_profiles.items() if k in batched_profiles}
    assert len(batched_profiles) > 10
    # state written the same way: computed events and delivered revisions per order
    for number in numbers:
        assert set(batched.state.computed(number)) == set(single.state.computed(number))
        assert batched.state.delivered_revision(number) == single.state.delivered_revision(number)


class Interrupted(Exception):
    pass


class FailingClient:
    """Blue Cherry that breaks down after serving `pages` pages of orders."""

    def __init__(self, inner: BlueCherryClient, pages: int) -> None:
        self.inner = inner
        self.pages = pages

    def iter_pages(self, resource: Any, since: str | None, **options: Any) -> Iterator[list[dict[str, Any]]]:
        for page in self.inner.iter_pages(resource, since, **options):
            if resource.path == "order":
                if self.pages == 0:
                    raise Interrupted("Blue Cherry went away")
                self.pages -= 1
            yield page


def test_an_interrupted_backfill_resumes_from_its_checkpoint_and_sends_each_event_once(
        erp: ServerThread, redis_client: redis.Redis, mapping: Mapping) -> None:
    bc = BlueCherryClient(erp.url, KEY, timeout=30, mapping=mapping)
    whole, whole_sent = context(redis_client, "whole", mapping)
    run_backfill(whole, bc, None)

    ctx, sent = context(redis_client, "resumed", mapping)
    with pytest.raises(Interrupted):
        run_backfill(ctx, FailingClient(bc, pages=2), None)  # type: ignore[arg-type]
    assert redis_client.get(checkpoint_key(ctx, "order")), "the order checkpoint was kept"
    before = len(events(sent))
    run_backfill(ctx, bc, None)
    bc.close()

    assert before < len(events(sent)), "the second run carried on"
    assert events(sent) == events(whole_sent), "together: every event once, as an uninterrupted run"
    assert not redis_client.get(checkpoint_key(ctx, "order")), "a finished run forgets its checkpoints"
