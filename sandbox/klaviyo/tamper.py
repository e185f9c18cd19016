"""``POST /_sandbox/tamper``: plant differences in the stored state, for tests of an expected-state oracle.

A list of ops is validated in full first (an unknown op, id or field refuses the whole list, nothing applied),
then applied in order. Identity stays consistent: an email, phone number or external id belongs to at most
one profile, checked against the state as the earlier ops of the same list leave it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.klaviyo.profiles import IDENTIFIERS, PLAIN_ATTRIBUTES, Consent, Profile, subscribe, unsubscribe
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.klaviyo.timeutil import from_epoch

PROFILE_ATTRIBUTES = frozenset((*IDENTIFIERS, *PLAIN_ATTRIBUTES, "location", "properties"))
CONSENTS = ("SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")
CHANNELS = ("email", "sms")


class TamperError(ValueError):
    """A refused list of ops; the message names the op and what is wrong."""


@dataclass
class Plan:
    """What the ops validated so far will have done: identifiers claimed and events deleted."""

    sandbox: KlaviyoSandbox
    claims: dict[tuple[str, str], str] = field(default_factory=dict)  # (identifier, key) -> profile id or ""
    values: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (profile id, identifier) -> value
    deleted_events: set[str] = field(default_factory=set)

    def owner(self, name: str, value: str) -> str | None:
        key = (name, value.lower() if name == "email" else value)
        if key in self.claims:
            return self.claims[key] or None
        found = self.sandbox.profiles.find(name, value)
        return found.id if found else None

    def current(self, profile_id: str, name: str) -> str | None:
        if (profile_id, name) in self.values:
            return self.values[(profile_id, name)]
        profile = self.sandbox.profiles.by_id.get(profile_id)
        return getattr(profile, name) if profile else None

    def claim(self, profile_id: str, attributes: dict[str, Any]) -> None:
        for name in IDENTIFIERS:
            if name not in attributes:
                continue
            value = attributes[name]
            if value is not None and self.owner(name, value) not in (None, profile_id):
                raise TamperError(f"{name} {value!r} already belongs to profile {self.owner(name, value)}")
            old = self.current(profile_id, name)
            if old is not None:
                self.claims[(name, old.lower() if name == "email" else old)] = ""
            if value is not None:
                self.claims[(name, value.lower() if name == "email" else value)] = profile_id
            self.values[(profile_id, name)] = value


def _text(op: dict[str, Any], name: str) -> str:
    value = op.get(name)
    if not isinstance(value, str) or not value:
        raise TamperError(f"'{name}' must be a non-empty string, got {value!r}")
    return value


def _profile(plan: Plan, op: dict[str, Any]) -> str:
    profile_id = _text(op, "profile_id")
    if profile_id not in plan.sandbox.profiles.by_id:
        raise TamperError(f"unknown profile_id {profile_id!r}")
    return profile_id


def _attributes(op: dict[str, Any]) -> dict[str, Any]:
    attributes = op.get("attributes")
    if not isinstance(attributes, dict) or not attributes:
        raise TamperError("'attributes' must be a non-empty object")
    unknown = sorted(set(attributes) - PROFILE_ATTRIBUTES)
    if unknown:
        raise TamperError(f"unknown profile attribute(s) {unknown} (known: {sorted(PROFILE_ATTRIBUTES)})")
    for name in IDENTIFIERS:
        if attributes.get(name) is not None and not isinstance(attributes[name], str):
            raise TamperError(f"{name} must be a string or null, got {attributes[name]!r}")
    if not isinstance(attributes.get("properties", {}), dict):
        raise TamperError("'properties' must be an object (a null value removes that property)")
    if not isinstance(attributes.get("location", {}), dict | None):
        raise TamperError("'location' must be an object or null")
    return attributes


def check_delete_event(plan: Plan, op: dict[str, Any]) -> None:
    event_id = _text(op, "event_id")
    if event_id in plan.deleted_events or plan.sandbox.events.find(event_id) is None:
        raise TamperError(f"unknown event_id {event_id!r}")
    plan.deleted_events.add(event_id)


def check_set_profile(plan: Plan, op: dict[str, Any]) -> None:
    plan.claim(_profile(plan, op), _attributes(op))


def check_add_profile(plan: Plan, op: dict[str, Any]) -> None:
    attributes = _attributes(op)
    if all(attributes.get(name) is None for name in IDENTIFIERS):
        raise TamperError(f"a new profile needs one of {', '.join(IDENTIFIERS)}")
    plan.claim(f"(new profile of op {id(op)})", attributes)  # a placeholder id no real profile has


def check_set_consent(plan: Plan, op: dict[str, Any]) -> None:
    _profile(plan, op)
    if op.get("channel") not in CHANNELS:
        raise TamperError(f"'channel' must be one of {CHANNELS}, got {op.get('channel')!r}")
    if op.get("consent") not in CONSENTS:
        raise TamperError(f"'consent' must be one of {CONSENTS}, got {op.get('consent')!r}")


def check_set_variant_inventory(plan: Plan, op: dict[str, Any]) -> None:
    variant_id = _text(op, "variant_id")
    if variant_id not in plan.sandbox.catalog.variants:
        raise TamperError(f"unknown variant_id {variant_id!r}")
    quantity = op.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise TamperError(f"'quantity' must be an integer, got {quantity!r}")


def check_set_event(plan: Plan, op: dict[str, Any]) -> None:
    event_id = _text(op, "event_id")
    if event_id in plan.deleted_events or plan.sandbox.events.find(event_id) is None:
        raise TamperError(f"unknown event_id {event_id!r}")
    value = op.get("value", 0)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TamperError(f"'value' must be a number or null, got {value!r}")
    if not isinstance(op.get("properties", {}), dict):
        raise TamperError("'properties' must be an object (a null value removes that property)")


def check_delete_profile(plan: Plan, op: dict[str, Any]) -> None:
    profile_id = _profile(plan, op)
    plan.claim(profile_id, {name: None for name in IDENTIFIERS})


def check_merge_profiles(plan: Plan, op: dict[str, Any]) -> None:
    source = _text(op, "source_id")
    destination = _text(op, "destination_id")
    for profile_id in (source, destination):
        if profile_id not in plan.sandbox.profiles.by_id:
            raise TamperError(f"unknown profile id {profile_id!r}")
    if source == destination:
        raise TamperError("a profile cannot be merged into itself")
    plan.claim(source, {name: None for name in IDENTIFIERS})


def check_delete_catalog(plan: Plan, op: dict[str, Any]) -> None:
    kind = op.get("kind")
    if kind not in ("catalog-item", "catalog-variant"):
        raise TamperError(f"'kind' must be catalog-item or catalog-variant, got {kind!r}")
    table = plan.sandbox.catalog.items if kind == "catalog-item" else plan.sandbox.catalog.variants
    if _text(op, "id") not in table:
        raise TamperError(f"unknown {kind} id {op['id']!r}")


def set_attributes(sandbox: KlaviyoSandbox, profile: Profile, attributes: dict[str, Any]) -> None:
    for name in IDENTIFIERS:
        if name in attributes:
            sandbox.profiles.set_identifier(profile, name, attributes[name])  # keeps the indexes true
    for name in PLAIN_ATTRIBUTES:
        if name in attributes:
            profile.attributes[name] = attributes[name]
    if attributes.get("location", {}) is None:
        profile.location.clear()
    else:
        profile.location.update(attributes.get("location") or {})
    for key, value in (attributes.get("properties") or {}).items():
        if value is None:
            profile.properties.pop(key, None)
        else:
            profile.properties[key] = value
    sandbox.profiles.touch(profile, sandbox.now())


def delete_event(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    event = sandbox.events.find(op["event_id"])
    assert event is not None  # checked
    sandbox.events.remove(event)
    return {"op": "delete_event", "event_id": event.id}


def set_profile(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    set_attributes(sandbox, sandbox.profiles.by_id[op["profile_id"]], op["attributes"])
    return {"op": "set_profile", "profile_id": op["profile_id"]}


def add_profile(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    profile = sandbox.profiles.create(sandbox.now())
    set_attributes(sandbox, profile, op["attributes"])
    return {"op": "add_profile", "profile_id": profile.id}


def set_consent(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    """The consent as the API would leave it: subscribing lifts email suppressions, unsubscribing adds one."""
    profile = sandbox.profiles.by_id[op["profile_id"]]
    channel, consent, now = op["channel"], op["consent"], sandbox.now()
    if consent == "SUBSCRIBED":
        subscribe(profile, {channel: {"marketing": {"consent": consent}}}, historical=False, list_id=None, now=now)
    elif consent == "UNSUBSCRIBED":
        unsubscribe(profile, {channel: {"marketing": True}}, list_id=None, now=now)
    else:
        setattr(profile, f"{channel}_marketing", Consent())
        profile.updated = from_epoch(now)
    return {"op": "set_consent", "profile_id": profile.id, "channel": channel, "consent": consent}


def set_variant_inventory(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    sandbox.catalog.update("catalog-variant", op["variant_id"], {"inventory_quantity": op["quantity"]}, sandbox.now())
    return {"op": "set_variant_inventory", "variant_id": op["variant_id"], "quantity": op["quantity"]}


def set_event(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    """Change an event behind the fleet's back: its value and/or properties (what Klaviyo's UI cannot, but an
    integration that deletes and re-creates events can)."""
    event = sandbox.events.find(op["event_id"])
    assert event is not None  # checked
    if "value" in op:
        event.value = op["value"]
    for key, value in (op.get("properties") or {}).items():
        if value is None:
            event.properties.pop(key, None)
        else:
            event.properties[key] = value
    return {"op": "set_event", "event_id": event.id}


def delete_profile(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    """A profile deleted in Klaviyo's UI: it goes with its events."""
    profile = sandbox.profiles.by_id[op["profile_id"]]
    sandbox.events.forget_profile(profile.id)
    sandbox.profiles.delete(profile)
    return {"op": "delete_profile", "profile_id": profile.id}


