"""`bcsync audit order <number>`: the trail finance asks for, from the ERP versions to Klaviyo's answers.
`bcsync audit fallbacks`: the fields the mapping declares absent and what stands in for each (every record).

Reads as a finance document: the order's Blue Cherry documents (the order, pick tickets, invoices, credit memos)
with their numbers, dates and amounts; every event sent to Klaviyo with the document it came from, its date and
value and when Klaviyo accepted it (or that it is not sent yet); the order value Klaviyo last received; the
fallbacks its dates rely on; dead letters and exceptions naming its records. No hashes: `--verbose` adds the
technical trail (the ERP versions stored, unique_ids, endpoints and Klaviyo's responses, revision fingerprints,
dead-letter ids) and `--json` gives everything as data. A Typer app named `app` (register with
``app.add_typer(audit.app, name="audit")``).
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
from workers.audit_documents import KIND_NAMES, day_and_time, document_of, document_rows, money
from workers.exceptions_cli import exception_table
from workers.render_cli import compact_table, short_time

console = Console()
app = typer.Typer(help="Audit trails of ERP records through the fleet.", no_args_is_help=True)


# A callback keeps `orders` / `order` a subcommand even while it is the only one.
@app.callback()
def _group() -> None:
    """Audit trails of ERP records through the fleet."""


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
    docs = trail["documents"]
    return {
        "order": number,
        "customer": docs.order.customer if docs else None,
        "currency": (docs.order.currency or mapping.tenant.currency) if docs else mapping.tenant.currency,
        "documents": document_rows(docs) if docs else [],
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
        "released": trail["released"].model_dump(mode="json") if trail["released"] else None,
        "dead_letters": dead,
        "exceptions": exceptions,
    }


@app.command("order")
def audit_order(
    number: Annotated[str, typer.Argument(help="ERP order number, e.g. 100042")],
    as_json: Annotated[bool, typer.Option("--json", help="print the trail as JSON")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="add the technical trail: ERP versions stored, "
                                          "unique_ids, Klaviyo's responses, revision fingerprints")] = False,
) -> None:
    """The order's documents (numbers, dates, amounts), what was sent to Klaviyo and when, dead letters, exceptions."""
    report = order_report(number)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    if not report["versions_seen"] and not report["computed"] and not report["delivered"] and not report["released"]:
        console.print(f"[yellow]order {number}: the fleet has no trace of it (never seen, or expired)[/]")
        raise typer.Exit(1)
    _print_report(report, verbose)


def _print_report(report: dict[str, Any], verbose: bool = False) -> None:
    number = report["order"]
    console.print(f"Order {number}" + (f", customer {report['customer']}" if report["customer"] else "")
                  + f" - amounts in {report['currency']}, times UTC")
    _print_documents(report)
    if verbose:
        _print_versions(report)
    if report["fallbacks"]:  # fields the tenant does not have: what stood in for them (docs/configuration.md)
        fallbacks = compact_table("Fallbacks in use (fields the mapping declares absent)",
                                  ("ERP document", "field", "value used"), "taken from")
        for f in report["fallbacks"]:
            fallbacks.add_row(f["document"], f["field"], f["value"], f["source"])
        console.print(fallbacks)
    _print_events(report, verbose)
    _print_revision(report, verbose)
    _print_problems(report, verbose)


def _print_documents(report: dict[str, Any]) -> None:
    if not report["documents"]:
        console.print(f"Documents: the order header of {report['order']} was not read yet")
        return
    table = compact_table("Blue Cherry documents", ("document", "number", "date", "amount"), "details")
    for row in report["documents"]:
        table.add_row(KIND_NAMES[row["kind"]], row["number"], row["date"], row["amount"], row["details"])
    console.print(table)


