"""Typed ERP order documents, parsed from Blue Cherry records through the tenant mapping.

Every field is read by the name `config.mapping` gives it; no ERP field name appears here. A parser
collects every problem of a record and raises `InvalidRecord` with them (record key, field, reason),
so one bad record becomes one clear exception instead of a crash or a silent guess.

Sign conventions: quantities and amounts on orders, picks and invoices must not be negative.
Credit memos are stored as negative credits by some ERPs and as positive refunds by others, so their
amounts and quantities are taken by magnitude.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping as AnyMapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict

from config.mapping import (
    AddressFields,
    CreditMemoFields,
    FieldTable,
    InvoiceFields,
    LineFields,
    Mapping,
    PickFields,
    ResourceMapping,
)
from sync.address import Address
from sync.fields import addresses, field_text, holds, normalised
from sync.localtime import LocalTimeError, parse_local
from sync.misfits import Misfit, unknown_status, unparseable_date
from sync.orders.problems import InvalidRecord, RecordProblem
from sync.orders.status import OrderStatus, classify_status

ZERO = Decimal("0")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class DocumentLine(Record):
    line_seq: str
    style: str
    color_code: str = ""
    lbl_code: str = ""
    dimension: str = ""
    size_desc: str = ""
    upc: str = ""
    price: Decimal = ZERO
    qty: int
    cancel_qty: int = 0
    description: str = ""

    @property
    def open_qty(self) -> int:
        return self.qty - self.cancel_qty


class OrderHeader(Record):
    key: str
    number: str
    customer: str
    ord_type: str = ""
    division: str = ""
    sales_channel: str = ""
    status_code: str
    status: OrderStatus
    entered: datetime | None  # None only when the mapping has no entry date and the order no confirmation date
    confirmed: datetime | None = None
    currency: str = ""
    discount_code: str = ""
    discount: Decimal = ZERO
    tax: Decimal = ZERO
    freight: Decimal = ZERO
    season: str = ""
    warehouse: str = ""
    storefront_ref: str = ""
    last_mod: datetime | None = None
    bill_to: Address | None = None
    ship_to: Address | None = None
    lines: tuple[DocumentLine, ...] = ()

    @property
    def record_key(self) -> str:
        return f"order:{self.number}"


class OrderDocument(Record):
    """What pick tickets, invoices and credit memos share: identity, order link, lines, version."""

    key: str
    number: str
    order: str
    last_mod: datetime | None = None
    lines: tuple[DocumentLine, ...] = ()


class PickTicket(OrderDocument):
    status: str = ""
    shipped: bool = False
    ship_date: datetime | None = None
    carrier: str = ""
    tracking: str = ""
    invoice: str = ""


class Invoice(OrderDocument):
    pick: str = ""
    date: datetime
    carrier: str = ""
    tracking: str = ""
    merchandise: Decimal = ZERO
    discount: Decimal = ZERO
    tax: Decimal = ZERO
    freight: Decimal = ZERO
    total: Decimal = ZERO


class CreditMemo(OrderDocument):
    invoice: str = ""
    date: datetime | None  # None only when the mapping has no memo date: see `sync.orders.memo_dates`
    reason_code: str = ""
    reason: str = ""
    restock: bool = False
    total: Decimal = ZERO
    tax: Decimal = ZERO
    freight: Decimal = ZERO


class OrderDocuments(Record):
    """Everything the desired-state function needs about one order: the latest version of each."""

    order: OrderHeader
    picks: tuple[PickTicket, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    credit_memos: tuple[CreditMemo, ...] = ()


# --- reading fields ------------------------------------------------------------------------------


class _Reader:
    """Reads named fields of one raw record and notes every problem instead of stopping at the first."""

    def __init__(self, raw: AnyMapping[str, Any], record_key: str, timezone: str,
                 formats: tuple[str, ...] = (), resource: str = "") -> None:
        self.raw = raw
        self.record_key = record_key
        self.timezone = timezone
        self.formats = formats  # the resource's date formats, tried after ISO (`Mapping.date_formats`)
        self.resource = resource or record_key.split(":", 1)[0]
        self.problems: list[RecordProblem] = []

    def problem(self, field: str, reason: str, *, kind: str = "invalid_record", misfit: Misfit | None = None) -> None:
        self.problems.append(RecordProblem(self.record_key, field, reason, kind, misfit))  # type: ignore[arg-type]

    def text(self, field: str, *, required: bool = False) -> str:
        text = field_text(self.raw, field)
        if required and not text:
            self.problem(field, "missing")
        return text

    def money(self, field: str, *, required: bool = False, magnitude: bool = False) -> Decimal:
        number = self._decimal(field, required=required)
        if number is None:
            return ZERO
        if magnitude:
            return abs(number)
        if number < 0:
            self.problem(field, f"negative amount {number}")
            return ZERO
        return number

    def quantity(self, field: str, *, required: bool = False, magnitude: bool = False) -> int:
        number = self._decimal(field, required=required)
        if number is None:
            return 0
        if magnitude:
            number = abs(number)
        if number != number.to_integral_value():
            self.problem(field, f"quantity {number} is not a whole number")
            return 0
        if number < 0:
            self.problem(field, f"negative quantity {number}")
            return 0
        return int(number)

    def when(self, field: str, *, required: bool = False) -> datetime | None:
        text = self.text(field, required=required)
        if not text:
            return None
        try:
            return parse_local(text, self.timezone, self.formats)
        except LocalTimeError as exc:
            record = self.record_key.split("/", 1)[0]  # a line's date is its document's
            self.problem(field, str(exc), misfit=unparseable_date(self.resource, field, text, record, self.formats))
            return None

    def flag(self, field: str, yes_values: tuple[str, ...]) -> bool:
        return self.text(field) in yes_values

    def rows(self, collection: str) -> list[AnyMapping[str, Any]]:
        """A child collection: `{"rows": [...]}` as the API serves it (a bare list is accepted too)."""
        value = self.raw.get(collection)
        if value is None:
            return []
        if isinstance(value, AnyMapping):
            value = value.get("rows", [])
        if not isinstance(value, list) or not all(isinstance(row, AnyMapping) for row in value):
            self.problem(collection, "child collection is not a list of records")
            return []
        return value

    def _decimal(self, field: str, *, required: bool) -> Decimal | None:
        value = self.raw.get(field) if field else None
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.problem(field, "missing")
            return None
        if isinstance(value, bool):
            self.problem(field, f"not a number: {value!r}")
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            self.problem(field, f"not a number: {value!r}")
            return None
        if not number.is_finite():
            self.problem(field, f"not a finite number: {value!r}")
            return None
        return number

    def done(self) -> None:
        if self.problems:
            raise InvalidRecord(self.problems)


def _record_key(raw: AnyMapping[str, Any], prefix: str, number_field: str, resource: ResourceMapping) -> str:
    ident = raw.get(number_field) or raw.get(resource.key) or "?"
    return f"{prefix}:{str(ident).strip()}"


def _lines(reader: _Reader, fields: LineFields, *, memo: bool = False) -> tuple[DocumentLine, ...]:
    lines: list[DocumentLine] = []
    seen: set[str] = set()
    for index, raw in enumerate(reader.rows(fields.rows)):
        seq = str(raw.get(fields.line_seq) or "").strip()
        line = _Reader(raw, f"{reader.record_key}/line:{seq or f'#{index + 1}'}", reader.timezone, reader.formats,
                       reader.resource)
        seq = line.text(fields.line_seq, required=True)
        if seq and seq in seen:
            line.problem(fields.line_seq, "duplicate line number")
        seen.add(seq)
        qty = line.quantity(fields.qty, required=True, magnitude=memo)
        cancel_qty = line.quantity(fields.cancel_qty, magnitude=memo)
        if not memo and fields.cancel_qty != fields.qty and cancel_qty > qty:
            line.problem(fields.cancel_qty, f"cancelled quantity {cancel_qty} exceeds quantity {qty}")
        parsed = DocumentLine(
            line_seq=seq,
            style=line.text(fields.style, required=True),
            color_code=line.text(fields.color_code),
            lbl_code=line.text(fields.lbl_code),
            dimension=line.text(fields.dimension),
            size_desc=line.text(fields.size_desc),
            upc=line.text(fields.upc),
            price=line.money(fields.price, required=not memo, magnitude=memo),
            qty=qty,
            cancel_qty=cancel_qty,
            description=line.text(fields.description),
        )
        reader.problems.extend(line.problems)
        lines.append(parsed)
    return tuple(lines)


def _address(raw: AnyMapping[str, Any], fields: AddressFields) -> Address:
    """Every field as text ("" when the row has none), read by the mapping's ERP names."""

    def text(field: str) -> str:
        return str((raw.get(field) if field else None) or "").strip()

    return Address(
        name=text(fields.name), address1=text(fields.addr1), address2=text(fields.addr2), city=text(fields.city),
        region=text(fields.state), zip=text(fields.zipcode), country=text(fields.country),
        email=text(fields.email), phone=text(fields.phone),
    )


