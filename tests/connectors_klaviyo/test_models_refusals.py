"""Bad payloads get a clear PayloadError (what, which row, which field) and never quote a value."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.klaviyo import models


def ev(i: int, email: str = "ada@example.com", unique_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "metric": "Placed Order",
        "profile": {"email": email},
        "unique_id": unique_id or f"SO{i}",
        **extra,
    }


def test_undeclared_profile_attribute_is_refused_without_quoting_values() -> None:
    with pytest.raises(models.PayloadError) as info:
        models.profile_import_body({"email": "secret@example.com", "nickname": "x"})
    assert "nickname" in str(info.value)
    with pytest.raises(models.PayloadError) as info:
        models.profile_import_body({"email": "secret@example.com", "location": {"town": "Paris"}})
    assert "location.town" in str(info.value)
    assert "secret@example.com" not in str(info.value) and "Paris" not in str(info.value)


def test_profile_needs_an_identifier() -> None:
    with pytest.raises(models.PayloadError, match="needs one of email"):
        models.profile_import_body({"first_name": "Ada"})


def test_bulk_rows_name_the_bad_row() -> None:
    with pytest.raises(models.PayloadError) as info:
        models.bulk_profile_import_body([{"email": "a@example.com"}, {"email": "b@example.com", "age": 3}])
    assert info.value.row == 1


def test_event_time_must_be_iso() -> None:
    with pytest.raises(models.PayloadError, match="time"):
        models.event_body({**ev(1), "time": "yesterday"})
    with pytest.raises(models.PayloadError, match="metric"):
        models.event_body({"profile": {"email": "a@example.com"}, "properties": {}})


def test_repeated_unique_id_for_same_profile_and_metric_is_refused() -> None:
    with pytest.raises(models.PayloadError, match="unique_id repeats row 0") as info:
        models.bulk_events_body([ev(1, unique_id="X"), ev(2), ev(3, unique_id="X")])
    assert info.value.row == 2
    # the same profile under another identifier set still shares the email: refused too
    with pytest.raises(models.PayloadError):
        models.bulk_events_body(
            [
                ev(1, unique_id="X"),
                {**ev(2, unique_id="X"), "profile": {"email": "ada@example.com", "external_id": "C"}},
            ]
        )
    # other profile or other metric: fine
    models.bulk_events_body([ev(1, unique_id="X"), ev(2, "bob@example.com", unique_id="X")])
    models.bulk_events_body([ev(1, unique_id="X"), {**ev(2, unique_id="X"), "metric": "Fulfilled Order"}])


def test_bulk_event_limit() -> None:
    models.bulk_events_body([ev(i) for i in range(1000)])
    with pytest.raises(models.PayloadError, match="1001 rows, over Klaviyo's 1000"):
        models.bulk_events_body([ev(i) for i in range(1001)])


def test_subscription_rules() -> None:
    with pytest.raises(models.PayloadError, match="profile.phone_number: required for channel 'sms'"):
        models.subscribe_body([{"channel": "sms", "profile": {"email": "a@example.com"}}])
    with pytest.raises(models.PayloadError, match="consented_at: required with historical_import"):
        models.subscribe_body(
            [{"channel": "email", "profile": {"email": "a@example.com"}, "historical_import": True}]
        )
    with pytest.raises(models.PayloadError, match="channel"):
        models.subscribe_body([{"channel": "push", "profile": {"email": "a@example.com"}}])
    # consented_at without historical_import is dropped (Klaviyo refuses it there)
    job = models.subscribe_body(
        [{"channel": "email", "profile": {"email": "a@example.com"}, "consented_at": "2020-01-01T00:00:00Z"}]
    )[0]
    consent = job.body["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]
    assert consent == {"email": {"marketing": {"consent": "SUBSCRIBED"}}}
    with pytest.raises(models.PayloadError, match="101 rows, over Klaviyo's 100"):
        models.unsubscribe_body(
            [{"channel": "email", "profile": {"email": f"{i}@example.com"}} for i in range(101)]
        )


def test_deletion_cannot_use_external_id() -> None:
    with pytest.raises(models.PayloadError, match="external_id"):
        models.deletion_body({"profile": {"external_id": "C1"}})


def test_variant_needs_its_item_and_required_fields() -> None:
    with pytest.raises(models.PayloadError, match="item_external_id"):
        models.catalog_variant_create_body({"external_id": "V", "title": "t"})
    with pytest.raises(models.PayloadError, match="sku"):
        models.catalog_variant_create_body(
            {
                "external_id": "V",
                "item_external_id": "I",
                "title": "t",
                "description": "d",
                "inventory_quantity": 1,
                "price": 1,
                "url": "u",
            }
        )
    with pytest.raises(models.PayloadError, match="inventory_policy"):
        models.catalog_variant_update_body({"external_id": "V", "inventory_policy": 7})


def test_size_limits() -> None:
    big = "x" * (models.MAX_STRING_BYTES + 1)
    with pytest.raises(models.PayloadError, match="a string is 102401 bytes"):
        models.event_body({**ev(1), "properties": {"blob": big}})
    body = {"data": ["y" * 100_000] * 60}
    assert models.serialized_size(body) > models.MAX_REQUEST_BYTES
    with pytest.raises(models.PayloadError, match="over Klaviyo's 5242880"):
        models.check_size(body, "test")
    assert models.serialized_size({"a": "é"}) == len('{"a":"é"}'.encode())


def test_split_batches_by_rows_and_bytes() -> None:
    payloads = [{"n": i} for i in range(25)]
    assert models.split_batches(payloads, lambda p: 10, max_rows=10) == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 25)),
    ]
    assert models.split_batches(payloads[:6], lambda p: 40, max_rows=100, max_bytes=100) == [
        [0, 1],
        [2, 3],
        [4, 5],
    ]
    with pytest.raises(models.PayloadError, match="row 0"):
        models.split_batches(payloads[:1], lambda p: 200, max_rows=10, max_bytes=100)
    events = [ev(i, properties={"blob": "z" * 90_000}) for i in range(120)]
    batches = models.split_batches(events, models.serialized_size, models.MAX_BULK_EVENTS)
    assert len(batches) == 3 and sum(map(len, batches)) == 120
    for batch in batches:
        body = models.bulk_events_body([events[i] for i in batch]).body
        assert models.serialized_size(body) <= models.MAX_REQUEST_BYTES
