"""One function per Klaviyo endpoint: validate what schemas cannot, change the state, answer like Klaviyo."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from openapi_client import models as sdk
from pydantic import BaseModel

from sandbox.klaviyo import limits, render
from sandbox.klaviyo.attribution import AttributionError
from sandbox.klaviyo.errors import ApiError, ErrorItem
from sandbox.klaviyo.filters import (
    Condition,
    FilterError,
    Junction,
    Node,
    conditions,
    evaluate,
    parse_datetime,
    parse_filter,
)
from sandbox.klaviyo.jobs import Job
from sandbox.klaviyo.profiles import (
    Profile,
    ProfileConflict,
    check_email,
    check_identifiers,
    check_phone,
    email_key,
    subscribe,
    unsubscribe,
)
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.klaviyo.timeutil import from_epoch, iso
from sandbox.klaviyo.validation import batch_size_error


@dataclass
class Call:
    sandbox: KlaviyoSandbox
    body: Any
    query: Mapping[str, str]
    query_list: list[tuple[str, str]]
    path: str
    path_params: dict[str, str]
    base: str
    now: float


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Reply]


def _raise(errors: list[ErrorItem]) -> None:
    if errors:
        raise ApiError(errors[:50])


# Klaviyo's announcement of its phone validation (docs/sandbox.md "Identity resolution"): a request whose
# phone it cannot validate but that names the profile otherwise is processed without the phone, and says so
PARTIAL_FAILURE_HEADER = "X-Klaviyo-Partial-Failure"
PARTIAL_FAILURE_PHONE = "phone_number"
OTHER_IDENTIFIERS = ("email", "external_id", "anonymous_id", "_kx")


def _without_unusable_phone(
    sandbox: KlaviyoSandbox, attributes: dict[str, Any], profile_id: str | None
) -> tuple[dict[str, Any], bool]:
    """(attributes, dropped): under the `invalid_phone: "drop"` fault, an invalid phone is left out when
    something else identifies the profile; a phone-only profile keeps it, to be refused with a 400."""
    if sandbox.faults.invalid_phone != "drop" or not check_phone(attributes.get("phone_number"), ""):
        return attributes, False
    if not profile_id and not any(attributes.get(name) for name in OTHER_IDENTIFIERS):
        return attributes, False
    return {key: value for key, value in attributes.items() if key != "phone_number"}, True


def _partial_failure(dropped: bool) -> dict[str, str]:
    return {PARTIAL_FAILURE_HEADER: PARTIAL_FAILURE_PHONE} if dropped else {}


def _wants_subscriptions(call: Call) -> bool:
    return "subscriptions" in call.query.get("additional-fields[profile]", "").split(",")


def _parameter_error(name: str, detail: str) -> ApiError:
    return ApiError([ErrorItem(400, detail, "/", parameter=name)])


def _page_size(call: Call, default: int, maximum: int) -> int:
    raw = call.query.get("page[size]")
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= maximum:
        raise _parameter_error("page[size]", f"page[size] must be an integer between 1 and {maximum}.")
    return size


def _cursor(call: Call) -> int:
    raw = call.query.get("page[cursor]")
    if raw is None:
        return 0
    try:
        return render.decode_cursor(raw)
    except ValueError:
        raise _parameter_error("page[cursor]", "Invalid page cursor.") from None


def _parsed_filter(call: Call, allowed: dict[str, set[str]]) -> Junction | None:
    raw = call.query.get("filter")
    if raw is None:
        return None
    try:
        tree = parse_filter(raw)
    except FilterError as exc:
        raise _parameter_error("filter", f"Invalid filter: {exc}.") from None
    for condition in conditions(tree):
        if condition.op not in allowed.get(condition.field, set()):
            raise _parameter_error(
                "filter",
                f"The filter operator '{condition.op}' is not allowed on the field '{condition.field}'.",
            )
    return _with_datetimes(tree)


DATE_FIELDS = {"created", "updated", "datetime", "timestamp"}


def _with_datetimes(node: Node) -> Any:
    """Date fields compare as datetimes: accept quoted ISO strings and epoch seconds, refuse the rest."""
    if isinstance(node, Junction):
        return Junction(node.op, tuple(_with_datetimes(part) for part in node.parts))
    if node.field not in DATE_FIELDS or isinstance(node.value, datetime):
        return node
    try:
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return Condition(node.op, node.field, from_epoch(node.value))
        return Condition(node.op, node.field, parse_datetime(str(node.value)))
    except ValueError:
        raise _parameter_error("filter", f"'{node.value}' is not a datetime for '{node.field}'.") from None


def _paged(call: Call, records: list[Any], size: int, to_json: Callable[[Any], dict[str, Any]]) -> Reply:
    offset = _cursor(call)
    page = records[offset : offset + size]
    links = render.page_links(call.base, call.path, call.query_list, offset, size, len(records))
    return Reply(200, {"data": [to_json(record) for record in page], "links": links})


# --- profiles --------------------------------------------------------------------------------------------


def profile_import(call: Call) -> Reply:
    data = call.body["data"]
    attributes, dropped = _without_unusable_phone(call.sandbox, data["attributes"], data.get("id"))
    _raise(check_identifiers(attributes, "/data/attributes"))
    identifiers = {name: attributes.get(name) for name in ("email", "phone_number", "external_id")}
    identifiers["id"] = data.get("id")
    if not any(identifiers.values()) and not attributes.get("_kx"):
        _raise([ErrorItem(400, "One of email, phone_number, external_id or id is required.", "/data/attributes")])
    book = call.sandbox.profiles
    try:
        profile, created = book.resolve(identifiers, call.now, strict=True)
    except ProfileConflict as conflict:
        raise ApiError(
            [
                ErrorItem(
                    409,
                    "A profile already exists with one of these identifiers.",
                    "/data/attributes",
                    code="duplicate_profile",
                    title="Conflict.",
                    meta={"duplicate_profile_id": conflict.duplicate_profile_id},
                )
            ]
        ) from None
    assert profile is not None
    book.apply(profile, attributes, data.get("meta"), call.now)
    body = render.document(call.base, render.profile_resource(call.base, profile, _wants_subscriptions(call)))
    return Reply(201 if created else 200, body, _partial_failure(dropped))


PROFILE_FILTERS = {
    "id": {"equals", "any"},
    "email": {"equals", "any"},
    "phone_number": {"equals", "any"},
    "external_id": {"equals", "any"},
    "created": {"greater-than", "less-than"},
    "updated": {"greater-than", "less-than"},
}
PROFILE_SORTS = {"id", "created", "updated", "email"}


def _profile_candidates(call: Call, tree: Junction | None) -> list[Profile]:
    """Use an identifier index when the filter pins one; otherwise scan in creation order."""
    book = call.sandbox.profiles
    if tree is not None:
        for part in tree.parts:
            if isinstance(part, Condition) and part.field in ("id", *book.index) and part.op in ("equals", "any"):
                values = part.value if isinstance(part.value, list) else [part.value]
                found = {p.id: p for v in values if isinstance(v, str) and (p := book.find(part.field, v))}
                return sorted(found.values(), key=lambda p: p.seq)
    return list(book.by_id.values())


def _fold_emails(node: Node) -> Any:
    """`equals(email,...)` / `any(email,[...])` compare case-insensitively, as the email index does."""
    if isinstance(node, Junction):
        return Junction(node.op, tuple(_fold_emails(part) for part in node.parts))
    if node.field != "email":
        return node
    fold = lambda value: email_key(value) if isinstance(value, str) else value  # noqa: E731
    value = [fold(item) for item in node.value] if isinstance(node.value, list) else fold(node.value)
    return Condition(node.op, node.field, value)


def _folded_lookup(profile: Profile) -> Callable[[str], Any]:
    def lookup(name: str) -> Any:
        value = profile.lookup(name)
        return email_key(value) if name == "email" and isinstance(value, str) else value

    return lookup


def get_profiles(call: Call) -> Reply:
    # every job due by now is applied first, so consent read back is what Klaviyo would show (never a
    # subscription job still pending, never one already due but waiting for the background tick)
    call.sandbox.jobs.advance(call.now)
    tree = _parsed_filter(call, PROFILE_FILTERS)
    size = _page_size(call, 20, 100)
    sort = call.query.get("sort")
    if sort is not None and sort.lstrip("-") not in PROFILE_SORTS:
        raise _parameter_error("sort", f"Invalid sort field '{sort}'.")
    records = _profile_candidates(call, tree)
    if tree is not None:
        folded = _fold_emails(tree)
        records = [p for p in records if evaluate(folded, _folded_lookup(p))]
    if sort:
        key = sort.lstrip("-")
        records.sort(key=lambda p: (p.lookup(key) is None, p.lookup(key) or ""), reverse=sort.startswith("-"))
    with_subscriptions = _wants_subscriptions(call)
    return _paged(call, records, size, lambda p: render.profile_resource(call.base, p, with_subscriptions))


def profile_bulk_import(call: Call) -> Reply:
    data = call.body["data"]
    rows = data["attributes"]["profiles"]["data"]
    batch_size_error(rows, limits.MAX_BULK_PROFILES, "profiles", "/data/attributes/profiles/data")
    errors: list[ErrorItem] = []
    dropped = False
    for i, row in enumerate(rows):
        attributes, row_dropped = _without_unusable_phone(call.sandbox, row["attributes"], row.get("id"))
        row["attributes"], dropped = attributes, dropped or row_dropped
        errors += check_identifiers(attributes, f"/data/attributes/profiles/data/{i}/attributes")
    _raise(errors)
    list_ids = [item["id"] for item in (((data.get("relationships") or {}).get("lists") or {}).get("data") or [])]
    sandbox = call.sandbox

    def importer(row: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            attributes = row["attributes"]
            identifiers = {name: attributes.get(name) for name in ("email", "phone_number", "external_id")}
            identifiers["id"] = row.get("id")
            profile, _ = sandbox.profiles.resolve(identifiers, sandbox.now(), strict=True)
            assert profile is not None
            sandbox.profiles.apply(profile, attributes, row.get("meta"), sandbox.now())
            profile.lists.update(list_ids)

        return run

    job = _submit(
        call,
        "profile-bulk-import-job",
        [(f"/data/attributes/profiles/data/{i}", importer(row)) for i, row in enumerate(rows)],
    )
    return Reply(202, render.document(call.base, render.job_resource(call.base, job)), _partial_failure(dropped))


def _submit(call: Call, type_: str, rows: list[tuple[str, Callable[[], None]]], status: bool = True) -> Job:
    job = Job(call.sandbox.ids.ulid(call.now), type_, call.now, rows, has_status_endpoint=status)
    return call.sandbox.submit_job(job)


def _job(call: Call, type_: str) -> Job:
    call.sandbox.jobs.advance(call.now)
    job_id = call.path_params.get("id") or call.path_params["job_id"]
    job = call.sandbox.jobs.jobs.get(job_id)
    if job is None or job.type != type_:
        raise ApiError([ErrorItem(404, f"A {type_} with id '{job_id}' does not exist.", "/data/id")])
    return job


def get_profile_import_job(call: Call) -> Reply:
    job = _job(call, "profile-bulk-import-job")
    return Reply(200, render.document(call.base, render.job_resource(call.base, job)))


def list_profile_import_jobs(call: Call) -> Reply:
    call.sandbox.jobs.advance(call.now)
    size = _page_size(call, 20, 100)
    jobs = [job for job in call.sandbox.jobs.jobs.values() if job.type == "profile-bulk-import-job"]
    return _paged(call, jobs, size, lambda job: render.job_resource(call.base, job))


def get_import_errors(call: Call) -> Reply:
    job = _job(call, "profile-bulk-import-job")
    size = _page_size(call, 20, 100)

    def to_json(error: dict[str, Any]) -> dict[str, Any]:
        attributes = {key: error[key] for key in ("code", "title", "detail", "source")}
        attributes["source"] = {"pointer": error["source"]["pointer"]}
        return {
            "type": "import-error",
            "id": error["id"],
            "attributes": attributes,
            "links": {"self": f"{call.base}/api/import-errors/{error['id']}/"},
        }

    return _paged(call, job.errors, size, to_json)


# --- subscriptions ---------------------------------------------------------------------------------------


def _list_id(data: dict[str, Any]) -> str | None:
    relation = ((data.get("relationships") or {}).get("list") or {}).get("data")
    return relation.get("id") if relation else None


def _subscription_errors(attributes: dict[str, Any], pointer: str, historical: bool, now: float) -> list[ErrorItem]:
    errors = check_email(attributes.get("email"), f"{pointer}/email")
    errors += check_phone(attributes.get("phone_number"), f"{pointer}/phone_number")
    channels = attributes.get("subscriptions") or {}
    if channels.get("email") and not attributes.get("email"):
        errors.append(ErrorItem(400, "An email address is required to change email consent.", f"{pointer}/email"))
    if channels.get("sms") and not attributes.get("phone_number"):
        errors.append(ErrorItem(400, "A phone number is required to change SMS consent.", f"{pointer}/phone_number"))
    for channel in ("email", "sms"):
        for kind in ("marketing", "transactional"):
            params = (channels.get(channel) or {}).get(kind) or {}
            at_pointer = f"{pointer}/subscriptions/{channel}/{kind}/consented_at"
            consented_at = params.get("consented_at")
            if consented_at is not None and not historical:
                errors.append(
                    ErrorItem(400, "consented_at is only allowed when historical_import is true.", at_pointer)
                )
            elif params and historical and consented_at is None:
                errors.append(ErrorItem(400, "consented_at is required when historical_import is true.", at_pointer))
            elif consented_at is not None and limits.parse_time(consented_at) > from_epoch(now):
                errors.append(ErrorItem(400, "consented_at must be in the past.", at_pointer))
    return errors


def subscribe_profiles(call: Call) -> Reply:
    data = call.body["data"]
    attributes = data["attributes"]
    rows = attributes["profiles"]["data"]
    batch_size_error(rows, limits.MAX_SUBSCRIBES, "profiles", "/data/attributes/profiles/data")
    historical = bool(attributes.get("historical_import"))
    errors: list[ErrorItem] = []
    dropped = False
    for i, row in enumerate(rows):
        pointer = f"/data/attributes/profiles/data/{i}/attributes"
        row_attributes, row_dropped = _without_unusable_phone(call.sandbox, row["attributes"], row.get("id"))
        if row_dropped:  # no phone, no SMS consent: the email part of the row still goes through
            channels = {k: v for k, v in (row_attributes.get("subscriptions") or {}).items() if k != "sms"}
            row_attributes = {**row_attributes, "subscriptions": channels}
        row["attributes"], dropped = row_attributes, dropped or row_dropped
        errors += _subscription_errors(row_attributes, pointer, historical, call.now)
    _raise(errors)
    list_id = _list_id(data)
    sandbox = call.sandbox

    def action(row: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            row_attributes = row["attributes"]
            profile = _subscriber(sandbox, row_attributes, row.get("id"))
            channels = row_attributes["subscriptions"]
            consented = {
                channel: {
                    kind: {
                        **params,
                        "consented_at": limits.parse_time(params["consented_at"])
                        if params.get("consented_at")
                        else None,
                    }
                    for kind, params in (channels.get(channel) or {}).items()
                    if isinstance(params, dict)
                }
                for channel in ("email", "sms")
            }
            subscribe(profile, consented, historical, list_id, sandbox.now())

        return run

    _submit(
        call,
        "profile-subscription-bulk-create-job",
        [(f"/data/attributes/profiles/data/{i}", action(row)) for i, row in enumerate(rows)],
        status=False,
    )
    return Reply(202, headers=_partial_failure(dropped))


def _subscriber(sandbox: KlaviyoSandbox, attributes: dict[str, Any], profile_id: str | None) -> Profile:
    """Subscribe rows resolve strictly: `id` (when given) is the lookup, the row's email and phone are set on
    that profile, and an email or phone another profile owns fails the row (409 duplicate_profile) rather
    than put consent on the wrong person."""
    identifiers = {name: attributes.get(name) for name in ("email", "phone_number")}
    profile, _ = sandbox.profiles.resolve({**identifiers, "id": profile_id}, sandbox.now(), strict=True)
    assert profile is not None
    sandbox.profiles.apply(profile, {k: v for k, v in identifiers.items() if v}, None, sandbox.now())
    return profile


def _profile_for(
    sandbox: KlaviyoSandbox, attributes: dict[str, Any], profile_id: str | None, id_pointer: str = "/data/id"
) -> Profile:
    identifiers = {name: attributes.get(name) for name in ("email", "phone_number", "external_id")}
    identifiers["id"] = profile_id
    profile, created = sandbox.profiles.resolve(identifiers, sandbox.now(), strict=False, id_pointer=id_pointer)
    assert profile is not None
    if created:
        sandbox.profiles.apply(profile, {k: v for k, v in identifiers.items() if k != "id"}, None, sandbox.now())
    return profile


def unsubscribe_profiles(call: Call) -> Reply:
    data = call.body["data"]
    rows = data["attributes"]["profiles"]["data"]
    batch_size_error(rows, limits.MAX_UNSUBSCRIBES, "profiles", "/data/attributes/profiles/data")
    errors: list[ErrorItem] = []
    for i, row in enumerate(rows):
        errors += _subscription_errors(
            row["attributes"], f"/data/attributes/profiles/data/{i}/attributes", False, call.now
        )
    _raise(errors)
    list_id = _list_id(data)
    sandbox = call.sandbox

    def action(row: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            attributes = row["attributes"]
            channels = attributes["subscriptions"]
            by_email = sandbox.profiles.find("email", attributes.get("email"))
            by_phone = sandbox.profiles.find("phone_number", attributes.get("phone_number"))
            if by_email is not None and by_phone is not None and by_email is not by_phone:
                # two people: each address is unsubscribed on the profile that owns it, none is left behind
                unsubscribe(by_email, {"email": channels.get("email")}, list_id, sandbox.now())
                unsubscribe(by_phone, {"sms": channels.get("sms")}, list_id, sandbox.now())
                return
            unsubscribe(_profile_for(sandbox, attributes, None), channels, list_id, sandbox.now())

        return run

    _submit(
        call,
        "profile-subscription-bulk-delete-job",
        [(f"/data/attributes/profiles/data/{i}", action(row)) for i, row in enumerate(rows)],
        status=False,
    )
    return Reply(202)


# --- events ----------------------------------------------------------------------------------------------


def _store_event(
    sandbox: KlaviyoSandbox, profile_ref: dict[str, Any], attributes: dict[str, Any], id_pointer: str
) -> None:
    profile_attributes = profile_ref.get("attributes") or {}
    profile = _profile_for(sandbox, profile_attributes, profile_ref.get("id"), id_pointer)
    now = sandbox.now()
    sandbox.profiles.apply(profile, profile_attributes, profile_ref.get("meta"), now)
    moment = limits.parse_time(attributes["time"]) if attributes.get("time") is not None else from_epoch(now)
    name = attributes["metric"]["data"]["attributes"]["name"]
    stored = sandbox.events.add(profile.id, name, attributes, moment, now)
    if stored is not None and (profile.last_event_date is None or moment > profile.last_event_date):
        profile.last_event_date = moment


def _usable_profile_ref(sandbox: KlaviyoSandbox, profile_ref: Any) -> tuple[Any, bool]:
    """The event's profile reference, without an invalid phone under the `drop` fault."""
    if not isinstance(profile_ref, dict):
        return profile_ref, False
    attributes, dropped = _without_unusable_phone(sandbox, profile_ref.get("attributes") or {}, profile_ref.get("id"))
    return ({**profile_ref, "attributes": attributes} if dropped else profile_ref), dropped


