"""Customer -> Klaviyo profile attributes, split into the immediate fields and the daily-batch rest.

Which logical customer fields are immediate comes from `mapping.field_policy.immediate`; each logical field
feeds one or more profile attributes (`ATTRIBUTES_OF`). Identifiers (external_id = customer code, email)
are in every payload so Klaviyo always finds the same profile.
"""

from __future__ import annotations

from typing import Any, Literal

from config.lanes import Lane
from config.mapping import Mapping
from sync.customers.records import CustomerRecord
from sync.operations import Operation

Scope = Literal["immediate", "full"]

# Logical customer field -> the top-level profile attributes it feeds (consent fields feed none: they are
# sent as subscribe/unsubscribe operations, never inside a profile).
ATTRIBUTES_OF: dict[str, tuple[str, ...]] = {
    "code": ("external_id", "properties"),
    "email": ("email",),
    "phone": ("phone_number",),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "name": ("first_name", "last_name"),
    "division": ("properties",),
    "groups": ("properties",),
    "created": ("properties",),
    "status": ("properties",),
    "addresses": ("location",),
}
IDENTIFIERS = ("external_id", "email")
CLEARABLE = ("phone_number", "first_name", "last_name")  # the ERP removing one clears it in Klaviyo


def properties(customer: CustomerRecord, mapping: Mapping) -> dict[str, Any]:
    prefix = mapping.profiles.aggregate_prefix
    props: dict[str, Any] = {
        f"{prefix}customer_code": customer.code,
        f"{prefix}source": mapping.tenant.source_system,
        f"{prefix}status": customer.status,
    }
    if customer.division:
        props[f"{prefix}division"] = customer.division
    for name, value in customer.groups.items():
        if value:
            props[f"{prefix}{name}"] = value
    if customer.created:
        props[f"{prefix}created"] = customer.created.date().isoformat()
    return props


def full_attributes(customer: CustomerRecord, mapping: Mapping) -> dict[str, Any]:
    """Every profile attribute the ERP owns; None means "the ERP has none" (cleared when sent)."""
    attrs: dict[str, Any] = {
        "external_id": customer.code,
        "email": customer.email,
        "phone_number": customer.phone_e164,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "properties": properties(customer, mapping),
    }
    if customer.bill_to is not None:
        location = customer.bill_to.location()
        if location:
            attrs["location"] = location
    return attrs


def immediate_attribute_names(mapping: Mapping) -> set[str]:
    names = {attr for field in mapping.field_policy.immediate for attr in ATTRIBUTES_OF.get(field, ())}
    return names | set(IDENTIFIERS)


def profile_payload(
    customer: CustomerRecord, mapping: Mapping, scope: Scope, cleared: set[str] | None = None
) -> dict[str, Any]:
    """The profile-import attributes for `scope`. A None value is sent only for attributes in `cleared`
    (the ERP removed it in this change); otherwise it is left out so Klaviyo keeps what it has."""
    attrs = full_attributes(customer, mapping)
    if scope == "immediate":
        keep = immediate_attribute_names(mapping)
        attrs = {k: v for k, v in attrs.items() if k in keep}
    cleared = cleared or set()
    return {k: v for k, v in attrs.items() if v is not None or (k in cleared and k in CLEARABLE)}


def upsert_key(code: str, scope: Scope) -> str:
    """The idempotency key of a customer's profile upsert (delivery looks for it in flight too)."""
    return f"profile:{code}:{scope}"


def profile_operation(
    customer: CustomerRecord, mapping: Mapping, scope: Scope, lane: Lane, version: str,
    cleared: set[str] | None = None,
) -> Operation:
    return Operation(
        kind="profile_upsert",
        key=upsert_key(customer.code, scope),
        lane=lane,
        payload=profile_payload(customer, mapping, scope, cleared),
        version=version,
        record=f"customer:{customer.code}",
    )


def cleared_attributes(changed_fields: list[str], customer: CustomerRecord) -> set[str]:
    """Attributes whose ERP value went away in this change (so None is sent to clear them)."""
    attrs = {a for field in changed_fields for a in ATTRIBUTES_OF.get(field, ())}
    values = {"phone_number": customer.phone_e164, "first_name": customer.first_name,
              "last_name": customer.last_name}
    return {a for a in attrs if a in values and values[a] is None}
