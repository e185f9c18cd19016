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
from connectors.klaviyo.errors import KlaviyoError
from flows.customers import CustomerContext, default_context, forget_customer, resolve_deletions
from state.erasure import PurgeReport, customer_state
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


@dataclass
class ErasurePlan:
    """What an erasure of `code` will do, per system, found before anything is deleted."""

    code: str
    record: dict[str, Any] | None  # the ERP record, None when Blue Cherry has none (or could not be read)
    erp_error: str | None  # Blue Cherry could not be read: why
    deletions: list[Operation]  # the data-privacy deletion(s) Klaviyo will be asked for
    klaviyo_ids: list[str] | None  # profiles holding the code as external_id; None: Klaviyo could not be asked
    klaviyo_error: str | None
    state: PurgeReport  # the fleet's own records in Redis

    @property
    def unknown(self) -> bool:
        """Neither system knows the customer (a mistyped code), and the fleet holds nothing of it."""
        return (self.record is None and self.erp_error is None and not self.klaviyo_ids and not self.deletions
                and self.state.empty)


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


def _record_key(record: dict[str, Any] | None, ctx: CustomerContext) -> str | None:
    return str(record.get(ctx.mapping.resources.customer.key)) if record else None


def plan_erasure(code: str, ctx: CustomerContext, record: dict[str, Any] | None, erp_error: str | None = None,
                 now: datetime | None = None) -> ErasurePlan:
    """Find what an erasure deletes, deleting nothing: the Klaviyo request(s) and the fleet's records."""
    f = ctx.mapping.fields.customer
    moment = (now or datetime.now(UTC)).strftime(STAMP)
    op = deletion_operation(code, record.get(f.email) if record else None, record.get(f.phone) if record else None,
                            ctx.mapping, f"{moment}#000000")
    ids: list[str] | None = None
    klaviyo_error = None
    try:
        ids = ctx.resolve_ids(code) if ctx.resolve_ids is not None else []
        deletions = resolve_deletions([op], ctx) if set(op.payload["profile"]) == {"external_id"} else [op]
    except KlaviyoError as exc:  # the request by email / phone needs no read; one by external_id does
        klaviyo_error = str(exc)
        deletions = [] if set(op.payload["profile"]) == {"external_id"} else [op]
    state = customer_state(ctx.redis, ctx.key_prefix, code, _record_key(record, ctx), ctx.exceptions)
    return ErasurePlan(code, record, erp_error, deletions, ids, klaviyo_error, state)


def erase_customer(code: str, ctx: CustomerContext, record: dict[str, Any] | None,
                   now: datetime | None = None, deletions: list[Operation] | None = None) -> ErasureResult:
    """Request the deletion, purge the fleet's state, leave the tombstone; `record` = the ERP record;
    `deletions` = the requests already resolved (a plan shown to the operator), else resolved here."""
    mapping = ctx.mapping
    f = mapping.fields.customer
    moment = (now or datetime.now(UTC)).strftime(STAMP)
    result = ErasureResult(code, record is not None)
    if deletions is None:
        email = record.get(f.email) if record else None
        phone = record.get(f.phone) if record else None
        deletions = resolve_deletions([deletion_operation(code, email, phone, mapping, f"{moment}#000000")], ctx)
    result.deletions = deletions
    if result.deletions:
        ctx.submit(result.deletions)
    result.purged = forget_customer(ctx, code, _record_key(record, ctx))
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


def prepare_erasure(code: str) -> tuple[CustomerContext, dict[str, Any] | None, ErasurePlan]:
    """The context, the ERP record (None: none, or Blue Cherry unreadable) and the plan for `code`: what
    `bcsync erase` and the console show before anything is deleted."""
    ctx = default_context()
    record: dict[str, Any] | None = None
    erp_error = None
    try:
        with BlueCherryClient.from_settings(get_settings(), ctx.mapping) as bc:
            record = find_customer(bc, code)
    except BlueCherryError as exc:  # Klaviyo is still asked by external_id: the erasure must not wait
        erp_error = str(exc)
    return ctx, record, plan_erasure(code, ctx, record, erp_error)


