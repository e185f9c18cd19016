"""The rule for Klaviyo's 409 `duplicate_profile` on a profile upsert (pure).

Klaviyo answers 409 when the identifiers sent belong to different existing profiles - almost always the
e-mail on one profile and the phone number on another (a shop sign-up by SMS, an ERP customer by e-mail).
The deterministic rule:

1. The upsert carried a phone number: send it again with `external_id` + `email` (and every other
   attribute) but WITHOUT `phone_number`. The e-mail/external-id profile is the customer master's profile;
   the phone stays on the other profile until an operator merges them.
2. The upsert carried no phone (so e-mail and external_id themselves are split): no retry; an operator must
   merge the two profiles in Klaviyo.

Either way a `customer_mismatch` exception names both profiles (the one Klaviyo reported as the duplicate,
and the one our identifiers found when known) and the identifier that collided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.operations import Operation


@dataclass(frozen=True)
class DuplicateResolution:
    retry: Operation | None
    reason: str
    details: dict[str, Any]


def resolve_duplicate_profile(
    operation: Operation, duplicate_profile_id: str | None, our_profile_id: str | None = None
) -> DuplicateResolution:
    payload = operation.payload
    details: dict[str, Any] = {
        "duplicate_profile_id": duplicate_profile_id,
        "profile_id": our_profile_id,
        "external_id": payload.get("external_id"),
        "operation_key": operation.key,
    }
    if operation.kind == "profile_upsert" and payload.get("phone_number"):
        retry = operation.model_copy(
            update={"payload": {k: v for k, v in payload.items() if k != "phone_number"}}
        )
        return DuplicateResolution(
            retry,
            "Klaviyo holds this customer's phone number on another profile (409 duplicate_profile); "
            "profile updated by external_id + email without the phone; merge the profiles in Klaviyo",
            details | {"dropped": "phone_number"},
        )
    return DuplicateResolution(
        None,
        "Klaviyo holds this customer's email and external_id on different profiles (409 duplicate_profile); "
        "not retried; merge the profiles in Klaviyo",
        details,
    )
