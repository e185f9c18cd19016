#!/usr/bin/env bash
# Sets up and runs the demo: both sandboxes, a private Redis if none answers, the three lanes, beat,
# the poller, Flower, and a live view of what flows. Ctrl-C stops everything.
# The demo needs the sandbox extra (bcsync[sandbox]): setup.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/bcsync demo "$@"
