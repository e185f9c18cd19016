"""Customer tasks (thin): change events -> operations (sync.customers) -> `delivery.publish.submit`.

- `bcsync.handle_customer_changes(events)`: what the poller publishes for customers (one message per lane
  and page). Bad records and consent conflicts go to the exception register; non-immediate changes wait
  for the daily batch; deletions purge the fleet's own state.
- `bcsync.daily_profile_batch(force=False)`: beat calls it hourly; it runs at `field_policy.daily_batch_hour`
  (tenant time) once a day, or at once with `force=True` (`run_daily_batch()` for the demo and tests).
- `bcsync.customers.duplicate_profile(operation, duplicate_profile_id)`: the 409 rule
  (sync.customers.duplicates) - records a `customer_mismatch` and resubmits the reduced upsert if any.
- Erasure (the ERP delete flag here, `bcsync erase` in workers/erase.py): `erase_customers` requests the
  data-privacy deletion, purges the fleet's state and leaves a tombstone (sync.customers.erasure) so a re-read
  of the erased ERP state neither requests the deletion again nor re-creates the profile.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from config.mapping import Mapping, get_mapping
from config.redis import redis_client
from config.settings import get_settings
from config.task_names import GUARD_CONSENT
from connectors.klaviyo.errors import KlaviyoError, PermanentError, try_again_in
from delivery.failures import klaviyo_attempt
from delivery.publish import submit
from delivery.runtime import runtime
from state.daily_batch import DailyBatchStore
from state.dead_letters import DeadLetters
from state.delayed import DelayedSchedule
from state.erasure import ErasureTombstones, PurgeReport, purge_customer_state
from state.exceptions import ExceptionRegister
from state.keys import RedisKeys
from sync.changes import ChangeEvent
from sync.customers.duplicates import resolve_duplicate_profile
from sync.customers.erasure import version_stamp
from sync.customers.planner import (
    ConsentLookup,
    CustomerPlan,
    Guarded,
    guard_consent,
    guarded_operations,
    plan_customer_changes,
    plan_daily_batch,
)
from sync.fields import read_text
from sync.operations import Operation

log = logging.getLogger(__name__)
Submit = Callable[[list[Operation]], Any]


@dataclass
class CustomerContext:
    """What the customer flow touches; tests build one over their own Redis and Klaviyo sandbox."""

    redis: redis.Redis
    key_prefix: str
    mapping: Mapping
    exceptions: ExceptionRegister
    submit: Submit
    lookup: ConsentLookup | None
    # customer code -> ids of the Klaviyo profiles with that external_id (erasure without email or phone)
    resolve_ids: Callable[[str], list[str]] | None = None

    @property
    def daily(self) -> DailyBatchStore:
        return DailyBatchStore(self.redis, self.key_prefix)

    @property
    def tombstones(self) -> ErasureTombstones:
        return ErasureTombstones(self.redis, self.key_prefix)


def klaviyo_consent_lookup(client: Any) -> ConsentLookup:
    """Read `subscriptions` of up to 100 profiles by email in one call (`any(email,[...])`)."""

    def lookup(emails: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        # Klaviyo keeps emails lower-cased: ask in that form, so a mixed-case ERP email still finds its profile
        filter_ = f"any(email,{json.dumps(sorted({e.lower() for e in emails}))})"
        for profile in client.get_profiles(filter_, additional_fields=["subscriptions"], page_size=100):
            attrs = profile.get("attributes", profile) if isinstance(profile, dict) else {}
            email = attrs.get("email")
            if isinstance(email, str):
                found[email.lower()] = attrs.get("subscriptions") or {}
        return found

    return lookup


def klaviyo_profile_ids(client: Any) -> Callable[[str], list[str]]:
    """Ids of the Klaviyo profiles whose external_id is the customer code."""

    def resolve(code: str) -> list[str]:
        filter_ = f"equals(external_id,{json.dumps(code)})"
        return [str(p["id"]) for p in client.get_profiles(filter_, page_size=100) if p.get("id")]

    return resolve


def default_context() -> CustomerContext:
    rt = runtime()
    return CustomerContext(
        redis=rt.redis, key_prefix=rt.settings.key_prefix, mapping=get_mapping(), exceptions=rt.exceptions,
        submit=submit, lookup=klaviyo_consent_lookup(rt.client("fast")),
        resolve_ids=klaviyo_profile_ids(rt.client("fast")),
    )


def apply_plan(plan: CustomerPlan, ctx: CustomerContext) -> None:
    for problem in plan.problems:
        ctx.exceptions.record(
            problem.type, problem.record_key, problem.reason,
            severity=problem.severity,  # type: ignore[arg-type]
            details=problem.details,
        )
    for code, record, version in plan.park:
        ctx.daily.park(code, record, version)
    erased = {code for code, _ in plan.erase}
    operations = [op for op in plan.operations if op.kind != "profile_deletion"]
    operations += resolve_deletions([op for op in plan.operations if op.kind == "profile_deletion"], ctx)
    if operations:
        ctx.submit(operations)
    for code, record_key in plan.erase:  # erasure: forget what the fleet kept about the customer
        forget_customer(ctx, code, record_key)
    if erased:
        log.info("erased %d customer(s): deletion requested, fleet state purged", len(erased))


def resolve_deletions(deletions: list[Operation], ctx: CustomerContext) -> list[Operation]:
    """Klaviyo deletes by id, email or phone only: a deletion naming just the external_id becomes one
    deletion per Klaviyo profile holding it (none found: nothing to delete in Klaviyo)."""
    out: list[Operation] = []
    for op in deletions:
        profile = op.payload.get("profile") or {}
        code = profile.get("external_id")
        if not code or set(profile) != {"external_id"}:
            out.append(op)
            continue
        ids = ctx.resolve_ids(str(code)) if ctx.resolve_ids is not None else []
        if not ids:
            log.info("erasure of %s: no Klaviyo profile with external_id %s", op.record, code)
        out.extend(
            op.model_copy(update={"key": op.key if len(ids) == 1 else f"{op.key}:{pid}",
                                  "payload": {"profile": {"id": pid}}})
            for pid in ids
        )
    return out


def forget_customer(ctx: CustomerContext, code: str, record_key: str | None) -> PurgeReport:
    return purge_customer_state(ctx.redis, ctx.key_prefix, code, record_key, ctx.exceptions)


def _without_erased(events: list[ChangeEvent], ctx: CustomerContext) -> list[ChangeEvent]:
    """Drop what an erasure already covered (a re-read, or an older change still in flight)."""
    fields = ctx.mapping.fields.customer
    codes = [read_text(e.record, fields, "code") for e in events]
    stamps = ctx.tombstones.stamps(c for c in codes if c)
    if not stamps:
        return events
    kept = [e for e, c in zip(events, codes, strict=True) if c not in stamps or version_stamp(e.version) > stamps[c]]
    if len(kept) < len(events):
        log.info("dropped %d change(s) of erased customers", len(events) - len(kept))
    return kept


def process_customer_changes(events: list[ChangeEvent], ctx: CustomerContext) -> CustomerPlan:
    """Plan and submit a page's changes. Everything that needs no Klaviyo read (opt-outs above all) is
    submitted first; then the guard reads Klaviyo for the first-sync consent (GuardDeferred: only that part
    is left for the caller to retry)."""
    events = _without_erased(events, ctx)
    plan = plan_customer_changes(events, ctx.mapping)
    apply_plan(plan, ctx)
    for event in events:
        code = read_text(event.record, ctx.mapping.fields.customer, "code")
        if event.kind == "deleted" and code:
            ctx.tombstones.mark(code, version_stamp(event.version))
    settle_guarded(plan.guarded, ctx)
    return plan


class GuardDeferred(Exception):
    """The guard could not read Klaviyo (`cause`): `guarded` is the first-sync consent still to settle;
    nothing of it was submitted."""

    def __init__(self, guarded: list[Guarded], cause: KlaviyoError) -> None:
        super().__init__(str(cause))
        self.guarded = guarded
        self.cause = cause


def settle_guarded(guarded: list[Guarded], ctx: CustomerContext) -> None:
    """The guard's read of Klaviyo, then the first-sync consent it allows (GuardDeferred when it cannot read)."""
    if not guarded:
        return
    if ctx.lookup is None:
        raise ValueError("first-sync consent needs a Klaviyo consent lookup (the consent guard)")
    verdict = CustomerPlan()
    try:
        allowed = guard_consent(guarded, ctx.mapping, ctx.lookup, verdict)
    except KlaviyoError as exc:  # 429, 5xx, budget, parked, 403: only this part waits or is dead-lettered
        raise GuardDeferred(guarded, exc) from exc
    verdict.operations = guarded_operations(allowed, ctx.mapping)
    apply_plan(verdict, ctx)


