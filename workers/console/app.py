"""The console's starlette application: pages, sign-in, roles, CSRF and the audit log.

Every change is a POST of a plain HTML form carrying the session's CSRF token (refused with 403 without it, as
is a change the user's role does not allow), is written to the audit log (state.console_audit) and answered
with a redirect to the page it came from, with a one-line message. Without users the console is read-only and
only on loopback (workers.console.auth.refusal is checked before it starts).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from config.exception_types import EXCEPTION_TYPES, OWNERS
from config.lanes import LANES
from config.mapping import get_mapping
from config.settings import Settings
from state.console_audit import ConsoleAuditLog
from state.dead_letters import DeadLetter
from state.factory import stores
from workers.audit_documents import KIND_NAMES, day_and_time, document_of, money
from workers.console import data
from workers.console.attribution import attribution, attribution_csv
from workers.console.auth import Role, User, verify_password
from workers.dlq_cli import requeue_entry
from workers.render_cli import shown_key

HERE = Path(__file__).parent
READ_ONLY = User("local", "viewer", "")  # without users: everyone reads, nobody changes anything
SESSION_HOURS = 12


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pretty(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, default=str, sort_keys=True)


templates = Jinja2Templates(directory=str(HERE / "templates"))
# finance reads amounts and dates as `bcsync audit order` prints them (workers.audit_documents)
templates.env.filters.update(when=_when, num=_num, pretty=_pretty, key=shown_key, money=money, day=day_and_time,
                             document=lambda kind: KIND_NAMES.get(kind, kind),
                             source=lambda entry: document_of(entry) if entry else "-")


class Console:
    """The application's state: its users and the audit log; one per process."""

    def __init__(self, settings: Settings, users: dict[str, User]) -> None:
        self.settings = settings
        self.users = users
        self.audit = ConsoleAuditLog(stores().redis, settings.key_prefix)

    # --- who is asking ------------------------------------------------------------------------------
    def user(self, request: Request) -> User | None:
        if not self.users:
            return READ_ONLY
        name = request.session.get("user")
        return self.users.get(name) if isinstance(name, str) else None

    @staticmethod
    def csrf(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        user = self.user(request)
        flash = request.session.pop("flash", None)
        return templates.TemplateResponse(request, template, {
            "user": user, "read_only": not self.users, "csrf": self.csrf(request), "flash": flash,
            "lanes": LANES, "owners": OWNERS, "types": sorted(EXCEPTION_TYPES), **context,
        }, status_code=status_code)

    def refused(self, request: Request, why: str, user: User | None, action: str) -> Response:
        if user is not None and self.users:
            self.audit.write(user.name, user.role, f"refused {action}", request.url.path, why)
        return self.page(request, "refused.html", status_code=403, why=why)

    async def change(self, request: Request, action: str, role: Role) -> tuple[User | None, Any, Response | None]:
        """The checks every change passes: signed in, the session's CSRF token, the role. The form, or the
        refusal to answer with."""
        form = await request.form()
        user = self.user(request)
        if user is None:
            return None, form, RedirectResponse("/signin", status_code=303)
        token = form.get("csrf")
        expected = request.session.get("csrf")
        if not isinstance(token, str) or not isinstance(expected, str) or not hmac.compare_digest(token, expected):
            return user, form, self.refused(request, "the form's CSRF token is missing or wrong: reload the page "
                                            "and try again", user, action)
        if not self.users:
            return user, form, self.refused(request, "the console is read-only: no users are configured "
                                            "(BCSYNC_CONSOLE_USERS)", user, action)
        if not user.may(role):
            return user, form, self.refused(request, f"{action} needs the {role} role; {user.name} is a "
                                            f"{user.role}", user, action)
        return user, form, None

    def done(self, request: Request, user: User, action: str, target: str, detail: str, back: str,
             message: str) -> Response:
        self.audit.write(user.name, user.role, action, target, detail)
        request.session["flash"] = message
        return RedirectResponse(back, status_code=303)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console



def signed_in(handler: Any) -> Any:
    async def wrapper(request: Request) -> Response:
        if _console(request).user(request) is None:
            return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)
        response: Response = await handler(request)
        return response
    return wrapper

async def signin(request: Request) -> Response:
    console = _console(request)
    if request.method == "GET":
        return console.page(request, "signin.html", error=None, next=request.query_params.get("next", "/"))
    form = await request.form()
    name, password = str(form.get("user", "")), str(form.get("password", ""))
    nxt = str(form.get("next", "/"))
    nxt = nxt if nxt.startswith("/") and not nxt.startswith("//") else "/"
    token, expected = form.get("csrf"), request.session.get("csrf")
    if not isinstance(token, str) or not isinstance(expected, str) or not hmac.compare_digest(token, expected):
        return console.page(request, "signin.html", status_code=403, next=nxt,
                            error="The form's CSRF token is missing or wrong: reload the page and try again.")
    user = console.users.get(name)
    if user is None or not verify_password(password, user.password_hash):
        return console.page(request, "signin.html", status_code=401, next=nxt,
                            error="Unknown user or wrong password.")
    request.session.clear()
    request.session["user"] = user.name  # a new session (and CSRF token) at every sign-in
    console.audit.write(user.name, user.role, "sign in", "console", "")
    return RedirectResponse(nxt, status_code=303)

