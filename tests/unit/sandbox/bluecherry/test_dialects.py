"""Tenant dialects (docs/sandbox.md, "Blue Cherry dialects"): the same seeded tenant served the `ibmi` way holds
the same facts as served the default way; filters, paging, 404 on empty, envelopes, ops, dump and CSV drops.

The field correspondences below are written out from the documented table, not taken from the sandbox's
own dialect spec, so a slip in the spec shows here.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from config.mapping import Mapping
from connectors.bluecherry.csv_drops import read_drop
from sandbox.bluecherry.sandbox import RESOURCES
from tests.unit.sandbox.bluecherry.conftest import BlueCherry

SERVED = {"customer": "CustomerMaster", "order": "SalesOrder", "pick": "PickTicket", "invoice": "Invoice",
          "creditmemo": "CreditMemo", "style": "StyleMaster", "inventory": "ItemAvailability", "Location": "Warehouse"}
ORDER_CODES = {"E": "10", "O": "20", "P": "30", "H": "40", "X": "80", "C": "90"}


def trim(value: Any) -> str:
    return str(value).strip()


def us(stamp: str, with_time: bool = True) -> str:
    """The internal 'YYYY-MM-DD HH:MM:SS' as the dialect writes it."""
    if not stamp:
        return ""
    moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    return moment.strftime("%m/%d/%Y %H:%M:%S" if with_time else "%m/%d/%Y")


def money(value: float) -> str:
    return f"{value:.2f}"


def digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


Same = list[tuple[str, str, Callable[[Any], Any]]]  # (dialect field, internal field, how its value is written)
# per resource, every field a mapping reads
SAME: dict[str, Same] = {
    "customer": [("cust_code", "customer", trim), ("email_addr", "email", str.upper), ("phone_nbr", "phone", digits),
                 ("fst_name", "first_name", str), ("lst_name", "last_name", str), ("cust_class", "cust_group", trim),
                 ("cust_type", "cust_type", trim), ("open_dt", "created", lambda v: us(v, False)),
                 ("del_flag", "delete_flag", str), ("email_opt", "email_optin", str),
                 ("email_opt_dt", "email_optin_date", us), ("sms_opt", "sms_optin", str),
                 ("sms_opt_dt", "sms_optin_date", us), ("division", "division", trim)],
    "order": [("order_no", "ord_num", str), ("cust_code", "customer", trim), ("conf_dt", "confirm_date", us),
              ("order_type", "ord_type", trim), ("order_src", "sales_channel", trim), ("division", "division", trim),
              ("order_stat", "ord_status", ORDER_CODES.__getitem__), ("disc_amt", "disc_amt", money),
              ("tax_amt", "tax_amt", money), ("frt_amt", "frgt_amt", money), ("whse_code", "location", trim),
              ("ecom_ref", "web_ref", str), ("curr_code", "curr_code", str), ("disc_code", "disc_code", str)],
    "pick": [("pick_no", "pick_num", str), ("order_no", "ord_num", str),
             ("ship_dt", "ship_date", lambda v: us(v, False)), ("carrier", "shipper", trim),
             ("track_no", "tracking_num", str), ("inv_no", "inv_num", str), ("whse_code", "location", trim)],
    "invoice": [("inv_no", "inv_num", str), ("order_no", "ord_num", str), ("pick_no", "pick_num", str),
                ("inv_dt", "inv_date", lambda v: us(v, False)), ("merch_amt", "merch_amt", money),
                ("disc_amt", "disc_amt", money), ("tax_amt", "tax_amt", money), ("frt_amt", "frgt_amt", money),
                ("inv_total", "total_amt", money), ("carrier", "shipper", trim)],
    "creditmemo": [("memo_no", "memo_num", str), ("order_no", "ord_num", str), ("inv_no", "inv_num", str),
                   ("rsn_code", "reason_code", trim), ("restock_fl", "restock", str),
                   ("memo_total", "total_amt", money), ("tax_amt", "tax_amt", money),
                   ("frt_amt", "frgt_amt", money), ("whse_code", "location", trim)],
    "style": [("style_no", "style", trim), ("descr", "style_name", str), ("long_desc", "style_desc", str),
              ("brand_cd", "group_code1", trim), ("categ_cd", "group_code2", trim), ("gender_cd", "group_code3", trim),
              ("division", "division", trim), ("season", "season", trim), ("retail_prc", "retail_price", money),
              ("style_stat", "status", str)],
    "inventory": [("style_no", "style", trim), ("color_cd", "color_code", trim), ("label_cd", "lbl_code", trim),
                  ("dim_cd", "dimension", trim), ("size_cd", "size_desc", trim), ("upc", "upc", str),
                  ("whse_code", "location", trim), ("qty_oh", "qty_oh", str), ("qty_pick", "qty_pick", str),
                  ("qty_avail", "qty_avail", str), ("qty_open", "qty_open", str)],
    "Location": [("whse_code", "location", trim), ("whse_name", "loc_name", str), ("sell_fl", "sellable", str)],
}
LINES: dict[str, tuple[str, str, Same]] = {  # resource -> (dialect child, internal child, its quantities)
    "order": ("soline", "orderdetail", [("qty_ord", "ord_qty", str), ("qty_cncl", "cancel_qty", str)]),
    "pick": ("pkline", "pickdetail", [("qty_pick", "total_qty", str), ("qty_bo", "bk_qty", str)]),
    "invoice": ("invline", "invoicedetail", [("qty_inv", "inv_qty", str)]),
    "creditmemo": ("cmline", "memodetail", [("qty_ret", "ret_qty", str)]),
}
LINE_SAME: Same = [("line_no", "line_seq", str), ("style_no", "style", trim), ("color_cd", "color_code", trim),
             ("label_cd", "lbl_code", trim), ("dim_cd", "dimension", trim), ("size_cd", "size_desc", trim),
             ("upc", "upc", str), ("unit_prc", "price", money)]
SKU_SAME: Same = [("upc", "upc", str), ("color_cd", "color_code", trim), ("color_desc", "color_name", str),
            ("label_cd", "lbl_code", trim), ("dim_cd", "dimension", trim), ("size_cd", "size_desc", trim),
            ("sku_stat", "status", str), ("retail_prc", "retail_price", money)]
ABSENT = {"customer": ("status", "customer", "email", "custaddress"), "order": ("ord_date", "ord_num", "orderaddress"),
          "creditmemo": ("memo_date",), "pick": ("pick_status", "pickaddress")}


def seen(served: Any, write: Callable[[Any], Any]) -> Any:
    """A served value as compared with the internal one written the dialect's way: a padded code trimmed."""
    return trim(served) if write is trim else served


