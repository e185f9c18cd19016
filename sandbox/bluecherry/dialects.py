"""Tenant dialects: how one Blue Cherry tenant names and shapes its records (docs/sandbox.md, "Dialects").

Every Blue Cherry installation is customised: its bcapi views have their own resource and field names, and a
tenant on IBM i has that platform's habits (codes padded with spaces, Y/N flags, upper-case text, US dates,
numbers as strings). The sandbox keeps ONE internal model of the tenant - the `default` dialect's names and
values, built by records.py and moved by ops.py, live trading, faults and the clock - and a dialect only
changes what crosses the wire:

- ``render``: an internal record as the dialect serves it (REST pages, the dump, CSV cells);
- ``column``: a ``$filter`` field and value of the dialect read back into the internal model;
- ``read_op``: an op of ``/_sandbox/apply`` written with the dialect's names or values, read back.

So live trading, faults, paging and the dump behave the same in every dialect, and the same seeded tenant
holds the same facts whatever dialect serves it. A new dialect is a new `Dialect` instance in `DIALECTS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sandbox.bluecherry.clock import STAMP, parse_local

# How a value is written in the dialect (and read back from a filter or an op):
# text as is; code padded with spaces to `width`; email upper-case; phone digits only; stamp
# MM/DD/YYYY HH:MM:SS; date MM/DD/YYYY; money a string with two decimals; qty a whole number as a string;
# flag Y/N as is; status through the field's code table.
Kind = Literal["text", "code", "email", "phone", "stamp", "date", "money", "qty", "flag", "status"]
ISO_STAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}:\d{2}:\d{2}))?$")
US_STAMP = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T-](\d{1,2})[:.](\d{2})[:.](\d{2}))?$")
PHONE_CHARACTERS = re.compile(r"^[\d\s()+.\-]+$")


def us_stamp(value: str, with_time: bool = True) -> str:
    """``YYYY-MM-DD HH:MM:SS`` as ``MM/DD/YYYY HH:MM:SS`` (``with_time=False``: ``MM/DD/YYYY``). Rearranged as
    text, never parsed: an impossible date (the malformed fault) stays impossible, anything else passes as is."""
    match = ISO_STAMP.match(value)
    if match is None:
        return value
    day = f"{match[2]}/{match[3]}/{match[1]}"
    return f"{day} {match[4] or '00:00:00'}" if with_time else day


def internal_stamp(text: str) -> str:
    """A dialect time (US ``MM/DD/YYYY[ HH:MM:SS]``) or an ISO one, as the internal ``YYYY-MM-DD HH:MM:SS``.
    ISO is accepted too: a DB2 for i query takes a timestamp in ISO form whatever the job's display format."""
    match = US_STAMP.match(text.strip())
    if match is None:
        return parse_local(text.strip()).strftime(STAMP)
    month, day, year, hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second).strftime(STAMP)
    except ValueError:
        raise ValueError(f"'{text}' is not a date (MM/DD/YYYY HH:MM:SS)") from None


def _number(value: Any) -> float | int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"'{value}' is not a number") from None
    return int(number) if number.is_integer() and "." not in text else number


