"""From customer change events to the Klaviyo operations they require (pure apart from the consent lookup).

- created: the full profile on the fast lane (welcome flows need it now), plus consent under the guard;
- resynced (a customer the fleet has no state for whose last change is old: a re-scan after state loss, or
  the first scan of go-live): the full profile on the batch lane, consent under the guard;
- immediate fields changed (field policy): a profile with the identifiers and the immediate attributes,
  fast lane; other mapped fields changed: the customer is parked for the daily batch;
- consent fields changed: subscribe / unsubscribe on the fast lane;
- deleted (the ERP's delete flag): a data-privacy deletion, and the caller purges the fleet's state.
Operations come out in delivery order: unsubscribes, profiles, subscribes, deletions.

The guard (a first sync's consent, which depends on what Klaviyo holds) is the only part that reads Klaviyo.
Without a lookup, `plan_customer_changes` leaves those intents in `CustomerPlan.guarded` and plans everything
else: the caller submits that at once and settles the guarded part on its own (`guard_consent`), so a lookup
that fails or is throttled holds back only the first-sync consent that needs it - never another customer's
opt-out, never a profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from config.lanes import Lane
from config.mapping import Mapping
from sync.changes import ChangeEvent, immediate_fields
from sync.customers.consent import (
    FIRST_SYNC,
    ConsentIntent,
    consent_intents,
    consent_operation,
    erp_instant,
    first_sync_opt_out,
    guard_conflict,
)
from sync.customers.profiles import ATTRIBUTES_OF, cleared_attributes, profile_operation
from sync.customers.records import ParsedCustomer, parse_customer
from sync.customers.validation import e164, normalize_email
from sync.fields import read_text
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
    # first-sync consent waiting for the guard's read of Klaviyo (planned without a lookup)
    guarded: list[Guarded] = field(default_factory=list)


@dataclass(frozen=True)
class Guarded:
    """A first sync's consent intent and the change it came from (what is retried when Klaviyo cannot be read)."""

    intent: ConsentIntent
    version: str
    event: ChangeEvent | None = None
    lane: Lane = "fast"


def invalid_record_problem(code: str, reasons: list[str], event: ChangeEvent | None = None) -> Problem:
    details: dict[str, Any] = {"problems": reasons}
    if event is not None:
        details |= {"resource": event.resource, "key": event.key, "last_mod": event.last_mod}
    return Problem("invalid_record", f"customer:{code or '?'}", "; ".join(reasons), details=details)


def invalid_problems(parsed: ParsedCustomer, event: ChangeEvent | None = None, code: str = "") -> list[Problem]:
    """An invalid customer's own problem, then the mapping problems behind it, one row per status value or date
    field (`sync.misfits`)."""
    return [invalid_record_problem(parsed.code or code, parsed.problems, event)] + [
        Problem(m.type, m.key, m.reason, details=m.exception_details()) for m in parsed.misfits]


def unusable_phone_problem(parsed: ParsedCustomer) -> list[Problem]:
    """The customer goes without its phone: operations hear of it (fix the number in the ERP)."""
    if parsed.customer is None or not parsed.unusable_phone:
        return []
    return [Problem("unusable_phone", f"customer:{parsed.customer.code}",
                    f"phone left out of the Klaviyo profile: {parsed.unusable_phone}", severity="warning")]


def plan_customer_changes(
    events: Sequence[ChangeEvent], mapping: Mapping, lookup: ConsentLookup | None = None
) -> CustomerPlan:
    """The operations of these changes. With `lookup`, first-sync consent is guarded here; without, it is left
    in `plan.guarded` for `guard_consent`."""
    plan = CustomerPlan()
    profiles: list[Operation] = []
    deletions: list[Operation] = []
    intents: list[Guarded] = []
    immediate = immediate_fields(mapping)
    for event in events:
        f = mapping.fields.customer
        code = read_text(event.record, f, "code")  # as the parser reads it: the profile's external_id
        if event.kind == "deleted":
            deletions.append(_deletion(event, code, mapping))
            plan.erase.append((code, event.key))
            continue
        parsed = parse_customer(event.record, mapping)
        if parsed.customer is None:
            plan.problems.extend(invalid_problems(parsed, event))
            if parsed.consent is not None and event.kind not in FIRST_SYNC:
                # a broken address, status or phone does not hold a consent change back (compliance)
                found, problems = consent_intents(event.kind, event.changed_fields, parsed.consent)
                intents.extend(Guarded(intent, event.version, event) for intent in found)
                plan.problems.extend(
                    Problem(p.type, f"customer:{p.code}", p.reason, details=p.details) for p in problems
                )
            continue
        customer = parsed.customer
        plan.problems.extend(unusable_phone_problem(parsed))
        found, problems = consent_intents(event.kind, event.changed_fields, customer)
        if event.kind in FIRST_SYNC:
            lane: Lane = "fast" if event.kind == "created" else "batch"
            profiles.append(profile_operation(customer, mapping, "full", lane, event.version))
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
        lane = "batch" if event.kind == "resynced" else "fast"
        intents.extend(Guarded(intent, event.version, event, lane) for intent in found)
        plan.problems.extend(
            Problem(p.type, f"customer:{p.code}", p.reason, details=p.details) for p in problems
        )
    plan.guarded = [g for g in intents if g.intent.first_sync]
    allowed = [g for g in intents if not g.intent.first_sync]
    if lookup is not None and plan.guarded:
        allowed += guard_consent(plan.guarded, mapping, lookup, plan)
        plan.guarded = []
    consent = [_consent_operation(g, mapping) for g in allowed]
    plan.operations = (
        [op for op in consent if op.kind == "unsubscribe"]
        + profiles
        + [op for op in consent if op.kind == "subscribe"]
        + deletions
    )
    return plan


