"""Reconciliation (`bcsync reconcile`): read both sides, compute what Klaviyo must hold with the fleet's own
functions, compare (`sync.reconcile.compare`), record each difference as an exception with its owner, and - with
`repair` - re-deliver the fleet-owned ones marked `repair` (batch lane; consent on fast).

Areas: `customers` (profiles), `consent`, `orders` (events, revenue, aggregates) share one pass over Blue Cherry's
customers, a page at a time: the page's Klaviyo profiles are looked up by external_id, e-mail and phone (100 per
call), and for `orders` each profile's events are read. A full run (no `since`, no `sample`) also reads every
Klaviyo profile at the end to find profiles no customer has. `stock` and `catalog` read the styles, the inventory
and Klaviyo's catalog lists.

Resumable: after each customer page the pass's cursor (pages done) is kept in Redis
(`<prefix>:reconcile:cursor:<areas>`); a run stopped half-way continues after the last page it finished, and a
finished run clears it. Idempotent: exceptions are de-duplicated by type and record, repairs claim their keys in
flight like any delivery, and a rerun after a repair finds nothing to repair.

Settling: changes in flight are not drift. Blue Cherry is read first and Klaviyo page by page, so during live
trading a customer created, an order placed or a consent changed while the run goes shows as a difference until
the fleet has delivered it. Such a difference is reported only if it persists:

- an extra profile (a full run) is looked up in Blue Cherry by its external_id first (the customer code, read with
  a `$filter` on it - a record's pkey is Blue Cherry's own number): a customer that exists now was created after
  its page was read - it is compared with the others below, never reported as extra;
- a customer with a difference is *unsettled* when the fleet still had work for it when its page was compared or
  has it at the end of the run (a live holder of one of its operation keys in the in-flight registry - queued,
  being sent, or waiting in the delayed-retry schedule; at the end also an operation in an order bulk buffer), or
  when Blue Cherry changed it (the customer, or an order, pick, invoice or credit memo of it) since the run
  started. Blue Cherry's clock (its HTTP Date) at the run's first read, less the slowest poll interval of those
  resources and `SETTLE_MARGIN_SECONDS` (changes still on their way when the run began), is the bound of one
  filtered read of each resource at the end;
- the unsettled customers are compared once more at the end of the run, both sides read again for them only:
  Blue Cherry as it is now (the changed records over the run's snapshot: `sync.reconcile.settle`), their
  profiles and events in Klaviyo. What differs no more is dropped. What still differs is reported, unless the
  fleet still carries a change of that customer then - work in the registry or a bulk buffer, a change the poller
  has not handed on yet (its last_mod after the resource's watermark), or a change Blue Cherry made while the
  customer was compared again: those are counted as "in flight, not compared" (`Summary.in_flight`, per type;
  the next run compares them), never recorded nor repaired;
- stock and catalog are not compared again: a difference whose repair key is held in the in-flight registry is
  counted "in flight, not compared" instead of reported.

What escapes it: a change the poller has handed on whose message no worker has taken yet (normally well under a
second) may still show as a difference in the re-check.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import redis

from config.mapping import Mapping, get_mapping
from config.settings import Settings, get_settings
from connectors.bluecherry.client import BlueCherryClient
from connectors.klaviyo.read_budget import ReadBudget
from connectors.klaviyo.reads import KlaviyoReads
from flows.order_refunds import with_refund_ids
from state.buffers import kind_buffers
from state.exceptions import ExceptionRegister
from state.inflight import InFlight
from state.keys import RedisKeys
from state.ledger import Ledger
from state.order_facts import OrderFactsStore
from state.reconcile_summary import write_last
from state.watermarks import WatermarkStore
from sync.catalog.records import SkuKey
from sync.catalog.transform import catalog_operations
from sync.customers.profiles import profile_operation
from sync.customers.records import parse_customer
from sync.fields import field_text, normalised
from sync.localtime import filter_start, local_to_utc
from sync.operations import Operation
from sync.orders.aggregates import facts_aggregates
from sync.orders.desired import DeliveredView, desired_operations
from sync.orders.facts import order_facts
from sync.orders.lifecycle import profile_key
from sync.orders.records import (
    CreditMemo,
    Invoice,
    OrderDocuments,
    OrderHeader,
    PickTicket,
    parse_credit_memo,
    parse_invoice,
    parse_order_documents,
    parse_pick,
)
from sync.reconcile import compare as cmp
from sync.reconcile.differences import AREAS, PROFILE_EXTRA, Area, Difference
from sync.reconcile.held import HeldEvent, HeldProfile, HeldVariant
from sync.reconcile.settle import customer_work_keys, merge_documents
from sync.stock.ats import compute_ats, parse_inventory_row, sellable_warehouses
from sync.stock.plan import key_only_external_ids, plan_stock

if TYPE_CHECKING:
    from delivery.runtime import Runtime

Progress = Callable[[str, int], None]  # (what, records compared so far)
CUSTOMER_AREAS: frozenset[Area] = frozenset({"customers", "consent", "orders"})
ORDER_RESOURCES = ("order", "pick", "invoice", "creditmemo")
# a change Blue Cherry made this long (plus the slowest poll interval of the customer and order resources) before
# the run began may still be on its way through the fleet: its differences are re-checked too
SETTLE_MARGIN_SECONDS = 60.0
HOLDERS_PER_READ = 1000  # in-flight registry keys per HMGET
_Doc = TypeVar("_Doc", PickTicket, Invoice, CreditMemo)


@dataclass
class Summary:
    compared: Counter[str] = field(default_factory=Counter)  # area -> records compared
    differences: list[Difference] = field(default_factory=list)
    new: set[tuple[str, str]] = field(default_factory=set)  # (type, record key) not open before this run
    repaired: list[Difference] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    resumed_after: int = 0  # customer pages a previous run had finished
    # type -> differences left out because the fleet still carried the change when they were re-checked
    in_flight: Counter[str] = field(default_factory=Counter)
    rechecked: int = 0  # customers compared again at the end of the run (changes in flight, module docstring)

    @property
    def left_for_people(self) -> list[Difference]:
        repaired = {(x.type, x.record_key) for x in self.repaired}
        return [x for x in self.differences if (x.type, x.record_key) not in repaired]


def carries_refunds(ops: Iterable[Operation], mapping: Mapping) -> bool:
    """Whether repairs re-send a Refunded Order: its id was decided here, not recorded in the order facts."""
    return any(op.kind == "event" and op.payload.get("metric") == mapping.metrics.refunded_order for op in ops)


@dataclass
class Reconciler:
    mapping: Mapping
    bluecherry: BlueCherryClient
    reads: KlaviyoReads
    exceptions: ExceptionRegister | None
    redis: redis.Redis
    key_prefix: str
    facts: OrderFactsStore | None = None
    submit: Callable[[list[Operation]], int] | None = None
    ledger: Ledger | None = None
    page_size: int = 200
    progress: Progress = lambda what, n: None  # noqa: E731
    _metrics: dict[str, str] | None = None
    part: tuple[int, int] | None = None
    inflight: InFlight | None = None  # the fleet's in-flight registry: which customers it still has work for
    _events_by_profile: dict[str, list[HeldEvent]] | None = None  # a full run reads every event once
    _started: datetime | None = None  # Blue Cherry's clock at the run's first read
    _unsettled: set[str] = field(default_factory=set)  # customers the fleet had work for when compared
    _event_keys: dict[str, set[str]] = field(default_factory=dict)  # customer -> its orders' event keys

    # --- the run ---------------------------------------------------------------------------------

    def run(self, areas: Iterable[Area], *, since: str | None = None, sample: int | None = None,
            repair: bool = False, dry_run: bool = False, restart: bool = False,
            part: tuple[int, int] | None = None) -> Summary:
        """`part` (i, n): only the customers whose code falls in slice i of n (the nightly rolling slice)."""
        self.part = part
        self._started, self._unsettled, self._event_keys = None, set(), {}
        chosen = [a for a in AREAS if a in set(areas)]
        summary = Summary()
        started = time.monotonic()
        # a repair's version: the one last delivered under its key when the ledger has it (never newer than a
        # change still on its way), else now (`sync.changes` versions: '<UTC ISO>#<sequence>')
        version = datetime.now(UTC).isoformat() + "#0"
        if CUSTOMER_AREAS & set(chosen):
            self._customer_pass(set(chosen), summary, since, sample, version, restart)
        if "stock" in chosen or "catalog" in chosen:
            self._catalog_pass(set(chosen), summary, since)
        for diff in summary.differences:
            if self.exceptions is not None and self.exceptions.get(diff.type, diff.record_key) is None:
                summary.new.add((diff.type, diff.record_key))
            if not dry_run and self.exceptions is not None:
                self.exceptions.record(diff.type, diff.record_key, diff.reason, severity="warning",
                                       details=_plain(diff.details()))
        if repair and not dry_run and self.submit is not None:
            owned = [x for x in summary.differences if x.fleet_owned]
            ops = {op.key: op for x in owned for op in x.repair}
            if self.ledger is not None:
                held = self.ledger.delivered(list(ops))
                ops = {k: op.model_copy(update={"version": held[k].version}) if k in held and held[k].version
                       and op.kind != "event" else op for k, op in ops.items()}
            if ops:
                if self.facts is not None and carries_refunds(ops.values(), self.mapping):
                    self.facts.void_refunds_recorded()  # refund ids sent without being recorded in the facts
                self.submit(list(ops.values()))
            summary.repaired = owned
        summary.requests = Counter(self.reads.requests)
        summary.seconds = time.monotonic() - started
        if not dry_run:  # the console's Today page shows the last run (state/reconcile_summary.py)
            write_last(self.redis, self.key_prefix, summary_json(summary, self.mapping), list(chosen))
        return summary

    # --- customers, consent, orders --------------------------------------------------------------

    def _cursor_key(self, areas: set[Area]) -> str:
        return f"{self.key_prefix}:reconcile:cursor:{','.join(a for a in AREAS if a in areas)}"

    def _customer_pass(self, areas: set[Area], summary: Summary, since: str | None, sample: int | None,
                       version: str, restart: bool) -> None:
        mapping = self.mapping
        cursor_key = self._cursor_key(areas)
        if restart or sample is not None:
            self.redis.delete(cursor_key)
        done = int(json.loads(self.redis.get(cursor_key) or "{}").get("pages", 0))
        summary.resumed_after = done
        orders = self._orders() if areas & {"orders", "customers"} else {}
        by_customer: dict[str, list[OrderDocuments]] = defaultdict(list)
        for docs in orders.values():
            by_customer[docs.order.customer].append(docs)
        known: set[str] = set()
        taken = 0
        complete = since is None and sample is None and self.part is None
        self._events_by_profile = self._every_event() if complete and areas & {"orders", "customers"} else None
        page_no = 0
        compared: set[str] = set()
        for page in self.bluecherry.iter_pages(mapping.resources.customer, since, page_size=self.page_size):
            self._mark_started()
            page_no += 1
            wanted = self._desired_customers(page, known, version)
            if sample is not None:
                wanted = wanted[: max(0, sample - taken)]
            if page_no <= done:
                continue  # a previous run compared this page
            if wanted:
                self._customer_page(wanted, areas, by_customer, summary, version)
                taken += len(wanted)
                compared.update(w.customer.code for w in wanted)
                self.progress("customers", taken)
            self.redis.set(cursor_key, json.dumps({"pages": page_no}), ex=7 * 86400)
            if sample is not None and taken >= sample:
                break
        if since is not None and sample is None and "orders" in areas:
            self._changed_orders_customers(since, compared, areas, by_customer, summary, version)
        extras = self._extra_profiles(known) if complete and "customers" in areas else []
        self._settle(areas, summary, extras, orders, version)
        self.redis.delete(cursor_key)

    def _every_event(self) -> dict[str, list[HeldEvent]]:
        """Every Klaviyo event by profile: one read of them all on a full run."""
        names = self._metric_names()
        out: dict[str, list[HeldEvent]] = defaultdict(list)
        for resource in self.reads.all_events():
            event = HeldEvent.from_resource(resource, names)
            if event.profile_id:
                out[event.profile_id].append(event)
        return out

    def _changed_orders_customers(self, since: str, compared: set[str], areas: set[Area],
                                  by_customer: dict[str, list[OrderDocuments]], summary: Summary,
                                  version: str) -> None:
        """With `since`, the customers whose orders changed since then are compared too (their own record may be
        older), read by code, 100 at a time."""
        changed = sorted({d.order.customer for d in self._changed_orders(since)} - compared)
        for start in range(0, len(changed), 100):
            records = [r for code in changed[start:start + 100] if (r := self._customer(code)) is not None]
            wanted = self._desired_customers(records, set(), version)
            if wanted:
                self._customer_page(wanted, areas, by_customer, summary, version)

    def _customer(self, code: str) -> dict[str, Any] | None:
        """Customer `code` as Blue Cherry has it now, or None: one read filtered on the code (the record's pkey
        is Blue Cherry's own number, not the code), as `bcsync erase` finds a customer."""
        mapping = self.mapping
        quoted = code.replace("'", "''")
        for page in self.bluecherry.iter_pages(mapping.resources.customer, None,
                                               extra_filter=f"{mapping.fields.customer.code} eq '{quoted}'"):
            for raw in page:
                if field_text(normalised(raw, mapping.fields.customer), mapping.fields.customer.code) == code:
                    return raw
        return None

    def _changed_orders(self, since: str) -> Iterator[OrderDocuments]:
        for raw in self._all(self.mapping.resources.order, since):
            parsed = parse_order_documents(raw, self.mapping)
            if parsed.documents is not None:
                yield parsed.documents

    def _desired_customers(self, page: list[dict[str, Any]], known: set[str],
                           version: str) -> list[cmp.DesiredCustomer]:
        """The page's customers in scope, each with the profile upsert the fleet writes; `known` gathers every
        code Blue Cherry has (invalid ones too: their profiles are tolerated), erased ones left out."""
        mapping = self.mapping
        wanted = []
        for raw in page:
            code = field_text(normalised(raw, mapping.fields.customer), mapping.fields.customer.code)
            if code:
                known.add(code)
            if code in mapping.lifecycle.catch_all_customers or not self._in_part(code):
                continue
            c = parse_customer(raw, mapping).customer
            if c is None:
                continue  # invalid: the poller's invalid_record says why
            if c.delete_flag:
                known.discard(c.code)  # erased: a profile of it is extra
                continue
            wanted.append(cmp.DesiredCustomer(c, profile_operation(c, mapping, "full", "batch", version)))
        return wanted

    def _in_part(self, code: str) -> bool:
        return self.part is None or zlib.crc32(code.encode()) % self.part[1] == self.part[0]

    def _customer_page(self, wanted: list[cmp.DesiredCustomer], areas: set[Area],
                       by_customer: dict[str, list[OrderDocuments]], summary: Summary, version: str) -> None:
        held: dict[str, HeldProfile] = {}
        for name, values in (("external_id", [w.customer.code for w in wanted]),
                             ("email", [w.customer.email for w in wanted]),
                             ("phone_number", [w.customer.phone_e164 or "" for w in wanted])):
            for resource in self.reads.profiles_by(name, values):
                profile = HeldProfile.from_resource(resource)
                held[profile.id] = profile
        events = self._held_events(held, by_customer) if areas & {"orders", "customers"} else []
        order_customer = {n: d.order.customer for ds in by_customer.values() for d in ds for n in [d.order.number]}
        event_profiles: dict[str, set[str]] = defaultdict(set)
        for event in events:
            if event.order and event.order in order_customer and event.profile_id:
                event_profiles[order_customer[event.order]].add(event.profile_id)
        diffs, match = cmp.compare_profiles(wanted, list(held.values()), complete=False, known_codes=set(),
                                            event_profiles=event_profiles)
        # a missing profile's repair creates an empty one: its consent, events and aggregates are compared
        # against that, so the same repair brings them back (a merged customer's are left to people)
        for x in diffs:
            if x.type == "recon_profile_missing" and x.customer:
                match.own[x.customer] = HeldProfile(id="")
        found: list[Difference] = []
        if "customers" in areas:
            found += diffs
            summary.compared["customers"] += len(wanted)
        if "consent" in areas:
            for w in wanted:
                found += cmp.compare_consent(w.customer, match.own.get(w.customer.code), self.mapping, version)
            summary.compared["consent"] += len(wanted)
        if "orders" in areas:
            found += self._orders_of(wanted, match, by_customer, events, summary, version)
        summary.differences += found
        self._note_unsettled(wanted, found)

    def _note_unsettled(self, wanted: list[cmp.DesiredCustomer], found: list[Difference]) -> None:
        """The page's customers with a difference the fleet has work for now (its envelopes in the registry):
        re-checked at the end of the run. Event keys are kept only of customers with a difference."""
        differing = {x.customer for x in found if x.customer}
        for w in wanted:
            if w.customer.code not in differing:
                self._event_keys.pop(w.customer.code, None)
        self._unsettled |= self._busy(differing, buffers=False)

    def _held_events(self, held: dict[str, HeldProfile],
                     by_customer: dict[str, list[OrderDocuments]]) -> list[HeldEvent]:
        """The events of every profile whose customer has orders (one read each, 200 per page; on a full run
        from the one read of every event)."""
        with_orders = {pid for pid, p in held.items() if p.external_id and by_customer.get(p.external_id)}
        if self._events_by_profile is not None:
            return [e for pid in sorted(with_orders) for e in self._events_by_profile.get(pid, [])]
        names = self._metric_names()
        return [HeldEvent.from_resource(e, names) for pid in sorted(with_orders)
                for e in self.reads.events_of_profile(pid)]

    def _orders_of(self, wanted: list[cmp.DesiredCustomer], match: cmp.ProfileMatch,
                   by_customer: dict[str, list[OrderDocuments]], events: list[HeldEvent], summary: Summary,
                   version: str) -> list[Difference]:
        mapping = self.mapping
        desired: list[cmp.DesiredOrder] = []
        out: list[Difference] = []
        for w in wanted:
            code = w.customer.code
            docs = {d.order.number: d for d in by_customer.get(code, [])}
            if not docs or code not in match.own:
                continue  # no profile: the customers area says so; its events cannot be matched
            views = {n: DeliveredView() for n in docs}
            if self.facts is not None:
                views, _ = with_refund_ids(views, docs, self.facts, mapping, None)
            for number, d in sorted(docs.items()):
                result = desired_operations(d, views[number], mapping)
                ops = tuple(op for op in result.operations if op.kind == "event")
                if ops:
                    desired.append(cmp.DesiredOrder(number, code, ops))
                    self._event_keys.setdefault(code, set()).update(op.key for op in ops)
            key = f"external_id:{code}"
            facts = [f for d in docs.values() if profile_key(d.order, mapping) == key
                     and (f := order_facts(d, mapping, key)) is not None]
            aggregates = facts_aggregates(facts, mapping)
            op = Operation(kind="profile_upsert", key=f"profile-aggregates:{key}", lane="batch",
                           payload={"external_id": code, "properties": aggregates}, version=version,
                           record=f"customer-aggregates:{key}", profile_of=code)
            out += cmp.compare_aggregates(code, aggregates, match.own[code], op)
        out += cmp.compare_orders(desired, events, mapping)
        summary.compared["orders"] += len(desired)
        return out

    def _extra_profiles(self, known: set[str]) -> list[Difference]:
        held = [HeldProfile.from_resource(r) for r in self.reads.all_profiles()]
        diffs, _ = cmp.compare_profiles([], [p for p in held if p.external_id], complete=True, known_codes=known)
        return diffs

    def _metric_names(self) -> dict[str, str]:
        if self._metrics is None:
            self._metrics = self.reads.metric_names()
        return self._metrics

    def _orders(self) -> dict[str, OrderDocuments]:
        """Every order of Blue Cherry with its documents, parsed by the order flow's own readers."""
        mapping, r = self.mapping, self.mapping.resources
        children: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for name, resource, parse in (("picks", r.pick, parse_pick), ("invoices", r.invoice, parse_invoice),
                                      ("credit_memos", r.creditmemo, parse_credit_memo)):
            for raw in self._all(resource):
                try:
                    children[parse(raw, mapping).order][name].append(raw)
                except ValueError:
                    continue  # invalid: the poller reports it
        out: dict[str, OrderDocuments] = {}
        for raw in self._all(r.order):
            kids = _kids(children, raw, mapping)
            parsed = parse_order_documents(raw, mapping, kids.get("picks", ()), kids.get("invoices", ()),
                                           kids.get("credit_memos", ()))
            if parsed.documents is not None:
                out[parsed.documents.order.number] = parsed.documents
        return out

    def _all(self, resource: Any, since: str | None = None) -> Iterator[dict[str, Any]]:
        for page in self.bluecherry.iter_pages(resource, since, page_size=self.page_size):
            self._mark_started()
            yield from page

    def _mark_started(self) -> None:
        """The run began when Blue Cherry answered its first read, by Blue Cherry's clock (its HTTP Date; the
        fleet's when it sends none): what 'changed since the run started' is measured against."""
        if self._started is None:
            self._started = self.bluecherry.server_time or datetime.now(UTC)

    # --- settling: changes in flight are not drift (module docstring) --------------------------

    def _settle(self, areas: set[Area], summary: Summary, extras: list[Difference],
                snapshot: dict[str, OrderDocuments], version: str) -> None:
        """Extra profiles whose customer exists now join the unsettled customers; those are compared once more
        against both sides as they are now, and what still differs is reported unless the fleet still carries a
        change of that customer (then counted in `summary.in_flight`)."""
        found_now = self._customers_now(extras)
        extras = [x for x in extras if x.customer not in found_now]
        erasing = self._busy({x.customer for x in extras if x.customer}, buffers=True)  # an erasure on its way
        for x in extras:
            if x.customer in erasing:
                summary.in_flight[x.type] += 1
            else:
                summary.differences.append(x)
        differing = {x.customer for x in summary.differences if x.customer and x.type != PROFILE_EXTRA}
        if not differing and not found_now:
            return
        orders_too = bool(areas & {"orders", "customers"})
        changes = self._changes_since(self._since_local(), snapshot, orders_too)
        mark = self.bluecherry.server_time  # changes Blue Cherry makes from here on are not in `changes`
        unsettled = differing & (self._unsettled | changes.touched | self._busy(differing, buffers=True))
        if not unsettled and not found_now:
            return
        fresh = {**snapshot, **merge_documents(snapshot, changes.headers, changes.picks, changes.invoices,
                                                  changes.memos)}
        redone = self._recheck(unsettled, found_now, changes, fresh, areas, summary, version)
        summary.differences = [x for x in summary.differences if x.customer not in unsettled]
        # still in flight: work held now, a change not handed on yet, or one made while they were compared again
        later = self._changes_since(filter_start(mark, 1.0, self._zone()) if mark else self._since_local(), fresh,
                                    orders_too)
        left = {x.customer for x in redone if x.customer}
        still = self._busy(left, buffers=True) | later.touched | self._unpolled(changes) | self._unpolled(later)
        for x in redone:
            if x.customer in still:
                summary.in_flight[x.type] += 1
            else:
                summary.differences.append(x)
        summary.rechecked += len(unsettled | set(found_now))

    def _recheck(self, unsettled: set[str], found_now: dict[str, dict[str, Any]], changes: _Changes,
                 fresh: dict[str, OrderDocuments], areas: set[Area], summary: Summary,
                 version: str) -> list[Difference]:
        """The customers compared again, both sides read now: their records (as changed, else by code), their
        orders from `fresh`, their profiles and events in Klaviyo. Customers found only now count as compared."""
        records = [raw for code in sorted(unsettled - set(found_now))
                   if (raw := changes.customers.get(code) or self._customer(code)) is not None]
        codes = unsettled | set(found_now)
        by_customer: dict[str, list[OrderDocuments]] = defaultdict(list)
        for docs in fresh.values():
            if docs.order.customer in codes:
                by_customer[docs.order.customer].append(docs)
        again, new = Summary(), Summary()
        kept, self._events_by_profile = self._events_by_profile, None  # read each profile's events again
        try:
            for group, into in ((records, again), (list(found_now.values()), new)):
                wanted = self._desired_customers(group, set(), version)
                for start in range(0, len(wanted), 100):
                    self._customer_page(wanted[start:start + 100], areas, by_customer, into, version)
        finally:
            self._events_by_profile = kept
        summary.compared.update(new.compared)
        return again.differences + new.differences

    def _customers_now(self, extras: list[Difference]) -> dict[str, dict[str, Any]]:
        """The customers Blue Cherry has now (not erased) among the external_ids of extra profiles, each read by
        its code: created after their page was read."""
        out: dict[str, dict[str, Any]] = {}
        for code in sorted({x.customer for x in extras if x.customer}):
            raw = self._customer(code)
            known: set[str] = set()
            if raw is not None:
                self._desired_customers([raw], known, "")
                if code in known:
                    out[code] = raw
        return out

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.mapping.tenant.timezone)

    def _since_local(self) -> str:
        """Blue Cherry's local time the run's changes are read from: the run's start less the slowest poll
        interval of the customer and order resources and SETTLE_MARGIN_SECONDS."""
        r = self.mapping.resources
        lookback = max(getattr(r, name).poll_seconds for name in ("customer", *ORDER_RESOURCES))
        return filter_start(self._started or datetime.now(UTC), lookback + SETTLE_MARGIN_SECONDS, self._zone())

    def _changes_since(self, since: str, orders: dict[str, OrderDocuments], orders_too: bool) -> _Changes:
        """Every customer, order, pick, invoice and credit memo Blue Cherry changed since `since` (tenant-local),
        one filtered read of each; documents are placed by their order (`orders`, or a changed header)."""
        mapping, r = self.mapping, self.mapping.resources
        out = _Changes()
        for raw in self._all(r.customer, since):
            code = field_text(normalised(raw, mapping.fields.customer), mapping.fields.customer.code)
            if code:
                out.customers[code] = raw
                out.stamps.append(("customer", code, self._instant(raw.get(r.customer.last_mod), "customer")))
        if not orders_too:
            return out
        for raw in self._all(r.order, since):
            parsed = parse_order_documents(raw, mapping)
            if parsed.documents is not None:
                header = parsed.documents.order
                out.headers.append(header)
                out.stamps.append(("order", header.customer, header.last_mod))
        owner = {number: d.order.customer for number, d in orders.items()}
        owner.update({h.number: h.customer for h in out.headers})
        out.picks = self._changed_documents("pick", parse_pick, since, owner, out)
        out.invoices = self._changed_documents("invoice", parse_invoice, since, owner, out)
        out.memos = self._changed_documents("creditmemo", parse_credit_memo, since, owner, out)
        return out

    def _changed_documents(self, name: str, parse: Callable[[Any, Mapping], _Doc], since: str,
                           owner: dict[str, str], out: _Changes) -> list[_Doc]:
        """The documents of `name` changed since `since` whose order is known (`owner`: order -> customer)."""
        kept: list[_Doc] = []
        for raw in self._all(getattr(self.mapping.resources, name), since):
            try:
                doc = parse(raw, self.mapping)
            except ValueError:
                continue  # invalid: the poller reports it
            if doc.order in owner:
                kept.append(doc)
                out.stamps.append((name, owner[doc.order], doc.last_mod))
        return kept

    def _instant(self, text: Any, resource: str) -> datetime | None:
        try:
            return local_to_utc(str(text), self._zone(), self.mapping.date_formats(resource)) if text else None
        except ValueError:
            return None

    def _unpolled(self, changes: _Changes) -> set[str]:
        """Customers with a change the poller has not handed on yet: its last_mod after the resource's
        watermark (no watermark: the poller never read the resource, nothing to wait for)."""
        marks = WatermarkStore(self.redis, self.key_prefix).all()
        return {code for resource, code, at in changes.stamps
                if at is not None and resource in marks and at > marks[resource]}

    def _busy(self, codes: set[str], *, buffers: bool) -> set[str]:
        """The customers among `codes` the fleet still has work for: a live holder of one of their operation
        keys in the in-flight registry (queued, being sent, or a delayed retry) and, with `buffers`, an
        operation of theirs waiting in an order bulk buffer."""
        if not codes:
            return set()
        keys = {code: customer_work_keys(code) | self._event_keys.get(code, set()) for code in codes}
        held = self._held({k for ks in keys.values() for k in ks}, buffers=buffers)
        return {code for code, ks in keys.items() if ks & held}

    def _held(self, keys: set[str], *, buffers: bool) -> set[str]:
        """The keys among `keys` the fleet holds: in the in-flight registry (a holder not heard of for the
        registry's `stale_after` is lost, not in flight) and, with `buffers`, in the order bulk buffers."""
        out: set[str] = set()
        if self.inflight is not None and keys:
            now, ordered = time.time(), sorted(keys)
            for start in range(0, len(ordered), HOLDERS_PER_READ):
                holders = self.inflight.holders(ordered[start:start + HOLDERS_PER_READ])
                out |= {k for k, h in holders.items() if h.at >= now - self.inflight.stale_after}
        if buffers and keys:
            out |= keys & self._buffered()
        return out

    def _buffered(self) -> set[str]:
        """The operation keys waiting in the order bulk buffers (live and backfill; every kind's list)."""
        names = RedisKeys(self.key_prefix)
        out: set[str] = set()
        for buffer in (names.order_bulk_buffer, names.backfill_bulk_buffer):
            for key in kind_buffers(buffer).values():
                for raw in self.redis.lrange(key, 0, -1):
                    try:
                        out.add(str(json.loads(raw)["key"]))
                    except (ValueError, KeyError, TypeError):
                        continue
        return out

    # --- stock and catalog -----------------------------------------------------------------------

    def _catalog_pass(self, areas: set[Area], summary: Summary, since: str | None) -> None:
        mapping = self.mapping
        styles = list(self._all(mapping.resources.style))
        plan = catalog_operations(styles, mapping, lane="batch")
        if "catalog" in areas:
            items = {op.payload["external_id"]: op for op in plan.operations if op.kind == "catalog_item_upsert"}
            variants = {op.payload["external_id"]: op for op in plan.operations
                        if op.kind == "catalog_variant_upsert"}
            held_items = {str((e.get("attributes") or {}).get("external_id")) for e in self.reads.catalog_items()}
            held_variants = {str((e.get("attributes") or {}).get("external_id"))
                             for e in self.reads.catalog_variants()}
            self._report_settled(cmp.compare_catalog(items, variants, held_items, held_variants), summary)
            summary.compared["catalog"] += len(items) + len(variants)
        if "stock" in areas:
            self._report_settled(self._stock(plan.variant_ids, summary, since), summary)

    def _report_settled(self, diffs: list[Difference], summary: Summary) -> None:
        """Stock and catalog differences, not compared again: one whose repair key the in-flight registry holds
        (the fleet is sending that figure or entry now) is counted in flight instead of reported."""
        held = self._held({op.key for x in diffs for op in x.repair}, buffers=False)
        for x in diffs:
            if any(op.key in held for op in x.repair):
                summary.in_flight[x.type] += 1
            else:
                summary.differences.append(x)

    def _stock(self, variant_ids: dict[str, str], summary: Summary, since: str | None) -> list[Difference]:
        mapping = self.mapping
        inv = mapping.resources.inventory
        rows = [parse_inventory_row(raw, mapping.fields.inventory, inv.last_mod, mapping.date_formats("inventory"))
                for raw in self._all(inv)]
        sellable = sellable_warehouses(mapping.stock, self.bluecherry.locations(), mapping.fields.location)
        figures = compute_ats(rows, sellable, mapping.stock.formula)
        by_key = key_only_external_ids(mapping.catalog)

        def external_id(sku: SkuKey, upc: str) -> str | None:
            return variant_ids.get(sku.text) or (by_key(sku, upc) if by_key else None)

        plan = plan_stock(figures.values(), mapping.stock, external_id)
        desired = {op.payload["external_id"]: (int(op.payload["inventory_quantity"]),
                                               op.model_copy(update={"lane": "batch"})) for op in plan.operations}
        held = {v.external_id: v for v in (HeldVariant.from_resource(e) for e in self.reads.catalog_variants())}
        summary.compared["stock"] += len(desired)
        return cmp.compare_stock(desired, held)


