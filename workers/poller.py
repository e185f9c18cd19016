"""`bcsync poller`: reads every resource's changes from Blue Cherry and hands them to the queues.

Per resource and cycle: read ``last_mod ge <watermark - overlap>`` page by page; validate; classify each
record against its stored fingerprint; emit the changes of the page; only then store their fingerprints;
after the whole window was read consistently, advance the watermark. A multi-page read is repeated until a
pass finds nothing new (records that moved between pages while we paged are caught by the repeat). Only
the holder of a Redis lock polls; a second poller waits and takes over when the lock expires. See
docs/poller.md for the reasoning.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis
import typer
from redis.exceptions import LockError

import config.celery
from config.mapping import Mapping, get_mapping
from config.settings import Settings, get_settings
from config.task_names import HANDLE_CHANGE, HANDLE_CUSTOMER_CHANGES, RELEASE_STOCK_SCAN
from connectors.bluecherry.client import MAX_PAGE_SIZE, BlueCherryClient
from connectors.bluecherry.errors import BlueCherryAuthError, BlueCherryError, BlueCherryRetryableError
from state.factory import stores
from state.fingerprints import FingerprintStore
from state.keys import RedisKeys
from state.poller_health import PollerHealth
from state.stock_scans import ExpectedRow, StockScans, row_entry
from state.watermarks import WatermarkStore
from sync.catalog.records import RecordError
from sync.changes import ChangeEvent, classify
from sync.customers.consent_changes import classify_consent
from sync.customers.records import parse_customer
from sync.fields import field_text, normalised
from sync.fingerprints import StoredFingerprint
from sync.localtime import filter_start, local_to_utc
from sync.misfits import Misfit, record_misfits, tried, unparseable_date
from sync.record_keys import record_key
from sync.stock.ats import parse_inventory_row

log = logging.getLogger("bcsync.poller")

Emit = Callable[[list[ChangeEvent]], None]
Release = Callable[[list[str]], None]  # stock scans just closed, to be swept
MAX_PASSES = 4


@dataclass
class Verdict:
    """What a validator found in one raw record: the problems that make it unusable (none: fine), and the mapping
    problems behind some of them (`sync.misfits`: a status the mapping does not name, a date no format reads)."""

    problems: list[str]
    misfits: list[Misfit] = field(default_factory=list)


Validator = Callable[[dict[str, Any], Mapping], Verdict]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ExceptionSink(Protocol):
    def record(self, type: str, record_key: str, reason: str, severity: Any = "error",
               details: dict[str, Any] | None = None) -> Any: ...


class LockLost(RuntimeError):
    """Another poller holds the lock now: stop emitting at once."""


def validate_customer(record: dict[str, Any], mapping: Mapping) -> Verdict:
    parsed = parse_customer(record, mapping)
    return Verdict(parsed.problems, parsed.misfits)


def is_catch_all_customer(record: dict[str, Any], mapping: Mapping) -> bool:
    """The ERP's catch-all accounts (web guest orders): not a person, no profile, not an error."""
    fields = mapping.fields.customer
    return field_text(normalised(record, fields), fields.code) in mapping.lifecycle.catch_all_customers


def customer_consent_readable(record: dict[str, Any], mapping: Mapping) -> bool:
    """An invalid customer whose consent fields can still be read: its consent change must not be blocked."""
    return parse_customer(record, mapping).consent is not None


VALIDATORS: dict[str, Validator] = {"customer": validate_customer}
# resource -> does an invalid record still carry a consent change to classify (see `_consent_events`)
CONSENT_READABLE: dict[str, Callable[[dict[str, Any], Mapping], bool]] = {"customer": customer_consent_readable}
SKIP: dict[str, Callable[[dict[str, Any], Mapping], bool]] = {"customer": is_catch_all_customer}
# resources whose rows belong to a stock scan (state/stock_scans.py), with the scan's source name: a SKU's
# figure waits until every row of it the cycle delivers is stored
SCANNED = {"inventory": "poll:inventory"}


