"""Small hand-built Blue Cherry dumps (record shapes of docs/sandbox-bluecherry.md) and a Klaviyo-sandbox-shaped
state rendered from an expectation, for the oracle's tests."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from testing.oracle import ExpectedState


def customer(code: str, email: str = "", phone: str = "", *, status: str = "A", delete: str = "N",
             email_optin: str = "N", sms_optin: str = "N") -> dict[str, Any]:
    return {"customer": code, "email": email or f"{code.lower()}@example.com", "phone": phone, "status": status,
            "delete_flag": delete, "email_optin": email_optin, "sms_optin": sms_optin,
            "last_mod": "2026-11-01 10:00:00"}


def line(seq: int, qty: int, price: float | str, cancel: int = 0, size: str = "M") -> dict[str, Any]:
    return {"line_seq": seq, "style": "S100", "color_code": "BLK", "lbl_code": "", "dimension": "", "size_desc": size,
            "price": price, "ord_qty": qty, "cancel_qty": cancel}


def order(num: str, cust: str, lines: list[dict[str, Any]], *, status: str = "O",
          confirm: str = "2026-11-10 09:00:00", ord_type: str = "WEB", channel: str = "WEB", email: str = "",
          tax: float | str = 0.0, freight: float = 0.0, discount: float = 0.0, web_ref: str = "") -> dict[str, Any]:
    return {
        "ord_num": num, "customer": cust, "ord_date": "2026-11-10 08:00:00", "confirm_date": confirm,
        "ord_type": ord_type, "sales_channel": channel, "division": "APP", "ord_status": status,
        "disc_amt": discount, "tax_amt": tax, "frgt_amt": freight, "web_ref": web_ref,
        "orderaddress": {"rows": [{"addr_type": "BT", "email": email}, {"addr_type": "ST", "email": ""}]},
        "orderdetail": {"rows": lines}, "last_mod": "2026-11-10 09:00:00",
    }


def pick(num: str, ord_num: str, qtys: list[tuple[int, float]], *, status: str = "S",
         ship_date: str = "2026-11-11 12:00:00") -> dict[str, Any]:
    rows = [{"line_seq": i + 1, "price": price, "total_qty": qty, "bk_qty": 0} for i, (qty, price) in enumerate(qtys)]
    return {"pick_num": num, "ord_num": ord_num, "pick_status": status, "ship_date": ship_date,
            "pickdetail": {"rows": rows}, "last_mod": ship_date}


def memo(num: str, ord_num: str, total: float | str, date: str = "2026-11-12 10:00:00") -> dict[str, Any]:
    return {"memo_num": num, "ord_num": ord_num, "memo_date": date, "total_amt": total, "last_mod": date}


def style(code: str = "S100", sizes: tuple[str, ...] = ("M",), *, status: str = "A",
          sku_status: dict[str, str] | None = None) -> dict[str, Any]:
    skus = [{"color_code": "BLK", "lbl_code": "", "dimension": "", "size_desc": size, "upc": f"8400{i}",
             "status": (sku_status or {}).get(size, "A")} for i, size in enumerate(sizes)]
    return {"style": code, "style_name": "Tee", "status": status, "stylecolorsizes": {"rows-i": skus}}


def stock(size: str, location: str, avail: float | None, open_: float, *, on_hand: float = 0, picked: float = 0,
          code: str = "S100") -> dict[str, Any]:
    return {"style": code, "color_code": "BLK", "lbl_code": "", "dimension": "", "size_desc": size,
            "location": location, "qty_oh": on_hand, "qty_pick": picked, "qty_avail": avail, "qty_open": open_,
            "last_mod": "2026-11-01 10:00:00"}


LOCATIONS = [{"location": "WH1", "sellable": "Y"}, {"location": "WH2", "sellable": "Y"},
             {"location": "QC", "sellable": "N"}]


def dump(**resources: list[dict[str, Any]]) -> dict[str, Any]:
    names = {"locations": "Location"}
    body = {"customer": [], "order": [], "pick": [], "invoice": [], "creditmemo": [], "style": [], "inventory": [],
            "Location": LOCATIONS}
    body |= {names.get(name, name): records for name, records in resources.items()}
    return {"dumped_at": {}, "timezone": "America/New_York", "dialect": "default", "resources": body}


def render(expected: ExpectedState) -> dict[str, Any]:
    """The Klaviyo sandbox state (GET /_sandbox/state shape) that holds exactly the expectation."""
    profiles, profile_of = {}, {}
    for n, wanted in enumerate(expected.profiles.values()):
        pid = f"P{n:04d}"
        profile_of[wanted.owner] = pid
        consent = wanted.consent or {}
        profiles[pid] = {
            "id": pid, "email": wanted.email, "phone_number": wanted.phone_number, "external_id": wanted.external_id,
            "properties": dict(wanted.aggregates),
            "subscriptions": {channel: {"marketing": {"consent": "SUBSCRIBED" if consent.get(channel)
                                                      else "NEVER_SUBSCRIBED"}} for channel in ("email", "sms")},
        }
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for n, ((metric, unique_id), event) in enumerate(expected.events.items()):
        events[metric].append({"id": f"E{n}", "profile_id": profile_of[event.owner], "unique_id": unique_id,
                               "time": event.time.isoformat(), "value": event.value, "properties": {}})
    variants = {f"$custom:::$default:::{vid}": {"external_id": vid, "inventory_quantity": qty}
                for vid, qty in expected.variants.items()}
    return {"profiles": profiles, "events": dict(events), "catalog": {"items": {}, "variants": variants}}
