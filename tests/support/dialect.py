"""A second tenant dialect for the parser tests, and a converter that writes a record of the default shape (the
sandbox's) in that dialect, driven by the two mappings alone: other field names, dates in the dialect's first
format, absent fields dropped, flat addresses, and cosmetic differences its normalisers undo (padding zeros and
spaces, the other letter case). Parsing a record and its twin must give the same typed result."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from config.mapping import AddressFields, FieldTable, LineFields, Mapping, load_mapping

# An IBM i tenant: upper-case names, MM/DD/YYYY dates, flat addresses, padded codes, no customer status, no
# order entry date, no memo date, shipped = a ship date is present.
DIALECT_TOML = """
[tenant]
date_formats = ["%m/%d/%Y %H:%M:%S", "%m/%d/%Y"]

[resources.customer]
path = "CUSTMAST"
key = "RRN"
last_mod = "CHGTS"
[resources.order]
path = "ORDHDR"
key = "RRN"
last_mod = "CHGTS"
[resources.pick]
path = "PICKHDR"
last_mod = "CHGTS"
[resources.invoice]
path = "INVHDR"
last_mod = "CHGTS"
[resources.creditmemo]
path = "CRMEMO"
last_mod = "CHGTS"
not_found = "empty"
[resources.style]
path = "STYLEMST"
last_mod = "CHGTS"
date_formats = ["%d.%m.%Y %H:%M"]
[resources.inventory]
path = "INVBAL"
last_mod = "CHGTS"
date_formats = ["%d.%m.%Y %H:%M"]

[fields.customer]
code = "CUSNO"
name = "CUSNM"
first_name = ""
last_name = ""
email = "EMAIL"
phone = "PHONE"
division = "DIV"
groups = ["CGRP", "CTYP"]
created = "CRTDT"
status = ""
email_optin = "EMLOPT"
email_optin_date = "EMLOPTDT"
email_optin_source = ""
sms_optin = "SMSOPT"
sms_optin_date = "SMSOPTDT"
sms_optin_source = ""
delete_flag = "DLTFLG"
normalise = { code = ["trim", "strip_leading_zeros"], division = ["upper"] }
[fields.customer.addresses]
layout = "flat"
bill_to_prefix = "BILL"
ship_to_prefix = "SHIP"
name = "NAME"
addr1 = "ADR1"
addr2 = "ADR2"
city = "CITY"
state = "STATE"
zipcode = "ZIP"
country = "CNTRY"
email = ""
phone = ""

[fields.order]
number = "ORDNO"
customer = "CUSNO"
ord_type = "ORDTYP"
division = "DIV"
sales_channel = "CHNL"
status = "ORDSTS"
entered = ""
confirmed = "CNFDT"
currency = "CURR"
discount_code = "DSCCD"
discount = "DSCAMT"
tax = "TAXAMT"
freight = "FRTAMT"
season = "SEASN"
warehouse = "WHSE"
storefront_ref = "WEBREF"
normalise = { number = ["trim", "strip_leading_zeros"], customer = ["trim", "strip_leading_zeros"] }
[fields.order.addresses]
layout = "flat"
bill_to_prefix = "B_"
ship_to_prefix = "S_"
name = "NAME"
addr1 = "ADR1"
addr2 = "ADR2"
city = "CITY"
state = "STATE"
zipcode = "ZIP"
country = "CNTRY"
email = "EMAIL"
phone = "PHONE"
[fields.order.lines]
rows = "ORDDTL"
line_seq = "LINSEQ"
style = "STYLE"
color_code = "COLOR"
lbl_code = "LABEL"
dimension = "DIMEN"
size_desc = "SIZE"
upc = "UPC"
price = "PRICE"
qty = "ORDQTY"
cancel_qty = "CNLQTY"
description = "DESC"
normalise = { style = ["trim", "upper"] }

[fields.pick]
number = "PCKNO"
order = "ORDNO"
status = ""
shipped_when = { field = "SHPDT", present = true }
ship_date = "SHPDT"
carrier = "CARR"
tracking = "TRKNO"
invoice = "INVNO"
normalise = { order = ["trim", "strip_leading_zeros"] }
[fields.pick.lines]
rows = "PCKDTL"
line_seq = "LINSEQ"
style = "STYLE"
qty = "PCKQTY"
cancel_qty = "BKOQTY"