def guarded_events(guarded: list[Guarded]) -> list[dict[str, Any]]:
    """The change events whose first-sync consent is still to settle (what a retry carries)."""
    events: dict[tuple[str, str], dict[str, Any]] = {}
    for g in guarded:
        if g.event is not None:
            events.setdefault((g.event.key, g.event.version), g.event.model_dump(mode="json"))
    return list(events.values())


def process_guarded_consent(events: list[ChangeEvent], ctx: CustomerContext) -> None:
    """A retry of the guard alone: the changes' other operations were submitted when they first came."""
    settle_guarded(plan_customer_changes(_without_erased(events, ctx), ctx.mapping).guarded, ctx)


def run_daily_batch(ctx: CustomerContext, limit: int | None = None) -> int:
    """Send every parked customer's full profile on the batch lane; returns how many were sent."""
    taken: list[tuple[str, str]] = []
    for code, raw in ctx.daily.entries():
        taken.append((code, raw))
        if limit is not None and len(taken) >= limit:
            break
    entries = []
    for code, raw in taken:
        record, version = DailyBatchStore.decode(raw)
        entries.append((code, record, version))
    plan = plan_daily_batch(entries, ctx.mapping)
    apply_plan(plan, ctx)
    for code, raw in taken:  # only after submit; an entry replaced meanwhile waits for the next batch
        ctx.daily.remove_if_same(code, raw)
    return len(plan.operations)