def summary_json(summary: Summary, mapping: Mapping) -> dict[str, Any]:
    """The summary as data: `bcsync reconcile --json`, and what the console shows of the last run."""
    owners = mapping.owners
    return {
        "compared": dict(summary.compared),
        "differences": [{"type": d.type, "owner": owners.owner_of(d.type), "record_key": d.record_key,
                         "customer": d.customer, "reason": d.reason, "desired": d.desired, "actual": d.actual,
                         "fleet_repairs": d.fleet_owned, "new": (d.type, d.record_key) in summary.new}
                        for d in summary.differences],
        "repaired": len(summary.repaired),
        "left_for_people": len(summary.left_for_people),
        "requests": dict(summary.requests),
        "seconds": round(summary.seconds, 3),
        "resumed_after_pages": summary.resumed_after,
        # type -> differences not reported: the fleet still carried the change when they were re-checked
        "in_flight_not_compared": dict(summary.in_flight),
        "rechecked": summary.rechecked,
    }


def build_reconciler() -> Reconciler:
    """The reconciler of this fleet: its settings, mapping, Blue Cherry client, the batch lane's Klaviyo client
    behind the reconciliation read budget, the exception register, the ledger and delivery."""
    from delivery.publish import submit  # noqa: PLC0415  the Celery app: only when a run is built
    from delivery.runtime import runtime  # noqa: PLC0415

    settings, mapping, rt = get_settings(), get_mapping(), runtime()
    return reconciler_for(settings, mapping, rt, BlueCherryClient.from_settings(settings, mapping), submit)