def _named(op: Operation) -> str:
    return ", ".join(f"{k}={v}" for k, v in op.payload["profile"].items())


def plan_lines(plan: ErasurePlan, prefix: str) -> list[str]:
    """The plan as an operator reads it: per system, what is there and what happens to it."""
    code = plan.code
    lines = [f"Erasing customer {code}:", "  Blue Cherry:"]
    if plan.record is not None:
        lines.append(f"    customer {code} found: left as it is (the ERP is the truth; flag it there to keep it out)")
    elif plan.erp_error:
        lines.append(f"    could not be read ({plan.erp_error}); Klaviyo is searched by external_id")
    else:
        lines.append(f"    no customer {code}")
    lines.append("  Klaviyo:")
    if plan.klaviyo_ids is None:
        lines.append(f"    could not be searched by external_id ({plan.klaviyo_error})")
    elif plan.klaviyo_ids:
        lines += [f"    profile {pid} holds external_id {code}" for pid in plan.klaviyo_ids]
    else:
        lines.append(f"    no profile holds external_id {code}")
    lines += [f"    data-privacy deletion request for the profile {_named(op)}" for op in plan.deletions]
    if not plan.deletions:
        lines.append("    nothing to delete there")
    s = plan.state
    lines += [f"  Redis ({prefix}:*):",
              f"    fingerprint {int(s.fingerprint)}, daily-batch entry {int(s.daily_entry)}, ledger entries "
              f"{s.ledger_entries}, exceptions {s.exceptions}, orders' facts {s.order_facts}, Klaviyo ids "
              f"{int(s.profile)}",
              "    then a tombstone (the code and a time only) keeps the poller from re-creating the profile"]
    return lines


def erase(
    customer: Annotated[str, typer.Argument(help="the Blue Cherry customer code, e.g. C0000042")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask (scripts)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be deleted; delete nothing")] = False,
) -> None:
    """Erase a customer: Klaviyo data-privacy deletion of the profile, and the fleet forgets the customer.
    Shows what will be deleted in each system and asks first (--yes: do not ask; --dry-run: only show)."""
    code = customer.strip()
    if not code:
        raise typer.BadParameter("the customer code is empty", param_hint="CUSTOMER")
    ctx, record, plan = prepare_erasure(code)
    if plan.erp_error and plan.klaviyo_ids is None and not plan.deletions:
        typer.echo(f"bcsync erase: neither Blue Cherry ({plan.erp_error}) nor Klaviyo ({plan.klaviyo_error}) could "
                   f"be read: customer {code} not erased; try again", err=True)
        raise typer.Exit(1)
    if plan.unknown:
        typer.echo(f"bcsync erase: no customer {code!r} in Blue Cherry or Klaviyo, and the fleet holds nothing of "
                   "it: nothing erased (check the code)", err=True)
        raise typer.Exit(1)
    for line in plan_lines(plan, ctx.key_prefix):
        console.print(line, markup=False, highlight=False)
    if dry_run:
        console.print("dry run: nothing deleted", highlight=False)
        return
    if not yes and not typer.confirm(f"Erase customer {code}?", default=False):
        typer.echo(f"customer {code} not erased", err=True)
        raise typer.Exit(1)
    result = erase_customer(code, ctx, record, deletions=plan.deletions)
    for op in result.deletions:
        console.print(f"{code}: data-privacy deletion requested for the Klaviyo profile ({_named(op)})",
                      markup=False, highlight=False)
    if not result.deletions:
        console.print(f"{code}: no Klaviyo profile found (nothing to delete there)", highlight=False)
    p = result.purged
    console.print(f"{code}: fleet state purged - fingerprint {'yes' if p.fingerprint else 'none'}, "
                  f"daily-batch entry {'yes' if p.daily_entry else 'none'}, {p.ledger_entries} ledger entries, "
                  f"{p.exceptions} exceptions, {p.order_facts} orders' facts"
                  + ("" if result.erp_record else " (not in Blue Cherry)"), markup=False, highlight=False)
