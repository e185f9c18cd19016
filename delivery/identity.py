"""Which Klaviyo profile each operation names, settled just before it is sent.

The rule (docs/architecture.md, "Identifiers per operation"):
- a customer's profile upsert goes first and creates the profile (external_id, email, phone); its answer
  gives the profile id, kept in `state.profiles`. One write per customer at a time (a lease), and an
  attribute a newer write already set is left out: newest wins per field, whatever path carried it;
- subscribes, the customer's order events and aggregate refreshes (`Operation.profile_of`) name the profile
  by that id; until it is known they wait. After state loss the id is looked up by external_id. Past
  `profile_wait_seconds` an exception names the customer and what waited, and the operations are
  dead-lettered for an operator to requeue;
- unsubscribes never wait (consent is compliance): they go by the email / phone Klaviyo holds for the
  customer (kept from the last write, else looked up), else by the ERP's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import KlaviyoError, RateLimitedLocally
from state.profiles import Identity, ProfileStore
from sync.operations import Operation

log = logging.getLogger(__name__)

NEEDS_ID = ("subscribe", "event", "profile_upsert")
ALWAYS_SENT = ("external_id",)  # how the upsert finds its profile: never left out


def upsert_customer(op: Operation) -> str | None:
    """The customer whose profile this customer upsert writes (aggregate refreshes are not such writes)."""
    if op.kind == "profile_upsert" and op.profile_of is None and op.record and op.record.startswith("customer:"):
        return op.record.split(":", 1)[1]
    return None


def attribute_names(payload: dict[str, Any]) -> list[str]:
    """The attributes a profile payload writes, one per property (`properties.<name>`)."""
    names: list[str] = []
    for key, value in payload.items():
        if key == "properties" and isinstance(value, dict):
            names.extend(f"properties.{name}" for name in value)
        elif key not in ("id", "patch_properties"):
            names.append(key)
    return names


def without_older(payload: dict[str, Any], version: str, newer: dict[str, str]) -> dict[str, Any] | None:
    """`payload` less the attributes a newer write set (`newer`: attribute -> version); None when nothing
    but identifiers is left to write."""
    kept: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "properties" and isinstance(value, dict):
            props = {n: v for n, v in value.items() if newer.get(f"properties.{n}", "") <= version}
            if props:
                kept[key] = props
        elif key in ALWAYS_SENT or newer.get(key, "") <= version:
            kept[key] = value
    return kept if set(kept) - set(ALWAYS_SENT) else None


@dataclass
class Prepared:
    ready: list[Operation] = field(default_factory=list)  # to send now, profiles named
    waiting: list[Operation] = field(default_factory=list)  # their customer's profile id is not known yet
    busy: list[Operation] = field(default_factory=list)  # another envelope writes the profile right now
    done: list[Operation] = field(default_factory=list)  # newer writes already set everything they carry
    leased: set[str] = field(default_factory=set)  # customers whose write lease this envelope took
    coming: set[str] = field(default_factory=set)  # waiting customers whose profile upsert is in flight now


def _identity_of(profile: dict[str, Any]) -> Identity:
    attrs = profile.get("attributes") or {}
    return Identity(id=str(profile["id"]) if profile.get("id") else None,
                    email=attrs.get("email"), phone_number=attrs.get("phone_number"))


def look_up(client: KlaviyoClient, codes: set[str]) -> dict[str, Identity]:
    """Klaviyo's profiles of these customers, by external_id. Two profiles with one external_id (made before
    this rule): the oldest is named, as Klaviyo's own merge would keep it."""
    found: dict[str, Identity] = {}
    profiles = sorted(client.profiles_by_external_id(sorted(codes)),
                      key=lambda p: str((p.get("attributes") or {}).get("created") or ""))
    for profile in profiles:
        code = (profile.get("attributes") or {}).get("external_id")
        if code in codes and code not in found and profile.get("id"):
            found[code] = _identity_of(profile)
    return found


def _with_id(op: Operation, profile_id: str) -> Operation:
    payload = dict(op.payload)
    if op.kind == "profile_upsert":  # an aggregate refresh: properties of that profile, by id only
        payload = {"id": profile_id, **{k: v for k, v in payload.items()
                                        if k not in ("id", "external_id", "email", "phone_number")}}
    elif op.kind == "event":
        payload["profile"] = {"id": profile_id}
    else:  # subscribe: the channel's address stays (Klaviyo requires it), the id says whose
        payload["profile"] = {**(payload.get("profile") or {}), "id": profile_id}
    return op.model_copy(update={"payload": payload})


