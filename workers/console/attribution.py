"""The console's Attribution page (issue 22): `bcsync report attribution` for finance in the browser - per
campaign and flow Klaviyo's revenue beside the ERP's placed value and net of the same orders, each campaign's
orders with a link to their trail (Record), the ERP orders missing in Klaviyo, and the CSV export.

The report runs when the page is asked (in a worker thread: it reads Klaviyo), from the report's cache: Klaviyo's
values reports are read again only as the report's own rules allow (docs/operations.md, "Finance: campaign
revenue grounded in the ERP"), so reloading the page spends nothing of their 225 a day. Any signed-in user reads
it (viewer and up); it changes nothing but the exception register, as the command does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from config.mapping import get_mapping
from flows.attribution import AttributionSetupError, build_attribution_run
from workers.report_cli import result_csv, result_json

FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M")


def _moment(text: str, name: str) -> dt.datetime | None:
    """A tenant-local date of the form; None when empty. ValueError names the field."""
    if not text.strip():
        return None
    zone = ZoneInfo(get_mapping().tenant.timezone)
    for fmt in FORMATS:
        try:
            return dt.datetime.strptime(text.strip(), fmt).replace(tzinfo=zone)
        except ValueError:
            continue
    raise ValueError(f"{name} {text!r} is not a date (YYYY-MM-DD)")


def _run(since: dt.datetime | None, until: dt.datetime | None, campaign: str | None) -> dict[str, Any]:
    if since is None:
        since = (until or dt.datetime.now(ZoneInfo(get_mapping().tenant.timezone))) - dt.timedelta(days=30)
    result = build_attribution_run().run(since, until, campaign)
    return {"json": result_json(result), "csv": result_csv(result)}


async def _report(request: Request) -> tuple[dict[str, str], dict[str, Any] | None, str | None]:
    q = request.query_params
    form = {"since": q.get("since", ""), "until": q.get("until", ""), "campaign": q.get("campaign", "")}
    try:
        since, until = _moment(form["since"], "since"), _moment(form["until"], "until")
        return form, await run_in_threadpool(_run, since, until, form["campaign"] or None), None
    except (ValueError, AttributionSetupError) as exc:
        return form, None, str(exc)


def _sign_in_first(request: Request) -> Response:
    """To the sign-in page, and back to this very report after it (a bookmarked period keeps its dates)."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(back, safe='')}", status_code=303)


async def attribution(request: Request) -> Response:
    console = request.app.state.console
    if console.user(request) is None:
        return _sign_in_first(request)
    form, report, error = await _report(request)
    return console.page(request, "attribution.html", nav="attribution", form=form,
                        a=report["json"] if report else None, error=error, query=request.url.query)


async def attribution_csv(request: Request) -> Response:
    if request.app.state.console.user(request) is None:
        return _sign_in_first(request)
    _, report, error = await _report(request)
    if report is None:
        return Response(f"{error}\n", status_code=400, media_type="text/plain")
    return Response(report["csv"], media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="attribution.csv"'})