@dataclass
class CycleResult:
    resource: str
    passes: int = 0
    pages: int = 0
    records: int = 0
    emitted: int = 0
    invalid: int = 0
    stable: bool = False
    watermark: datetime | None = None
    newest: datetime | None = None  # the newest last_mod read
    aborted: bool = False

    @property
    def held(self) -> bool:
        """The cycle read changes but left the watermark behind the newest (the window still moving)."""
        return self.newest is not None and (self.watermark is None or self.watermark < self.newest)


@dataclass
class _Pass:
    pages: int = 0
    records: int = 0
    emitted: int = 0
    invalid: int = 0
    newest: datetime | None = None
    earliest_touched: datetime | None = None  # lowest last_mod (old version) of records changed in it


def celery_emit(events: list[ChangeEvent]) -> None:
    """Default emit: customers go to `tasks.customers` (one message per lane and page), other resources to
    `bcsync.handle_change`. Returns once the broker holds every message."""
    celery_app = config.celery.app  # looked up per call: tests/integration/customers swaps the app for its fleet's
    customers: dict[str, list[dict[str, Any]]] = {}
    with celery_app.producer_or_acquire() as producer:
        for event in events:
            body = event.model_dump(mode="json")
            if event.resource == "customer":
                customers.setdefault(event.lane, []).append(body)
            else:
                celery_app.send_task(HANDLE_CHANGE, args=[body], queue=event.lane, producer=producer)
        for lane, bodies in customers.items():
            celery_app.send_task(HANDLE_CUSTOMER_CHANGES, args=[bodies], queue=lane, producer=producer)


def celery_release(scans: list[str]) -> None:
    """Default release: one `bcsync.stock.release_scan` per closed stock scan, on the lane of its rows."""
    celery_app = config.celery.app
    for scan in scans:
        celery_app.send_task(RELEASE_STOCK_SCAN, args=[scan], queue="fast")


