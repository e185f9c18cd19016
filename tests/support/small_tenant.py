"""A small Blue Cherry tenant in the default shape, as in-memory records per resource: customers with their
orders, one order picked, invoiced and credited, a style and its stock in two sellable warehouses and a hold
one. For the onboarding tests (`sync.onboarding`); tests/support/dialect.py writes it in a second dialect."""

from __future__ import annotations

from typing import Any

from sync.onboarding.check import RESOURCES

UPC = "840070000018"


def _line(qty_key: str, qty: int, **extra: Any) -> dict[str, Any]:
    return {"line_seq": 1, "style": "TEE", "color_code": "BLK", "lbl_code": "", "dimension": "", "size_desc": "M",
            "upc": UPC, "price": 20.0, qty_key: qty, "style_name": "Tee", **extra}


def _addresses(n: int, email: str) -> dict[str, Any]:
    return {"rows": [{"addr_type": kind, "name": f"Ann Lee{n}", "addr1": "1 Elm St", "addr2": "", "city": "Salem",
                      "state": "OR", "zipcode": "97301", "country": "US", "email": email, "phone": ""}
                     for kind in ("BT", "ST")]}


def tenant(customers: int = 6) -> dict[str, list[dict[str, Any]]]:
    """A small tenant in the default shape: customers, their orders (one picked, invoiced and credited), a style,
    its stock in two warehouses."""
    stamp = "2026-03-01 10:00:00"
    records: dict[str, list[dict[str, Any]]] = {r: [] for r in RESOURCES}
    for n in range(1, customers + 1):
        email = f"ann.lee{n}@example.com"
        records["customer"].append({
            "pkey": n, "customer": f"C{n:04d}", "name": f"Ann Lee{n}", "first_name": "Ann", "last_name": f"Lee{n}",
            "email": email, "phone": f"(617) 253-10{n:02d}", "division": "APP", "cust_group": "DTC",
            "cust_type": "RETAIL", "created": "2025-03-02 10:00:00", "status": "A", "delete_flag": "N",
            "email_optin": "Y" if n % 2 else "N", "email_optin_date": "2025-03-03 10:00:00" if n % 2 else "",
            "email_optin_source": "web", "sms_optin": "N", "sms_optin_date": "", "sms_optin_source": "",
            "custaddress": _addresses(n, email), "last_mod": stamp})
        records["order"].append({
            "pkey": 100 + n, "ord_num": f"{100000 + n}", "customer": f"C{n:04d}", "ord_type": "WEB",
            "division": "APP", "sales_channel": "WEB", "ord_status": "O", "ord_date": "2026-02-01 09:00:00",
            "confirm_date": "2026-02-01 09:05:00", "curr_code": "USD", "disc_code": "", "disc_amt": 0.0,
            "tax_amt": 1.5, "frgt_amt": 5.0, "season": "SP26", "location": "WH1", "web_ref": "",
            "orderaddress": _addresses(n, email),
            "orderdetail": {"rows": [_line("ord_qty", 2, cancel_qty=0)]}, "last_mod": stamp})
    records["pick"].append({
        "pkey": 201, "pick_num": "500001", "ord_num": "100001", "pick_status": "S", "ship_date": "2026-02-03",
        "shipper": "UPS", "tracking_num": "1Z0505737408609050", "inv_num": "700001",
        "pickdetail": {"rows": [_line("total_qty", 2, bk_qty=0)]}, "last_mod": stamp})
    records["invoice"].append({
        "pkey": 301, "inv_num": "700001", "ord_num": "100001", "pick_num": "500001", "inv_date": "2026-02-03",
        "shipper": "UPS", "tracking_num": "1Z0505737408609050", "merch_amt": 40.0, "disc_amt": 0.0,
        "tax_amt": 1.5, "frgt_amt": 5.0, "total_amt": 46.5,
        "invoicedetail": {"rows": [_line("inv_qty", 2)]}, "last_mod": stamp})
    records["creditmemo"].append({
        "pkey": 401, "memo_num": "900001", "ord_num": "100001", "inv_num": "700001", "memo_date": "2026-02-10",
        "reason_code": "FIT", "reason_desc": "Did not fit", "restock": "Y", "total_amt": 20.0, "tax_amt": 0.0,
        "frgt_amt": 0.0, "memodetail": {"rows": [_line("ret_qty", 1)]}, "last_mod": stamp})
    records["style"].append({
        "pkey": 5, "style": "TEE", "style_name": "Tee", "style_desc": "A tee", "group_code1": "NORTH",
        "group_code2": "TOPS", "group_code3": "WOMENS", "division": "APP", "season": "SP26", "retail_price": 20.0,
        "status": "A", "stylecolorsizes": {"rows-i": [
            {"fkey": 1, "upc": UPC, "ean": "0" + UPC, "color_code": "BLK", "color_name": "Black", "lbl_code": "",
             "dimension": "", "size_desc": "M", "status": "A", "retail_price": 20.0}]},
        "last_mod": stamp})
    for pkey, warehouse, avail, open_orders in ((601, "WH1", 10, 1), (602, "WH2", 4, 0)):
        records["inventory"].append({
            "pkey": pkey, "style": "TEE", "color_code": "BLK", "lbl_code": "", "dimension": "", "size_desc": "M",
            "upc": UPC, "location": warehouse, "qty_oh": avail, "qty_pick": 0, "qty_avail": avail,
            "qty_open": open_orders, "last_mod": stamp})
    records["location"] = [{"pkey": 1, "location": "WH1", "loc_name": "Main", "sellable": "Y", "last_mod": stamp},
                           {"pkey": 2, "location": "WH2", "loc_name": "West", "sellable": "Y", "last_mod": stamp},
                           {"pkey": 3, "location": "QC", "loc_name": "Hold", "sellable": "N", "last_mod": stamp}]
    return records
