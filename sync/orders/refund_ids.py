"""Which credit memos of an order went to Klaviyo under which Refunded Order id, read back from what Klaviyo
holds - for when the fleet's own record of it is gone (docs/order-lifecycle.md, "Refund ids").

Klaviyo's `GET /api/events` does not return an event's `unique_id`, so every event the fleet sends carries
its own ledger key in its properties (`bcsync_key`, stamped by the event sender); that key is
`event:<metric>:<unique_id>`, so it tells which id a Refunded Order went under, and the event's
`CreditMemo` property which memo it was. `decided_refunds` is what one computation gave the memos, which the
fleet records with the order's durable facts (`sync.orders.facts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sync.orders.desired import DeliveredView, DesiredResult, event_key

KEY_PROPERTY = "bcsync_key"  # the event property carrying the operation's ledger key


@dataclass(frozen=True)
class SentRefunds:
    """order_id_memo: the memo whose refund went under the order-level id (None: no memo did);
    composite: memos whose refund went under `<num>:refund:<memo>`."""

    order_id_memo: str | None = None
    composite: frozenset[str] = field(default_factory=frozenset)


def composite_id(number: str, memo: str) -> str:
    return f"{number}:refund:{memo}"


def decided_refunds(result: DesiredResult, view: DeliveredView | None = None) -> SentRefunds | None:
    """The refund ids decided for an order's memos, as the fleet records them (None: none decided): what the
    computation gave the memos it saw, and what `view` already held - recovered from Klaviyo or recorded
    before - even for memos not stored now. A re-scan after state loss can compute an order before all its
    memos are read again; forgetting a recovered decision then would give a memo already sent a second id."""
    pinned = (view.refund_memo_with_order_id if view else None) or result.refund_memo_with_order_id
    composite = {memo for memo in result.refund_ids if memo != pinned}
    if view is not None:
        composite |= {memo for memo in view.refund_memos_composite if memo != pinned}
    if pinned is None and not composite:
        return None
    return SentRefunds(pinned, frozenset(composite))


def sent_refunds(number: str, order_id: str, metric: str, properties: Iterable[dict[str, Any]]) -> SentRefunds:
    """What the Refunded Order events among `properties` (event properties as Klaviyo returns them, of any
    orders) say about order `number` (order-level id `order_id`)."""
    order_level = event_key(metric, order_id)
    prefix = event_key(metric, composite_id(number, ""))
    order_id_memo: str | None = None
    composite: set[str] = set()
    for props in properties:
        key = props.get(KEY_PROPERTY)
        if not isinstance(key, str):
            continue  # not sent by the fleet (or sent before events carried their key)
        if key == order_level and props.get("CreditMemo") is not None:
            order_id_memo = str(props["CreditMemo"])
        elif key.startswith(prefix) and len(key) > len(prefix):
            composite.add(key[len(prefix):])
    return SentRefunds(order_id_memo, frozenset(composite))