def daily_batch_due(ctx: CustomerContext, now: datetime | None = None) -> bool:
    """True once per tenant-local day, at or after `field_policy.daily_batch_hour`."""
    zone = ZoneInfo(ctx.mapping.tenant.timezone)
    local = (now or datetime.now(zone)).astimezone(zone)
    if local.hour < ctx.mapping.field_policy.daily_batch_hour:
        return False
    marker = RedisKeys(ctx.key_prefix).daily_batch_ran(local.date().isoformat())
    return bool(ctx.redis.set(marker, "1", nx=True, ex=2 * 86400))


def handle_duplicate_profile(
    operation: Operation,
    duplicate_profile_id: str | None,
    ctx: CustomerContext,
    our_profile_id: str | None = None,
) -> Operation | None:
    resolution = resolve_duplicate_profile(operation, duplicate_profile_id, our_profile_id)
    ctx.exceptions.record(
        "customer_mismatch", operation.record or operation.key, resolution.reason,
        severity="warning" if resolution.retry else "error", details=resolution.details,
    )
    if resolution.retry is not None:
        ctx.submit([resolution.retry])
    return resolution.retry


# --- Celery wiring -----------------------------------------------------------------------------------


def handle_changes_or_retry(
    events: list[dict[str, Any]], ctx: CustomerContext, delayed: DelayedSchedule,
    dead_letters: DeadLetters | None = None, guard_only: bool = False,
) -> bool:
    """Process the poller's customer changes. Everything but the first-sync consent is planned and submitted
    without reading Klaviyo. When the guard's read cannot be made now (fleet budget, 429, parked, 5xx), the
    changes still to guard wait in the delayed-retry schedule as a `bcsync.customers.guard_consent` message
    (raising would ack and lose them: the poller has already remembered these records as seen). Klaviyo
    refusing the read (a 403 after the key's scopes changed, a 401 after a rotation) dead-letters them with
    Klaviyo's error for an operator to requeue once the key is fixed. False when something was rescheduled.

    `guard_only`: the message is such a retry (its other operations went when the changes first came)."""
    parsed = [ChangeEvent.model_validate(e) for e in events]
    try:
        if guard_only:
            process_guarded_consent(parsed, ctx)
        else:
            process_customer_changes(parsed, ctx)
        return True
    except GuardDeferred as deferred:
        waiting = events if guard_only else guarded_events(deferred.guarded)
        exc = deferred.cause
    lane = str(waiting[0].get("lane") or "fast") if waiting else "fast"
    if isinstance(exc, PermanentError):
        if dead_letters is None:
            raise exc
        entry = dead_letters.add_task(GUARD_CONSENT, lane, [waiting], [klaviyo_attempt(exc)],
                                      f"Klaviyo refused the consent lookup ({exc.status}): {exc.message}"[:500])
        ctx.exceptions.record("consent_lookup_refused", f"dead-letter:{entry.id}",
                              f"Klaviyo refused the consent lookup ({exc.status}) for {len(waiting)} change(s); "
                              f"fix the API key's scopes, then `bcsync dlq requeue {entry.id}`", severity="critical")
        return True
    delay = try_again_in(exc, 5.0, time.time())
    delayed.add(GUARD_CONSENT, [waiting], lane, time.time() + max(0.05, delay) + random.uniform(0, 1.0))
    log.warning("first-sync consent of %d change(s) waits for Klaviyo: %s", len(waiting), exc)
    return False


def daily_batch_if_due(ctx: CustomerContext, force: bool = False) -> int:
    """The daily profile batch, once per tenant-local day (or now, when forced); returns profiles sent."""
    if not (force or daily_batch_due(ctx)):
        return 0
    sent = run_daily_batch(ctx)
    log.info("daily profile batch: %d profiles sent", sent)
    return sent


def main_context() -> CustomerContext:
    """A context for command-line use outside a worker (the `bcsync` CLI's daily batch trigger)."""
    settings = get_settings()
    client = redis_client(settings.redis_url)
    mapping = get_mapping()
    return CustomerContext(
        client, settings.key_prefix, mapping,
        ExceptionRegister(client, settings.key_prefix, mapping.owners, settings.exception_ttl_days),
        submit, None,
    )
