"""`bcsync audit order <number>`: the trail finance asks for, from the ERP versions to Klaviyo's answers.

Shows the ERP versions the fleet stored for the order (header, pick tickets, invoices, credit memos), the
events it computed (metric, unique_id, lane), what was delivered when with which unique_id and Klaviyo's
response (the delivery ledger), the revision baseline, dead letters holding its records and the open
exceptions naming them. A Typer app named `app` (register with ``app.add_typer(audit.app, name="audit")``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
app = typer.Typer(help="Audit trails of ERP records through the fleet.", no_args_is_help=True)


# A callback keeps `orders` / `order` a subcommand even while it is the only one.
@app.callback()
def _group() -> None:
    """Audit trails of ERP records through the fleet."""


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def order_report(number: str) -> dict[str, Any]:
    """The audit of one order as plain data (what `--json` prints)."""
    from config.mapping import get_mapping
    from config.settings import get_settings
    from sync.orders.state import RedisOrderState
    from tasks.orders import OrderContext, audit_trail
    from workers import stores

    settings = get_settings()
    mapping = get_mapping()
    client = stores.client()
    ctx = OrderContext(
        client, settings.key_prefix, mapping,
        RedisOrderState(client, settings.key_prefix, mapping, settings.fingerprint_ttl_days),
        stores.ledger(), stores.exceptions(), submit=lambda ops: None,
    )
    trail = audit_trail(number, ctx)
    records = set(trail["records"])
    computed: dict[str, Any] = trail["computed"]
    dead = [
        {"id": d.id, "lane": d.lane, "reason": d.reason, "code": d.code, "records": d.records,
         "last_failure": d.last_failure}
        for d in stores.dead_letters().list()
        if any(r in records or r.startswith(f"order:{number}/") for r in d.records)
    ]
    exceptions = [
        e.model_dump() for e in stores.exceptions().list(status=None, limit=100_000)
        if e.record_key in records or e.record_key.startswith(f"order:{number}/")
        or e.details.get("order") == number
    ]
    return {
        "order": number,
        "versions_seen": trail["versions"],
        "computed": computed,
        "delivered": [e.model_dump() for e in trail["delivered"]],
        "revision": trail["revision"].model_dump(mode="json") if trail["revision"] else None,
        "pending_revision": (
            {"revision": trail["pending"].revision.fingerprint, "keys": list(trail["pending"].keys)}
            if trail["pending"] else None
        ),
        "refund_pin": trail["refund_pin"],
        "dead_letters": dead,
        "exceptions": exceptions,
    }


@app.command("order")
def audit_order(
    number: Annotated[str, typer.Argument(help="ERP order number, e.g. 100042")],
    as_json: Annotated[bool, typer.Option("--json", help="print the trail as JSON")] = False,
) -> None:
    """ERP versions seen, events computed, deliveries (unique_id, response), dead letters, exceptions."""
    report = order_report(number)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    if not report["versions_seen"] and not report["computed"] and not report["delivered"]:
        console.print(f"[yellow]order {number}: the fleet has no trace of it (never seen, or expired)[/]")
        raise typer.Exit(1)
    versions = Table(title=f"Order {number}: ERP versions seen ({len(report['versions_seen'])})")
    for col in ("stored at", "document", "last_mod", "status", "version"):
        versions.add_column(col)
    for v in report["versions_seen"]:
        versions.add_row(_when(v.get("stored_at")), v["key"], str(v.get("last_mod") or ""),
                         str(v.get("status") or ""), str(v.get("version") or ""))
    console.print(versions)

    delivered = {e["key"]: e for e in report["delivered"]}
    events = Table(title="Events computed and their delivery")
    for col in ("metric", "unique_id", "lane", "computed", "delivered", "status", "endpoint", "response"):
        events.add_column(col)
    for key, c in sorted(report["computed"].items(), key=lambda kv: kv[1].get("computed_at", 0)):
        d = delivered.get(key)
        events.add_row(c["metric"], c["unique_id"], c["lane"] + (" (backfill)" if c.get("backfill") else ""),
                       _when(c.get("computed_at")), _when(d["delivered_at"]) if d else "[red]not yet[/]",
                       str(d["status"]) if d else "-", d["endpoint"] if d else "-",
                       json.dumps(d["response"]) if d and d.get("response") else "-")
    for key, d in delivered.items():  # delivered but computed before the state was kept (or lost)
        if key not in report["computed"]:
            events.add_row("?", key, "-", "-", _when(d["delivered_at"]), str(d["status"]), d["endpoint"],
                           json.dumps(d.get("response")) if d.get("response") else "-")
    console.print(events)
    revision = report["revision"]
    console.print(f"Revision baseline: {revision['fingerprint'] if revision else '-'} "
                  f"(value {revision['value'] if revision else '-'}); pending: "
                  f"{report['pending_revision'] or '-'}; "
                  f"refund id pinned to memo: {report['refund_pin'] or '-'}")
    for title, rows in (("Dead letters", report["dead_letters"]), ("Exceptions", report["exceptions"])):
        table = Table(title=f"{title} ({len(rows)})")
        if rows:
            for col in rows[0]:
                table.add_column(col)
            for row in rows:
                table.add_row(*[str(v) for v in row.values()])
        console.print(table)