[fields.invoice]
number = "INVNO"
order = "ORDNO"
date = "INVDT"
normalise = { order = ["trim", "strip_leading_zeros"] }
[fields.invoice.lines]
rows = "INVDTL"
qty = "INVQTY"

[fields.creditmemo]
number = "MEMONO"
order = "ORDNO"
date = ""
total = "MEMOAMT"
normalise = { order = ["trim", "strip_leading_zeros"] }
[fields.creditmemo.lines]
rows = "MEMODTL"
qty = "RETQTY"

[fields.style]
style = "STYLE"
name = "STYDSC"
normalise = { style = ["trim", "upper"] }

[fields.inventory]
style = "STYLE"
warehouse = "WHSE"
on_hand = "QTYOH"
normalise = { style = ["trim", "upper"], warehouse = ["trim"] }
"""

# The keys of each table that hold dates (written in the dialect's format).
DATE_KEYS: dict[str, frozenset[str]] = {
    "CustomerFields": frozenset({"created", "email_optin_date", "sms_optin_date"}),
    "OrderFields": frozenset({"entered", "confirmed"}),
    "PickFields": frozenset({"ship_date"}),
    "InvoiceFields": frozenset({"date"}),
    "CreditMemoFields": frozenset({"date"}),
}


def dialect_mapping(tmp_dir: Path) -> Mapping:
    path = tmp_dir / "dialect.toml"
    path.write_text(DIALECT_TOML, encoding="utf-8")
    return load_mapping(path)


def in_dialect(record: dict[str, Any], resource: str, dialect: Mapping, default: Mapping | None = None
               ) -> dict[str, Any]:
    """The default-shaped `record` of `resource` as the dialect's API would serve it."""
    default = default or Mapping()
    source, target = getattr(default.resources, resource), getattr(dialect.resources, resource)
    formats = dialect.date_formats(resource)
    out: dict[str, Any] = {target.key: record.get(source.key)}
    if source.last_mod in record:
        out[target.last_mod] = _date(record[source.last_mod], formats)
    out.update(_table(record, getattr(default.fields, resource), getattr(dialect.fields, resource), formats))
    return out


def _table(record: dict[str, Any], source: FieldTable, target: FieldTable, formats: tuple[str, ...]
           ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dates = DATE_KEYS.get(type(source).__name__, frozenset())
    for key in type(source).model_fields:
        src, dst = getattr(source, key), getattr(target, key)
        if isinstance(src, AddressFields):
            assert isinstance(dst, AddressFields)
            out.update(_addresses(record, src, dst))
        elif isinstance(src, LineFields):
            assert isinstance(dst, LineFields)
            rows = (record.get(src.rows) or {}).get("rows", [])
            out[dst.rows] = {"rows": [_table(row, src, dst, formats) for row in rows]}
        elif key == "groups":
            out.update({d: record.get(s) for s, d in zip(src, dst, strict=True)})
        elif key in type(source).field_keys() and dst and src in record:
            value = record[src]
            value = _date(value, formats) if key in dates else value
            out[dst] = _cosmetic(value, target.normalise.get(key, ()))
    return out


def _addresses(record: dict[str, Any], src: AddressFields, dst: AddressFields) -> dict[str, Any]:
    rows = (record.get(src.rows) or {}).get("rows", [])
    out: dict[str, Any] = {}
    for code, prefix in ((src.bill_to, dst.bill_to_prefix), (src.ship_to, dst.ship_to_prefix)):
        row = next((r for r in rows if r.get(src.addr_type) == code), None)
        if row is None:
            continue
        for key in type(src).field_keys():
            if key != "addr_type" and getattr(dst, key) and getattr(src, key) in row:
                out[f"{prefix}{getattr(dst, key)}"] = row[getattr(src, key)]
    return out


def _date(value: Any, formats: tuple[str, ...]) -> Any:
    if not isinstance(value, str) or not value.strip() or not formats:
        return value
    moment = datetime.fromisoformat(value)
    return moment.strftime(formats[0])


def _cosmetic(value: Any, steps: tuple[str, ...]) -> Any:
    """A value its normalisers give back: zero-padded, space-padded, in the other case."""
    if not isinstance(value, str) or not value:
        return value
    if "upper" in steps and value == value.upper():
        value = value.lower()
    if "lower" in steps and value == value.lower():
        value = value.upper()
    if "strip_leading_zeros" in steps:
        value = "00" + value
    if "trim" in steps:
        value = f"  {value} "
    return value
