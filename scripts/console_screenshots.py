"""Screenshots of every page of `bcsync console`, from the demo's data, into docs/images/:

    .venv/bin/python -m scripts.console_screenshots

Runs the demo's fleet (both sandboxes, three lanes, beat, poller, the console; workers.demo.DemoFleet) on a
private Redis, lets it sync a small tenant, plants what operators meet (Klaviyo refusing a customer's phone
number, a 409 duplicate_profile), runs `bcsync reconcile all` (its summary for Today), acknowledges one
exception and takes each page with Debian's chromium through Playwright (docs/operations.md, "The console").
Everything it started is stopped at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from config.celery import make_app
from config.settings import Settings
from config.task_names import DELIVER
from delivery.packing import group_for_delivery
from sandbox.redis_server import PrivateRedis
from state.dead_letters import DeadLetters
from state.reconcile_summary import write_last
from sync.operations import Operation
from workers.console.auth import hash_password
from workers.demo import DemoFleet
from workers.fleet import bcsync_argv

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
PASSWORD = "screenshot-password"
PROFILE_IMPORT = "POST /api/profile-import"
WIDTH, HEIGHT = 1280, 860


def _publish(env: dict[str, str], ops: list[Operation]) -> None:
    values: dict[str, Any] = {k[len("BCSYNC_"):].lower(): v for k, v in env.items() if k.startswith("BCSYNC_")}
    settings = Settings(**values)
    app = make_app(settings)
    with app.producer_or_acquire() as producer:
        for envelope in group_for_delivery(ops):
            app.send_task(DELIVER, args=[envelope], queue=envelope["lane"], producer=producer)


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"console_screenshots: timed out waiting for {what}")
        time.sleep(0.5)


def _fault(fleet: DemoFleet, rules: list[dict[str, Any]]) -> None:
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/faults", json={"reject_rules": rules}, timeout=10).raise_for_status()


def _plant(fleet: DemoFleet) -> None:
    """What operators meet: two profiles Klaviyo refuses (a phone it cannot read; an e-mail on another profile)."""
    dlq = DeadLetters(fleet.client, fleet.prefix)
    _fault(fleet, [{"endpoint": PROFILE_IMPORT, "status": 400, "code": "invalid",
                    "detail": "Invalid phone number format", "pointer": "/data/attributes/phone_number"}])
    _publish(fleet.env, [Operation(kind="profile_upsert", key="profile:C9000001", lane="fast",
                                   record="customer:C9000001",
                                   payload={"external_id": "C9000001", "email": "ann.lee@example.com",
                                            "phone_number": "+1555"})])
    _wait(lambda: len(dlq.list()) >= 1, 60, "the first dead letter")
    _fault(fleet, [{"endpoint": PROFILE_IMPORT, "status": 409, "code": "duplicate_profile",
                    "detail": "A profile already exists with one of these identifiers."}])
    _publish(fleet.env, [Operation(kind="profile_upsert", key="profile:C9000002", lane="fast",
                                   record="customer:C9000002",
                                   payload={"external_id": "C9000002", "email": "bo.chen@example.com"})])
    _wait(lambda: len(dlq.list()) >= 2, 60, "the second dead letter")
    _fault(fleet, [])


def _reconcile(fleet: DemoFleet) -> None:
    """`bcsync reconcile all` on the demo's tenant, its summary kept for Today (state.reconcile_summary)."""
    done = subprocess.run(bcsync_argv("reconcile", "all", "--json"), env=fleet.env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        print(f"reconcile failed (Today shows no reconciliation): {done.stderr.strip()[-300:]}", flush=True)
        return
    write_last(fleet.client, fleet.prefix, json.loads(done.stdout.strip().splitlines()[-1]), areas=["all"])


def _longest_trail(fleet: DemoFleet, kind: str) -> str:
    """The order (customer) with the longest trail, most deliveries: an order shipped or invoiced, not only
    placed; a customer with its profile, consent and aggregates."""
    counts: dict[str, int] = {}
    for key in fleet.client.scan_iter(f"{fleet.prefix}:ledger-index:{kind}:*"):
        number = str(key).split(f"ledger-index:{kind}:", 1)[1].split("/")[0]
        redis_type = fleet.client.type(key)
        size = {"set": fleet.client.scard, "zset": fleet.client.zcard, "list": fleet.client.llen,
                "hash": fleet.client.hlen}.get(str(redis_type), lambda _: 1)(key)
        counts[number] = counts.get(number, 0) + int(size)
    return max(sorted(counts), key=lambda n: counts[n])


def _shoot(fleet: DemoFleet) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_context(base_url=fleet.console_url, viewport={"width": WIDTH, "height": HEIGHT}).new_page()

        def shot(name: str, full: bool = True, height: int | None = None) -> None:
            path = OUT / f"console-{name}.png"
            clip = {"x": 0, "y": 0, "width": WIDTH, "height": height} if height else None
            page.screenshot(path=str(path), full_page=full, clip=clip)  # type: ignore[arg-type]
            taken.append(path)

        page.goto("/signin")
        shot("signin", full=False)
        page.fill("input[name=user]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{fleet.console_url}/")
        shot("today")
        page.goto("/exceptions?type=customer_mismatch")
        card = page.locator("article.exception").first
        card.locator("input[name=comment]").fill("merging the two profiles in Klaviyo today")
        card.locator("button[value=acknowledge]").click()
        page.goto("/exceptions?status=all")
        shot("exceptions", height=1600)
        page.goto("/dead-letters")
        shot("dead-letters")
        first = page.locator("#dead-letters tbody a").first
        first.click()
        shot("dead-letter")
        page.goto(f"/record?q={_longest_trail(fleet, 'order')}")
        shot("record-order")
        page.goto(f"/record?q={_longest_trail(fleet, 'customer')}")
        shot("record-customer")
        page.goto("/playbook")
        shot("playbook", full=False)
        page.goto("/activity")
        shot("activity")
        browser.close()
    return taken


def main() -> None:
    redis = PrivateRedis.start()
    users = f"admin:admin:{hash_password(PASSWORD)}"
    fleet = DemoFleet(redis.url, "bcsync-screenshots", users, customers=30, orders=30)
    try:
        fleet.start()
        print(f"fleet up: console {fleet.console_url}, logs in {fleet.log_dir}", flush=True)
        _wait(lambda: sum(1 for _ in fleet.client.scan_iter(f"{fleet.prefix}:ledger-index:order:*")) >= 5, 180,
              "orders delivered")
        time.sleep(5)  # the first sync settles
        _plant(fleet)
        _reconcile(fleet)
        for path in _shoot(fleet):
            print(path.relative_to(OUT.parents[1]))
    finally:
        fleet.stop()
        redis.stop()


if __name__ == "__main__":
    main()
