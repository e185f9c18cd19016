"""Klaviyo's documented limits that no schema expresses: batch sizes, event time window, metric names,
property counts, and a `unique_id` repeated inside one bulk event request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from sandbox.klaviyo.errors import ErrorItem
from sandbox.klaviyo.profiles import check_identifiers
from sandbox.klaviyo.timeutil import aware, from_epoch

MAX_BULK_EVENTS = 1000
MAX_BULK_PROFILES = 10_000
MAX_SUBSCRIBES = 1000
MAX_UNSUBSCRIBES = 100
MAX_CATALOG_ROWS = 100
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_PROFILE_IMPORT_BYTES = 100 * 1024
MAX_METRIC_NAME = 127  # "name < 128 chars"
MAX_EVENT_PROPERTIES = 400
MAX_ARRAY_ITEMS = 4000
MAX_NESTING = 10
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_AHEAD = timedelta(days=365)
PROFILE_IDENTIFIERS = ("id", "email", "phone_number", "external_id", "anonymous_id", "_kx")

_datetime = TypeAdapter(datetime)


def parse_time(value: Any) -> datetime:
    """Parse a value the SDK model already accepted as a datetime."""
    return aware(_datetime.validate_python(value))


def _depth_and_arrays(value: Any, pointer: str, depth: int, errors: list[ErrorItem]) -> None:
    if depth > MAX_NESTING:
        errors.append(ErrorItem(400, f"Event properties may be nested at most {MAX_NESTING} levels.", pointer))
        return
    if isinstance(value, dict):
        for key, child in value.items():
            _depth_and_arrays(child, f"{pointer}/{key}", depth + 1, errors)
    elif isinstance(value, list):
        if len(value) > MAX_ARRAY_ITEMS:
            errors.append(ErrorItem(400, f"Arrays in event properties hold at most {MAX_ARRAY_ITEMS} items.", pointer))
        for i, child in enumerate(value):
            _depth_and_arrays(child, f"{pointer}/{i}", depth + 1, errors)


def profile_errors(profile: Any, pointer: str) -> list[ErrorItem]:
    """A profile reference needs one identifier, and valid email / E.164 phone number when given."""
    if not isinstance(profile, dict):
        return []
    attributes = profile.get("attributes") or {}
    if not any(attributes.get(name) for name in PROFILE_IDENTIFIERS) and not profile.get("id"):
        return [
            ErrorItem(
                400,
                "A profile identifier is required: id, email, phone_number, external_id or anonymous_id.",
                f"{pointer}/attributes",
            )
        ]
    return check_identifiers(attributes, f"{pointer}/attributes")


def event_errors(attributes: dict[str, Any], pointer: str, now: float) -> list[ErrorItem]:
    errors: list[ErrorItem] = []
    name = (((attributes.get("metric") or {}).get("data") or {}).get("attributes") or {}).get("name")
    if isinstance(name, str) and len(name) > MAX_METRIC_NAME:
        errors.append(
            ErrorItem(
                400,
                f"Metric names must be shorter than {MAX_METRIC_NAME + 1} characters.",
                f"{pointer}/metric/data/attributes/name",
            )
        )
    if isinstance(name, str) and not name.strip():
        errors.append(ErrorItem(400, "The metric name must not be blank.", f"{pointer}/metric/data/attributes/name"))
    if attributes.get("time") is not None:
        moment = parse_time(attributes["time"])
        latest = from_epoch(now) + LATEST_EVENT_AHEAD
        if not EARLIEST_EVENT <= moment <= latest:
            errors.append(
                ErrorItem(
                    400,
                    "The event time must be after 2000-01-01 and at most one year ahead.",
                    f"{pointer}/time",
                )
            )
    currency = attributes.get("value_currency")
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", str(currency)):
        errors.append(
            ErrorItem(400, "value_currency must be an ISO 4217 code such as 'USD'.", f"{pointer}/value_currency")
        )
    properties = attributes.get("properties")
    if isinstance(properties, dict):
        if len(properties) > MAX_EVENT_PROPERTIES:
            errors.append(
                ErrorItem(
                    400,
                    f"An event may have at most {MAX_EVENT_PROPERTIES} properties.",
                    f"{pointer}/properties",
                )
            )
        _depth_and_arrays(properties, f"{pointer}/properties", 1, errors)
    return errors


def profile_key(profile: dict[str, Any]) -> tuple[Any, ...]:
    """Which profile a bulk-event entry names, for the repeated-unique_id rule."""
    attributes = profile.get("attributes") or {}
    email = attributes.get("email")
    return (
        profile.get("id"),
        email.lower() if isinstance(email, str) else email,
        attributes.get("phone_number"),
        attributes.get("external_id"),
    )
