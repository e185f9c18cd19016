"""The oracle reads a tenant in any dialect (docs/rules.md, "Inputs" and "Absent fields"): the same seeded tenant
dumped by the Blue Cherry sandbox the default way and the `ibmi` way gives the same expected Klaviyo state,
with each dialect's rules read from its own mapping file."""

from __future__ import annotations

from typing import Any

from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.bluecherry.sandbox import BlueCherrySandbox
from testing.oracle import DIALECTS, ExpectedState, TenantRules, expected_state
from tests.support.paths import REPO_ROOT

IBMI_MAPPING = REPO_ROOT / "config" / "examples" / "ibmi.toml"


def unpicked(sandbox: BlueCherrySandbox, skip: str = "") -> str:
    """A confirmed order with every unit still to pick."""
    return next(row.nkey for row in sandbox.store.iterate("order") if row.body["ord_status"] == "O"
                and row.nkey != skip and not any(line["pick_qty"] for line in row.body["orderdetail"]["rows"]))


def tenant(dialect: str) -> dict[str, Any]:
    """A seeded tenant with guests, storefront orders, every order fate and a minute of live trading (returns,
    cancels, consent changes), plus a backdated credit, a ticket shipped but not invoiced and a voided one."""
    sandbox = BlueCherrySandbox(BlueCherrySandboxConfig(
        dialect=dialect, seed=11, customers=40, styles=5, orders=160, history_days=60, storefront_every=5,
        start_time="2026-11-20 12:00:00", frozen=True))
    sandbox.live.tick(60.0)
    shipped = unpicked(sandbox)
    invoice = next(row.nkey for row in sandbox.store.iterate("invoice"))
    sandbox.apply([{"op": "credit_memo", "inv_num": invoice, "amount": 3.0, "memo_date": "2026-11-01 09:00:00"},
                   {"op": "ship", "ord_num": shipped, "lines": [{"line_seq": 1, "qty": 1}], "invoice": False}])
    voided = unpicked(sandbox, shipped)
    sandbox.apply([{"op": "pick", "ord_num": voided}])
    pick = next(row.nkey for row in sandbox.store.iterate("pick")
                if row.body["ord_num"] == voided and row.body["pick_status"] == "O")
    sandbox.apply([{"op": "void_pick", "pick_num": pick}])
    return sandbox.dump()


def facts(state: ExpectedState) -> dict[str, Any]:
    """What an expectation says, less what the dialects legitimately write differently: event times (a ship date
    without its time, a memo dated by its last_mod) and so the order of an order's memos."""
    return {
        "profiles": state.profiles,
        "events": {key: (e.owner, e.order, e.value, e.check) for key, e in state.events.items()},
        "placed": {key: e.time for key, e in state.events.items() if key[0] == state.rules.placed_order},
        "tolerated": (state.tolerated_events, state.tolerated_orders, state.waiting_orders,
                      state.tolerated_identities, state.deleted_identities),
        "orders": {n: (o.order_id, o.owner, o.value, o.cancelled, o.storefront,
                       sorted((m.number, m.value) for m in o.memos)) for n, o in state.orders.items()},
        "variants": state.variants,
        "skipped": sorted((s.record, s.reason) for s in state.skipped),
        "waiting": state.waiting,
    }


def test_both_dialects_of_one_tenant_give_the_same_expected_state() -> None:
    storefront = ("WEB", "POS", "SHOP")
    default = expected_state(tenant("default"), TenantRules(sales_channels=storefront))
    ibmi_dump = tenant("ibmi")
    assert ibmi_dump["dialect"] == "ibmi" and DIALECTS["ibmi"].customer in ibmi_dump["resources"]
    rules = TenantRules.from_toml(IBMI_MAPPING)
    assert rules.confirmed == ("20", "30")  # its own status codes, from its own mapping file
    ibmi = expected_state(ibmi_dump, TenantRules(**{**rules.__dict__, "sales_channels": storefront}))
    mine, theirs = facts(default), facts(ibmi)
    assert len(default.profiles) > 30 and len(default.events) > 150 and default.variants
    assert any(e.metric == default.rules.refunded_order for e in default.events.values())
    assert any(e.metric == default.rules.fulfilled_order for e in default.events.values())
    assert any(owner.startswith("guest:") for owner in default.profiles)  # shoppers' emails from flat addresses
    for part, value in mine.items():
        assert theirs[part] == value, part
