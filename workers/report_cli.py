"""`bcsync report attribution [--since] [--until] [--campaign ID] [--format table|csv|json]`: what each Klaviyo
campaign and flow earned, grounded in the ERP (`flows.attribution`; docs/operations.md, "Finance: campaign
revenue grounded in the ERP").

Dates are the tenant's local dates (`YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS`); `--until` is exclusive (default:
now), `--since` defaults to 30 days before. Exit 0 whatever it found (mismatches are exceptions); 2 for a wrong
argument or a conversion metric that cannot be found.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from config.mapping import get_mapping
from config.settings import get_settings
from flows.attribution import AttributionSetupError, RunResult, build_attribution_run
from sync.attribution.join import SendRow
from workers.render_cli import one_of

app = typer.Typer(help="Reports for the business teams.", no_args_is_help=True)
FORMATS = ("table", "csv", "json")
ROW_FIELDS = ("kind", "id", "klaviyo_revenue", "klaviyo_conversions", "orders", "erp_placed", "erp_cancelled",
              "erp_refunded", "erp_net", "erp_shipped", "cancellation_rate", "refund_rate", "open_orders",
              "currencies", "mismatch")


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    zone = ZoneInfo(get_mapping().tenant.timezone)
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=zone)
        except ValueError:
            continue
    typer.echo(f"bcsync report attribution: {option} {value!r} is not a date (YYYY-MM-DD or "
               f"'YYYY-MM-DD HH:MM:SS')", err=True)
    raise typer.Exit(2)


def row_json(row: SendRow) -> dict[str, Any]:
    return {
        "kind": row.kind, "id": row.send_id,
        "klaviyo_revenue": None if row.klaviyo_revenue is None else str(row.klaviyo_revenue),
        "klaviyo_conversions": row.klaviyo_conversions, "orders": len(row.orders),
        "erp_placed": str(row.erp_placed), "erp_cancelled": str(row.erp_cancelled),
        "erp_refunded": str(row.erp_refunded), "erp_net": str(row.erp_net), "erp_shipped": str(row.erp_shipped),
        "cancellation_rate": str(row.cancellation_rate), "refund_rate": str(row.refund_rate),
        "open_orders": row.open_orders, "currencies": ",".join(row.currencies), "mismatch": row.mismatch,
    }


def result_json(result: RunResult) -> dict[str, Any]:
    report = result.report
    return {
        "since": result.since.isoformat(), "until": result.until.isoformat(),
        "conversion_metric": result.metric, "metric_id": result.metric_id,
        "sends": [{**row_json(row), "order_lines": [
            {"order": line.order.number if line.order else line.number, "key": line.number,
             "message": line.message_id, "event_value": str(line.event_value),
             "erp_placed": None if line.order is None else str(line.order.placed_value),
             "erp_net": None if line.order is None else str(line.order.net),
             "open": None if line.order is None else line.order.is_open,
             "value_differs": line.value_differs} for line in row.orders]} for row in report.sends],
        "missing": [{"order": o.number, "join_key": o.join_key, "placed_at": o.placed_at.isoformat(),
                     "erp_placed": str(o.placed_value)} for o in report.missing],
        "erp_orders": report.orders, "not_expected": report.not_expected, "unattributed": report.unattributed,
        "requests": dict(result.requests), "chunks_read": result.chunks_read, "chunks_cached": result.chunks_cached,
        "chunks_stale": result.chunks_stale, "values_calls_today": result.values_calls_today,
        "events_read_since": None if result.events_read_since is None else result.events_read_since.isoformat(),
        "exceptions": dict(result.exceptions), "complete": result.complete,
    }


def result_csv(result: RunResult) -> str:
    """One row per campaign and flow, then one per ERP order without a conversion event (kind
    `missing_in_klaviyo`, its placed value under erp_placed)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in result.report.sends:
        writer.writerow(row_json(row))
    for order in result.report.missing:
        writer.writerow({"kind": "missing_in_klaviyo", "id": order.number, "erp_placed": str(order.placed_value),
                         "orders": 1, "open_orders": int(order.is_open), "currencies": order.currency})
    return out.getvalue()


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def print_table(result: RunResult) -> None:
    out = Console()
    report = result.report
    out.print(f"attribution {result.since:%Y-%m-%d %H:%M} .. {result.until:%Y-%m-%d %H:%M} "
              f"({result.metric} Placed Order {result.metric_id or 'not in Klaviyo yet'})")
    table = Table("kind", "id", "Klaviyo revenue", "ERP placed", "ERP net", "cancelled", "refunded", "open",
                  "orders", "currency", "")
    for row in report.sends:
        table.add_row(row.kind, row.send_id, _money(row.klaviyo_revenue), _money(row.erp_placed),
                      _money(row.erp_net), f"{row.cancellation_rate:.1%}", f"{row.refund_rate:.1%}",
                      str(row.open_orders), str(len(row.orders)), ",".join(row.currencies),
                      "MISMATCH" if row.mismatch else "")
    out.print(table)
    out.print(f"ERP orders in the period: {report.orders}; without a conversion event in Klaviyo: "
              f"{len(report.missing)}; not expected there: {report.not_expected}; converted but attributed to no "
              f"campaign or flow: {report.unattributed}")
    for order in report.missing[:20]:
        out.print(f"  missing in Klaviyo: order {order.number} placed {order.placed_at:%Y-%m-%d %H:%M} "
                  f"{_money(order.placed_value)}")
    spent = ", ".join(f"{key} {n}" for key, n in sorted(result.requests.items())) or "none"
    out.print(f"Klaviyo requests: {spent}; values chunks read {result.chunks_read}, cached {result.chunks_cached}"
              f"; values requests today {result.values_calls_today}/{get_settings().attribution_values_daily_budget}")
    if result.chunks_stale:
        out.print(f"Klaviyo's totals not read now (daily budget or throttled), older copies used: "
                  f"{', '.join(result.chunks_stale)}")
    if result.exceptions:
        out.print("exceptions recorded: " + ", ".join(f"{k} {n}" for k, n in sorted(result.exceptions.items())))


@app.command("attribution")
def attribution(
    since: Annotated[str | None, typer.Option(help="tenant-local date (default: 30 days ago)")] = None,
    until: Annotated[str | None, typer.Option(help="tenant-local date, exclusive (default: now)")] = None,
    campaign: Annotated[str | None, typer.Option(help="only this campaign or flow id")] = None,
    format_: Annotated[str, typer.Option("--format", callback=one_of(FORMATS),
                                         help=" | ".join(FORMATS))] = "table",
) -> None:
    """Per Klaviyo campaign and flow: Klaviyo's attributed revenue beside the ERP's placed value, net,
    cancellation and refund rates and open orders of the same orders; ERP orders with no conversion event."""
    start = _moment(since, "--since")
    end = _moment(until, "--until")
    if start is None:
        start = (end or datetime.now(ZoneInfo(get_mapping().tenant.timezone))) - timedelta(days=30)
    try:
        result = build_attribution_run().run(start, end, campaign)
    except AttributionSetupError as exc:
        typer.echo(f"bcsync report attribution: {exc}", err=True)
        raise typer.Exit(2) from None
    if format_ == "json":
        typer.echo(json.dumps(result_json(result)))
    elif format_ == "csv":
        sys.stdout.write(result_csv(result))
    else:
        print_table(result)
