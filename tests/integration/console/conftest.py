"""The console's browser: Debian's chromium driven by Playwright for Python (never a browser build of
Playwright's own). Without it the browser tests are skipped with a message naming the package; under CI=true a
missing browser fails them instead (scripts/setup.sh installs chromium when running as root, as CI does)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


def _missing() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return "no chromium browser: install Debian's package 'chromium' (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "Playwright for Python is missing: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot be skipped under CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as pw:
        # root (CI, containers) needs --no-sandbox; the pages are our own on loopback
        launched = pw.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()
