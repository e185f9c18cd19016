"""`bcsync erase CUSTOMER`: a data-privacy erasure on an operator's request.

The same as the ERP's delete flag (tasks.customers): Klaviyo's data-privacy deletion for the profile
(operation `profile_deletion`, fast lane, through `delivery.publish.submit`), then the fleet's own state for the
customer is purged (fingerprint, daily-batch entry, delivery-ledger trail, exceptions) and a tombstone keeps
the poller from re-creating the profile from the ERP state that was erased. A later change of the customer
in Blue Cherry is synced again (the ERP is the truth): to keep a customer out, flag it there.

The profile is named by the ERP's email (else phone); a customer Blue Cherry no longer has is found in Klaviyo
by its external_id (the customer code). Register with ``app.command("erase")(erase.erase)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from config.settings import get_settings
from connectors.bluecherry.client import BlueCherryClient
from connectors.bluecherry.errors import BlueCherryError
from flows.customers import CustomerContext, default_context, forget_customer, resolve_deletions
from state.erasure import PurgeReport
from sync.customers.erasure import version_stamp
from sync.customers.planner import deletion_operation
from sync.fields import read_text
from sync.localtime import local_to_utc
from sync.operations import Operation

log = logging.getLogger("bcsync.erase")
console = Console()
STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class ErasureResult:
    code: str
    erp_record: bool
    deletions: list[Operation] = field(default_factory=list)
    purged: PurgeReport = field(default_factory=PurgeReport)


def find_customer(client: BlueCherryClient, code: str) -> dict[str, Any] | None:
    """The ERP record of customer `code`, or None when Blue Cherry has none."""
    mapping = client.mapping
    quoted = code.replace("'", "''")
    pages = client.iter_pages(mapping.resources.customer, None,
                              extra_filter=f"{mapping.fields.customer.code} eq '{quoted}'")
    for page in pages:
        for record in page:
            if read_text(record, mapping.fields.customer, "code") == code:
                return record
    return None


def erase_customer(code: str, ctx: CustomerContext, record: dict[str, Any] | None,
                   now: datetime | None = None) -> ErasureResult:
    """Request the deletion, purge the fleet's state, leave the tombstone; `record` = the ERP record."""
    mapping = ctx.mapping
    f = mapping.fields.customer
    moment = (now or datetime.now(UTC)).strftime(STAMP)
    result = ErasureResult(code, record is not None)
    email = record.get(f.email) if record else None
    phone = record.get(f.phone) if record else None
    op = deletion_operation(code, email, phone, mapping, f"{moment}#000000")
    result.deletions = resolve_deletions([op], ctx)
    if result.deletions:
        ctx.submit(result.deletions)
    record_key = str(record.get(mapping.resources.customer.key)) if record else None
    result.purged = forget_customer(ctx, code, record_key)
    # Changes up to the erased ERP state are dropped; a later ERP change is synced again.
    stamp = moment
    if record is not None:
        try:
            stamp = local_to_utc(str(record.get(mapping.resources.customer.last_mod)),
                                 ZoneInfo(mapping.tenant.timezone), mapping.date_formats("customer")).strftime(STAMP)
        except ValueError:
            pass
    ctx.tombstones.mark(code, version_stamp(stamp))
    return result


def erase(
    customer: Annotated[str, typer.Argument(help="the Blue Cherry customer code, e.g. C0000042")],
) -> None:
    """Erase a customer: Klaviyo data-privacy deletion of the profile, and the fleet forgets the customer."""
    code = customer.strip()
    if not code:
        raise typer.BadParameter("the customer code is empty", param_hint="CUSTOMER")
    ctx = default_context()
    record: dict[str, Any] | None = None
    try:
        with BlueCherryClient.from_settings(get_settings(), ctx.mapping) as bc:
            record = find_customer(bc, code)
    except BlueCherryError as exc:  # Klaviyo is still asked by external_id: the erasure must not wait
        console.print(f"[yellow]Blue Cherry could not be read ({exc}); finding the profile in Klaviyo "
                      "by external_id[/yellow]")
    result = erase_customer(code, ctx, record)
    if result.deletions:
        for op in result.deletions:
            named = ", ".join(f"{k}={v}" for k, v in op.payload["profile"].items())
            console.print(f"{code}: data-privacy deletion requested for the Klaviyo profile ({named})")
    else:
        console.print(f"{code}: no Klaviyo profile found (nothing to delete there)")
    p = result.purged
    console.print(f"{code}: fleet state purged - fingerprint {'yes' if p.fingerprint else 'none'}, "
                  f"daily-batch entry {'yes' if p.daily_entry else 'none'}, {p.ledger_entries} ledger entries, "
                  f"{p.exceptions} exceptions, {p.order_facts} orders' facts"
                  + ("" if result.erp_record else " (not in Blue Cherry)"))