@dataclass
class Poller:
    client: BlueCherryClient
    redis: redis.Redis
    emit: Emit
    exceptions: ExceptionSink
    mapping: Mapping = field(default_factory=get_mapping)
    settings: Settings = field(default_factory=get_settings)
    resources: Sequence[str] = ()
    lock_ttl: float | None = None
    overlap_seconds: float | None = None
    max_passes: int = MAX_PASSES
    stop_event: threading.Event = field(default_factory=threading.Event)
    # When a page was read (aware UTC): it places a last_mod of a repeated hour in the change version.
    clock: Callable[[], datetime] = utc_now
    release: Release = celery_release
    scans: StockScans | None = None

    def __post_init__(self) -> None:
        prefix = self.settings.key_prefix
        self.fingerprints = FingerprintStore(self.redis, prefix, self.settings.fingerprint_ttl_days)
        self.watermarks = WatermarkStore(self.redis, prefix)
        self.health = PollerHealth(self.redis, prefix)
        self.scans = self.scans or StockScans(self.redis, prefix)
        self._scan: dict[str, str] = {}  # resource -> its stock scan of this cycle (once it emitted a row)
        self.zone = ZoneInfo(self.mapping.tenant.timezone)
        self.resources = tuple(self.resources) or tuple(type(self.mapping.resources).model_fields)
        ttl = self.lock_ttl if self.lock_ttl is not None else self.settings.poller_lock_ttl_seconds
        self.lock_ttl = float(ttl)
        self.overlap = float(
            self.overlap_seconds if self.overlap_seconds is not None else self.settings.poll_overlap_seconds
        )
        self.lock = self.redis.lock(
            RedisKeys(prefix).poller_lock, timeout=self.lock_ttl, sleep=min(0.2, self.lock_ttl / 10),
            thread_local=False,
        )
        self._lost = threading.Event()
        self._beat_stop = threading.Event()

    # --- one resource, one cycle ------------------------------------------------------------------
    def poll_resource(self, name: str) -> CycleResult:
        """Read one resource's window until consistent; emit its changes; advance its watermark."""
        resource = getattr(self.mapping.resources, name)
        result = CycleResult(name)
        current = self.watermarks.get(name)
        since = filter_start(current, self.overlap, self.zone) if current else self.settings.poll_start
        newest: datetime | None = None
        last = _Pass()
        self._scan.pop(name, None)
        while result.passes < self.max_passes:
            result.passes += 1
            last = _Pass()
            for page in self.client.iter_pages(resource, since):
                # a first page shorter than a page is the whole window: the cycle reads nothing more
                whole = result.passes == 1 and last.pages == 0 and len(page) < min(resource.page_size, MAX_PAGE_SIZE)
                self._process_page(name, page, last, whole)
                if self.stop_event.is_set():  # graceful stop: the page is done, the watermark stays
                    result.aborted = True
                    break
            result.pages += last.pages
            result.records += last.records
            result.emitted += last.emitted
            result.invalid += last.invalid
            newest = _later(newest, last.newest)
            if result.aborted:
                return result
            # One page is one atomic read; otherwise a pass that found nothing new proves nothing moved.
            if last.pages <= 1 or last.emitted == 0:
                result.stable = True
                break
        target = result.newest = newest
        if not result.stable and last.earliest_touched is not None and newest is not None:
            # Still churning: records moved in the last pass can only have pushed records at or after
            # their old position out of view, so the watermark may go that far and no further.
            target = min(newest, last.earliest_touched)
        if target is not None:
            result.watermark = self.watermarks.advance(name, target)
        closed = self._close_scans(name)
        if closed:
            self.release(closed)
        return result

    def _process_page(self, name: str, page: list[dict[str, Any]], tally: _Pass, whole: bool = False) -> None:
        # the page has just arrived: every record in it was written before this, by Blue Cherry's own clock
        # (its HTTP Date) where it gives it - an ERP clock apart from the fleet's still places its stamps
        read_at = self._server_time() or self.clock()
        tally.pages += 1
        tally.records += len(page)
        consent_only: list[tuple[str, dict[str, Any]]] = []
        events = self._change_events(name, self._usable_records(name, page, tally, consent_only), tally, read_at)
        events += self._consent_events(name, consent_only, {e.key for e in events}, tally, read_at)
        if not events:
            return
        if self._lost.is_set():
            raise LockLost("the poller lock was lost; another poller is active")
        self._expect(name, events)
        # the page is the whole window: its scan is closed before the rows reach a worker, which can then
        # compute a SKU as soon as it stores its last row (no sweep in between: a restock's usual cycle)
        closed = self._close_scans(name) if whole else []
        self.emit(events)
        # Only after the queue has them: a crash in between re-emits (harmless), never loses.
        self.fingerprints.remember(
            name, [(e.key, s) for e in events if (s := StoredFingerprint.decode(e.state)) is not None]
        )
        tally.emitted += len(events)
        if closed:
            self.release(closed)

    def _usable_records(self, name: str, page: list[dict[str, Any]], tally: _Pass,
                        consent_only: list[tuple[str, dict[str, Any]]] | None = None,
                        ) -> list[tuple[str, dict[str, Any]]]:
        """The page's records that can be classified, by key; the invalid ones are recorded as exceptions,
        and those whose consent can still be read are added to `consent_only`."""
        resource = getattr(self.mapping.resources, name)
        validator = VALIDATORS.get(name)
        skip = SKIP.get(name)
        usable: list[tuple[str, dict[str, Any]]] = []
        for record in page:
            key = record.get(resource.key)
            stamp = self._instant(record.get(resource.last_mod), name)
            tally.newest = _later(tally.newest, stamp)
            if skip is not None and skip(record, self.mapping):
                continue
            problems = [] if key not in (None, "") else [f"record has no '{resource.key}'"]
            misfits: list[Misfit] = []
            if stamp is None:
                stamp_text = record.get(resource.last_mod)
                formats = self.mapping.date_formats(name)
                problems.append(f"'{resource.last_mod}' {stamp_text!r} is not a local time (tried {tried(formats)})")
                if stamp_text not in (None, ""):
                    misfits.append(unparseable_date(name, resource.last_mod, str(stamp_text).strip(),
                                                    record_key(name, key), formats))
            validated = False  # only a record the validator judged (key and stamp fine) may carry consent on
            if not problems and validator is not None:
                try:
                    verdict = validator(record, self.mapping)
                    problems, misfits = verdict.problems, verdict.misfits
                    validated = True
                except Exception as exc:  # a validator bug must not stop the page
                    problems = [f"validation failed: {exc!r}"]
            if problems:
                tally.invalid += 1
                self._record_invalid(name, record, problems, misfits)
                if validated and consent_only is not None and self._consent_readable(name, record):
                    consent_only.append((str(key), record))
                continue
            usable.append((str(key), record))
        return usable

    def _change_events(self, name: str, usable: list[tuple[str, dict[str, Any]]], tally: _Pass,
                       read_at: datetime) -> list[ChangeEvent]:
        """The change events of the usable records against their stored fingerprints."""
        stored = self.fingerprints.get_many(name, [k for k, _ in usable])
        events: list[ChangeEvent] = []
        seen: set[str] = set()
        for key, record in usable:
            if key in seen:  # the same record twice in one page: keep the first read
                continue
            seen.add(key)
            event = classify(stored.get(key), record, name, self.mapping, read_at,
                             self.settings.rescan_recent_hours * 3600)
            if event is not None:
                events.append(event)
                self._touched(tally, stored.get(key), event)
        return events

    def _expect(self, name: str, events: list[ChangeEvent]) -> None:
        """Register the page's rows in the cycle's stock scan before they are handed on, and tag each event
        with it: the worker storing a row settles it there (state/stock_scans.py)."""
        source = SCANNED.get(name)
        if source is None or self.scans is None:
            return
        scan = self._scan.setdefault(name, self.scans.new_id())
        fields, last_mod = self.mapping.fields.inventory, self.mapping.resources.inventory.last_mod
        rows: list[ExpectedRow] = []
        for event in events:
            try:
                row = parse_inventory_row(event.record, fields, last_mod, self.mapping.date_formats("inventory"))
            except RecordError:
                continue  # the worker records it as invalid: nothing of it to wait for
            rows.append(ExpectedRow(row_entry(event.key, event.version), row.sku.text, row.warehouse))
            event.scan = scan
        if rows:
            self.scans.expect(scan, source, rows)

    def _close_scans(self, name: str) -> list[str]:
        """The whole window was read: close the resource's stock scans (this cycle's, and any earlier one that
        stopped half-way: this cycle re-read its window). Returns them, to be swept (`release`)."""
        source = SCANNED.get(name)
        self._scan.pop(name, None)
        if source is None or self.scans is None:
            return []
        return self.scans.close_source(source)

    def _consent_readable(self, name: str, record: dict[str, Any]) -> bool:
        readable = CONSENT_READABLE.get(name)
        try:
            return readable is not None and readable(record, self.mapping)
        except Exception:  # a parser bug must not stop the page: the record stays only an exception
            log.exception("could not read the consent of an invalid %s record", name)
            return False

    def _consent_events(self, name: str, records: list[tuple[str, dict[str, Any]]], taken: set[str],
                        tally: _Pass, read_at: datetime) -> list[ChangeEvent]:
        """Consent-only change events of invalid but known records (issue 13: a bad unrelated field never
        blocks an opt-out); the rest of such a record stays unseen until it is fixed."""
        if not records:
            return []
        stored = self.fingerprints.get_many(name, [k for k, _ in records])
        events: list[ChangeEvent] = []
        for key, record in records:
            if key in taken:  # the same record twice in one page: keep the first read
                continue
            taken.add(key)
            event = classify_consent(stored.get(key), record, self.mapping, read_at)
            if event is not None:
                events.append(event)
                self._touched(tally, stored.get(key), event)
        return events

    def _touched(self, tally: _Pass, previous: StoredFingerprint | None, event: ChangeEvent) -> None:
        """Note the lowest old last_mod of a changed record (it bounds the watermark of a churning window)."""
        old = self._instant(previous.last_mod if previous else event.last_mod, event.resource)
        if old is not None and (tally.earliest_touched is None or old < tally.earliest_touched):
            tally.earliest_touched = old

    def _record_invalid(self, name: str, record: dict[str, Any], problems: list[str],
                        misfits: Sequence[Misfit] = ()) -> None:
        resource = getattr(self.mapping.resources, name)
        fields = self.mapping.fields.customer
        # the code as the parsers read it (the mapping's normalisers: an IBM i CHAR column's padding, leading
        # zeros): the invalid record's exception names it as every other exception about the customer does
        business = field_text(normalised(record, fields), fields.code) if name == "customer" else None
        ref = record_key(name, business or record.get(resource.key))
        try:
            self.exceptions.record(
                "invalid_record", ref, "; ".join(problems),
                details={"resource": name, "pkey": record.get(resource.key),
                         "last_mod": record.get(resource.last_mod), "problems": problems},
            )
            # once per status value or date field, whatever the number of records: the mapping's problem
            record_misfits(self.exceptions, misfits)
        except Exception:  # the register being down must not stop polling
            log.exception("could not record invalid %s", ref)

    def _server_time(self) -> datetime | None:
        value = getattr(self.client, "server_time", None)
        return value if isinstance(value, datetime) else None

    def _instant(self, value: Any, resource: str) -> datetime | None:
        """A last_mod of `resource` as a UTC instant (ISO or the resource's date formats), None if unreadable."""
        try:
            return local_to_utc(str(value), self.zone, self.mapping.date_formats(resource)) if value else None
        except ValueError:
            return None

    # --- the loop ---------------------------------------------------------------------------------
    def run_once(self, wait: bool = True) -> dict[str, CycleResult]:
        """Take the lock (waiting for it when `wait`), poll every resource once, release."""
        if not self._acquire(wait):
            return {}
        try:
            return {name: self._poll_safely(name) for name in self.resources if not self.stop_event.is_set()}
        finally:
            self._release()

    def run_forever(self) -> None:
        intervals = {n: getattr(self.mapping.resources, n).poll_seconds for n in self.resources}
        while not self.stop_event.is_set():
            if not self._acquire(True):
                continue
            log.info("poller lock acquired; polling %s", ", ".join(self.resources))
            due = dict.fromkeys(self.resources, 0.0)
            try:
                while not self.stop_event.is_set() and not self._lost.is_set():
                    now = time.monotonic()
                    for name in [n for n, t in due.items() if t <= now]:
                        if self.stop_event.is_set() or self._lost.is_set():
                            break
                        self._poll_safely(name)
                        due[name] = time.monotonic() + intervals[name]
                    self.stop_event.wait(max(0.0, min(min(due.values()) - time.monotonic(), 1.0)))
            finally:
                self._release()
            if self._lost.is_set():
                log.warning("poller lock lost; waiting to take it again")

    def _poll_safely(self, name: str) -> CycleResult:
        try:
            result = self.poll_resource(name)
        except LockLost:
            log.warning("%s: lock lost mid-cycle; the next holder re-reads this window", name)
            return CycleResult(name, aborted=True)
        except BlueCherryError as exc:
            log.error("%s: Blue Cherry read failed: %s", name, exc)
            self._note_health(name, None, exc)
            return CycleResult(name, aborted=True)
        except Exception as exc:  # never let one resource's bug kill the poller: log, retry next interval
            log.exception("%s: poll cycle failed", name)
            self._note_health(name, None, exc)
            return CycleResult(name, aborted=True)
        log.info(
            "%s: %d pages, %d records, %d changes, %d invalid, %d passes%s", name, result.pages,
            result.records, result.emitted, result.invalid, result.passes,
            "" if result.stable else " (window still moving; watermark held back)",
        )
        if not result.aborted:  # a graceful stop says nothing about the resource
            self._note_health(name, result)
        return result

    def _note_health(self, name: str, result: CycleResult | None, error: Exception | None = None) -> None:
        """The cycle's outcome for `bcsync status` (state/poller_health.py); a failed read holds the watermark."""
        try:
            health = self.health.cycle(
                name, held=result is None or result.held, records=result.records if result else 0,
                invalid=result.invalid if result else 0, error=None if error is None else str(error)[:500],
                error_kind=None if error is None else read_error_kind(error))
        except redis.RedisError:  # Redis being away must not stop polling: the next cycle notes it
            log.warning("%s: could not note the cycle's health", name, exc_info=True)
            return
        if health.held == self.settings.watermark_held_cycles + 1:  # once, as it passes the bound
            log.error("%s: watermark held back for %d poll cycles in a row%s", name, health.held,
                      f" (read failing: {health.error})" if health.error else " (its window keeps moving)")

    def _acquire(self, wait: bool) -> bool:
        deadline = None if wait else time.monotonic()
        while not self.stop_event.is_set():
            if self.lock.acquire(blocking=True, blocking_timeout=min(1.0, float(self.lock_ttl or 1))):
                self._lost.clear()
                self._beat_stop = threading.Event()
                threading.Thread(
                    target=self._renew, args=(self._beat_stop,), daemon=True, name="poller-lock"
                ).start()
                return True
            if deadline is not None:
                return False
        return False

    def _renew(self, stop: threading.Event) -> None:
        """Renew the lock every third of its expiry while we hold it; a failed renewal means we lost it."""
        interval = float(self.lock_ttl or 30) / 3
        while not stop.wait(interval):
            try:
                self.lock.reacquire()
            except LockError:
                self._lost.set()
                return
            except redis.RedisError:
                log.warning("could not renew the poller lock; retrying", exc_info=True)

    def _release(self) -> None:
        self._beat_stop.set()
        with contextlib.suppress(LockError, redis.RedisError):
            self.lock.release()

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: finishing the current page, then stopping", signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def read_error_kind(error: Exception) -> str:
    """What kind of read error `bcsync status` shows: not_found (404), auth (401/403: the subscription key),
    response (a 4xx or a body not the documented shape: the mapping's path or envelope?), unavailable (429, 5xx,
    timeouts after every retry), bug (anything else: the log has the traceback)."""
    if isinstance(error, BlueCherryAuthError):
        return "auth"
    if isinstance(error, BlueCherryRetryableError):
        return "unavailable"
    if isinstance(error, BlueCherryError):
        return "not_found" if error.status == 404 else "response"
    return "bug"


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def build_poller(resources: Sequence[str] = (), emit: Emit | None = None) -> Poller:
    state = stores()
    settings, mapping = state.settings, state.mapping
    return Poller(
        BlueCherryClient.from_settings(settings, mapping), state.redis, emit or celery_emit, state.exceptions,
        mapping=mapping, settings=settings, resources=resources,
    )


app = typer.Typer(
    help="Poll Blue Cherry for changes and hand them to the queues.", invoke_without_command=True
)


@app.callback()
def poller(
    once: bool = typer.Option(False, "--once", help="Run one cycle for every resource, then exit."),
    resource: list[str] = typer.Option([], "--resource", "-r", help="Poll only these resources (repeat)."),
) -> None:
    """Run the poller (only one is active fleet-wide; others wait for the lock)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mapping = get_mapping()
    known = list(type(mapping.resources).model_fields)
    unknown = [r for r in resource if r not in known]
    if unknown:
        raise typer.BadParameter(f"unknown resource(s) {unknown}; known: {known}")
    worker = build_poller(resource)
    worker.install_signal_handlers()
    if once:
        for name, result in worker.run_once().items():
            typer.echo(f"{name}: {result.emitted} changes, {result.invalid} invalid, {result.pages} pages")
    else:
        worker.run_forever()
