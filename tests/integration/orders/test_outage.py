"""A Klaviyo outage with an order re-synced during it (issue 10): each event is attempted by one envelope at a
time, none is dead-lettered, and the half-open probe resumes the waiting work as soon as Klaviyo answers.

Real workers (default and batch lanes, concurrency 2), both sandboxes, real Redis. The order is placed and
confirmed, then Klaviyo answers 503 to everything for `OUTAGE_SECONDS` while the order is polled, amended,
partly shipped and amended again, and two of its change messages arrive twice: each a re-sync that resubmits
every event not yet in the ledger (an amendment with a newer version, which takes the key over; a redelivery
with the same one). Every 0.2 s one MULTI reads every envelope that exists - on the lanes, unacknowledged, in
the delayed schedule - with the in-flight registry and the ledger (tests/support/envelopes.py).

The backoff base is three outages, so every retry scheduled during the outage is due at least half an outage
after its end: delivery within `RESUME_WITHIN_SECONDS` of the end is the probe's doing, not the backoff's.

`python -m bench.outage --seconds 60` runs the same scenario for a full minute. To see this test fail without a
safeguard: `TEST_WITHOUT_SAFEGUARDS=registry pytest tests/integration/orders/test_outage.py` (or `=probe`;
tests/support/without_safeguards.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from state.orders import RedisOrderState
from sync.changes import ChangeEvent
from tests.integration.orders.conftest import MAPPING, OrderFleet, running_fleet
from tests.support.envelopes import SAMPLE_EVERY_SECONDS, EnvelopeWatch, carriers, senders
from tests.support.recording import recorded_requests
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 20.0
RESUME_WITHIN_SECONDS = 8.0
FLEET_LANES = {"fast": 2, "default": 2, "batch": 2}  # fast: the customer's profile
PLACED = "Placed Order"
Event = tuple[str, str]  # (metric, unique_id)


def outage_env(outage_seconds: float) -> dict[str, str]:
    """A backoff base of three outages: a retry scheduled at any moment of the outage (half the base at least)
    is due at least half an outage after its end."""
    base = 3 * outage_seconds
    return {"BCSYNC_BACKOFF_BASE_SECONDS": f"{base:g}", "BCSYNC_BACKOFF_MAX_SECONDS": f"{max(120.0, base):g}"}


@dataclass
class OutageReport:
    outage_seconds: float
    order: str
    expected: set[Event]  # every event the order's syncs computed
    stored: dict[Event, int]  # how many of each Klaviyo holds
    attempts: dict[Event, int]  # requests Klaviyo received for each (503s included)
    resumed_after: float  # seconds from the outage's end to the last of them delivered
    backoff_due_after: list[float]  # at the end: seconds until each waiting envelope that would send was due
    watch: EnvelopeWatch
    dead_letters: int
    duplicates_suppressed: int
    placed: dict[str, Any] | None

    def lines(self) -> list[str]:
        due = sorted(self.backoff_due_after)
        w = self.watch
        return [
            f"outage: {self.outage_seconds:g} s, order {self.order}, {w.samples} samples of every envelope",
            "attempts per event (requests Klaviyo received, 503s included): "
            + ", ".join(f"{m} {u}: {n}" for (m, u), n in sorted(self.attempts.items())),
            f"most envelopes carrying one key at one instant: {w.max_carriers} (that would send it: "
            f"{w.max_senders}); violations: {len(w.violations)}",
            f"most failed attempts on one envelope: {w.max_failures}",
            "waiting work due by its backoff (earliest / latest, after the end): "
            + (f"{due[0]:.1f} / {due[-1]:.1f} s" if due else "none"),
            f"last event delivered {self.resumed_after:.1f} s after the outage's end",
            f"events stored / expected: {sum(self.stored.values())} / {len(self.expected)}; "
            f"duplicates suppressed by Klaviyo: {self.duplicates_suppressed}; dead letters: {self.dead_letters}",
        ]


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _resyncs(f: OrderFleet, order: str) -> list[tuple[float, Callable[[], None]]]:
    """(fraction of the outage, action): each makes the order re-sync while nothing reaches Klaviyo."""
    last: list[ChangeEvent] = []

    def change(op: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            f.apply({**op, "ord_num": order})
            last[:] = f.capture()
            f.emit(last)
        return run

    def again() -> None:  # the same change messages again (a redelivery): the same versions resubmitted
        f.emit(last)

    return [
        (0.1, change({"op": "amend", "lines": [{"line_seq": 1, "qty": 3}]})),
        (0.25, again),
        (0.4, change({"op": "ship", "lines": [{"line_seq": 1, "qty": 2}], "invoice": False})),
        (0.55, change({"op": "amend", "lines": [{"line_seq": 2, "qty": 2}]})),
        (0.7, again),
    ]


def _event_requests(record: Path) -> list[tuple[Event, int | None, float]]:
    """(event, status, when) of every single-event request Klaviyo received (the sandbox's request record)."""
    out = []
    for r in recorded_requests(record):
        if r["method"] == "POST" and r["path"].rstrip("/") == "/api/events" and isinstance(r["body"], dict):
            attrs = r["body"]["data"]["attributes"]
            metric = attrs["metric"]["data"]["attributes"]["name"]
            out.append(((metric, str(attrs["unique_id"])), r["status"], datetime.fromisoformat(r["time"]).timestamp()))
    return out


def _stored(f: OrderFleet, order: str) -> dict[Event, int]:
    counts: dict[Event, int] = {}
    for metric, events in f.events(order).items():
        for event in events:
            counts[(metric, event["unique_id"])] = counts.get((metric, event["unique_id"]), 0) + 1
    return counts


def run_outage(f: OrderFleet, outage_seconds: float, record: Path, patience: float = 60.0) -> OutageReport:
    """Place an order, take Klaviyo down for `outage_seconds` while the order re-syncs, wait until its events
    are delivered (at most `patience` seconds after the end) and the fleet is idle; report what was seen."""
    customer = f.new_customer()
    f.poll_customers()  # the customer's profile exists: what is measured is the order's re-syncs
    order = f.new_order(customer=customer, confirm=True,
                        lines=[{"upc": f.upcs[0], "qty": 2, "price": 40}, {"upc": f.upcs[1], "qty": 1, "price": 25}])
    with EnvelopeWatch(f.redis, f.prefix) as watch:
        answer = httpx.post(f"{f.klaviyo_url}/_sandbox/faults", json={"outage_seconds": outage_seconds}, timeout=10)
        answer.raise_for_status()
        start = time.time()
        end = start + float(answer.json()["outage_remaining_seconds"])
        f.emit(f.capture())
        for fraction, resync in _resyncs(f, order):
            _sleep_until(start + fraction * outage_seconds)
            resync()
        _sleep_until(end)
        at_end = watch.sample()
        expected = {(e["metric"], str(e["unique_id"]))
                    for e in RedisOrderState(f.redis, f.prefix, f.mapping).computed(order).values()}
        while not expected <= set(_stored(f, order)) and time.time() < end + patience:
            time.sleep(0.1)
        f.wait_idle(timeout=max(10.0, end + patience - time.time()))
    if watch.error is not None:
        raise watch.error
    attempts: dict[Event, int] = {}
    delivered: dict[Event, float] = {}
    for event, status, when in _event_requests(record):
        attempts[event] = attempts.get(event, 0) + 1
        if status is not None and 200 <= status < 300:
            delivered.setdefault(event, when)
    sending = {env for key, envs in carriers(at_end).items() for env in senders(key, envs, at_end)}
    events = f.events(order)
    stats = httpx.get(f"{f.klaviyo_url}/_sandbox/stats", timeout=10).json()
    return OutageReport(
        outage_seconds=outage_seconds, order=order, expected=expected, stored=_stored(f, order),
        attempts={e: n for e, n in attempts.items() if e in expected},
        resumed_after=max((delivered.get(e, float("inf")) for e in expected), default=float("inf")) - end,
        backoff_due_after=[at_end.due[env] - end for env in sending if env in at_end.due],
        watch=watch, dead_letters=f.dead_letters(),
        duplicates_suppressed=int(stats["duplicates_suppressed"]),
        placed=events[PLACED][0] if events.get(PLACED) else None,
    )


@pytest.fixture
def outage_fleet(redis_server: PrivateRedis, tmp_path: Path) -> Iterator[tuple[OrderFleet, Path]]:
    record = tmp_path / "klaviyo-requests.jsonl"
    config = KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record)
    # TEST_WITHOUT_SAFEGUARDS=registry (or probe) in the environment: the workers run without it, and this fails
    include = ("tests.support.without_safeguards",) if os.environ.get("TEST_WITHOUT_SAFEGUARDS") else ()
    with running_fleet(redis_server, tmp_path, MAPPING, config, lanes=FLEET_LANES, include=include,
                       **outage_env(OUTAGE_SECONDS)) as fleet:
        yield fleet, record