def merge_profiles(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    """A merge by hand in Klaviyo: the destination keeps its identifiers and gains the source's events; the
    source profile is gone."""
    source = sandbox.profiles.by_id[op["source_id"]]
    destination = op["destination_id"]
    log = sandbox.events
    moved = log.by_profile.pop(source.id, [])
    for event in moved:
        log.seen.discard((source.id, event.metric_id, f"u:{event.unique_id}" if event.unique_id is not None
                          else f"t:{int(event.time.timestamp())}"))
        event.profile_id = destination
        log.by_profile[destination].append(event)
    sandbox.profiles.delete(source)
    return {"op": "merge_profiles", "destination_id": destination, "events_moved": len(moved)}


def delete_catalog(sandbox: KlaviyoSandbox, op: dict[str, Any]) -> dict[str, Any]:
    catalog = sandbox.catalog
    if op["kind"] == "catalog-item":
        item = catalog.items.pop(op["id"])
        for variant_id in item.variant_ids:
            catalog.variants.pop(variant_id, None)
    else:
        variant = catalog.variants.pop(op["id"])
        if variant.item_id in catalog.items:
            catalog.items[variant.item_id].variant_ids.remove(variant.id)
    return {"op": "delete_catalog", "kind": op["kind"], "id": op["id"]}


Check = Callable[[Plan, dict[str, Any]], None]
Apply = Callable[[KlaviyoSandbox, dict[str, Any]], dict[str, Any]]
OPS: dict[str, tuple[Check, Apply]] = {
    "delete_event": (check_delete_event, delete_event),
    "set_profile": (check_set_profile, set_profile),
    "set_consent": (check_set_consent, set_consent),
    "set_variant_inventory": (check_set_variant_inventory, set_variant_inventory),
    "add_profile": (check_add_profile, add_profile),
    "set_event": (check_set_event, set_event),
    "delete_profile": (check_delete_profile, delete_profile),
    "merge_profiles": (check_merge_profiles, merge_profiles),
    "delete_catalog": (check_delete_catalog, delete_catalog),
}


def tamper(sandbox: KlaviyoSandbox, ops: Any) -> list[dict[str, Any]]:
    """Validate every op, then apply them in order; one result per op. Raises TamperError (nothing applied)."""
    if not isinstance(ops, list):
        raise TamperError('tamper: expected a JSON list of ops like [{"op": "delete_event", "event_id": "..."}]')
    plan = Plan(sandbox)
    for index, op in enumerate(ops):
        name = op.get("op") if isinstance(op, dict) else None
        if name not in OPS:
            raise TamperError(f"op #{index}: unknown op {name!r} (known: {', '.join(OPS)})")
        try:
            OPS[name][0](plan, op)
        except TamperError as exc:
            raise TamperError(f"op #{index} ({name}): {exc}") from None
    return [OPS[op["op"]][1](sandbox, op) for op in ops]
