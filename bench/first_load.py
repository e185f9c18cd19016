"""First load at scale (issue 12, one Klaviyo profile per customer): an existing Blue Cherry tenant (customers with
orders and mixed marketing consent) loaded into an EMPTY Klaviyo account at Klaviyo's real rate limits, by the
whole fleet as real processes (every lane at concurrency >= 2, beat and the poller), until quiescent.

    .venv/bin/python -m bench.first_load                          # 5,000 customers, 2 orders each, limits x 1
    .venv/bin/python -m bench.first_load --customers 300          # about 1.5 minutes
    .venv/bin/python -m bench.first_load --customers 300 --rate-scale 0.25   # the same, upserts held back by
                                                                  # the limits (about 4.5 minutes)
    .venv/bin/python -m bench.first_load --customers 300 --rescan   # then FLUSHALL and the re-scan (the
                                                                  # suite's one-profile test, at 3x its size)
    .venv/bin/python -m bench.first_load --json                   # the result as one JSON object

At 5,000 customers and Klaviyo's real limits the fleet's share of `POST /api/profile-import` (0.6 x 750 a
minute) bounds the run: about two upserts per customer (2,127 for 1,008 customers and 365 guests at 1,000), so
10,000 or more at 450 a minute: expect 24 minutes or more.

Printed: customers; Klaviyo profiles; profiles per customer (exactly one / none / more than one, the most on
one customer, profiles without an external_id: a customer's, a guest shopper's, nobody's); `duplicate_profile`
(409) responses counted by the Klaviyo sandbox (its per-endpoint status counts, plus bulk-import rows that
failed with that code); 429s; dead letters and exceptions by kind; the independent oracle's counts
(testing/oracle); minutes from the poller's first request to quiescence.

Exit status 1 when the load is wrong: a customer with no profile or with several, a customer's profile without
its external_id, any profiles_missing / split / extra / wrong from the oracle, any duplicate_profile response,
any dead letter, or no quiescence within --timeout-minutes. The other oracle counts (events, consent,
aggregates, stock) are printed and do not decide it. Built on bench/drill_fleet.py (the drills' fleet).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.drill_fleet import DrillFleet, DrillSize
from sandbox.klaviyo.ratelimit import RateLimiter
from testing.oracle import DIALECTS, ExpectedState, TenantRules, diff_state, expected_state
from testing.oracle.diff import identities, profile_owners
from tests.support.fleet import WorkerProcess, pending_work

PROFILE_KINDS = ("profiles_missing", "profiles_split", "profiles_extra", "profiles_wrong")
PROFILE_IMPORT = "POST /api/profile-import"  # its only 409 is duplicate_profile (docs/sandbox.md)
DUPLICATE_PROFILE = "duplicate_profile"


@dataclass
class ProfileTally:
    """How the Klaviyo profiles fall on the ERP's customers and guest shoppers (owners as the oracle names them)."""

    customers_in_erp: int  # customer records in the dump (the catch-all web guest and deleted ones included)
    customers_expected: int  # customers the rules give a profile (docs/rules.md)
    email_opted_in: int
    sms_opted_in: int
    guests_expected: int  # guest shoppers with a placed order
    klaviyo_profiles: int
    customers_with_one: int
    customers_with_none: int
    customers_with_several: int
    most_profiles_on_one_customer: int
    profiles_without_external_id: int
    customer_profiles_without_external_id: int  # holding a customer's email or phone, not its code
    guest_profiles: int  # profiles of guest shoppers only (no external_id by the rules)
    profiles_of_several_customers: int  # one profile holding identifiers of two or more customers
    profiles_of_nobody: int  # matching no customer or guest shopper
    profiles_of_nobody_tolerated: int  # of those, identifiers the rules tolerate (a skipped record's, a shared phone)

    @property
    def customer_profiles(self) -> int:
        return self.klaviyo_profiles - self.guest_profiles - self.profiles_of_nobody

    @property
    def profiles_per_customer(self) -> float:
        return round(self.customer_profiles / self.customers_expected, 3) if self.customers_expected else 0.0


