"""The stock scan an inventory change carries (ChangeEvent.scan) is on the wire only when there is one, so every
other message keeps the shape workers of before accept, and a message of before parses as having none."""

from __future__ import annotations

import json

from sync.changes import ChangeEvent

BEFORE = {"resource": "inventory", "key": "17", "kind": "created", "changed_fields": ["qty_oh"], "lane": "fast",
          "record": {"style": "S1"}, "fingerprint": "f", "last_mod": "2026-11-20 10:00:00",
          "version": "2026-11-20T15:00:00Z#000001"}


def test_a_message_of_before_parses_with_no_scan_and_is_written_back_unchanged() -> None:
    event = ChangeEvent.model_validate(BEFORE)
    assert event.scan == ""
    assert event.model_dump(mode="json") == BEFORE
    assert json.loads(event.model_dump_json()) == BEFORE


def test_a_scanned_row_carries_its_scan_through_the_wire() -> None:
    event = ChangeEvent.model_validate(BEFORE)
    event.scan = "1796559664-0a1b2c3d4e"
    body = event.model_dump(mode="json")
    assert body == {**BEFORE, "scan": "1796559664-0a1b2c3d4e"}
    assert ChangeEvent.model_validate(body).scan == "1796559664-0a1b2c3d4e"
