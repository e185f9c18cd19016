"""A backfill's dry run is a summary, not a dump: operations counted per kind and lane with a few samples each,
problems per type with examples, every operation as JSON only with --verbose; readable at 80 columns."""

from __future__ import annotations

import io
import json

from rich.console import Console

from sync.operations import Operation
from workers.dry_run import SAMPLES, DryRun


def _ops() -> list[Operation]:
    profiles = [Operation(kind="profile_upsert", key=f"profile:C{i}:full", lane="batch", record=f"customer:C{i}",
                          payload={"external_id": f"C{i}", "email": f"c{i}@example.com"}) for i in range(250)]
    subscribes = [Operation(kind="subscribe", key=f"consent:email:C{i}", lane="batch", record=f"customer:C{i}",
                            payload={"channel": "email", "list_id": "L1"}, profile_of=f"C{i}") for i in range(40)]
    events = [Operation(kind="event", key=f"event:Placed Order:SO{i}", lane="batch", record=f"order:SO{i}",
                        payload={"metric": "Placed Order", "unique_id": f"SO{i}", "time": "2026-03-02T14:30:00+00:00",
                                 "value": 1234.5}) for i in range(7)]
    return profiles + subscribes + events


def _render(would: DryRun) -> str:
    buffer = io.StringIO()
    would.print(Console(file=buffer, width=80, force_terminal=False, color_system=None))
    return buffer.getvalue()


def test_counts_per_kind_and_lane_with_a_few_samples() -> None:
    printed: list[str] = []
    would = DryRun(echo=printed.append)
    would.operations(_ops())
    for i in range(12):
        would.problem("invalid_record", f"customer:X{i}", "no e-mail")
    text = _render(would)
    assert printed == []  # no JSON without --verbose
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "profile_upsert" in text and "250" in text and "subscribe" in text and "40" in text
    assert "customer:C0: profile C0" in text and "customer:C2: profile C2" in text
    assert f"customer:C{SAMPLES}:" not in text  # only the first few of a kind
    assert "order:SO0: Placed Order 2026-03-02, 1,234.50" in text
    assert "would record 12 invalid_record, e.g. customer:X0: no e-mail; customer:X1" in text
    assert "customer:X5" not in text
    assert "--verbose" in text
    assert text.count("\n") < 30  # one screen, whatever the volume


def test_verbose_prints_every_operation_as_json() -> None:
    printed: list[str] = []
    would = DryRun(verbose=True, echo=printed.append)
    would.operations(_ops())
    assert len(printed) == len(_ops())
    assert {Operation.model_validate(json.loads(line)).kind for line in printed} == {
        "profile_upsert", "subscribe", "event"}


def test_nothing_to_send_says_so() -> None:
    assert "nothing would be sent" in _render(DryRun())