def tally_profiles(dump: dict[str, Any], expected: ExpectedState, klaviyo_state: dict[str, Any]) -> ProfileTally:
    profiles: dict[str, dict[str, Any]] = klaviyo_state.get("profiles") or {}
    owners_of = profile_owners(expected, profiles)
    per_owner: Counter[str] = Counter(owner for owners in owners_of.values() for owner in owners)
    customers = [owner for owner in expected.profiles if owner.startswith("customer:")]
    counts = [per_owner[owner] for owner in customers]
    consent = [expected.profiles[owner].consent or {} for owner in customers]
    dialect = DIALECTS[str(dump.get("dialect") or "default")]
    unkeyed = [pid for pid, profile in profiles.items() if not profile.get("external_id")]
    return ProfileTally(
        customers_in_erp=len(dump.get("resources", {}).get(dialect.customer, [])),
        customers_expected=len(customers),
        email_opted_in=sum(bool(c.get("email")) for c in consent),
        sms_opted_in=sum(bool(c.get("sms")) for c in consent),
        guests_expected=len(expected.profiles) - len(customers),
        klaviyo_profiles=len(profiles),
        customers_with_one=sum(n == 1 for n in counts),
        customers_with_none=sum(n == 0 for n in counts),
        customers_with_several=sum(n > 1 for n in counts),
        most_profiles_on_one_customer=max(counts, default=0),
        profiles_without_external_id=len(unkeyed),
        customer_profiles_without_external_id=sum(
            any(o.startswith("customer:") for o in owners_of[pid]) for pid in unkeyed),
        guest_profiles=sum(bool(owners) and all(o.startswith("guest:") for o in owners)
                           for owners in owners_of.values()),
        profiles_of_several_customers=sum(sum(o.startswith("customer:") for o in owners) > 1
                                          for owners in owners_of.values()),
        profiles_of_nobody=sum(not owners for owners in owners_of.values()),
        profiles_of_nobody_tolerated=sum(
            not owners and any(i in expected.tolerated_identities for i in identities(profiles[pid]))
            for pid, owners in owners_of.items()),
    )


