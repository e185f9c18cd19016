"""`bcsync audit order` reads as a finance document, on real Redis with the order flow's own state: the order's
documents with numbers, dates and amounts, each event sent to Klaviyo with its document, date, value and when it
was accepted - and no hash anywhere unless `--verbose` asks for the technical trail."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
import redis
import typer
from typer.testing import CliRunner

from config.mapping import Mapping
from config.settings import reload_settings
from flows.orders import OrderContext, sync_orders
from state.exceptions import ExceptionRegister
from state.factory import reset_stores
from state.ledger import Ledger
from state.orders import RedisOrderState
from sync.ledger import LedgerEntry
from sync.operations import Operation
from tests.support.orders import ErpOrder
from workers.audit import app as audit_app

PREFIX = "audittest"
HASH = re.compile(r"\b[0-9a-f]{8,}\b")  # a revision fingerprint, a digest: what finance cannot read


@pytest.fixture
def audit(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("BCSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("BCSYNC_KEY_PREFIX", PREFIX)
    monkeypatch.setenv("COLUMNS", "80")
    reload_settings()
    reset_stores()
    yield audit_app
    monkeypatch.undo()
    reload_settings()
    reset_stores()


def _order_through_its_life(client: redis.Redis) -> tuple[str, str]:
    """SO1001 confirmed, repriced (an Updated Order: its unique_id holds the revision's fingerprint), shipped,
    invoiced and partly refunded; every event but the refund delivered. Returns the fingerprint and the refund's
    key."""
    mapping = Mapping()
    sent: list[list[Operation]] = []
    ctx = OrderContext(client, PREFIX, mapping, RedisOrderState(client, PREFIX, mapping), Ledger(client, PREFIX),
                       ExceptionRegister(client, PREFIX, mapping.owners), sent.append)
    erp = ErpOrder(mapping, number="SO1001", customer="C1001")

    def sync(deliver: bool = True) -> None:
        ctx.state.put_documents("order", [erp.raw_order()])
        for resource, records in (("pick", erp.raw_picks()), ("invoice", erp.raw_invoices()),
                                  ("creditmemo", erp.raw_memos())):
            if records:
                ctx.state.put_documents(resource, records)
        sync_orders(["SO1001"], ctx)
        if deliver:
            ctx.ledger.record([LedgerEntry(key=op.key, delivered_at=time.time(), status=202, endpoint="events",
                                           record=op.record, version=op.version) for op in sent[-1]])

    erp.confirm()
    sync()
    erp.set_price(1, "55.00")
    sync()
    erp.ship("P1")
    erp.invoice("INV1")
    sync()
    erp.credit("M1", "55.00", {1: 1})
    sync(deliver=False)
    revision = ctx.state.delivered_revision("SO1001") or ctx.state.pending_revision("SO1001")
    assert revision is not None
    fingerprint = getattr(revision, "fingerprint", None) or revision.revision.fingerprint  # type: ignore[union-attr]
    refund = next(op.key for op in sent[-1] if op.payload["metric"] == "Refunded Order")
    return fingerprint, refund


def test_the_audit_reads_as_a_finance_document(audit: typer.Typer, redis_client: redis.Redis) -> None:
    fingerprint, _ = _order_through_its_life(redis_client)
    out = CliRunner().invoke(audit, ["order", "SO1001"], terminal_width=80)
    assert out.exit_code == 0, out.output
    text = out.output
    assert not HASH.search(text), HASH.findall(text)
    assert fingerprint not in text
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    # the documents: numbers, dates, amounts (2 x 55.00 + 30.00 + tax 8.00 + freight 5.00 = 153.00)
    for document in ("order", "SO1001", "pick ticket", "P1", "invoice", "INV1", "credit memo", "M1"):
        assert document in text, document
    assert "153.00" in text and "-55.00" in text and "2026-03-02" in text and "C1001" in text
    # what was sent, by document and value, and what was not
    sent = r"\d{4}-\d\d-\d\d \d\d:\d\d"
    # Placed Order as it was sent, before the repricing: 2 x 50.00 + 30.00 + 8.00 + 5.00; then the update to 153.00
    assert re.search(rf"Placed Order\s+2026-03-02 14:30\s+143\.00\s+{sent}\s+order SO1001 *\n\s+accepted \(202\)", text)
    assert re.search(rf"Updated Order\s+2026-03-02 15:00\s+153\.00\s+{sent}\s+order SO1001 *\n", text)
    assert re.search(r"Ordered Product\s+2026-03-02 14:30\s+100\.00\s+.*order SO1001 line 1 *\n", text)
    assert re.search(r"Fulfilled Order\s+2026-03-02 15:30\s+140\.00\s+.*pick ticket P1 *\n", text)
    assert re.search(r"Refunded Order\s+2026-03-02 16:30\s+55\.00\s+-\s+credit memo M1 *\n\s+not sent yet", text)
    assert "Order value Klaviyo last received: 153.00" in text


def test_verbose_adds_the_technical_trail(audit: typer.Typer, redis_client: redis.Redis) -> None:
    fingerprint, refund = _order_through_its_life(redis_client)
    out = CliRunner().invoke(audit, ["order", "SO1001", "--verbose"], terminal_width=120)
    assert out.exit_code == 0, out.output
    assert fingerprint in out.output.replace("\n", "")  # the Updated Order's unique_id and the revision
    assert "ERP versions stored" in out.output and "events" in out.output


def test_json_keeps_everything(audit: typer.Typer, redis_client: redis.Redis) -> None:
    _order_through_its_life(redis_client)
    out = CliRunner().invoke(audit, ["order", "SO1001", "--json"])
    report = json.loads(out.output)
    kinds = [row["kind"] for row in report["documents"]]
    assert kinds == ["order", "pick", "invoice", "creditmemo"]
    placed = next(c for c in report["computed"].values() if c["metric"] == "Placed Order")
    assert placed["value"] == 143.0 and placed["time"].startswith("2026-03-02") and placed["currency"] == "USD"
