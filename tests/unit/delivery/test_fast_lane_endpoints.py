"""Which Klaviyo endpoints hold a fast reserve: derived from the senders' registry, not listed by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.klaviyo.endpoints import ENDPOINTS
from delivery import registry
from delivery.registry import SENDERS, fast_lane_endpoints


def test_only_bulk_endpoints_of_kinds_never_packed_on_fast_lose_the_reserve() -> None:
    assert set(ENDPOINTS) - fast_lane_endpoints() == {
        "event-bulk-create-jobs", "profile-bulk-import-jobs", "profile-bulk-import-jobs:get",
        "profile-bulk-import-jobs:errors",
    }
    # the single calls and every read a lane may make keep it
    assert {"events", "profile-import", "profiles:get", "subscribe", "catalog-bulk"} <= fast_lane_endpoints()


def test_a_kind_packed_on_the_fast_lane_brings_its_bulk_endpoints_back(monkeypatch: pytest.MonkeyPatch) -> None:
    senders = dict(SENDERS)
    senders["event"] = replace(SENDERS["event"], packed_on=frozenset({"fast", "batch"}))
    monkeypatch.setattr(registry, "SENDERS", senders)
    assert "event-bulk-create-jobs" in fast_lane_endpoints()
    assert "profile-bulk-import-jobs" not in fast_lane_endpoints()
