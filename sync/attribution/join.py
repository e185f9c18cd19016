"""The join of Klaviyo's attribution with the ERP, per campaign and per flow.

Inputs, all read by `flows.attribution`:
- `Conversion`: a conversion event of the chosen metric in the period, with the campaign or flow message Klaviyo
  attributed it to (none: not attributed) and its join key - the ERP order number the fleet's Placed Order
  carries (`ErpOrderNumber`), or the storefront's order reference of the storefront's own Placed Order;
- `ErpOrder`: an order's durable facts (`sync.orders.facts.OrderFacts`, converted by the flow) placed in the period;
- `KlaviyoTotal`: Klaviyo's own attributed revenue of a campaign or flow (its values report) for the period.

Per campaign and flow (`SendRow`): Klaviyo's revenue, the ERP's placed value of the same orders (they should be
equal: Klaviyo's revenue is the sum of the Placed Order values the fleet sent, so a difference is a delivery
problem: a conversion event missing, extra or with another value), the ERP's net (placed - cancelled -
refunded), the cancellation and refund rates (of the placed value) and the orders still open. From the ERP side
(`AttributionReport.missing`): orders of the period expected to have a conversion event and without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Kind = Literal["campaign", "flow"]
ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Conversion:
    event_id: str
    order_key: str  # the join key ("" when the event carries none)
    value: Decimal
    time: datetime
    kind: Kind | None = None  # None: Klaviyo attributed it to no message
    send_id: str = ""  # the campaign or flow
    message_id: str = ""


@dataclass(frozen=True)
class ErpOrder:
    number: str
    join_key: str  # what its conversion event carries: the number, or the storefront reference ("": none)
    placed_at: datetime
    placed_value: Decimal
    cancelled_value: Decimal = ZERO
    refunded: Decimal = ZERO
    shipped_value: Decimal = ZERO
    is_open: bool = True  # neither closed nor cancelled: its value can still change
    cancelled_in_full: bool = False
    currency: str = ""

    @property
    def net(self) -> Decimal:
        return self.placed_value - self.cancelled_value - self.refunded


@dataclass(frozen=True)
class KlaviyoTotal:
    kind: Kind
    send_id: str
    revenue: Decimal
    conversions: int


@dataclass(frozen=True)
class OrderLine:
    """One attributed order of a campaign or flow: the drill-down row."""

    number: str
    event_value: Decimal
    message_id: str
    order: ErpOrder | None  # None: the event names no ERP order the fleet knows

    @property
    def value_differs(self) -> bool:
        return self.order is None or abs(self.order.placed_value - self.event_value) >= CENT


@dataclass
class SendRow:
    kind: Kind
    send_id: str
    klaviyo_revenue: Decimal | None  # None: Klaviyo's report has no row for it
    klaviyo_conversions: int
    orders: list[OrderLine] = field(default_factory=list)

    @property
    def known(self) -> list[ErpOrder]:
        return [line.order for line in self.orders if line.order is not None]

    @property
    def erp_placed(self) -> Decimal:
        return sum((o.placed_value for o in self.known), ZERO)

    @property
    def erp_cancelled(self) -> Decimal:
        return sum((o.cancelled_value for o in self.known), ZERO)

    @property
    def erp_refunded(self) -> Decimal:
        return sum((o.refunded for o in self.known), ZERO)

    @property
    def erp_shipped(self) -> Decimal:
        return sum((o.shipped_value for o in self.known), ZERO)

    @property
    def erp_net(self) -> Decimal:
        return self.erp_placed - self.erp_cancelled - self.erp_refunded

    @property
    def cancellation_rate(self) -> Decimal:
        return _rate(self.erp_cancelled, self.erp_placed)

    @property
    def refund_rate(self) -> Decimal:
        return _rate(self.erp_refunded, self.erp_placed)

    @property
    def open_orders(self) -> int:
        return sum(1 for o in self.known if o.is_open)

    @property
    def currencies(self) -> list[str]:
        return sorted({o.currency for o in self.known if o.currency})

    @property
    def unknown_orders(self) -> list[str]:
        """Attributed events naming no ERP order of the fleet's facts."""
        return [line.number for line in self.orders if line.order is None]

    @property
    def mismatch(self) -> bool:
        """Klaviyo's revenue is not the ERP's placed value of the same orders (to the cent), or one of its
        attributed events names an order the ERP does not have."""
        return abs((self.klaviyo_revenue or ZERO) - self.erp_placed) >= CENT or bool(self.unknown_orders)


@dataclass
class AttributionReport:
    sends: list[SendRow]
    missing: list[ErpOrder]  # ERP orders of the period expected in Klaviyo, with no conversion event there
    not_expected: int  # orders of the period with no join key (the storefront setting: no storefront reference)
    unattributed: int  # conversion events joined to an ERP order but attributed to no message
    orders: int  # ERP orders of the period

    def row(self, kind: Kind, send_id: str) -> SendRow | None:
        return next((r for r in self.sends if r.kind == kind and r.send_id == send_id), None)


def _rate(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole).quantize(Decimal("0.0001")) if whole else ZERO


def join(conversions: list[Conversion], orders: list[ErpOrder], totals: list[KlaviyoTotal],
         only: str | None = None) -> AttributionReport:
    """Per campaign and flow: Klaviyo's totals beside the ERP's facts of the same orders (`only`: one campaign or
    flow id); and the ERP's orders with no conversion event. A repeated event of one order (a storefront that
    sent it twice) counts once, as Klaviyo's own de-duplication would."""
    by_key = {o.join_key: o for o in orders if o.join_key}
    rows: dict[tuple[Kind, str], SendRow] = {}
    for total in totals:
        rows[(total.kind, total.send_id)] = SendRow(total.kind, total.send_id, total.revenue, total.conversions)
    seen: set[str] = set()
    unattributed = 0
    for conversion in sorted(conversions, key=lambda c: (c.time, c.event_id)):
        if conversion.order_key:
            if conversion.order_key in seen:
                continue
            seen.add(conversion.order_key)
        if conversion.kind is None:
            unattributed += conversion.order_key in by_key
            continue
        row = rows.setdefault((conversion.kind, conversion.send_id),
                              SendRow(conversion.kind, conversion.send_id, None, 0))
        row.orders.append(OrderLine(conversion.order_key, conversion.value, conversion.message_id,
                                    by_key.get(conversion.order_key)))
    missing = sorted((o for o in orders if o.join_key and o.join_key not in seen), key=lambda o: o.number)
    sends = sorted(rows.values(), key=lambda r: (r.kind, r.send_id))
    if only is not None:
        sends = [r for r in sends if r.send_id == only]
    return AttributionReport(sends=sends, missing=missing, not_expected=sum(1 for o in orders if not o.join_key),
                             unattributed=unattributed, orders=len(orders))
