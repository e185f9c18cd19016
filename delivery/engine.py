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
from typing import Any

import httpx
import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from config.settings import Settings
from config.task_names import DELIVER
from connectors.klaviyo.builders import PayloadError
from connectors.klaviyo.errors import (
    DuplicateProfileError,
    EndpointParkedError,
    KlaviyoError,
    PermanentError,
    RateLimitedLocally,
    ThrottledError,
    TransientError,
)
from delivery.publish import submit
from delivery.registry import SENDERS
from delivery.results import SendResult
from delivery.runtime import Runtime
from delivery.senders.consent import crossed_by_newer_unsubscribe
from delivery.sending import send_operations
from state.dead_letters import Attempt
from state.erasure import ErasureTombstones
from state.lane_stats import LaneStats
from sync.customers.duplicates import resolve_duplicate_profile
from sync.customers.erasure import version_stamp
from sync.operations import Operation

log = logging.getLogger(__name__)

MAX_ATTEMPTS_KEPT = 25


def _attempt(exc: KlaviyoError) -> Attempt:
    data = exc.to_dict()
    return Attempt(at=time.time(), status=exc.status, endpoint=exc.endpoint, error=data["message"],
                   errors=data["errors"])


def backoff_delay(attempts: int, settings: Settings) -> float:
    base = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.5, 1.0)


def _reschedule(rt: Runtime, env: dict[str, Any], delay: float) -> None:
    rt.delayed.add(DELIVER, [env], env["lane"], time.time() + max(0.05, delay), entry_id=env["id"])


def _dead_letter(rt: Runtime, env: dict[str, Any], ops: list[dict[str, Any]], reason: str) -> None:
    attempts = [Attempt.model_validate(a) for a in env["attempts"]]
    entry = rt.dead_letters.add(DELIVER, env["lane"], env["kind"], ops, attempts, reason)
    log.warning("dead-lettered %s (%s rows, lane %s): %s", entry.id, len(ops), env["lane"], reason)


def _erased_since(rt: Runtime, ops: list[Operation]) -> set[str]:
    """Keys of operations about customers erased after the operation was computed: a message already queued
    when `bcsync erase` ran (or the ERP delete flag arrived) must not re-create the profile."""
    about = [(op.record.split(":", 1)[1], op) for op in ops
             if SENDERS[op.kind].erasable and op.version and op.record and op.record.startswith("customer:")]
    if not about:
        return set()
    stamps = ErasureTombstones(rt.redis, rt.settings.key_prefix).stamps({code for code, _ in about})
    return {op.key for code, op in about
            if code in stamps and op.version and version_stamp(op.version) <= stamps[code]}


def _dead_letter_local(rt: Runtime, env: dict[str, Any], ops: list[dict[str, Any]], reason: str) -> None:
    env["attempts"] = env.get("attempts", []) + [Attempt(at=time.time(), error=reason[:2000]).model_dump()]
    env.setdefault("kind", "unknown")
    env.setdefault("lane", "default")
    _dead_letter(rt, env, ops, reason[:500])


