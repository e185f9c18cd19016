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
