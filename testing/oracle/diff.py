"""Klaviyo's state against the expectation: every difference as a `Finding` of one kind (docs/rules.md)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from testing.oracle.events import EventCheck
from testing.oracle.expected import ExpectedProfile, ExpectedState
from testing.oracle.findings import CENT, Finding, StateDiff


def diff_state(expected: ExpectedState, klaviyo_state: dict[str, Any]) -> StateDiff:
    profiles: dict[str, dict[str, Any]] = klaviyo_state.get("profiles") or {}
    owners_of = profile_owners(expected, profiles)
    clusters: dict[str, list[str]] = defaultdict(list)
    for profile_id, owners in owners_of.items():
        for owner in owners:
            clusters[owner].append(profile_id)
    diff = StateDiff(skipped=list(expected.skipped), waiting=list(expected.waiting))
    diff.findings += profile_findings(expected, profiles, owners_of, clusters)
    diff.findings += EventCheck(expected, klaviyo_state.get("events") or {}, owners_of).findings()
    variants = (klaviyo_state.get("catalog") or {}).get("variants") or {}
    diff.findings += stock_findings(expected, variants)
    return diff


def identities(profile: dict[str, Any]) -> list[str]:
    email = (profile.get("email") or "").strip().lower()
    pairs = (("external_id", profile.get("external_id")), ("email", email), ("phone", profile.get("phone_number")))
    return [f"{kind}:{value}" for kind, value in pairs if value]


def profile_owners(expected: ExpectedState, profiles: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Klaviyo profile id -> the owners (customer or guest) one of its identifiers belongs to."""
    index: dict[str, str] = {}
    for wanted in expected.profiles.values():
        index[f"email:{wanted.email}"] = wanted.owner
        if wanted.external_id:
            index[f"external_id:{wanted.external_id}"] = wanted.owner
        if wanted.phone_number and wanted.check_phone:
            index[f"phone:{wanted.phone_number}"] = wanted.owner
    return {pid: {index[i] for i in identities(p) if i in index} for pid, p in profiles.items()}


def primary(wanted: ExpectedProfile, cluster: list[str], profiles: dict[str, dict[str, Any]]) -> str:
    """The owner's own profile: the one with its external_id, else its email, else its phone."""
    def rank(pid: str) -> tuple[bool, bool, str]:
        profile = profiles[pid]
        return (profile.get("external_id") != wanted.external_id or wanted.external_id is None,
                (profile.get("email") or "").strip().lower() != wanted.email, pid)
    return min(cluster, key=rank)


def profile_findings(expected: ExpectedState, profiles: dict[str, dict[str, Any]],
                     owners_of: dict[str, set[str]], clusters: dict[str, list[str]]) -> list[Finding]:
    found: list[Finding] = []
    for pid, owners in owners_of.items():
        if not owners and not any(i in expected.tolerated_identities for i in identities(profiles[pid])):
            erased = [expected.deleted_identities[i] for i in identities(profiles[pid])
                      if i in expected.deleted_identities]
            why = f"customer {erased[0]} is deleted in the ERP" if erased else "matches no customer or guest shopper"
            found.append(Finding("profiles_extra", f"profile:{pid}", None, identities(profiles[pid]), why))
    for owner, wanted in expected.profiles.items():
        cluster = sorted(clusters.get(owner, []))
        if not cluster:
            found.append(Finding("profiles_missing", owner, wanted.email, None, "no Klaviyo profile"))
            continue
        main = profiles[primary(wanted, cluster, profiles)]
        if len(cluster) > 1:
            found.append(Finding("profiles_split", owner, 1, cluster, f"identity spread over {len(cluster)} profiles"))
        else:
            found += field_findings(wanted, main)
        found += aggregate_findings(wanted, main)
        found += consent_findings(wanted, [profiles[pid] for pid in cluster], main)
    return found


def field_findings(wanted: ExpectedProfile, profile: dict[str, Any]) -> list[Finding]:
    fields = {"email": wanted.email, "external_id": wanted.external_id}
    if wanted.check_phone:
        fields["phone_number"] = wanted.phone_number
    wrong = {name: value for name, value in fields.items() if profile.get(name) != value}
    if not wrong:
        return []
    actual = {name: profile.get(name) for name in wrong}
    return [Finding("profiles_wrong", wanted.owner, wrong, actual, f"{', '.join(wrong)} differ(s)")]


def aggregate_findings(wanted: ExpectedProfile, profile: dict[str, Any]) -> list[Finding]:
    properties = profile.get("properties") or {}
    wrong = {name: value for name, value in wanted.aggregates.items() if not same(value, properties.get(name))}
    if not wrong:
        return []
    actual = {name: properties.get(name) for name in wrong}
    return [Finding("aggregates_wrong", wanted.owner, wrong, actual, f"{', '.join(wrong)} differ(s)")]


def same(expected: object, actual: object) -> bool:
    """An absent property equals an empty aggregate (0 or no date); numbers to a cent; dates as instants."""
    if isinstance(expected, str) or (expected is None and isinstance(actual, str)):
        try:
            return expected is not None and isinstance(actual, str) and (
                datetime.fromisoformat(expected) == datetime.fromisoformat(actual))
        except ValueError:
            return False
    if expected is None:
        return actual is None
    if actual is None:
        actual = 0
    if isinstance(actual, bool) or not isinstance(actual, int | float) or not isinstance(expected, int | float):
        return False
    return abs(actual - expected) <= CENT


def consent_findings(wanted: ExpectedProfile, cluster: list[dict[str, Any]], main: dict[str, Any]) -> list[Finding]:
    """Per channel, the consent of the profile holding that channel's identifier (else the owner's own)."""
    if wanted.consent is None:
        return []
    found = []
    for channel, subscribed in wanted.consent.items():
        identifier = ("email", wanted.email) if channel == "email" else ("phone_number", wanted.phone_number)
        holder = next((p for p in cluster if (p.get(identifier[0]) or "").lower() == identifier[1]), main)
        consent = ((holder.get("subscriptions") or {}).get(channel) or {}).get("marketing", {}).get("consent")
        if (consent == "SUBSCRIBED") != subscribed:
            expected = "SUBSCRIBED" if subscribed else "not SUBSCRIBED"
            found.append(Finding("consent_wrong", f"consent:{channel}:{wanted.owner}", expected, consent,
                                 f"{channel} consent disagrees with the ERP flag"))
    return found


def stock_findings(expected: ExpectedState, variants: dict[str, dict[str, Any]]) -> list[Finding]:
    by_external_id = {v.get("external_id") or vid.rsplit(":::", 1)[-1]: v for vid, v in variants.items()}
    found = []
    for external_id, quantity in sorted(expected.variants.items()):
        variant = by_external_id.get(external_id)
        actual = None if variant is None else variant.get("inventory_quantity")
        if actual != quantity:
            why = "variant missing in the catalog" if variant is None else "inventory_quantity is not available to sell"
            found.append(Finding("stock_wrong", f"variant:{external_id}", quantity, actual, why))
    return found
