"""`bcsync audit order <number>`: the trail finance asks for, from the ERP versions to Klaviyo's answers.
`bcsync audit fallbacks`: the fields the mapping declares absent and what stands in for each (every record).

Shows the ERP versions the fleet stored for the order (header, pick tickets, invoices, credit memos), the
fallbacks its dates rely on (fields the mapping declares absent: which value stood in, from where), the
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
from rich.text import Text

from config.mapping import absent_fields, get_mapping
from config.settings import get_settings
from flows.orders import OrderContext, audit_trail
from state.factory import stores
from sync.exceptions import ExceptionRecord
from workers.exceptions_cli import exception_table
from workers.render_cli import compact_table, short_time

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
    settings = get_settings()
    mapping = get_mapping()
    client = stores().redis
    ctx = OrderContext(
        client, settings.key_prefix, mapping,
        stores().orders,
        stores().ledger, stores().exceptions, submit=lambda ops: None,
    )
    trail = audit_trail(number, ctx)
    records = set(trail["records"])
    computed: dict[str, Any] = trail["computed"]
    dead = [
        {"id": d.id, "lane": d.lane, "reason": d.reason, "code": d.code, "records": d.records,
         "last_failure": d.last_failure}
        for d in stores().dead_letters.list()
        if any(r in records or r.startswith(f"order:{number}/") for r in d.records)
    ]
    exceptions = [
        e.model_dump() for e in stores().exceptions.list(status=None, limit=100_000)
        if e.record_key in records or e.record_key.startswith(f"order:{number}/")
        or e.details.get("order") == number
    ]
    return {
        "order": number,
        "fallbacks": trail["fallbacks"],
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
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    number = report["order"]
    versions = compact_table(f"Order {number}: ERP versions seen ({len(report['versions_seen'])}, times UTC)",
                             ("stored", "ERP document", "status", "last_mod (ERP time)"), "version")
    for v in report["versions_seen"]:
        document = f"{v.get('resource')} {v['document']}" if v.get("document") else v["key"]
        versions.add_row(short_time(v.get("stored_at")), document, str(v.get("status") or "-"),
                         str(v.get("last_mod") or "-"), str(v.get("version") or "-"))
    console.print(versions)
    if report["fallbacks"]:  # fields the tenant does not have: what stood in for them (docs/configuration.md)
        fallbacks = compact_table("Fallbacks in use (fields the mapping declares absent)",
                                  ("ERP document", "field", "value used"), "taken from")
        for f in report["fallbacks"]:
            fallbacks.add_row(f["document"], f["field"], f["value"], f["source"])
        console.print(fallbacks)

    delivered = {e["key"]: e for e in report["delivered"]}
    events = compact_table("Events computed and their delivery (times UTC)",
                           ("metric", "lane", "computed", "delivered", "status"), "unique_id / response")
    rows = sorted(report["computed"].items(), key=lambda kv: kv[1].get("computed_at", 0))
    # delivered but computed before the state was kept (or lost)
    rows += [(key, {"metric": "?", "unique_id": key, "lane": "-"})
             for key in delivered if key not in report["computed"]]
    for key, c in rows:
        d = delivered.get(key)
        where = Text(c["unique_id"])
        if d:
            where.append(f"\n{d['endpoint']}" + (f" {json.dumps(d['response'])}" if d.get("response") else ""),
                         style="dim")
        events.add_row(c["metric"], c["lane"] + (" (backfill)" if c.get("backfill") else ""),
                       short_time(c.get("computed_at")), short_time(d["delivered_at"]) if d else "[red]not yet[/]",
                       str(d["status"]) if d else "-", where)
    console.print(events)

    revision, pending = report["revision"], report["pending_revision"]
    console.print(f"Revision baseline: {revision['fingerprint'] if revision else '-'}"
                  + (f" (value {revision['value']})" if revision else ""))
    if pending:
        console.print(f"Revision pending: {pending['revision']} for {', '.join(pending['keys'])}")
    console.print(f"Refund id pinned to credit memo: {report['refund_pin'] or '-'}")

    dead = report["dead_letters"]
    if dead:
        table = compact_table(f"Dead letters ({len(dead)})", ("id", "lane", "code", "last failure"),
                              "records / reason")
        for d in dead:
            table.add_row(d["id"], d["lane"], d["code"] or "-", short_time(d["last_failure"]),
                          Text(", ".join(d["records"])) + Text(f"\n{d['reason']}", style="dim"))
        console.print(table)
    else:
        console.print("Dead letters: none")
    if report["exceptions"]:
        records = [ExceptionRecord.model_validate(e) for e in report["exceptions"]]
        console.print(exception_table(f"Exceptions ({len(records)})", records))
    else:
        console.print("Exceptions: none")


@app.command("fallbacks")
def audit_fallbacks(
    as_json: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
) -> None:
    """Fields the mapping declares absent ("") and what stands in for each: the customer status, the order
    entry date, a memo's date... (docs/configuration.md, "Tenant dialects"). One order's own: `audit order`."""
    rows = [{"field": key, "fallback": fallback} for key, fallback in absent_fields(get_mapping())]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no field is declared absent: every value is read from the tenant's own records")
        return
    table = compact_table("Fields the mapping declares absent, and what stands in for them", ("field",), "fallback")
    for row in rows:
        table.add_row(row["field"], row["fallback"])
    console.print(table)
