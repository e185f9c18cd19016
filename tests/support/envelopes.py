"""Every delivery envelope that exists, read in one instant of Redis, and the one-envelope-per-key check.

An envelope lives on a lane (`<prefix>:broker:<lane>`, a kombu message whose base64 body is celery's
[args, kwargs, embed]), in kombu's unacked hash while a worker holds it (tag -> [message, exchange, lane]) and in
the delayed-retry schedule's payload hash while it waits (entry -> {"task", "args", ...}); the same envelope id
can be in two of them for a moment (rescheduled before acknowledged, published before deleted).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from config.lanes import LANES
from config.task_names import DELIVER
from state.keys import RedisKeys

SAMPLE_EVERY_SECONDS = 0.2


def message_envelope(message: dict[str, Any]) -> dict[str, Any] | None:
    """The envelope a kombu message carries (None: not a delivery task)."""
    if not str((message.get("headers") or {}).get("task", "")).startswith(DELIVER):
        return None
    body: Any = message["body"]
    if (message.get("properties") or {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return args[0] if args and isinstance(args[0], dict) else None


def _scheduled_envelope(raw: str) -> dict[str, Any] | None:
    body = json.loads(raw)
    args = body.get("args") or []
    if str(body.get("task", "")).startswith(DELIVER) and args and isinstance(args[0], dict):
        return args[0]
    return None


@dataclass
class Sample:
    at: float
    envelopes: dict[str, dict[str, Any]]  # envelope id -> envelope (where it is in two places: most attempts)
    holders: dict[str, dict[str, Any]]  # operation key -> {"env", "version", "at"}: the in-flight registry
    due: dict[str, float]  # delayed-schedule entry id (= envelope id for a retry) -> due time
    delivered: dict[str, str]  # operation key -> version the ledger holds, for the keys asked for


def take_sample(client: redis.Redis, prefix: str, known: Iterable[str] = ()) -> Sample:
    """Every envelope, the registry, the schedule's due times and the ledger entries of the `known` operation
    keys, in one MULTI."""
    keys = RedisKeys(prefix)
    known = sorted(known)
    pipe = client.pipeline(transaction=True)
    for lane in LANES:
        pipe.lrange(keys.queue(lane), 0, -1)
    pipe.hgetall(keys.broker_unacked)
    pipe.hgetall(keys.delayed_payload)
    pipe.hgetall(keys.inflight_operations)
    pipe.zrange(keys.delayed_due, 0, -1, withscores=True)
    pipe.mget([keys.ledger(k) for k in known] or [keys.ledger("")])
    *queued, unacked, delayed, inflight, due, ledger = pipe.execute()
    found = [message_envelope(json.loads(raw)) for lane in queued for raw in lane]
    found += [message_envelope(json.loads(raw)[0]) for raw in unacked.values()]
    found += [_scheduled_envelope(raw) for raw in delayed.values()]
    envelopes: dict[str, dict[str, Any]] = {}
    for env in found:
        if env is not None and failures(env) >= failures(envelopes.get(env["id"], {})):
            envelopes[env["id"]] = env
    delivered = {k: str(json.loads(raw).get("version") or "") for k, raw in zip(known, ledger, strict=False) if raw}
    return Sample(time.time(), envelopes, {k: json.loads(v) for k, v in inflight.items()},
                  {str(entry): float(score) for entry, score in due}, delivered)


def failures(env: dict[str, Any]) -> int:
    """Attempts that count against max_attempts (a 429 does not: `delivery.envelope.Envelope.failures`)."""
    return sum(1 for attempt in env.get("attempts") or [] if attempt.get("status") != 429)


@dataclass(frozen=True)
class Carried:
    kind: str
    version: str


def carriers(sample: Sample) -> dict[str, dict[str, Carried]]:
    """operation key -> {envelope id: the kind and version it carries}."""
    out: dict[str, dict[str, Carried]] = {}
    for env_id, env in sample.envelopes.items():
        for op in env.get("operations") or []:
            carried = Carried(str(env.get("kind")), str(op.get("version") or ""))
            out.setdefault(str(op.get("key")), {})[env_id] = carried
    return out


def senders(key: str, envelopes: dict[str, Carried], sample: Sample) -> list[str]:
    """The envelopes that would send `key` if they ran now. One whose key another envelope holds in the registry
    (a newer version took it over) drops it unsent (`delivery.engine._held_elsewhere`); one whose operation the
    ledger already has skips it (`delivery.sending.pending`)."""
    holder = sample.holders.get(key)
    done = sample.delivered.get(key)
    out = []
    for env_id, carried in envelopes.items():
        if holder is not None and holder["env"] != env_id:
            continue
        if done is not None and (carried.kind == "event" or (carried.version and done >= carried.version)):
            continue
        out.append(env_id)
    return out


@dataclass
class EnvelopeWatch:
    """A thread sampling every `SAMPLE_EVERY_SECONDS`: one piece of work in flight once, i.e. per operation key
    never two envelopes carrying the same version and never two that would send it."""

    client: redis.Redis
    prefix: str
    started: float = field(default_factory=time.time)
    samples: int = 0
    max_carriers: int = 0  # most envelopes carrying one key at one instant (superseded ones included)
    max_senders: int = 0  # most envelopes that would send one key at one instant
    max_failures: int = 0  # most failed attempts one envelope carried
    keys: set[str] = field(default_factory=set)  # every operation key seen (its ledger entry is read each time)
    violations: list[str] = field(default_factory=list)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> EnvelopeWatch:
        self._thread = threading.Thread(target=self._run, name="envelope-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def sample(self) -> Sample:
        return take_sample(self.client, self.prefix, self.keys)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.check(self.sample())
                self._stop.wait(SAMPLE_EVERY_SECONDS)
        except BaseException as exc:  # noqa: BLE001  the caller raises it: a broken watch must not look clean
            self.error = exc

    def check(self, sample: Sample) -> None:
        self.samples += 1
        for env in sample.envelopes.values():
            self.max_failures = max(self.max_failures, failures(env))
        for key, envelopes in carriers(sample).items():
            self.keys.add(key)
            sending = senders(key, envelopes, sample)
            versions = [carried.version for carried in envelopes.values()]
            self.max_carriers = max(self.max_carriers, len(envelopes))
            self.max_senders = max(self.max_senders, len(sending))
            if len(sending) > 1 or len(set(versions)) < len(versions):
                carried = {env_id: c.version for env_id, c in envelopes.items()}
                self.violations.append(
                    f"{sample.at - self.started:+.1f}s {key}: carried by {carried} (registry holder "
                    f"{sample.holders.get(key)}, ledger {sample.delivered.get(key)})"
                )
