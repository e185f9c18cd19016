"""The typed customer record, read from a raw Blue Cherry record through `mapping.fields.customer`.

`parse_customer` never raises on bad data: it returns the record (or None) and the list of problems, so the
poller can put a malformed customer in the exception register and carry on with the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from config.mapping import AddressFields, Mapping
from sync.address import Address
from sync.customers.validation import e164, email_problem, normalize_email, parse_erp_date, text_problem
from sync.fields import addresses, field_text, normalised
from sync.localtime import LocalTimeError, tenant_zone
from sync.misfits import Misfit, unknown_status, unparseable_date
from sync.record_keys import record_key


class CustomerRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    first_name: str | None = None
    last_name: str | None = None
    email: str
    phone_e164: str | None = None
    division: str | None = None
    groups: dict[str, str | None] = {}
    created: datetime | None = None
    status: str
    active: bool
    email_optin: bool = False
    email_optin_date: datetime | None = None
    email_optin_source: str | None = None
    sms_optin: bool = False
    sms_optin_date: datetime | None = None
    sms_optin_source: str | None = None
    delete_flag: bool = False
    bill_to: Address | None = None
    last_mod: str = ""


@dataclass
class ParsedCustomer:
    customer: CustomerRecord | None
    problems: list[str] = field(default_factory=list)
    code: str = ""
    # what was left out of a customer that is still synced: a phone that is not a usable E.164 number
    unusable_phone: str | None = None
    # an invalid record's consent, read from the fields that are valid (email "" and phone None when not):
    # an invalid address, status or phone never blocks a consent change (docs/poller.md, "Consent")
    consent: CustomerRecord | None = None
    # the mapping problems behind some of `problems` (a status it does not name, a date no format reads),
    # recorded once per value or field (`sync.misfits`)
    misfits: list[Misfit] = field(default_factory=list)


def _text(raw: dict[str, Any], name: str, label: str, problems: list[str]) -> str | None:
    value = raw.get(name) if name else None
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    reason = text_problem(text)
    if reason:
        problems.append(f"{label} ({name}) {reason}")
        return None
    return text


def _dates(mapping: Mapping, record: str, misfits: list[Misfit]
           ) -> Callable[[dict[str, Any], str, str, list[str]], datetime | None]:
    """The reader of the customer resource's dates (ISO, then the mapping's formats), as tenant wall time; a
    date no format reads is a misfit of the mapping too."""
    formats, zone = mapping.date_formats("customer"), tenant_zone(mapping.tenant.timezone)

    def read(raw: dict[str, Any], name: str, label: str, problems: list[str]) -> datetime | None:
        value = raw.get(name) if name else None
        if value is None or not str(value).strip():
            return None
        try:
            return parse_erp_date(str(value), f"{label} ({name})", formats, zone)
        except LocalTimeError as exc:
            problems.append(str(exc))
            misfits.append(unparseable_date("customer", name, str(value).strip(), record, formats))
        except ValueError as exc:
            problems.append(str(exc))
        return None

    return read


def _bill_to(raw: dict[str, Any], spec: AddressFields, problems: list[str]) -> Address | None:
    row = addresses(raw, spec).get("bill_to")
    if row is None:
        return None
    row = dict(row)
    return Address(
        name=_text(row, spec.name, "bill-to name", problems),
        address1=_text(row, spec.addr1, "bill-to address", problems),
        address2=_text(row, spec.addr2, "bill-to address", problems),
        city=_text(row, spec.city, "bill-to city", problems),
        region=_text(row, spec.state, "bill-to state", problems),
        zip=_text(row, spec.zipcode, "bill-to zip", problems),
        country=_text(row, spec.country, "bill-to country", problems),
    )


def parse_customer(raw: dict[str, Any], mapping: Mapping) -> ParsedCustomer:
    """Read and validate one raw customer; problems name the field and the bad value."""
    f = mapping.fields.customer
    raw = dict(normalised(raw, f))
    problems: list[str] = []
    misfits: list[Misfit] = []
    code = _text(raw, f.code, "customer code", problems)
    if code is None and not problems:
        problems.append(f"customer code ({f.code}) is missing")
    record = record_key("customer", code or raw.get(mapping.resources.customer.key))
    _date = _dates(mapping, record, misfits)

    email_raw = raw.get(f.email)
    email_reason = email_problem(None if email_raw is None else str(email_raw))
    if email_reason is None:
        email_reason = text_problem(str(email_raw).strip())
    if email_reason:
        problems.append(f"{email_reason} ({f.email})")
    # Klaviyo matches emails case-insensitively and the fleet compares them: one form everywhere
    email = None if email_reason else normalize_email(str(email_raw))

    phone = None
    unusable_phone = None
    phone_raw = raw.get(f.phone)
    if phone_raw is not None and str(phone_raw).strip():
        try:
            phone = e164(str(phone_raw).strip(), mapping.tenant.default_phone_region)
        except ValueError as exc:  # the phone is left out; the customer's other fields still go
            unusable_phone = f"{exc} ({f.phone})"

    statuses = mapping.customer_status
    # a tenant without a status field: every customer is active (docs/configuration.md, "Absent fields")
    status = field_text(raw, f.status) if f.status else statuses.active[0]
    if status not in statuses.active + statuses.inactive:
        known = ", ".join(statuses.active + statuses.inactive)
        problems.append(f"unknown status {status!r} ({f.status}); known: {known}")
        misfits.append(unknown_status("customer", f.status, status, record, statuses.active + statuses.inactive,
                                      "customer_status"))

    first = _text(raw, f.first_name, "first name", problems)
    last = _text(raw, f.last_name, "last name", problems)
    full = _text(raw, f.name, "name", problems)
    if first is None and last is None and full:
        first, _, rest = full.partition(" ")
        last = rest.strip() or None

    yes = set(f.yes_values)
    values: dict[str, Any] = {
        "division": _text(raw, f.division, "division", problems),
        "groups": {g: _text(raw, g, "group", problems) for g in f.groups},
        "created": _date(raw, f.created, "creation date", problems),
        "email_optin": str(raw.get(f.email_optin, "")).strip() in yes,
        "email_optin_date": _date(raw, f.email_optin_date, "email consent date", problems),
        "email_optin_source": _text(raw, f.email_optin_source, "email consent source", problems),
        "sms_optin": str(raw.get(f.sms_optin, "")).strip() in yes,
        "sms_optin_date": _date(raw, f.sms_optin_date, "SMS consent date", problems),
        "sms_optin_source": _text(raw, f.sms_optin_source, "SMS consent source", problems),
        "delete_flag": str(raw.get(f.delete_flag, "")).strip() in yes,
        "bill_to": _bill_to(raw, f.addresses, problems),
    }
    if problems or code is None or email is None:
        consent = None
        if code is not None:
            consent = CustomerRecord(
                code=code, email=email or "", phone_e164=phone, status=status, active=status in statuses.active,
                last_mod=str(raw.get(mapping.resources.customer.last_mod, "")),
                **{k: values[k] for k in ("email_optin", "email_optin_date", "sms_optin", "sms_optin_date",
                                          "email_optin_source", "sms_optin_source")},
            )
        return ParsedCustomer(None, problems, code or str(raw.get(f.code) or ""), unusable_phone, consent, misfits)
    customer = CustomerRecord(
        code=code, first_name=first, last_name=last, email=email, phone_e164=phone, status=status,
        active=status in statuses.active, last_mod=str(raw.get(mapping.resources.customer.last_mod, "")),
        **values,
    )
    return ParsedCustomer(customer, [], code, unusable_phone)
