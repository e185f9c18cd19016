"""The bcapi conventions: key, paging, $filter, _include, pkey, envelopes, ordering, the field contract."""

from __future__ import annotations

import json

import pytest

from sandbox.bluecherry.api import records_as_stored
from sandbox.bluecherry.sandbox import RESOURCES
from tests.unit.sandbox.bluecherry.conftest import BlueCherry

CUSTOMER_FIELDS = {
    "customer",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "division",
    "cust_group",
    "cust_type",
    "created",
    "status",
    "email_optin",
    "email_optin_date",
    "email_optin_source",
    "sms_optin",
    "sms_optin_date",
    "sms_optin_source",
    "delete_flag",
    "custaddress",
}
ADDRESS_FIELDS = {
    "addr_type",
    "name",
    "addr1",
    "addr2",
    "city",
    "state",
    "zipcode",
    "country",
    "email",
    "phone",
}
LINE_FIELDS = {
    "line_seq",
    "style",
    "color_code",
    "lbl_code",
    "dimension",
    "size_desc",
    "upc",
    "price",
    "style_name",
}
ORDER_FIELDS = {
    "ord_num",
    "customer",
    "ord_type",
    "division",
    "sales_channel",
    "ord_status",
    "ord_date",
    "confirm_date",
    "curr_code",
    "disc_code",
    "disc_amt",
    "tax_amt",
    "frgt_amt",
    "season",
    "location",
    "web_ref",
    "orderaddress",
    "orderdetail",
}
PICK_FIELDS = {
    "pick_num",
    "ord_num",
    "pick_status",
    "ship_date",
    "shipper",
    "tracking_num",
    "inv_num",
    "pickdetail",
}
INVOICE_FIELDS = {
    "inv_num",
    "ord_num",
    "pick_num",
    "inv_date",
    "shipper",
    "tracking_num",
    "merch_amt",
    "disc_amt",
    "tax_amt",
    "frgt_amt",
    "total_amt",
    "invoicedetail",
}
MEMO_FIELDS = {
    "memo_num",
    "ord_num",
    "inv_num",
    "memo_date",
    "reason_code",
    "reason_desc",
    "restock",
    "total_amt",
    "tax_amt",
    "frgt_amt",
    "memodetail",
}
STYLE_FIELDS = {
    "style",
    "style_name",
    "style_desc",
    *(f"group_code{i}" for i in range(1, 9)),
    "division",
    "season",
    "retail_price",
    "status",
    "stylecolorsizes",
    "styledetail",
}
SKU_FIELDS = {
    "fkey",
    "upc",
    "ean",
    "color_code",
    "color_name",
    "lbl_code",
    "dimension",
    "size_desc",
    "status",
    "retail_price",
}
INVENTORY_FIELDS = {
    "style",
    "color_code",
    "lbl_code",
    "dimension",
    "size_desc",
    "upc",
    "location",
    "qty_oh",
    "qty_pick",
    "qty_avail",
    "qty_open",
    "last_mod",
    "pkey",
}


def test_subscription_key_is_required_and_checked(bc: BlueCherry) -> None:
    assert bc.api.get("/customer", headers={"Ocp-Apim-Subscription-Key": ""}).status_code == 401
    bare = bc.control.get(f"{bc.server.url}/api/customer")
    assert bare.status_code == 401 and "missing subscription key" in bare.json()["message"]
    assert bc.api.get("/customer", headers={"Ocp-Apim-Subscription-Key": "wrong"}).status_code == 401
    assert bc.api.get("/customer").status_code == 200


def test_page_size_above_200_and_page_zero_are_refused(bc: BlueCherry) -> None:
    too_big = bc.api.get("/order", params={"_pgsize": 201})
    assert too_big.status_code == 400 and "_pgsize" in too_big.json()["errors"][0]["errorMessage"]
    assert bc.api.get("/order", params={"_pgno": 0}).status_code == 400
    assert bc.api.get("/order", params={"_pgsize": 200}).status_code == 200
    assert bc.api.get("/nosuch").status_code == 404


def test_pages_start_at_1_cover_everything_once_in_last_mod_then_pkey_order(bc: BlueCherry) -> None:
    seen = []
    page = 1
    while True:
        rows = bc.get("order", _pgno=page, _pgsize=7)
        seen.extend(rows)
        if len(rows) < 7:
            break
        page += 1
    assert len(seen) == bc.sandbox.store.count("order") == 80
    assert len({r["pkey"] for r in seen}) == 80
    assert [(r["last_mod"], r["pkey"]) for r in seen] == sorted((r["last_mod"], r["pkey"]) for r in seen)
    assert bc.get("order", _pgno=1, _pgsize=7) == seen[:7]


