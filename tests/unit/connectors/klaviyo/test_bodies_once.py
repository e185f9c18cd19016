"""Issue 18: a request body is validated once and serialised once, and the size and long-string checks run on
the bytes sent - refusing exactly what the checks on the parsed body refused."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from connectors.klaviyo import builders
from connectors.klaviyo.client import KlaviyoClient


def ev(i: int, email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    return {"metric": "Placed Order", "profile": {"email": email}, "unique_id": f"SO{i}",
            "properties": {"OrderId": f"SO{i}", "Note": 'say "hi"\\n'}, **extra}


class Counts:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.validations = 0
        self.serialisations = 0
        original_validate = BaseModel.model_validate.__func__  # type: ignore[attr-defined]
        original_validator, original_encode = builders.plain_validator, builders.encode
        counts = self

        def model_validate(cls: type[BaseModel], *args: Any, **kwargs: Any) -> Any:
            self.validations += 1
            return original_validate(cls, *args, **kwargs)

        class Validator:  # the body's rules, counted (pydantic-core's validator cannot be patched itself)
            def __init__(self, model: type[BaseModel]) -> None:
                self.validator = original_validator(model)

            def validate_python(self, data: Any) -> Any:
                counts.validations += 1
                return self.validator.validate_python(data)

        def encode(body: Any) -> bytes:
            self.serialisations += 1
            return original_encode(body)

        monkeypatch.setattr(BaseModel, "model_validate", classmethod(model_validate))
        monkeypatch.setattr(builders, "plain_validator", Validator)
        monkeypatch.setattr(builders, "encode", encode)


def test_a_bulk_event_body_is_validated_once_and_serialised_once_and_those_bytes_are_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(202)

    counts = Counts(monkeypatch)
    payloads = [ev(1), ev(2), ev(3, email="bob@example.com")]
    with KlaviyoClient("http://klaviyo.test", "pk", "2025-01-15", None, "batch",
                       transport=httpx.MockTransport(answer)) as client:
        client.bulk_create_events(payloads)
    assert (counts.validations, counts.serialisations) == (1, 1)
    assert len(sent) == 1
    assert sent[0] == builders.bulk_events_body(payloads).raw
    groups = orjson.loads(sent[0])["data"]["attributes"]["events-bulk-create"]["data"]
    assert [len(g["attributes"]["events"]["data"]) for g in groups] == [2, 1]


def test_a_single_event_and_a_profile_import_are_validated_and_serialised_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = Counts(monkeypatch)
    with KlaviyoClient("http://klaviyo.test", "pk", "2025-01-15", None, "fast",
                       transport=httpx.MockTransport(lambda r: httpx.Response(202))) as client:
        client.create_event(ev(1))
        assert (counts.validations, counts.serialisations) == (1, 1)
        client.import_profile({"email": "a@example.com", "properties": {"n": 1}})
    assert (counts.validations, counts.serialisations) == (2, 2)


def test_one_bad_row_of_a_bulk_body_is_named_with_its_field_as_row_by_row_checks_named_it() -> None:
    with pytest.raises(builders.PayloadError) as info:
        builders.bulk_events_body([ev(1), ev(2, time="yesterday"), ev(3, time="no")])
    assert info.value.row == 1 and info.value.problems == ["time: Value error, not an ISO 8601 date-time"]
    with pytest.raises(builders.PayloadError) as info:
        builders.bulk_events_body([ev(1), ev(2, email="b@example.com", profile={"first_name": "B"})])
    assert info.value.row == 1 and "needs one of email" in str(info.value)
    with pytest.raises(builders.PayloadError) as info:
        builders.bulk_profile_import_body([{"email": "a@example.com"}, {"email": "b@example.com",
                                                                        "location": {"town": "x"}}])
    assert info.value.row == 1 and info.value.problems[0].startswith("attributes.location.town:")


# strings that are longer or shorter as JSON than as UTF-8: escapes, quotes, backslashes, control characters
TRICKY = st.text(alphabet=st.sampled_from(['"', "\\", "\n", "\x01", "a", "é", "€", "😀", "\u2028", "/"]), max_size=40)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=20,
)


@given(JSONISH)
def test_the_longest_string_read_from_the_bytes_is_the_longest_string_of_the_body(body: Any) -> None:
    raw = builders.encode(body)
    assert builders.longest_string_in(raw) == builders.longest_string(body)
    for at_least in (0, 3, 10):  # below the threshold the answer may be 0; above it, exact
        found = builders.longest_string_in(raw, at_least)
        assert found == builders.longest_string(body) or found <= at_least >= builders.longest_string(body)


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("x" * builders.MAX_STRING_BYTES, False),
        ("x" * (builders.MAX_STRING_BYTES + 1), True),
        ('"' * 60_000, False),  # 120,000 bytes escaped, 60,000 sent as a string: accepted before, accepted now
        ("\x01" * 20_000, False),  # 6 bytes escaped each
        ("é" * (builders.MAX_STRING_BYTES // 2), False),
        ("é" * (builders.MAX_STRING_BYTES // 2) + "x", True),  # 102,401 bytes of UTF-8
        ('a"' * 51_201, True),  # 102,402 bytes with escaped quotes in it
    ],
)
def test_the_long_string_check_on_bytes_refuses_what_the_check_on_the_body_refused(value: str,
                                                                                   refused: bool) -> None:
    old = builders.longest_string({"blob": value}) > builders.MAX_STRING_BYTES
    assert old == refused
    for payload in (ev(1, properties={"blob": value}), ev(1, properties={value: 1})):
        if refused:
            with pytest.raises(builders.PayloadError, match=f"a string is {len(value.encode())} bytes"):
                builders.event_body(payload)
            with pytest.raises(builders.PayloadError, match="a string is"):
                builders.bulk_events_body([ev(0), payload])
        else:
            builders.event_body(payload)
            builders.bulk_events_body([ev(0), payload])


def test_the_size_check_is_on_the_bytes_sent() -> None:
    rows = [ev(i, properties={"blob": "y" * 90_000}) for i in range(60)]  # 5.4 MB
    with pytest.raises(builders.PayloadError, match="over Klaviyo's 5242880"):
        builders.bulk_events_body(rows)
    bulk = builders.bulk_events_body(rows[:50])
    assert builders.check_raw(bulk.raw, "x") == len(bulk.raw) == builders.serialized_size(bulk.body)
