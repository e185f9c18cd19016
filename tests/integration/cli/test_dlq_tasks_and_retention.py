"""`bcsync dlq` with task dead letters (any task's message, not only delivery envelopes) and with entries of the
older TTL format: a real `bcsync` process, a real Redis, the message checked on the broker's queue."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu.exceptions
import pytest
import redis

from config.settings import get_settings
from state.dead_letters import Attempt, DeadLetters
from state.factory import reset_stores
from state.keys import RedisKeys

BCSYNC = str(Path(sys.executable).with_name("bcsync"))
PREFIX = "dlqtest"
EVENT = {"resource": "order", "key": "SO7", "kind": "status_transition", "changed_fields": ["ord_status"],
         "lane": "default", "record": {"order_no": "SO7", "ord_status": "Z"}, "fingerprint": "f1",
         "last_mod": "2026-01-02 03:04:05", "version": "2026-01-02T08:04:05Z#0"}
TRACEBACK = ('Traceback (most recent call last):\n  File "flows/orders.py", line 88, in handle\n'
             "    status = lifecycle[record['ord_status']]\nKeyError: 'Z'")


def bcsync(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BCSYNC_REDIS_URL": redis_url, "BCSYNC_KEY_PREFIX": PREFIX, "COLUMNS": "80",
           "TERM": "dumb", "NO_COLOR": "1"}
    return subprocess.run([BCSYNC, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def task_letter(redis_client: redis.Redis) -> str:
    attempt = Attempt(at=1_790_000_000.0, error="KeyError: 'Z'", traceback=TRACEBACK)
    entry = DeadLetters(redis_client, PREFIX).add_task(
        "bcsync.handle_change", "default", [EVENT], [attempt], "unexpected KeyError after 8 attempts")
    return entry.id


def test_list_and_show_make_a_task_dead_letter_readable(redis_url: str, task_letter: str) -> None:
    listed = bcsync("dlq", "list", redis_url=redis_url)
    assert listed.returncode == 0, listed.stderr
    for part in (task_letter, "order:SO7\n", "    handle_change (expires ", "KeyError: 'Z'"):
        assert part in listed.stdout, part
    assert all(len(line.rstrip()) <= 80 for line in listed.stdout.splitlines())

    shown = bcsync("dlq", "show", task_letter, redis_url=redis_url)
    assert shown.returncode == 0, shown.stderr
    for part in ("task bcsync.handle_change", "records: order:SO7", '"ord_status": "Z"', "expires ",
                 "Traceback (most recent call last):", "KeyError: 'Z'", "unexpected KeyError after 8 attempts"):
        assert part in shown.stdout, part
    whole = json.loads(bcsync("dlq", "show", task_letter, "--json", redis_url=redis_url).stdout)
    assert whole["args"] == [EVENT] and whole["attempts"][0]["traceback"] == TRACEBACK


def test_requeue_publishes_the_task_with_its_args_then_removes_it(
    redis_url: str, redis_client: redis.Redis, task_letter: str
) -> None:
    out = bcsync("dlq", "requeue", task_letter, redis_url=redis_url)
    assert out.returncode == 0, out.stderr
    assert "requeued 1 dead letter(s)" in out.stdout
    queued = redis_client.lrange(RedisKeys(PREFIX).queue("default"), 0, -1)
    assert len(queued) == 1
    message = json.loads(queued[0])
    assert message["headers"]["task"] == "bcsync.handle_change"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == [EVENT] and kwargs == {}
    assert DeadLetters(redis_client, PREFIX).get(task_letter) is None


@pytest.fixture
def fleet_stores(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's stores on the test's Redis and prefix (forgotten afterwards)."""
    monkeypatch.setenv("BCSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("BCSYNC_KEY_PREFIX", PREFIX)
    get_settings.cache_clear()
    reset_stores()
    yield
    get_settings.cache_clear()  # rebuilt lazily, once the environment is restored
    reset_stores()


def test_a_failed_publish_keeps_the_dead_letter(
    fleet_stores: None, redis_client: redis.Redis, task_letter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import dlq_cli  # noqa: PLC0415 - imports the Celery app: only in the test that needs it

    def broker_down(task: str, args: list[Any], queue: str) -> None:
        raise kombu.exceptions.OperationalError("broker unreachable")

    monkeypatch.setattr(dlq_cli, "publish", broker_down)
    entry = DeadLetters(redis_client, PREFIX).get(task_letter)
    assert entry is not None
    with pytest.raises(kombu.exceptions.OperationalError):
        dlq_cli.requeue_entry(entry)
    assert DeadLetters(redis_client, PREFIX).get(task_letter) is not None


def test_an_entry_of_the_older_format_is_still_listed_shown_and_requeued(
    redis_url: str, redis_client: redis.Redis
) -> None:
    now = time.time()
    old = {"id": "00aa11bb22cc", "task": "bcsync.deliver", "lane": "fast", "kind": "unsubscribe",
           "operations": [{"kind": "unsubscribe", "key": "unsubscribe:C9:email", "lane": "fast",
                           "record": "customer:C9",
                           "payload": {"channel": "email", "profile": {"email": "c9@example.com"}, "list_id": None}}],
           "attempts": [{"at": now, "status": 403, "endpoint": "profile-subscription-bulk-delete-jobs",
                         "error": "HTTP 403", "errors": [{"code": "permission_denied"}]}],
           "first_failure": now, "last_failure": now, "reason": "Klaviyo refused the request (403)"}
    redis_client.set(f"{PREFIX}:dlq-entry:{old['id']}", json.dumps(old), ex=30 * 86400)
    redis_client.zadd(f"{PREFIX}:dlq:fast", {old["id"]: now})

    listed = bcsync("dlq", "list", redis_url=redis_url)
    assert listed.returncode == 0, listed.stderr
    for part in ("00aa11bb22cc", "customer:C9", "fast/permission_denied 1"):
        assert part in listed.stdout, part
    shown = bcsync("dlq", "show", "00aa11bb22cc", redis_url=redis_url)
    assert shown.returncode == 0 and "unsubscribe unsubscribe:C9:email (customer:C9)" in shown.stdout

    assert bcsync("dlq", "requeue", "00aa11bb22cc", redis_url=redis_url).returncode == 0
    message = json.loads(redis_client.lrange(RedisKeys(PREFIX).queue("fast"), 0, -1)[0])
    assert message["headers"]["task"] == "bcsync.deliver"
    (envelope,), _, _ = json.loads(base64.b64decode(message["body"]))
    assert [op["key"] for op in envelope["operations"]] == ["unsubscribe:C9:email"]
    assert envelope["requeued_from"] == "00aa11bb22cc"
