"""`Operation.wire()`: the JSON-ready form of an operation, taken as it is when it was read from JSON (a bulk
buffer's row), converted by pydantic otherwise - the same data either way."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from config import message_json
from delivery.envelope import envelope
from sync.operations import Operation

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
OPERATIONS = st.builds(
    Operation,
    kind=st.sampled_from(["event", "profile_upsert", "subscribe", "variant_inventory"]),
    key=st.text(min_size=1, max_size=30),
    lane=st.sampled_from(["fast", "default", "batch"]),
    payload=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6),
    version=st.none() | st.text(max_size=25),
    record=st.none() | st.text(min_size=1, max_size=20),
    profile_of=st.none() | st.text(max_size=10),
    repair=st.booleans(),
)


@given(OPERATIONS)
def test_an_operation_read_from_json_gives_what_pydantic_gives(op: Operation) -> None:
    read = Operation.from_json(op.model_dump_json())
    assert read == op
    assert read.wire() == op.model_dump(mode="json") == op.wire()
    assert list(read.wire()) == list(op.model_dump(mode="json"))  # the same fields, in the same order


def test_a_copy_with_another_payload_is_converted_again() -> None:
    read = Operation.from_json(Operation(kind="event", key="event:X", payload={"value": 1.5}).model_dump_json())
    changed: Any = read.model_copy(update={"payload": {"value": Decimal("2.50")}})
    assert changed.wire()["payload"] == {"value": "2.50"}  # pydantic's conversion, not the Decimal itself
    assigned = Operation.from_json(read.model_dump_json())
    assigned.payload = {"value": Decimal("3")}
    assert assigned.wire()["payload"] == {"value": "3"}
    assert read.model_copy().wire() == read.model_dump(mode="json")


def test_an_envelope_of_operations_read_from_json_is_encoded_by_orjson_compact() -> None:
    """The message encoder (config/message_json.py) hands a dict subclass to kombu's slower encoder: the wire form
    holds plain dicts only, so the envelope is the compact orjson text."""
    op = Operation(kind="event", key="event:Placed Order:1", lane="batch", payload={"metric": "Placed Order",
                   "properties": {"Name": "Zoë"}, "value": 1.5})
    env = envelope([Operation.from_json(op.model_dump_json())], "batch")
    assert type(env["operations"][0]["payload"]) is dict
    assert message_json.dumps([env]) == orjson.dumps([env]).decode()
    assert env["operations"][0] == op.model_dump(mode="json")
