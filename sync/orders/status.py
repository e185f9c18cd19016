"""ERP order status codes -> lifecycle stage, from the tenant's `mapping.lifecycle`. No guessing."""

from __future__ import annotations

from enum import StrEnum

from config.mapping import OrderLifecycle


class OrderStatus(StrEnum):
    ENTERED = "entered"
    CONFIRMED = "confirmed"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"
    CLOSED = "closed"


def classify_status(code: str, lifecycle: OrderLifecycle) -> OrderStatus | None:
    """The stage a status code means, or None when the mapping does not know the code."""
    for status in OrderStatus:
        codes: tuple[str, ...] = getattr(lifecycle, status.value)
        if code in codes:
            return status
    return None
