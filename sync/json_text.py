"""JSON with orjson where the fleet reads and writes it most: stored order documents, Blue Cherry's pages and
the request bodies the Klaviyo client sends (`dumps_bytes`).

The same JSON as the standard library's, written compact and with non-ASCII as UTF-8 (both read either);
about a tenth of the cost to write and a third to read, which is most of what a backfill spends on JSON.
What orjson refuses to write (an integer over 64 bits, a non-string key) goes through the standard library,
written the same way; what it would read otherwise (an integer over 64 bits, which it turns into a float) or
refuses (NaN) is read by the standard library (`config/exact_json.py`). Not for text that is hashed or
compared byte for byte (an order's revision is a hash of `json.dumps(..., sort_keys=True)`,
`sync/orders/revision.py`): those keep the standard library's bytes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from config import exact_json


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, non-ASCII unescaped (what the Klaviyo client sends, too)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):  # an int over 64 bits, a non-string key: the slow, general path
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode("utf-8")


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`, by orjson where it reads the same (an integer beyond 64 bits stays exact)."""
    return exact_json.loads(text)
