"""The scrubber as pure functions: every shape of secret the fleet handles, and what must survive."""

from __future__ import annotations

import pytest

from config.sentry import (
    EMAIL_MARK,
    FILTERED,
    PHONE_MARK,
    init_sentry,
    scrub_breadcrumb,
    scrub_event,
    scrub_text,
    sentry_options,
)
from tests.support.ops import make_settings

KEY = "pk_0123456789abcdef0123456789abcdef01"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Klaviyo-API-Key {KEY}", KEY),
        (f"refused key {KEY}.", KEY),
        ("Klaviyo-API-Key abcdefabcdefabcdef", "abcdefabcdefabcdef"),
        ("{'Ocp-Apim-Subscription-Key': '0123abcd0123abcd0123abcd0123abcd'}", "0123abcd0123abcd"),
        ("GET /customers?subscription-key=0123abcd0123abcd0123abcd0123abcd", "0123abcd0123abcd"),
        ('{"api_key": "s3cr3t-value"}', "s3cr3t-value"),
        ("password=hunter22 next", "hunter22"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("redis://:redispass123@redis:6379/0", "redispass123"),
    ],
)
def test_credentials_are_removed(text: str, secret: str) -> None:
    assert secret not in scrub_text(text)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("profile jane.doe+vip@example.co.uk exists", "jane.doe"),
        ('/api/profiles?filter=any(email,["a@x.com","b.c@y.org"])', "@"),
        ("/api/profiles?filter=any(email%2C%5B%22jane.doe%2Bvip%40example.co.uk%22%5D)", "jane.doe"),
        ("filter=any%28email%2C%5B%2522jane%2540example.com%2522%5D%29", "jane"),
        ("O'Brien <o'brien@mail.example.ie>", "o'brien"),
    ],
)
def test_emails_are_removed_plain_or_url_encoded(text: str, secret: str) -> None:
    scrubbed = scrub_text(text)
    assert secret not in scrubbed
    assert EMAIL_MARK in scrubbed


@pytest.mark.parametrize(
    "phone",
    [
        "+447700900123", "+44 7700 900123", "+1 (555) 123-4567", "+33 6 12 34 56 78", "%2B447700900123",
        "0044 7700 900123", "(555) 123-4567", "555-123-4567", "555.123.4567", "07700 900123",
        "020 7946 0958", "06 12 34 56 78", "0612345678", "030 12345678",
    ],
)
def test_phone_numbers_are_removed(phone: str) -> None:
    scrubbed = scrub_text(f'customer phone_number="{phone}" rejected')
    assert PHONE_MARK in scrubbed
    assert phone not in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15T10:20:30.001234Z", "01-15-2024 10:20", "15.01.2024", "version 10.0.1",
        "ip 192.168.100.200", "trace 4f1b0c9e00a1234567890abcdef01234", "order 100234567 line 3",
        "timestamp 1714560000.0012345678", "celery@worker-1", "pk_id and pk_customer_no",
        "HTTP 429 after 1.5s", "Basic setup failed", "tokens used: 5",
    ],
)
def test_ordinary_operational_text_survives(text: str) -> None:
    assert scrub_text(text) == text


def test_configured_secret_values_are_removed_verbatim() -> None:
    assert scrub_text("echoed 9f8e7d6c5b4a", known_secrets=["9f8e7d6c5b4a"]) == f"echoed {FILTERED}"
    assert scrub_text("a b c", known_secrets=["a"]) == "a b c", "too short to scrub safely"


def error_event() -> dict:
    return {
        "message": "failed for jane@example.com",
        "exception": {"values": [{
            "type": "HTTPStatusError",
            "value": f"400 for +447700900123 with Klaviyo-API-Key {KEY}",
            "stacktrace": {"frames": [{
                "function": "deliver",
                "vars": {"profile": "{'email': 'jane@example.com'}", "api_key": "'abc'", "count": 3,
                         "jane@example.com": "key that is an email"},
            }]},
        }]},
        "extra": {"customer": {"phone_number": "7700900123"}},
        "contexts": {"delivery": {"headers": {"Authorization": "whatever"}}},
        "request": {"url": "https://a.klaviyo.com/api/profiles?filter=equals(email,%22j%40x.io%22)",
                    "data": {"password": "pw"}},
        "breadcrumbs": {"values": [
            {"message": "upsert jane@example.com", "data": {"tel": "+1 555 123 4567"}},
        ]},
        "modules": {"phonenumbers": "8.13.0"},
        "level": "error",
    }


def test_scrub_event_cleans_every_part_and_keeps_the_shape() -> None:
    event = scrub_event(error_event())
    flat = repr(event)
    leaks = ("jane@", "447700900123", "7700900123", KEY, "whatever", "'abc'", "j%40x.io", "'pw'", "555 123")
    for secret in leaks:
        assert secret not in flat
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["vars"]["count"] == 3 and frame["function"] == "deliver"
    assert frame["vars"]["api_key"] == FILTERED
    assert EMAIL_MARK in frame["vars"], "a dict key that is an email is scrubbed too"
    assert event["modules"] == {"phonenumbers": "8.13.0"}
    assert event["level"] == "error"


def test_scrub_event_cleans_transactions_spans() -> None:
    transaction = {
        "type": "transaction",
        "transaction": "tasks.profiles.upsert",
        "spans": [{
            "op": "http.client",
            "description": "GET https://a.klaviyo.com/api/profiles",
            "data": {"url": "https://a.klaviyo.com/api/profiles",
                     "http.query": 'filter=any(email,["a@x.com"])&page[size]=100'},
        }, {"op": "db", "description": "lookup b@y.org"}],
    }
    spans = scrub_event(transaction)["spans"]
    assert spans[0]["data"]["http.query"] == f'filter=any(email,["{EMAIL_MARK}"])&page[size]=100'
    assert spans[1]["description"] == f"lookup {EMAIL_MARK}"
    assert spans[0]["data"]["url"] == "https://a.klaviyo.com/api/profiles"


def test_scrub_breadcrumb() -> None:
    crumb = {"category": "httpx", "data": {"url": "https://x/api?filter=equals(email,'a@b.co')",
                                            "http.query": "subscription-key=abcdef0123456789"}}
    cleaned = scrub_breadcrumb(crumb)
    assert "a@b.co" not in repr(cleaned) and "abcdef0123456789" not in repr(cleaned)
    assert cleaned["category"] == "httpx"


def test_options_policy() -> None:
    off = sentry_options(make_settings(sentry_dsn="http://k@127.0.0.1:9/1"))
    assert off["traces_sample_rate"] is None, "tracing stays off unless a rate is configured"
    assert off["send_default_pii"] is False
    for hook in ("before_send", "before_send_transaction", "before_breadcrumb"):
        assert callable(off[hook])
    names = {type(integration).__name__ for integration in off["integrations"]}
    assert names == {"CeleryIntegration", "HttpxIntegration", "LoggingIntegration"}
    on = sentry_options(make_settings(sentry_dsn="http://k@127.0.0.1:9/1",
                                 sentry_traces_sample_rate=0.2, klaviyo_api_key="pk_known_secret_value"))
    assert on["traces_sample_rate"] == 0.2
    assert "pk_known_secret_value" not in repr(on["before_send"]({"message": "x pk_known_secret_value"}, {}))


def test_init_without_dsn_returns_false() -> None:
    assert init_sentry(make_settings()) is False
