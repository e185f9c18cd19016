"""Bad payloads get a clear PayloadError (what, which row, which field) and never quote a value."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.klaviyo import builders


def ev(i: int, email: str = "ada@example.com", unique_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "metric": "Placed Order",
        "profile": {"email": email},
        "unique_id": unique_id or f"SO{i}",
        **extra,
    }


def test_undeclared_profile_attribute_is_refused_without_quoting_values() -> None:
    with pytest.raises(builders.PayloadError) as info:
        builders.profile_import_body({"email": "secret@example.com", "nickname": "x"})
    assert "nickname" in str(info.value)
    with pytest.raises(builders.PayloadError) as info:
        builders.profile_import_body({"email": "secret@example.com", "location": {"town": "Paris"}})
    assert "location.town" in str(info.value)
    assert "secret@example.com" not in str(info.value) and "Paris" not in str(info.value)


def test_profile_needs_an_identifier() -> None:
    with pytest.raises(builders.PayloadError, match="needs one of email"):
        builders.profile_import_body({"first_name": "Ada"})


def test_bulk_rows_name_the_bad_row() -> None:
    with pytest.raises(builders.PayloadError) as info:
        builders.bulk_profile_import_body([{"email": "a@example.com"}, {"email": "b@example.com", "age": 3}])
    assert info.value.row == 1


def test_event_time_must_be_iso() -> None:
    with pytest.raises(builders.PayloadError, match="time"):
        builders.event_body({**ev(1), "time": "yesterday"})
    with pytest.raises(builders.PayloadError, match="metric"):
        builders.event_body({"profile": {"email": "a@example.com"}, "properties": {}})


def test_repeated_unique_id_for_same_profile_and_metric_is_refused() -> None:
    with pytest.raises(builders.PayloadError, match="unique_id repeats row 0") as info:
        builders.bulk_events_body([ev(1, unique_id="X"), ev(2), ev(3, unique_id="X")])
    assert info.value.row == 2
    # the same profile under another identifier set still shares the email: refused too
    with pytest.raises(builders.PayloadError):
        builders.bulk_events_body(
            [
                ev(1, unique_id="X"),
                {**ev(2, unique_id="X"), "profile": {"email": "ada@example.com", "external_id": "C"}},
            ]
        )
    # other profile or other metric: fine
    builders.bulk_events_body([ev(1, unique_id="X"), ev(2, "bob@example.com", unique_id="X")])
    builders.bulk_events_body([ev(1, unique_id="X"), {**ev(2, unique_id="X"), "metric": "Fulfilled Order"}])


def test_bulk_event_limit() -> None:
    builders.bulk_events_body([ev(i) for i in range(1000)])
    with pytest.raises(builders.PayloadError, match="1001 rows, over Klaviyo's 1000"):
        builders.bulk_events_body([ev(i) for i in range(1001)])


def test_subscription_rules() -> None:
    with pytest.raises(builders.PayloadError, match="profile.phone_number: required for channel 'sms'"):
        builders.subscribe_body([{"channel": "sms", "profile": {"email": "a@example.com"}}])
    with pytest.raises(builders.PayloadError, match="consented_at: required with historical_import"):
        builders.subscribe_body(
            [{"channel": "email", "profile": {"email": "a@example.com"}, "historical_import": True}]
        )
    with pytest.raises(builders.PayloadError, match="channel"):
        builders.subscribe_body([{"channel": "push", "profile": {"email": "a@example.com"}}])
    # consented_at without historical_import is dropped (Klaviyo refuses it there)
    job = builders.subscribe_body(
        [{"channel": "email", "profile": {"email": "a@example.com"}, "consented_at": "2020-01-01T00:00:00Z"}]
    )[0]
    consent = job.body["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]
    assert consent == {"email": {"marketing": {"consent": "SUBSCRIBED"}}}
    with pytest.raises(builders.PayloadError, match="101 rows, over Klaviyo's 100"):
        builders.unsubscribe_body(
            [{"channel": "email", "profile": {"email": f"{i}@example.com"}} for i in range(101)]
        )


def test_deletion_cannot_use_external_id() -> None:
    with pytest.raises(builders.PayloadError, match="external_id"):
        builders.deletion_body({"profile": {"external_id": "C1"}})


def test_variant_needs_its_item_and_required_fields() -> None:
    with pytest.raises(builders.PayloadError, match="item_external_id"):
        builders.catalog_variant_create_body({"external_id": "V", "title": "t"})
    with pytest.raises(builders.PayloadError, match="sku"):
        builders.catalog_variant_create_body(
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
    with pytest.raises(builders.PayloadError, match="inventory_policy"):
        builders.catalog_variant_update_body({"external_id": "V", "inventory_policy": 7})


def test_size_limits() -> None:
    big = "x" * (builders.MAX_STRING_BYTES + 1)
    with pytest.raises(builders.PayloadError, match="a string is 102401 bytes"):
        builders.event_body({**ev(1), "properties": {"blob": big}})
    body = {"data": ["y" * 100_000] * 60}
    assert builders.serialized_size(body) > builders.MAX_REQUEST_BYTES
    with pytest.raises(builders.PayloadError, match="over Klaviyo's 5242880"):
        builders.check_size(body, "test")
    assert builders.serialized_size({"a": "é"}) == len('{"a":"é"}'.encode())


def test_split_batches_by_rows_and_bytes() -> None:
    payloads = [{"n": i} for i in range(25)]
    assert builders.split_batches(payloads, lambda p: 10, max_rows=10) == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 25)),
    ]
    assert builders.split_batches(payloads[:6], lambda p: 40, max_rows=100, max_bytes=100) == [
        [0, 1],
        [2, 3],
        [4, 5],
    ]
    with pytest.raises(builders.PayloadError, match="row 0"):
        builders.split_batches(payloads[:1], lambda p: 200, max_rows=10, max_bytes=100)
    events = [ev(i, properties={"blob": "z" * 90_000}) for i in range(120)]
    batches = builders.split_batches(events, builders.serialized_size, builders.MAX_BULK_EVENTS)
    assert len(batches) == 3 and sum(map(len, batches)) == 120
    for batch in batches:
        body = builders.bulk_events_body([events[i] for i in batch]).body
        assert builders.serialized_size(body) <= builders.MAX_REQUEST_BYTES
