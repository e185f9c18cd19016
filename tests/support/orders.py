"""Raw Blue Cherry records for tests, in the shape the sandbox serves (children under {"rows": [...]}),
keyed by the mapping's field names, and a tiny ERP that moves one order through its life."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from config.mapping import Mapping
from sync.orders.records import OrderDocuments, parse_order_documents

START = datetime(2026, 3, 2, 9, 0, 0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Line:
    seq: int
    style: str
    color: str = "BLK"
    size: str = "M"
    price: str = "50.00"
    qty: int = 1
    cancel_qty: int = 0


@dataclass
class Shipment:
    number: str
    lines: dict[int, int]  # line seq -> units
    when: datetime
    shipped: bool = True
    carrier: str = "UPS"
    tracking: str = ""


@dataclass
class Memo:
    number: str
    invoice: str
    when: datetime
    total: str
    lines: dict[int, int]
    reason: str = "Too small"
    restock: str = "Y"


@dataclass
class ErpOrder:
    """One sales order in a fake Blue Cherry: each method is an ERP operation (advancing the clock)."""

    mapping: Mapping
    number: str = "SO1001"
    customer: str = "C1001"
    ord_type: str = "WEB"
    division: str = "01"
    channel: str = "WEB"
    status: str = "E"
    email: str = "ann@example.com"
    storefront_ref: str = ""
    discount_code: str = ""
    discount: str = "0"
    tax: str = "8.00"
    freight: str = "5.00"
    lines: list[Line] = field(
        default_factory=lambda: [Line(1, "ST100", qty=2), Line(2, "ST200", price="30.00")]
    )
    clock: datetime = START
    entered: datetime = START
    confirmed: datetime | None = None
    picks: list[Shipment] = field(default_factory=list)
    invoices: list[Shipment] = field(default_factory=list)
    memos: list[Memo] = field(default_factory=list)

    def tick(self, minutes: int = 30) -> datetime:
        self.clock += timedelta(minutes=minutes)
        return self.clock

    # --- ERP operations ------------------------------------------------------------------------
    def confirm(self) -> None:
        self.tick()
        self.status = self.mapping.lifecycle.confirmed[0]
        if self.confirmed is None:
            self.confirmed = self.clock

    def hold(self) -> None:
        self.tick()
        self.status = self.mapping.lifecycle.on_hold[0]

    def release(self) -> None:
        self.confirm()

    def cancel(self) -> None:
        self.tick()
        self.status = self.mapping.lifecycle.cancelled[0]

    def close(self) -> None:
        self.tick()
        self.status = self.mapping.lifecycle.closed[0]

    def set_qty(self, seq: int, qty: int) -> None:
        self.tick()
        self.line(seq).qty = qty

    def set_price(self, seq: int, price: str) -> None:
        self.tick()
        self.line(seq).price = price

    def add_line(self, style: str, qty: int = 1, price: str = "20.00") -> int:
        self.tick()
        seq = max((line.seq for line in self.lines), default=0) + 1
        self.lines.append(Line(seq, style, qty=qty, price=price))
        return seq

    def cancel_line(self, seq: int, qty: int | None = None) -> None:
        self.tick()
        line = self.line(seq)
        line.cancel_qty = line.qty if qty is None else qty

    def ship(self, number: str, lines: dict[int, int] | None = None, tracking: str = "1Z999") -> None:
        """A shipped pick ticket (all open units by default)."""
        self.tick()
        units = lines if lines is not None else {line.seq: line.qty - line.cancel_qty for line in self.lines}
        self.picks.append(Shipment(number, units, self.clock, tracking=tracking))

    def pick_unshipped(self, number: str) -> None:
        self.tick()
        units = {line.seq: line.qty - line.cancel_qty for line in self.lines}
        self.picks.append(Shipment(number, units, self.clock, shipped=False))

    def invoice(self, number: str, lines: dict[int, int] | None = None) -> None:
        self.tick()
        units = lines if lines is not None else {line.seq: line.qty - line.cancel_qty for line in self.lines}
        self.invoices.append(Shipment(number, units, self.clock, tracking="1Z999"))

    def credit(self, number: str, total: str, lines: dict[int, int], when: datetime | None = None) -> None:
        self.tick()
        invoice = self.invoices[0].number if self.invoices else ""
        self.memos.append(Memo(number, invoice, when or self.clock, total, lines))

    def line(self, seq: int) -> Line:
        return next(line for line in self.lines if line.seq == seq)

    # --- raw records, as the sandbox serves them -----------------------------------------------
    def raw_order(self) -> dict[str, Any]:
        f = self.mapping.fields.order
        a = f.addresses
        address = {a.name: "Ann Lee", a.addr1: "1 Main St", a.city: "Springfield", a.state: "NY",
                   a.zipcode: "10001", a.country: "US", a.email: self.email, a.phone: "+12125550100"}
        return {
            self.mapping.resources.order.key: f"pk-{self.number}",
            self.mapping.resources.order.last_mod: stamp(self.clock),
            f.number: self.number,
            f.customer: self.customer,
            f.ord_type: self.ord_type,
            f.division: self.division,
            f.sales_channel: self.channel,
            f.status: self.status,
            f.entered: stamp(self.entered),
            f.confirmed: stamp(self.confirmed) if self.confirmed else "",
            f.currency: "USD",
            f.discount_code: self.discount_code,
            f.discount: self.discount,
            f.tax: self.tax,
            f.freight: self.freight,
            f.season: "SS26",
            f.warehouse: "MAIN",
            f.storefront_ref: self.storefront_ref,
            a.rows: {"rows": [{a.addr_type: a.bill_to, **address}, {a.addr_type: a.ship_to, **address}]},
            f.lines.rows: {"rows": [self._raw_line(f.lines, line, line.qty, line.cancel_qty)
                                    for line in self.lines]},
        }

    def _raw_line(self, fields: Any, line: Line, qty: int, cancel_qty: int) -> dict[str, Any]:
        return {
            fields.line_seq: line.seq, fields.style: line.style, fields.color_code: line.color,
            fields.lbl_code: "", fields.dimension: "", fields.size_desc: line.size,
            fields.upc: f"0000{line.seq}", fields.price: line.price, fields.qty: qty,
            fields.cancel_qty: cancel_qty, fields.description: f"Style {line.style}",
        }

    def raw_picks(self) -> list[dict[str, Any]]:
        f = self.mapping.fields.pick
        return [{
            self.mapping.resources.pick.key: f"pk-{pick.number}",
            self.mapping.resources.pick.last_mod: stamp(pick.when),
            f.number: pick.number, f.order: self.number,
            f.status: f.shipped_value if pick.shipped else "O",
            f.ship_date: stamp(pick.when) if pick.shipped else "",
            f.carrier: pick.carrier, f.tracking: pick.tracking, f.invoice: "",
            f.lines.rows: {"rows": [self._raw_line(f.lines, self.line(seq), qty, 0)
                                    for seq, qty in pick.lines.items()]},
        } for pick in self.picks]

    def raw_invoices(self) -> list[dict[str, Any]]:
        f = self.mapping.fields.invoice
        return [{
            self.mapping.resources.invoice.key: f"pk-{inv.number}",
            self.mapping.resources.invoice.last_mod: stamp(inv.when),
            f.number: inv.number, f.order: self.number, f.pick: "", f.date: stamp(inv.when),
            f.carrier: inv.carrier, f.tracking: inv.tracking,
            f.merchandise: "0", f.discount: "0", f.tax: "0", f.freight: "0", f.total: "0",
            f.lines.rows: {"rows": [self._raw_line(f.lines, self.line(seq), qty, 0)
                                    for seq, qty in inv.lines.items()]},
        } for inv in self.invoices]

    def raw_memos(self) -> list[dict[str, Any]]:
        f = self.mapping.fields.creditmemo
        return [{
            self.mapping.resources.creditmemo.key: f"pk-{memo.number}",
            self.mapping.resources.creditmemo.last_mod: stamp(memo.when),
            f.number: memo.number, f.order: self.number, f.invoice: memo.invoice, f.date: stamp(memo.when),
            f.reason_code: "RT", f.reason: memo.reason, f.restock: memo.restock,
            f.total: memo.total, f.tax: "0", f.freight: "0",
            f.lines.rows: {"rows": [self._raw_line(f.lines, self.line(seq), qty, 0)
                                    for seq, qty in memo.lines.items()]},
        } for memo in self.memos]

    def documents(self) -> OrderDocuments:
        parsed = parse_order_documents(
            self.raw_order(), self.mapping, self.raw_picks(), self.raw_invoices(), self.raw_memos()
        )
        assert parsed.documents is not None, parsed.problems
        assert not parsed.problems, parsed.problems
        return parsed.documents
