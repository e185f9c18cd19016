"""Rows of a bulk request: cut to size, and the request resent without the rows Klaviyo refused."""

from __future__ import annotations

import re
from typing import Any

from connectors.klaviyo.builders import PayloadError
from connectors.klaviyo.errors import KlaviyoError, KlaviyoErrorItem, PermanentError
from delivery.results import SendResult, ledger_entry
from sync.operations import Operation


def without_rejected_rows(
    rows: list[Operation], call: Any, result: SendResult
) -> tuple[list[Operation], Any] | None:
    """Send `rows`; when Klaviyo refuses the request because of some rows (400 with pointers), reject those
    rows, each with its own errors, and resend the rest. The client maps Klaviyo's pointers back to indexes
    of the payloads it was given (`payload_rows`; for events grouped per profile, every event of the named
    group - narrowed here to the one event a pointer names), and says which rows an earlier job of the same
    call already delivered (`delivered_rows`). A row our own models refuse (`PayloadError` with its row) is
    rejected the same way, before anything is sent. Returns the rows sent and the call's answer, or None
    when none were left."""
    while rows:
        try:
            return rows, call(rows)
        except PayloadError as exc:
            if exc.row is None or not 0 <= exc.row < len(rows):
                raise
            result.rejected.append((rows[exc.row], _refused_before_sending(exc)))
            rows = rows[: exc.row] + rows[exc.row + 1 :]
        except PermanentError as exc:
            at_fault = _rows_at_fault(exc)
            bad = {i: items for i, items in at_fault.items() if 0 <= i < len(rows)}
            if not bad:
                raise
            done = set(exc.delivered_rows) - set(bad)
            for i, items in sorted(bad.items()):
                result.rejected.append((rows[i], _row_error(exc, items)))
            for i in sorted(done):
                result.delivered.append(ledger_entry(rows[i], 202, exc.endpoint))
            rows = [op for i, op in enumerate(rows) if i not in bad and i not in done]
    return None



# `/data/attributes/events-bulk-create/data/<group>/attributes/events/data/<event>/...`: one event of a group
_EVENT_IN_GROUP = re.compile(r"^/data/attributes/events-bulk-create/data/(\d+)/attributes/events/data/(\d+)(?:/|$)")



def _rows_at_fault(exc: KlaviyoError) -> dict[int, list[KlaviyoErrorItem]]:
    """Payload index -> the errors that are its own. An error pointing into one event of a per-profile group
    names that event only (the group's n-th payload, groups keep input order); an error on the group's
    profile, or on a row of any other bulk body, names every payload of that row."""
    group_of: dict[int, int] = {}
    for index, items in exc.payload_rows.items():
        for item in items:
            found = _EVENT_IN_GROUP.match(item.pointer or "")
            if found:
                group_of[index] = int(found.group(1))
    members: dict[int, list[int]] = {}
    for index in sorted(group_of):
        members.setdefault(group_of[index], []).append(index)
    at_fault: dict[int, list[KlaviyoErrorItem]] = {}
    for index, items in exc.payload_rows.items():
        for item in items:
            found = _EVENT_IN_GROUP.match(item.pointer or "")
            if found is None:
                at_fault.setdefault(index, []).append(item)
                continue
            group, event = int(found.group(1)), int(found.group(2))
            if event < len(members.get(group, [])) and members[group][event] == index:
                at_fault.setdefault(index, []).append(item)
    return at_fault



def _row_error(exc: PermanentError, items: list[KlaviyoErrorItem]) -> PermanentError:
    """The request's error as one row's own: only the errors that point at that row."""
    return PermanentError(exc.message, status=exc.status, errors=items, endpoint=exc.endpoint)



def _refused_before_sending(exc: PayloadError) -> PermanentError:
    item = KlaviyoErrorItem(code="payload", title="Refused before sending", detail=str(exc))
    return PermanentError(f"refused before sending: {exc}", errors=[item], endpoint=exc.what)



def chunks(ops: list[Operation], size: int) -> list[list[Operation]]:
    return [ops[i : i + size] for i in range(0, len(ops), size)]

