"""Builders of Blue Cherry record bodies (field names as the reference and the fleet's mapping use them).

Bodies exclude ``pkey`` and ``last_mod``: the store keeps those in columns. Children are
``{"<name>": {"rows": [...]}}``, SKU matrices ``{"stylecolorsizes": {"rows-i": [...]}}``.
"""

from __future__ import annotations

from typing import Any

from sandbox.bluecherry.catalog import STOREFRONT_CHANNEL

SKU_FIELDS = ("style", "color_code", "lbl_code", "dimension", "size_desc", "upc")


def address(addr_type: str, name: str, p: dict[str, str], email: str = "", phone: str = "") -> dict[str, Any]:
    return {
        "addr_type": addr_type,
        "name": name,
        "addr1": p["addr1"],
        "addr2": "",
        "city": p["city"],
        "state": p["state"],
        "zipcode": p["zipcode"],
        "country": "US",
        "email": email,
        "phone": phone,
        "contact": name,
    }


def customer_body(
    code: str,
    p: dict[str, str],
    created: str,
    *,
    wholesale_name: str | None = None,
    email_optin: str = "N",
    email_date: str = "",
    email_source: str = "",
    sms_optin: str = "N",
    sms_date: str = "",
    sms_source: str = "",
) -> dict[str, Any]:
    full = f"{p['first_name']} {p['last_name']}"
    name = wholesale_name or full
    return {
        "customer": code,
        "name": name,
        "first_name": p["first_name"],
        "last_name": p["last_name"],
        "email": p["email"],
        "phone": p["phone"],
        "division": "APP",
        "cust_group": "KEY" if wholesale_name else "DTC",
        "cust_type": "WHOLESALE" if wholesale_name else "RETAIL",
        "created": created,
        "status": "A",
        "delete_flag": "N",
        "terms": "NET30" if wholesale_name else "CC",
        "curr_code": "USD",
        "email_optin": email_optin,
        "email_optin_date": email_date,
        "email_optin_source": email_source,
        "sms_optin": sms_optin,
        "sms_optin_date": sms_date,
        "sms_optin_source": sms_source,
        "custaddress": {
            "rows": [
                address("BT", name, p, p["email"], p["phone"]),
                address("ST", name, p, p["email"], p["phone"]),
            ]
        },
    }


def order_line(seq: int, sku: dict[str, Any], qty: int, price: float) -> dict[str, Any]:
    return {
        "line_seq": seq,
        **{f: sku[f] for f in SKU_FIELDS},
        "style_name": sku["style_name"],
        "color_name": sku["color_name"],
        "price": price,
        "ord_qty": qty,
        "cancel_qty": 0,
        "pick_qty": 0,
        "ship_qty": 0,
        "inv_qty": 0,
    }


def order_amounts(lines: list[dict[str, Any]], web: bool, discount_pct: float) -> dict[str, float]:
    merch = sum(line["price"] * (line["ord_qty"] - line["cancel_qty"]) for line in lines)
    disc = round(merch * discount_pct, 2)
    freight = 0.0 if not web or merch >= 100 else 7.95
    return {"disc_amt": disc, "tax_amt": round((merch - disc) * 0.08, 2), "frgt_amt": freight}


def order_body(
    ord_num: str,
    customer: str,
    ord_type: str,
    channel: str,
    location: str,
    entered: str,
    addresses: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    *,
    web_ref: str = "",
    season: str = "",
    division: str = "APP",
    po_num: str = "",
    discount_pct: float = 0.0,
) -> dict[str, Any]:
    return {
        "ord_num": ord_num,
        "customer": customer,
        "po_num": po_num,
        "ord_date": entered,
        "confirm_date": "",
        "ord_type": ord_type,
        "sales_channel": channel,
        "division": division,
        "season": season,
        "department": "ECOM" if channel in ("WEB", STOREFRONT_CHANNEL) else "STORES" if channel == "POS" else "WHSL",
        "ord_status": "E",
        "hold_reason": "",
        "curr_code": "USD",
        "disc_code": "WELCOME10" if discount_pct else "",
        **order_amounts(lines, ord_type == "WEB", discount_pct),
        "location": location,
        "web_ref": web_ref,
        "orderaddress": {"rows": addresses},
        "orderdetail": {"rows": lines},
    }


def pick_body(
    order: dict[str, Any], pick_num: str, picked: list[tuple[dict[str, Any], int]], pick_date: str
) -> dict[str, Any]:
    ship_to = [dict(a) for a in order["orderaddress"]["rows"]]
    rows = [
        {
            **{k: line[k] for k in ("line_seq", *SKU_FIELDS, "style_name", "price")},
            "total_qty": qty,
            "bk_qty": max(0, line["ord_qty"] - line["cancel_qty"] - line["pick_qty"]),
        }
        for line, qty in picked
    ]
    return {
        "pick_num": pick_num,
        "ord_num": order["ord_num"],
        "po_num": order.get("po_num", ""),
        "pick_date": pick_date,
        "end_date": "",
        "ship_date": "",
        "pick_status": "O",
        "ord_type": order["ord_type"],
        "ord_status": order["ord_status"],
        "customer": order["customer"],
        "department": order.get("department", ""),
        "curr_code": order["curr_code"],
        "disc_amt": 0.0,
        "tax_amt": 0.0,
        "frgt_amt": 0.0,
        "shipper": "",
        "tracking_num": "",
        "location": order["location"],
        "inv_num": "",
        "bill_num": "",
        "pro_num": "",
        "load_id": "",
        "pickaddress": {"rows": ship_to},
        "pickdetail": {"rows": rows},
    }


