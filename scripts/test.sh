#!/usr/bin/env bash
# The whole test suite: lint, types, then every test (unit and integration: real Redis, real workers,
# both sandboxes on loopback). Each test session starts its own private redis-server on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy config connectors sync state delivery flows tasks workers sandbox testing
.venv/bin/lint-imports --no-cache
.venv/bin/pytest "$@"
