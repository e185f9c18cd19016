"""Error items, row pointers of bulk requests, JSON-able error records."""

from __future__ import annotations

import json

from connectors.klaviyo import builders
from connectors.klaviyo.errors import (
    DuplicateProfileError,
    KlaviyoError,
    KlaviyoErrorItem,
    PermanentError,
    TransientError,
    parse_error_items,
    rows_from_pointers,
)


def item(pointer: str | None) -> dict[str, object]:
    return {
        "id": "e1",
        "status": 400,
        "code": "invalid",
        "title": "Invalid input.",
        "detail": "bad",
        "source": {"pointer": pointer} if pointer else {"parameter": "filter"},
        "meta": {},
    }


def test_parse_error_items() -> None:
    [parsed] = parse_error_items({"errors": [item("/data/attributes/email")]})
    assert parsed == KlaviyoErrorItem("e1", 400, "invalid", "Invalid input.", "bad", "/data/attributes/email")
    assert parse_error_items({"errors": [item(None)]})[0].parameter == "filter"
    assert parse_error_items("<html>bad gateway</html>") == []
    assert parse_error_items(None) == []
    assert parse_error_items({"errors": ["odd"]})[0].detail == "odd"


def test_rows_from_pointers() -> None:
    errors = parse_error_items(
        {
            "errors": [
                item("/data/attributes/events-bulk-create/data/3/attributes/events/data/0/attributes/time"),
                item("/data/attributes/profiles/data/17/attributes/email"),
                item("/data/attributes/profiles/data/17/attributes/phone_number"),
                item("/data/attributes/variants/data/0"),
                item("/data/attributes/custom_source"),
                item(None),
            ]
        }
    )
    rows = rows_from_pointers(PermanentError("x", status=400, errors=errors))
    assert sorted(rows) == [0, 3, 17]
    assert len(rows[17]) == 2


def test_pointer_rows_map_back_to_event_payloads() -> None:
    payloads = [
        {"metric": "M", "profile": {"email": e}, "unique_id": str(i)}
        for i, e in enumerate(["a@x.io", "b@x.io", "a@x.io", "c@x.io"])
    ]
    bulk = builders.bulk_events_body(payloads)
    error = PermanentError(
        "x",
        status=400,
        errors=parse_error_items(
            {"errors": [item("/data/attributes/events-bulk-create/data/0/attributes/profile")]}
        ),
    )
    assert bulk.payloads_of_rows(list(rows_from_pointers(error))) == [0, 2]


def test_to_dict_is_json_and_keeps_subclass_fields() -> None:
    dup = DuplicateProfileError(
        "profile-import: HTTP 409 (duplicate_profile)",
        duplicate_profile_id="01P",
        status=409,
        errors=parse_error_items({"errors": [item(None)]}),
        endpoint="profile-import",
    )
    record = json.loads(json.dumps(dup.to_dict()))
    assert record["class"] == "DuplicateProfileError"
    assert record["duplicate_profile_id"] == "01P"
    assert record["errors"][0]["code"] == "invalid"
    assert isinstance(dup, PermanentError) and isinstance(dup, KlaviyoError)
    transient = TransientError("events: timeout", retry_after=2.5, endpoint="events")
    assert transient.to_dict()["retry_after"] == 2.5
