"""Typed JSON:API request bodies for the Klaviyo endpoints the fleet writes to.

Klaviyo refuses any attribute it does not declare (400 `invalid`, with a pointer), although neither its
OpenAPI file nor its SDK models say so. Every model here therefore forbids undeclared fields, except the
free-form objects (`properties`, `custom_metadata`, `patch_properties.append/unappend`). The builders take
the plain payloads of `sync.operations` and return JSON-ready dicts; bad input raises `PayloadError`
naming the row and the field (never the value: payloads hold emails and phone numbers).

Bulk builders return `BulkBody`: the body plus, for each top-level row of the body, the indexes of the
input payloads it carries - so the row numbers in Klaviyo's error pointers (`errors.rows_from_pointers`)
map back to payloads. Use `split_batches` to cut a long payload list into requests that fit the
per-request row and size limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from connectors.klaviyo.bodies import (
    BackInStockBody,
    CatalogItemCreateAttributes,
    CatalogItemCreateBody,
    CatalogItemUpdateAttributes,
    CatalogItemUpdateBody,
    CatalogVariantCreateAttributes,
    CatalogVariantCreateBody,
    CatalogVariantUpdateAttributes,
    CatalogVariantUpdateBody,
    DeletionBody,
    EventBody,
    EventBulkCreateJobBody,
    ProfileAttributes,
    ProfileImportJobBody,
    ProfileUpsertBody,
    SubscribeJobBody,
    UnsubscribeJobBody,
)
from connectors.klaviyo.limits import (
    MAX_BULK_EVENTS,
    MAX_BULK_PROFILES,
    MAX_CATALOG_BULK_ROWS,
    MAX_REQUEST_BYTES,
    MAX_STRING_BYTES,
    MAX_SUBSCRIBE_PROFILES,
    MAX_UNSUBSCRIBE_PROFILES,
)
from connectors.klaviyo.plain_bodies import plain_validator
from sync.json_text import dumps_bytes

CATALOG_ID_PREFIX = "$custom:::$default:::"


class PayloadError(ValueError):
    """A payload cannot become a valid Klaviyo body. Says which row and field; never quotes values."""

    def __init__(self, what: str, problems: Sequence[str], row: int | None = None) -> None:
        where = f" (row {row})" if row is not None else ""
        super().__init__(f"{what}{where}: " + "; ".join(problems))
        self.what = what
        self.row = row
        self.problems = list(problems)


# --- serialisation and size ------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _problems(exc: ValidationError) -> list[str]:
    # loc and message only: pydantic's default text quotes the input value (an email, a phone...).
    return [f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}" for err in exc.errors()]


def _validated(model: type[BaseModel], data: dict[str, Any], what: str, row: int | None = None) -> dict[str, Any]:
    """`data` checked against `model`'s rules, as the JSON-ready dict sent: a field the payload did not give is
    left out, a field given as None is sent as null (which clears it in Klaviyo, as the profile API documents)."""
    try:
        validated: dict[str, Any] = plain_validator(model).validate_python(data)
    except ValidationError as exc:
        raise PayloadError(what, _problems(exc), row) from None
    return validated


def encode(body: Any) -> bytes:
    """A plain JSON-ready body as the bytes the client sends (compact, UTF-8, non-ASCII unescaped)."""
    return dumps_bytes(body)


def serialized_size(body: Any) -> int:
    """Bytes of the body as the client sends it (compact JSON, UTF-8)."""
    return len(encode(body))


def longest_string(body: Any) -> int:
    """Bytes of the longest string (key or value) anywhere in the body."""
    if isinstance(body, str):
        return len(body.encode("utf-8"))
    if isinstance(body, dict):
        return max([0, *(longest_string(k) for k in body), *(longest_string(v) for v in body.values())])
    if isinstance(body, list):
        return max([0, *(longest_string(v) for v in body)])
    return 0


# A JSON string token: quotes around anything but quotes and backslashes, or escapes (unrolled: fast in `re`).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def longest_string_in(raw: bytes, at_least: int = 0) -> int:
    """Bytes (UTF-8, unescaped) of the longest string, key or value, in serialised JSON - as `longest_string` of
    the parsed body. Only strings whose escaped form is longer than `at_least` are decoded (an escape is never
    shorter than what it stands for), so the usual answer costs one scan of the bytes and no parsing."""
    if len(raw) <= at_least:
        return 0
    # with no escaped quote, every other piece between quotes is a string's escaped bytes
    simple = b'\\"' not in raw
    pieces = raw.split(b'"')[1::2] if simple else [m[1:-1] for m in _JSON_STRING.findall(raw)]
    if max(map(len, pieces), default=0) <= at_least:  # the usual answer, without a Python loop over the strings
        return 0
    longest = 0
    for piece in pieces:
        if len(piece) > at_least and len(piece) > longest:
            decoded = len(orjson.loads(b'"' + piece + b'"').encode("utf-8")) if b"\\" in piece else len(piece)
            longest = max(longest, decoded)
    return longest


def check_raw(raw: bytes, what: str, row: int | None = None) -> int:
    """Refuse serialised bytes over 5 MB or holding a string over 100 KB; returns the size in bytes."""
    problems = []
    if len(raw) > MAX_REQUEST_BYTES:
        problems.append(f"request is {len(raw)} bytes, over Klaviyo's {MAX_REQUEST_BYTES}")
    longest = longest_string_in(raw, MAX_STRING_BYTES)
    if longest > MAX_STRING_BYTES:
        problems.append(f"a string is {longest} bytes, over Klaviyo's {MAX_STRING_BYTES}")
    if problems:
        raise PayloadError(what, problems, row)
    return len(raw)


def check_size(body: Any, what: str, row: int | None = None) -> int:
    """`check_raw` of a plain body."""
    return check_raw(encode(body), what, row)


@dataclass
class Encoded:
    """A request body validated once and serialised once: `raw` is what is sent; `body` (parsed back from it
    on first use only) is for tests and error reports."""

    raw: bytes

    @cached_property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.raw)
        return parsed


def _encoded(model: type[M], data: dict[str, Any], what: str,
             row_of: Callable[[tuple[Any, ...]], tuple[int, int] | None] | None = None) -> bytes:
    """Validate `data` as `model` once, serialise it once and check the bytes. A bulk body's `row_of` maps an
    error's location to (input row, length of the location's prefix that is the row): the error then names the
    first row at fault, with the field's location inside the row, as checking rows one by one did."""
    try:
        # the model's rules into plain dicts (connectors/klaviyo/plain_bodies.py: no model instances, 5x faster)
        validated = plain_validator(model).validate_python(data)
    except ValidationError as exc:
        if row_of is None:
            raise PayloadError(what, _problems(exc)) from None
        raise _row_error(exc, what, row_of) from None
    raw = encode(validated)
    check_raw(raw, what)
    return raw


