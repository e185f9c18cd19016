"""Task messages through orjson (config/message_json.py) are what kombu's own JSON codec makes of them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from kombu import serialization
from kombu.utils import json as kombu_json

from config import message_json

ENVELOPE: dict[str, Any] = {
    "id": "e1", "lane": "batch", "kind": "event", "attempts": [], "created": 1765000000.25,
    "operations": [{"kind": "event", "key": "event:Placed Order:SO1", "lane": "batch", "version": None,
                    "payload": {"metric": "Placed Order", "value": 49.5, "properties": {"Name": "Zoë ✓"}},
                    "repair": False}],
}


@pytest.mark.parametrize("value", [
    [[ENVELOPE], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
    {"at": datetime(2026, 12, 7, 3, 0, tzinfo=UTC), "day": date(2026, 12, 7), "amount": Decimal("19.90")},
    {"raw": b"bytes"},
    {"big": 2**70},  # over 64 bits: kombu encodes it
    {1: "non-string key"},  # kombu makes the key a string
    (1, "a tuple"),
])
def test_what_kombu_reads_back_is_what_it_reads_from_its_own_codec(value: Any) -> None:
    ours = message_json.dumps(value)
    theirs = kombu_json.dumps(value)
    assert kombu_json.loads(ours) == kombu_json.loads(theirs)
    assert message_json.loads(ours) == kombu_json.loads(theirs)
    assert message_json.loads(theirs) == kombu_json.loads(theirs)
    assert message_json.loads(ours.encode()) == kombu_json.loads(theirs)


def test_typed_values_come_back_typed() -> None:
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert message_json.loads(message_json.dumps({"at": at, "n": Decimal("1.5")})) == {"at": at, "n": Decimal("1.5")}


def test_the_bytes_are_compact_json_with_utf8_text() -> None:
    out = message_json.dumps(ENVELOPE)
    assert json.loads(out) == ENVELOPE
    assert ", " not in out and "Zoë ✓" in out


def test_what_orjson_cannot_parse_is_parsed_by_kombu() -> None:
    assert str(message_json.loads('{"x": NaN}')["x"]) == "nan"
    assert message_json.loads(bytearray(b'{"a": 1}')) == {"a": 1}
    assert message_json.loads(memoryview(b'{"a": 1}')) == {"a": 1}


def test_registered_as_kombus_json_serializer() -> None:
    message_json.register()
    content_type, encoding, body = serialization.dumps(ENVELOPE, serializer="json")
    assert (content_type, encoding) == ("application/json", "utf-8")
    assert body == message_json.dumps(ENVELOPE)
    assert serialization.loads(body, content_type, encoding, accept=["application/json"]) == ENVELOPE
