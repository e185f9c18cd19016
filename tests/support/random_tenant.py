"""Blue Cherry tenants generated from concepts, for the suggester's property tests: a customer has a code, an
e-mail-like value, a phone-like value, Y/N consent flags; an order has a number, points at a customer and has
line rows; picks, invoices and credit memos point at orders (and at each other the way Blue Cherry documents
do); styles have a SKU matrix, inventory rows name styles and warehouses, warehouses carry a sellable flag.

What is drawn is everything a tenant's integrator chooses: resource paths (readable or opaque), column names
(from this module's own vocabulary of ERP habits - words, abbreviations, file prefixes - rendered snake,
UPPER, camelCase or PascalCase, some opaque like FLD07), column order, and value shapes (padded codes, e-mails
upper or lower case, phones in five layouts, flags Y/N, y/n, 1/0, T/F, true/false or JSON booleans, dates in
ISO, US, European or dotted forms, numbers as JSON numbers or strings, envelopes, flat or row addresses).
`GeneratedTenant.truth` holds the mapping keys a suggester must get right.

This vocabulary is written apart from `sync.onboarding.concepts` on purpose: the names here are what tenants
are called in the wild, not what the suggester knows.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from sync.onboarding.suggest import Sample

OPAQUE = ("<opaque>",)

# concept -> ways tenants name it (each a tuple of words); OPAQUE = a meaningless column name
NAMES: dict[str, list[tuple[str, ...]]] = {
    "key": [("pkey",), ("rrn",), ("id",), ("rec", "id"), ("row", "id"), ("record", "key")],
    "stamp": [("last", "mod"), ("chg", "stamp"), ("upd", "ts"), ("modified",), ("last", "updated"),
              ("change", "date"), ("lmd",), ("maint", "ts"), ("updated", "at")],
    "cust_code": [("customer",), ("cust", "code"), ("cust", "no"), ("customer", "number"), ("account",),
                  ("acct", "no"), ("client", "id"), ("cusno",), OPAQUE],
    "email": [("email",), ("email", "address"), ("e", "mail"), ("eml", "addr"), ("mail",), ("contact", "email"),
              ("emailaddr",), OPAQUE],
    "phone": [("phone",), ("phone", "number"), ("tel",), ("telephone",), ("phone", "nbr"), ("mobile",),
              ("cell", "phone"), OPAQUE],
    "email_channel": [("email",), ("eml",), ("e", "mail"), ("mail",), ("em",)],
    "sms_channel": [("sms",), ("text",), ("txt",), ("sms", "mkt")],
    "consent": [("opt", "in"), ("optin",), ("consent",), ("opt",), ("ok",), ("subscribed",), ("marketing",),
                ("mkt", "ok"), ("allow",)],
    "delete": [("del", "flag"), ("deleted",), ("delete", "flag"), ("purge",), ("del",)],
    "first": [("first", "name"), ("fst", "name"), ("fname",), ("given", "name")],
    "last": [("last", "name"), ("lst", "name"), ("lname",), ("surname",)],
    "full": [("name",), ("cust", "name"), ("customer", "name"), ("full", "name")],
    "created": [("created",), ("open", "dt"), ("create", "date"), ("since",), ("added", "on")],
    "order_no": [("order", "no"), ("ord", "num"), ("order",), ("so", "number"), ("order", "id"), ("sales", "order"),
                 OPAQUE],
    "order_cust": [("customer",), ("cust", "code"), ("cust", "no"), ("account",), ("sold", "to"), ("bill", "to")],
    "order_status": [("status",), ("ord", "status"), ("order", "stat"), ("stat",)],
    "confirm": [("confirm", "date"), ("conf", "dt"), ("confirmed",), ("approved", "on")],
    "lines": [("lines",), ("detail",), ("soline",), ("items",), ("order", "lines"), ("dtl",)],
    "line_no": [("line", "seq"), ("line", "no"), ("ln",), ("seq",), ("line",)],
    "style": [("style",), ("style", "no"), ("item",), ("article",), ("sty", "cd")],
    "color": [("color",), ("color", "code"), ("colour",), ("clr",)],
    "size": [("size",), ("size", "cd"), ("sz",), ("size", "desc")],
    "upc": [("upc",), ("ean",), ("barcode",), ("gtin",)],
    "price": [("price",), ("unit", "price"), ("unit", "prc"), ("sell", "price")],
    "qty": [("qty",), ("quantity",), ("ord", "qty"), ("qty", "ord"), ("units",)],
    "pick_no": [("pick", "no"), ("pick", "num"), ("ticket",), ("pick",), OPAQUE],
    "inv_no": [("inv", "no"), ("invoice", "num"), ("invoice",), ("bill", "no"), OPAQUE],
    "memo_no": [("memo", "no"), ("credit", "no"), ("cm", "num"), ("memo",), OPAQUE],
    "ship_date": [("ship", "date"), ("ship", "dt"), ("shipped", "on"), ("dispatch", "date")],
    "tracking": [("tracking", "num"), ("track", "no"), ("tracking",), ("awb",)],
    "carrier": [("carrier",), ("shipper",), ("ship", "via")],
    "total": [("total",), ("total", "amt"), ("inv", "total"), ("amount",)],
    "reason": [("reason",), ("reason", "desc"), ("rsn", "text")],
    "restock": [("restock",), ("restock", "fl"), ("return", "to", "stock")],
    "skus": [("skus",), ("variants",), ("stylesku",), ("sku", "matrix"), ("items",)],
    "style_name": [("style", "name"), ("descr",), ("title",), ("name",)],
    "warehouse": [("warehouse",), ("whse", "code"), ("location",), ("wh",), ("site",)],
    "on_hand": [("qty", "oh"), ("on", "hand"), ("qoh",), ("stock",)],
    "available": [("qty", "avail"), ("available",), ("avail", "qty"), ("free",)],
    "open": [("qty", "open"), ("open", "orders"), ("on", "order")],
    "wh_name": [("name",), ("whse", "name"), ("description",), ("loc", "name")],
    "sellable": [("sellable",), ("sell", "fl"), ("ecom", "ok"), ("available", "for", "sale")],
}
PATHS: dict[str, list[str]] = {
    "customer": ["customer", "CustomerMaster", "CUSTMAST", "customers", "Client", "accounts"],
    "order": ["order", "SalesOrder", "ORDHDR", "orders", "so_header"],
    "pick": ["pick", "PickTicket", "PICKHDR", "shipments", "picktickets"],
    "invoice": ["invoice", "Invoice", "INVHDR", "invoices", "billing"],
    "creditmemo": ["creditmemo", "CreditMemo", "CRMEMO", "returns", "credits"],
    "style": ["style", "StyleMaster", "STYLEMST", "products", "items"],
    "inventory": ["inventory", "ItemAvailability", "INVBAL", "stock", "availability"],
    "location": ["Location", "Warehouse", "WHSMST", "sites", "warehouses"],
}
ROLES = tuple(PATHS)
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"]
LAST_NAMES = ["Abbott", "Brooks", "Chen", "Dubois", "Evans", "Fischer", "García", "Haddad", "Ito", "Jones"]
AREA_CODES = ["212", "312", "415", "617", "646", "718", "917", "213", "305", "404"]
PHONE_LAYOUTS = ["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}{b}{c}", "+1 {a} {b} {c}", "{a}.{b}.{c}"]
FLAG_STYLES: list[tuple[Any, Any]] = [("Y", "N"), ("y", "n"), ("1", "0"), ("T", "F"), ("true", "false"),
                                      (True, False), ("YES", "NO")]
DATE_STYLES = {
    "iso": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
    "iso_t": ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"),
    "us": ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y"),
    "eu_dot": ("%d.%m.%Y %H:%M", "%d.%m.%Y"),
    "eu_slash": ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y"),
}


@dataclass(frozen=True)
class Dialect:
    """Everything a tenant's integrator chose."""

    casing: str  # snake | upper | camel | pascal
    prefixes: bool  # IBM i habit: every column of a file starts with its file's two letters
    names: dict[str, tuple[str, ...]]  # concept -> the words chosen
    opaque_numbers: dict[str, int]
    paths: dict[str, str]
    flags: tuple[Any, Any]
    dates: str
    padded: bool
    upper_emails: bool
    phone_layout: str
    numbers_as_strings: bool
    flat_addresses: bool
    address_prefixes: tuple[str, str]
    envelopes: dict[str, str]
    not_found_404: bool
    customer_code_style: str
    order_number_style: str
    has_customer_status: bool
    has_pick_invoice_ref: bool
    rows_container: str  # rows | rows-i | list
    sampled: float = 1.0  # the share of each resource's records in the sample (the first ones, as a page reads)