def stored(bc: BlueCherry, resource: str, **match: str) -> list[dict[str, Any]]:
    """The internal records (whatever the dialect serves) whose fields have these values."""
    return [row.body for row in bc.sandbox.store.iterate(resource)
            if all(row.body.get(k) == v for k, v in match.items())]


def business(bc: BlueCherry, upc: str) -> None:
    """A return (a credit memo), a shipped-but-not-invoiced ticket, a voided ticket and a backdated credit."""
    shipped = bc.touched({"op": "place_order", "customer": "C0000003", "lines": [{"upc": upc, "qty": 3}],
                          "confirm": True}, resource="order")[0]
    bc.apply({"op": "ship", "ord_num": shipped["ord_num"], "lines": [{"line_seq": 1, "qty": 1}]})
    invoice = stored(bc, "invoice", ord_num=shipped["ord_num"])[0]
    bc.apply({"op": "return", "inv_num": invoice["inv_num"], "restock": True},
             {"op": "credit_memo", "inv_num": invoice["inv_num"], "amount": 5.0, "memo_date": "2026-11-19 09:00:00"},
             {"op": "ship", "ord_num": shipped["ord_num"], "lines": [{"line_seq": 1, "qty": 1}], "invoice": False},
             {"op": "pick", "ord_num": shipped["ord_num"]})
    voided = stored(bc, "pick", ord_num=shipped["ord_num"], pick_status="O")[0]
    bc.apply({"op": "void_pick", "pick_num": voided["pick_num"]})


@pytest.fixture
def pair(start_sandbox: Callable[..., BlueCherry]) -> tuple[BlueCherry, BlueCherry]:
    """The same seeded tenant, with the same business on top, served the default way and the ibmi way."""
    default, ibmi = start_sandbox(), start_sandbox(dialect="ibmi")
    store = default.sandbox.store
    upc = next(u for u in store.sku_upcs() if store.get_sku(u)["status"] == "A")
    for bc in (default, ibmi):
        bc.apply({"op": "adjust_stock", "upc": upc, "location": "WH1", "qty_oh": 100})
        business(bc, upc)
    return default, ibmi