def _addresses(reader: _Reader, fields: AddressFields) -> dict[str, Address]:
    """"bill_to" / "ship_to" -> the address (the first of each type; other address types are not ours)."""
    if fields.layout == "rows":
        reader.rows(fields.rows)  # a malformed collection is a problem of the record
    return {kind: _address(row, fields) for kind, row in addresses(reader.raw, fields).items()}


def _reader(raw: AnyMapping[str, Any], resource: str, prefix: str, number_field: str, mapping: Mapping,
            table: FieldTable) -> _Reader:
    """A reader of one record of `resource`: its normalised values, its date formats."""
    raw = normalised(raw, table)
    return _Reader(raw, _record_key(raw, prefix, number_field, getattr(mapping.resources, resource)),
                   mapping.tenant.timezone, mapping.date_formats(resource), resource)


# --- parsers -------------------------------------------------------------------------------------


def parse_order(raw: AnyMapping[str, Any], mapping: Mapping) -> OrderHeader:
    """A sales order header with its lines and addresses. Raises InvalidRecord."""
    f = mapping.fields.order
    resource = mapping.resources.order
    r = _reader(raw, "order", "order", f.number, mapping, f)
    status_code = r.text(f.status, required=True)
    status = classify_status(status_code, mapping.lifecycle) if status_code else None
    if status_code and status is None:
        known = [code for stage in OrderStatus for code in getattr(mapping.lifecycle, stage.value)]
        r.problem(f.status, f"unknown order status code {status_code!r} (not in mapping.lifecycle)",
                  misfit=unknown_status("order", f.status, status_code, r.record_key, known, "lifecycle"))
    found = _addresses(r, f.addresses)
    confirmed = r.when(f.confirmed)
    if f.entered:
        entered = r.when(f.entered, required=True)
    else:  # the tenant has no entry date: the confirmation date stands in (docs/configuration.md)
        entered = confirmed
        if confirmed is None and status in (OrderStatus.CONFIRMED, OrderStatus.CLOSED):
            r.problem(f.confirmed, "missing: a confirmed order needs its confirmation date when the mapping has "
                      "no entry date (fields.order.entered is absent)")
    values: dict[str, Any] = dict(
        key=r.text(resource.key) or r.text(f.number),
        number=r.text(f.number, required=True),
        customer=r.text(f.customer, required=True),
        ord_type=r.text(f.ord_type),
        division=r.text(f.division),
        sales_channel=r.text(f.sales_channel),
        status_code=status_code,
        entered=entered,
        confirmed=confirmed,
        currency=r.text(f.currency) or mapping.tenant.currency,
        discount_code=r.text(f.discount_code),
        discount=r.money(f.discount),
        tax=r.money(f.tax),
        freight=r.money(f.freight),
        season=r.text(f.season),
        warehouse=r.text(f.warehouse),
        storefront_ref=r.text(f.storefront_ref),
        last_mod=r.when(resource.last_mod),
        bill_to=found.get("bill_to"),
        ship_to=found.get("ship_to"),
        lines=_lines(r, f.lines),
    )
    r.done()
    assert status is not None  # an unknown or missing code was reported above
    return OrderHeader(status=status, **values)