@dataclass
class GeneratedTenant:
    dialect: Dialect
    samples: list[Sample]
    truth: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.dialect}\ntruth={self.truth}"


def _render(words: tuple[str, ...], casing: str, prefix: str, opaque: int) -> str:
    if words == OPAQUE:
        return f"FLD{opaque:02d}" if casing in ("upper", "pascal") else f"f{opaque:02d}"
    parts = ([prefix] if prefix else []) + list(words)
    if casing == "upper":
        return "_".join(parts).upper()
    if casing == "camel":
        return parts[0].lower() + "".join(p.capitalize() for p in parts[1:])
    if casing == "pascal":
        return "".join(p.capitalize() for p in parts)
    return "_".join(parts)


@st.composite
def dialects(draw: st.DrawFn) -> Dialect:
    names = {concept: draw(st.sampled_from(options)) for concept, options in NAMES.items()}
    # a column name chosen for one concept must not collide with another's
    return Dialect(
        casing=draw(st.sampled_from(["snake", "upper", "camel", "pascal"])),
        prefixes=draw(st.booleans()),
        names=names,
        opaque_numbers={concept: i for i, concept in enumerate(NAMES, start=1)},
        paths={role: draw(st.sampled_from([*PATHS[role], f"V{i:02d}"])) for i, role in enumerate(ROLES, start=1)},
        flags=draw(st.sampled_from(FLAG_STYLES)),
        dates=draw(st.sampled_from(sorted(DATE_STYLES))),
        padded=draw(st.booleans()),
        upper_emails=draw(st.booleans()),
        phone_layout=draw(st.sampled_from(PHONE_LAYOUTS)),
        numbers_as_strings=draw(st.booleans()),
        flat_addresses=draw(st.booleans()),
        address_prefixes=draw(st.sampled_from([("bill_", "ship_"), ("bt_", "st_"), ("billto_", "shipto_")])),
        envelopes={role: draw(st.sampled_from(["", "", "value", "result.items"])) for role in ROLES},
        not_found_404=draw(st.booleans()),
        customer_code_style=draw(st.sampled_from(["C{:07d}", "{:06d}", "CUST-{}", "A{:04d}X"])),
        order_number_style=draw(st.sampled_from(["{}", "SO-{:06d}", "W{:05d}"])),
        has_customer_status=draw(st.booleans()),
        has_pick_invoice_ref=draw(st.booleans()),
        rows_container=draw(st.sampled_from(["rows", "rows-i", "list"])),
        sampled=draw(st.sampled_from([1.0, 1.0, 0.6])),
    )