def process_envelope(env: dict[str, Any], rt: Runtime) -> SendResult | None:
    try:
        ops = [Operation.model_validate(o) for o in env["operations"]]
    except ValidationError as exc:
        _dead_letter_local(rt, env, env.get("operations", []), f"malformed operation: {exc.errors()[:3]}")
        return None
    erased = _erased_since(rt, ops)
    if erased:
        log.info("dropped %d operation(s) for erased customers", len(erased))
        ops = [op for op in ops if op.key not in erased]
        if not ops:
            return None
    client = rt.client(env["lane"])
    try:
        result = send_operations(ops, client, rt.ledger)
    except (PayloadError, ValidationError, ValueError) as exc:
        # our own validation refused the payload before sending: permanent, Klaviyo never saw it
        _dead_letter_local(rt, env, env["operations"], f"refused before sending: {exc}")
        return None
    except RateLimitedLocally as exc:
        _reschedule(rt, env, exc.delay + random.uniform(0, 0.2))
        return None
    except EndpointParkedError as exc:
        rt.exceptions.record(
            "endpoint_parked", exc.endpoint, f"Klaviyo throttled {exc.endpoint} until {time.ctime(exc.until)}; "
            "its work is parked until then", severity="critical", details={"until": exc.until},
        )
        _reschedule(rt, env, exc.until - time.time() + random.uniform(0, 5))
        return None
    except ThrottledError as exc:
        env["attempts"] = (env["attempts"] + [_attempt(exc).model_dump()])[-MAX_ATTEMPTS_KEPT:]
        _reschedule(rt, env, (exc.retry_after or 1.0) + random.uniform(0, 1.0))
        return None
    except TransientError as exc:
        env["attempts"] = (env["attempts"] + [_attempt(exc).model_dump()])[-MAX_ATTEMPTS_KEPT:]
        failures = sum(1 for a in env["attempts"] if a.get("status") != 429)
        if failures >= rt.settings.max_attempts:
            _dead_letter(rt, env, env["operations"], f"gave up after {failures} transient failures")
        else:
            _reschedule(rt, env, exc.retry_after or backoff_delay(failures, rt.settings))
        return None
    except DuplicateProfileError as exc:
        env["attempts"].append(_attempt(exc).model_dump())
        for op in ops:
            # the documented rule (sync/customers/duplicates.py): resend without the phone when it was the
            # phone that collided; otherwise an operator merges the profiles and requeues the dead letter
            resolution = resolve_duplicate_profile(op, exc.duplicate_profile_id)
            rt.exceptions.record(
                "customer_mismatch", op.record or op.key, resolution.reason,
                severity="warning" if resolution.retry else "error", details=resolution.details,
            )
            if resolution.retry is not None:
                submit([resolution.retry])
            else:
                _dead_letter(rt, env, [op.model_dump(mode="json")],
                             "duplicate_profile: identifiers belong to different profiles")
        return None
    except PermanentError as exc:
        env["attempts"].append(_attempt(exc).model_dump())
        _dead_letter(rt, env, env["operations"], f"Klaviyo refused the request ({exc.status})")
        return None
    except (SoftTimeLimitExceeded, httpx.HTTPError, redis.RedisError, OSError) as exc:
        # unclassified trouble on the way (a time limit, a socket): never lose the message, retry it
        env["attempts"] = (env["attempts"] + [Attempt(at=time.time(), error=f"{type(exc).__name__}: {exc}")
                                              .model_dump()])[-MAX_ATTEMPTS_KEPT:]
        failures = sum(1 for a in env["attempts"] if a.get("status") != 429)
        if failures >= rt.settings.max_attempts:
            _dead_letter(rt, env, env["operations"], f"gave up after {failures} failures")
        else:
            _reschedule(rt, env, backoff_delay(failures, rt.settings))
        return None
    except Exception as exc:  # noqa: BLE001  a bug or a payload no sender expected: the task would ack and
        # drop the message (acks_on_failure); keep it for an operator instead, with what went wrong
        log.exception("unexpected error delivering envelope %s", env.get("id"))
        _dead_letter_local(rt, env, env["operations"], f"unexpected error: {type(exc).__name__}: {exc}")
        return None
    rt.ledger.record(result.delivered)
    if env["kind"] == "subscribe" and result.delivered:
        delivered = {entry.key for entry in result.delivered}
        again = crossed_by_newer_unsubscribe([op for op in ops if op.key in delivered], rt.ledger)
        if again:
            log.warning("%d subscribe(s) crossed a newer unsubscribe: unsubscribing again", len(again))
            submit(again)
    LaneStats(rt.redis, rt.settings.key_prefix).delivered(env["lane"], len(result.delivered), env.get("created"))
    for op, err in result.rejected:
        row_env = dict(env, attempts=env["attempts"] + [_attempt(err).model_dump()])
        reason = f"Klaviyo refused this row ({err.status})" if err.status else err.message[:500]
        _dead_letter(rt, row_env, [op.model_dump(mode="json")], reason)
    for task, args, delay in result.followups:
        rt.delayed.add(task, args, env["lane"], time.time() + delay)
    return result