def _deletion(event: ChangeEvent, code: str, mapping: Mapping) -> Operation:
    f = mapping.fields.customer
    return deletion_operation(code, read_text(event.record, f, "email"), read_text(event.record, f, "phone"), mapping,
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


def _consent_operation(guarded: Guarded, mapping: Mapping) -> Operation:
    op = consent_operation(guarded.intent, mapping, guarded.version)
    return op if guarded.lane == op.lane else op.model_copy(update={"lane": guarded.lane})


def guard_consent(
    guarded: list[Guarded], mapping: Mapping, lookup: ConsentLookup, plan: CustomerPlan
) -> list[Guarded]:
    """The first-sync consent Klaviyo's own state allows (conflicts go to `plan.problems`). May raise what the
    lookup raises: nothing of it has been acted on then.

    - subscribe: dropped when Klaviyo holds an unsubscribe or suppression newer than the ERP consent;
    - unsubscribe (the ERP says not subscribed): sent only when Klaviyo is subscribed since before the ERP's
      dated opt-out; a Klaviyo subscribe with no such date, or newer, is left alone."""
    if not guarded:
        return []
    state = read_consent(sorted({normalize_email(g.intent.customer.email) for g in guarded
                                 if g.intent.customer.email}), lookup)
    zone = ZoneInfo(mapping.tenant.timezone)
    allowed: list[Guarded] = []
    for g in guarded:
        intent = g.intent
        subscriptions = state.get(normalize_email(intent.customer.email)) if intent.customer.email else None
        erp_time = erp_instant(intent.consented_at, zone)
        if intent.action == "subscribe":
            reason = guard_conflict(subscriptions, intent.channel, erp_time)
            send = reason is None
            reason = f"not subscribed: {reason}" if reason else None
        else:
            send, reason = first_sync_opt_out(subscriptions, intent.channel, erp_time)
        if reason:
            plan.problems.append(Problem(
                "consent_conflict", f"customer:{intent.customer.code}", reason, severity="warning",
                details={"channel": intent.channel, "erp": intent.action, "klaviyo": subscriptions or {}},
            ))
        if send:
            allowed.append(g)
    return allowed


def guarded_operations(guarded: list[Guarded], mapping: Mapping) -> list[Operation]:
    """The operations of guarded intents the guard allowed, unsubscribes first."""
    ops = [_consent_operation(g, mapping) for g in guarded]
    return [op for op in ops if op.kind == "unsubscribe"] + [op for op in ops if op.kind != "unsubscribe"]


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
            plan.problems.extend(invalid_problems(parsed, code=code))
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
    intents: list[Guarded] = []
    for record, version in records:
        parsed = parse_customer(record, mapping)
        if parsed.customer is None:
            plan.problems.extend(invalid_problems(parsed))
            continue
        plan.problems.extend(unusable_phone_problem(parsed))
        plan.operations.append(profile_operation(parsed.customer, mapping, "full", "batch", version))
        found, problems = consent_intents("created", [], parsed.customer)
        intents.extend(Guarded(intent, version, None, "batch") for intent in found)
        plan.problems.extend(
            Problem(p.type, f"customer:{p.code}", p.reason, details=p.details) for p in problems
        )
    if intents and lookup is None:
        raise ValueError("a backfill's consent needs a Klaviyo consent lookup (the consent guard)")
    allowed = guard_consent(intents, mapping, lookup, plan) if lookup is not None else []
    plan.operations += guarded_operations(allowed, mapping)
    return plan