def reconciler_for(settings: Settings, mapping: Mapping, rt: Runtime, bluecherry: BlueCherryClient,
                   submit: Callable[[list[Operation]], int] | None) -> Reconciler:
    """A reconciler over these settings, mapping, runtime and Blue Cherry client."""
    reads = KlaviyoReads(rt.client("batch"), ReadBudget(rt.limiter, settings.reconcile_read_share))
    return Reconciler(mapping, bluecherry, reads, rt.exceptions, rt.redis, settings.key_prefix,
                      facts=OrderFactsStore(rt.redis, settings.key_prefix), submit=submit, ledger=rt.ledger,
                      inflight=rt.stores.inflight)


def scheduled(areas: list[Area], recent: bool, nightly: bool, now: float | None = None) -> Summary:
    """Beat's run (tasks/reconcile.py): `recent` compares what Blue Cherry changed within
    BCSYNC_RECONCILE_RECENT_WINDOW_SECONDS; `nightly` today's slice of the customers (day number mod
    BCSYNC_RECONCILE_FULL_DAYS), so every customer is compared once every N days. Repairs the areas of
    BCSYNC_RECONCILE_AUTO_REPAIR by itself."""
    settings = get_settings()
    now = time.time() if now is None else now
    since = None
    if recent:
        zone = ZoneInfo(get_mapping().tenant.timezone)
        window_start = datetime.fromtimestamp(now - settings.reconcile_recent_window_seconds, zone)
        since = window_start.strftime("%Y-%m-%d %H:%M:%S")
    days = settings.reconcile_full_days
    part = (int(now // 86400) % days, days) if nightly and days > 1 else None
    auto = {a.strip() for a in settings.reconcile_auto_repair.split(",") if a.strip()}
    reconciler = build_reconciler()
    try:
        summary = Summary()
        for area in areas:  # one area at a time: each repairs by its own setting
            one = reconciler.run([area], since=since, repair=area in auto, part=part, restart=True)
            summary.compared.update(one.compared)
            summary.differences += one.differences
            summary.repaired += one.repaired
            summary.new |= one.new
            summary.requests.update(one.requests)
            summary.seconds += one.seconds
            summary.in_flight.update(one.in_flight)
            summary.rechecked += one.rechecked
        write_last(reconciler.redis, reconciler.key_prefix, summary_json(summary, reconciler.mapping), list(areas))
        return summary
    finally:
        reconciler.bluecherry.close()


@dataclass
class _Changes:
    """What Blue Cherry changed since a moment: customers by code, parsed headers and documents, and for each
    record (resource, its customer, its last_mod instant)."""

    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: list[OrderHeader] = field(default_factory=list)
    picks: list[PickTicket] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    memos: list[CreditMemo] = field(default_factory=list)
    stamps: list[tuple[str, str, datetime | None]] = field(default_factory=list)

    @property
    def touched(self) -> set[str]:
        return {code for _, code, _ in self.stamps}


def _kids(children: dict[str, dict[str, list[dict[str, Any]]]], raw: dict[str, Any],
          mapping: Mapping) -> dict[str, list[dict[str, Any]]]:
    number = field_text(normalised(raw, mapping.fields.order), mapping.fields.order.number)
    return dict(children.get(number, {}))


def _plain(value: Any) -> Any:
    """Details as JSON can hold them (Decimals and dates as text)."""
    return json.loads(json.dumps(value, default=str))
