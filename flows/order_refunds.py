"""Refund ids that survive state loss (docs/order-lifecycle.md, "Refund ids"): which credit memo carries an
order's order-level Refunded Order id is decided once and never again.

Before an order is computed (under its lock, `flows.order_locking`), `with_refund_ids` tells the domain
what its memos were given: the fleet's own record, kept with the order's durable facts (`state.order_facts`:
as long as the customer, purged by its erasure), or, for an order with memos the fleet has no record of
(state lost, an erased customer's order, an order first read with its memos), what Klaviyo holds - read back
by the ledger key every event carries (`bcsync_key`), one `GET /api/events` per customer profile. When
Klaviyo cannot answer, the order is computed without its refunds and synced again a little later. After the
computation the order flow records the ids given with the order's facts, before anything is sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx

from config.mapping import Mapping
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import KlaviyoError, PermanentError
from delivery.identity import look_up
from state.exceptions import ExceptionRegister
from state.order_facts import OrderFactsStore
from state.profiles import ProfileStore
from sync.orders.desired import DeliveredView
from sync.orders.lifecycle import event_profile, exclusion_reason, klaviyo_order_id
from sync.orders.problems import RecordProblem
from sync.orders.records import OrderDocuments
from sync.orders.refund_ids import SentRefunds, sent_refunds

log = logging.getLogger(__name__)
UNREADABLE = "refund_ids_unreadable"  # exception type: Klaviyo refused the read-back (owner: operations)
# (Klaviyo account as the client names it, metric name) -> metric id: found once per process, never changes
_METRIC_IDS: dict[tuple[str, str], str] = {}

# orders -> what Klaviyo holds of each one's refunds (None: Klaviyo could not be asked now)
RecoverRefunds = Callable[[dict[str, OrderDocuments]], dict[str, SentRefunds | None]]


def with_refund_ids(views: dict[str, DeliveredView], docs: dict[str, OrderDocuments], facts: OrderFactsStore,
                    mapping: Mapping, recover: RecoverRefunds | None) -> tuple[dict[str, DeliveredView], list[str]]:
    """The views with each order's refund ids as decided so far, and the orders whose refund ids cannot be
    told now (computed without refunds: sync them again later). `recover` None: nothing to ask (tools and
    tests without Klaviyo), an order the fleet has no record of has sent nothing."""
    kept = facts.refund_ids(docs, mapping)
    out = dict(views)
    unknown: list[str] = []
    ask: dict[str, OrderDocuments] = {}
    for number, record in kept.items():
        view = out[number]
        if record is not None:
            out[number] = view.model_copy(update={
                "refund_memo_with_order_id": record.order_id_memo or view.refund_memo_with_order_id,
                "refund_memos_composite": view.refund_memos_composite | record.composite,
            })
        elif view.refund_memo_with_order_id is None and docs[number].credit_memos:
            ask[number] = docs[number]
    if ask and recover is not None:
        for number, sent in recover(ask).items():
            if sent is None:
                out[number] = out[number].model_copy(update={"refund_ids_unknown": True})
                unknown.append(number)
            else:
                out[number] = out[number].model_copy(update={
                    "refund_memo_with_order_id": sent.order_id_memo,
                    "refund_memos_composite": sent.composite,
                })
    return out, unknown


class KlaviyoRefunds:
    """What Klaviyo holds of orders' Refunded Order events, read by the key each event carries. One
    `GET /api/metrics` per process (the metric's id, once it exists), one lookup of the profiles the fleet
    no longer knows, one `GET /api/events` (profile and metric) per profile."""

    def __init__(self, client: KlaviyoClient, profiles: ProfileStore, mapping: Mapping,
                 exceptions: ExceptionRegister | None = None, facts: OrderFactsStore | None = None) -> None:
        self.client = client
        self.profiles = profiles
        self.mapping = mapping
        self.exceptions = exceptions
        self.facts = facts  # where Klaviyo's holding no refund at all is remembered (None: always read back)

    def __call__(self, orders: dict[str, OrderDocuments]) -> dict[str, SentRefunds | None]:
        wanted = {n: d for n, d in orders.items() if exclusion_reason(d.order, self.mapping) is None}
        out: dict[str, SentRefunds | None] = {n: SentRefunds() for n in orders}
        if not wanted:
            return out
        metric = self.mapping.metrics.refunded_order
        if self.facts is not None and self.facts.refunds_all_recorded(metric):
            return out  # Klaviyo held no refund when the facts began: every refund since is in them, none of these
        generation = self.facts.refunds_generation() if self.facts is not None else None
        try:
            metric_id = self.metric_id()
            if metric_id is None:
                if self.facts is not None and generation is not None:  # no Refunded Order was ever sent here
                    self.facts.mark_refunds_all_recorded(metric, generation)
                return out
            profile_ids = self.profile_ids(wanted)
            events: dict[str, list[dict[str, Any]]] = {}
            for profile_id in sorted(set(profile_ids.values())):
                filter_ = f'equals(profile_id,"{profile_id}"),equals(metric_id,"{metric_id}")'
                events[profile_id] = [(e.get("attributes") or {}).get("event_properties") or {}
                                      for e in self.client.get_events(filter_, page_size=200)]
        except (KlaviyoError, httpx.HTTPError) as exc:
            log.warning("refund ids of %d order(s) cannot be read back from Klaviyo now: %s", len(wanted), exc)
            if isinstance(exc, PermanentError) and self.exceptions is not None:
                for number in wanted:  # a refused read (the key's scopes) needs an operator; a busy one does not
                    self.exceptions.record(UNREADABLE, f"order:{number}", f"Klaviyo refused the read of the "
                                           f"order's refunds ({exc}); its refunds wait and are tried every "
                                           "30 s", details={"order": number})
            return {n: (None if n in wanted else out[n]) for n in orders}
        for number, docs in wanted.items():
            whose = profile_ids.get(number)
            if whose is not None:
                out[number] = sent_refunds(number, klaviyo_order_id(docs.order, self.mapping), metric,
                                           events[whose])
        return out

    def metric_id(self) -> str | None:
        """The Refunded Order metric's id (None: no such event was ever sent, so nothing to read back)."""
        name = self.mapping.metrics.refunded_order
        cache = (repr(self.client), name)
        if cache not in _METRIC_IDS:
            found = next((str(m["id"]) for m in self.client.get_metrics()
                          if (m.get("attributes") or {}).get("name") == name), None)
            if found is None:
                return None  # asked again next time: the metric appears with the first such event
            _METRIC_IDS[cache] = found
        return _METRIC_IDS[cache]

    def profile_ids(self, orders: dict[str, OrderDocuments]) -> dict[str, str]:
        """Order -> the Klaviyo profile its events went to (left out: no such profile, nothing was sent)."""
        codes: dict[str, str] = {}
        emails: dict[str, str] = {}
        for number, docs in orders.items():
            profile = event_profile(docs.order, self.mapping)
            if isinstance(profile, RecordProblem):
                continue
            if profile.get("external_id"):
                codes[number] = profile["external_id"]
            elif profile.get("email"):
                emails[number] = profile["email"]
        known = {code: i.id for code, i in self.profiles.identities(set(codes.values())).items() if i.id}
        missing = set(codes.values()) - set(known)
        if missing:
            found = look_up(self.client, missing)
            self.profiles.remember(found)
            known.update({code: i.id for code, i in found.items() if i.id})
        by_email: dict[str, str] = {}
        unique = sorted(set(emails.values()))
        for start in range(0, len(unique), 100):
            filter_ = f"any(email,{json.dumps(unique[start:start + 100])})"
            for held in self.client.get_profiles(filter_, page_size=100):
                email = str((held.get("attributes") or {}).get("email") or "").lower()
                if email and held.get("id"):
                    by_email.setdefault(email, str(held["id"]))
        out = {n: known[c] for n, c in codes.items() if c in known}
        out.update({n: by_email[e] for n, e in emails.items() if e in by_email})
        return out
