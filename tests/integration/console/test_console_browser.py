"""The operations console in a real browser (Debian's chromium through Playwright) against a running fleet: both
sandboxes, three lanes, beat, the poller and `bcsync console` as processes (workers.demo.DemoFleet). A fault in
the Klaviyo sandbox (409 duplicate_profile) plants an exception and a dead letter; people act on them through
the pages as they would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from config.celery import make_app
from config.settings import Settings
from config.task_names import DELIVER
from delivery.packing import group_for_delivery
from state.console_audit import ConsoleAuditLog
from state.dead_letters import DeadLetters
from sync.operations import Operation
from tests.support.fleet import wait_for, wait_idle
from workers.console.auth import hash_password
from workers.demo import DemoFleet

pytestmark = pytest.mark.integration
PASSWORD = "console-test-password"
CODE = "CONSOLE1"
PROFILE_IMPORT = "POST /api/profile-import"


def _publish(env: dict[str, str], ops: list[Operation]) -> None:
    settings = Settings(**{k[len("BCSYNC_"):].lower(): v for k, v in env.items() if k.startswith("BCSYNC_")})
    app = make_app(settings)
    with app.producer_or_acquire() as producer:
        for envelope in group_for_delivery(ops):
            app.send_task(DELIVER, args=[envelope], queue=envelope["lane"], producer=producer)


@pytest.fixture(scope="module")
def fleet(redis_server: Any) -> Iterator[DemoFleet]:
    users = ",".join(f"{name}:{name}:{hash_password(PASSWORD)}" for name in ("viewer", "operator", "admin"))
    fleet = DemoFleet(redis_server.url, "consoletest", users, customers=8, orders=8).start()
    try:
        client = fleet.client
        wait_for(lambda: any(client.scan_iter(f"{fleet.prefix}:ledger-index:order:*")), 120, interval=0.5,
                 message="an order delivered")
        wait_idle(client, fleet.prefix, timeout=120)
        # the fault: Klaviyo answers every profile import 409 duplicate_profile (e-mail on another profile)
        httpx.post(f"{fleet.klaviyo_url}/_sandbox/faults", json={"reject_rules": [
            {"endpoint": PROFILE_IMPORT, "status": 409, "code": "duplicate_profile",
             "detail": "A profile already exists with one of these identifiers."}]}, timeout=10).raise_for_status()
        _publish(fleet.env, [Operation(kind="profile_upsert", key=f"profile:{CODE}", lane="fast",
                                       record=f"customer:{CODE}",
                                       payload={"external_id": CODE, "email": "console1@example.com"})])
        wait_for(lambda: DeadLetters(client, fleet.prefix).list(), 60, message="the dead letter")
        httpx.post(f"{fleet.klaviyo_url}/_sandbox/faults", json={"reject_rules": []}, timeout=10).raise_for_status()
        yield fleet
    finally:
        fleet.stop()


def _sign_in(browser: Any, fleet: DemoFleet, user: str) -> Any:
    page = browser.new_context(base_url=fleet.console_url).new_page()
    page.goto("/")
    assert "/signin" in page.url  # nothing shows without signing in
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{fleet.console_url}/")
    assert page.text_content("#who") == user
    return page


def _csrf(page: Any) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def test_operator_sees_the_planted_exception_and_acknowledges_it(browser: Any, fleet: DemoFleet) -> None:
    page = _sign_in(browser, fleet, "operator")
    assert "operations" in page.text_content("#owners")  # Today: the open exception under its owner
    page.goto("/exceptions?type=customer_mismatch")
    card = page.locator(f"article[data-id='customer_mismatch|customer:{CODE}']")
    assert "duplicate_profile" in card.text_content()
    assert "Merge the profiles in Klaviyo" in card.text_content()  # the action, from the playbook's registry
    card.locator("input[name=comment]").fill("merging in Klaviyo today")
    card.locator("button[value=acknowledge]").click()
    assert "acknowledged customer_mismatch" in page.text_content(".flash")
    record = fleet.client.get(f"{fleet.prefix}:exception:customer_mismatch|customer:{CODE}")
    assert record and '"status":"acknowledged"' in record and '"by":"operator"' in record
    assert "merging in Klaviyo today" in record
    entry = ConsoleAuditLog(fleet.client, fleet.prefix).recent(5)[0]
    assert (entry["user"], entry["action"], entry["detail"]) == ("operator", "acknowledge", "merging in Klaviyo today")


def test_a_viewer_is_refused_a_requeue(browser: Any, fleet: DemoFleet) -> None:
    page = _sign_in(browser, fleet, "viewer")
    (entry,) = DeadLetters(fleet.client, fleet.prefix).list()
    page.goto(f"/dead-letters/{entry.id}")
    assert page.locator("#requeue-one").count() == 0  # no button for a viewer
    refused = page.request.post("/dead-letters/requeue", form={"csrf": _csrf(page), "id": entry.id},
                                max_redirects=0)
    assert refused.status == 403 and "needs the operator role" in refused.text()
    assert DeadLetters(fleet.client, fleet.prefix).get(entry.id) is not None


def test_a_change_without_its_csrf_token_is_refused(browser: Any, fleet: DemoFleet) -> None:
    page = _sign_in(browser, fleet, "admin")
    ident = f"customer_mismatch|customer:{CODE}"
    for form in ({"id": ident, "action": "resolve"}, {"id": ident, "action": "resolve", "csrf": "forged"}):
        refused = page.request.post("/exceptions/act", form=form, max_redirects=0)
        assert refused.status == 403 and "CSRF" in refused.text()
    assert '"status":"acknowledged"' in str(fleet.client.get(f"{fleet.prefix}:exception:{ident}"))


def test_operator_requeues_the_dead_letter_and_klaviyo_gets_it(browser: Any, fleet: DemoFleet) -> None:
    page = _sign_in(browser, fleet, "operator")
    (entry,) = DeadLetters(fleet.client, fleet.prefix).list()
    page.goto("/dead-letters")
    assert entry.id in page.text_content("#dead-letters")
    page.click(f"a[href='/dead-letters/{entry.id}']")
    assert "duplicate_profile" in page.text_content("main")  # every attempt with Klaviyo's error
    assert f"customer:{CODE}" in page.text_content("main")
    page.click("#requeue-one")
    assert "requeued 1 dead letter" in page.text_content(".flash")

    def delivered() -> bool:
        state = httpx.get(f"{fleet.klaviyo_url}/_sandbox/state", timeout=10).json()
        return any(p.get("external_id") == CODE for p in state["profiles"].values())

    wait_for(delivered, 60, message="the requeued profile in the Klaviyo sandbox")
    assert DeadLetters(fleet.client, fleet.prefix).get(entry.id) is None


def test_search_an_order_and_read_its_trail(browser: Any, fleet: DemoFleet) -> None:
    page = _sign_in(browser, fleet, "viewer")
    key = next(fleet.client.scan_iter(f"{fleet.prefix}:ledger-index:order:*"))
    number = key.split("ledger-index:order:", 1)[1].split("/")[0]
    page.goto("/record")
    page.fill("input[name=q]", number)
    page.click("button[type=submit]")
    assert f"Order {number}" in page.text_content("h2")
    assert "accepted" in page.text_content("#events")  # what Klaviyo accepted, and when
    assert page.locator("#documents tbody tr").count() >= 1  # the Blue Cherry documents, with amounts




def test_only_an_admin_erases_a_customer_after_typing_it(browser: Any, fleet: DemoFleet) -> None:
    operator = _sign_in(browser, fleet, "operator")
    assert operator.goto(f"/erase?code={CODE}").status == 403  # erase is the admin's
    page = _sign_in(browser, fleet, "admin")
    page.goto(f"/record?q={CODE}")
    page.click("text=Erase this customer")
    assert f"Erasing customer {CODE}" in page.text_content("#plan")  # what it deletes, before anything is
    page.fill("input[name=confirm]", "erase someone-else")
    page.click("button.danger")
    assert "nothing erased" in page.text_content(".flash")
    page.fill("input[name=confirm]", f"erase {CODE}")
    page.click("button.danger")
    assert f"erased customer {CODE}" in page.text_content(".flash")

    def gone() -> bool:
        state = httpx.get(f"{fleet.klaviyo_url}/_sandbox/state", timeout=10).json()
        return not any(p.get("external_id") == CODE for p in state["profiles"].values())

    wait_for(gone, 60, message="the profile deleted in the Klaviyo sandbox")
    assert ConsoleAuditLog(fleet.client, fleet.prefix).recent(1)[0]["action"] == "erase"