async def signout(request: Request) -> Response:
    console = _console(request)
    user, _, refusal = await console.change(request, "sign out", "viewer")
    if refusal is not None:
        return refusal
    request.session.clear()
    assert user is not None
    console.audit.write(user.name, user.role, "sign out", "console", "")
    return RedirectResponse("/signin", status_code=303)

@signed_in
async def today(request: Request) -> Response:
    console = _console(request)
    return console.page(request, "today.html", nav="today", t=data.today())

@signed_in
async def exceptions(request: Request) -> Response:
    console = _console(request)
    q = request.query_params
    filters = {"owner": q.get("owner", ""), "type": q.get("type", ""), "status": q.get("status", "unresolved"),
               "record": q.get("record", "")}
    rows = data.exception_rows(filters["owner"], filters["type"], filters["status"], filters["record"])
    return console.page(request, "exceptions.html", nav="exceptions", rows=rows[:200], total=len(rows),
                        filters=filters)

async def exception_act(request: Request) -> Response:
    console = _console(request)
    form = await request.form()
    action = "resolve" if form.get("action") == "resolve" else "acknowledge"
    user, form, refusal = await console.change(request, f"{action} an exception", "operator")
    if refusal is not None:
        return refusal
    assert user is not None
    ident, comment = str(form.get("id", "")), str(form.get("comment", "")).strip()
    type_, _, record_key = ident.partition("|")
    register = stores().exceptions
    act = register.resolve if action == "resolve" else register.acknowledge
    back = str(form.get("back", "/exceptions"))
    back = back if back.startswith("/") and not back.startswith("//") else "/exceptions"
    if not act(type_, record_key, by=user.name, comment=comment):
        request.session["flash"] = f"no exception {ident} (expired or never recorded)"
        return RedirectResponse(back, status_code=303)
    past = "resolved" if action == "resolve" else "acknowledged"
    return console.done(request, user, action, ident, comment, back,
                        f"{past} {type_} on {shown_key(record_key)}")

@signed_in
async def dead_letters(request: Request) -> Response:
    console = _console(request)
    q = request.query_params
    lane, code = q.get("lane", ""), q.get("code", "")
    rows = data.dead_letter_rows(lane or None, None)
    if code:
        rows = [r for r in rows if r["code"] == code]
    everything = data.dead_letter_rows(None, None)
    codes = sorted({(r["lane"], r["code"]) for r in everything})
    return console.page(request, "dead_letters.html", nav="dead", rows=rows[:500], total=len(rows),
                        lane=lane, code=code, codes=codes)

@signed_in
async def dead_letter(request: Request) -> Response:
    console = _console(request)
    entry = stores().dead_letters.get(request.path_params["entry_id"])
    if entry is None:
        return console.page(request, "refused.html", status_code=404,
                            why=f"no dead letter {request.path_params['entry_id']} (requeued, purged or expired)")
    return console.page(request, "dead_letter.html", nav="dead", d=data.dead_letter_view(entry))

def _chosen(form: Any) -> list[DeadLetter]:
    """The entries a requeue or purge acts on: the ticked ids, or a lane's entries with one code."""
    dlq = stores().dead_letters
    ids = [str(i) for i in form.getlist("id") if i]
    if ids:
        return [e for e in (dlq.get(i) for i in ids) if e is not None]
    lane, code = str(form.get("lane", "")), str(form.get("code", ""))
    if lane in LANES and code:
        return [e for e in dlq.list(lane) if (e.code or "-") == code]
    return []

async def requeue(request: Request) -> Response:
    console = _console(request)
    user, form, refusal = await console.change(request, "requeue", "operator")
    if refusal is not None:
        return refusal
    assert user is not None
    entries = _chosen(form)
    for entry in entries:
        requeue_entry(entry)
    what = ", ".join(e.id for e in entries) or "nothing"
    scope = f"lane {form.get('lane')} code {form.get('code')}" if not form.getlist("id") else "selection"
    return console.done(request, user, "requeue", what, scope, "/dead-letters",
                        f"requeued {len(entries)} dead letter(s)")

