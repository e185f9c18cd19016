"""JSON for task messages with orjson: the same wire format as kombu's `json` serializer, at a tenth of the cost.

Every delivery, backfill chunk and task event crosses kombu twice as JSON: the task's body, then the
transport's message around it (kombu's Redis transport stores the message as JSON too). kombu encodes both
with the standard library, whose encoder costs about 8 ms per 1,000 operations of a bulk envelope and whose
decoder, with kombu's `object_hook` called on every object, about 6.5 ms; orjson does the same in 0.7 and 2.6
(bench/compare.py measures the whole path). The bytes are ordinary JSON either way (orjson's are compact and
keep non-ASCII as UTF-8), so a worker of either kind reads what the other wrote - a rolling deploy mixes them.

What orjson does not do alike is left to kombu's own codec, so the result is kombu's in every case:
- kombu's typed values (datetime, date, time, Decimal, bytes...) are written as its `{"__type__": ...,
  "__value__": ...}` objects: orjson hands them to kombu's encoder (`default`), and a message that holds such
  an object is decoded by kombu (which turns it back into the value);
- what orjson refuses (an integer over 64 bits, a non-string key, a str or int subclass) is encoded by kombu;
  what it cannot parse (NaN, which the standard library writes) is parsed by kombu.
One difference is kept: a `uuid.UUID` is written as its string (orjson's native form; kombu writes a typed
object). No task of the fleet passes one; Celery's ids travel as strings in the headers.
"""

from __future__ import annotations

from typing import Any

import orjson
from kombu import serialization
from kombu.utils import json as kombu_json

from config import exact_json

_KOMBU_ENCODER = kombu_json.JSONEncoder()
# datetime, dataclass and subclass values go to kombu's encoder (`default`), which marks the typed ones
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps(value: Any) -> str:
    """`kombu.utils.json.dumps(value)`, compact."""
    try:
        return orjson.dumps(value, default=_KOMBU_ENCODER.default, option=_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return str(kombu_json.dumps(value))


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """`kombu.utils.json.loads(data)`."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    typed = b'"__type__"' in data if isinstance(data, bytes) else '"__type__"' in data
    if typed:
        return kombu_json.loads(data)
    try:
        return exact_json.loads(data)  # an integer beyond 64 bits stays exact, as kombu reads it
    except ValueError:
        return kombu_json.loads(data)  # kombu's own error for what is no JSON


def register() -> None:
    """Make orjson the codec of kombu's `json` serializer (task bodies, task events) in this process. The
    content type stays `application/json`, so `accept_content=["json"]` and other processes are unaffected."""
    serialization.register("json", dumps, loads, content_type="application/json", content_encoding="utf-8")