def _print_versions(report: dict[str, Any]) -> None:
    versions = compact_table(f"ERP versions stored ({len(report['versions_seen'])})",
                             ("stored", "ERP document", "status", "last_mod (ERP time)"), "version")
    for v in report["versions_seen"]:
        document = f"{v.get('resource')} {v['document']}" if v.get("document") else v["key"]
        versions.add_row(short_time(v.get("stored_at")), document, str(v.get("status") or "-"),
                         str(v.get("last_mod") or "-"), str(v.get("version") or "-"))
    console.print(versions)


def _print_events(report: dict[str, Any], verbose: bool) -> None:
    delivered = {e["key"]: e for e in report["delivered"]}
    rows = sorted(report["computed"].items(), key=lambda kv: kv[1].get("computed_at", 0))
    # delivered but computed before the state was kept (or lost)
    rows += [(key, {"metric": key.split(":")[1] if key.count(":") >= 2 else "?", "unique_id": key,
                    "record": delivered[key].get("record"), "lane": "-"})
             for key in delivered if key not in report["computed"]]
    events = compact_table("Sent to Klaviyo", ("event", "event date", "value", "sent"), "document / result")
    for key, c in rows:
        d = delivered.get(key)
        cell = Text(document_of(c))
        cell.append("\n" + (f"accepted ({d['status']})" if d and d["status"] and d["status"] < 300
                            else f"answered {d['status']}" if d and d["status"] else "sent" if d else "not sent yet"),
                    style="" if d else "red")
        if c.get("backfill"):
            cell.append(" (backfill)", style="dim")
        if d and d.get("repair"):
            cell.append(" (repair: re-sent by bcsync reconcile)", style="yellow")
        if verbose:
            cell.append(f"\n{c['unique_id']} ({c['lane']} lane)", style="dim")
            if d:
                cell.append(f"\n{d['endpoint']}" + (f" {json.dumps(d['response'])}" if d.get("response") else ""),
                            style="dim")
        events.add_row(c["metric"], day_and_time(c.get("time")), money(c.get("value")),
                       day_and_time(dt.datetime.fromtimestamp(d["delivered_at"], dt.UTC)) if d else "-", cell)
    console.print(events)


def _print_revision(report: dict[str, Any], verbose: bool) -> None:
    revision, pending = report["revision"], report["pending_revision"]
    console.print("Order value Klaviyo last received: " + (money(revision["value"]) if revision else "-")
                  + (f" (revision {revision['fingerprint']})" if revision and verbose else ""))
    if pending:
        console.print("An order update is still being sent"
                      + (f": revision {pending['revision']} for {', '.join(pending['keys'])}" if verbose else ""))
    if report["refund_pin"]:
        console.print(f"Refunded Order under the order's own id: credit memo {report['refund_pin']}")
    released = report.get("released")
    if released:  # closed past its grace period: its documents and trail are gone, its durable facts stay
        memos = ", ".join(f"{memo} {money(total)}" for memo, total in sorted(released["memos"].items())) or "none"
        console.print(f"Released (closed past its grace period; only its facts are kept): {released['status']}, "
                      f"placed {released['placed_at'] or '-'}, value {money(released['placed_value'])} less "
                      f"{money(released['cancelled_value'])} cancelled, credit memos: {memos}; Refunded Order "
                      f"under the order's own id: {released['refund_order_id_memo'] or '-'}")


def _print_problems(report: dict[str, Any], verbose: bool) -> None:
    dead = report["dead_letters"]
    if dead:
        fixed = ("id", "lane", "code", "last failure") if verbose else ("lane", "code", "last failure")
        table = compact_table(f"Dead letters ({len(dead)})", fixed, "records / reason")
        for d in dead:
            cells = [d["lane"], d["code"] or "-", short_time(d["last_failure"]),
                     Text(", ".join(d["records"])) + Text(f"\n{d['reason']}", style="dim")]
            table.add_row(*([d["id"], *cells] if verbose else cells))
        console.print(table)
        if not verbose:
            console.print("(their ids, for `bcsync dlq show ID`: --verbose)")
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