class _Writer:
    """Writes one tenant's records in its dialect."""

    FILE_PREFIXES = {"customer": "cm", "order": "oh", "pick": "ph", "invoice": "ih", "creditmemo": "cr",
                     "style": "sm", "inventory": "ib", "location": "wm", "line": "ol", "sku": "sk"}

    def __init__(self, dialect: Dialect, rnd: random.Random) -> None:
        self.d = dialect
        self.rnd = rnd
        self.base = datetime(2025, 3, 1, 9, 0, 0)

    def col(self, concept: str, file: str) -> str:
        prefix = self.FILE_PREFIXES[file] if self.d.prefixes else ""
        return _render(self.d.names[concept], self.d.casing, prefix, self.d.opaque_numbers[concept])

    def code(self, text: str, width: int = 10) -> str:
        return text.ljust(width) if self.d.padded else text

    def number(self, value: float, money: bool = False) -> Any:
        if self.d.numbers_as_strings:
            return f"{value:.2f}" if money else str(int(value))
        return round(value, 2) if money else int(value)

    def flag(self, yes: bool) -> Any:
        return self.d.flags[0] if yes else self.d.flags[1]

    def when(self, moment: datetime | None, with_time: bool = True) -> str:
        if moment is None:
            return ""
        stamp_format, date_format = DATE_STYLES[self.d.dates]
        return moment.strftime(stamp_format if with_time else date_format)

    def moment(self, days: float) -> datetime:
        return (self.base + timedelta(days=days, seconds=self.rnd.randint(0, 86_000))).replace(microsecond=0)

    def phone(self) -> str:
        digits = f"{self.rnd.choice(AREA_CODES)}{self.rnd.randint(200, 989)}{self.rnd.randint(1000, 9999)}"
        return self.d.phone_layout.format(a=digits[:3], b=digits[3:6], c=digits[6:])

    def rows(self, rows: list[dict[str, Any]]) -> Any:
        if self.d.rows_container == "list":
            return rows
        return {self.d.rows_container: rows}

    def address(self, first: str, last: str, email: str) -> dict[str, Any]:
        return {"name": f"{first} {last}", "addr1": f"{self.rnd.randint(1, 999)} Main St", "addr2": "",
                "city": self.rnd.choice(["Boston", "Austin", "Denver", "Portland"]),
                "state": self.rnd.choice(["MA", "TX", "CO", "OR"]), "zip": f"{self.rnd.randint(10000, 99999)}",
                "country": "US", "email": email}

    def put_addresses(self, record: dict[str, Any], bill: dict[str, Any], file: str) -> None:
        if self.d.flat_addresses:
            for prefix in self.d.address_prefixes:
                for name, value in bill.items():
                    record[_render((prefix.rstrip("_"), name), self.d.casing, "", 0)] = value
        else:
            record[_render(("addr",), self.d.casing, self.FILE_PREFIXES[file] if self.d.prefixes else "", 0)] = \
                self.rows([{"addr_type": kind, **bill} for kind in ("BT", "ST")])


