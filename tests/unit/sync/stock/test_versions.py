"""Stock versions: a record's (from the poller, a report, or a row stored before versions) and a figure's,
which strictly grows with every input that gets newer and sorts after the former format."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from sync.stock.rows import Versioned, decode, encode, merge_newest
from sync.stock.versions import (
    FigureVersion,
    is_stock_version,
    legacy_row_version,
    report_version,
    version_rank,
)

NY = "America/New_York"
FORMER = "2026-11-20T13:05:00~2026-11-20T18:05:03.120000Z"


def test_ranks_follow_the_order_of_change_versions_of_every_kind() -> None:
    ordered = [
        "",
        "0000-00-00T00:00:00Z#000001",  # an unreadable last_mod
        "0000-00-00T00:00:00Z#1793500000",  # a report with no last_mod column ...
        "0000-00-00T00:00:00Z#1793500001",  # ... and a later one
        "2026-11-01T05:50:00Z#000000",  # a report's row
        "2026-11-01T05:50:00Z#000001",  # the poller's read of the same second
        "2026-11-01T05:50:00Z#000002",
        "2026-11-01T06:20:00Z#000001",
        "s00000000000000000007#2026-11-01T05:00:00Z#000001",  # an ERP counter orders above any stamp
        "s00000000000000000008#2026-11-01T04:00:00Z#000001",
    ]
    assert sorted(ordered) == ordered
    ranks = [version_rank(v) for v in ordered]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert version_rank("backfill") == 0


def test_a_figure_version_strictly_grows_whenever_any_input_gets_newer_or_appears() -> None:
    rng = random.Random(15)
    inputs = {f"row{i}": f"2026-11-20T15:00:0{rng.randrange(10)}Z#00000{rng.randrange(1, 9)}" for i in range(4)}
    inputs["loc"] = "2026-11-20T09:00:00Z#000001"
    previous = FigureVersion.of(inputs.values()).encode()
    for _ in range(300):
        name = rng.choice([*inputs, "new"])
        held = inputs.get(name, "2026-11-20T14:00:00Z#000000")
        stamp, seq = held.split("#")
        if rng.random() < 0.5:  # another change in the same second, or a later second
            newer = f"{stamp}#{int(seq) + 1:06d}"
        else:
            newer = f"2026-11-20T{15 + rng.randrange(9)}:{rng.randrange(60):02d}:00Z#000001"
            if newer <= held:
                continue
        inputs[name if name != "new" else f"row{len(inputs)}"] = newer
        current = FigureVersion.of(inputs.values()).encode()
        assert current > previous, (previous, current)
        assert FigureVersion.parse(current) == FigureVersion.of(inputs.values())
        previous = current
    # the same stored data gives the same version, in any order
    assert FigureVersion.of(reversed(list(inputs.values()))).encode() == previous


def test_a_newer_row_below_the_newest_input_still_makes_a_newer_figure() -> None:
    before = FigureVersion.of(["2026-11-20T15:00:00Z#000001", "2026-11-20T16:00:00Z#000001"])
    after = FigureVersion.of(["2026-11-20T15:00:00Z#000002", "2026-11-20T16:00:00Z#000001"])
    assert before.newest == after.newest and after.encode() > before.encode()


def test_figure_versions_sort_after_the_former_format_and_are_recognised() -> None:
    oldest = FigureVersion.of(()).encode()
    assert oldest > "9999-12-31T23:59:59~9999-12-31T23:59:59.999999Z"
    assert is_stock_version(FORMER) and is_stock_version(oldest)
    assert not is_stock_version("garbage") and not is_stock_version("v2026+031")
    with pytest.raises(ValueError, match="not a stock version"):
        FigureVersion.parse("v2026-11-20T15:00:00Z#000001+0512")


def test_report_versions_place_a_repeated_hour_by_the_as_of_time() -> None:
    as_of = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, after the fall-back
    restock = report_version("2026-11-01 01:50:00", datetime(2026, 11, 1, 5, 55, tzinfo=UTC), NY)  # EDT
    sell_out = report_version("11/01/2026 01:20:00", as_of, NY)  # the second 01:20, EST
    assert restock == "2026-11-01T05:50:00Z#000000" and sell_out == "2026-11-01T06:20:00Z#000000"
    assert sell_out > restock
    assert report_version(None, as_of, NY) == f"0000-00-00T00:00:00Z#{int(as_of.timestamp()):010d}"
    assert report_version("", as_of, NY) < restock  # no last_mod: a dated change always wins
    with pytest.raises(ValueError, match="aware"):
        report_version(None, datetime(2026, 11, 1), NY)


def test_rows_stored_before_versions_are_read_with_a_version_any_new_read_beats() -> None:
    legacy = '{"raw": {"location": "WH1", "qty_oh": 4}, "last_mod": "2026-11-01T01:30:00"}'
    held = decode(legacy, NY)
    assert held == Versioned({"location": "WH1", "qty_oh": 4}, "2026-11-01T05:30:00Z#000000")  # the earlier 01:30
    assert legacy_row_version("", NY) == "" and legacy_row_version("nonsense", NY) == ""
    assert decode('{"location": "WH1", "sellable": "Y"}').version == ""  # a location stored before versions
    fresh = Versioned({"location": "WH1", "qty_oh": 5}, "2026-11-01T05:30:00Z#000001")
    assert decode(encode(fresh)) == fresh
    assert merge_newest({"WH1": held}, [("WH1", fresh)]) == {"WH1": fresh}
    older = Versioned({"location": "WH1", "qty_oh": 9}, "2026-11-01T05:00:00Z#000003")
    assert merge_newest({"WH1": fresh}, [("WH1", older), ("WH1", fresh)]) == {}
    assert merge_newest({}, [("WH2", older), ("WH2", fresh)]) == {"WH2": fresh}
