"""orjson reads integers beyond 64 bits as floats, silently; the fleet's JSON readers keep them exact."""

from __future__ import annotations

import json

import orjson
import pytest

from config import exact_json, message_json
from sync import json_text

# beyond orjson's exact range on either side; 2**70 alone would hide the loss (a float holds it exactly)
LONG = [2**70 + 1, -(2**63) - 1, 99999999999999999999]
TEXT = json.dumps({"customer": {"CUST_NO": LONG[0], "codes": LONG[1:]}, "name": "Zoë", "qty": 2, "price": 9.5})


def test_orjson_alone_loses_the_digits() -> None:
    """Why the readers check: if orjson ever reads these exactly, the check can go."""
    assert orjson.loads(TEXT)["customer"]["CUST_NO"] != LONG[0]


@pytest.mark.parametrize("read", [exact_json.loads, json_text.loads, message_json.loads])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_every_reader_keeps_long_integers_exact(read: object, as_bytes: bool) -> None:
    value = read(TEXT.encode() if as_bytes else TEXT)  # type: ignore[operator]
    assert value == json.loads(TEXT)
    read_back = [value["customer"]["CUST_NO"], *value["customer"]["codes"]]
    assert read_back == LONG
    assert all(type(n) is int for n in read_back)


def test_ordinary_text_is_read_by_orjson_and_long_runs_are_found() -> None:
    assert not exact_json.may_hold_a_long_integer(b'{"phone": "+4915112345678", "gtin": 4006381333931}')
    assert exact_json.may_hold_a_long_integer(b'{"n": 1234567890123456789}')
    assert exact_json.may_hold_a_long_integer(b'{"s": "x1234567890123456789"}')  # in a string: read exactly anyway
    with pytest.raises(ValueError):
        exact_json.loads(b"<html>not JSON</html>")
