"""From customer change events to the Klaviyo operations they require (pure apart from the consent lookup).

- created: the full profile on the fast lane (welcome flows need it now), plus consent under the guard;
- immediate fields changed (field policy): a profile with the identifiers and the immediate attributes,
  fast lane; other mapped fields changed: the customer is parked for the daily batch;
- consent fields changed: subscribe / unsubscribe on the fast lane;
- deleted (the ERP's delete flag): a data-privacy deletion, and the caller purges the fleet's state.
Operations come out in delivery order: unsubscribes, profiles, subscribes, deletions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from config.mapping import Mapping
from sync.changes import ChangeEvent, immediate_fields
from sync.customers.consent import (
    ConsentIntent,
    consent_intents,
    consent_operation,
    erp_instant,
    guard_conflict,
)
from sync.customers.profiles import ATTRIBUTES_OF, cleared_attributes, profile_operation
from sync.customers.records import ParsedCustomer, parse_customer
from sync.customers.validation import e164, normalize_email
from sync.operations import Operation

GUARD_BATCH = 100  # Klaviyo's largest `page[size]` for GET /api/profiles; one call per 100 customers
# emails (at most GUARD_BATCH) -> {lower-cased email: the profile's `subscriptions` object}
ConsentLookup = Callable[[list[str]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Problem:
    type: str
    record_key: str
    reason: str
    severity: str = "error"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CustomerPlan:
    operations: list[Operation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    park: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # (code, raw record, version)
    # (customer code, record key) of erased customers: the caller purges the fleet's state for them
    erase: list[tuple[str, str]] = field(default_factory=list)


def invalid_record_problem(code: str, reasons: list[str], event: ChangeEvent | None = None) -> Problem:
    details: dict[str, Any] = {"problems": reasons}
    if event is not None:
        details |= {"resource": event.resource, "key": event.key, "last_mod": event.last_mod}
    return Problem("invalid_record", f"customer:{code or '?'}", "; ".join(reasons), details=details)


def unusable_phone_problem(parsed: ParsedCustomer) -> list[Problem]:
    """The customer goes without its phone: operations hear of it (fix the number in the ERP)."""
    if parsed.customer is None or not parsed.unusable_phone:
        return []
    return [Problem("unusable_phone", f"customer:{parsed.customer.code}",
                    f"phone left out of the Klaviyo profile: {parsed.unusable_phone}", severity="warning")]


def plan_customer_changes(
    events: Sequence[ChangeEvent], mapping: Mapping, lookup: ConsentLookup | None = None
) -> CustomerPlan:
    plan = CustomerPlan()
    profiles: list[Operation] = []
    deletions: list[Operation] = []
    intents: list[tuple[ConsentIntent, str]] = []
    immediate = immediate_fields(mapping)
    for event in events:
        f = mapping.fields.customer
        code = str(event.record.get(f.code) or "")
        if event.kind == "deleted":
            deletions.append(_deletion(event, code, mapping))
            plan.erase.append((code, event.key))
            continue
        parsed = parse_customer(event.record, mapping)
        if parsed.customer is None:
            plan.problems.append(invalid_record_problem(parsed.code, parsed.problems, event))
            if parsed.consent is not None and event.kind != "created":
                # a broken address, status or phone does not hold a consent change back (compliance)
                found, problems = consent_intents(event.kind, event.changed_fields, parsed.consent)
                intents.extend((intent, event.version) for intent in found)
                plan.problems.extend(
                    Problem(p.type, f"customer:{p.code}", p.reason, details=p.details) for p in problems
                )
            continue
        customer = parsed.customer
        plan.problems.extend(unusable_phone_problem(parsed))
        found, problems = consent_intents(event.kind, event.changed_fields, customer)
        if event.kind == "created":
            profiles.append(profile_operation(customer, mapping, "full", "fast", event.version))
        else:
            changed = [name for name in event.changed_fields if ATTRIBUTES_OF.get(name)]
            # an SMS opt-out made together with a new or blanked phone goes by the number Klaviyo holds: that
            # number stays on the profile (unsubscribed) until the daily batch, so the two can land in any order
            sms_opt_out = "phone" in changed and any(i.channel == "sms" and i.action == "unsubscribe" for i in found)
            if set(changed) & immediate:
                cleared = cleared_attributes(event.changed_fields, customer)
                if parsed.unusable_phone or sms_opt_out:  # left out, not cleared
                    cleared.discard("phone_number")
                op = profile_operation(customer, mapping, "immediate", "fast", event.version, cleared)
                if sms_opt_out:
                    op.payload.pop("phone_number", None)
                profiles.append(op)
            if set(changed) - immediate or sms_opt_out:
                plan.park.append((customer.code, event.record, event.version))
        intents.extend((intent, event.version) for intent in found)
        plan.problems.extend(
            Problem(p.type, f"customer:{p.code}", p.reason, details=p.details) for p in problems
        )
    allowed = _guard(intents, mapping, lookup, plan)
    consent = [consent_operation(intent, mapping, version) for intent, version in allowed]
    plan.operations = (
        [op for op in consent if op.kind == "unsubscribe"]
        + profiles
        + [op for op in consent if op.kind == "subscribe"]
        + deletions
    )
    return plan


def _deletion(event: ChangeEvent, code: str, mapping: Mapping) -> Operation:
    f = mapping.fields.customer
    return deletion_operation(code, event.record.get(f.email), event.record.get(f.phone), mapping,
                              event.version)


def deletion_operation(code: str, email: Any, phone: Any, mapping: Mapping, version: str) -> Operation:
    """A data-privacy deletion naming the profile by email, else by phone (E.164), else by external_id.
    Klaviyo cannot delete by external_id: the task resolves such a payload to profile ids before sending."""
    profile: dict[str, Any]
    if email and str(email).strip():
        profile = {"email": normalize_email(str(email))}
    else:
        try:
            profile = {"phone_number": e164(str(phone).strip(), mapping.tenant.default_phone_region)}
        except ValueError:
            profile = {"external_id": code}
    return Operation(
        kind="profile_deletion", key=f"erase:{code}", lane="fast", payload={"profile": profile},
        version=version, record=f"customer:{code}",
    )


def _guard(
    intents: list[tuple[ConsentIntent, str]],
    mapping: Mapping,
    lookup: ConsentLookup | None,
    plan: CustomerPlan,
) -> list[tuple[ConsentIntent, str]]:
    """Drop first-sync subscribes that Klaviyo's newer unsubscribe/suppression forbids."""
    guarded = [normalize_email(i.customer.email) for i, _ in intents if i.first_sync and i.action == "subscribe"]
    if not guarded:
        return intents
    if lookup is None:
        raise ValueError("first-sync subscribes need a Klaviyo consent lookup (the consent guard)")
    state = read_consent(sorted(set(guarded)), lookup)
    zone = ZoneInfo(mapping.tenant.timezone)
    allowed: list[tuple[ConsentIntent, str]] = []
    for intent, version in intents:
        if intent.first_sync and intent.action == "subscribe":
            subscriptions = state.get(normalize_email(intent.customer.email))
            reason = guard_conflict(subscriptions, intent.channel, erp_instant(intent.consented_at, zone))
            if reason:
                plan.problems.append(Problem(
                    "consent_conflict", f"customer:{intent.customer.code}",
                    f"not subscribed: {reason}", severity="warning",
                    details={"channel": intent.channel, "klaviyo": subscriptions or {}},
                ))
                continue
        allowed.append((intent, version))
    return allowed


