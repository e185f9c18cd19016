"""Profiles: identity by id / email / phone / external_id, attributes, properties and consent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from sandbox.klaviyo.errors import ApiError, ErrorItem
from sandbox.klaviyo.ids import IdFactory
from sandbox.klaviyo.timeutil import from_epoch, iso

IDENTIFIERS = ("email", "phone_number", "external_id")
PLAIN_ATTRIBUTES = ("first_name", "last_name", "organization", "locale", "title", "image")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Subscribing lifts these email suppressions (reference: "Subscribing removes ...")
LIFTED_BY_SUBSCRIBE = {"UNSUBSCRIBE", "SPAM_REPORT", "USER_SUPPRESSED"}


def email_key(email: str) -> str:
    """Emails identify case-insensitively; the profile keeps the spelling it was last sent."""
    return email.lower()


class ProfileConflict(Exception):
    def __init__(self, duplicate_profile_id: str) -> None:
        super().__init__(duplicate_profile_id)
        self.duplicate_profile_id = duplicate_profile_id


def check_email(value: Any, pointer: str) -> list[ErrorItem]:
    if value is None or (isinstance(value, str) and EMAIL_RE.match(value)):
        return []
    return [ErrorItem(400, f"Invalid email address: {value!r}.", pointer)]


def check_phone(value: Any, pointer: str) -> list[ErrorItem]:
    """E.164, and a number libphonenumber considers valid."""
    if value is None:
        return []
    detail = f"Invalid phone number format (Example of a valid format: +13239169023): {value!r}."
    if not isinstance(value, str) or not re.fullmatch(r"\+[1-9]\d{1,14}", value):
        return [ErrorItem(400, detail, pointer)]
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        valid = False
    return [] if valid else [ErrorItem(400, detail, pointer)]


def check_identifiers(attributes: dict[str, Any], pointer: str) -> list[ErrorItem]:
    return check_email(attributes.get("email"), f"{pointer}/email") + check_phone(
        attributes.get("phone_number"), f"{pointer}/phone_number"
    )


@dataclass
class Consent:
    consent: str = "NEVER_SUBSCRIBED"
    consent_timestamp: datetime | None = None
    last_updated: datetime | None = None
    method: str | None = None
    method_detail: str | None = None
    suppression: list[dict[str, Any]] = field(default_factory=list)
    list_suppressions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Profile:
    id: str
    created: datetime
    updated: datetime
    seq: int
    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    location: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    email_marketing: Consent = field(default_factory=Consent)
    sms_marketing: Consent = field(default_factory=Consent)
    sms_transactional: Consent = field(default_factory=Consent)
    lists: set[str] = field(default_factory=set)
    last_event_date: datetime | None = None

    def subscriptions(self) -> dict[str, Any]:
        """The `additional-fields[profile]=subscriptions` shape of the real API."""
        email = self.email_marketing
        sms, transactional = self.sms_marketing, self.sms_transactional
        return {
            "email": {
                "marketing": {
                    "can_receive_email_marketing": self.email is not None
                    and email.consent != "UNSUBSCRIBED"
                    and not email.suppression,
                    "consent": email.consent,
                    "consent_timestamp": iso(email.consent_timestamp),
                    "last_updated": iso(email.last_updated),
                    "method": email.method,
                    "method_detail": email.method_detail,
                    "custom_method_detail": None,
                    "double_optin": None,
                    "suppression": [
                        {"reason": s["reason"], "timestamp": iso(s["timestamp"])} for s in email.suppression
                    ],
                    "list_suppressions": [
                        {"list_id": s["list_id"], "reason": s["reason"], "timestamp": iso(s["timestamp"])}
                        for s in email.list_suppressions
                    ],
                }
            },
            "sms": {
                "marketing": {
                    "can_receive_sms_marketing": self.phone_number is not None and sms.consent == "SUBSCRIBED",
                    "consent": sms.consent,
                    "consent_timestamp": iso(sms.consent_timestamp),
                    "method": sms.method,
                    "method_detail": sms.method_detail,
                    "last_updated": iso(sms.last_updated),
                },
                "transactional": {
                    "can_receive_sms_transactional": self.phone_number is not None
                    and transactional.consent == "SUBSCRIBED",
                    "consent": transactional.consent,
                    "consent_timestamp": iso(transactional.consent_timestamp),
                    "method": transactional.method,
                    "method_detail": transactional.method_detail,
                    "last_updated": iso(transactional.last_updated),
                },
            },
        }

    def attributes_json(self, with_subscriptions: bool = False) -> dict[str, Any]:
        location_keys = ("address1", "address2", "city", "country", "latitude", "longitude", "region", "zip")
        result: dict[str, Any] = {
            "email": self.email,
            "phone_number": self.phone_number,
            "external_id": self.external_id,
            **{name: self.attributes.get(name) for name in PLAIN_ATTRIBUTES},
            "created": iso(self.created),
            "updated": iso(self.updated),
            "last_event_date": iso(self.last_event_date),
            "location": {
                **{key: self.location.get(key) for key in location_keys},
                "timezone": self.location.get("timezone"),
                "ip": self.location.get("ip"),
            },
            "properties": dict(self.properties),
        }
        if with_subscriptions:
            result["subscriptions"] = self.subscriptions()
        return result

    def lookup(self, name: str) -> Any:
        """Field values for `filter=` on GET /api/profiles."""
        if name in ("created", "updated"):
            return getattr(self, name)
        if name == "id":
            return self.id
        return getattr(self, name, None) if name in IDENTIFIERS else self.attributes.get(name)


class ProfileBook:
    """All profiles with an index per identifier; emails match case-insensitively."""

    def __init__(self, ids: IdFactory) -> None:
        self.ids = ids
        self.by_id: dict[str, Profile] = {}
        self.index: dict[str, dict[str, str]] = {name: {} for name in IDENTIFIERS}
        self._seq = 0

    @staticmethod
    def _key(name: str, value: str) -> str:
        return email_key(value) if name == "email" else value

    def find(self, name: str, value: str | None) -> Profile | None:
        if value is None:
            return None
        if name == "id":
            return self.by_id.get(value)
        profile_id = self.index[name].get(self._key(name, value))
        return self.by_id.get(profile_id) if profile_id else None

    def matches(self, identifiers: dict[str, Any]) -> list[Profile]:
        """Distinct profiles owning the given identifiers, most authoritative identifier first."""
        found: list[Profile] = []
        for name in ("id", "external_id", "email", "phone_number"):
            profile = self.find(name, identifiers.get(name))
            if profile is not None and profile not in found:
                found.append(profile)
        return found

    def create(self, now: float) -> Profile:
        self._seq += 1
        moment = from_epoch(now)
        profile = Profile(id=self.ids.ulid(now), created=moment, updated=moment, seq=self._seq)
        self.by_id[profile.id] = profile
        return profile

    def set_identifier(self, profile: Profile, name: str, value: str | None) -> None:
        old = getattr(profile, name)
        if old is not None:
            self.index[name].pop(self._key(name, old), None)
        setattr(profile, name, value)
        if value is not None:
            self.index[name][self._key(name, value)] = profile.id

    def delete(self, profile: Profile) -> None:
        for name in IDENTIFIERS:
            self.set_identifier(profile, name, None)
        self.by_id.pop(profile.id, None)

    def resolve(
        self,
        identifiers: dict[str, Any],
        now: float,
        strict: bool,
        create: bool = True,
        id_pointer: str = "/data/id",
    ) -> tuple[Profile | None, bool]:
        """The profile the identifiers name (created when none does); docs/sandbox.md "Identity resolution".

        strict (profile import, bulk import rows, subscribe rows): identifiers owned by two different
        profiles raise ProfileConflict naming the second one. Lenient (events, back in stock, unsubscribe):
        the most authoritative match (id > external_id > email > phone_number) wins; identifiers another
        profile owns stay with that profile. An `id` no profile has is a 404 either way.
        """
        profile_id = identifiers.get("id")
        if profile_id is not None and profile_id not in self.by_id:
            raise ApiError([ErrorItem(404, f"A profile with id '{profile_id}' does not exist.", id_pointer)])
        found = self.matches(identifiers)
        if len(found) > 1 and strict:
            raise ProfileConflict(found[1].id)
        if found:
            return found[0], False
        if not create:
            return None, False
        return self.create(now), True

    def apply(self, profile: Profile, attributes: dict[str, Any], meta: dict[str, Any] | None, now: float) -> None:
        """Set what the request sends: absent keys stay, null clears, properties merge."""
        for name in IDENTIFIERS:
            if name in attributes and attributes[name] != getattr(profile, name):
                owner = self.find(name, attributes[name])
                if owner is None or owner is profile:
                    self.set_identifier(profile, name, attributes[name])
        for name in PLAIN_ATTRIBUTES:
            if name in attributes:
                profile.attributes[name] = attributes[name]
        if "location" in attributes:
            if attributes["location"] is None:
                profile.location.clear()
            else:
                profile.location.update(attributes["location"])
        if attributes.get("properties"):
            profile.properties.update(attributes["properties"])
        patch_properties(profile.properties, (meta or {}).get("patch_properties") or {})
        self.touch(profile, now)

    @staticmethod
    def touch(profile: Profile, now: float) -> None:
        profile.updated = from_epoch(now)

    def clear(self) -> None:
        self.by_id.clear()
        for index in self.index.values():
            index.clear()


def patch_properties(properties: dict[str, Any], patch: dict[str, Any]) -> None:
    """``meta.patch_properties``: append to / unappend from list properties, unset properties."""
    for key, value in (patch.get("append") or {}).items():
        current = properties.get(key)
        current = current if isinstance(current, list) else ([] if current is None else [current])
        properties[key] = current + (value if isinstance(value, list) else [value])
    for key, value in (patch.get("unappend") or {}).items():
        current = properties.get(key)
        if isinstance(current, list):
            removed = value if isinstance(value, list) else [value]
            properties[key] = [item for item in current if item not in removed]
    unset = patch.get("unset")
    for key in [unset] if isinstance(unset, str) else unset or []:
        properties.pop(key, None)


def subscribe(profile: Profile, channels: dict[str, Any], historical: bool, list_id: str | None, now: float) -> None:
    moment = from_epoch(now)
    for channel, kind, consent in (
        ("email", "marketing", profile.email_marketing),
        ("sms", "marketing", profile.sms_marketing),
        ("sms", "transactional", profile.sms_transactional),
    ):
        params = (channels.get(channel) or {}).get(kind)
        if not params:
            continue
        consented_at = params.get("consented_at") if historical else None
        consent.consent = "SUBSCRIBED"
        consent.consent_timestamp = consented_at or moment
        consent.last_updated = moment
        consent.method, consent.method_detail = "API", "HISTORICAL_IMPORT" if historical else "API"
        if channel == "email":
            consent.suppression = [s for s in consent.suppression if s["reason"] not in LIFTED_BY_SUBSCRIBE]
            consent.list_suppressions = [s for s in consent.list_suppressions if s["list_id"] != list_id]
    if list_id:
        profile.lists.add(list_id)
    profile.updated = moment


def unsubscribe(profile: Profile, channels: dict[str, Any], list_id: str | None, now: float) -> None:
    """No list: global unsubscribe (email gets an UNSUBSCRIBE suppression). With a list: that list only."""
    moment = from_epoch(now)
    if list_id:
        profile.lists.discard(list_id)
        if (channels.get("email") or {}).get("marketing"):
            profile.email_marketing.list_suppressions.append(
                {"list_id": list_id, "reason": "UNSUBSCRIBE", "timestamp": moment}
            )
        profile.updated = moment
        return
    for channel, kind, consent in (
        ("email", "marketing", profile.email_marketing),
        ("sms", "marketing", profile.sms_marketing),
        ("sms", "transactional", profile.sms_transactional),
    ):
        if not (channels.get(channel) or {}).get(kind):
            continue
        consent.consent = "UNSUBSCRIBED"
        consent.consent_timestamp = moment
        consent.last_updated = moment
        consent.method, consent.method_detail = "API", "API"
        if channel == "email" and not any(s["reason"] == "UNSUBSCRIBE" for s in consent.suppression):
            consent.suppression.append({"reason": "UNSUBSCRIBE", "timestamp": moment})
    profile.updated = moment
