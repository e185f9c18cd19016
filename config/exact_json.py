"""Reading JSON with orjson without its one silent difference: integers beyond 64 bits.

orjson reads a JSON integer outside the signed/unsigned 64-bit range as a float (`-9223372036854775809` becomes
`-9.223372036854776e+18`, `99999999999999999999` becomes `1e+20`), where the standard library keeps the exact
int. A tenant whose records carry a long numeric code as a JSON number would lose digits without a word. Every
such integer has at least 19 digits in a row, so a text with a run of 19 digits (rare: phone numbers, GTINs and
order numbers are shorter) is read by the standard library; so is what orjson refuses (NaN). The check maps
every digit to 0 and everything else to a space and looks for 19 zeros: about a tenth of orjson's own time.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_DIGITS_AS_ZEROS = bytes(ord("0") if ord("0") <= b <= ord("9") else ord(" ") for b in range(256))
_LONG_RUN = b"0" * 19


def may_hold_a_long_integer(data: bytes) -> bool:
    """A run of 19 digits or more somewhere in `data` (an integer orjson would not read exactly may be there)."""
    return _LONG_RUN in data.translate(_DIGITS_AS_ZEROS)


def loads(data: str | bytes) -> Any:
    """`json.loads(data)`, by orjson where it reads the same."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if may_hold_a_long_integer(raw):
        return json.loads(data)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(data)
