"""`workers/csv_drops.py`: each drop once across restarts, marked only after its records are published."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from connectors.bluecherry.csv_drops import RedisDropTracker
from workers.csv_drops import process_drops

INVENTORY = "Style,Color,Label,Dimension,Size,UPC,Location,Total QOH,Total Pick,Avail QOH,Total Open\n" \
            "T100,BLK,,,M,000000000012,WH1,10,2,8,3\n"


def test_a_drop_is_published_once_and_only_marked_after_publishing(redis_client: redis.Redis,
                                                                   tmp_path: Path) -> None:
    (tmp_path / "inventory_20261120.csv").write_text(INVENTORY)
    (tmp_path / "garbage.csv").write_text("what,is,this\n1,2,3\n")
    problems: list[tuple] = []

    def broken(task: str, args: list) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        process_drops(tmp_path, RedisDropTracker(redis_client, "t:csvdrop:"), broken,
                      lambda *p: problems.append(p))
    published: list[tuple[str, list]] = []
    # a restart: a new tracker on the same Redis; the unpublished report is still pending
    handled = process_drops(tmp_path, RedisDropTracker(redis_client, "t:csvdrop:"),
                            lambda task, args: published.append((task, args)), lambda *p: problems.append(p))
    assert handled == 2  # the report, and the unreadable file (after the reports: it ranks last)
    ((task, (resource, records, observed)),) = published
    assert task == "bcsync.stock_records" and resource == "inventory" and len(records) == 1
    assert records[0]["qty_avail"] == 8 and observed.endswith("+00:00")
    assert [p[1] for p in problems] == ["csv:garbage.csv"]  # a file that is no report: an operator exception
    assert process_drops(tmp_path, RedisDropTracker(redis_client, "t:csvdrop:"),
                         lambda task, args: published.append((task, args)), lambda *p: None) == 0
