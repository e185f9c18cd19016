"""bench/budget.py's report on hand-built results: the markdown block and how `--write` puts it into a doc (the
fleet run itself: `python -m bench.budget`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.budget import BackfillJobs, BudgetResult, FamilyRow, markdown, write_block


def args(background: float = 0.0) -> argparse.Namespace:
    return argparse.Namespace(background_share=background, orders=2000, block=None)


def result(background: float = 0.0) -> BudgetResult:
    rows = [FamilyRow("bulk events", "events", 135_000.0, 135.0, 150, 0.5, 700),
            FamilyRow("single events", "events", 3_200.0, 3_200.0, 3_500, 0.0, 16_000)]
    return BudgetResult(rows, [0.1] * 98 + [0.9, 2.0], 5.0, background)


def test_the_block_carries_each_family_the_fast_lane_the_cpu_ratio_and_the_full_jobs() -> None:
    block = markdown(args(), result(), {"Klaviyo's real limits": (4.0, 3_100.0), "unlimited": (3.2, 9_000.0)},
                     BackfillJobs({1000: 19, 412: 1}, 19_412, 19_412))
    assert block.splitlines()[0] == "<!-- bench.budget -->" and block.splitlines()[-1] == "<!-- /bench.budget -->"
    assert "| bulk events | 135,000 events | 135.0 | 150 | 90.0% | 0.50 |" in block
    assert "p99 0.90 s" in block and "max 2.00 s" in block
    assert "1.25x the unlimited figure" in block
    assert "20 bulk event jobs, 19 of them with 1,000 events (95.0%)" in block


def test_write_replaces_its_own_block_and_leaves_the_rest_of_the_doc(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Perf\n\n<!-- bench.budget -->\nold\n<!-- /bench.budget -->\n\n## Next\n", encoding="utf-8")
    write_block(doc, markdown(args(), result(), {}, None))
    write_block(doc, markdown(args(0.3), result(0.3), {}, None))  # a block of its own, appended
    text = doc.read_text(encoding="utf-8")
    assert "old" not in text and text.count("<!-- bench.budget -->") == 1 and "## Next" in text
    assert text.index("## Next") < text.index("<!-- bench.budget background 0.3 -->")
    assert "background consumer 30% of every window" in text