def test_filter_on_last_mod_with_gt_ge_lt_eq_and(bc: BlueCherry) -> None:
    rows = bc.all("customer")
    stamps = sorted({r["last_mod"] for r in rows})
    mid = stamps[len(stamps) // 2]
    gt = bc.all("customer", **{"$filter": f"last_mod gt '{mid}'"})
    ge = bc.all("customer", **{"$filter": f"last_mod ge '{mid}'"})
    lt = bc.all("customer", **{"$filter": f"last_mod lt '{mid}'"})
    eq = bc.all("customer", **{"$filter": f"last_mod eq '{mid}'"})
    assert {r["pkey"] for r in gt} == {r["pkey"] for r in rows if r["last_mod"] > mid}
    assert {r["pkey"] for r in ge} == {r["pkey"] for r in rows if r["last_mod"] >= mid}
    assert {r["pkey"] for r in lt} == {r["pkey"] for r in rows if r["last_mod"] < mid}
    assert eq and all(r["last_mod"] == mid for r in eq)
    low, high = stamps[1], stamps[-2]
    both = bc.all("customer", **{"$filter": f"last_mod gt '{low}' and last_mod lt '{high}'"})
    assert {r["pkey"] for r in both} == {r["pkey"] for r in rows if low < r["last_mod"] < high}
    assert bc.all("customer", **{"$filter": "customer eq 'WEBGUEST'"})[0]["customer"] == "WEBGUEST"


def test_bad_filter_is_a_clear_400(bc: BlueCherry) -> None:
    for bad in ("last_mod after '2026-01-01'", "last_mod gt 'yesterday'", "last_mod gt '2026-01-01' and"):
        response = bc.api.get("/customer", params={"$filter": bad})
        assert response.status_code == 400, bad
        assert "$filter" in response.json()["errors"][0]["errorMessage"]


def test_include_all_adds_children_and_pkey_reads_one_record(bc: BlueCherry) -> None:
    plain = bc.get("order", _pgsize=3)
    assert all("orderdetail" not in r and "orderaddress" not in r for r in plain)
    full = bc.get("order", _pgsize=3, _include="all")
    assert all(r["orderdetail"]["rows"] and r["orderaddress"]["rows"] for r in full)
    one = bc.get("order", pkey=full[1]["pkey"], _include="all")
    assert one == [full[1]]
    assert bc.api.get("/order", params={"pkey": 99999999}).status_code == 404


def test_envelopes_header_for_resources_and_flat_for_location(bc: BlueCherry) -> None:
    assert isinstance(bc.api.get("/customer").json()["data"]["header"], list)
    locations = bc.api.get("/Location").json()["data"]
    assert isinstance(locations, list)
    assert {loc["location"]: loc["sellable"] for loc in locations} == {
        "WH1": "Y",
        "WH2": "Y",
        "QC": "N",
        "RTN": "N",
    }
    assert {"location", "loc_name", "loc_type", "resv_wh", "sellable"} <= set(locations[0])


def test_every_resource_serves_the_field_names_of_the_contract(bc: BlueCherry, upc: str) -> None:
    bc.apply({"op": "place_order", "customer": "C0000001", "lines": [{"upc": upc, "qty": 2}], "confirm": True})
    order = bc.get("order", _include="all", **{"$filter": "customer eq 'C0000001'"})[-1]
    bc.apply({"op": "ship", "ord_num": order["ord_num"]})
    invoice = bc.get("invoice", **{"$filter": f"ord_num eq '{order['ord_num']}'"})[0]
    bc.apply({"op": "return", "inv_num": invoice["inv_num"], "restock": True})
    customer = bc.get("customer", _include="all", _pgsize=5)[-1]
    assert set(customer) >= CUSTOMER_FIELDS
    assert set(customer["custaddress"]["rows"][0]) >= ADDRESS_FIELDS
    assert set(order) >= ORDER_FIELDS
    assert set(order["orderaddress"]["rows"][0]) >= ADDRESS_FIELDS
    assert LINE_FIELDS | {"ord_qty", "cancel_qty"} <= set(order["orderdetail"]["rows"][0])
    pick = bc.get("pick", _include="all", **{"$filter": f"ord_num eq '{order['ord_num']}'"})[0]
    assert set(pick) >= PICK_FIELDS and LINE_FIELDS | {"total_qty", "bk_qty"} <= set(pick["pickdetail"]["rows"][0])
    inv = bc.get("invoice", _include="all", pkey=invoice["pkey"])[0]
    assert set(inv) >= INVOICE_FIELDS and LINE_FIELDS | {"inv_qty"} <= set(inv["invoicedetail"]["rows"][0])
    memo = bc.get("creditmemo", _include="all", **{"$filter": f"inv_num eq '{invoice['inv_num']}'"})[0]
    assert set(memo) >= MEMO_FIELDS and LINE_FIELDS | {"ret_qty"} <= set(memo["memodetail"]["rows"][0])
    style = bc.get("style", _include="all", _pgsize=1)[0]
    assert set(style) >= STYLE_FIELDS
    assert set(style["stylecolorsizes"]["rows-i"][0]) >= SKU_FIELDS
    assert {"division", "season", "std_cost"} <= set(style["styledetail"]["rows"][0])
    assert set(bc.get("inventory", _pgsize=1)[0]) >= INVENTORY_FIELDS


def test_a_page_is_compact_utf8_json_as_starlette_renders_it(bc: BlueCherry) -> None:
    """Pages are encoded by orjson (the sandbox's serving bounded a backfill's reading): the bytes are what
    starlette's JSONResponse made, compact and UTF-8 (non-ASCII as itself, not escaped)."""
    bc.apply({"op": "edit_customer", "customer": "C0000001", "fields": {"name": "Zoë Ångström \u2603", "email": ""}})
    response = bc.api.get("/customer", params={"pkey": bc.get("customer", _pgsize=1)[0]["pkey"]})
    response.raise_for_status()
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.content)
    assert response.content == json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    named = [r for r in bc.get("customer", _pgsize=200) if r["customer"] == "C0000001"]
    assert named and named[0]["name"] == "Zoë Ångström \u2603"
    assert "Zoë Ångström \u2603".encode() in bc.api.get("/customer", params={"_pgsize": 200}).content


