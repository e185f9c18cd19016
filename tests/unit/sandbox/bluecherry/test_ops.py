"""POST /_sandbox/apply: every op, the records it answers with, and stock that moves with the documents."""

from __future__ import annotations

from typing import Any

from tests.unit.sandbox.bluecherry.conftest import BlueCherry


def place(bc: BlueCherry, upc: str, qty: int = 3, **extra: Any) -> dict[str, Any]:
    touched = bc.touched({"op": "place_order", "lines": [{"upc": upc, "qty": qty}], **extra}, resource="order")
    return touched[0]


def buckets(bc: BlueCherry, upc: str) -> tuple[int, int, int, int]:
    inv = bc.inventory(upc)
    assert inv["qty_avail"] == inv["qty_oh"] - inv["qty_pick"]
    return inv["qty_oh"], inv["qty_pick"], inv["qty_open"], inv["qty_avail"]


def test_stock_follows_confirm_pick_ship_and_restocked_return(bc: BlueCherry, upc: str) -> None:
    start = buckets(bc, upc)
    order = place(bc, upc, 3, customer="C0000002")
    assert order["ord_status"] == "E" and order["confirm_date"] == ""
    assert buckets(bc, upc) == start  # entered orders reserve nothing
    touched = bc.apply({"op": "confirm", "ord_num": order["ord_num"]})
    confirmed = [t["record"] for t in touched if t["resource"] == "order"][0]
    assert confirmed["ord_status"] == "O" and confirmed["confirm_date"] == "2026-11-20 12:00:00"
    inventory = [t["record"] for t in touched if t["resource"] == "inventory"][0]
    assert inventory["qty_open"] == start[2] + 3 and inventory["last_mod"] == "2026-11-20 12:00:00"
    bc.apply({"op": "pick", "ord_num": order["ord_num"], "lines": [{"line_seq": 1, "qty": 2}]})
    oh, pick, open_, _ = buckets(bc, upc)
    assert (oh, pick, open_) == (start[0], start[1] + 2, start[2] + 1)
    picks = bc.get("pick", _include="all", **{"$filter": f"ord_num eq '{order['ord_num']}'"})
    assert picks[0]["pick_status"] == "O" and picks[0]["pickdetail"]["rows"][0]["total_qty"] == 2
    assert picks[0]["pickdetail"]["rows"][0]["bk_qty"] == 1
    bc.apply({"op": "ship", "pick_num": picks[0]["pick_num"], "carrier": "UPS", "tracking_num": "1ZTEST"})
    assert buckets(bc, upc)[:3] == (start[0] - 2, start[1], start[2] + 1)
    shipped = bc.get("pick", pkey=picks[0]["pkey"])[0]
    assert (shipped["pick_status"], shipped["shipper"], shipped["tracking_num"]) == ("S", "UPS", "1ZTEST")
    assert shipped["ship_date"] == "2026-11-20 12:00:00" and shipped["inv_num"]
    assert bc.get("order", pkey=order["pkey"])[0]["ord_status"] == "P"
    bc.apply({"op": "ship", "ord_num": order["ord_num"]})  # the rest
    closed = bc.get("order", pkey=order["pkey"])[0]
    assert closed["ord_status"] == "C"
    assert buckets(bc, upc)[:3] == (start[0] - 3, start[1], start[2])
    invoices = bc.get("invoice", _include="all", **{"$filter": f"ord_num eq '{order['ord_num']}'"})
    assert sorted(r["invoicedetail"]["rows"][0]["inv_qty"] for r in invoices) == [1, 2]
    bc.apply({"op": "return", "inv_num": invoices[0]["inv_num"], "restock": True, "reason_code": "FIT"})
    returned = invoices[0]["invoicedetail"]["rows"][0]["inv_qty"]
    assert buckets(bc, upc)[0] == start[0] - 3 + returned
    bc.apply({"op": "return", "inv_num": invoices[1]["inv_num"], "restock": False, "reason_code": "DEF"})
    assert buckets(bc, upc)[0] == start[0] - 3 + returned  # no restock, no stock
    memos = bc.get("creditmemo", _include="all", **{"$filter": f"ord_num eq '{order['ord_num']}'"})
    assert sorted(m["restock"] for m in memos) == ["N", "Y"]
    assert {m["reason_code"] for m in memos} == {"FIT", "DEF"}
    assert all(m["inv_num"] in {i["inv_num"] for i in invoices} and m["memo_type"] == "R" for m in memos)