def _document_basics(r: _Reader, f: PickFields | InvoiceFields | CreditMemoFields,
                     resource: ResourceMapping, *, memo: bool = False) -> dict[str, Any]:
    return dict(
        key=r.text(resource.key) or r.text(f.number),
        number=r.text(f.number, required=True),
        order=r.text(f.order, required=True),
        last_mod=r.when(resource.last_mod),
        lines=_lines(r, f.lines, memo=memo),
    )


def parse_pick(raw: AnyMapping[str, Any], mapping: Mapping) -> PickTicket:
    f: PickFields = mapping.fields.pick
    resource = mapping.resources.pick
    r = _reader(raw, "pick", "pick", f.number, mapping, f)
    status = r.text(f.status)
    if f.status_values and status and status not in f.status_values:  # the tenant listed its statuses: no guessing
        r.problem(f.status, f"unknown pick status {status!r} (not in fields.pick.status_values)",
                  misfit=unknown_status("pick", f.status, status, r.record_key, f.status_values,
                                        "fields.pick.status_values"))
    shipped = holds(f.shipped_when, r.raw) if f.shipped_when is not None else status == f.shipped_value
    values: dict[str, Any] = dict(
        **_document_basics(r, f, resource),
        status=status,
        shipped=shipped,
        ship_date=r.when(f.ship_date),
        carrier=r.text(f.carrier),
        tracking=r.text(f.tracking),
        invoice=r.text(f.invoice),
    )
    r.done()
    return PickTicket(**values)


