"""The operations of ``POST /_sandbox/apply``: one function per op, each taking the tenant and the op's dict.

Every op validates its input and raises ``OpError`` naming the field or the record it could not use.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.bluecherry.catalog import CARRIERS, CREDIT_REASONS, GUEST, RETURN_REASONS, customer_code, person
from sandbox.bluecherry.records import (
    address,
    customer_body,
    invoice_body,
    memo_body,
    order_amounts,
    order_body,
    order_line,
    pick_body,
    style_body,
)
from sandbox.bluecherry.tenant import OpError, Tenant

Op = Callable[[Tenant, dict[str, Any]], None]
OPS: dict[str, Op] = {}
CUSTOMER_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "division",
    "cust_group",
    "cust_type",
    "status",
    "delete_flag",
    "terms",
)
STYLE_FIELDS = (
    "style_name",
    "style_desc",
    "division",
    "season",
    "retail_price",
    "status",
    *(f"group_code{i}" for i in range(1, 9)),
)
SKU_EDIT_FIELDS = ("status", "retail_price", "color_name")


def op(name: str) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        OPS[name] = fn
        return fn

    return register


def need(params: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    if key not in params:
        raise OpError(f"missing '{key}'")
    value = params[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise OpError(f"'{key}' has the wrong type: {value!r}")
    return value


def quantity(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OpError(f"{where}: quantity must be a positive integer, got {value!r}")
    return value


# --- customers ---------------------------------------------------------------------------------
@op("create_customer")
def create_customer(t: Tenant, params: dict[str, Any]) -> None:
    number = t.next_number("customer")
    code = str(params.get("customer") or customer_code(number))
    if t.store.get("customer", code) is not None:
        raise OpError(f"customer '{code}' already exists")
    p = {**person(t.seed, number), **{k: str(v) for k, v in params.items() if isinstance(v, str | int)}}
    now = t.now()
    body = customer_body(code, p, now)
    for channel in ("email", "sms"):
        if params.get(f"{channel}_optin") in ("Y", True):
            body[f"{channel}_optin"] = "Y"
            body[f"{channel}_optin_date"] = now
            body[f"{channel}_optin_source"] = str(params.get(f"{channel}_optin_source", "web signup"))
    body["name"] = str(params.get("name") or f"{p['first_name']} {p['last_name']}")
    for row in body["custaddress"]["rows"]:
        row["name"] = row["contact"] = body["name"]
    t.save("customer", code, body)


@op("edit_customer")
def edit_customer(t: Tenant, params: dict[str, Any]) -> None:
    code = need(params, "customer")
    body = t.load("customer", code, "customer")
    fields = params.get("fields", {})
    if not isinstance(fields, dict):
        raise OpError("'fields' must be an object")
    for key, value in fields.items():
        if key not in CUSTOMER_FIELDS:
            raise OpError(f"customer field '{key}' cannot be edited here (editable: {', '.join(CUSTOMER_FIELDS)})")
        body[key] = value
    for addr_type in ("BT", "ST"):
        change = params.get("bill_to" if addr_type == "BT" else "ship_to")
        if change:
            for row in body["custaddress"]["rows"]:
                if row["addr_type"] == addr_type:
                    row.update({k: v for k, v in change.items() if k in row})
    t.save("customer", code, body)


@op("consent")
def consent(t: Tenant, params: dict[str, Any]) -> None:
    code = need(params, "customer")
    channel = need(params, "channel")
    if channel not in ("email", "sms"):
        raise OpError(f"'channel' must be 'email' or 'sms', got {channel!r}")
    body = t.load("customer", code, "customer")
    body[f"{channel}_optin"] = "Y" if need(params, "optin", bool) else "N"
    body[f"{channel}_optin_date"] = t.now()
    body[f"{channel}_optin_source"] = str(params.get("source", "customer service"))
    t.save("customer", code, body)


# --- orders ------------------------------------------------------------------------------------
def build_lines(t: Tenant, wanted: Any, first_seq: int, where: str) -> list[dict[str, Any]]:
    if not isinstance(wanted, list) or not wanted:
        raise OpError(f"{where}: a non-empty list of lines ({{upc, qty}}) is required")
    lines = []
    for i, item in enumerate(wanted):
        if not isinstance(item, dict):
            raise OpError(f"{where}[{i}]: expected an object with upc and qty")
        sku = t.sku(need(item, "upc"))
        qty = quantity(item.get("qty"), f"{where}[{i}]")
        lines.append(order_line(first_seq + i, sku, qty, float(item.get("price", sku["retail_price"]))))
    return lines


@op("place_order")
def place_order(t: Tenant, params: dict[str, Any]) -> None:
    ord_type = params.get("ord_type", "WEB")
    channel = params.get("sales_channel", {"WEB": "WEB", "RTL": "POS", "WHL": "EDI"}.get(ord_type, "WEB"))
    code = str(params.get("customer", GUEST))
    number = t.next_number("order")
    ord_num = str(number)
    if code == GUEST:
        p = person(t.seed, 10_000_000 + number)
        email = str(params.get("email", p["email"]))
        name = str(params.get("name", f"{p['first_name']} {p['last_name']}"))
        addresses = [address("BT", name, p, email, p["phone"]), address("ST", name, p, "", p["phone"])]
    else:
        customer = t.load("customer", code, "customer")
        addresses = [dict(a) for a in customer["custaddress"]["rows"]]
    lines = build_lines(t, params.get("lines"), 1, "lines")
    location = str(params.get("location", "WH2" if ord_type == "WHL" else "WH1"))
    web_ref = str(params.get("web_ref", f"SHOP#{number}" if ord_type == "WEB" else ""))
    body = order_body(
        ord_num,
        code,
        ord_type,
        channel,
        location,
        t.now(),
        addresses,
        lines,
        web_ref=web_ref,
        po_num=str(params.get("po_num", "")),
        discount_pct=float(params.get("discount_pct", 0.0)),
    )
    if params.get("confirm"):
        body["ord_status"] = "O"
        body["confirm_date"] = t.now()
    t.save_order(None, body)


def load_order(t: Tenant, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    body = t.load("order", str(need(params, "ord_num", (str, int))), "order")
    return copy.deepcopy(body), body


def line_of(order: dict[str, Any], seq: Any) -> dict[str, Any]:
    for line in order["orderdetail"]["rows"]:
        if line["line_seq"] == seq:
            return line
    raise OpError(f"order {order['ord_num']} has no line {seq!r}")


def settle(order: dict[str, Any]) -> None:
    """Derive P / C / X from the lines once something was shipped, invoiced or cancelled."""
    if order["ord_status"] in ("X", "H"):
        return
    lines = order["orderdetail"]["rows"]
    wanted = sum(line["ord_qty"] - line["cancel_qty"] for line in lines)
    shipped = sum(line["ship_qty"] for line in lines)
    invoiced = sum(line["inv_qty"] for line in lines)
    if wanted == 0:
        order["ord_status"] = "X"
    elif shipped >= wanted and invoiced >= wanted:
        order["ord_status"] = "C"
    elif shipped > 0:
        order["ord_status"] = "P"


def open_only(order: dict[str, Any], action: str) -> None:
    if order["ord_status"] in ("X", "C"):
        raise OpError(f"order {order['ord_num']} is {order['ord_status']} (cancelled or closed): cannot {action}")


@op("confirm")
def confirm(t: Tenant, params: dict[str, Any]) -> None:
    before, order = load_order(t, params)
    if order["ord_status"] != "E":
        raise OpError(f"order {order['ord_num']} is {order['ord_status']}, only an entered (E) order is confirmed")
    order["ord_status"] = "O"
    order["confirm_date"] = t.now()
    t.save_order(before, order)


@op("amend")
def amend(t: Tenant, params: dict[str, Any]) -> None:
    before, order = load_order(t, params)
    open_only(order, "amend")
    for i, change in enumerate(params.get("lines", [])):
        line = line_of(order, need(change, "line_seq", int))
        qty = quantity(change.get("qty"), f"lines[{i}]")
        if qty < line["pick_qty"] + line["cancel_qty"]:
            raise OpError(f"order {order['ord_num']} line {line['line_seq']}: {qty} is below what is picked")
        line["ord_qty"] = qty
    rows = order["orderdetail"]["rows"]
    if params.get("add_lines"):
        rows.extend(build_lines(t, params["add_lines"], max(r["line_seq"] for r in rows) + 1, "add_lines"))
    for addr_type, key in (("BT", "bill_to"), ("ST", "ship_to")):
        for row in order["orderaddress"]["rows"]:
            if row["addr_type"] == addr_type and isinstance(params.get(key), dict):
                row.update({k: v for k, v in params[key].items() if k in row})
    order.update(order_amounts(rows, order["ord_type"] == "WEB", 0.1 if order["disc_code"] else 0.0))
    t.save_order(before, order)


@op("hold")
def hold(t: Tenant, params: dict[str, Any]) -> None:
    before, order = load_order(t, params)
    open_only(order, "hold")
    order["ord_status"] = "H"
    order["hold_reason"] = str(params.get("reason", "CREDIT"))
    t.save_order(before, order)


@op("release")
def release(t: Tenant, params: dict[str, Any]) -> None:
    before, order = load_order(t, params)
    if order["ord_status"] != "H":
        raise OpError(f"order {order['ord_num']} is not on hold")
    order["ord_status"] = "O" if order["confirm_date"] else "E"
    order["hold_reason"] = ""
    settle(order)
    t.save_order(before, order)


@op("cancel")
def cancel(t: Tenant, params: dict[str, Any]) -> None:
    before, order = load_order(t, params)
    open_only(order, "cancel")
    for line in order["orderdetail"]["rows"]:
        line["cancel_qty"] = line["ord_qty"] - line["pick_qty"]
    order["ord_status"] = "O" if order["ord_status"] == "H" else order["ord_status"]
    order["cancel_reason"] = str(params.get("reason", "CUSTOMER REQUEST"))
    settle(order)
    if not any(line["pick_qty"] for line in order["orderdetail"]["rows"]):
        order["ord_status"] = "X"
    t.save_order(before, order)


@op("cancel_line")
def cancel_line(t: Tenant, params: dict[str, Any]) -> None:
    before, order = load_order(t, params)
    open_only(order, "cancel a line")
    line = line_of(order, need(params, "line_seq", int))
    left = line["ord_qty"] - line["cancel_qty"] - line["pick_qty"]
    qty = quantity(params.get("qty", left), "qty") if left else 0
    if qty > left:
        raise OpError(f"order {order['ord_num']} line {line['line_seq']}: only {left} can still be cancelled")
    line["cancel_qty"] += qty
    order.update(
        order_amounts(order["orderdetail"]["rows"], order["ord_type"] == "WEB", 0.1 if order["disc_code"] else 0.0)
    )
    settle(order)
    t.save_order(before, order)


# --- fulfilment --------------------------------------------------------------------------------
def create_pick(t: Tenant, params: dict[str, Any]) -> dict[str, Any]:
    before, order = load_order(t, params)
    if order["ord_status"] not in ("O", "P"):
        raise OpError(f"order {order['ord_num']} is {order['ord_status']}: only confirmed orders (O, P) are picked")
    wanted = params.get("lines")
    chosen: list[tuple[dict[str, Any], int]] = []
    for line in order["orderdetail"]["rows"]:
        left = line["ord_qty"] - line["cancel_qty"] - line["pick_qty"]
        if wanted is None:
            qty = left
        else:
            asked = [w for w in wanted if isinstance(w, dict) and w.get("line_seq") == line["line_seq"]]
            qty = quantity(asked[0].get("qty"), f"line {line['line_seq']}") if asked else 0
        if qty > left:
            raise OpError(f"order {order['ord_num']} line {line['line_seq']}: {qty} asked, {left} left to pick")
        if qty:
            chosen.append((line, qty))
    if not chosen:
        raise OpError(f"order {order['ord_num']}: nothing left to pick")
    for line, qty in chosen:
        line["pick_qty"] += qty
    pick_num = str(t.next_number("pick"))
    pick = pick_body(order, pick_num, chosen, t.now())
    t.save_order(before, order)  # releases the reservation ...
    return t.save_pick(None, pick)  # ... and puts the same units on the pick ticket


@op("pick")
def pick_op(t: Tenant, params: dict[str, Any]) -> None:
    create_pick(t, params)


@op("void_pick")
def void_pick(t: Tenant, params: dict[str, Any]) -> None:
    pick = t.load("pick", str(need(params, "pick_num", (str, int))), "pick ticket")
    if pick["pick_status"] != "O":
        raise OpError(f"pick ticket {pick['pick_num']} is {pick['pick_status']}: only open tickets are voided")
    before_pick = copy.deepcopy(pick)
    before, order = load_order(t, {"ord_num": pick["ord_num"]})
    for row in pick["pickdetail"]["rows"]:
        line_of(order, row["line_seq"])["pick_qty"] -= row["total_qty"]
    pick["pick_status"] = "X"
    t.save_pick(before_pick, pick)
    t.save_order(before, order)


@op("ship")
def ship(t: Tenant, params: dict[str, Any]) -> None:
    if "pick_num" in params:
        pick = t.load("pick", str(params["pick_num"]), "pick ticket")
        if pick["pick_status"] != "O":
            raise OpError(f"pick ticket {pick['pick_num']} is {pick['pick_status']}: only open tickets ship")
    else:
        pick = create_pick(t, params)
    pick = {k: v for k, v in pick.items() if k not in ("pkey", "last_mod")}
    before_pick = copy.deepcopy(pick)
    before, order = load_order(t, {"ord_num": pick["ord_num"]})
    now = t.now()
    pick.update(
        pick_status="S",
        ship_date=now,
        end_date=now,
        shipper=str(params.get("carrier", CARRIERS[int(pick["pick_num"]) % len(CARRIERS)])),
    )
    pick["tracking_num"] = str(params.get("tracking_num", f"1Z{int(pick['pick_num']) * 7919:016d}"))
    for row in pick["pickdetail"]["rows"]:
        line_of(order, row["line_seq"])["ship_qty"] += row["total_qty"]
        t.move_stock(row["upc"], pick["location"], on_hand=-row["total_qty"])
    if params.get("invoice", True):
        invoice_pick(t, order, pick)
    t.save_pick(before_pick, pick)
    settle(order)
    t.save_order(before, order)


def invoice_pick(t: Tenant, order: dict[str, Any], pick: dict[str, Any]) -> None:
    first = not any(line["inv_qty"] for line in order["orderdetail"]["rows"])
    inv_num = str(t.next_number("invoice"))
    t.save("invoice", inv_num, invoice_body(pick, order, inv_num, t.now(), first))
    pick["inv_num"] = inv_num
    for row in pick["pickdetail"]["rows"]:
        line_of(order, row["line_seq"])["inv_qty"] += row["total_qty"]


@op("invoice")
def invoice_op(t: Tenant, params: dict[str, Any]) -> None:
    pick = t.load("pick", str(need(params, "pick_num", (str, int))), "pick ticket")
    if pick["pick_status"] != "S" or pick["inv_num"]:
        raise OpError(f"pick ticket {pick['pick_num']} is not shipped-and-uninvoiced")
    before, order = load_order(t, {"ord_num": pick["ord_num"]})
    invoice_pick(t, order, pick)
    t.save("pick", pick["pick_num"], pick)
    settle(order)
    t.save_order(before, order)


@op("credit_memo")
def credit_memo(t: Tenant, params: dict[str, Any]) -> None:
    invoice = t.load("invoice", str(need(params, "inv_num", (str, int))), "invoice")
    amount = need(params, "amount", (int, float))
    if amount <= 0 or amount > invoice["total_amt"]:
        raise OpError(f"invoice {invoice['inv_num']}: amount {amount} outside (0, {invoice['total_amt']}]")
    reason = reason_of(params, CREDIT_REASONS)
    memo_date = memo_date_of(params, t.now())
    memo_num = str(t.next_number("memo"))
    t.save("creditmemo", memo_num, memo_body(memo_num, invoice, memo_date, "C", reason, False, [], float(amount)))


def memo_date_of(params: dict[str, Any], now: str) -> str:
    """`memo_date` (tenant-local `YYYY-MM-DD HH:MM:SS`, not after now): a memo dated earlier than it is
    entered, as a backdated credit is; default now. Its `last_mod` is now either way."""
    if "memo_date" not in params:
        return now
    text = need(params, "memo_date")
    try:
        datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise OpError(f"'memo_date' is not 'YYYY-MM-DD HH:MM:SS': {text!r}") from None
    if text > now:
        raise OpError(f"'memo_date' {text} is after now ({now})")
    return str(text)


@op("return")
def return_op(t: Tenant, params: dict[str, Any]) -> None:
    invoice = t.load("invoice", str(need(params, "inv_num", (str, int))), "invoice")
    wanted = params.get("lines")
    returned = []
    for row in invoice["invoicedetail"]["rows"]:
        asked = (
            row["inv_qty"]
            if wanted is None
            else next(
                (
                    quantity(w.get("qty"), f"line {row['line_seq']}")
                    for w in wanted
                    if isinstance(w, dict) and w.get("line_seq") == row["line_seq"]
                ),
                0,
            )
        )
        if asked > row["inv_qty"]:
            raise OpError(f"invoice {invoice['inv_num']} line {row['line_seq']}: {asked} > {row['inv_qty']} invoiced")
        if asked:
            returned.append((row, asked))
    if not returned:
        raise OpError(f"invoice {invoice['inv_num']}: no lines to return")
    restock = bool(params.get("restock", True))
    memo_num = str(t.next_number("memo"))
    memo = memo_body(memo_num, invoice, t.now(), "R", reason_of(params, RETURN_REASONS), restock, returned)
    location = str(params.get("location", invoice["location"]))
    memo["location"] = location
    if restock:
        for row, qty in returned:
            t.move_stock(row["upc"], location, on_hand=qty)
    t.save("creditmemo", memo_num, memo)


def reason_of(params: dict[str, Any], known: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    code = str(params.get("reason_code", known[0][0]))
    return code, str(params.get("reason_desc", dict(known).get(code, code)))


# --- stock and catalog -------------------------------------------------------------------------
@op("adjust_stock")
def adjust_stock(t: Tenant, params: dict[str, Any]) -> None:
    upc = str(need(params, "upc", (str, int)))
    location = str(params.get("location", "WH1"))
    if "qty_oh" in params:
        row = t.store.get("inventory", f"{upc}@{location}")
        delta = int(params["qty_oh"]) - (row.body["qty_oh"] if row else 0)
    else:
        delta = int(need(params, "delta", int))
    t.sku(upc)
    if delta == 0:
        row = t.store.get("inventory", f"{upc}@{location}")
        if row is not None:
            t.touch_rows("inventory", [row])
        return
    t.move_stock(upc, location, on_hand=delta)


@op("edit_style")
def edit_style(t: Tenant, params: dict[str, Any]) -> None:
    style = str(need(params, "style", (str, int)))
    body = t.load("style", style, "style")
    for key, value in params.get("fields", {}).items():
        if key not in STYLE_FIELDS:
            raise OpError(f"style field '{key}' cannot be edited here (editable: {', '.join(STYLE_FIELDS)})")
        body[key] = value
    rows = body["stylecolorsizes"]["rows-i"]
    for i, change in enumerate(params.get("skus", [])):
        match = [r for r in rows if r["upc"] == change.get("upc")]
        if not match:
            raise OpError(f"skus[{i}]: style {style} has no SKU with upc {change.get('upc')!r}")
        for key in change:
            if key != "upc" and key not in SKU_EDIT_FIELDS:
                raise OpError(f"skus[{i}]: SKU field '{key}' cannot be edited (editable: {SKU_EDIT_FIELDS})")
        match[0].update({k: v for k, v in change.items() if k != "upc"})
    body["styledetail"]["rows"][0].update(division=body["division"], season=body["season"])
    for row in rows:
        sku = t.sku(row["upc"])
        sku.update(
            status=row["status"],
            retail_price=row["retail_price"],
            color_name=row["color_name"],
            style_name=body["style_name"],
            style_desc=body["style_desc"],
            season=body["season"],
            division=body["division"],
            brand=body["group_code1"],
        )
        t.store.put_sku(row["upc"], style, sku)
    t.save("style", style, body)


@op("create_style")
def create_style(t: Tenant, params: dict[str, Any]) -> None:
    """Adds a style from a header and SKU list; its SKUs get inventory rows on their first movement."""
    header = need(params, "header", dict)
    skus = need(params, "skus", list)
    for sku in skus:
        t.store.put_sku(sku["upc"], header["style"], sku)
    t.save("style", header["style"], style_body(header, skus))


# --- faults as operations ----------------------------------------------------------------------
@op("burst")
def burst(t: Tenant, params: dict[str, Any]) -> None:
    """``count`` records sharing one last_mod second: new customers, or touches of existing records."""
    resource = str(params.get("resource", "customer"))
    count = quantity(params.get("count", 300), "count")
    t.stamp = t.now()
    try:
        if resource == "customer":
            for _ in range(count):
                create_customer(t, {})
        else:
            t.touch_rows(resource, t.store.oldest(resource, count))
    finally:
        t.stamp = None


@op("touch")
def touch(t: Tenant, params: dict[str, Any]) -> None:
    resource = str(need(params, "resource"))
    if "pkeys" in params:
        rows = [r for p in params["pkeys"] if (r := t.store.get_pkey(resource, int(p))) is not None]
    else:
        rows = t.store.oldest(resource, quantity(params.get("count", 1), "count"))
    t.touch_rows(resource, rows)


def apply_ops(t: Tenant, ops: Any) -> list[dict[str, Any]]:
    """Apply a list of ops in one transaction: all or nothing. Returns every record touched."""
    if not isinstance(ops, list):
        raise OpError('the body must be a JSON list of operations (or {"ops": [...]})')
    with t.store.lock:
        t.store.begin()
        try:
            for i, item in enumerate(ops):
                name = item.get("op") if isinstance(item, dict) else None
                if name not in OPS:
                    raise OpError(f"op #{i}: unknown op {name!r} (known: {', '.join(sorted(OPS))})")
                try:
                    OPS[name](t, item)
                except OpError as exc:
                    raise OpError(f"op #{i} ({name}): {exc}") from None
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise OpError(f"op #{i} ({name}): bad input: {exc!r}") from None
            t.store.commit()
        except BaseException:
            t.store.rollback()
            t.touched = {}
            raise
    return t.take_touched()
