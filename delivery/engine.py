"""Delivery to Klaviyo: `submit` puts operations on their lanes; the `bcsync.deliver` task
hands each to `process_envelope`.

A message is an *envelope*: operations of one kind for one lane, plus the history of its attempts. The task
is thin: it calls `delivery.sending.send_operations` and decides from the outcome -
- delivered rows go to the ledger;
- rows Klaviyo refused (4xx) go to the lane's dead-letter queue with Klaviyo's error, the rest go on;
- the fleet's own budget exhausted, or Klaviyo's 429 / a pause: the envelope waits in the Redis
  delayed-retry schedule (not as a Celery ETA) and comes back when due; a 429 is not the payload's fault
  and does not count as an attempt;
- transient errors (5xx, timeouts): exponential backoff with jitter through the same schedule; after
  ``max_attempts`` the envelope is dead-lettered with every attempt;
- a throttle of hours parks the endpoint: its work waits in the schedule and an operator exception is raised.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from config.task_names import CHECK_PROFILE_IMPORT_JOB, deliver_task
from connectors.klaviyo.errors import (
    DuplicateProfileError,
    EndpointParkedError,
    KlaviyoError,
    PermanentError,
    RateLimitedLocally,
    ThrottledError,
    TransientError,
)
from delivery import identity
from delivery.consent_confirm import CONSENT_KINDS, schedule_check
from delivery.envelope import Envelope
from delivery.failures import attempt_of, backoff_delay, klaviyo_attempt
from delivery.policy import Action, action_for
from delivery.publish import submit
from delivery.registry import SENDERS
from delivery.results import SendResult
from delivery.runtime import Runtime
from delivery.senders.consent import crossed_by_newer_unsubscribe
from delivery.sending import send_operations
from state.dead_letters import Attempt
from state.profiles import Identity
from sync.customers.duplicates import resolve_duplicate_profile
from sync.customers.erasure import version_stamp
from sync.customers.profiles import upsert_key
from sync.ledger import LedgerEntry
from sync.operations import Operation

log = logging.getLogger(__name__)

OUTAGE_CONFIRMED_AFTER_SECONDS = 10.0  # several failed probes (every 2 s): Klaviyo fails for everyone



def _local_attempt(error: str) -> Attempt:
    return Attempt(at=time.time(), error=error[:2000])




def _keys(ops: list[dict[str, Any]]) -> list[str]:
    return [str(op["key"]) for op in ops if isinstance(op, dict) and op.get("key")]


def _reschedule(rt: Runtime, env: Envelope, delay: float) -> None:
    due = time.time() + max(0.05, delay)
    rt.delayed.add(deliver_task(env.kind), [env.to_message()], env.lane, due, entry_id=env.id)
    rt.stores.inflight.touch(env.id, _keys(env.operations), due)  # still this envelope's work until then


def _dead_letter(rt: Runtime, env: Envelope, ops: list[dict[str, Any]], reason: str) -> None:
    entry = rt.dead_letters.add(deliver_task(env.kind), env.lane, env.kind, ops, env.attempts, reason)
    rt.stores.lane_stats.dead_lettered(env.lane, env.kind, len(ops))
    # in an operator's hands now: a later change of the same record may be submitted again
    rt.stores.inflight.release(env.id, _keys(ops))
    _release_consent_claims(rt, env.kind, ops)
    log.warning("dead-lettered %s (%s rows, lane %s): %s", entry.id, len(ops), env.lane, reason)


def _erased_since(rt: Runtime, ops: list[Operation]) -> set[str]:
    """Keys of operations about customers erased after the operation was computed: a message already queued
    when `bcsync erase` ran (or the ERP delete flag arrived) must not re-create the profile."""
    about = [(op.record.split(":", 1)[1], op) for op in ops
             if SENDERS[op.kind].erasable and op.version and op.record and op.record.startswith("customer:")]
    if not about:
        return set()
    stamps = rt.stores.erasures.stamps({code for code, _ in about})
    return {op.key for code, op in about
            if code in stamps and op.version and version_stamp(op.version) <= stamps[code]}


def _dead_letter_local(rt: Runtime, env: Envelope, ops: list[dict[str, Any]], reason: str) -> None:
    _dead_letter(rt, env.with_attempt(_local_attempt(reason)), ops, reason[:500])


# --- one handler per action of the policy table (delivery/policy.py) --------------------------------

Handler = Callable[[Runtime, Envelope, list[Operation], Exception], None]


def _refused_locally(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    _dead_letter_local(rt, env, env.operations, f"refused before sending: {exc}")


def _wait_for_budget(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    assert isinstance(exc, RateLimitedLocally)
    # the delay is this request's turn in the endpoint's line (the limiter spreads waiting work over the next
    # windows at the rate the budget frees), not the window's end that every waiting message would share
    _reschedule(rt, env, exc.delay + random.uniform(0, 0.05))


def _park(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    assert isinstance(exc, EndpointParkedError)
    rt.exceptions.record(
        "endpoint_parked", exc.endpoint, f"Klaviyo throttled {exc.endpoint} until {time.ctime(exc.until)}; "
        "its work is parked until then", severity="critical", details={"until": exc.until},
    )
    _reschedule(rt, env, exc.until - time.time() + random.uniform(0, 5))


def _wait_after_429(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    assert isinstance(exc, ThrottledError)
    _reschedule(rt, env.with_attempt(klaviyo_attempt(exc)), (exc.retry_after or 1.0) + random.uniform(0, 1.0))


def _retry(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    env = env.with_attempt(attempt_of(exc))
    failures = env.failures()
    # Klaviyo down for everyone (the probe confirms it) is not this payload's fault: the work waits out the
    # outage instead of being dead-lettered by a count its backoff would run through in a few minutes
    outage = isinstance(exc, TransientError) and rt.stores.outage.lasting(OUTAGE_CONFIRMED_AFTER_SECONDS)
    if failures >= rt.settings.max_attempts and not outage:
        what = "transient failures" if isinstance(exc, TransientError) else f"failures ({type(exc).__name__})"
        _dead_letter(rt, env, env.operations, f"gave up after {failures} {what}")
    else:
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        _reschedule(rt, env, retry_after or backoff_delay(failures, rt.settings))
        if isinstance(exc, TransientError):  # Klaviyo down or unreachable: resume as soon as it answers
            rt.stores.outage.note_waiting(env.id)


def _resolve_duplicate(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    assert isinstance(exc, DuplicateProfileError)
    env = env.with_attempt(klaviyo_attempt(exc))
    for op in ops:
        # the documented rule (sync/customers/duplicates.py): resend without the phone when it was the
        # phone that collided; otherwise an operator merges the profiles and requeues the dead letter
        resolution = resolve_duplicate_profile(op, exc.duplicate_profile_id)
        rt.stores.inflight.release(env.id, [op.key])  # the retry below is new work under the same key
        rt.exceptions.record(
            "customer_mismatch", op.record or op.key, resolution.reason,
            severity="warning" if resolution.retry else "error", details=resolution.details,
        )
        if resolution.retry is not None:
            submit([resolution.retry])
        else:
            _dead_letter(rt, env, [op.model_dump(mode="json")],
                         "duplicate_profile: identifiers belong to different profiles")


def _dead_letter_refused(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    assert isinstance(exc, KlaviyoError)
    reason = f"Klaviyo refused the request ({exc.status})"
    _dead_letter(rt, env.with_attempt(klaviyo_attempt(exc)), env.operations, reason)


def _retry_unexpected(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    # a bug, or trouble no rule names: it may pass (a deploy fixes it, a lookup answers again), so it is
    # retried like a transient failure and dead-lettered with its traceback after max_attempts
    log.error("unexpected error delivering envelope %s", env.id, exc_info=exc)
    _retry(rt, env, ops, exc)


HANDLERS: dict[Action, Handler] = {
    Action.REFUSED_LOCALLY: _refused_locally,
    Action.WAIT_FOR_BUDGET: _wait_for_budget,
    Action.PARK: _park,
    Action.WAIT_AFTER_429: _wait_after_429,
    Action.RETRY: _retry,
    Action.RESOLVE_DUPLICATE: _resolve_duplicate,
    Action.DEAD_LETTER: _dead_letter_refused,
    Action.RETRY_UNEXPECTED: _retry_unexpected,
}
# what the metrics endpoint calls each action's outcome (`bcsync_deliveries_total{outcome=...}`, per operation)
OUTCOME_OF: dict[Action, str] = {
    Action.REFUSED_LOCALLY: "refused_locally",
    Action.WAIT_FOR_BUDGET: "budget_wait",
    Action.PARK: "parked",
    Action.WAIT_AFTER_429: "throttled",
    Action.RETRY: "failed_transient",
    Action.RESOLVE_DUPLICATE: "duplicate_profile",
    Action.DEAD_LETTER: "refused",
    Action.RETRY_UNEXPECTED: "failed_unexpected",
}


# --- the engine -------------------------------------------------------------------------------------


def process_envelope(message: dict[str, Any], rt: Runtime) -> SendResult | None:
    """Send one envelope (its wire form) and act on the outcome; returns what was sent, None otherwise."""
    env = Envelope.from_message(message)
    try:
        ops = [Operation.model_validate(o) for o in env.operations]
    except ValidationError as exc:
        rt.stores.lane_stats.outcome(env.lane, env.kind, "refused_locally", len(env.operations))
        _dead_letter_local(rt, env, env.operations, f"malformed operation: {exc.errors()[:3]}")
        return None
    erased = _erased_since(rt, ops)
    if erased:
        log.info("dropped %d operation(s) for erased customers", len(erased))
        rt.stores.inflight.release(env.id, erased)
        _release_consent_claims(rt, env.kind, [o for o in env.operations if o.get("key") in erased])
        ops = [op for op in ops if op.key not in erased]
    held, delivered = _held_elsewhere(rt, env, ops)
    if held:
        log.info("dropped %d operation(s) another envelope holds (newer, or submitted since)", len(held))
        _release_consent_claims(rt, env.kind, [o for o in env.operations if o.get("key") in held])
        ops = [op for op in ops if op.key not in held]
        env = env.model_copy(update={"operations": [o for o in env.operations if o.get("key") not in held]})
    if not ops:
        return None
    client = rt.client(env.lane)
    try:
        prepared = _prepare_identities(rt, env, ops, client)
    except Exception as exc:  # noqa: BLE001  a lookup that failed: the envelope's action, as for a send
        _act_on(rt, env, ops, exc)
        return None
    env, ops = _set_aside(rt, env, prepared)
    if ops and env.kind in CONSENT_KINDS:
        env, ops = _claim_consent(rt, env, ops)
    if not ops:
        return None
    try:
        result = send_operations(ops, client, rt.ledger, delivered)
    except Exception as exc:  # noqa: BLE001  every failure has its action in the policy table
        rt.stores.profiles.release(prepared.leased, env.id)
        if _names_a_gone_profile(exc, ops):
            # the kept id names a profile Klaviyo no longer has (merged or deleted there): look it up again
            for code in {op.profile_of for op in ops if op.profile_of}:
                rt.stores.profiles.forget_id(code)
            rt.stores.lane_stats.outcome(env.lane, env.kind, "profile_gone", len(ops))
            _retry(rt, env, ops, exc)
            return None
        _act_on(rt, env, ops, exc)
        return None
    _after_delivery(rt, env, ops, result)
    _after_profile_writes(rt, env, ops, result, prepared.leased)
    return result


def _names_a_gone_profile(exc: Exception, ops: list[Operation]) -> bool:
    return isinstance(exc, PermanentError) and exc.status == 404 and any(
        op.profile_of and op.kind in identity.NEEDS_ID for op in ops)


def _act_on(rt: Runtime, env: Envelope, ops: list[Operation], exc: Exception) -> None:
    action = action_for(exc)
    assert action is not None  # every Exception matches the table's last row
    rt.stores.lane_stats.outcome(env.lane, env.kind, OUTCOME_OF[action], len(ops))
    HANDLERS[action](rt, env, ops, exc)


# --- profiles named by id, one write per customer at a time (delivery/identity.py) ------------------

BUSY_RETRY_SECONDS = 1.0  # another envelope writes the customer's profile: it is one call away from done
WAIT_RETRY_MAX_SECONDS = 30.0


def _prepare_identities(rt: Runtime, env: Envelope, ops: list[Operation], client: Any) -> identity.Prepared:
    if not any(op.profile_of or identity.upsert_customer(op) for op in ops):
        return identity.Prepared(ready=ops)
    # customers whose profile upsert another envelope carries now: their id is coming, no lookup spent on them
    keys = [upsert_key(op.profile_of, scope) for op in ops if op.profile_of for scope in ("full", "immediate")]
    coming = {key.split(":")[1] for key, holder in rt.stores.inflight.holders(keys).items()
              if holder.envelope != env.id}
    return identity.prepare(ops, rt.stores.profiles, client, env.id, rt.settings.profile_lease_seconds, coming)


def _set_aside(rt: Runtime, env: Envelope, prepared: identity.Prepared) -> tuple[Envelope, list[Operation]]:
    """Send what is ready; what waits for a profile id or for another write goes in envelopes of its own."""
    now = time.time()
    if prepared.done:
        # newer writes already set every attribute these carry, or an opt-out finds no address Klaviyo holds
        rt.ledger.record([LedgerEntry(key=op.key, delivered_at=now, status=None, endpoint="nothing-to-send",
                                      version=op.version, record=op.record, repair=op.repair)
                            for op in prepared.done])
        rt.stores.inflight.release(env.id, [op.key for op in prepared.done])
        finished = {c for op in prepared.done if (c := identity.upsert_customer(op))} - {
            identity.upsert_customer(op) for op in prepared.ready}
        rt.stores.profiles.release(finished, env.id)
        prepared.leased -= finished
    if prepared.busy:
        _continue_apart(rt, env, prepared.busy, BUSY_RETRY_SECONDS + random.uniform(0, 1.0), env.waiting_since)
    if prepared.waiting:
        since = env.waiting_since or now
        # every profile awaited on its way (a first load's backlog of upserts): waiting on is right, however long
        on_its_way = {op.profile_of for op in prepared.waiting} <= prepared.coming
        if now - since > rt.settings.profile_wait_seconds and not on_its_way:
            _give_up_waiting(rt, env, prepared.waiting, now - since)
        else:
            delay = min(WAIT_RETRY_MAX_SECONDS, max(1.0, (now - since) / 4)) + random.uniform(0, 1.0)
            _continue_apart(rt, env, prepared.waiting, delay, since)
    ready_keys = {op.key for op in prepared.ready}
    return env.model_copy(update={"operations": [o for o in env.operations if o.get("key") in ready_keys]}), \
        prepared.ready


def _continue_apart(rt: Runtime, env: Envelope, ops: list[Operation], delay: float, since: float | None) -> None:
    keys = {op.key for op in ops}
    apart = env.model_copy(update={
        "id": uuid.uuid4().hex, "waiting_since": since,
        "operations": [o for o in env.operations if o.get("key") in keys],
    })
    due = time.time() + delay
    rt.stores.inflight.transfer(env.id, apart.id, keys, due)
    rt.delayed.add(deliver_task(apart.kind), [apart.to_message()], apart.lane, due, entry_id=apart.id)


def _give_up_waiting(rt: Runtime, env: Envelope, ops: list[Operation], waited: float) -> None:
    by_customer: dict[str, list[Operation]] = {}
    for op in ops:
        by_customer.setdefault(op.profile_of or "?", []).append(op)
    for code, theirs in by_customer.items():
        reason = (f"{len(theirs)} {env.kind} operation(s) waited {waited:.0f} s for customer {code}'s Klaviyo "
                  "profile, which the fleet has not written: see the customer's own exceptions and dead "
                  "letters (its profile upsert), then requeue these")
        rt.exceptions.record("profile_missing", f"customer:{code}", reason, severity="error",
                             details={"waiting": [op.key for op in theirs], "kind": env.kind})
        keys = {op.key for op in theirs}
        raw = [o for o in env.operations if o.get("key") in keys]
        rt.stores.lane_stats.outcome(env.lane, env.kind, "refused_locally", len(raw))
        _dead_letter_local(rt, env, raw, f"waited {waited:.0f} s for customer {code}'s Klaviyo profile")


def _after_profile_writes(rt: Runtime, env: Envelope, ops: list[Operation], result: SendResult,
                          leased: set[str]) -> None:
    """Keep what Klaviyo answered (the profile id, the identifiers it holds, each attribute's version) and
    free the customers' write leases - except those of a bulk import job, freed when the job completes."""
    if not leased:
        return
    by_key = {op.key: op for op in ops}
    delivered = {entry.key for entry in result.delivered}
    writes = [w for key in delivered if key in by_key
              and (w := identity.written(by_key[key], result.answers.get(key))) is not None]
    rt.stores.profiles.record_writes(writes)
    rt.stores.profiles.remember({
        code: Identity(id=str(answer["id"]))
        for key, answer in result.answers.items()
        if key in by_key and (code := identity.upsert_customer(by_key[key])) and answer.get("id")
    })
    for op, header in result.partial_failures:
        rt.exceptions.record(
            "klaviyo_partial_failure", op.record or op.key,
            f"Klaviyo accepted the profile without part of it: {header[:300]}", severity="warning",
            details={"header": header[:2000]},
        )
    in_jobs: set[str] = set()
    for task, args, _ in result.followups:
        if task == CHECK_PROFILE_IMPORT_JOB:
            in_jobs |= {code for raw in args[1] if raw["key"] in by_key
                        and (code := identity.upsert_customer(by_key[raw["key"]]))}
    rt.stores.profiles.release(leased - in_jobs, env.id)


# --- consent: one job in flight per customer and channel (delivery/consent_confirm.py) ---------------

CONSENT_WAIT_MAX_SECONDS = 10.0


def _claim_consent(rt: Runtime, env: Envelope, ops: list[Operation]) -> tuple[Envelope, list[Operation]]:
    """Send only the consent changes whose customer and channel has no other job in flight; the others wait in
    an envelope of their own until that job is seen applied (never dead-lettered for it: the bound of the job
    they wait for ends the wait)."""
    now = time.time()
    claims = rt.stores.consent_jobs.claim(
        env.id, [(op.key, op.version or "", op.kind, op.model_dump(mode="json")) for op in ops], now)
    if claims.overtaken:  # a newer change of the same customer and channel is already in flight: it wins
        log.info("dropped %d consent operation(s) a newer change in flight overtook", len(claims.overtaken))
        rt.stores.inflight.release(env.id, claims.overtaken)
    if claims.waiting:
        since = min(claims.waiting.values())
        # the job waited for is read back after consent_check_seconds, then less and less often
        delay = min(CONSENT_WAIT_MAX_SECONDS, max(1.0, (now - since) / 4)) + random.uniform(0, 1.0)
        _continue_apart(rt, env, [op for op in ops if op.key in claims.waiting], delay, env.waiting_since)
    return (env.model_copy(update={"operations": [o for o in env.operations if o.get("key") in claims.ok]}),
            [op for op in ops if op.key in claims.ok])


def _release_consent_claims(rt: Runtime, kind: str, ops: list[dict[str, Any]]) -> None:
    """Claims of consent operations that will not be sent by this envelope (a sent job stays pending)."""
    if kind in CONSENT_KINDS and ops:
        rt.stores.consent_jobs.release(
            [(str(o["key"]), str(o.get("version") or "")) for o in ops if isinstance(o, dict) and o.get("key")])


def _after_consent_jobs(rt: Runtime, env: Envelope, ops: list[Operation], result: SendResult) -> None:
    """Accepted jobs are pending until read back applied (the check scheduled here); skipped ones free their key."""
    versions = {op.key: op.version or "" for op in ops}
    sent = [(entry.key, versions[entry.key]) for entry in result.delivered if entry.key in versions]
    rt.stores.consent_jobs.mark_sent(sent, time.time())
    rt.stores.consent_jobs.release([(key, versions[key]) for key in result.skipped if key in versions])
    schedule_check(rt, sent, env.lane, rt.settings.consent_check_seconds)


@dataclass(frozen=True)
class _Prefetched:
    envelope: str
    keys: list[str]
    holders: list[Any]
    entries: list[Any]

    def of(self, envelope: str, keys: list[str]) -> tuple[list[Any], list[Any]] | None:
        if envelope != self.envelope:
            return None
        at = {key: n for n, key in enumerate(self.keys)}
        if not all(key in at for key in keys):
            return None
        return [self.holders[at[k]] for k in keys], [self.entries[at[k]] for k in keys]


# `_held_elsewhere`'s reads, made by the task base in its start's round trip (`queue_held_reads`)
_prefetched: ContextVar[_Prefetched | None] = ContextVar("bcsync_prefetched_holders", default=None)


def queue_held_reads(rt: Runtime, message: Any, pipe: Any) -> Callable[[list[Any]], None] | None:
    """Queue `_held_elsewhere`'s reads of a message's keys on `pipe` (the task's start record's round trip);
    returns what keeps their answers for this task's `process_envelope`, or None for a message these reads
    cannot be made of (the engine then reads for itself, and refuses the message as it always did)."""
    try:
        envelope_id = str(message["id"])
        keys = [str(op["key"]) for op in message["operations"]]
    except (KeyError, TypeError, IndexError):
        return None
    if not keys:
        return None
    _queue_held_reads(rt, pipe, keys)

    def keep(results: list[Any]) -> None:
        _prefetched.set(_Prefetched(envelope_id, keys, list(results[0]), list(results[1])))

    return keep


def forget_prefetched() -> None:
    _prefetched.set(None)


def _queue_held_reads(rt: Runtime, pipe: Any, keys: list[str]) -> None:
    """Who holds each key in the in-flight registry, then the ledger's entry of each: `_held_elsewhere`'s reads."""
    rt.stores.inflight.queue_holders(pipe, keys)
    rt.ledger.queue_delivered(pipe, keys)


def _held_elsewhere(rt: Runtime, env: Envelope, ops: list[Operation]) -> tuple[set[str], dict[str, LedgerEntry]]:
    """Keys another envelope claimed in the in-flight registry: a newer version, or a resubmission after this
    envelope looked lost. That envelope delivers them; sending them here too would be the work twice. Read in
    the same round trip: the ledger's entries of every key, for `delivery.sending.pending` (a key this
    envelope holds is delivered by nobody else meanwhile, so the entry read now is still the one then). The
    task base usually read both already, in the round trip that counted the task's start: a round trip earlier
    than here, which widens by that much the moment in which another envelope's claim goes unseen: the race
    there always was between this read and the send, a round trip longer."""
    keys = [op.key for op in ops]
    prefetched = _prefetched.get()
    _prefetched.set(None)  # read once: a later call (or task) reads Redis again
    if not keys:
        return set(), {}
    found = prefetched.of(env.id, keys) if prefetched is not None else None
    if found is not None:
        raw_holders, raw_entries = found
    else:
        pipe = rt.redis.pipeline(transaction=False)
        _queue_held_reads(rt, pipe, keys)
        raw_holders, raw_entries = pipe.execute()
    holders = rt.stores.inflight.parse_holders(keys, raw_holders)
    return ({key for key, holder in holders.items() if holder.envelope != env.id},
            rt.ledger.parse_delivered(keys, raw_entries))


def _after_delivery(rt: Runtime, env: Envelope, ops: list[Operation], result: SendResult) -> None:
    # One round trip on the hot path for the ledger, the in-flight release, the outage's resume and the lane's
    # statistics. Redis runs a pipeline's commands in order, so the keys are released only after the ledger
    # holds what was delivered (another envelope holding them next finds them done).
    pipe = rt.redis.pipeline(transaction=False)
    rt.ledger.record(result.delivered, client=pipe)
    rt.stores.inflight.release(env.id, [op.key for op in ops], client=pipe)
    resumed_at = len(pipe)
    if result.delivered:
        rt.stores.outage.resume(client=pipe)
    rt.stores.lane_stats.delivered(env.lane, len(result.delivered), env.created, client=pipe, kind=env.kind)
    rt.stores.lane_stats.outcome(env.lane, env.kind, "skipped", len(result.skipped), client=pipe)
    rt.stores.task_runs.forget_current(client=pipe)  # the message's work is in the ledger from here on
    done = pipe.execute()
    if result.delivered and int(done[resumed_at]) > 0:
        log.info("Klaviyo answers again: work waiting out an outage's backoff resumes now")
    if env.kind in CONSENT_KINDS:
        _after_consent_jobs(rt, env, ops, result)
    if env.kind == "subscribe" and result.delivered:
        delivered = {entry.key for entry in result.delivered}
        again = crossed_by_newer_unsubscribe([op for op in ops if op.key in delivered], rt.ledger)
        if again:
            log.warning("%d subscribe(s) crossed a newer unsubscribe: unsubscribing again", len(again))
            submit(again)
    rt.stores.lane_stats.outcome(env.lane, env.kind, "refused", len(result.rejected))
    for op, err in result.rejected:
        reason = f"Klaviyo refused this row ({err.status})" if err.status else err.message[:500]
        _dead_letter(rt, env.with_attempt(klaviyo_attempt(err)), [op.model_dump(mode="json")], reason)
    for task, args, delay in result.followups:
        if task == CHECK_PROFILE_IMPORT_JOB:  # the job's rows hold their customers' write leases until done
            args = [*args[:2], env.lane, env.id]
        rt.delayed.add(task, args, env.lane, time.time() + delay)