def parse_invoice(raw: AnyMapping[str, Any], mapping: Mapping) -> Invoice:
    f: InvoiceFields = mapping.fields.invoice
    resource = mapping.resources.invoice
    r = _reader(raw, "invoice", "invoice", f.number, mapping, f)
    values: dict[str, Any] = dict(
        **_document_basics(r, f, resource),
        pick=r.text(f.pick),
        date=r.when(f.date, required=True),
        carrier=r.text(f.carrier),
        tracking=r.text(f.tracking),
        merchandise=r.money(f.merchandise),
        discount=r.money(f.discount),
        tax=r.money(f.tax),
        freight=r.money(f.freight),
        total=r.money(f.total),
    )
    r.done()
    return Invoice(**values)


def parse_credit_memo(raw: AnyMapping[str, Any], mapping: Mapping) -> CreditMemo:
    f: CreditMemoFields = mapping.fields.creditmemo
    resource = mapping.resources.creditmemo
    r = _reader(raw, "creditmemo", "creditmemo", f.number, mapping, f)
    values: dict[str, Any] = dict(
        **_document_basics(r, f, resource, memo=True),
        invoice=r.text(f.invoice),
        # no memo date in the mapping: None here, dated by `sync.orders.memo_dates` from ERP data
        date=r.when(f.date, required=True) if f.date else None,
        reason_code=r.text(f.reason_code),
        reason=r.text(f.reason),
        restock=r.flag(f.restock, mapping.fields.customer.yes_values),
        total=r.money(f.total, required=True, magnitude=True),
        tax=r.money(f.tax, magnitude=True),
        freight=r.money(f.freight, magnitude=True),
    )
    r.done()
    return CreditMemo(**values)


class ParsedDocuments(Record):
    """`documents` is None when the order header itself is unusable; bad child documents are left
    out (their events wait until the record is fixed) and reported in `problems`."""

    documents: OrderDocuments | None
    problems: tuple[RecordProblem, ...] = ()


def parse_order_documents(
    order: AnyMapping[str, Any] | None,
    mapping: Mapping,
    picks: Iterable[AnyMapping[str, Any]] = (),
    invoices: Iterable[AnyMapping[str, Any]] = (),
    credit_memos: Iterable[AnyMapping[str, Any]] = (),
    *,
    known_header: OrderHeader | None = None,
) -> ParsedDocuments:
    """Parse an order and its documents, never raising: problems are returned, record by record. Without the
    header's record, `known_header` stands in (an order whose documents were released: `sync.orders.compacted`)."""
    problems: list[RecordProblem] = []
    if order is None:
        if known_header is None:
            raise ValueError("parse_order_documents needs the order's record or a known header")
        header = known_header
    else:
        try:
            header = parse_order(order, mapping)
        except InvalidRecord as exc:
            return ParsedDocuments(documents=None, problems=exc.problems)

    def children(raws: Any, parse: Any, resource: str, order_field: str) -> tuple[Any, ...]:
        kept = []
        for raw in raws:
            try:
                doc = parse(raw, mapping)
            except InvalidRecord as exc:
                problems.extend(exc.problems)
                continue
            if doc.order != header.number:
                problems.append(RecordProblem(
                    f"{resource}:{doc.number}", order_field,
                    f"belongs to order {doc.order!r}, not {header.number!r}",
                ))
                continue
            kept.append(doc)
        return tuple(kept)

    documents = OrderDocuments(
        order=header,
        picks=children(picks, parse_pick, "pick", mapping.fields.pick.order),
        invoices=children(invoices, parse_invoice, "invoice", mapping.fields.invoice.order),
        credit_memos=children(credit_memos, parse_credit_memo, "creditmemo", mapping.fields.creditmemo.order),
    )
    return ParsedDocuments(documents=documents, problems=tuple(problems))