def invoice_body(
    pick: dict[str, Any], order: dict[str, Any], inv_num: str, inv_date: str, first_invoice: bool
) -> dict[str, Any]:
    rows = [
        {
            **{
                k: r[k]
                for k in (
                    "line_seq",
                    "style",
                    "color_code",
                    "lbl_code",
                    "dimension",
                    "size_desc",
                    "upc",
                    "style_name",
                    "price",
                )
            },
            "inv_qty": r["total_qty"],
        }
        for r in pick["pickdetail"]["rows"]
    ]
    merch = round(sum(r["price"] * r["inv_qty"] for r in rows), 2)
    ordered = sum(line["price"] * line["ord_qty"] for line in order["orderdetail"]["rows"]) or 1.0
    share = merch / ordered
    disc = round(order["disc_amt"] * share, 2)
    tax = round(order["tax_amt"] * share, 2)
    freight = order["frgt_amt"] if first_invoice else 0.0  # billed once, on the first invoice
    return {
        "inv_num": inv_num,
        "ord_num": order["ord_num"],
        "pick_num": pick["pick_num"],
        "inv_date": inv_date,
        "customer": order["customer"],
        "ord_type": order["ord_type"],
        "curr_code": order["curr_code"],
        "shipper": pick["shipper"],
        "tracking_num": pick["tracking_num"],
        "location": pick["location"],
        "merch_amt": merch,
        "disc_amt": disc,
        "tax_amt": tax,
        "frgt_amt": freight,
        "total_amt": round(merch - disc + tax + freight, 2),
        "invoicedetail": {"rows": rows},
    }


def memo_body(
    memo_num: str,
    invoice: dict[str, Any],
    memo_date: str,
    memo_type: str,
    reason: tuple[str, str],
    restock: bool,
    returned: list[tuple[dict[str, Any], int]],
    amount: float | None = None,
) -> dict[str, Any]:
    rows = [
        {
            **{
                k: r[k]
                for k in (
                    "line_seq",
                    "style",
                    "color_code",
                    "lbl_code",
                    "dimension",
                    "size_desc",
                    "upc",
                    "style_name",
                    "price",
                )
            },
            "ret_qty": qty,
        }
        for r, qty in returned
    ]
    merch = round(sum(r["price"] * r["ret_qty"] for r in rows), 2) if amount is None else round(amount, 2)
    tax = round(merch * 0.08, 2) if rows else 0.0
    return {
        "memo_num": memo_num,
        "memo_type": memo_type,
        "ord_num": invoice["ord_num"],
        "inv_num": invoice["inv_num"],
        "memo_date": memo_date,
        "customer": invoice["customer"],
        "curr_code": invoice["curr_code"],
        "reason_code": reason[0],
        "reason_desc": reason[1],
        "restock": "Y" if restock else "N",
        "location": invoice["location"],
        "merch_amt": merch,
        "tax_amt": tax,
        "frgt_amt": 0.0,
        "total_amt": round(merch + tax, 2),
        "memodetail": {"rows": rows},
    }


def style_body(header: dict[str, Any], skus: list[dict[str, Any]]) -> dict[str, Any]:
    body = {k: v for k, v in header.items() if k != "std_cost"}
    body["styledetail"] = {
        "rows": [{"division": header["division"], "season": header["season"], "std_cost": header["std_cost"]}]
    }
    body["stylecolorsizes"] = {
        "rows-i": [
            {
                "fkey": i + 1,
                "upc": s["upc"],
                "ean": s["ean"],
                "color_code": s["color_code"],
                "color_name": s["color_name"],
                "lbl_code": s["lbl_code"],
                "dimension": s["dimension"],
                "size_desc": s["size_desc"],
                "status": s["status"],
                "retail_price": s["retail_price"],
            }
            for i, s in enumerate(skus)
        ]
    }
    return body


def inventory_key(upc: str, location: str) -> str:
    return f"{upc}@{location}"


def inventory_body(sku: dict[str, Any], location: str, on_hand: int, picked: int, open_qty: int) -> dict[str, Any]:
    return {
        **{f: sku[f] for f in SKU_FIELDS},
        "location": location,
        "qty_oh": on_hand,
        "qty_pick": picked,
        "qty_avail": on_hand - picked,
        "qty_open": open_qty,
        "qty_wip": 0,
        "qty_received": 0,
        "qty_invoiced": 0,
    }


def location_body(location: str, name: str, loc_type: str, resv_wh: str, sellable: str) -> dict[str, Any]:
    return {
        "location": location,
        "loc_name": name,
        "loc_type": loc_type,
        "resv_wh": resv_wh,
        "sellable": sellable,
    }
