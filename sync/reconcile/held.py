"""What Klaviyo holds, as reconciliation compares it: read from Klaviyo's JSON:API resources (plain dicts), so
the comparison never sees HTTP. Events carry the fleet's ledger key in their properties (`bcsync_key`,
`sync.orders.refund_ids.KEY_PROPERTY`): Klaviyo's `GET /api/events` gives no `unique_id` back."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sync.orders.refund_ids import KEY_PROPERTY


@dataclass(frozen=True)
class HeldProfile:
    id: str
    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    subscriptions: dict[str, Any] | None = None

    @classmethod
    def from_resource(cls, resource: dict[str, Any]) -> HeldProfile:
        attrs = resource.get("attributes") or {}
        email = attrs.get("email")
        return cls(
            id=str(resource.get("id")), email=email.lower() if isinstance(email, str) else None,
            phone_number=attrs.get("phone_number"), external_id=attrs.get("external_id"),
            first_name=attrs.get("first_name"), last_name=attrs.get("last_name"),
            properties=dict(attrs.get("properties") or {}), subscriptions=attrs.get("subscriptions"),
        )

    def consent(self, channel: str) -> str:
        marketing = (((self.subscriptions or {}).get(channel) or {}).get("marketing")) or {}
        return str(marketing.get("consent") or "NEVER_SUBSCRIBED").upper()


@dataclass(frozen=True)
class HeldEvent:
    id: str
    metric: str  # the metric's name
    key: str | None  # the fleet's ledger key (`event:<metric>:<unique_id>`); None: not the fleet's event
    value: Decimal | None
    profile_id: str | None
    time: str = ""
    order: str | None = None  # `ErpOrderNumber`

    @classmethod
    def from_resource(cls, resource: dict[str, Any], metric_names: dict[str, str]) -> HeldEvent:
        attrs = resource.get("attributes") or {}
        props = attrs.get("event_properties") or {}
        rel = resource.get("relationships") or {}
        metric_id = ((rel.get("metric") or {}).get("data") or {}).get("id")
        profile_id = ((rel.get("profile") or {}).get("data") or {}).get("id")
        raw = props.get("$value", attrs.get("value"))
        try:
            value = None if raw is None else Decimal(str(raw))
        except InvalidOperation:
            value = None
        key = props.get(KEY_PROPERTY)
        return cls(id=str(resource.get("id")), metric=metric_names.get(str(metric_id), str(metric_id)),
                   key=key if isinstance(key, str) else None, value=value,
                   profile_id=str(profile_id) if profile_id else None, time=str(attrs.get("datetime") or ""),
                   order=str(props["ErpOrderNumber"]) if props.get("ErpOrderNumber") else None)


@dataclass(frozen=True)
class HeldVariant:
    external_id: str
    inventory_quantity: int | None
    item_external_id: str | None = None

    @classmethod
    def from_resource(cls, resource: dict[str, Any]) -> HeldVariant:
        attrs = resource.get("attributes") or {}
        quantity = attrs.get("inventory_quantity")
        return cls(external_id=str(attrs.get("external_id") or resource.get("id")),
                   inventory_quantity=quantity if isinstance(quantity, int) else None)
