"""docs/architecture.md shows the package imports the code really has (regenerated, never typed)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT


def test_the_import_graph_in_the_architecture_doc_is_the_codes() -> None:
    result = subprocess.run([sys.executable, "-m", "scripts.gen_import_graph", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_failure_table_in_the_architecture_doc_covers_every_action_of_the_policy() -> None:
    from delivery.policy import POLICY  # noqa: PLC0415  the doc test reads the code it describes

    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## When a message is acknowledged", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    names = {cls.__name__ for classes, _ in POLICY for cls in classes if cls is not Exception}
    named = {name for name in names if any(name in row for row in rows)}
    # every class the engine's table names by itself is in the doc's table (the rest are "on the way" errors)
    assert {"PayloadError", "RateLimitedLocally", "EndpointParkedError", "ThrottledError", "TransientError",
            "DuplicateProfileError", "PermanentError"} <= named
    assert "anything else" in section and "MAX_ATTEMPTS" in section and "POISON_MESSAGE_LIMIT" in section