@dataclass(frozen=True)
class Field:
    """One field of the dialect: its name, the internal field it shows, and how its value is written."""

    name: str
    source: str = ""
    kind: Kind = "text"
    width: int = 0  # code: padded with trailing spaces to this width (an IBM i CHAR column)
    codes: tuple[tuple[str, str], ...] = ()  # status: (internal code, dialect code); unknown codes pass as is
    compute: Callable[[dict[str, Any]], Any] | None = None  # derived from the whole internal record instead

    def render(self, record: dict[str, Any]) -> Any:
        if self.compute is not None:
            return self.compute(record)
        value = record.get(self.source)
        if value is None:  # an IBM i column is always there: blank when the model has nothing
            value = ""
        return self.write(value)

    def write(self, value: Any) -> Any:  # noqa: C901 - one branch per kind, each a line
        kind = self.kind
        if kind == "code":
            return str(value).ljust(self.width)
        if kind == "email":
            return str(value).upper()
        if kind == "phone":
            text = str(value)
            return re.sub(r"\D", "", text) if PHONE_CHARACTERS.match(text) else text
        if kind in ("stamp", "date"):
            return us_stamp(str(value), with_time=kind == "stamp")
        if kind == "money":
            return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
        if kind == "qty":
            return str(value)
        if kind == "status":
            return dict(self.codes).get(str(value), value)
        return value

    def read(self, value: Any) -> Any:
        """A value written in the dialect (a filter's, an op's) as the internal model holds it."""
        kind = self.kind
        if kind in ("stamp", "date"):
            stamp = internal_stamp(str(value))
            return stamp if kind == "stamp" else stamp[:10]
        if kind in ("money", "qty"):
            return _number(value)
        if kind == "status":
            return {dialect: internal for internal, dialect in self.codes}.get(str(value).strip(), str(value).strip())
        return str(value).strip() if isinstance(value, str) else value


@dataclass(frozen=True)
class Child:
    """A child collection: ``{"<name>": {"rows": [...]}}`` (or ``"rows-i"`` for a SKU matrix)."""

    name: str
    source: str
    fields: tuple[Field, ...]
    key: str = "rows"


@dataclass(frozen=True)
class FlatAddresses:
    """Address rows (``addr_type`` BT / ST) held flat on the record: ``<prefix><field>`` per address type."""

    source: str
    prefixes: tuple[tuple[str, str], ...]  # (internal addr_type, prefix)
    fields: tuple[Field, ...]  # names after the prefix


@dataclass(frozen=True)
class Shape:
    """One resource of the dialect."""

    resource: str  # internal resource
    name: str  # the path it is served under: GET /api/<name>
    fields: tuple[Field, ...]
    children: tuple[Child, ...] = ()
    addresses: FlatAddresses | None = None
    envelope: str = "data.header"  # dotted path of the record list: {"data": {"header": [...]}}; "data": flat
    empty_404: bool = False  # a page without records answers 404 instead of an empty list


class Column(NamedTuple):
    """Where a ``$filter`` field lives in the store, and how its value is read into the internal model."""

    sql: str
    read: Callable[[Any], Any]


NEVER = Column("NULL", lambda value: value)  # a field the record does not have: no clause matches it


