"""The poller on a tenant of another dialect (tests/support/dialect.py), over HTTP against a scripted bcapi and on
real Redis: last_mod written MM/DD/YYYY is read by the resource's date formats (the records are valid and the
watermark moves to their newest stamp), and a resource that answers 404 while it has no records is an empty
cycle, not a read error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from config.mapping import Mapping
from connectors.bluecherry.client import BlueCherryClient
from sandbox.server import ServerThread
from state.exceptions import ExceptionRegister
from tests.integration.poller.test_changes import customer
from tests.support.dialect import dialect_mapping, in_dialect
from tests.support.poller import KEY, PREFIX, ListEmit, emitted, settings_for
from tests.unit.connectors.bluecherry.conftest import Script
from workers.poller import Poller


@pytest.fixture
def scripted() -> Iterator[tuple[Script, ServerThread]]:
    script = Script()
    with ServerThread(script.app()) as server:
        yield script, server


def poller(redis_url: str, url: str, mapping: Mapping, *resources: str) -> Poller:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    bc = BlueCherryClient(url, KEY, timeout=10, max_attempts=2, backoff_base_seconds=0.01,
                          backoff_max_seconds=0.05, mapping=mapping)
    return Poller(bc, client, ListEmit(client), ExceptionRegister(client, PREFIX, mapping.owners), mapping=mapping,
                  settings=settings_for(redis_url), resources=resources)


def test_a_dialects_stamps_and_empty_resources_are_read(
        redis_url: str, scripted: tuple[Script, ServerThread], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    script, server = scripted
    mapping = dialect_mapping(tmp_path)
    records = [in_dialect(customer(pkey=n, customer=f"C{n}", email=f"c{n}@example.com",
                                   last_mod=f"2026-03-02 10:0{n}:00"), "customer", mapping) for n in (1, 2)]
    assert records[1]["CHGTS"] == "03/02/2026 10:02:00"
    script.responses = [(200, {"data": {"header": records}}, {}), (404, {"error": "no records"}, {})]
    p = poller(redis_url, server.url, mapping, "customer", "creditmemo")

    with caplog.at_level(logging.ERROR, logger="bcsync.poller"):
        customers = p.poll_resource("customer")
        memos = p._poll_safely("creditmemo")
    assert (customers.records, customers.emitted, customers.invalid) == (2, 2, 0)
    assert customers.watermark == datetime(2026, 3, 2, 15, 2, tzinfo=UTC)  # 10:02 EST
    assert [e["key"] for e in emitted(redis.Redis.from_url(redis_url))] == ["1", "2"]  # by the dialect's RRN
    assert p.exceptions.list(status=None) == []  # type: ignore[attr-defined]
    assert not memos.aborted and (memos.pages, memos.records) == (1, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # the filter the poller sent for the memos: the dialect's last_mod field, bcapi's stamp form
    assert "CHGTS ge '" in script.requests[1].query_params["$filter"]