def read_consent(emails: Iterable[str], lookup: ConsentLookup) -> dict[str, dict[str, Any]]:
    """Klaviyo consent for many emails, GUARD_BATCH per call."""
    unique = list(dict.fromkeys(emails))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(unique), GUARD_BATCH):
        found.update({normalize_email(k): v for k, v in lookup(unique[start : start + GUARD_BATCH]).items()})
    return found


def plan_daily_batch(entries: Iterable[tuple[str, dict[str, Any], str]], mapping: Mapping) -> CustomerPlan:
    """Full profiles (batch lane) for the customers parked since the last daily batch."""
    plan = CustomerPlan()
    for code, record, version in entries:
        parsed = parse_customer(record, mapping)
        if parsed.customer is None:
            plan.problems.append(invalid_record_problem(parsed.code or code, parsed.problems))
            continue
        plan.problems.extend(unusable_phone_problem(parsed))
        plan.operations.append(profile_operation(parsed.customer, mapping, "full", "batch", version))
    return plan


def plan_backfill(
    records: Iterable[tuple[dict[str, Any], str]], mapping: Mapping, lookup: ConsentLookup | None
) -> CustomerPlan:
    """A historical load of (raw record, version) pairs: full profiles on the batch lane (packed into bulk
    imports by delivery) and each customer's ERP consent as on a first sync - subscribes only on explicit
    consent and under the guard, `historical_import` with `consented_at` when the mapping says so."""
    plan = CustomerPlan()
    intents: list[tuple[ConsentIntent, str]] = []
    for record, version in records:
        parsed = parse_customer(record, mapping)
        if parsed.customer is None:
            plan.problems.append(invalid_record_problem(parsed.code, parsed.problems))
            continue
        plan.problems.extend(unusable_phone_problem(parsed))
        plan.operations.append(profile_operation(parsed.customer, mapping, "full", "batch", version))
        found, problems = consent_intents("created", [], parsed.customer)
        intents.extend((intent, version) for intent in found)
        plan.problems.extend(
            Problem(p.type, f"customer:{p.code}", p.reason, details=p.details) for p in problems
        )
    allowed = _guard(intents, mapping, lookup, plan)
    plan.operations += [
        consent_operation(intent, mapping, version).model_copy(update={"lane": "batch"})
        for intent, version in allowed
    ]
    return plan
