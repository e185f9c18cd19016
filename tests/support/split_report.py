"""A CSV inventory report whose SKUs' warehouse rows fall into different chunks (workers/csv_drops.CHUNK rows
per task), as Blue Cherry writes it - every WH1 row, then every WH2 row - and each variant's truth, computed
here from the rows written, apart from the fleet's code (tests/integration/stock/test_complete_csv.py,
test_redelivered_chunks.py)."""

from __future__ import annotations

import random
from pathlib import Path

from workers.csv_drops import CHUNK

HEADER = "Style,Color,Label,Dimension,Size,UPC,Location,Total QOH,Total Pick,Avail QOH,Total Open\n"
# 1,500 rows: chunks [WH1 0-499], [WH1 500-749, WH2 0-249], [WH2 250-749]
SKUS = 750


def write_split_report(folder: Path, name: str = "inventory_20261120.csv", skus: int = SKUS,
                       chunk: int = CHUNK) -> dict[str, int]:
    """Write the report into `folder`; returns each variant's available-to-sell figure (external id -> units):
    most SKUs owe in WH2 more than WH1 holds (0 to sell; WH1 alone would fire a back-in-stock alert), some have
    stock in both. A smaller report (`skus`) splits the same way with smaller chunks (`chunk`)."""
    rng = random.Random(5)
    on_hand: dict[tuple[int, str], int] = {}
    for n in range(skus):
        on_hand[(n, "WH1")] = rng.randint(1, 20)
        on_hand[(n, "WH2")] = rng.randint(0, 9) if rng.random() < 0.15 else -on_hand[(n, "WH1")] - rng.randint(0, 5)
    lines = [f"C{n:03d},BLK,,,M,,{wh},{qty},0,{qty},0\n" for wh in ("WH1", "WH2") for n in range(skus)
             for qty in [on_hand[(n, wh)]]]
    assert len(lines) >= 3 * chunk, "the rows of most SKUs must be chunks apart"
    (folder / name).write_text(HEADER + "".join(lines))
    return {f"C{n:03d}-BLK---M": max(0, on_hand[(n, "WH1")] + on_hand[(n, "WH2")]) for n in range(skus)}