def conflicts(stats: dict[str, Any], klaviyo_state: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """(duplicate_profile responses, every 409 by endpoint): a profile-import answered 409, or a bulk-import job's
    row that failed with that code (the sandbox reports such rows per job, not as a response status)."""
    by_endpoint = {key: int(endpoint["statuses"]["409"]) for key, endpoint in stats["endpoints"].items()
                   if int(endpoint["statuses"].get("409", 0))}
    failed_rows = sum(error.get("code") == DUPLICATE_PROFILE for job in (klaviyo_state.get("jobs") or {}).values()
                      for error in job.get("errors") or [])
    return by_endpoint.get(PROFILE_IMPORT, 0) + failed_rows, by_endpoint


@dataclass
class FirstLoadResult:
    phase: str  # the first load, or the re-scan after FLUSHALL
    customers: int
    orders: int
    rate_scale: float
    concurrency: int
    tally: ProfileTally | None
    duplicate_profile_responses: int
    conflicts_by_endpoint: dict[str, int]
    throttled_429: int
    requests_by_endpoint: dict[str, int]
    dead_letters: dict[str, int]
    exceptions: dict[str, int]
    oracle: dict[str, int]
    oracle_report: str
    minutes: float | None  # first poll to quiescence; None = not quiescent in time
    timeout_minutes: float
    peak_worker_rss_mb: float
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = list(self.notes)
        if self.minutes is None:
            found.append(f"not quiescent within {self.timeout_minutes:g} minutes")
        t = self.tally
        if t is not None:
            if t.customers_with_none:
                found.append(f"{t.customers_with_none} customer(s) without a Klaviyo profile")
            if t.customers_with_several:
                found.append(f"{t.customers_with_several} customer(s) with more than one Klaviyo profile")
            if t.customer_profiles_without_external_id:
                found.append(f"{t.customer_profiles_without_external_id} customer profile(s) without an external_id")
        found += [f"oracle {kind}: {self.oracle[kind]}" for kind in PROFILE_KINDS if self.oracle.get(kind)]
        if self.duplicate_profile_responses:
            found.append(f"{self.duplicate_profile_responses} duplicate_profile (409) response(s)")
        if self.dead_letters:
            found.append(f"{sum(self.dead_letters.values())} dead letter(s)")
        return found

    def as_json(self) -> dict[str, Any]:
        tally = None if self.tally is None else {**asdict(self.tally),
                                                 "profiles_per_customer": self.tally.profiles_per_customer}
        return {**asdict(self), "tally": tally, "problems": self.problems(), "ok": not self.problems()}


class FirstLoadFleet(DrillFleet):
    """The drills' fleet with no live trading and the Klaviyo sandbox's limits at `rate_scale` x Klaviyo's."""

    def __init__(self, size: DrillSize, *, concurrency: int, seed: int, rate_scale: float) -> None:
        # the fleet's own limiter is told the same scale, as against a sandbox started with --rate-scale
        super().__init__(size, concurrency=concurrency, seed=seed,
                         settings={"BCSYNC_RATE_LIMIT_SCALE": f"{rate_scale:g}"})
        self.rate_scale = rate_scale

    def start_worker(self, lane: str) -> WorkerProcess:
        if not self.starts:  # the sandboxes are up and no fleet process exists yet: nothing has used a window
            sandbox = self.klaviyo.app.state.sandbox
            sandbox.config.rate_limit_scale = self.rate_scale
            sandbox.limiter = RateLimiter(self.rate_scale, enabled=True)
        return super().start_worker(lane)


class Progress(threading.Thread):
    """A line on stderr every `every` seconds while the load runs: Klaviyo's counts and the fleet's pending work."""

    def __init__(self, fleet: DrillFleet, started: float, every: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.fleet, self.started, self.every = fleet, started, every
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                counts = self.fleet.klaviyo_control("state?summary=1")["counts"]
                pending = pending_work(self.fleet.redis, self.fleet.prefix)
            except Exception as exc:  # a progress line is never worth stopping the run for
                counts, pending = {"error": repr(exc)}, -1
            say(f"  {(time.monotonic() - self.started) / 60:5.1f} min: profiles {counts.get('profiles')}, events "
                f"{counts.get('events')}, jobs pending {counts.get('jobs_pending')}; fleet messages pending {pending}")


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def first_poll(fleet: DrillFleet, deadline: float) -> float:
    """When the poller's first request reached Blue Cherry (monotonic; at most the moment this is called late)."""
    while time.monotonic() < deadline:
        if sum(fleet.bluecherry("stats")["requests"].values()):
            return time.monotonic()
        time.sleep(0.1)
    raise RuntimeError("the poller never asked Blue Cherry for anything")


def wait_loaded(fleet: DrillFleet, deadline: float) -> float | None:
    """Monotonic time the fleet was last busy before quiescence. Quiet before Klaviyo holds any profile is the
    gap between the poller's first request and its first message, not the end: wait again."""
    while time.monotonic() < deadline:
        waited_from = time.monotonic()
        quiescent = fleet.wait_quiescent()
        if quiescent is None:
            return None
        if fleet.klaviyo_control("state?summary=1")["counts"]["profiles"]:
            return waited_from + quiescent
    return None


def run(customers: int, orders: int, styles: int, rate_scale: float, concurrency: int, timeout_minutes: float,
        seed: int, rescan: bool = False) -> list[FirstLoadResult]:
    """The first load; with `rescan`, then the fleet's Redis flushed (ids, versions, watermarks, fingerprints,
    queues: all gone) and everything re-scanned into the Klaviyo account the first load filled."""
    size = DrillSize(customers=customers, styles=styles, orders=orders, warmup_seconds=0, fault_seconds=0,
                     patience_seconds=timeout_minutes * 60)
    say(f"first load: {customers} customers, {orders} orders, {styles} styles; Klaviyo limits x {rate_scale:g}; "
        f"every lane at concurrency {concurrency}")
    with FirstLoadFleet(size, concurrency=concurrency, seed=seed, rate_scale=rate_scale) as fleet:
        deadline = time.monotonic() + timeout_minutes * 60
        started = first_poll(fleet, deadline)
        say("fleet up, the poller has started; waiting for quiescence")
        results = [_phase(fleet, "first load", started, deadline)]
        if rescan:
            say("flushing the fleet's Redis; the poller re-scans everything")
            fleet.redis.flushall()
            started, deadline = time.monotonic(), time.monotonic() + timeout_minutes * 60
            results.append(_phase(fleet, "re-scan after FLUSHALL", started, deadline))
        return results


def _phase(fleet: DrillFleet, phase: str, started: float, deadline: float) -> FirstLoadResult:
    progress = Progress(fleet, started)
    progress.start()
    try:
        finished = wait_loaded(fleet, deadline)
    finally:
        progress.stopping.set()
    say(f"{phase}: measuring")
    size, timeout_minutes = fleet.size, (deadline - started) / 60
    rate_scale = float(fleet.overrides.get("BCSYNC_RATE_LIMIT_SCALE", "1"))
    dump = fleet.bluecherry("dump")
    state = fleet.klaviyo_control("state")
    stats = fleet.klaviyo_control("stats")
    expected = expected_state(dump, TenantRules.from_toml(fleet.mapping_file))
    diff = diff_state(expected, state)
    duplicates, by_endpoint = conflicts(stats, state)
    notes = []
    if stats["rate_limit_scale"] != rate_scale or not stats["rate_limits_enabled"]:
        notes.append(f"the Klaviyo sandbox ran at scale {stats['rate_limit_scale']}, limits "
                     f"{'on' if stats['rate_limits_enabled'] else 'off'}: not the limits asked for")
    return FirstLoadResult(
        phase=phase, customers=size.customers, orders=size.orders, rate_scale=rate_scale,
        concurrency=fleet.concurrency, tally=tally_profiles(dump, expected, state),
        duplicate_profile_responses=duplicates, conflicts_by_endpoint=by_endpoint,
        throttled_429=sum(int(e["throttled"]) for e in stats["endpoints"].values()),
        requests_by_endpoint={key: int(e["received"]) for key, e in stats["endpoints"].items()},
        dead_letters=dict(fleet.dead_letters_by_kind()), exceptions=fleet.exceptions_by_type(),
        oracle=diff.counts(), oracle_report=diff.report(limit_per_kind=3),
        minutes=None if finished is None else round((finished - started) / 60, 2),
        timeout_minutes=round(timeout_minutes, 2), peak_worker_rss_mb=round(fleet.rss.peak_bytes / 2**20, 1),
        notes=notes,
    )


def _by_kind(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "0"


def render(r: FirstLoadResult) -> str:
    lines = [f"{r.phase}: {r.customers} customers, {r.orders} orders; Klaviyo's rate limits x {r.rate_scale:g}; "
             f"every lane at concurrency {r.concurrency}"]
    t = r.tally
    if t is not None:
        lines += [
            f"customers in the ERP: {t.customers_in_erp} records, {t.customers_expected} given a profile by the "
            f"rules (email opted in {t.email_opted_in}, SMS opted in {t.sms_opted_in}); guest shoppers "
            f"{t.guests_expected}",
            f"Klaviyo profiles: {t.klaviyo_profiles} (customers' {t.customer_profiles}, guests' {t.guest_profiles}, "
            f"nobody's {t.profiles_of_nobody}, of which {t.profiles_of_nobody_tolerated} tolerated by the rules)",
            f"profiles per customer: {t.profiles_per_customer:g}; customers with exactly one {t.customers_with_one}, "
            f"with none {t.customers_with_none}, with more than one {t.customers_with_several} (at most "
            f"{t.most_profiles_on_one_customer}); profiles holding several customers {t.profiles_of_several_customers}",
            f"profiles without an external_id: {t.profiles_without_external_id} "
            f"({t.customer_profiles_without_external_id} holding a customer's email or phone)",
        ]
    lines += [
        f"duplicate_profile (409) responses: {r.duplicate_profile_responses}; every 409 by endpoint: "
        f"{_by_kind(r.conflicts_by_endpoint)}",
        f"429s (Klaviyo's rate limits): {r.throttled_429}; requests: {_by_kind(r.requests_by_endpoint)}",
        f"dead letters: {_by_kind(r.dead_letters)}; exceptions: {_by_kind(r.exceptions)}",
        "oracle: " + ", ".join(f"{kind} {n}" for kind, n in r.oracle.items()),
        "minutes to complete (first poll to quiescence): "
        + (f"{r.minutes:g}" if r.minutes is not None else f"- (not quiescent within {r.timeout_minutes:g})"),
        f"peak worker RSS: {r.peak_worker_rss_mb:g} MB",
        "",
        r.oracle_report,
        "",
    ]
    problems = r.problems()
    lines.append("RESULT: " + ("ok - one profile per customer, no 409, no dead letter" if not problems
                               else "FAILED - " + "; ".join(problems)))
    return "\n".join(lines)


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000, help="consumers in the seeded tenant (default 5000)")
    parser.add_argument("--orders-per-customer", type=float, default=2.0,
                        help="historic orders in the tenant = customers x this (the generator spreads them over "
                             "the consumers, wholesale accounts and web guests; default 2)")
    parser.add_argument("--styles", type=int, default=30, help="styles in the catalog (default 30)")
    parser.add_argument("--rate-scale", type=float, default=1.0,
                        help="Klaviyo's rate limits x this, in the sandbox and the fleet (default 1 = the real ones)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes per lane (>= 2)")
    parser.add_argument("--timeout-minutes", type=float, default=45.0,
                        help="the longest to wait for quiescence (default 45)")
    parser.add_argument("--seed", type=int, default=7, help="the tenant generator's seed")
    parser.add_argument("--rescan", action="store_true",
                        help="then flush the fleet's Redis and re-scan everything (one profile per customer still)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (progress: stderr)")
    args = parser.parse_args(argv)
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2: the first load is measured with lanes running concurrently")
    if args.customers < 1 or args.orders_per_customer < 0 or args.rate_scale <= 0 or args.timeout_minutes <= 0:
        parser.error("--customers, --rate-scale and --timeout-minutes must be positive, --orders-per-customer >= 0")
    signal.signal(signal.SIGTERM, _stop)  # a kill stops the run cleanly too: every fleet process by its id
    try:
        results = run(args.customers, round(args.customers * args.orders_per_customer), args.styles,
                      args.rate_scale, args.concurrency, args.timeout_minutes, args.seed, args.rescan)
    except KeyboardInterrupt as stopped:
        say(f"stopped ({stopped or 'interrupt'}); every process it started is stopped")
        return 130
    if args.json:
        print(json.dumps([r.as_json() for r in results], indent=2), flush=True)
    else:
        print("\n".join(render(r) for r in results), flush=True)
    return 1 if any(r.problems() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