def _shuffled_after_key(rnd: random.Random, record: dict[str, Any], keep_first: int) -> dict[str, Any]:
    """The record's columns with the first `keep_first` kept in place (bcapi puts pkey and the record's own
    number first) and the others shuffled."""
    items = list(record.items())
    head, tail = items[:keep_first], items[keep_first:]
    rnd.shuffle(tail)
    return dict(head + tail)


@st.composite
def tenants(draw: st.DrawFn) -> GeneratedTenant:
    dialect = draw(dialects())
    rnd = draw(st.randoms(use_true_random=False))
    build = _Build(_Writer(dialect, rnd), rnd)
    build.catalog()
    build.customers(draw(st.integers(6, 16)))
    build.orders(draw(st.integers(6, 16)))
    build.documents()
    return build.tenant()


class _Build:
    """One tenant's records, resource by resource, in its dialect."""

    def __init__(self, w: _Writer, rnd: random.Random) -> None:
        self.w = w
        self.d = w.d
        self.rnd = rnd
        self.records: dict[str, list[dict[str, Any]]] = {role: [] for role in ROLES}
        self.pkeys = iter(range(rnd.randint(1, 500), 10_000_000))
        self.skus: list[tuple[str, str, str, str]] = []
        self.customer_codes: list[str] = []
        self.order_numbers: list[str] = []

    def key(self) -> Any:
        value = next(self.pkeys)
        return value if not self.d.numbers_as_strings else str(value)

    def stamp(self, file: str) -> str:
        return self.w.col("stamp", file)

    def col(self, concept: str, file: str) -> str:
        return self.w.col(concept, file)

    def own(self, file: str, *words: str) -> str:
        """A column named in the dialect's casing and file prefix, not drawn (fax, terms, consent flags...)."""
        return _render(words, self.d.casing, _prefix(self.w, file), 0)

    def line(self, style: str, qty: int) -> dict[str, Any]:
        w = self.w
        return {self.col("line_no", "line"): w.number(1), self.col("style", "line"): w.code(style, 12),
                self.col("qty", "line"): w.number(qty), self.col("price", "line"): w.number(40.0, money=True)}

    # locations and styles first: documents and inventory name them
    def catalog(self) -> None:
        w, rnd = self.w, self.rnd
        warehouses = rnd.sample(["WH1", "WH2", "DC3", "QC", "RTN", "STORE9"], rnd.randint(3, 5))
        for code in warehouses:
            self.records["location"].append({
                self.col("key", "location"): self.key(), self.col("warehouse", "location"): w.code(code, 6),
                self.col("wh_name", "location"): f"{code} distribution centre",
                self.col("sellable", "location"): w.flag(code not in ("QC", "RTN")),
                self.stamp("location"): w.when(w.moment(0))})
        upc = 840_070_000_000 + rnd.randint(0, 9_999) * 100
        for s in range(rnd.randint(2, 4)):
            style = f"ST{1000 + s}"
            rows = []
            for color in rnd.sample(["BLK", "WHT", "NVY", "RED"], 2):
                for size in ("S", "M", "L"):
                    upc += 1
                    self.skus.append((style, color, size, str(upc)))
                    rows.append({self.col("color", "sku"): w.code(color, 5), self.col("size", "sku"): w.code(size, 5),
                                 self.col("upc", "sku"): str(upc), "retail_price": w.number(40 + s, money=True)})
            self.records["style"].append({
                self.col("key", "style"): self.key(), self.col("style", "style"): w.code(style, 12),
                self.col("style_name", "style"): f"Style number {s}", self.col("skus", "style"): w.rows(rows),
                self.stamp("style"): w.when(w.moment(5))})
        for style, color, size, code in self.skus:
            for wh in warehouses[:2]:
                self.records["inventory"].append({
                    self.col("key", "inventory"): self.key(), self.col("style", "inventory"): w.code(style, 12),
                    self.col("color", "inventory"): w.code(color, 5), self.col("size", "inventory"): w.code(size, 5),
                    self.col("upc", "inventory"): code, self.col("warehouse", "inventory"): w.code(wh, 6),
                    self.col("on_hand", "inventory"): w.number(rnd.randint(0, 90)),
                    self.col("available", "inventory"): w.number(rnd.randint(-2, 80)),
                    self.col("open", "inventory"): w.number(rnd.randint(0, 5)),
                    self.stamp("inventory"): w.when(w.moment(300))})

    def customers(self, count: int) -> None:
        w, rnd, d = self.w, self.rnd, self.d
        for c in range(count):
            code = d.customer_code_style.format(1000 + c)
            first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
            email = f"{_ascii(first)}.{_ascii(last)}{c}@example.com"
            email = email.upper() if d.upper_emails else email
            has_phone = rnd.random() < 0.8
            email_yes, sms_yes = rnd.random() < 0.5, has_phone and rnd.random() < 0.4
            created = w.moment(rnd.randint(0, 30))
            email_flag, sms_flag = _names_of(d, "email_channel"), _names_of(d, "sms_channel")
            record: dict[str, Any] = {
                self.col("key", "customer"): self.key(), self.col("cust_code", "customer"): w.code(code),
                self.col("full", "customer"): f"{first} {last}", self.col("first", "customer"): first,
                self.col("last", "customer"): last, self.col("email", "customer"): email,
                self.col("phone", "customer"): w.phone() if has_phone else "",
                self.col("created", "customer"): w.when(created, with_time=False),
                self.own("customer", *email_flag): w.flag(email_yes),
                self.own("customer", *email_flag, "date"): w.when(created + timedelta(days=2) if email_yes else None),
                self.own("customer", *sms_flag): w.flag(sms_yes),
                self.col("delete", "customer"): w.flag(rnd.random() < 0.05),
                # what every customer master also holds: a fax (phone-like, seldom filled), terms, a credit limit,
                # a fourth yes/no flag - lookalikes the suggester must not take for the phone or a consent flag
                self.own("customer", "fax"): w.phone() if rnd.random() < 0.2 else "",
                self.own("customer", "terms"): w.code(rnd.choice(["NET30", "CC"]), 6),
                self.own("customer", "credit", "limit"): w.number(5000.0, money=True),
                self.own("customer", "tax", "exempt"): w.flag(rnd.random() < 0.1),
            }
            if d.has_customer_status:
                record[self.own("customer", "status")] = rnd.choice(["A", "A", "I"])
            w.put_addresses(record, w.address(first, last, email), "customer")
            record[self.stamp("customer")] = w.when(created + timedelta(days=rnd.randint(3, 60)))
            self.records["customer"].append(_shuffled_after_key(rnd, record, 2))
            self.customer_codes.append(w.code(code))

    def orders(self, count: int) -> None:
        w, rnd = self.w, self.rnd
        for o in range(count):
            number = self.d.order_number_style.format(100_001 + o)
            confirmed = w.moment(40 + o)
            lines = []
            for n in range(1, rnd.randint(1, 3) + 1):
                style, color, size, code = rnd.choice(self.skus)
                lines.append({self.col("line_no", "line"): w.number(n), self.col("style", "line"): w.code(style, 12),
                              self.col("color", "line"): w.code(color, 5), self.col("size", "line"): w.code(size, 5),
                              self.col("upc", "line"): code, self.col("price", "line"): w.number(40.0, money=True),
                              self.col("qty", "line"): w.number(rnd.randint(1, 4))})
            record = {
                self.col("key", "order"): self.key(), self.col("order_no", "order"): number,
                self.col("order_cust", "order"): rnd.choice(self.customer_codes),
                self.col("order_status", "order"): rnd.choice(["O", "C", "X"]),
                self.col("confirm", "order"): w.when(confirmed), self.col("lines", "order"): w.rows(lines),
                self.stamp("order"): w.when(confirmed + timedelta(hours=5)),
            }
            self.records["order"].append(_shuffled_after_key(rnd, record, 2))
            self.order_numbers.append(number)

    def documents(self) -> None:
        """Picks for most orders, invoices for most picks, memos for a third of the invoices: each points at its
        order and at the document before it, as Blue Cherry's do."""
        w, rnd = self.w, self.rnd
        picked = self.order_numbers[: max(3, int(len(self.order_numbers) * 0.75))]
        invoiced = picked[: max(2, int(len(picked) * 0.7))]
        picks: dict[str, str] = {}
        invoices: dict[str, str] = {}
        style = self.skus[0][0]
        for i, number in enumerate(picked):
            picks[number] = f"P{500_001 + i}" if rnd.random() < 0.5 else str(500_001 + i)
            invoices[number] = f"{700_001 + i}" if number in invoiced else ""
            shipped = w.moment(60 + i)
            record = {self.col("key", "pick"): self.key(), self.col("pick_no", "pick"): picks[number],
                      self.col("order_no", "pick"): number,
                      self.col("ship_date", "pick"): w.when(shipped, with_time=False),
                      self.col("tracking", "pick"): f"1Z{rnd.randint(10**15, 10**16 - 1)}",
                      self.col("carrier", "pick"): w.code(rnd.choice(["UPS", "FEDEX"]), 6),
                      self.col("lines", "pick"): w.rows([self.line(style, 1)]),
                      self.stamp("pick"): w.when(shipped + timedelta(hours=2))}
            if self.d.has_pick_invoice_ref:
                record[self.col("inv_no", "pick")] = invoices[number]
            self.records["pick"].append(_shuffled_after_key(rnd, record, 2))
        for i, number in enumerate(invoiced):
            self.records["invoice"].append(_shuffled_after_key(rnd, {
                self.col("key", "invoice"): self.key(), self.col("inv_no", "invoice"): invoices[number],
                self.col("order_no", "invoice"): number, self.col("pick_no", "invoice"): picks[number],
                self.col("total", "invoice"): w.number(80.0, money=True),
                self.col("lines", "invoice"): w.rows([self.line(style, 1)]),
                self.stamp("invoice"): w.when(w.moment(70 + i))}, 2))
        for i, number in enumerate(invoiced[: max(1, len(invoiced) // 3)]):
            self.records["creditmemo"].append(_shuffled_after_key(rnd, {
                self.col("key", "creditmemo"): self.key(), self.col("memo_no", "creditmemo"): f"{900_001 + i}",
                self.col("order_no", "creditmemo"): number, self.col("inv_no", "creditmemo"): invoices[number],
                self.col("reason", "creditmemo"): "Did not fit", self.col("restock", "creditmemo"): w.flag(True),
                self.col("total", "creditmemo"): w.number(40.0, money=True),
                self.col("lines", "creditmemo"): w.rows([self.line(style, 1)]),
                self.stamp("creditmemo"): w.when(w.moment(90 + i))}, 2))

    def tenant(self) -> GeneratedTenant:
        d = self.d
        shown = {role: self.records[role][: max(1, round(len(self.records[role]) * d.sampled))] for role in ROLES}
        samples = [Sample(d.paths[role], tuple(shown[role]), d.envelopes[role], "404" if d.not_found_404 else "empty")
                   for role in ROLES]
        self.rnd.shuffle(samples)
        truth: dict[str, Any] = {f"resources.{role}.path": d.paths[role] for role in ROLES}
        truth |= {f"resources.{role}.key": self.col("key", role) for role in ROLES}
        truth |= {f"resources.{role}.last_mod": self.stamp(role) for role in ROLES}
        truth |= {
            "fields.customer.code": self.col("cust_code", "customer"),
            "fields.customer.email": self.col("email", "customer"),
            "fields.customer.phone": self.col("phone", "customer"),
            "fields.customer.email_optin": self.own("customer", *_names_of(d, "email_channel")),
            "fields.customer.sms_optin": self.own("customer", *_names_of(d, "sms_channel")),
            "fields.order.number": self.col("order_no", "order"),
            "fields.order.customer": self.col("order_cust", "order"),
        }
        first = self.records["customer"][0]
        assert all(name in first for key, name in truth.items() if key.startswith("fields.customer"))
        return GeneratedTenant(d, samples, truth)


def _names_of(dialect: Dialect, channel: str) -> tuple[str, ...]:
    """A consent flag's words: its channel, then its consent word ('email', 'opt', 'in')."""
    return dialect.names[channel] + dialect.names["consent"]


def _prefix(w: _Writer, file: str) -> str:
    return w.FILE_PREFIXES[file] if w.d.prefixes else ""


def _ascii(name: str) -> str:
    """An e-mail's local part from a name: accents dropped, lower case (Chloé -> chloe)."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
