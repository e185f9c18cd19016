"""JSON text through orjson (sync/json_text.py) reads back as the standard library's, and falls back to it."""

from __future__ import annotations

import json

import pytest

from sync import json_text


@pytest.mark.parametrize("value", [
    {"record": {"ORDER_NO": "SO1", "NAME": "Zoë ✓", "QTY": 2, "PRICE": 19.9, "LINES": [{"A": None}]}},
    {"big": 2**70},  # orjson refuses: the standard library writes it
    {1: "a non-string key"},  # orjson refuses: the standard library makes it "1"
    [],
])
def test_what_is_written_reads_back_as_the_standard_librarys(value: object) -> None:
    text = json_text.dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert json_text.loads(text) == json.loads(json.dumps(value))
    assert json_text.loads(text.encode()) == json.loads(json.dumps(value))


def test_compact_utf8_text_and_the_standard_librarys_own_reads() -> None:
    assert json_text.dumps({"a": "é"}) == '{"a":"é"}'
    assert str(json_text.loads('{"x": NaN}')["x"]) == "nan"  # orjson refuses NaN; the standard library reads it
    assert json_text.loads('{"a": 1}'.encode("utf-16")) == {"a": 1}  # not UTF-8: the standard library detects it
    with pytest.raises(ValueError):
        json_text.loads(b"<html>not JSON</html>")


@pytest.mark.parametrize("value", [{"a": "é", "b": [1, 2.5, None]}, {"big": 2**70, "c": "✓"}, {1: "é"}])
def test_bytes_are_compact_utf8_by_either_path(value: object) -> None:
    """orjson's bytes, and the standard library's when orjson refuses: the same form either way."""
    assert json_text.dumps_bytes(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