def _row_error(exc: ValidationError, what: str,
               row_of: Callable[[tuple[Any, ...]], tuple[int, int] | None]) -> PayloadError:
    at: list[tuple[int, str]] = []
    for err in exc.errors():
        found = row_of(tuple(err["loc"]))
        if found is None:
            return PayloadError(what, _problems(exc))
        row, prefix = found
        at.append((row, f"{'.'.join(str(p) for p in err['loc'][prefix:]) or '<body>'}: {err['msg']}"))
    first = min(row for row, _ in at)
    return PayloadError(what, [problem for row, problem in at if row == first], first)


def _one(model: type[M], data: dict[str, Any], what: str) -> Encoded:
    return Encoded(_encoded(model, data, what))


@dataclass
class BulkBody(Encoded):
    """A bulk request body and, per top-level row of it, the indexes of the input payloads it carries."""

    rows: list[list[int]] = field(default_factory=list)

    @property
    def payload_indexes(self) -> list[int]:
        return [i for row in self.rows for i in row]

    def payloads_of_rows(self, rows: Sequence[int]) -> list[int]:
        """Input payload indexes named by body row indexes (e.g. from `errors.rows_from_pointers`)."""
        return sorted({i for r in rows if 0 <= r < len(self.rows) for i in self.rows[r]})


def _require(payload: Any, what: str, row: int | None = None) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadError(what, [f"payload must be an object, got {type(payload).__name__}"], row)
    return payload


