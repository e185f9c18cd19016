"""Envelopes: the message of one delivery - operations of one kind for one lane, plus its attempts so far -
packed by `delivery.packing`."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sync.operations import Operation


def envelope(ops: list[Operation], lane: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "lane": lane,
        "kind": ops[0].kind,
        "operations": [op.model_dump(mode="json") for op in ops],
        "attempts": [],
        "created": time.time(),
    }


