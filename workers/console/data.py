"""What each console page shows, as plain data, from the functions the commands use (no logic of its own
beyond arranging it): `workers.status.collect_status` for Today, the exception register, the dead-letter
queues, `workers.audit.order_report` for an order and the ledger, profile store and Klaviyo for a customer."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from config.exception_types import EXCEPTION_TYPES
from config.lanes import LANES
from config.settings import get_settings
from connectors.klaviyo.errors import KlaviyoError
from state.dead_letters import DeadLetter
from state.factory import stores
from state.reconcile_summary import read_last
from sync.exceptions import ExceptionRecord
from sync.record_keys import clean_record_key
from workers.dlq_cli import klaviyo_error

log = logging.getLogger(__name__)
UNRESOLVED = ("open", "acknowledged")


def today() -> dict[str, Any]:
    from workers.status import collect_status  # noqa: PLC0415  reads the limiter and freshness: per request

    status = collect_status()
    records = stores().exceptions.list(status=None, limit=10**9)
    unresolved = [r for r in records if r.status in UNRESOLVED]
    by_owner: dict[str, Counter[str]] = {}
    for r in unresolved:
        by_owner.setdefault(r.owner, Counter())[r.type] += 1
    dead = stores().dead_letters.list()
    by_code = Counter((e.lane, e.code or "-") for e in dead)
    return {
        "freshness": status.get("freshness", []),
        "freshness_crossed": status.get("freshness_crossed", []),
        "lanes": [{"lane": lane, "queued": status["queues"][lane], "dead": status["dead_letters"][lane],
                   **status["lanes"][lane]} for lane in LANES],
        "exceptions_by_owner": {owner: dict(types.most_common()) for owner, types in sorted(by_owner.items())},
        "acknowledged": sum(1 for r in unresolved if r.status == "acknowledged"),
        "dead_by_code": [{"lane": lane, "code": code, "count": n} for (lane, code), n in by_code.most_common()],
        "dead_total": len(dead),
        "mapping_problems": status.get("mapping_problems", []),
        "beat_age": status.get("beat_last_tick_age_seconds"),
        "outage_since": status["klaviyo_outage"]["since"],
        "reconciliation": last_reconciliation(),
    }


def last_reconciliation() -> dict[str, Any] | None:
    """The summary `bcsync reconcile` left (state.reconcile_summary), with its differences counted per type and
    owner team; None: no reconciliation yet."""
    last = read_last(stores().redis, get_settings().key_prefix)
    if last is None:
        return None
    found = Counter((d.get("owner", "-"), d.get("type", "-")) for d in last.get("differences") or []
                    if isinstance(d, dict))
    return last | {"by_type": [{"owner": o, "type": t, "count": n} for (o, t), n in sorted(found.items())]}


def exception_rows(owner: str | None, type_: str | None, status: str, record: str) -> list[dict[str, Any]]:
    wanted = None if status in ("all", "unresolved") else status
    records = stores().exceptions.list(owner=owner or None, type=type_ or None, status=wanted, limit=10**9)
    if status == "unresolved":
        records = [r for r in records if r.status in UNRESOLVED]
    needle = record.strip().lower()
    if needle:
        records = [r for r in records if needle in clean_record_key(r.record_key).lower()]
    return [exception_view(r) for r in records]


def exception_view(r: ExceptionRecord) -> dict[str, Any]:
    kind = EXCEPTION_TYPES.get(r.type)
    details = dict(r.details)
    both = None
    if "desired" in details or "actual" in details:  # a reconciliation's difference: both systems' values
        both = {"erp": details.pop("desired", None), "klaviyo": details.pop("actual", None)}
    return {"id": r.id, "type": r.type, "owner": r.owner, "severity": r.severity, "status": r.status,
            "record": clean_record_key(r.record_key), "record_key": r.record_key, "reason": r.reason,
            "count": r.count, "first_seen": r.first_seen, "last_seen": r.last_seen, "both": both,
            "details": details, "notes": r.notes,
            "summary": kind.summary if kind else "", "meaning": kind.meaning if kind else "",
            "action": kind.action if kind else "See the playbook."}


def dead_letter_rows(lane: str | None, code: str | None) -> list[dict[str, Any]]:
    entries = sorted(stores().dead_letters.list(lane or None, code or None), key=lambda e: e.last_failure)
    return [dead_letter_view(e) for e in entries]


def dead_letter_view(e: DeadLetter) -> dict[str, Any]:
    kept = e.expires_at is None and not e.legacy
    return {"id": e.id, "lane": e.lane, "code": e.code or "-", "kind": e.kind, "task": e.task,
            "records": [clean_record_key(r) for r in e.records], "tries": len(e.attempts),
            "first_failure": e.first_failure, "last_failure": e.last_failure, "reason": e.reason,
            "error": klaviyo_error(e), "expires_at": e.expires_at, "kept": kept, "warned": e.warned_at,
            "operations": e.operations, "args": e.args,
            "attempts": [a.model_dump() for a in e.attempts]}


def record_view(query: str) -> dict[str, Any]:
    """An order number, a customer code or an e-mail: what the fleet and Klaviyo know of it."""
    q = query.strip()
    if not q:
        return {"query": q, "kind": None}
    if "@" in q:
        profiles, error = _klaviyo_profiles(f'equals(email,"{q}")')
        codes = [p["attributes"].get("external_id") for p in profiles if p["attributes"].get("external_id")]
        if codes:
            return customer_view(codes[0], profiles, error) | {"query": q}
        return {"query": q, "kind": "none", "klaviyo_error": error}
    order = order_view(q)
    if order is not None:
        return order | {"query": q}
    customer = customer_view(q)
    if customer["known"]:
        return customer | {"query": q}
    return {"query": q, "kind": "none"}


def order_view(number: str) -> dict[str, Any] | None:
    from workers.audit import order_report  # noqa: PLC0415  the order flow's modules: only when an order is asked

    report = order_report(number)
    if not (report["versions_seen"] or report["computed"] or report["delivered"] or report.get("released")):
        return None
    delivered = {e["key"]: e for e in report["delivered"]}
    events = []
    for key, c in sorted(report["computed"].items(), key=lambda kv: kv[1].get("computed_at", 0)):
        events.append({"key": key, "computed": c, "delivered": delivered.pop(key, None)})
    events += [{"key": key, "computed": {}, "delivered": d} for key, d in delivered.items()]
    return {"kind": "order", "report": report, "events": events}


def customer_view(code: str, profiles: list[dict[str, Any]] | None = None,
                  klaviyo_error: str | None = None) -> dict[str, Any]:
    st = stores()
    record = f"customer:{code}"
    deliveries = [e.model_dump() for e in st.ledger.for_record(record)]
    exceptions = [exception_view(r) for r in st.exceptions.list(status=None, limit=10**9)
                  if clean_record_key(r.record_key) == record]
    dead = [dead_letter_view(e) for e in st.dead_letters.list() if record in (clean_record_key(r) for r in e.records)]
    identity = st.profiles.identities([code]).get(code)
    versions = st.profiles.versions([code]).get(code) or {}
    if profiles is None:
        profiles, klaviyo_error = _klaviyo_profiles(f'equals(external_id,"{code}")')
    known = bool(deliveries or exceptions or dead or versions or profiles or (identity and identity.id))
    return {"kind": "customer", "code": code, "known": known, "deliveries": deliveries, "exceptions": exceptions,
            "dead_letters": dead, "identity": identity.__dict__ if identity else None, "versions": versions,
            "klaviyo": profiles, "klaviyo_error": klaviyo_error}


def _klaviyo_profiles(filter_: str) -> tuple[list[dict[str, Any]], str | None]:
    """What Klaviyo holds now (through the fleet's limiter, on the default lane); an error in words if it
    cannot be read - the page shows the fleet's side anyway."""
    from delivery.runtime import runtime  # noqa: PLC0415  a Klaviyo client only when a record is looked up

    try:
        return list(runtime().client("default").get_profiles(filter_, additional_fields=["subscriptions"])), None
    except (KlaviyoError, OSError) as exc:
        log.warning("console: Klaviyo could not be read: %s", exc)
        return [], f"Klaviyo could not be read ({exc})"