def test_cancel_and_cancel_line_release_reservations(bc: BlueCherry, upc: str) -> None:
    start = buckets(bc, upc)
    order = place(bc, upc, 4, customer="C0000003", confirm=True)
    assert buckets(bc, upc)[2] == start[2] + 4
    line = bc.touched({"op": "cancel_line", "ord_num": order["ord_num"], "line_seq": 1, "qty": 1}, resource="order")
    assert line[0]["orderdetail"]["rows"][0]["cancel_qty"] == 1
    assert buckets(bc, upc)[2] == start[2] + 3
    cancelled = bc.touched({"op": "cancel", "ord_num": order["ord_num"]}, resource="order")[0]
    assert cancelled["ord_status"] == "X"
    assert buckets(bc, upc)[2] == start[2]


def test_hold_keeps_the_reservation_and_release_restores_the_status(bc: BlueCherry, upc: str) -> None:
    order = place(bc, upc, 2, customer="C0000004", confirm=True)
    open_before = buckets(bc, upc)[2]
    held = bc.touched({"op": "hold", "ord_num": order["ord_num"], "reason": "FRAUD"}, resource="order")[0]
    assert (held["ord_status"], held["hold_reason"]) == ("H", "FRAUD")
    assert buckets(bc, upc)[2] == open_before
    refused = bc.control.post("/apply", json=[{"op": "ship", "ord_num": order["ord_num"]}])
    assert refused.status_code == 400 and "only confirmed orders" in refused.text
    assert bc.touched({"op": "release", "ord_num": order["ord_num"]}, resource="order")[0]["ord_status"] == "O"


def test_amend_changes_quantities_lines_address_and_reservation(bc: BlueCherry, upc: str) -> None:
    other = next(u for u in bc.sandbox.store.sku_upcs() if u != upc)
    order = place(bc, upc, 2, customer="C0000005", confirm=True)
    open_before = buckets(bc, upc)[2]
    amended = bc.touched(
        {
            "op": "amend",
            "ord_num": order["ord_num"],
            "lines": [{"line_seq": 1, "qty": 5}],
            "add_lines": [{"upc": other, "qty": 1}],
            "ship_to": {"city": "Boston"},
        },
        resource="order",
    )[0]
    assert [line["ord_qty"] for line in amended["orderdetail"]["rows"]] == [5, 1]
    assert [a["city"] for a in amended["orderaddress"]["rows"] if a["addr_type"] == "ST"] == ["Boston"]
    assert buckets(bc, upc)[2] == open_before + 3


def test_web_guest_order_carries_the_shopper_email_on_the_bill_to_row(bc: BlueCherry, upc: str) -> None:
    order = place(bc, upc, 1, customer="WEBGUEST", email="shopper@example.org", web_ref="SHOP#1001")
    full = bc.get("order", pkey=order["pkey"], _include="all")[0]
    assert (full["customer"], full["ord_type"], full["sales_channel"], full["web_ref"]) == (
        "WEBGUEST",
        "WEB",
        "WEB",
        "SHOP#1001",
    )
    bill_to = [a for a in full["orderaddress"]["rows"] if a["addr_type"] == "BT"]
    assert bill_to[0]["email"] == "shopper@example.org"
    wholesale = place(bc, upc, 12, customer="W00001", ord_type="WHL")
    assert (wholesale["ord_type"], wholesale["sales_channel"], wholesale["location"]) == ("WHL", "EDI", "WH2")