def by_pkey(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {record["pkey"]: record for record in records}


def records_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The record list of a page: ``{"data": {"header": [...]}}``, ``{"data": [...]}`` or ``{"value": [...]}``."""
    if "value" in body:
        return list(body["value"])
    data = body["data"]
    return list(data if isinstance(data, list) else data["header"])


def ibmi_all(bc: BlueCherry, resource: str, **params: Any) -> list[dict[str, Any]]:
    """Every record of a dialect resource: pages until a short page or the dialect's 404 for "no records"."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        response = bc.api.get(f"/{SERVED[resource]}", params={"_pgno": page, "_pgsize": 200, **params})
        if response.status_code == 404:
            return out
        assert response.status_code == 200, response.text
        rows = records_of(response.json())
        out.extend(rows)
        if len(rows) < 200:
            return out
        page += 1


def test_the_same_tenant_holds_the_same_facts_in_both_dialects(pair: tuple[BlueCherry, BlueCherry]) -> None:
    default, ibmi = pair
    for resource in RESOURCES:
        mine, theirs = by_pkey(default.all(resource, _include="all")), by_pkey(ibmi_all(ibmi, resource, _include="all"))
        assert set(mine) == set(theirs) and mine, resource
        for pkey, record in mine.items():
            served = theirs[pkey]
            assert list(served)[0] == "pkey" and list(served)[-1] == "chg_stamp", resource
            assert served["chg_stamp"] == us(record["last_mod"]), resource
            for name, source, write in SAME[resource]:
                assert seen(served[name], write) == write(record.get(source, "")), (resource, pkey, name)
            assert not set(ABSENT.get(resource, ())) & set(served), resource
            if resource in LINES:
                child, source_child, qtys = LINES[resource]
                pairs = zip(served[child]["rows"], record[source_child]["rows"], strict=True)
                for row, line in pairs:
                    for name, source, write in LINE_SAME + qtys:
                        assert seen(row[name], write) == write(line[source]), (resource, name)
            if resource == "style":
                for row, sku in zip(served["stylesku"]["rows-i"], record["stylecolorsizes"]["rows-i"], strict=True):
                    for name, source, write in SKU_SAME:
                        assert seen(row[name], write) == write(sku[source]), name
            for rows_name in ("custaddress", "orderaddress", "pickaddress"):
                for address in record.get(rows_name, {}).get("rows", []):
                    prefix = {"BT": "bill_", "ST": "ship_"}[address["addr_type"]]
                    assert served[f"{prefix}email"] == address["email"].upper()
                    assert (served[f"{prefix}city"], served[f"{prefix}zip"]) == (address["city"], address["zipcode"])


def test_code_padding_and_numbers_as_strings_are_the_tenants_habits(pair: tuple[BlueCherry, BlueCherry]) -> None:
    _, ibmi = pair
    customer = next(c for c in ibmi_all(ibmi, "customer") if trim(c["cust_code"]) == "WEBGUEST")
    assert customer["cust_code"] == "WEBGUEST  "  # CHAR(10)
    row = ibmi_all(ibmi, "inventory")[0]
    assert len(row["style_no"]) == 12 and len(row["whse_code"]) == 6 and row["label_cd"] == " " * 5
    assert all(isinstance(row[q], str) for q in ("qty_oh", "qty_pick", "qty_avail", "qty_open"))
    order = ibmi_all(ibmi, "order", _include="all")[0]
    assert isinstance(order["disc_amt"], str) and isinstance(order["soline"]["rows"][0]["qty_ord"], str)


def test_a_ticket_shipped_shows_in_its_ship_date_not_in_its_status(pair: tuple[BlueCherry, BlueCherry]) -> None:
    default, ibmi = pair
    served = by_pkey(ibmi_all(ibmi, "pick"))
    statuses: dict[str, set[tuple[str, bool]]] = {}
    for pkey, pick in by_pkey(default.all("pick")).items():
        kind = ("void" if pick["pick_status"] == "X" else "invoiced" if pick["inv_num"]
                else "shipped" if pick["pick_status"] == "S" else "open")
        statuses.setdefault(kind, set()).add((served[pkey]["pick_stat"], bool(served[pkey]["ship_dt"])))
    assert statuses == {"void": {("V", False)}, "invoiced": {("I", True)}, "shipped": {("O", True)},
                        "open": {("O", False)}}


def test_filters_read_the_dialects_names_and_dates(pair: tuple[BlueCherry, BlueCherry]) -> None:
    default, ibmi = pair

    def pkeys(bc: BlueCherry, resource: str, text: str) -> set[int]:
        return set(by_pkey(ibmi_all(bc, resource, **{"$filter": text}) if bc is ibmi
                           else default.all(resource, **{"$filter": text})))

    cut = sorted(r["last_mod"] for r in default.all("order"))[40]
    since = pkeys(default, "order", f"last_mod ge '{cut}'")
    assert 0 < len(since) < len(default.all("order"))
    assert pkeys(ibmi, "order", f"chg_stamp ge '{us(cut)}'") == since
    assert pkeys(ibmi, "order", f"chg_stamp ge '{cut}'") == since  # ISO is taken too (a DB2 for i habit)
    assert pkeys(ibmi, "order", f"chg_stamp gt '{us(cut)}'") == pkeys(default, "order", f"last_mod gt '{cut}'")
    assert pkeys(ibmi, "order", "order_stat eq '20'") == pkeys(default, "order", "ord_status eq 'O'") != set()
    assert pkeys(ibmi, "customer", "cust_code eq 'WEBGUEST'") == pkeys(default, "customer", "customer eq 'WEBGUEST'")
    assert pkeys(ibmi, "customer", "cust_code eq 'WEBGUEST  '") == pkeys(default, "customer", "customer eq 'WEBGUEST'")
    email = default.all("customer")[3]["email"]
    assert pkeys(ibmi, "customer", f"email_addr eq '{email.upper()}'") == pkeys(
        default, "customer", f"email eq '{email}'") != set()
    assert pkeys(ibmi, "inventory", "qty_oh ge '100'") == pkeys(default, "inventory", "qty_oh ge 100") != set()
    day = cut[:10]
    assert pkeys(ibmi, "invoice", f"inv_dt ge '{us(cut, False)}'") == pkeys(default, "invoice", f"inv_date ge '{day}'")
    assert pkeys(ibmi, "order", f"last_mod ge '{cut}'") == set()  # the default's name is no field of this tenant
    for unfilterable in ("bill_email eq 'X'", "pick_stat eq 'O'", "chg_stamp ge '13/45/2026'"):
        resource = "pick" if "pick_stat" in unfilterable else "order"
        response = ibmi.api.get(f"/{SERVED[resource]}", params={"$filter": unfilterable})
        assert response.status_code == 400 and "$filter" in response.text, unfilterable


def test_paging_in_the_dialect_serves_every_record_once_in_stamp_order(pair: tuple[BlueCherry, BlueCherry]) -> None:
    default, ibmi = pair
    served: list[dict[str, Any]] = []
    page = 1
    while True:
        response = ibmi.api.get("/SalesOrder", params={"_pgno": page, "_pgsize": 7})
        if response.status_code == 404:  # a page past the end: this tenant has no records there
            break
        rows = response.json()["data"]["header"]
        served.extend(rows)
        if len(rows) < 7:
            break
        page += 1
    assert [r["pkey"] for r in served] == [r["pkey"] for r in default.all("order")]
    order = [datetime.strptime(r["chg_stamp"], "%m/%d/%Y %H:%M:%S") for r in served]
    assert order == sorted(order)


def test_an_empty_result_is_a_404_and_not_an_unknown_resource(start_sandbox: Callable[..., BlueCherry]) -> None:
    ibmi = start_sandbox(dialect="ibmi", customers=3, orders=0)
    empty = ibmi.api.get("/CreditMemo")
    unknown = ibmi.api.get("/creditmemo")  # the default tenant's name: no resource of this one
    assert empty.status_code == unknown.status_code == 404
    assert empty.json()["message"] == "No records found for CreditMemo"
    assert unknown.json()["message"].startswith("Resource 'creditmemo' not found (known: CustomerMaster, SalesOrder")
    assert ibmi.api.get("/CustomerMaster", params={"$filter": "cust_code eq 'NOBODY'"}).status_code == 404
    assert ibmi.api.get("/CustomerMaster", params={"_pgno": 2}).status_code == 404
    assert ibmi.api.get("/CustomerMaster", params={"pkey": 999999}).json()["message"].endswith("not found")
    default = start_sandbox(customers=3, orders=0)
    assert default.api.get("/creditmemo").json() == {"data": {"header": []}}  # the default tenant: an empty page


def test_envelopes_one_resource_in_its_own(pair: tuple[BlueCherry, BlueCherry]) -> None:
    _, ibmi = pair
    for resource, name in SERVED.items():
        body = ibmi.api.get(f"/{name}", params={"_pgsize": 2}).json()
        if resource == "inventory":  # a view of another (OData) service
            assert list(body) == ["value"] and len(body["value"]) == 2
        elif resource == "Location":  # a lookup, as in every tenant
            assert list(body) == ["data"] and len(body["data"]) == 2
        else:
            assert list(body) == ["data"] and list(body["data"]) == ["header"] and len(body["data"]["header"]) == 2


def test_the_dump_states_the_dialect_and_equals_paging_its_api(pair: tuple[BlueCherry, BlueCherry]) -> None:
    _, ibmi = pair
    dump = ibmi.control.get("/dump").json()
    assert dump["dialect"] == "ibmi" and list(dump["resources"]) == list(SERVED.values())
    for resource, name in SERVED.items():
        assert by_pkey(dump["resources"][name]) == by_pkey(ibmi_all(ibmi, resource, _include="all")), name
    assert ibmi.control.get("/stats").json()["counts"]["SalesOrder"] == 81


def test_ops_may_use_the_dialects_names_and_answer_in_the_internal_model(
    start_sandbox: Callable[..., BlueCherry],
) -> None:
    ibmi = start_sandbox(dialect="ibmi")
    touched = ibmi.touched({"op": "edit_customer", "cust_code": "C0000002  ",
                            "fields": {"email_addr": "ADA@EXAMPLE.ORG", "phone_nbr": "6172531000"},
                            "bill_to": {"zip": "02139"}}, resource="customer")[0]
    assert (touched["customer"], touched["email"], touched["phone"]) == ("C0000002", "ADA@EXAMPLE.ORG", "6172531000")
    assert next(a for a in touched["custaddress"]["rows"] if a["addr_type"] == "BT")["zipcode"] == "02139"
    served = ibmi_all(ibmi, "customer", **{"$filter": "cust_code eq 'C0000002'"})[0]
    assert (served["email_addr"], served["bill_zip"]) == ("ADA@EXAMPLE.ORG", "02139")
    order = next(o for o in ibmi.sandbox.store.iterate("order") if o.body["ord_status"] == "E")
    written = ibmi.apply({"op": "confirm", "order_no": order.nkey},
                         {"op": "touch", "resource": "SalesOrder", "count": 2})  # the dialect's resource name
    assert len([t for t in written if t["resource"] == "order"]) == 3
    assert ibmi_all(ibmi, "order", **{"$filter": f"order_no eq '{order.nkey}'"})[0]["order_stat"] == "20"
    memo = ibmi.apply({"op": "credit_memo", "inv_no": next(ibmi.sandbox.store.iterate("invoice")).nkey,
                       "amount": 1.0, "memo_date": "11/19/2026 08:30:00"})
    assert [t["record"]["memo_date"] for t in memo if t["resource"] == "creditmemo"] == ["2026-11-19 08:30:00"]


def test_malformed_records_are_damaged_where_the_dialect_shows_it(start_sandbox: Callable[..., BlueCherry]) -> None:
    ibmi = start_sandbox(dialect="ibmi")
    ibmi.control.post("/faults", json={"malformed_rate": 1.0, "malformed_kinds": ["impossible_date"]})
    orders = ibmi_all(ibmi, "order")
    assert orders and all(o["conf_dt"] == "02/30/2026 25:61:00" for o in orders)  # no entry date to damage here
    assert ibmi.control.get("/stats").json()["faults_injected"]["malformed:impossible_date"] == len(orders)


def test_csv_drops_pad_codes_and_edit_numbers_and_read_the_same(
    start_sandbox: Callable[..., BlueCherry], tmp_path: Path
) -> None:
    default, ibmi = start_sandbox(), start_sandbox(dialect="ibmi")
    for bc in (default, ibmi):
        bc.apply({"op": "adjust_stock", "upc": bc.sandbox.store.sku_upcs()[0], "location": "WH1", "qty_oh": 1234},
                 {"op": "adjust_stock", "upc": bc.sandbox.store.sku_upcs()[1], "location": "WH1", "qty_oh": -5})
    files = {name: bc.control.post("/csv-drop", json={"dir": str(tmp_path / name)}).json()["files"]
             for name, bc in (("default", default), ("ibmi", ibmi))}
    with open(files["ibmi"][0], encoding="cp1252", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["Total QOH"] for r in rows} >= {"1,234", "5-"} and all(len(r["Location"]) == 6 for r in rows)
    for mine, theirs in zip(files["default"], files["ibmi"], strict=True):
        read_default, read_ibmi = read_drop(Path(mine), Mapping()), read_drop(Path(theirs), Mapping())
        assert not read_ibmi.problems and read_ibmi.records == read_default.records