@dataclass(frozen=True)
class Dialect:
    """A tenant dialect. With no shapes it is the internal model itself (the `default` dialect)."""

    name: str
    description: str
    shapes: tuple[Shape, ...] = ()
    stamp_field: str = "last_mod"  # the record's last-modified stamp (a column of the store)
    stamp: Kind = "text"  # how that stamp is written
    csv_codes: dict[str, int] = field(default_factory=dict)  # CSV column -> width its codes are padded to
    csv_numbers: tuple[str, ...] = ()  # CSV columns written as IBM i edited numbers ("1,234", "5-")
    malformed_dates: dict[str, str | None] = field(default_factory=dict)  # resource -> internal date field
    # the impossible_date fault damages instead (None: the dialect shows no date there, so that fault is out)

    @property
    def identity(self) -> bool:
        return not self.shapes

    def shape(self, resource: str) -> Shape | None:
        return next((s for s in self.shapes if s.resource == resource), None)

    def served_name(self, resource: str) -> str:
        shape = self.shape(resource)
        return shape.name if shape else resource

    def resource_of(self, served: str) -> str | None:
        """The internal resource served under this path, or None when the dialect has no such resource."""
        if self.identity:
            return served
        return next((s.resource for s in self.shapes if s.name == served), None)

    def envelope(self, resource: str, default: str) -> str:
        """The dotted path of the record list in a page's body (``default``: the internal model's)."""
        shape = self.shape(resource)
        return shape.envelope if shape else default

    def header_children(self, resource: str) -> tuple[str, ...]:
        """Internal child collections the dialect shows as header fields (flat addresses)."""
        shape = self.shape(resource)
        return (shape.addresses.source,) if shape and shape.addresses else ()

    def empty_404(self, resource: str) -> bool:
        shape = self.shape(resource)
        return bool(shape and shape.empty_404)

    # --- the way out ----------------------------------------------------------------------------
    def render(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """An internal record (``pkey`` first, ``last_mod`` last) as the dialect serves it."""
        shape = self.shape(resource)
        if shape is None:
            return record
        out: dict[str, Any] = {"pkey": record["pkey"]}
        for f in shape.fields:
            out[f.name] = f.render(record)
        if shape.addresses is not None:
            out.update(flat_addresses(shape.addresses, record))
        for child in shape.children:
            container = record.get(child.source)
            if isinstance(container, dict):  # left out without _include=all: left out here too
                rows = container.get("rows", container.get("rows-i")) or []
                out[child.name] = {child.key: [{f.name: f.render(row) for f in child.fields} for row in rows]}
        out[self.stamp_field] = Field(self.stamp_field, "last_mod", self.stamp).render(record)
        return out

    def csv_cell(self, column: str, value: Any) -> Any:
        if column in self.csv_codes:
            return str(value).ljust(self.csv_codes[column])
        if column in self.csv_numbers and isinstance(value, int | float) and not isinstance(value, bool):
            return edited_number(value)
        return value

    # --- the way in -----------------------------------------------------------------------------
    def column(self, resource: str, name: str) -> Column | None:
        """A ``$filter`` field of the dialect: its column, NEVER for a field the record does not have, None for
        the internal model's own reading (the default dialect). ValueError: a field that cannot be filtered."""
        shape = self.shape(resource)
        if shape is None:
            return None
        if name == self.stamp_field:
            return Column("last_mod", lambda value: internal_stamp(_quoted(name, value)))
        if name == "pkey":
            return Column("pkey", int)
        found = next((f for f in shape.fields if f.name == name), None)
        if found is None:
            prefixed = shape.addresses and any(name.startswith(p) for _, p in shape.addresses.prefixes)
            if prefixed or any(c.name == name for c in shape.children):
                raise ValueError(f"'{name}' cannot be filtered (an address or child field)")
            return NEVER
        if found.compute is not None:
            raise ValueError(f"'{name}' cannot be filtered (a derived field)")
        path = f"json_extract(body, '$.{found.source}')"
        if found.kind == "email":  # emails compare case-insensitively, as the tenant upper-cases them
            return Column(f"upper({path})", lambda value: str(value).strip().upper())
        if found.kind == "date":
            return Column(f"substr({path}, 1, 10)", found.read)
        return Column(path, found.read)

    def read_op(self, op: Any) -> Any:
        """An op of /_sandbox/apply that may use the dialect's names and values, in the internal vocabulary:
        codes unpadded, the dialect's key names (``order_no``) and resource paths, US dates, the field names of
        ``edit_customer`` / ``edit_style`` and of address and line changes."""
        if self.identity or not isinstance(op, dict):
            return op
        out: dict[str, Any] = {}
        for key, value in op.items():
            internal = OP_KEYS.get(str(key), str(key))
            out[str(key) if internal in op else internal] = value.strip() if isinstance(value, str) else value
        if isinstance(out.get("resource"), str):
            out["resource"] = self.resource_of(out["resource"]) or out["resource"]
        if isinstance(out.get("memo_date"), str):
            out["memo_date"] = internal_stamp(out["memo_date"])
        self._read_fields(out)
        return out

    def _read_fields(self, op: dict[str, Any]) -> None:
        resource = {"edit_customer": "customer", "edit_style": "style"}.get(str(op.get("op")))
        shape = self.shape(resource) if resource else None
        if shape is not None and isinstance(op.get("fields"), dict):
            by_name = {f.name: f for f in shape.fields if f.source}
            op["fields"] = {(by_name[k].source if k in by_name else k): (by_name[k].read(v) if k in by_name else v)
                            for k, v in op["fields"].items()}
        if shape is not None and shape.children and isinstance(op.get("skus"), list):
            sku_fields = {f.name: f for c in shape.children if c.key == "rows-i" for f in c.fields}
            op["skus"] = [_renamed(sku, sku_fields) for sku in op["skus"]]
        addresses = self.shape("customer")
        if addresses is not None and addresses.addresses is not None:
            suffixes = {f.name: f for f in addresses.addresses.fields}
            for key in ("bill_to", "ship_to"):
                if isinstance(op.get(key), dict):
                    op[key] = _renamed(op[key], suffixes)
        order = self.shape("order")
        lines = {f.name: f for c in order.children for f in c.fields} if order else {}
        for key in ("lines", "add_lines"):
            if isinstance(op.get(key), list):
                op[key] = [_renamed(line, lines) if isinstance(line, dict) else line for line in op[key]]


def _renamed(values: dict[str, Any], fields: dict[str, Field]) -> dict[str, Any]:
    return {(fields[k].source if k in fields else k): (fields[k].read(v) if k in fields else v)
            for k, v in values.items()}


def _quoted(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} needs a quoted time, got {value!r}")
    return value


def flat_addresses(spec: FlatAddresses, record: dict[str, Any]) -> dict[str, Any]:
    """``bill_city``, ``ship_city``, ...: every prefix gets every field, blank when that row is missing."""
    container = record.get(spec.source)
    rows = container.get("rows", []) if isinstance(container, dict) else []
    by_type = {row.get("addr_type"): row for row in rows if isinstance(row, dict)}
    out: dict[str, Any] = {}
    for addr_type, prefix in spec.prefixes:
        row = by_type.get(addr_type, {})
        for f in spec.fields:
            out[f"{prefix}{f.name}"] = f.render(row)
    return out


def edited_number(value: float) -> str:
    """An IBM i edited number (edit code J-like): thousands separated, the minus sign trailing: ``1,234`` ``5-``."""
    text = f"{abs(value):,.2f}" if isinstance(value, float) and not value.is_integer() else f"{int(abs(value)):,}"
    return f"{text}-" if value < 0 else text


# --- the dialects --------------------------------------------------------------------------------------
def _code(name: str, source: str, width: int) -> Field:
    return Field(name, source, "code", width)


def _pick_status(record: dict[str, Any]) -> Any:
    """The ticket's paperwork, not its shipment: O open until invoiced (also once shipped), I invoiced, V void.
    Whether a ticket shipped shows only in its ship date."""
    status = record.get("pick_status")
    if status == "X":
        return "V"
    if status in ("O", "S"):
        return "I" if record.get("inv_num") else "O"
    return status  # the malformed fault's unknown status passes as it is


ORDER_CODES = (("E", "10"), ("O", "20"), ("P", "30"), ("H", "40"), ("X", "80"), ("C", "90"))
SKU = (_code("style_no", "style", 12), _code("color_cd", "color_code", 5), _code("label_cd", "lbl_code", 5),
       _code("dim_cd", "dimension", 5), _code("size_cd", "size_desc", 5), Field("upc", "upc"))
LINE = (Field("line_no", "line_seq", "qty"), *SKU, Field("descr", "style_name"))
PRICE = Field("unit_prc", "price", "money")
AMOUNTS = (Field("disc_amt", "disc_amt", "money"), Field("tax_amt", "tax_amt", "money"),
           Field("frt_amt", "frgt_amt", "money"))
WAREHOUSE = _code("whse_code", "location", 6)
CUSTOMER_CODE = _code("cust_code", "customer", 10)
ORDER_STATUS = Field("order_stat", "ord_status", "status", codes=ORDER_CODES)
ADDRESSES = (Field("name", "name"), Field("addr1", "addr1"), Field("addr2", "addr2"), Field("city", "city"),
             Field("state", "state"), Field("zip", "zipcode"), Field("cntry", "country"),
             Field("email", "email", "email"), Field("phone", "phone", "phone"), Field("contact", "contact"))


def _flat(source: str) -> FlatAddresses:
    return FlatAddresses(source, (("BT", "bill_"), ("ST", "ship_")), ADDRESSES)


IBMI = Dialect(
    name="ibmi",
    description="a Blue Cherry tenant on IBM i whose bcapi views its integrator customised",
    stamp_field="chg_stamp",
    stamp="stamp",
    shapes=(
        Shape("customer", "CustomerMaster", (
            CUSTOMER_CODE, Field("cust_name", "name"), Field("fst_name", "first_name"),
            Field("lst_name", "last_name"), Field("email_addr", "email", "email"), Field("phone_nbr", "phone", "phone"),
            _code("division", "division", 4), _code("cust_class", "cust_group", 6), _code("cust_type", "cust_type", 10),
            Field("open_dt", "created", "date"), Field("del_flag", "delete_flag", "flag"),
            _code("terms_code", "terms", 6), Field("curr_code", "curr_code"),
            Field("email_opt", "email_optin", "flag"), Field("email_opt_dt", "email_optin_date", "stamp"),
            Field("email_opt_src", "email_optin_source"), Field("sms_opt", "sms_optin", "flag"),
            Field("sms_opt_dt", "sms_optin_date", "stamp"), Field("sms_opt_src", "sms_optin_source"),
        ), addresses=_flat("custaddress"), empty_404=True),
        Shape("order", "SalesOrder", (
            Field("order_no", "ord_num"), CUSTOMER_CODE, Field("cust_po", "po_num"),
            Field("conf_dt", "confirm_date", "stamp"), _code("order_type", "ord_type", 4),
            _code("order_src", "sales_channel", 4), _code("division", "division", 4), _code("season", "season", 6),
            _code("dept_code", "department", 6), ORDER_STATUS, Field("hold_code", "hold_reason"),
            Field("cncl_code", "cancel_reason"), Field("curr_code", "curr_code"), Field("disc_code", "disc_code"),
            *AMOUNTS, WAREHOUSE, Field("ecom_ref", "web_ref"),
        ), children=(Child("soline", "orderdetail", (
            *LINE, Field("color_desc", "color_name"), PRICE, Field("qty_ord", "ord_qty", "qty"),
            Field("qty_cncl", "cancel_qty", "qty"), Field("qty_pick", "pick_qty", "qty"),
            Field("qty_ship", "ship_qty", "qty"), Field("qty_inv", "inv_qty", "qty"),
        )),), addresses=_flat("orderaddress"), empty_404=True),
        Shape("pick", "PickTicket", (
            Field("pick_no", "pick_num"), Field("order_no", "ord_num"), Field("cust_po", "po_num"),
            Field("pick_dt", "pick_date", "date"), Field("end_dt", "end_date", "date"),
            Field("ship_dt", "ship_date", "date"), Field("pick_stat", compute=_pick_status),
            _code("order_type", "ord_type", 4), ORDER_STATUS, CUSTOMER_CODE, _code("dept_code", "department", 6),
            Field("curr_code", "curr_code"), *AMOUNTS, _code("carrier", "shipper", 6),
            Field("track_no", "tracking_num"), WAREHOUSE, Field("inv_no", "inv_num"), Field("bol_no", "bill_num"),
            Field("pro_no", "pro_num"), Field("load_id", "load_id"),
        ), children=(Child("pkline", "pickdetail", (
            *LINE, PRICE, Field("qty_pick", "total_qty", "qty"), Field("qty_bo", "bk_qty", "qty"),
        )),), addresses=_flat("pickaddress"), empty_404=True),
        Shape("invoice", "Invoice", (
            Field("inv_no", "inv_num"), Field("order_no", "ord_num"), Field("pick_no", "pick_num"),
            Field("inv_dt", "inv_date", "date"), CUSTOMER_CODE, _code("order_type", "ord_type", 4),
            Field("curr_code", "curr_code"), _code("carrier", "shipper", 6), Field("track_no", "tracking_num"),
            WAREHOUSE, Field("merch_amt", "merch_amt", "money"), *AMOUNTS, Field("inv_total", "total_amt", "money"),
        ), children=(Child("invline", "invoicedetail", (*LINE, PRICE, Field("qty_inv", "inv_qty", "qty"))),),
            empty_404=True),
        Shape("creditmemo", "CreditMemo", (  # no memo date: a memo is dated by when it was entered
            Field("memo_no", "memo_num"), _code("memo_type", "memo_type", 2), Field("order_no", "ord_num"),
            Field("inv_no", "inv_num"), CUSTOMER_CODE, Field("curr_code", "curr_code"),
            _code("rsn_code", "reason_code", 4), Field("rsn_desc", "reason_desc"),
            Field("restock_fl", "restock", "flag"), WAREHOUSE, Field("merch_amt", "merch_amt", "money"),
            Field("tax_amt", "tax_amt", "money"), Field("frt_amt", "frgt_amt", "money"),
            Field("memo_total", "total_amt", "money"),
        ), children=(Child("cmline", "memodetail", (*LINE, PRICE, Field("qty_ret", "ret_qty", "qty"))),),
            empty_404=True),
        Shape("style", "StyleMaster", (
            _code("style_no", "style", 12), Field("descr", "style_name"), Field("long_desc", "style_desc"),
            _code("brand_cd", "group_code1", 12), _code("categ_cd", "group_code2", 12),
            _code("gender_cd", "group_code3", 8), _code("fabric_cd", "group_code4", 10),
            _code("division", "division", 4), _code("season", "season", 6),
            Field("retail_prc", "retail_price", "money"), Field("style_stat", "status"),
            Field("size_range", "size_range"),
        ), children=(
            Child("styledtl", "styledetail", (_code("division", "division", 4), _code("season", "season", 6),
                                              Field("std_cost", "std_cost", "money"))),
            Child("stylesku", "stylecolorsizes", (
                Field("fkey", "fkey"), Field("upc", "upc"), Field("ean", "ean"), *SKU[1:5],
                Field("color_desc", "color_name"), Field("sku_stat", "status"),
                Field("retail_prc", "retail_price", "money"),
            ), key="rows-i"),
        ), empty_404=True),
        Shape("inventory", "ItemAvailability", (
            *SKU, WAREHOUSE, Field("qty_oh", "qty_oh", "qty"), Field("qty_pick", "qty_pick", "qty"),
            Field("qty_avail", "qty_avail", "qty"), Field("qty_open", "qty_open", "qty"),
            Field("qty_wip", "qty_wip", "qty"), Field("qty_recv", "qty_received", "qty"),
            Field("qty_invd", "qty_invoiced", "qty"),
        ), envelope="value", empty_404=True),  # a view of another (OData) service: {"value": [...]}
        Shape("Location", "Warehouse", (
            WAREHOUSE, Field("whse_name", "loc_name"), Field("whse_type", "loc_type"),
            _code("resv_whse", "resv_wh", 6), Field("sell_fl", "sellable", "flag"),
        ), envelope="data"),
    ),
    csv_codes={"Style": 12, "Color #": 5, "Label": 5, "Dm/Pk": 5, "Size": 5, "Location": 6, "Div": 4},
    csv_numbers=("Total QOH", "Total Pick", "Avail QOH", "Total Open", "Total Ship To WIP", "Total Received",
                 "Total Invoice", "Total Prod"),
    malformed_dates={"order": "confirm_date", "creditmemo": None},
)
DEFAULT = Dialect("default", "the internal model as served: names and values of records.py")
DIALECTS: dict[str, Dialect] = {d.name: d for d in (DEFAULT, IBMI)}
# op keys a test may write in the dialect's names (read as the internal key when that one is not given)
OP_KEYS = {"cust_code": "customer", "order_no": "ord_num", "pick_no": "pick_num", "inv_no": "inv_num",
           "memo_no": "memo_num", "style_no": "style", "whse_code": "location", "line_no": "line_seq"}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect '{name}' (known: {', '.join(DIALECTS)})") from None
