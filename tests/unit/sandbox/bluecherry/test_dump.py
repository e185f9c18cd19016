"""GET /_sandbox/dump: the stored truth of every resource, as the API serves it with _include=all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.bluecherry.dump import main as dump_main
from sandbox.bluecherry.sandbox import RESOURCES
from tests.unit.sandbox.bluecherry.conftest import BlueCherry


def by_pkey(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {record["pkey"]: record for record in records}


def some_business(bc: BlueCherry, upc: str) -> None:
    """Ops that write customers, orders, picks, invoices, credit memos, inventory and styles."""
    customer = bc.touched(
        {"op": "create_customer", "email": "dump@example.com", "email_optin": "Y"}, resource="customer"
    )
    order = bc.touched(
        {"op": "place_order", "customer": customer[0]["customer"], "lines": [{"upc": upc, "qty": 2}], "confirm": True},
        resource="order",
    )[0]
    bc.apply({"op": "ship", "ord_num": order["ord_num"], "carrier": "UPS", "tracking_num": "1ZDUMP"})
    invoice = bc.get("invoice", **{"$filter": f"ord_num eq '{order['ord_num']}'"})[0]
    bc.apply({"op": "return", "inv_num": invoice["inv_num"], "lines": [{"line_seq": 1, "qty": 1}], "restock": True})
    bc.apply({"op": "consent", "customer": customer[0]["customer"], "channel": "email", "optin": False})


def test_dump_equals_what_paging_the_api_with_include_all_returns(bc: BlueCherry, upc: str) -> None:
    some_business(bc, upc)
    dump = bc.control.get("/dump").json()
    assert dump["dialect"] == "default" and dump["timezone"] == "America/New_York"
    assert dump["dumped_at"] == bc.control.get("/clock").json()  # frozen clock: the same instant
    assert list(dump["resources"]) == list(RESOURCES)
    for resource in RESOURCES:
        served = by_pkey(bc.all(resource, _include="all"))
        dumped = by_pkey(dump["resources"][resource])
        assert dumped == served, resource
        assert len(dumped) == bc.sandbox.store.count(resource) > 0, resource
    # children are inline, and the ops' records are there in their final state
    customer = next(c for c in dump["resources"]["customer"] if c["email"] == "dump@example.com")
    assert customer["email_optin"] == "N" and customer["custaddress"]["rows"]
    assert any(memo["memodetail"]["rows"] for memo in dump["resources"]["creditmemo"])


def test_dump_is_never_malformed(bc: BlueCherry) -> None:
    before = bc.control.get("/dump").json()
    bc.control.post("/faults", json={"malformed_rate": 1.0})
    served = bc.all("customer", _include="all")
    assert by_pkey(served) != by_pkey(before["resources"]["customer"])  # the API does serve damaged records
    after = bc.control.get("/dump").json()
    assert after["resources"] == before["resources"]
    assert bc.control.get("/stats").json()["requests"].get("customer") == 1  # a dump is not an API read


def test_dump_module_writes_the_json(bc: BlueCherry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tenant.json"
    assert dump_main([bc.server.url, "--out", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == bc.control.get("/dump").json()
    customers = bc.sandbox.store.count("customer")
    assert f"wrote {out}: {customers} customer, " in capsys.readouterr().err
    assert dump_main([bc.server.url]) == 0
    assert json.loads(capsys.readouterr().out) == written
    assert [p.name for p in tmp_path.iterdir()] == ["tenant.json"]  # no temporary file left behind


def test_dump_module_reports_an_unreachable_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    assert dump_main(["http://127.0.0.1:9", "--timeout", "2"]) == 1
    assert capsys.readouterr().err.startswith("bluecherry dump: ")
