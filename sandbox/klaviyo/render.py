"""JSON:API documents the SDK's response models accept (links.self everywhere, ids and types)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from sandbox.klaviyo.attribution import Attribution
from sandbox.klaviyo.catalog import CatalogEntry
from sandbox.klaviyo.events import Event, Metric
from sandbox.klaviyo.jobs import Job
from sandbox.klaviyo.profiles import Profile
from sandbox.klaviyo.timeutil import iso

COLLECTIONS = {
    "profile": "profiles",
    "catalog-item": "catalog-items",
    "catalog-variant": "catalog-variants",
    "event": "events",
    "metric": "metrics",
    "attribution": "attributions",
    "profile-bulk-import-job": "profile-bulk-import-jobs",
    "catalog-item-bulk-create-job": "catalog-item-bulk-create-jobs",
    "catalog-item-bulk-update-job": "catalog-item-bulk-update-jobs",
    "catalog-variant-bulk-create-job": "catalog-variant-bulk-create-jobs",
    "catalog-variant-bulk-update-job": "catalog-variant-bulk-update-jobs",
}


def self_link(base: str, type_: str, id_: str) -> str:
    return f"{base}/api/{COLLECTIONS[type_]}/{id_}/"


def resource(base: str, type_: str, id_: str, attributes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "id": id_,
        "attributes": attributes,
        **extra,
        "links": {"self": self_link(base, type_, id_)},
    }


def document(base: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "links": {"self": data["links"]["self"]}}


def profile_resource(base: str, profile: Profile, with_subscriptions: bool) -> dict[str, Any]:
    return resource(base, "profile", profile.id, profile.attributes_json(with_subscriptions))


def catalog_resource(base: str, entry: CatalogEntry) -> dict[str, Any]:
    return resource(base, entry.kind, entry.id, entry.attributes_json())


def job_resource(base: str, job: Job) -> dict[str, Any]:
    with_errors = job.type != "profile-bulk-import-job"
    return resource(base, job.type, job.id, job.attributes_json(with_errors=with_errors))


def metric_resource(base: str, metric: Metric) -> dict[str, Any]:
    attributes = {
        "name": metric.name,
        "created": iso(metric.created),
        "updated": iso(metric.created),
        "integration": None,
    }
    return resource(base, "metric", metric.id, attributes)


def event_resource(base: str, event: Event, attribution: Attribution | None = None,
                   with_attributions: bool = False) -> dict[str, Any]:
    def relation(type_: str, id_: str, name: str) -> dict[str, Any]:
        return {
            "data": {"type": type_, "id": id_},
            "links": {
                "self": f"{base}/api/events/{event.id}/relationships/{name}/",
                "related": f"{base}/api/events/{event.id}/{name}/",
            },
        }

    relationships = {
        "profile": relation("profile", event.profile_id, "profile"),
        "metric": relation("metric", event.metric_id, "metric"),
    }
    if with_attributions:  # asked with include=attributions: the (at most one) attribution of the conversion
        relationships["attributions"] = {
            "data": [{"type": "attribution", "id": attribution.id}] if attribution else [],
            "links": {"self": f"{base}/api/events/{event.id}/relationships/attributions/",
                      "related": f"{base}/api/events/{event.id}/attributions/"},
        }
    return resource(base, "event", event.id, event.attributes_json(), relationships=relationships)


def attribution_resource(base: str, attribution: Attribution) -> dict[str, Any]:
    """Klaviyo's `attribution` resource: the conversion event and the campaign / flow and message it is
    attributed to (no `attributed-event`: the sandbox sends no messages, so there is no receipt event)."""

    def to(type_: str, id_: str, name: str) -> dict[str, Any]:
        return {"data": {"type": type_, "id": id_},
                "links": {"self": f"{base}/api/attributions/{attribution.id}/relationships/{name}/",
                          "related": f"{base}/api/attributions/{attribution.id}/{name}/"}}

    relationships = {"event": to("event", attribution.event_id, "event")}
    if attribution.kind == "campaign":
        relationships["campaign"] = to("campaign", attribution.send_id, "campaign")
        relationships["campaign-message"] = to("campaign-message", attribution.message_id, "campaign-message")
    else:
        relationships["flow"] = to("flow", attribution.send_id, "flow")
        relationships["flow-message"] = to("flow-message", attribution.message_id, "flow-message")
    return {"type": "attribution", "id": attribution.id, "relationships": relationships,
            "links": {"self": self_link(base, "attribution", attribution.id)}}


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises ValueError for a cursor the sandbox did not issue."""
    padded = cursor + "=" * (-len(cursor) % 4)
    text = base64.urlsafe_b64decode(padded.encode()).decode()
    if not text.startswith("offset:"):
        raise ValueError(cursor)
    offset = int(text.removeprefix("offset:"))
    if offset < 0:
        raise ValueError(cursor)
    return offset


def page_links(
    base: str, path: str, query: list[tuple[str, str]], offset: int, size: int, total: int
) -> dict[str, Any]:
    kept = [(key, value) for key, value in query if key != "page[cursor]"]

    def url(at: int | None) -> str:
        params = kept + ([("page[cursor]", encode_cursor(at))] if at is not None else [])
        return f"{base}{path}" + (f"?{urlencode(params)}" if params else "")

    links: dict[str, Any] = {"self": url(offset or None), "next": None, "prev": None}
    if offset + size < total:
        links["next"] = url(offset + size)
    if offset > 0:
        links["prev"] = url(max(0, offset - size))
    return links
