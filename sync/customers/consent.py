"""Marketing consent: which subscribe/unsubscribe calls a customer change asks for, and the guard.

Rules (docs/poller.md, "Consent"):
- consent is sent only when a channel's consent fields changed, or on the first sync of a customer (no
  fingerprint) - never because a name or an address changed;
- subscribe only on explicit ERP consent (the flag is one of `yes_values`);
- the first sync of a customer without consent (a new customer, or every customer again after the fleet lost
  its state) reads Klaviyo first: where Klaviyo holds a subscribe older than the ERP's dated opt-out (the
  channel's consent date with the flag off), the opt-out wins and is sent - an unsubscribe that was queued when
  the fleet's state was lost is not lost with it; a Klaviyo subscribe with no such ERP date, or newer than it
  (a storefront sign-up), is not ours to undo: it is left alone and recorded as a `consent_conflict`;
- a subscribe needs the channel's valid address (SMS: a phone): without one it is an exception, not a call;
  an unsubscribe never does: it goes by the address Klaviyo holds for the customer;
- the guard: on a first sync that would subscribe, Klaviyo's own state is read first; an unsubscribe or a
  suppression there newer than the ERP's consent time wins, and a `consent_conflict` is recorded;
- one key per customer and channel (`consent:<channel>:<code>`) with the change's version, so the ledger
  never lets an older subscribe overtake a newer unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from config.mapping import Mapping
from sync.customers.records import CustomerRecord
from sync.operations import Operation

Channel = Literal["email", "sms"]
Action = Literal["subscribe", "unsubscribe"]
CHANNEL_FIELDS: dict[Channel, tuple[str, ...]] = {
    "email": ("email_optin", "email_optin_date"),
    "sms": ("sms_optin", "sms_optin_date"),
}
BLOCKING_CONSENT = {"UNSUBSCRIBED"}
# change kinds that are a customer's first sync: the fleet holds nothing of it (sync/changes.py)
FIRST_SYNC = ("created", "resynced")


@dataclass(frozen=True)
class ConsentIntent:
    channel: Channel
    action: Action
    customer: CustomerRecord
    first_sync: bool

    @property
    def consented_at(self) -> datetime | None:
        return self.customer.email_optin_date if self.channel == "email" else self.customer.sms_optin_date


@dataclass(frozen=True)
class ConsentProblem:
    type: str
    code: str
    reason: str
    details: dict[str, Any]


def consent_intents(
    kind: str, changed_fields: list[str], customer: CustomerRecord
) -> tuple[list[ConsentIntent], list[ConsentProblem]]:
    if kind == "deleted":
        return [], []
    intents: list[ConsentIntent] = []
    problems: list[ConsentProblem] = []
    first_sync = kind in FIRST_SYNC
    for channel, fields in CHANNEL_FIELDS.items():
        if not first_sync and not set(fields) & set(changed_fields):
            continue
        opted_in = customer.email_optin if channel == "email" else customer.sms_optin
        action: Action = "subscribe" if opted_in else "unsubscribe"
        # an opt-out never needs the ERP's address: it goes by the one Klaviyo holds (delivery/identity.py),
        # so blanking or changing the phone in the same edit still unsubscribes the number that was subscribed
        if action == "subscribe" and (customer.phone_e164 if channel == "sms" else customer.email) in (None, ""):
            what = "phone number" if channel == "sms" else "email address"
            problems.append(ConsentProblem(
                "invalid_record", customer.code,
                f"{channel.upper() if channel == 'sms' else 'Email'} consent change (subscribe) but the customer "
                f"has no valid {what}; nothing sent",
                {"channel": channel, "action": action},
            ))
            continue
        intents.append(ConsentIntent(channel, action, customer, first_sync))
    return intents, problems


def klaviyo_instant(text: Any) -> datetime | None:
    """A Klaviyo ISO timestamp ('...Z' or with an offset; naive read as UTC), None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def erp_instant(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """The ERP's tenant-local consent time as a UTC instant."""
    return None if value is None else value.replace(tzinfo=zone).astimezone(UTC)


def guard_conflict(
    subscriptions: dict[str, Any] | None, channel: Channel, erp_consented_at: datetime | None
) -> str | None:
    """Why Klaviyo's state forbids subscribing now, or None. A Klaviyo unsubscribe or suppression newer
    than the ERP consent (or any, when the ERP gives no consent time) wins."""
    if not subscriptions:
        return None
    marketing = ((subscriptions.get(channel) or {}).get("marketing")) or {}
    blockers: list[tuple[str, datetime | None]] = []
    if str(marketing.get("consent", "")).upper() in BLOCKING_CONSENT:
        when = klaviyo_instant(marketing.get("consent_timestamp")) or klaviyo_instant(marketing.get("last_updated"))
        blockers.append((f"{channel} marketing consent is UNSUBSCRIBED in Klaviyo", when))
    for entry in marketing.get("suppression") or marketing.get("suppressions") or []:
        if isinstance(entry, dict):
            blockers.append((f"{channel} suppressed in Klaviyo ({entry.get('reason', '?')})",
                             klaviyo_instant(entry.get("timestamp"))))
    for reason, when in blockers:
        if erp_consented_at is None or when is None or when > erp_consented_at:
            stamp = when.isoformat() if when else "unknown time"
            erp = erp_consented_at.isoformat() if erp_consented_at else "no ERP consent time"
            return f"{reason} at {stamp}, newer than the ERP consent ({erp})"
    return None


def first_sync_opt_out(
    subscriptions: dict[str, Any] | None, channel: Channel, erp_opted_out_at: datetime | None
) -> tuple[bool, str | None]:
    """A first sync of an ERP "not subscribed": (send the unsubscribe?, the conflict to record or None).

    Klaviyo not subscribed: nothing to do. Klaviyo subscribed before the ERP's dated opt-out: the opt-out is
    the newer truth and is sent. Klaviyo subscribed with no ERP opt-out date, or after it: left alone (a web
    form's consent is not the fleet's to undo) and an operator is told."""
    marketing = (((subscriptions or {}).get(channel) or {}).get("marketing")) or {}
    if str(marketing.get("consent", "")).upper() != "SUBSCRIBED":
        return False, None
    when = klaviyo_instant(marketing.get("consent_timestamp")) or klaviyo_instant(marketing.get("last_updated"))
    if erp_opted_out_at is not None and (when is None or when < erp_opted_out_at):
        return True, None
    stamp = when.isoformat() if when else "an unknown time"
    erp = (f"its opt-out at {erp_opted_out_at.isoformat()} is older" if erp_opted_out_at
           else "it gives no opt-out date")
    return False, (f"{channel} SUBSCRIBED in Klaviyo since {stamp} but not subscribed in the ERP, and {erp}: "
                   "left as Klaviyo holds it")


def consent_operation(intent: ConsentIntent, mapping: Mapping, version: str) -> Operation:
    customer = intent.customer
    list_id = mapping.consent.email_list_id if intent.channel == "email" else mapping.consent.sms_list_id
    address = customer.email if intent.channel == "email" else customer.phone_e164
    # no address (an opt-out whose phone was blanked): delivery puts in the one Klaviyo holds
    name = "email" if intent.channel == "email" else "phone_number"
    identifier: dict[str, Any] = {name: address} if address else {}
    payload: dict[str, Any] = {"channel": intent.channel, "profile": identifier, "list_id": list_id}
    if intent.action == "subscribe":
        historical = mapping.consent.historical_import
        consented = erp_instant(intent.consented_at, ZoneInfo(mapping.tenant.timezone))
        payload.update({
            "custom_source": mapping.consent.custom_source,
            "consented_at": consented.isoformat() if historical and consented else None,
            "historical_import": bool(historical and consented),
        })
    return Operation(
        kind=intent.action,
        key=f"consent:{intent.channel}:{customer.code}",
        lane="fast",
        payload=payload,
        version=version,
        record=f"customer:{customer.code}",
        profile_of=customer.code,  # a subscribe waits for the profile's id; an unsubscribe never waits
    )