def _held_identifiers(op: Operation, identity: Identity | None) -> Operation:
    """An unsubscribe by the email / phone Klaviyo holds for the customer, where the fleet knows them."""
    if identity is None:
        return op
    profile = dict(op.payload.get("profile") or {})
    channel = op.payload.get("channel")
    if channel == "email" and identity.email:
        profile["email"] = identity.email
    if channel == "sms" and identity.phone_number:
        profile["phone_number"] = identity.phone_number
    return op.model_copy(update={"payload": {**op.payload, "profile": profile}})


def _address(op: Operation) -> str | None:
    profile = op.payload.get("profile") or {}
    return profile.get("email" if op.payload.get("channel") == "email" else "phone_number") or None


def prepare(ops: list[Operation], store: ProfileStore, client: KlaviyoClient, holder: str,
            lease_seconds: float, upserts_in_flight: set[str] | None = None) -> Prepared:
    """Name each operation's profile, or set it aside. `upserts_in_flight`: customers whose profile upsert
    another envelope carries now (their id is coming: no lookup is spent on them)."""
    out = Prepared()
    dependents: list[Operation] = []
    unsubscribes: list[Operation] = []
    writes: list[Operation] = []
    for op in ops:  # one pass: a batch envelope carries up to 1,000 events
        if op.profile_of and op.kind in NEEDS_ID:
            dependents.append(op)
        elif op.profile_of and op.kind == "unsubscribe":
            unsubscribes.append(op)
        elif upsert_customer(op):
            writes.append(op)
        else:
            out.ready.append(op)
    known = store.identities({op.profile_of for op in dependents + unsubscribes if op.profile_of})
    if dependents:
        _prepare_dependents(dependents, known, store, client, upserts_in_flight or set(), out)
    if unsubscribes:
        _prepare_unsubscribes(unsubscribes, known, store, client, out)
    if writes:
        _prepare_writes(writes, store, holder, lease_seconds, out)
    return out


def _prepare_dependents(ops: list[Operation], known: dict[str, Identity], store: ProfileStore,
                        client: KlaviyoClient, coming: set[str], out: Prepared) -> None:
    missing = {op.profile_of for op in ops if op.profile_of and not
               (op.profile_of in known and known[op.profile_of].id)} - coming
    if missing:
        found = look_up(client, missing)  # may raise: the engine's policy reschedules the envelope
        store.remember(found)
        known.update(found)
    for op in ops:
        identity = known.get(op.profile_of or "")
        if identity is not None and identity.id:
            out.ready.append(_with_id(op, identity.id))
        else:
            out.waiting.append(op)
    out.coming = {op.profile_of for op in out.waiting if op.profile_of} & coming


def _prepare_unsubscribes(ops: list[Operation], known: dict[str, Identity], store: ProfileStore,
                          client: KlaviyoClient, out: Prepared) -> None:
    unknown = {op.profile_of for op in ops if op.profile_of and (
        op.profile_of not in known or not _address(_held_identifiers(op, known[op.profile_of])))}
    if unknown:
        try:
            found = look_up(client, unknown)
            store.remember(found)
            known.update(found)
        except (KlaviyoError, RateLimitedLocally) as exc:  # never wait: the ERP's address goes
            log.info("unsubscribes go by the ERP's identifiers (lookup failed: %s)", exc)
    for op in ops:
        held = _held_identifiers(op, known.get(op.profile_of or ""))
        # no address anywhere (an opt-out whose phone was blanked, and Klaviyo holds none): nothing to undo
        (out.ready if _address(held) else out.done).append(held)


def _prepare_writes(writes: list[Operation], store: ProfileStore, holder: str, lease_seconds: float,
                    out: Prepared) -> None:
    codes = {code for op in writes if (code := upsert_customer(op))}
    out.leased = store.acquire(codes, holder, lease_seconds)
    versions = store.versions(out.leased)
    for op in writes:
        code = upsert_customer(op) or ""
        if code not in out.leased:
            out.busy.append(op)
            continue
        payload = without_older(op.payload, op.version or "", versions.get(code, {}))
        if payload is None:
            out.done.append(op)
        else:
            out.ready.append(op.model_copy(update={"payload": payload}))


def written(op: Operation, answer: dict[str, Any] | None = None) -> tuple[str, str, dict[str, str | None]] | None:
    """What a confirmed customer upsert wrote: (code, version, {attribute: value}); for email and phone
    the value Klaviyo answered with when it answered (it may have dropped a phone it could not validate)."""
    code = upsert_customer(op)
    if code is None or not op.version:
        return None
    attrs = (answer or {}).get("attributes") if answer else None
    values: dict[str, str | None] = {}
    for name in attribute_names(op.payload):
        value = op.payload.get(name)
        if name in ("email", "phone_number") and isinstance(attrs, dict) and name in attrs:
            value = attrs.get(name)
        values[name] = value if isinstance(value, str) else None if value is None else "set"
    return code, op.version, values
