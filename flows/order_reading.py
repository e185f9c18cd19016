"""Reading an order's stored documents for a computation: parsed through the mapping (problems to the register),
the header's instant as the poller placed it, undated credit memos dated from the order facts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sync.changes import STAMP_FORMAT, is_change_version, version_stamp
from sync.misfits import record_misfits
from sync.orders.fallbacks import date_memos
from sync.orders.problems import RecordProblem
from sync.orders.records import OrderDocuments, parse_order_documents
from sync.orders.state import StoredDocuments

if TYPE_CHECKING:
    from flows.order_context import OrderContext


def parse_stored(number: str, stored: StoredDocuments, ctx: OrderContext, report: bool = True
                 ) -> OrderDocuments | None:
    """The order's parsed documents (None: its header was not read yet); problems go to the register (unless
    `report` is off: a read for an operator tool)."""
    if stored.order is None:
        return None  # its documents wait in state until the order header is read
    parsed = parse_order_documents(stored.order, ctx.mapping, stored.picks, stored.invoices,
                                   stored.credit_memos)
    if report:
        record_problems(ctx, parsed.problems, number)
    return _with_read_instant(parsed.documents, stored.order_version)


def record_problems(ctx: OrderContext, problems: Iterable[RecordProblem], number: str) -> None:
    """Each record's problem in the register, and once per value or field the mapping problem behind it (a status
    the lifecycle does not name, a date no format reads: `sync.misfits`)."""
    for problem in problems:
        ctx.exceptions.record(problem.type, problem.record_key, str(problem),
                              details={"field": problem.field, "order": number})
    record_misfits(ctx.exceptions, [problem.misfit for problem in problems if problem.misfit is not None])


def _with_read_instant(docs: OrderDocuments | None, version: str) -> OrderDocuments | None:
    """The header's last_mod as the instant the poller placed it (a repeated hour's wall time resolved by the
    read: docs/poller.md, "Versions"), so a cancellation at 01:10 EST is not timed before a confirmation at
    01:40 EDT. Documents stored without a change version (a backfill) keep the earlier instant."""
    if docs is None or not is_change_version(version):
        return docs
    instant = datetime.strptime(version_stamp(version), STAMP_FORMAT).replace(tzinfo=UTC)
    return docs.model_copy(update={"order": docs.order.model_copy(update={"last_mod": instant})})


def dated(docs: dict[str, OrderDocuments], ctx: OrderContext) -> dict[str, OrderDocuments]:
    """The orders with their undated credit memos (a tenant without a memo date) dated from ERP data: the memo's
    last_mod as first recorded in the order facts, else its last_mod now (`sync.orders.fallbacks`)."""
    recorded = ctx.facts.memo_dates(docs, ctx.mapping)
    if not recorded and not any(memo.date is None for d in docs.values() for memo in d.credit_memos):
        return docs
    return {number: date_memos(d, recorded.get(number, {})) for number, d in docs.items()}
