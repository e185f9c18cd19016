"""The hang fault: /api requests get no answer at all until the fault is lifted; /_sandbox keeps answering."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.unit.sandbox.bluecherry.conftest import KEY, BlueCherry


def test_hang_holds_api_requests_until_lifted(bc: BlueCherry) -> None:
    assert bc.control.post("/faults", json={"hang": 1}).json()["hang"] == 1
    with pytest.raises(httpx.ReadTimeout):
        bc.api.get("/customer", timeout=0.5)
    stats = bc.control.get("/stats").json()  # the control routes are not held
    assert stats["faults_injected"] == {"hang": 1} and stats["requests"] == {}

    answers: list[httpx.Response] = []
    held = threading.Thread(
        target=lambda: answers.append(
            httpx.get(f"{bc.server.url}/api/customer", headers={"Ocp-Apim-Subscription-Key": KEY}, timeout=30)
        )
    )
    held.start()
    deadline = time.monotonic() + 10
    while bc.control.get("/faults").json()["injected"].get("hang") != 2:  # the second request is being held
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    assert held.is_alive() and not answers  # still no answer
    bc.control.post("/faults", json={"hang": 0})
    held.join(timeout=10)
    assert [a.status_code for a in answers] == [200]
    assert len(answers[0].json()["data"]["header"]) == bc.sandbox.store.count("customer")
    assert bc.api.get("/customer").status_code == 200  # no longer held
    assert bc.control.get("/stats").json()["faults_injected"] == {"hang": 2}


def test_hang_holds_before_auth_and_releases_a_client_that_gave_up(bc: BlueCherry) -> None:
    bc.control.post("/faults", json={"hang": 1})
    with pytest.raises(httpx.ReadTimeout):  # even a request without a key gets no 401: nothing answers
        httpx.get(f"{bc.server.url}/api/customer", timeout=0.3)
    time.sleep(0.2)  # several hold steps: the server sees the client go
    bc.control.post("/faults", json={"hang": 0})
    assert bc.control.get("/stats").json()["statuses"] == {}  # the abandoned request was never answered
    assert bc.control.post("/faults", json={"hang": -1}).status_code == 400
