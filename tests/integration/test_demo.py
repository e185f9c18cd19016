"""The README's first command: `bcsync demo` runs the whole fleet against both sandboxes and shows what flows.
A real subprocess (sandboxes, three lanes, beat, poller, Flower) against the private Redis; it stops by itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import redis

from sandbox.server import free_port
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.integration
ROOT = REPO_ROOT


def test_demo_shows_profiles_events_and_lanes_then_stops_cleanly(redis_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    env.update({"BCSYNC_REDIS_URL": redis_server.url, "BCSYNC_FLOWER_PORT": str(free_port()),
                "BCSYNC_CONSOLE_PORT": str(free_port()),
                "COLUMNS": "120", "PYTHONUNBUFFERED": "1"})
    done = subprocess.run([sys.executable, "-m", "workers.cli", "demo", "--minutes", "0.75"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "demo stopped" in out
    profiles = [int(n) for n in re.findall(r"profiles\s*│\s*(\d+)", out)]
    assert profiles and max(profiles) > 0, out[-3000:]
    assert re.search(r"events: Placed Order\s*│\s*[1-9]", out), out[-3000:]
    assert re.search(r"fast lane\s*│\s*[1-9]\d* delivered", out), out[-3000:]
    # the demo cleans up after itself: none of its keys are left in the Redis it used
    assert not list(redis.Redis.from_url(redis_server.url).scan_iter("bcsync-demo:*"))
