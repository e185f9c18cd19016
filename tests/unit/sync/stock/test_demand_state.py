"""Units confirmed per SKU (the dynamic high-demand rule's input) on the real Redis."""

from __future__ import annotations

import time

from state.stock import StockState
from sync.catalog.records import SkuKey


def test_a_reread_or_amended_line_counts_once_and_old_confirmations_leave_the_window(redis_client):
    state = StockState(redis_client, "t")
    sku = SkuKey("TEE", "BLK", "", "", "M")
    now = time.time()
    state.record_confirmed(sku, "SO1:1", 3, now, 24)
    state.record_confirmed(sku, "SO1:1", 3, now, 24)  # the same line read again
    state.record_confirmed(sku, "SO2:1", 2, now, 24)
    assert state.confirmed_units(sku, 24) == 5
    state.record_confirmed(sku, "SO1:1", 1, now, 24)  # amended from 3 to 1
    assert state.confirmed_units(sku, 24) == 3
    state.record_confirmed(sku, "SO3:1", 50, now - 30 * 3600, 24)  # confirmed long ago
    assert state.confirmed_units(sku, 24) == 3