def create_event(call: Call) -> Reply:
    attributes = call.body["data"]["attributes"]
    profile_ref, dropped = _usable_profile_ref(call.sandbox, attributes["profile"]["data"])
    errors = limits.event_errors(attributes, "/data/attributes", call.now)
    errors += limits.profile_errors(profile_ref, "/data/attributes/profile/data")
    _raise(errors)
    _store_event(call.sandbox, profile_ref, attributes, "/data/attributes/profile/data/id")
    return Reply(202, headers=_partial_failure(dropped))


def bulk_create_events(call: Call) -> Reply:
    groups = call.body["data"]["attributes"]["events-bulk-create"]["data"]
    base = "/data/attributes/events-bulk-create/data"
    total = sum(len(group["attributes"]["events"]["data"]) for group in groups)
    if total > limits.MAX_BULK_EVENTS:
        _raise(
            [
                ErrorItem(
                    400,
                    f"A request may contain at most {limits.MAX_BULK_EVENTS} events; this one has {total}.",
                    base,
                )
            ]
        )
    errors: list[ErrorItem] = []
    seen: dict[tuple[Any, ...], str] = {}
    rows: list[tuple[str, Callable[[], None]]] = []
    sandbox = call.sandbox
    dropped = False
    for g, group in enumerate(groups):
        profile_ref, group_dropped = _usable_profile_ref(sandbox, group["attributes"]["profile"]["data"])
        dropped = dropped or group_dropped
        profile_pointer = f"{base}/{g}/attributes/profile/data"
        errors += limits.profile_errors(profile_ref, profile_pointer)
        for e, event in enumerate(group["attributes"]["events"]["data"]):
            pointer = f"{base}/{g}/attributes/events/data/{e}/attributes"
            attributes = event["attributes"]
            errors += limits.event_errors(attributes, pointer, call.now)
            unique_id = attributes.get("unique_id")
            if unique_id is not None:
                key = (
                    limits.profile_key(profile_ref),
                    attributes["metric"]["data"]["attributes"]["name"],
                    unique_id,
                )
                if key in seen:
                    errors.append(
                        ErrorItem(
                            400,
                            f"Duplicate unique_id '{unique_id}' for the same profile and metric "
                            f"(first at {seen[key]}).",
                            f"{pointer}/unique_id",
                        )
                    )
                seen.setdefault(key, f"{pointer}/unique_id")
            rows.append((pointer, partial(_store_event, sandbox, profile_ref, attributes, f"{profile_pointer}/id")))
    _raise(errors)
    _submit(call, "event-bulk-create-job", rows, status=False)
    sandbox.events.bulk_job_sizes[total] += 1
    return Reply(202, headers=_partial_failure(dropped))


