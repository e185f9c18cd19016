"""`bcsync dlq list` and `bcsync exceptions` with more than a screenful: the summary comes first, a page of rows
follows (`--limit`, `--offset`), the footer says how many there are and how to see more (never a silent cap),
no line is wrapped at 80 columns (the error or reason is cut with an ellipsis, `--verbose` shows it whole) and
record keys read without the ERP's space padding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from config.mapping import ExceptionOwners
from state.dead_letters import Attempt, DeadLetters
from state.exceptions import ExceptionRegister

BCSYNC = str(Path(sys.executable).with_name("bcsync"))
PREFIX = "pagingtest"
LONG_ERROR = ("Invalid phone number format: the number does not match any known numbering plan for the region "
              "given, and no country calling code was found in it either (/data/attributes/phone_number)")


def bcsync(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")} | {
        "BCSYNC_REDIS_URL": redis_url, "BCSYNC_KEY_PREFIX": PREFIX, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run([BCSYNC, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    too_wide = [line for line in done.stdout.splitlines() if len(line) > 80]
    assert not too_wide, too_wide  # nothing wrapped, nothing wider than the terminal
    return done


def _dead_letters(client: redis.Redis, count: int) -> None:
    dlq = DeadLetters(client, PREFIX)
    for n in range(count):
        lane, code = ("batch", "duplicate_profile") if n % 3 == 1 else ("fast", "invalid")
        error = {"status": 400, "code": code, "detail": LONG_ERROR if n == 0 else f"refused #{n}"}
        dlq.add("bcsync.deliver", lane, "profile_upsert",
                [{"kind": "profile_upsert", "key": f"profile:C{n:07d}:full", "record": f"customer:C{n:07d}   ",
                  "payload": {}}],
                [Attempt(at=1_790_000_000.0 + n, status=400, endpoint="profile-import", error="HTTP 400",
                         errors=[error])], "Klaviyo refused the request (400)")


def test_dlq_list_summary_first_then_a_page_and_a_footer(redis_client: redis.Redis, redis_url: str) -> None:
    _dead_letters(redis_client, 120)
    out = bcsync("dlq", "list", redis_url=redis_url).stdout.splitlines()
    assert out[0] == "Dead letters: 120 (fast 80, batch 40)"
    assert out[1] == "by lane/code: fast/invalid 80, batch/duplicate_profile 40"
    rows = [line for line in out if line.startswith(tuple("0123456789abcdef")) and "customer:" in line]
    assert len(rows) == 50
    assert "showing 1-50 of 120 dead letters; --offset 50 for more" in out
    last = bcsync("dlq", "list", "--limit", "30", "--offset", "100", redis_url=redis_url).stdout
    assert "showing 101-120 of 120 dead letters" in last and "for more" not in last
    assert "customer:C0000119" in last and "customer:C0000099" not in last  # oldest first, across lanes
    beyond = bcsync("dlq", "list", "--offset", "500", redis_url=redis_url).stdout
    assert "nothing at --offset 500: there are 120 dead letters" in beyond


def test_dlq_list_cuts_the_error_to_one_line_and_verbose_shows_it_whole(redis_client: redis.Redis,
                                                                       redis_url: str) -> None:
    _dead_letters(redis_client, 1)
    out = bcsync("dlq", "list", redis_url=redis_url).stdout
    (error_line,) = [line for line in out.splitlines() if "Invalid phone number format" in line]
    assert error_line.endswith("…") and "phone_number)" not in out
    assert "customer:C0000000\n" in out  # the key without its padding
    assert "    profile_upsert (expires " in out  # what failed and its retention, above Klaviyo's error
    verbose = bcsync("dlq", "list", "--verbose", redis_url=redis_url).stdout
    assert " ".join(verbose.split()).count(LONG_ERROR) == 1


def test_exceptions_are_never_capped_silently(redis_client: redis.Redis, redis_url: str) -> None:
    register = ExceptionRegister(redis_client, PREFIX, ExceptionOwners())
    pipe_count = 1_100  # more than the register's default list of 1,000
    for n in range(pipe_count):
        kind = "unknown_status" if n % 4 else "consent_conflict"
        register.record(kind, f"order:{n:06d}  " if kind == "unknown_status" else f"customer:C{n:07d}",
                        LONG_ERROR if n == 0 else f"reason {n}")
    out = bcsync("exceptions", redis_url=redis_url).stdout.splitlines()
    assert out[:3] == ["Exceptions (open): 1,100", "  operations 825: unknown_status 825",
                       "  ecommerce 275: consent_conflict 275"]
    assert "showing 1-50 of 1,100 exceptions; --offset 50 for more" in out
    tail = bcsync("exceptions", "--offset", "1050", "--limit", "100", redis_url=redis_url).stdout
    assert "showing 1,051-1,100 of 1,100 exceptions" in tail
    assert "order:000001\n" in tail or "order:000001 " in tail  # the oldest, beyond the old cap of 1,000
    assert "000001  " not in tail  # without the padding it was recorded with
    first = bcsync("exceptions", "--type", "consent_conflict", "--offset", "274", redis_url=redis_url).stdout
    (reason,) = [line for line in first.splitlines() if "Invalid phone number format" in line]
    assert reason.endswith("…")
    whole = bcsync("exceptions", "--type", "consent_conflict", "--offset", "274", "-v", redis_url=redis_url).stdout
    assert LONG_ERROR in " ".join(whole.split())


def test_a_padded_and_an_unpadded_code_are_one_exception(redis_client: redis.Redis) -> None:
    register = ExceptionRegister(redis_client, PREFIX, ExceptionOwners())
    register.record("invalid_record", "customer:C0000042    ", "no email")
    register.record("invalid_record", "customer:C0000042", "no email")
    (only,) = register.list(status=None)
    assert (only.record_key, only.count) == ("customer:C0000042", 2)
    assert register.resolve("invalid_record", "customer:C0000042  ")
