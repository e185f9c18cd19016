"""The console's browser (Debian's chromium through Playwright) for the Attribution page's test."""

from tests.integration.console.conftest import browser  # noqa: F401