def _refuse_unknown(payload: dict[str, Any], allowed: set[str], what: str, row: int | None) -> None:
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise PayloadError(what, [f"{key}: not a field of this payload" for key in unknown], row)


def _check_count(payloads: Sequence[Any], limit: int, what: str) -> None:
    if not payloads:
        raise PayloadError(what, ["no payloads"])
    if len(payloads) > limit:
        raise PayloadError(what, [f"{len(payloads)} rows, over Klaviyo's {limit} per request"])


# --- profile builders ------------------------------------------------------------------------

_PROFILE_KEYS = set(ProfileAttributes.model_fields) | {"id", "patch_properties"}


def _profile_resource(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    _refuse_unknown(payload, _PROFILE_KEYS, what, row)
    attributes = {k: v for k, v in payload.items() if k not in ("id", "patch_properties")}
    resource: dict[str, Any] = {"type": "profile", "attributes": attributes}
    if payload.get("id"):
        resource["id"] = payload["id"]
    if payload.get("patch_properties") is not None:
        resource["meta"] = {"patch_properties": payload["patch_properties"]}
    return resource


def profile_import_body(payload: dict[str, Any]) -> Encoded:
    """`POST /api/profile-import` from a `profile_upsert` payload (profile attributes, optional
    `id` and `patch_properties {append, unappend, unset}`)."""
    what = "profile-import"
    return _one(ProfileUpsertBody, {"data": _profile_resource(_require(payload, what), what, None)}, what)


def bulk_profile_import_body(payloads: Sequence[dict[str, Any]], list_id: str | None = None) -> BulkBody:
    """`POST /api/profile-bulk-import-jobs`: up to 10,000 profiles, optionally added to a list."""
    what = "profile-bulk-import"
    _check_count(payloads, MAX_BULK_PROFILES, what)
    resources = [_profile_resource(_require(payload, what, i), what, i) for i, payload in enumerate(payloads)]
    data: dict[str, Any] = {
        "type": "profile-bulk-import-job",
        "attributes": {"profiles": {"data": resources}},
    }
    if list_id:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    raw = _encoded(ProfileImportJobBody, {"data": data}, what, _profile_row)
    return BulkBody(raw, [[i] for i in range(len(payloads))])


_PROFILE_ROW = ("data", "attributes", "profiles", "data")


def _profile_row(loc: tuple[Any, ...]) -> tuple[int, int] | None:
    """`data.attributes.profiles.data.<i>...` is input row i (its location inside the row from the 6th part)."""
    if loc[:4] == _PROFILE_ROW and len(loc) > 4 and isinstance(loc[4], int):
        return loc[4], 5
    return None


# --- event builders --------------------------------------------------------------------------

_EVENT_KEYS = {"metric", "profile", "properties", "time", "value", "value_currency", "unique_id", "backfill"}
_IDENTIFIERS = ("id", "email", "phone_number", "external_id", "anonymous_id")


def _event_attributes(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    _refuse_unknown(payload, _EVENT_KEYS, what, row)
    metric = payload.get("metric")
    if not isinstance(metric, str) or not metric:
        raise PayloadError(what, ["metric: the metric name (a non-empty string) is required"], row)
    attributes = {k: v for k, v in payload.items() if k not in ("metric", "profile")}
    attributes.setdefault("properties", {})
    attributes["metric"] = {"data": {"type": "metric", "attributes": {"name": metric}}}
    return attributes


def _event_profile(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    profile = payload.get("profile")
    if not isinstance(profile, dict):
        raise PayloadError(
            what, ["profile: an object with email, phone_number or external_id is required"], row
        )
    attributes = {k: v for k, v in profile.items() if k != "id"}
    resource: dict[str, Any] = {"type": "profile", "attributes": attributes}
    if profile.get("id"):
        resource["id"] = profile["id"]
    return resource


def event_body(payload: dict[str, Any]) -> Encoded:
    """`POST /api/events` from an `event` payload."""
    what = "event"
    payload = _require(payload, what)
    attributes = _event_attributes(payload, what, None)
    attributes["profile"] = {"data": _event_profile(payload, what, None)}
    return _one(EventBody, {"data": {"type": "event", "attributes": attributes}}, what)


def _profile_key(resource: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(resource, sort_keys=True, separators=(",", ":"), default=str).encode()


def bulk_events_body(payloads: Sequence[dict[str, Any]]) -> BulkBody:
    """`POST /api/event-bulk-create-jobs`: up to 1,000 events, grouped per profile (first-seen order).

    Klaviyo fails the whole request when a `unique_id` repeats for the same profile and metric, so that
    is refused here (any shared identifier counts as the same profile). `rows[g]` lists the payload
    indexes of group g: pointers `/data/attributes/events-bulk-create/data/<g>/...` name groups.
    """
    what = "event-bulk-create"
    _check_count(payloads, MAX_BULK_EVENTS, what)
    groups: dict[bytes, tuple[dict[str, Any], list[dict[str, Any]], list[int]]] = {}
    seen: dict[tuple[str, str, str, str], int] = {}
    for i, payload in enumerate(payloads):
        payload = _require(payload, what, i)
        attributes = _event_attributes(payload, what, i)
        profile = _event_profile(payload, what, i)
        unique_id = payload.get("unique_id")
        if unique_id:
            ids = {**profile["attributes"], "id": profile.get("id")}
            for name in _IDENTIFIERS:
                if ids.get(name):
                    key = (payload["metric"], str(unique_id), name, str(ids[name]))
                    if key in seen:
                        raise PayloadError(
                            what,
                            [
                                f"unique_id repeats row {seen[key]}'s for the same profile and metric "
                                f"(Klaviyo would refuse the whole request)"
                            ],
                            i,
                        )
                    seen[key] = i
        group = groups.setdefault(_profile_key(profile), (profile, [], []))
        group[1].append({"type": "event", "attributes": attributes})
        group[2].append(i)
    data = [
        {
            "type": "event-bulk-create",
            "attributes": {"profile": {"data": profile}, "events": {"data": events}},
        }
        for profile, events, _ in groups.values()
    ]
    body = {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": data}}}}
    rows = [rows for _, _, rows in groups.values()]

    def row_of(loc: tuple[Any, ...]) -> tuple[int, int] | None:
        # data.attributes.events-bulk-create.data.<g>.attributes.profile.data...: the group's first event;
        # ...<g>.attributes.events.data.<e>.attributes...: the group's e-th event
        if loc[:4] != _EVENT_GROUPS or len(loc) < 7 or not isinstance(loc[4], int) or loc[4] >= len(rows):
            return None
        group = rows[loc[4]]
        if loc[5:7] == ("attributes", "profile"):
            return group[0], 8
        if loc[5:8] == ("attributes", "events", "data") and len(loc) > 8 and isinstance(loc[8], int):
            return (group[loc[8]], 10) if loc[8] < len(group) else None
        return None

    return BulkBody(_encoded(EventBulkCreateJobBody, body, what, row_of), rows)


_EVENT_GROUPS = ("data", "attributes", "events-bulk-create", "data")


# --- subscription builders -------------------------------------------------------------------

_SUBSCRIBE_KEYS = {"channel", "profile", "list_id", "custom_source", "consented_at", "historical_import"}
_UNSUBSCRIBE_KEYS = {"channel", "profile", "list_id"}
_CHANNEL_ID = {"email": "email", "sms": "phone_number"}


def _subscription_profile(
    payload: dict[str, Any], what: str, row: int, with_id: bool = False
) -> tuple[str, dict[str, Any], str | None]:
    """(channel, identifier attributes, profile id). Subscription jobs take a profile `id` (Klaviyo looks the
    profile up by it) plus the channel's address; unsubscribe jobs take the addresses only. external_id is
    a field of neither (Klaviyo answers 400)."""
    channel = payload.get("channel")
    if channel not in _CHANNEL_ID:
        raise PayloadError(what, ["channel: must be 'email' or 'sms'"], row)
    profile = payload.get("profile")
    if not isinstance(profile, dict):
        raise PayloadError(what, ["profile: an object with email or phone_number is required"], row)
    _refuse_unknown(profile, {"email", "phone_number", "id"} if with_id else {"email", "phone_number"},
                    what + " profile", row)
    if not profile.get(_CHANNEL_ID[channel]):
        raise PayloadError(what, [f"profile.{_CHANNEL_ID[channel]}: required for channel '{channel}'"], row)
    profile_id = profile.get("id") if with_id else None
    return channel, {k: profile[k] for k in ("email", "phone_number") if profile.get(k)}, profile_id


def _list_relationship(list_id: str | None) -> dict[str, Any] | None:
    return {"list": {"data": {"type": "list", "id": list_id}}} if list_id else None


def subscribe_body(payloads: Sequence[dict[str, Any]]) -> list[BulkBody]:
    """`POST /api/profile-subscription-bulk-create-jobs`: one job per (channel, list, historical_import,
    custom_source) - the list, source and historical flag are per job in Klaviyo's API.

    `consented_at` is sent only with `historical_import` (Klaviyo refuses it otherwise) and is then
    required. At most 1,000 payloads per call.
    """
    what = "subscribe"
    _check_count(payloads, MAX_SUBSCRIBE_PROFILES, what)
    jobs: dict[tuple[Any, ...], tuple[list[dict[str, Any]], list[int]]] = {}
    for i, payload in enumerate(payloads):
        payload = _require(payload, what, i)
        _refuse_unknown(payload, _SUBSCRIBE_KEYS, what, i)
        channel, identifiers, profile_id = _subscription_profile(payload, what, i, with_id=True)
        historical = bool(payload.get("historical_import"))
        consent: dict[str, Any] = {"consent": "SUBSCRIBED"}
        if historical:
            if not payload.get("consented_at"):
                raise PayloadError(what, ["consented_at: required with historical_import"], i)
            consent["consented_at"] = payload["consented_at"]
        profile_attributes = {**identifiers, "subscriptions": {channel: {"marketing": consent}}}
        key = (channel, payload.get("list_id"), historical, payload.get("custom_source"))
        profiles, rows = jobs.setdefault(key, ([], []))
        resource: dict[str, Any] = {"type": "profile", "attributes": profile_attributes}
        if profile_id:
            resource["id"] = str(profile_id)
        profiles.append(resource)
        rows.append(i)
    bodies = []
    for (_, list_id, historical, source), (profiles, rows) in jobs.items():
        attributes: dict[str, Any] = {"profiles": {"data": profiles}}
        if source:
            attributes["custom_source"] = source
        if historical:
            attributes["historical_import"] = True
        data: dict[str, Any] = {"type": "profile-subscription-bulk-create-job", "attributes": attributes}
        if (rel := _list_relationship(list_id)) is not None:
            data["relationships"] = rel
        bodies.append(BulkBody(_encoded(SubscribeJobBody, {"data": data}, what), [[i] for i in rows]))
    return bodies


def unsubscribe_body(payloads: Sequence[dict[str, Any]]) -> list[BulkBody]:
    """`POST /api/profile-subscription-bulk-delete-jobs`: one job per (channel, list); at most 100
    payloads per call. Without a list the profile is unsubscribed from the channel's marketing globally."""
    what = "unsubscribe"
    _check_count(payloads, MAX_UNSUBSCRIBE_PROFILES, what)
    jobs: dict[tuple[Any, ...], tuple[list[dict[str, Any]], list[int]]] = {}
    for i, payload in enumerate(payloads):
        payload = _require(payload, what, i)
        _refuse_unknown(payload, _UNSUBSCRIBE_KEYS, what, i)
        channel, identifiers, _ = _subscription_profile(payload, what, i)
        attributes = {**identifiers, "subscriptions": {channel: {"marketing": {"consent": "UNSUBSCRIBED"}}}}
        profiles, rows = jobs.setdefault((channel, payload.get("list_id")), ([], []))
        profiles.append({"type": "profile", "attributes": attributes})
        rows.append(i)
    bodies = []
    for (_, list_id), (profiles, rows) in jobs.items():
        data: dict[str, Any] = {
            "type": "profile-subscription-bulk-delete-job",
            "attributes": {"profiles": {"data": profiles}},
        }
        if (rel := _list_relationship(list_id)) is not None:
            data["relationships"] = rel
        bodies.append(BulkBody(_encoded(UnsubscribeJobBody, {"data": data}, what), [[i] for i in rows]))
    return bodies


# --- catalog builders ------------------------------------------------------------------------


def catalog_id(external_id: str) -> str:
    """Klaviyo's id of a `$custom` catalog item or variant in the `$default` catalog."""
    return CATALOG_ID_PREFIX + external_id


def _external_id(payload: dict[str, Any], what: str, row: int | None) -> str:
    value = payload.get("external_id")
    if not isinstance(value, str) or not value:
        raise PayloadError(what, ["external_id: required (a non-empty string)"], row)
    return value


def _item_create(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    payload = _require(payload, what, row)
    return {"type": "catalog-item", "attributes": _validated(CatalogItemCreateAttributes, payload, what, row)}


def _item_update(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    payload = _require(payload, what, row)
    external_id = _external_id(payload, what, row)
    attributes = {k: v for k, v in payload.items() if k != "external_id"}
    attributes = _validated(CatalogItemUpdateAttributes, attributes, what, row)
    return {"type": "catalog-item", "id": catalog_id(external_id), "attributes": attributes}


def _variant_create(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    payload = _require(payload, what, row)
    item = payload.get("item_external_id")
    if not isinstance(item, str) or not item:
        raise PayloadError(what, ["item_external_id: required (the variant's catalog item)"], row)
    attributes = {k: v for k, v in payload.items() if k != "item_external_id"}
    attributes = _validated(CatalogVariantCreateAttributes, attributes, what, row)
    return {
        "type": "catalog-variant",
        "attributes": attributes,
        "relationships": {"item": {"data": {"type": "catalog-item", "id": catalog_id(item)}}},
    }


def _variant_update(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    payload = _require(payload, what, row)
    external_id = _external_id(payload, what, row)
    # A variant's item cannot change in Klaviyo; an upsert payload's item_external_id is dropped here.
    attributes = {k: v for k, v in payload.items() if k not in ("external_id", "item_external_id")}
    attributes = _validated(CatalogVariantUpdateAttributes, attributes, what, row)
    return {"type": "catalog-variant", "id": catalog_id(external_id), "attributes": attributes}


def catalog_item_body(payload: dict[str, Any]) -> Encoded:
    """`POST /api/catalog-items` from a `catalog_item_upsert` payload."""
    return _one(CatalogItemCreateBody, {"data": _item_create(payload, "catalog-item", None)}, "catalog-item")


def catalog_item_update_body(payload: dict[str, Any]) -> Encoded:
    """`PATCH /api/catalog-items/{id}`: `external_id` plus the attributes to change."""
    what = "catalog-item update"
    return _one(CatalogItemUpdateBody, {"data": _item_update(payload, what, None)}, what)


def catalog_variant_create_body(payload: dict[str, Any]) -> Encoded:
    """`POST /api/catalog-variants` from a `catalog_variant_upsert` payload."""
    what = "catalog-variant"
    return _one(CatalogVariantCreateBody, {"data": _variant_create(payload, what, None)}, what)


def catalog_variant_update_body(payload: dict[str, Any]) -> Encoded:
    """`PATCH /api/catalog-variants/{id}`: `external_id` plus the attributes to change (a
    `variant_inventory` payload gives just `inventory_quantity`)."""
    what = "catalog-variant update"
    return _one(CatalogVariantUpdateBody, {"data": _variant_update(payload, what, None)}, what)


def _catalog_job(
    job_type: str,
    collection: str,
    payloads: Sequence[dict[str, Any]],
    row: Callable[[dict[str, Any], str, int | None], dict[str, Any]],
) -> BulkBody:
    what = job_type
    _check_count(payloads, MAX_CATALOG_BULK_ROWS, what)
    # each row is validated (and dumped) once by its own model, which names the row at fault; the job around
    # the rows is fixed here, so the rows are not validated again as part of a CatalogJobBody (its union of
    # six row lists costs more than the rows themselves)
    rows = [row(p, what, i) for i, p in enumerate(payloads)]
    raw = encode({"data": {"type": job_type, "attributes": {collection: {"data": rows}}}})
    check_raw(raw, what)
    return BulkBody(raw, [[i] for i in range(len(payloads))])


def _item_ref(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    return {"type": "catalog-item", "id": catalog_id(_external_id(_require(payload, what, row), what, row))}


def _variant_ref(payload: dict[str, Any], what: str, row: int | None) -> dict[str, Any]:
    return {
        "type": "catalog-variant",
        "id": catalog_id(_external_id(_require(payload, what, row), what, row)),
    }


def catalog_bulk_item_create_body(payloads: Sequence[dict[str, Any]]) -> BulkBody:
    return _catalog_job("catalog-item-bulk-create-job", "items", payloads, _item_create)


def catalog_bulk_item_update_body(payloads: Sequence[dict[str, Any]]) -> BulkBody:
    return _catalog_job("catalog-item-bulk-update-job", "items", payloads, _item_update)


def catalog_bulk_item_delete_body(payloads: Sequence[dict[str, Any]]) -> BulkBody:
    """Payloads: `{"external_id": ...}` (a `catalog_retire` payload's other keys are ignored)."""
    return _catalog_job("catalog-item-bulk-delete-job", "items", payloads, _item_ref)


def catalog_bulk_variant_create_body(payloads: Sequence[dict[str, Any]]) -> BulkBody:
    return _catalog_job("catalog-variant-bulk-create-job", "variants", payloads, _variant_create)


def catalog_bulk_variant_update_body(payloads: Sequence[dict[str, Any]]) -> BulkBody:
    return _catalog_job("catalog-variant-bulk-update-job", "variants", payloads, _variant_update)


def catalog_bulk_variant_delete_body(payloads: Sequence[dict[str, Any]]) -> BulkBody:
    return _catalog_job("catalog-variant-bulk-delete-job", "variants", payloads, _variant_ref)


# --- back in stock, deletion -----------------------------------------------------------------


def back_in_stock_body(payload: dict[str, Any]) -> Encoded:
    """`POST /api/back-in-stock-subscriptions`: `channels` (["EMAIL", "SMS"...]), `profile{email|
    phone_number|external_id}`, `variant_external_id`."""
    what = "back-in-stock"
    payload = _require(payload, what)
    _refuse_unknown(payload, {"channels", "profile", "variant_external_id"}, what, None)
    variant = payload.get("variant_external_id")
    if not isinstance(variant, str) or not variant:
        raise PayloadError(what, ["variant_external_id: required"])
    data = {
        "type": "back-in-stock-subscription",
        "attributes": {
            "channels": payload.get("channels"),
            "profile": {"data": {"type": "profile", "attributes": payload.get("profile")}},
        },
        "relationships": {"variant": {"data": {"type": "catalog-variant", "id": catalog_id(variant)}}},
    }
    return _one(BackInStockBody, {"data": data}, what)


def deletion_body(payload: dict[str, Any]) -> Encoded:
    """`POST /api/data-privacy-deletion-jobs` from a `profile_deletion` payload: `profile{id|email|
    phone_number}`. Klaviyo cannot delete by external_id: resolve the id first (`get_profiles`)."""
    what = "data-privacy-deletion"
    payload = _require(payload, what)
    _refuse_unknown(payload, {"profile"}, what, None)
    profile = payload.get("profile")
    if not isinstance(profile, dict):
        raise PayloadError(what, ["profile: an object with id, email or phone_number is required"])
    resource: dict[str, Any] = {
        "type": "profile",
        "attributes": {k: v for k, v in profile.items() if k != "id"},
    }
    if profile.get("id"):
        resource["id"] = profile["id"]
    body = {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": resource}}}}
    return _one(DeletionBody, body, what)


# --- batching --------------------------------------------------------------------------------


def split_batches(
    payloads: Sequence[dict[str, Any]],
    measure: Callable[[dict[str, Any]], int],
    max_rows: int,
    max_bytes: int = MAX_REQUEST_BYTES - 64 * 1024,
) -> list[list[int]]:
    """Cut payloads into consecutive batches (lists of indexes) of at most `max_rows` rows whose
    measured sizes add up to at most `max_bytes` (default: 5 MB less 64 KB for the envelope).

    `measure` gives one payload's size, e.g. `lambda p: serialized_size(p)`; a single payload larger
    than `max_bytes` raises `PayloadError` naming its row.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, payload in enumerate(payloads):
        size = measure(payload)
        if size > max_bytes:
            raise PayloadError("batch", [f"one payload is {size} bytes, over {max_bytes}"], i)
        if current and (len(current) >= max_rows or used + size > max_bytes):
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        batches.append(current)
    return batches
