"""Confirming consent jobs: read the profiles back until each job sent shows applied (docs/architecture.md,
"Consent jobs: one in flight per profile and channel").

The engine claims a consent operation's key before sending it (`state.consent_jobs`) and schedules
`check_consent_jobs` after the 202. The check reads the profiles' subscriptions, up to 100 per call, and judges
each job (`sync.customers.confirmation`): applied -> the key is free for the next change of that customer and
channel; not yet -> read again later (backing off); still not after `consent_confirm_seconds` -> a
`consent_unconfirmed` exception, the job is forgotten and the latest state is sent again - the newer change
waiting for the key, or else this job's own change under a new version (at most `MAX_RESENDS` times). A read
that cannot be answered now (the budget, a 429, a 5xx, a parked endpoint) is tried again; nothing is dropped
for it before the bound.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from config.task_names import CHECK_CONSENT_JOBS
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import (
    EndpointParkedError,
    KlaviyoError,
    RateLimitedLocally,
    TransientError,
    try_again_in,
)
from delivery.publish import submit
from delivery.runtime import Runtime
from state.consent_jobs import PendingJob
from sync.customers.confirmation import AGAIN, Observed, judge, next_check_delay, observed, resent
from sync.operations import Operation

log = logging.getLogger(__name__)

CONSENT_KINDS = ("subscribe", "unsubscribe")
MAX_RESENDS = 3  # a change sent again this often and never seen applied is left to operators
PAGE = 100  # profiles per read: Klaviyo's largest page, one filter of 100 values
Resubmit = Callable[[list[Operation]], Any]


def schedule_check(rt: Runtime, jobs: Iterable[tuple[str, str]], lane: str, delay: float) -> None:
    wire = [{"key": key, "version": version} for key, version in jobs]
    if wire:
        rt.delayed.add(CHECK_CONSENT_JOBS, [wire, lane], lane, time.time() + max(0.05, delay))


def _identifier(job: PendingJob, ids: dict[str, str]) -> tuple[str, str] | None:
    """How to find the job's profile: its id where the job named it, else the address the job named (an
    unsubscribe acts on that address's profile), else the id the fleet keeps, else the customer's external_id."""
    op = job.operation
    payload = op.get("payload") or {}
    profile = payload.get("profile") or {}
    if profile.get("id"):
        return "id", str(profile["id"])
    name = "email" if payload.get("channel") == "email" else "phone_number"
    if profile.get(name):
        value = str(profile[name])
        return name, value.lower() if name == "email" else value
    code = op.get("profile_of")
    if code and code in ids:
        return "id", ids[code]
    return ("external_id", str(code)) if code else None


def read_back(client: KlaviyoClient, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(identifier name, value) -> the profile's `subscriptions`, for those Klaviyo has; 100 per call."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    by_name: dict[str, list[str]] = {}
    for name, value in sorted(wanted):
        by_name.setdefault(name, []).append(value)
    for name, values in by_name.items():
        for start in range(0, len(values), PAGE):
            chunk = values[start:start + PAGE]
            filter_ = f"any({name},{json.dumps(chunk)})"
            for profile in client.get_profiles(filter_, additional_fields=["subscriptions"], page_size=PAGE):
                attrs = profile.get("attributes") or {}
                got = profile.get("id") if name == "id" else attrs.get(name)
                if isinstance(got, str):
                    found[(name, got.lower() if name == "email" else got)] = attrs.get("subscriptions") or {}
    return found


def check_consent_jobs(rt: Runtime, jobs: list[dict[str, Any]], lane: str, resubmit: Resubmit = submit) -> None:
    """Read back the profiles of these sent jobs (`{"key", "version"}`) and act on what they show; `resubmit`
    sends a change again (the publisher's `submit`)."""
    wanted = {str(j["key"]): str(j["version"]) for j in jobs if isinstance(j, dict) and j.get("key")}
    store = rt.stores.consent_jobs
    pending = [job for key, job in store.pending(list(wanted)).items()
               if job.version == wanted[key] and job.state == "sent" and job.sent_at is not None]
    if not pending:
        return  # confirmed, given up or overtaken since: nothing left to read
    codes = {str(job.operation.get("profile_of")) for job in pending if job.operation.get("profile_of")}
    ids = {code: identity.id for code, identity in rt.stores.profiles.identities(codes).items() if identity.id}
    where = {job.key: _identifier(job, ids) for job in pending}
    try:
        found = read_back(rt.client(lane), {w for w in where.values() if w is not None})
    except KlaviyoError as exc:
        _read_failed(rt, pending, lane, exc, resubmit)
        return
    now = time.time()
    settle, bound = rt.settings.consent_settle_seconds, rt.settings.consent_confirm_seconds
    waiting: list[PendingJob] = []
    other: list[tuple[str, str]] = []
    freed: list[str] = []
    for job in pending:
        assert job.sent_at is not None
        at = where[job.key]
        channel = str((job.operation.get("payload") or {}).get("channel"))
        seen = observed(found[at], channel) if at is not None and at in found else None
        verdict = judge(job.action, seen, prior=job.prior, prior_seen=job.prior_seen, seen_other=job.seen_other,
                        claimed_at=job.claimed_at, sent_at=job.sent_at, now=now, settle=settle)
        if verdict.applied:
            store.settle(job.key, job.version, job.action, seen.last_updated if seen else None, now)
            freed.append(job.key)
            log.info("consent job %s %s (%s) seen applied after %.1f s", job.action, job.key, job.version,
                     now - job.sent_at)
        elif now - job.sent_at >= bound:
            _give_up(rt, job, seen, now, "its profile does not show it", resubmit)
            freed.append(job.key)
        else:
            waiting.append(job)
            if verdict.other and not job.seen_other:
                other.append((job.key, job.version))
    store.note_seen_other(other)
    _wake_waiting(rt, freed, {job.key: job.envelope for job in pending})
    if waiting:
        age = min(now - (job.sent_at or now) for job in waiting)
        schedule_check(rt, [(j.key, j.version) for j in waiting], lane,
                       next_check_delay(age, rt.settings.consent_check_seconds, bound, settle))


def _wake_waiting(rt: Runtime, keys: list[str], senders: dict[str, str]) -> None:
    """The changes waiting for these keys go now instead of at their next try: the envelope holding a key in the
    in-flight registry (not the one that sent the job) is the waiting one, scheduled under its own id."""
    holders = rt.stores.inflight.holders(keys)
    waiting = {holder.envelope for key, holder in holders.items() if holder.envelope != senders.get(key)}
    if waiting:
        rt.delayed.hasten(sorted(waiting), time.time())


def _read_failed(rt: Runtime, pending: list[PendingJob], lane: str, exc: KlaviyoError, resubmit: Resubmit) -> None:
    """The read-back cannot be answered now: read again later (a job past its bound is given up meanwhile). A
    read Klaviyo refuses (a key without `profiles:read`) will not be answered soon: the jobs are given up at once,
    so their customers' next changes do not wait on reads that cannot come, and operators are told."""
    now = time.time()
    bound = rt.settings.consent_confirm_seconds
    why = f"its profile could not be read back ({exc})"
    refused = not isinstance(exc, RateLimitedLocally | EndpointParkedError | TransientError)
    late = [job for job in pending if refused or now - (job.sent_at or now) >= bound]
    for job in late:
        _give_up(rt, job, None, now, why, resubmit, resend=not refused)
    _wake_waiting(rt, [job.key for job in late], {job.key: job.envelope for job in late})
    rest = [job for job in pending if job not in late]
    if not rest:
        return
    schedule_check(rt, [(j.key, j.version) for j in rest], lane,
                   try_again_in(exc, 2 * rt.settings.consent_check_seconds, now))


def _give_up(rt: Runtime, job: PendingJob, seen: Observed | None, now: float, why: str,
             resubmit: Resubmit, resend: bool = True) -> None:
    """Past the bound: operators are told, the job is forgotten, and the latest state is sent again (unless
    `resend` is off: the job was not seen because it cannot be read, and sending it again would not change that)."""
    op = Operation.model_validate(job.operation)
    waited = now - (job.sent_at or job.claimed_at)
    rt.stores.consent_jobs.drop([(job.key, job.version)])
    holder = rt.stores.inflight.holders([job.key]).get(job.key)
    newer_waits = holder is not None and holder.version > job.version
    again = resend and not newer_waits and resent(job.version) < MAX_RESENDS
    if newer_waits:
        then = f"the newer change ({holder.version if holder else '?'}) waiting for it goes now"
    elif not resend:
        then = "the next change of this customer and channel no longer waits for it"
    elif again:
        then = "it is sent again"
    else:
        then = f"it was sent {MAX_RESENDS + 1} times: left for operators (check the profile in Klaviyo)"
    channel = (op.payload or {}).get("channel")
    reason = (f"{job.action} of {channel} consent (version {job.version}) was accepted by Klaviyo {waited:.0f} s "
              f"ago but {why}; {then}")
    rt.exceptions.record(
        "consent_unconfirmed", job.key, reason, severity="error",
        details={"customer": op.profile_of, "channel": channel, "action": job.action, "version": job.version,
                 "waited_seconds": round(waited, 1), "klaviyo_consent": seen.consent if seen else None,
                 "sent_again": again},
    )
    log.warning("consent job %s %s unconfirmed after %.0f s: %s", job.action, job.key, waited, then)
    if again:
        resubmit([op.model_copy(update={"version": job.version + AGAIN})])