EVENT_FILTERS = {
    "metric_id": {"equals"},
    "profile_id": {"equals"},
    "datetime": {"greater-or-equal", "greater-than", "less-or-equal", "less-than"},
    "timestamp": {"greater-or-equal", "greater-than", "less-or-equal", "less-than"},
}


def get_events(call: Call) -> Reply:
    tree = _parsed_filter(call, EVENT_FILTERS)
    size = _page_size(call, 200, 1000)
    sort = call.query.get("sort")
    if sort is not None and sort.lstrip("-") not in ("datetime", "timestamp"):
        raise _parameter_error("sort", f"Invalid sort field '{sort}'.")
    log = call.sandbox.events
    pinned = {c.field: c.value for c in (tree.parts if tree else ()) if isinstance(c, Condition) and c.op == "equals"}
    if "profile_id" in pinned:
        records = list(log.by_profile.get(str(pinned["profile_id"]), []))
    elif "metric_id" in pinned:
        records = list(log.by_metric.get(str(pinned["metric_id"]), []))
    else:
        records = [event for events in log.by_metric.values() for event in events]

    def lookup(name: str) -> Any:
        return {
            "metric_id": event.metric_id,
            "profile_id": event.profile_id,
            "datetime": event.time,
            "timestamp": event.time,
        }[name]

    if tree is not None:
        kept = []
        for event in records:
            if evaluate(tree, lookup):
                kept.append(event)
        records = kept
    records.sort(key=lambda event: event.time, reverse=bool(sort and sort.startswith("-")))
    include = _includes(call)
    book = call.sandbox.attribution
    with_attributions = "attributions" in include
    reply = _paged(call, records, size, lambda event: render.event_resource(
        call.base, event, book.of_event(event.id), with_attributions))
    if include and reply.body is not None:
        reply.body["included"] = _included(call, include, reply.body["data"])
    return reply


