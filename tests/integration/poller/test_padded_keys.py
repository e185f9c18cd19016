"""An invalid record's exception names the customer as every other exception does: an IBM i tenant's padded,
zero-filled code (`'  00C1 '`, normalised by the mapping to `C1`) and the default tenant's `C1` give one record
key, `customer:C1` - not one key per way the ERP happens to write it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.mapping import Mapping
from sandbox.server import ServerThread
from tests.integration.poller.test_changes import customer
from tests.integration.poller.test_dialect import poller
from tests.support.dialect import dialect_mapping, in_dialect
from tests.unit.connectors.bluecherry.conftest import Script

pytestmark = pytest.mark.integration
BAD = customer(pkey=1, customer="C1", email="not an email")  # invalid: an exception, no change event


@pytest.fixture
def scripted() -> Iterator[tuple[Script, ServerThread]]:
    script = Script()
    with ServerThread(script.app()) as server:
        yield script, server


def _invalid_keys(redis_url: str, url: str, script: Script, record: dict, mapping: Mapping) -> list[str]:
    redis.Redis.from_url(redis_url).flushdb()
    script.responses = [(200, {"data": {"header": [record]}}, {})]
    p = poller(redis_url, url, mapping, "customer")
    assert p.poll_resource("customer").invalid == 1
    return [e.record_key for e in p.exceptions.list(type="invalid_record")]  # type: ignore[attr-defined]


def test_a_padded_and_an_unpadded_code_make_one_record_key(
        redis_url: str, scripted: tuple[Script, ServerThread], tmp_path: Path) -> None:
    script, server = scripted
    ibmi = dialect_mapping(tmp_path)
    padded = in_dialect(BAD, "customer", ibmi)
    assert padded[ibmi.fields.customer.code] == "  00C1 "  # as the IBM i tenant serves it
    assert _invalid_keys(redis_url, server.url, script, padded, ibmi) == ["customer:C1"]
    assert _invalid_keys(redis_url, server.url, script, BAD, Mapping()) == ["customer:C1"]
