"""Console pages in-process (starlette's TestClient over real Redis, no browser): the last reconciliation on
Today, and purge's typed confirmation. The browser tests (test_console_browser.py) cover the rest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient

import config.settings
from config.settings import get_settings
from state.console_audit import ConsoleAuditLog
from state.dead_letters import Attempt, DeadLetters
from state.factory import reset_stores
from state.reconcile_summary import write_last
from workers.console.app import build_app
from workers.console.auth import hash_password, parse_users

PREFIX = "consolepages"
PASSWORD = "pages-test-password"


@pytest.fixture
def web(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("BCSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("BCSYNC_KEY_PREFIX", PREFIX)
    config.settings.reload_settings()
    reset_stores()
    users = parse_users(f"ann:admin:{hash_password(PASSWORD)}", "test")
    with TestClient(build_app(get_settings(), users), follow_redirects=False) as client:
        token = client.get("/signin").text.split('<meta name="csrf" content="')[1].split('"')[0]
        assert client.post("/signin", data={"csrf": token, "user": "ann", "password": PASSWORD}).status_code == 303
        yield client
    monkeypatch.undo()
    config.settings.reload_settings()
    reset_stores()


def _csrf(web: TestClient) -> str:
    return web.get("/").text.split('<meta name="csrf" content="')[1].split('"')[0]


def test_today_shows_the_last_reconciliation_or_says_there_was_none(web: TestClient,
                                                                  redis_client: redis.Redis) -> None:
    assert "No reconciliation yet." in web.get("/").text
    write_last(redis_client, PREFIX, {
        "compared": {"customers": 20, "orders": 31}, "repaired": 1, "left_for_people": 1,
        "differences": [{"type": "recon_profile_field", "owner": "operations", "record_key": "customer:C1"},
                        {"type": "recon_consent_klaviyo_side", "owner": "ecommerce", "record_key": "customer:C2"}],
    }, areas=["customers", "orders"], now=1_790_000_000.0)
    today = web.get("/").text
    assert "No reconciliation yet." not in today
    assert "customers 20, orders 31" in today and "2 difference(s), 1 repaired, 1 left for people" in today
    assert "recon_consent_klaviyo_side" in today and "Finished 2026-09-21" in today


def test_purge_deletes_only_after_the_typed_confirmation(web: TestClient, redis_client: redis.Redis) -> None:
    dlq = DeadLetters(redis_client, PREFIX)
    entry = dlq.add("bcsync.deliver", "fast", "profile_upsert",
                    [{"kind": "profile_upsert", "key": "profile:C1", "record": "customer:C1", "payload": {}}],
                    [Attempt(at=1_790_000_000.0, status=400, error="HTTP 400")], "Klaviyo refused the request (400)")
    wrong = web.post("/dead-letters/purge", data={"csrf": _csrf(web), "id": entry.id, "confirm": "purge"})
    assert wrong.status_code == 303 and dlq.get(entry.id) is not None
    assert "type &#39;purge 1&#39; to confirm" in web.get("/dead-letters").text
    done = web.post("/dead-letters/purge", data={"csrf": _csrf(web), "id": entry.id, "confirm": "purge 1"})
    assert done.status_code == 303 and dlq.get(entry.id) is None
    last = ConsoleAuditLog(redis_client, PREFIX).recent(1)[0]
    assert (last["user"], last["action"], last["target"]) == ("ann", "purge", entry.id)
    assert "customer:C1" in last["detail"]