def test_a_page_keeps_a_long_integer_exact_and_a_small_float(bc: BlueCherry) -> None:
    """orjson reads an integer beyond 64 bits as a float and will not write one: such a record is read and served
    by the standard library, exactly, and its page is still served."""
    long_number = 123456789012345678901234567890
    bc.apply({"op": "edit_customer", "customer": "C0000002", "fields": {"division": long_number, "cust_type": 1e-7}})
    response = bc.api.get("/customer", params={"_pgsize": 200})
    assert response.status_code == 200, response.text
    data = json.loads(response.content)["data"]
    record = next(r for r in (data if isinstance(data, list) else data["header"]) if r["customer"] == "C0000002")
    assert record["division"] == long_number and isinstance(record["division"], int)
    assert record["cust_type"] == 1e-7


def test_whole_records_are_served_from_their_stored_text_as_the_records_themselves(bc: BlueCherry) -> None:
    """A page of whole records is written from the rows' stored text (nothing parsed, issue 18): every record of
    every resource comes out as `Row.record()` writes it, keys in the same order, children included."""
    bc.apply({"op": "edit_customer", "customer": "C0000003",
              "fields": {"name": "Zoë \u2603 \"quoted\"", "division": 123456789012345678901234567890}})
    store = bc.sandbox.store
    for resource in RESOURCES:
        stored = store.page_stored(resource, "", [], 0, 10**6)
        spliced = records_as_stored(stored)
        assert spliced is not None, resource
        records = [row.record() for row in store.page(resource, "", [], 0, 10**6)]
        assert len(stored) == len(records)
        assert json.dumps(json.loads(spliced)) == json.dumps(records), resource
    served = bc.all("customer", _include="all")
    assert json.dumps(served) == json.dumps([r.record() for r in store.page("customer", "", [], 0, 10**6)])
    assert any(r["division"] == 123456789012345678901234567890 for r in served)


@pytest.mark.parametrize("body", ['{"pkey":5,"name":"x"}', '{"name":"x","last_mod":"y"}', '{"qty":NaN}',
                                  '{"qty":-Infinity}', '{"name":"\ud800"}', '[1]'])
def test_a_body_the_text_cannot_be_spliced_from_is_served_the_general_way(body: str) -> None:
    assert records_as_stored([(1, "2026-01-01 00:00:00", '{"name":"fine"}'), (2, "2026-01-01 00:00:00", body)]) is None


def test_an_empty_body_is_spliced_to_pkey_and_last_mod() -> None:
    assert records_as_stored([(7, "2026-01-01 00:00:00", "{}")]) == b'[{"pkey":7,"last_mod":"2026-01-01 00:00:00"}]'
    assert records_as_stored([]) == b"[]"