def test_customer_create_edit_and_consent_with_time_and_source(bc: BlueCherry) -> None:
    created = bc.touched(
        {"op": "create_customer", "email": "new@example.com", "first_name": "Ada"}, resource="customer"
    )[0]
    assert created["email"] == "new@example.com" and created["email_optin"] == "N" and created["status"] == "A"
    code = created["customer"]
    edited = bc.touched(
        {
            "op": "edit_customer",
            "customer": code,
            "fields": {"phone": "(617) 555-0101"},
            "bill_to": {"city": "Boston"},
        },
        resource="customer",
    )[0]
    assert edited["phone"] == "(617) 555-0101"
    bc.control.post("/clock", json={"advance": 90})
    sub = bc.touched(
        {"op": "consent", "customer": code, "channel": "sms", "optin": True, "source": "POS"},
        resource="customer",
    )[0]
    assert (sub["sms_optin"], sub["sms_optin_date"], sub["sms_optin_source"]) == (
        "Y",
        "2026-11-20 12:01:30",
        "POS",
    )
    unsub = bc.touched(
        {
            "op": "consent",
            "customer": code,
            "channel": "email",
            "optin": False,
            "source": "preference center",
        },
        resource="customer",
    )[0]
    assert (unsub["email_optin"], unsub["email_optin_source"]) == ("N", "preference center")
    assert unsub["pkey"] == created["pkey"] and unsub["last_mod"] == "2026-11-20 12:01:30"


def test_credit_memo_adjust_stock_and_edit_style(bc: BlueCherry, upc: str) -> None:
    invoice = bc.get("invoice", _pgsize=1)[0]
    memo = bc.touched(
        {"op": "credit_memo", "inv_num": invoice["inv_num"], "amount": 5.0, "reason_code": "PRC"},
        resource="creditmemo",
    )[0]
    assert (memo["memo_type"], memo["restock"], memo["merch_amt"], memo["ord_num"]) == (
        "C",
        "N",
        5.0,
        invoice["ord_num"],
    )
    adjusted = bc.touched({"op": "adjust_stock", "upc": upc, "location": "WH1", "delta": -130}, resource="inventory")
    assert adjusted[0]["qty_oh"] == 100 - 130  # negative on hand is legal, not malformed
    style_code = bc.sandbox.store.get_sku(upc)["style"]
    style = bc.touched(
        {
            "op": "edit_style",
            "style": style_code,
            "fields": {"style_name": "Renamed Tee"},
            "skus": [{"upc": upc, "status": "D"}],
        },
        resource="style",
    )[0]
    assert style["style_name"] == "Renamed Tee"
    assert [s["status"] for s in style["stylecolorsizes"]["rows-i"] if s["upc"] == upc] == ["D"]
    assert bc.sandbox.store.get_sku(upc)["status"] == "D"


def test_void_pick_returns_units_to_open(bc: BlueCherry, upc: str) -> None:
    order = place(bc, upc, 2, customer="C0000006", confirm=True)
    start = buckets(bc, upc)
    pick = bc.touched({"op": "pick", "ord_num": order["ord_num"]}, resource="pick")[0]
    assert buckets(bc, upc)[1:3] == (start[1] + 2, start[2] - 2)
    bc.apply({"op": "void_pick", "pick_num": pick["pick_num"]})
    assert buckets(bc, upc) == start


def test_a_bad_op_is_a_400_naming_the_op_and_nothing_is_applied(bc: BlueCherry, upc: str) -> None:
    before = bc.sandbox.store.count("order")
    response = bc.control.post(
        "/apply",
        json=[
            {"op": "place_order", "customer": "C0000001", "lines": [{"upc": upc, "qty": 1}]},
            {"op": "confirm", "ord_num": "nope"},
        ],
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["errorMessage"] == "op #1 (confirm): order 'nope' not found"
    assert bc.sandbox.store.count("order") == before
    for bad in ([{"op": "fly"}], {"ops": "x"}, [{"op": "place_order", "lines": [{"upc": upc, "qty": -1}]}]):
        assert bc.control.post("/apply", json=bad).status_code == 400
    assert bc.control.post("/apply", content=b"{not json").status_code == 400