EVENT_INCLUDES = ("attributions", "metric", "profile")


def _includes(call: Call) -> set[str]:
    asked = {name for name in call.query.get("include", "").split(",") if name}
    unknown = asked - set(EVENT_INCLUDES)
    if unknown:
        raise _parameter_error("include", f"Invalid include: {', '.join(sorted(unknown))}; "
                                          f"allowed: {', '.join(EVENT_INCLUDES)}.")
    return asked


def _included(call: Call, include: set[str], page: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The compound document's `included`: each related resource of the page once."""
    sandbox = call.sandbox
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for event in page:
        relations = event["relationships"]
        if "attributions" in include:
            for ref in relations["attributions"]["data"]:
                found = sandbox.attribution.of_event(event["id"])
                if found is not None:
                    out[("attribution", ref["id"])] = render.attribution_resource(call.base, found)
        if "metric" in include:
            metric = sandbox.events.metrics.get(relations["metric"]["data"]["id"])
            if metric is not None:
                out[("metric", metric.id)] = render.metric_resource(call.base, metric)
        if "profile" in include:
            profile = sandbox.profiles.by_id.get(relations["profile"]["data"]["id"])
            if profile is not None:
                out[("profile", profile.id)] = render.profile_resource(call.base, profile, False)
    return list(out.values())


def _values_report(call: Call, kind: str) -> Reply:
    """`POST /api/campaign-values-reports` / `flow-values-reports` (sandbox.klaviyo.attribution)."""
    attributes = call.body["data"]["attributes"]
    try:
        results = call.sandbox.attribution.values_report(kind, attributes, call.sandbox.events,
                                                         from_epoch(call.now))
    except AttributionError as exc:
        raise ApiError([ErrorItem(400, str(exc), "/data/attributes")]) from None
    sends = sorted({str(row["groupings"].get(f"{kind}_id")) for row in results if row["groupings"].get(f"{kind}_id")})
    collection = f"{kind}s"
    links = {"self": f"{call.base}/api/{kind}-values-reports/{{id}}/relationships/{collection}/",
             "related": f"{call.base}/api/{kind}-values-reports/{{id}}/{collection}/"}
    relationships: dict[str, Any] = {collection: {"data": [{"type": kind, "id": i} for i in sends], "links": links}}
    body = {"data": {"type": f"{kind}-values-report", "attributes": {"results": results},
                     "relationships": relationships},
            "links": {"self": f"{call.base}/api/{kind}-values-reports/"}}
    return Reply(200, body)


def get_metrics(call: Call) -> Reply:
    metrics = list(call.sandbox.events.metrics.values())
    return _paged(call, metrics, 200, lambda metric: render.metric_resource(call.base, metric))


# --- catalog ---------------------------------------------------------------------------------------------


def _catalog_create(call: Call, kind: str) -> Reply:
    data = call.body["data"]
    item_id = ((data.get("relationships") or {}).get("item") or {}).get("data", {}) or {}
    entry = call.sandbox.catalog.create(kind, data["attributes"], item_id.get("id"), call.now)
    return Reply(201, render.document(call.base, render.catalog_resource(call.base, entry)))


def _catalog_get(call: Call, kind: str) -> Reply:
    entry = call.sandbox.catalog.get(kind, call.path_params["id"])
    return Reply(200, render.document(call.base, render.catalog_resource(call.base, entry)))


CATALOG_FILTERS = {"ids": {"any"}}


def _catalog_list(call: Call, kind: str) -> Reply:
    """`GET /api/catalog-items` / `catalog-variants`: every entry of the catalog (creation order), or those
    `any(ids,[...])` names; 100 per page, Klaviyo's size for these lists."""
    tree = _parsed_filter(call, CATALOG_FILTERS)
    size = _page_size(call, 100, 100)
    table = call.sandbox.catalog.items if kind == "catalog-item" else call.sandbox.catalog.variants
    records = list(table.values())
    if tree is not None:
        wanted = {v for c in conditions(tree) for v in (c.value if isinstance(c.value, list) else [c.value])}
        records = [entry for entry in records if entry.id in wanted]
    return _paged(call, records, size, lambda entry: render.catalog_resource(call.base, entry))


def _catalog_update(call: Call, kind: str) -> Reply:
    data = call.body["data"]
    if data["id"] != call.path_params["id"]:
        raise ApiError([ErrorItem(409, "The id in the body does not match the id in the URL.", "/data/id")])
    entry = call.sandbox.catalog.update(kind, data["id"], data["attributes"], call.now)
    return Reply(200, render.document(call.base, render.catalog_resource(call.base, entry)))


def _catalog_bulk(call: Call, kind: str, action: str) -> Reply:
    data = call.body["data"]
    plural = "items" if kind == "catalog-item" else "variants"
    rows = data["attributes"][plural]["data"]
    pointer = f"/data/attributes/{plural}/data"
    batch_size_error(rows, limits.MAX_CATALOG_ROWS, plural, pointer)
    catalog, sandbox = call.sandbox.catalog, call.sandbox

    def run(row: dict[str, Any]) -> Callable[[], None]:
        def create() -> None:
            item = (((row.get("relationships") or {}).get("item") or {}).get("data") or {}).get("id")
            catalog.create(kind, row["attributes"], item, sandbox.now())

        def update() -> None:
            catalog.update(kind, row["id"], row["attributes"], sandbox.now())

        return create if action == "create" else update

    job_type = f"{kind}-bulk-{action}-job"
    job = _submit(call, job_type, [(f"{pointer}/{i}", run(row)) for i, row in enumerate(rows)])
    return Reply(202, render.document(call.base, render.job_resource(call.base, job)))


def _catalog_job(call: Call, job_type: str) -> Reply:
    job = _job(call, job_type)
    return Reply(200, render.document(call.base, render.job_resource(call.base, job)))


# --- back in stock, privacy ------------------------------------------------------------------------------


def back_in_stock(call: Call) -> Reply:
    data = call.body["data"]
    attributes = data["attributes"]
    profile_ref = (attributes.get("profile") or {}).get("data") or {}
    profile_attributes = profile_ref.get("attributes") or {}
    errors = (
        limits.profile_errors(profile_ref, "/data/attributes/profile/data")
        if profile_ref
        else [ErrorItem(400, "A profile is required.", "/data/attributes/profile")]
    )
    channels = attributes["channels"]
    if "EMAIL" in channels and not profile_attributes.get("email"):
        errors.append(ErrorItem(400, "The EMAIL channel needs the profile's email.", "/data/attributes/channels"))
    if "SMS" in channels and not profile_attributes.get("phone_number"):
        errors.append(ErrorItem(400, "The SMS channel needs the profile's phone_number.", "/data/attributes/channels"))
    _raise(errors)
    variant_id = data["relationships"]["variant"]["data"]["id"]
    call.sandbox.catalog.get("catalog-variant", variant_id)
    profile = _profile_for(call.sandbox, profile_attributes, profile_ref.get("id"), "/data/attributes/profile/data/id")
    call.sandbox.back_in_stock.append(
        {
            "profile_id": profile.id,
            "email": profile.email,
            "phone_number": profile.phone_number,
            "channels": list(channels),
            "variant_id": variant_id,
            "created": iso(from_epoch(call.now)),
        }
    )
    return Reply(202)


def data_privacy_deletion(call: Call) -> Reply:
    profile_ref = call.body["data"]["attributes"]["profile"]["data"]
    attributes = profile_ref.get("attributes") or {}
    given = [name for name in ("email", "phone_number") if attributes.get(name)] + (
        ["id"] if profile_ref.get("id") else []
    )
    if len(given) != 1:
        _raise(
            [
                ErrorItem(
                    400,
                    "Exactly one of id, email or phone_number identifies the profile to delete.",
                    "/data/attributes/profile/data",
                )
            ]
        )
    _raise(check_identifiers(attributes, "/data/attributes/profile/data/attributes"))
    sandbox = call.sandbox

    def run() -> None:
        name = given[0]
        profile = sandbox.profiles.find(name, profile_ref.get("id") if name == "id" else attributes[name])
        if profile is None:
            return
        sandbox.events.forget_profile(profile.id)
        sandbox.back_in_stock[:] = [s for s in sandbox.back_in_stock if s["profile_id"] != profile.id]
        sandbox.profiles.delete(profile)
        sandbox.deleted_profiles.append(profile.id)

    _submit(call, "data-privacy-deletion-job", [("/data/attributes/profile/data", run)], status=False)
    return Reply(202)


# --- the route table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # template, e.g. /api/catalog-items/{id}
    tier: str
    handler: Handler
    model: type[BaseModel] | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _catalog_ops() -> list[Operation]:
    ops: list[Operation] = []
    for kind, plural, name in (
        ("catalog-item", "catalog-items", "Item"),
        ("catalog-variant", "catalog-variants", "Variant"),
    ):
        create_model = getattr(sdk, f"Catalog{name}CreateQuery")
        update_model = getattr(sdk, f"Catalog{name}UpdateQuery")
        ops += [
            Operation("POST", f"/api/{plural}", "L", partial(_catalog_create, kind=kind), create_model),
            Operation("GET", f"/api/{plural}/{{id}}", "XL", partial(_catalog_get, kind=kind)),
            Operation("GET", f"/api/{plural}", "L", partial(_catalog_list, kind=kind)),
            Operation("PATCH", f"/api/{plural}/{{id}}", "L", partial(_catalog_update, kind=kind), update_model),
        ]
        for action, action_name in (("create", "Create"), ("update", "Update")):
            job_model = getattr(sdk, f"Catalog{name}{action_name}JobCreateQuery")
            path = f"/api/{kind}-bulk-{action}-jobs"
            job_type = f"{kind}-bulk-{action}-job"
            ops += [
                Operation("POST", path, "L", partial(_catalog_bulk, kind=kind, action=action), job_model),
                Operation("GET", f"{path}/{{job_id}}", "L", partial(_catalog_job, job_type=job_type)),
            ]
    return ops


OPERATIONS: list[Operation] = [
    Operation("POST", "/api/events", "XL", create_event, sdk.EventCreateQueryV2),
    Operation("GET", "/api/events", "XL", get_events),
    Operation("GET", "/api/metrics", "M", get_metrics),
    Operation("POST", "/api/campaign-values-reports", "VALUES", partial(_values_report, kind="campaign"),
              sdk.CampaignValuesRequestDTO),
    Operation("POST", "/api/flow-values-reports", "VALUES", partial(_values_report, kind="flow"),
              sdk.FlowValuesRequestDTO),
    Operation("POST", "/api/event-bulk-create-jobs", "M", bulk_create_events, sdk.EventsBulkCreateJob),
    Operation("POST", "/api/profile-import", "L", profile_import, sdk.ProfileUpsertQuery),
    Operation("GET", "/api/profiles", "L", get_profiles),
    Operation("POST", "/api/profile-bulk-import-jobs", "M", profile_bulk_import, sdk.ProfileImportJobCreateQuery),
    Operation("GET", "/api/profile-bulk-import-jobs", "M", list_profile_import_jobs),
    Operation("GET", "/api/profile-bulk-import-jobs/{id}", "M", get_profile_import_job),
    Operation("GET", "/api/profile-bulk-import-jobs/{id}/import-errors", "M", get_import_errors),
    Operation(
        "POST",
        "/api/profile-subscription-bulk-create-jobs",
        "L",
        subscribe_profiles,
        sdk.SubscriptionCreateJobCreateQuery,
    ),
    Operation(
        "POST",
        "/api/profile-subscription-bulk-delete-jobs",
        "L",
        unsubscribe_profiles,
        sdk.SubscriptionDeleteJobCreateQuery,
    ),
    *_catalog_ops(),
    Operation("POST", "/api/back-in-stock-subscriptions", "XL", back_in_stock, sdk.ServerBISSubscriptionCreateQuery),
    Operation(
        "POST",
        "/api/data-privacy-deletion-jobs",
        "DATA_PRIVACY",
        data_privacy_deletion,
        sdk.DataPrivacyCreateDeletionJobQuery,
    ),
]
