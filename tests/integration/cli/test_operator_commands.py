"""The operator commands as an operator runs them: a real `bcsync` process, a real Redis, an 80-column
terminal; readable tables, one clear line for every mistake, JSON for scripts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from config.mapping import ExceptionOwners
from state.beat import BeatHeartbeat
from state.dead_letters import Attempt, DeadLetters
from state.exceptions import ExceptionRegister

BCSYNC = str(Path(sys.executable).with_name("bcsync"))
PREFIX = "clitest"
POINTER = "/data/attributes/phone_number"


def bcsync(*args: str, redis_url: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BCSYNC_REDIS_URL": redis_url, "BCSYNC_KEY_PREFIX": PREFIX, "COLUMNS": str(columns),
           "TERM": "dumb", "NO_COLOR": "1"}
    return subprocess.run([BCSYNC, *args], env=env, capture_output=True, text=True, timeout=60)


def assert_fits(out: str, columns: int) -> None:
    too_wide = [line for line in out.splitlines() if len(line.rstrip()) > columns]
    assert not too_wide, too_wide


@pytest.fixture
def dead_letter(redis_client: redis.Redis) -> str:
    error = {"status": 400, "code": "invalid", "title": "Invalid input.", "detail": "Invalid phone number format",
             "pointer": POINTER}
    entry = DeadLetters(redis_client, PREFIX).add(
        "bcsync.deliver", "fast", "profile_upsert",
        [{"kind": "profile_upsert", "key": "profile:C0000042:full", "record": "customer:C0000042", "payload": {}}],
        [Attempt(at=1_790_000_000.0, status=400, endpoint="profile-import", error="HTTP 400", errors=[error])],
        "Klaviyo refused the request (400)",
    )
    return entry.id


def test_dlq_list_at_80_columns_shows_whole_ids_and_klaviyos_error(redis_url: str, dead_letter: str) -> None:
    out = bcsync("dlq", "list", redis_url=redis_url)
    assert out.returncode == 0, out.stderr
    assert_fits(out.stdout, 80)
    assert dead_letter in out.stdout  # the id is what the next command needs: never cut
    assert "customer:C0000042" in out.stdout
    assert "Invalid phone number format" in out.stdout
    assert "fast/invalid 1" in out.stdout


def test_dlq_list_json_is_machine_readable(redis_url: str, dead_letter: str) -> None:
    out = bcsync("dlq", "list", "--json", redis_url=redis_url)
    entries = json.loads(out.stdout)
    assert [(e["id"], e["code"]) for e in entries] == [(dead_letter, "invalid")]


def test_mistyped_lane_owner_status_or_id_is_refused(redis_url: str, dead_letter: str) -> None:
    for args in (["dlq", "list", "--lane", "fats"], ["dlq", "requeue", "--lane", "fats", "--all"],
                 ["exceptions", "--owner", "finace"], ["exceptions", "--status", "closed"],
                 ["dlq", "show", "nope"], ["dlq", "purge", "nope", "--yes"]):
        out = bcsync(*args, redis_url=redis_url)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
    assert "not one of fast, default, batch" in bcsync("dlq", "list", "--lane", "x", redis_url=redis_url).stderr
    assert "no dead letter 'nope'" in bcsync("dlq", "purge", "nope", redis_url=redis_url).stderr


def test_exceptions_at_80_columns_keep_record_and_reason_readable(redis_client: redis.Redis, redis_url: str) -> None:
    register = ExceptionRegister(redis_client, PREFIX, ExceptionOwners())
    register.record("unknown_status", "order:100466",
                    "order:100466.ord_status: unknown order status code 'Z' (not in mapping.lifecycle)")
    register.record("consent_conflict", "customer:C0000007", "Klaviyo holds a newer unsubscribe")
    out = bcsync("exceptions", redis_url=redis_url)
    assert out.returncode == 0, out.stderr
    assert_fits(out.stdout, 80)
    for whole in ("order:100466", "unknown_status", "consent_conflict", "operations", "ecommerce",
                  "ord_status: unknown"):
        assert whole in out.stdout, whole
    assert "order:100466.ord_status" not in out.stdout  # the key is on the line above, not repeated
    only = json.loads(bcsync("exceptions", "--owner", "ecommerce", "--json", redis_url=redis_url).stdout)
    assert [r["record_key"] for r in only] == ["customer:C0000007"]
    assert "no open exceptions for finance" in bcsync("exceptions", "--owner", "finance", redis_url=redis_url).stdout


def test_status_text_and_json(redis_url: str, dead_letter: str) -> None:
    out = bcsync("status", redis_url=redis_url)
    assert out.returncode == 0, out.stderr
    assert_fits(out.stdout, 80)
    assert "None" not in out.stdout and "{" not in out.stdout  # no Python reprs for operators
    assert "beat's last tick: never" in out.stdout
    data = json.loads(bcsync("status", "--json", redis_url=redis_url).stdout)
    assert data["dead_letters"]["fast"] == 1
    assert data["beat_last_tick"] is None and data["beat_last_tick_age_seconds"] is None


def test_status_shows_beats_last_tick(redis_url: str, redis_client: redis.Redis) -> None:
    ticked = time.time() - 42
    BeatHeartbeat(redis_client, PREFIX).tick(ticked)
    data = json.loads(bcsync("status", "--json", redis_url=redis_url).stdout)
    assert data["beat_last_tick"] == ticked and 42 <= data["beat_last_tick_age_seconds"] < 60
    out = bcsync("status", redis_url=redis_url).stdout
    assert "beat's last tick: 4" in out and " s ago (" in out


def test_unreachable_redis_is_one_clear_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://:hunter2@127.0.0.1:{port}/0"  # nothing listens there once the socket is closed
    for args in (["status"], ["dlq", "list"], ["exceptions"], ["audit", "order", "1"]):
        out = bcsync(*args, redis_url=url)
        assert out.returncode == 1, args
        assert out.stderr.count("\n") == 1 and "not reachable" in out.stderr, out.stderr
        assert "hunter2" not in out.stderr