def test_an_order_resynced_during_an_outage_is_attempted_by_one_envelope_and_resumes_when_klaviyo_answers(
    outage_fleet: tuple[OrderFleet, Path],
) -> None:
    f, record = outage_fleet
    report = run_outage(f, OUTAGE_SECONDS, record, patience=RESUME_WITHIN_SECONDS + 30)
    summary = "\n".join(report.lines())
    print(summary)  # pytest -s shows the numbers
    watch = report.watch

    assert watch.samples >= OUTAGE_SECONDS / SAMPLE_EVERY_SECONDS / 2, summary
    assert watch.violations == [], summary + "\n" + "\n".join(watch.violations[:10])
    assert watch.max_carriers >= 2, "the scenario must make a newer version take a key over\n" + summary
    # every event the order's syncs computed reached Klaviyo exactly once; nothing was dead-lettered
    assert report.expected and report.stored == dict.fromkeys(report.expected, 1), summary
    assert report.duplicates_suppressed == 0, summary
    assert report.dead_letters == 0 and watch.max_failures < f.settings.max_attempts, summary
    # the newest version of the Placed Order won: it carries both amendments
    assert report.placed is not None
    assert sorted(item["Quantity"] for item in report.placed["properties"]["Items"]) == [2, 3], summary
    # the backoff alone would have kept the waiting work past the bound; the probe resumed it within it
    assert report.backoff_due_after and min(report.backoff_due_after) > RESUME_WITHIN_SECONDS, summary
    assert report.resumed_after <= RESUME_WITHIN_SECONDS, summary
