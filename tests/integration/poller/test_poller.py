"""The poller against the real Blue Cherry sandbox and a private Redis: nothing missed, nothing doubled."""

from __future__ import annotations

import collections

import pytest
import redis

from config.mapping import Mapping
from state.exceptions import ExceptionRegister
from tests.integration.poller.conftest import Sandbox
from tests.support.poller import PREFIX, emitted, make_poller

pytestmark = pytest.mark.integration


def counts(client: redis.Redis) -> collections.Counter[str]:
    return collections.Counter(e["key"] for e in emitted(client))


def test_burst_in_one_second_across_pages_and_polls_arrives_exactly_once(
    sandbox: Sandbox, redis_url: str, redis_client: redis.Redis
) -> None:
    poller = make_poller(redis_url, sandbox.url)
    sandbox.apply({"op": "burst", "resource": "customer", "count": 500})
    first = poller.run_once()["customer"]
    assert first.stable and first.pages >= 3
    # the same frozen second again: a `gt` watermark would never see these
    sandbox.apply({"op": "burst", "resource": "customer", "count": 500})
    poller.run_once()
    poller.run_once()
    seen = counts(redis_client)
    assert set(seen) == sandbox.customer_codes() and set(seen.values()) == {1}
    assert sum(1 for code in seen if code.startswith("C")) == 1000


def test_records_moving_between_pages_while_paging_arrive_exactly_once(
    sandbox: Sandbox, redis_url: str, redis_client: redis.Redis
) -> None:
    sandbox.apply({"op": "burst", "resource": "customer", "count": 900})
    sandbox.clock(now="2026-03-02 10:05:00", freeze=False)  # touches get later stamps: they move to the end
    sandbox.faults(modify_while_paging=7)
    poller = make_poller(redis_url, sandbox.url)
    result = poller.run_once()["customer"]
    poller.run_once()
    assert result.passes >= 2  # the read was repeated because records moved
    injected = sandbox.faults()["injected"]
    sandbox.faults(modify_while_paging=0)  # the oracle's own read must not move records
    seen = counts(redis_client)
    assert set(seen) == sandbox.customer_codes() and set(seen.values()) == {1}
    assert injected.get("modify_while_paging", 0) > 0


def test_malformed_customers_become_exceptions_and_the_rest_of_the_page_arrives(
    sandbox: Sandbox, redis_url: str, redis_client: redis.Redis
) -> None:
    sandbox.apply({"op": "burst", "resource": "customer", "count": 400})
    everyone = sandbox.customer_codes()  # before the faults: the oracle reads clean records
    sandbox.faults(malformed_rate=0.1)
    poller = make_poller(redis_url, sandbox.url)
    result = poller.run_once()["customer"]
    seen = counts(redis_client)
    register = ExceptionRegister(redis_client, PREFIX, Mapping().owners)
    bad = {e.record_key.split(":", 1)[1]: e for e in register.list(type="invalid_record")}
    assert result.invalid >= len(bad) > 10 and len(seen) > 300
    assert not set(seen) & set(bad) and set(seen) | set(bad) == everyone
    assert all(e.owner == "operations" and e.reason for e in bad.values())
    reasons = " ".join(e.reason for e in bad.values())
    # a bad phone no longer makes a record invalid: the customer goes without it (issue 12)
    for expected in ("email", "date", "characters", "replacement"):
        assert expected in reasons


def test_a_run_across_the_fall_back_change_misses_and_doubles_nothing(
    sandbox: Sandbox, redis_url: str, redis_client: redis.Redis
) -> None:
    poller = make_poller(redis_url, sandbox.url)
    wanted = []
    # 01:40 EDT, 01:58 EDT, then the wall clock repeats: 01:05 EST, 01:30 EST, 01:59 EST, 02:10 EST
    for now, fold in [("2026-11-01 01:40:00", 0), ("2026-11-01 01:58:00", 0), ("2026-11-01 01:05:00", 1),
                      ("2026-11-01 01:30:00", 1), ("2026-11-01 01:59:00", 1), ("2026-11-01 02:10:00", 0)]:
        sandbox.clock(now=now, fold=fold, freeze=True)
        code = f"DST{len(wanted)}"
        sandbox.apply({"op": "create_customer", "customer": code})
        wanted.append(code)
        poller.run_once()
        poller.run_once()
    seen = counts(redis_client)
    assert sorted(k for k in seen if k.startswith("DST")) == sorted(wanted) and set(seen.values()) == {1}


def test_unchanged_rereads_emit_nothing_and_edits_emit_one_change(
    sandbox: Sandbox, redis_url: str, redis_client: redis.Redis
) -> None:
    sandbox.apply({"op": "create_customer", "customer": "E1"})
    poller = make_poller(redis_url, sandbox.url)
    poller.run_once()
    sandbox.clock(now="2026-03-02 10:00:30")
    sandbox.apply({"op": "touch", "resource": "customer", "count": 1})  # last_mod only
    poller.run_once()
    sandbox.apply({"op": "edit_customer", "customer": "E1", "fields": {"first_name": "Zed"}})
    poller.run_once()
    events = [e for e in emitted(redis_client) if e["key"] == "E1"]
    assert [(e["key"], e["kind"]) for e in events] == [("E1", "created"), ("E1", "fields_changed")]
    assert events[1]["fields"] == ["first_name"] and events[1]["lane"] == "fast"
