#!/usr/bin/env bash
# The whole test suite: lint, types, then every test (unit and integration: real Redis, real workers,
# both sandboxes on loopback). Each test session starts its own private redis-server on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy config connectors sync state delivery flows tasks workers sandbox testing
.venv/bin/lint-imports --no-cache
# Two test processes, whole files to each (a module's fleet fixture stays in one process); each process has its
# own private redis-server and free ports. BCSYNC_TEST_PROCESSES=0 runs in this process alone.
.venv/bin/pytest -n "${BCSYNC_TEST_PROCESSES:-2}" --dist loadfile "$@"
