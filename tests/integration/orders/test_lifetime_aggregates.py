"""Lifetime aggregates never decay (issue 14, item 1): a customer's orders span more than a year, the old orders'
documents are released (their grace period passed: the release sweep run with the clock a year on), and a new
order's aggregates still count every order exactly, from the orders' durable facts. Real workers at concurrency 2
per lane, both sandboxes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from flows.order_release import release_due
from flows.orders import OrderContext
from state.exceptions import ExceptionRegister
from state.ledger import Ledger
from state.order_facts import OrderFactsStore
from state.orders import RedisOrderState
from tests.integration.orders.conftest import MAPPING, OrderFleet, running_fleet
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration

MORE_THAN_A_YEAR = 401 * 86400


@pytest.fixture(scope="module")
def fleet(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrderFleet]:
    with running_fleet(redis_server, tmp_path_factory.mktemp("lifetime"), MAPPING) as f:
        yield f


def placed(f: OrderFleet, order: str) -> dict[str, object]:
    (event,) = f.events(order)["Placed Order"]
    return event


def instant(text: object) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def test_aggregates_count_every_order_after_the_old_orders_documents_expired(fleet: OrderFleet) -> None:
    f = fleet
    customer = f.new_customer()
    a, b = f.upcs[0], f.upcs[1]
    first = f.new_order(customer=customer, confirm=True, lines=[{"upc": a, "qty": 2, "price": 40}])
    shipped = f.apply({"op": "ship", "ord_num": first})  # shipped and invoiced in full: closed
    invoice = next(t["record"]["inv_num"] for t in shipped if t["resource"] == "invoice")
    f.apply({"op": "credit_memo", "inv_num": invoice, "amount": 15.0})
    cancelled = f.new_order(customer=customer, confirm=True, lines=[{"upc": b, "qty": 1, "price": 25}])
    f.apply({"op": "cancel", "ord_num": cancelled})
    f.poll()
    old_value = float(placed(f, first)["value"])  # type: ignore[arg-type]
    props = f.profile(external_id=customer)["properties"]
    assert (props["erp_order_count"], props["erp_gross_revenue"], props["erp_refunds"]) == (1, old_value, 15.0)

    # more than a year later: the release sweep (beat's bcsync.orders.release) has taken the closed and the
    # cancelled order's documents from Redis
    state = RedisOrderState(f.redis, f.prefix, f.mapping, f.settings.order_document_grace_days)
    sweep = OrderContext(f.redis, f.prefix, f.mapping, state, Ledger(f.redis, f.prefix),
                         ExceptionRegister(f.redis, f.prefix, f.mapping.owners), lambda ops: None)
    assert sorted(release_due(sweep, now=time.time() + MORE_THAN_A_YEAR)) == sorted([first, cancelled])
    for order in (first, cancelled):
        assert not f.redis.exists(f"{f.prefix}:orders:doc:{order}")
    facts = OrderFactsStore(f.redis, f.prefix).of_profile(f"external_id:{customer}")
    assert [x.number for x in facts] == sorted([first, cancelled]), "the facts outlive the documents"
    assert f.redis.ttl(OrderFactsStore(f.redis, f.prefix).key(f"external_id:{customer}")) == -1
    httpx.post(f"{f.bc_url}/_sandbox/clock", json={"advance": MORE_THAN_A_YEAR}, timeout=10).raise_for_status()
    new = f.new_order(customer=customer, confirm=True, lines=[{"upc": b, "qty": 3, "price": 20}])
    f.poll()

    new_value = float(placed(f, new)["value"])  # type: ignore[arg-type]
    assert not f.redis.exists(f"{f.prefix}:orders:doc:{first}"), "the old order was not read again"
    props = f.profile(external_id=customer)["properties"]
    gross = round(old_value + new_value, 2)
    assert props["erp_order_count"] == 2, props
    assert props["erp_gross_revenue"] == gross
    assert props["erp_refunds"] == 15.0
    assert props["erp_net_lifetime_value"] == round(gross - 15.0, 2)
    assert instant(props["erp_first_order_date"]) == instant(placed(f, first)["time"])
    assert instant(props["erp_last_order_date"]) == instant(placed(f, new)["time"])
    assert (instant(props["erp_last_order_date"]) - instant(props["erp_first_order_date"])).days > 365
    assert f.dead_letters() == 0

