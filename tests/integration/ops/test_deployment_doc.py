"""docs/deployment.md states the numbers operators act on; they must match the code."""

from __future__ import annotations

import re

from config.settings import Settings
from tests.support.paths import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")


def test_retention_table_matches_the_settings_defaults() -> None:
    rows = {name: int(days) for days, name in re.findall(r"\| (\d+) days[^|]*\| `BCSYNC_([A-Z_]+)` \|", DOC)}
    assert set(rows) == {"LEDGER_TTL_DAYS", "DEAD_LETTER_TTL_DAYS", "EXCEPTION_TTL_DAYS",
                         "FINGERPRINT_TTL_DAYS", "ORDER_DOCUMENT_GRACE_DAYS"}
    assert rows == {name: Settings.model_fields[name.lower()].default for name in rows}


def test_the_doc_covers_what_operators_need() -> None:
    headings = ("## Docker Compose", "## Procfile", "## systemd", "## Redis settings",
                "## What must stay single", "## Growing past one machine", "## Flower", "## Sentry",
                "## Redis memory")
    for heading in headings:
        assert heading in DOC
    assert "http://localhost:5555" in DOC
    assert "noeviction" in DOC and "appendonly" in DOC
    assert "python -m bench.redis_memory --records" in DOC
    assert re.search(r"\| \*\*1M customers \+ 1M orders \+ 1M SKUs\*\* \| \| \| \*\*[\d,]+\*\*", DOC)