async def purge(request: Request) -> Response:
    console = _console(request)
    user, form, refusal = await console.change(request, "purge", "admin")
    if refusal is not None:
        return refusal
    assert user is not None
    entries = _chosen(form)
    expected = f"purge {len(entries)}"
    if not entries or str(form.get("confirm", "")).strip() != expected:
        request.session["flash"] = (f"nothing purged: type '{expected}' to confirm" if entries
                                    else "nothing purged: no dead letter chosen")
        return RedirectResponse("/dead-letters", status_code=303)
    dlq = stores().dead_letters
    for entry in entries:
        dlq.remove(entry)
    return console.done(request, user, "purge", ", ".join(e.id for e in entries),
                        "; ".join(f"{e.lane}/{e.code or '-'} {', '.join(e.records)}" for e in entries)[:2000],
                        "/dead-letters", f"purged {len(entries)} dead letter(s)")

@signed_in
async def record(request: Request) -> Response:
    console = _console(request)
    query = request.query_params.get("q", "")
    return console.page(request, "record.html", nav="record", r=data.record_view(query) if query else None,
                        query=query)

@signed_in
async def playbook(request: Request) -> Response:
    console = _console(request)
    from workers.playbook import render  # noqa: PLC0415  the tenant's own playbook, from its mapping

    html = MarkdownIt("commonmark").enable("table").render(render(get_mapping(), console.settings))
    return console.page(request, "playbook.html", nav="playbook", html=html)

@signed_in
async def erase_page(request: Request) -> Response:
    """What an erasure of the customer deletes, per system (as `bcsync erase` shows it), for an admin to confirm."""
    console = _console(request)
    user = console.user(request)
    assert user is not None
    if not console.users or not user.may("admin"):
        why = (f"erase needs the admin role; {user.name} is a {user.role}" if console.users
               else "the console is read-only: no users are configured (BCSYNC_CONSOLE_USERS)")
        return console.refused(request, why, user, "erase")
    code = request.query_params.get("code", "").strip()
    lines: list[str] = []
    problem = None
    if code:
        from workers.erase import plan_lines, prepare_erasure  # noqa: PLC0415  Blue Cherry and Klaviyo: when asked

        _, _, plan = prepare_erasure(code)
        if plan.unknown:
            problem = f"no customer {code!r} in Blue Cherry or Klaviyo, and the fleet holds nothing of it"
        elif plan.erp_error and plan.klaviyo_ids is None and not plan.deletions:
            problem = f"neither Blue Cherry ({plan.erp_error}) nor Klaviyo ({plan.klaviyo_error}) could be read"
        else:
            lines = plan_lines(plan, console.settings.key_prefix)
    return console.page(request, "erase.html", nav="record", code=code, lines=lines, problem=problem)


async def erase(request: Request) -> Response:
    console = _console(request)
    user, form, refusal = await console.change(request, "erase", "admin")
    if refusal is not None:
        return refusal
    assert user is not None
    code = str(form.get("code", "")).strip()
    if not code or str(form.get("confirm", "")).strip() != f"erase {code}":
        request.session["flash"] = f"nothing erased: type 'erase {code}' to confirm"
        return RedirectResponse(f"/erase?code={code}", status_code=303)
    from workers.erase import erase_customer, prepare_erasure  # noqa: PLC0415

    ctx, record, plan = prepare_erasure(code)
    if plan.unknown:
        request.session["flash"] = f"nothing erased: no customer {code!r} anywhere"
        return RedirectResponse("/record", status_code=303)
    result = erase_customer(code, ctx, record, deletions=plan.deletions)
    p = result.purged
    detail = (f"{len(result.deletions)} Klaviyo deletion request(s); {p.ledger_entries} ledger entries, "
              f"{p.exceptions} exceptions, {p.order_facts} orders' facts purged")
    return console.done(request, user, "erase", f"customer:{code}", detail, f"/record?q={code}",
                        f"erased customer {code}: {detail}")


@signed_in
async def activity(request: Request) -> Response:
    console = _console(request)
    return console.page(request, "activity.html", nav="activity", entries=console.audit.recent(500))

async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")



def build_app(settings: Settings, users: dict[str, User]) -> Starlette:
    secret = settings.console_secret.get_secret_value() or secrets.token_urlsafe(32)
    routes = [
        Route("/", today), Route("/signin", signin, methods=["GET", "POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/exceptions", exceptions), Route("/exceptions/act", exception_act, methods=["POST"]),
        Route("/dead-letters", dead_letters), Route("/dead-letters/requeue", requeue, methods=["POST"]),
        Route("/dead-letters/purge", purge, methods=["POST"]),
        Route("/dead-letters/{entry_id}", dead_letter),
        Route("/record", record), Route("/playbook", playbook), Route("/activity", activity),
        Route("/erase", erase_page), Route("/erase/confirm", erase, methods=["POST"]),
        Route("/attribution", attribution), Route("/attribution.csv", attribution_csv),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    # the session cookie: signed, HTTP-only, SameSite=strict (a second line behind the CSRF token)
    middleware = [Middleware(SessionMiddleware, secret_key=secret, session_cookie="bcsync_console",
                             max_age=SESSION_HOURS * 3600, same_site="strict", https_only=False)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = Console(settings, users)
    return app
