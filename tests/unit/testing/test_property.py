"""Random order, pick and memo arrangements (memos in any date order, odd and invalid values): the oracle
never crashes, a state rendered from its expectation diffs to zero, and so does that state shuffled."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testing.oracle import diff_state, expected_state
from tests.unit.testing.tenant import customer, dump, line, memo, order, pick, render

CODES = ["C1", "C2", "C3", "WEBGUEST", "C404"]
STATUSES = ["E", "O", "P", "H", "X", "C", "Z"]
DATES = ["", "2026-11-01 01:30:00", "2026-03-08 02:30:00", "2025-06-01 12:00:00", "2026-02-30 10:00:00"]
AMOUNTS = st.one_of(st.floats(-50, 500, allow_nan=False).map(lambda x: round(x, 2)), st.sampled_from(["", "n/a"]))

# (quantity, cancelled, price): a cancelled quantity above the ordered one makes the order invalid
lines_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 6), st.floats(0, 200, allow_nan=False).map(lambda x: round(x, 2))),
    min_size=0, max_size=4,
)


@st.composite
def tenants(draw: st.DrawFn) -> dict[str, Any]:
    customers = [
        customer("C1", "Ada@Example.com", draw(st.sampled_from(["6172531000", "call after 5", ""])),
                 email_optin=draw(st.sampled_from("YN")), sms_optin=draw(st.sampled_from("YN"))),
        customer("C2", draw(st.sampled_from(["bob@example.com", "bob at example", "ada@example.com"]))),
        customer("C3", delete=draw(st.sampled_from("YN")), status=draw(st.sampled_from("AIZ"))),
        customer("WEBGUEST"),
    ]
    orders, picks, memos = [], [], []
    for n in range(draw(st.integers(0, 6))):
        num = f"10{n}"
        lines = [line(i + 1, qty, price, cancel=cancel) for i, (qty, cancel, price) in enumerate(draw(lines_strategy))]
        orders.append(order(
            num, draw(st.sampled_from(CODES)), lines, status=draw(st.sampled_from(STATUSES)),
            confirm=draw(st.sampled_from(DATES)), ord_type=draw(st.sampled_from(["WEB", "RTL", "WHL"])),
            channel=draw(st.sampled_from(["WEB", "POS", "EDI"])),
            email=draw(st.sampled_from(["", "shopper@x.com", "ADA@example.com", "bad"])),
            tax=draw(AMOUNTS), web_ref=draw(st.sampled_from(["", f"SHOP#{n}"])),
        ))
        for p in range(draw(st.integers(0, 2))):
            picks.append(pick(f"P{n}{p}", num, [(draw(st.integers(0, 3)), 10.0)], status=draw(st.sampled_from("OSX")),
                              ship_date=draw(st.sampled_from(DATES))))
        for m in range(draw(st.integers(0, 3))):
            memos.append(memo(f"M{n}{m}", num, draw(AMOUNTS), draw(st.sampled_from(DATES))))
    draw(st.randoms()).shuffle(memos)
    return dump(customer=customers, order=orders, pick=picks, creditmemo=memos)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tenants(), st.integers(0, 2**32))
def test_random_arrangements_never_crash_and_an_identical_state_diffs_to_zero(tenant: dict[str, Any],
                                                                               seed: int) -> None:
    expected = expected_state(tenant)
    state = render(expected)
    assert not any(diff_state(expected, state).counts().values()), diff_state(expected, state).report()
    shuffler = random.Random(seed)
    for events in state["events"].values():
        shuffler.shuffle(events)
    assert not any(diff_state(expected, state).counts().values())
    empty = diff_state(expected, {})
    assert empty.counts()["events_missing"] == len(expected.events)  # every expected event is reported missing
    metrics = sorted(metric for metric, events in state["events"].items() if events)
    if metrics:  # any one event deleted is noticed
        events = state["events"][shuffler.choice(metrics)]
        events.pop(shuffler.randrange(len(events)))
        assert diff_state(expected, state).counts()["events_missing"] == 1
