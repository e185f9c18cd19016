"""Fault drills at concurrency: each from a clean state, every lane's worker at concurrency >= 2, Blue Cherry
trading live; the fault on for its window, then lifted; the end result checked by the independent
expected-state oracle (testing/oracle) against the Klaviyo sandbox.

    .venv/bin/python -m bench.drills                     # every drill, full size; prints the table
    .venv/bin/python -m bench.drills --quick             # a small tenant and the short list (the test command's)
    .venv/bin/python -m bench.drills --drill klaviyo_5xx --drill handler_bug
    .venv/bin/python -m bench.drills --write docs/reliability.md   # the full table, into the doc (generated)

Per drill: events missing / extra / duplicated / wrong value; profiles missing, split, extra or wrong; consent,
stock and aggregates wrong; dead letters and exceptions by kind; anything lost for good (still missing, or still
dead-lettered, after `bcsync dlq requeue --all`); seconds from the fault's end to quiescence; peak worker RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.drill_faults import DRILLS, QUICK_DRILLS, Drill
from bench.drill_fleet import FULL, QUICK, DrillFleet, DrillSize
from tests.support.fleet import DIALECTS

COLUMNS = ("events_missing", "events_extra", "events_duplicated", "events_wrong_value", "profiles_missing",
           "profiles_split", "profiles_extra", "profiles_wrong", "consent_wrong", "stock_wrong", "aggregates_wrong")


@dataclass
class DrillResult:
    drill: str
    counts: dict[str, int]
    dead_letters: Counter[str]
    exceptions: dict[str, int]
    lost_for_good: int
    quiescence_seconds: float | None
    peak_worker_rss_mb: float
    requeued: str = ""
    examples: str = ""
    notes: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        return {"drill": self.drill, **self.counts, "dead_letters": dict(self.dead_letters),
                "exceptions": self.exceptions, "lost_for_good": self.lost_for_good,
                "quiescence_seconds": self.quiescence_seconds, "peak_worker_rss_mb": self.peak_worker_rss_mb}


def run_drill_in(fleet: DrillFleet, drill: Drill) -> DrillResult:
    """One drill on a fleet that has just started: warm-up with live trading, the fault for its window, the
    fault lifted and trading stopped, quiescence, the oracle; dead letters requeued and checked again."""
    size = fleet.size
    fleet.live(True)
    time.sleep(size.warmup_seconds)
    drill.start(fleet)
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < size.fault_seconds * drill.length:
        drill.during(fleet, elapsed)
        time.sleep(1.0)
    drill.stop(fleet)
    fleet.live(False)
    quiescence = fleet.wait_quiescent()
    notes = [] if quiescence is not None else [f"not quiescent within {size.patience_seconds:g} s; still there: "
                                               f"{fleet.quiet_sample()}; {fleet.stuck_work()}"]
    diff = fleet.oracle_diff()
    dead_letters = fleet.dead_letters_by_kind()
    exceptions = fleet.exceptions_by_type()
    requeued = ""
    if dead_letters:
        requeued = fleet.requeue_dead_letters()
        if fleet.wait_quiescent() is None:
            notes.append("not quiescent after the requeue")
        diff = fleet.oracle_diff()
    counts = diff.counts()
    still_dead = sum(fleet.dead_letters_by_kind().values()) if dead_letters else 0
    return DrillResult(
        drill=drill.name, counts=counts, dead_letters=dead_letters, exceptions=exceptions,
        lost_for_good=counts["events_missing"] + still_dead, quiescence_seconds=quiescence,
        peak_worker_rss_mb=round(fleet.rss.peak_bytes / 2**20, 1), requeued=requeued,
        examples=diff.report(limit_per_kind=3), notes=notes,
    )


def run_drill(drill: Drill, size: DrillSize, concurrency: int = 2, dialect: str = "default") -> DrillResult:
    with DrillFleet(size, concurrency=concurrency, settings=dict(drill.settings), dialect=dialect) as fleet:
        return run_drill_in(fleet, drill)


def _by_kind(counter: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counter.items())) or "0"


def table(results: list[DrillResult]) -> str:
    head = ["drill", "events missing / extra / duplicated / wrong value", "profiles missing / split / extra / wrong",
            "consent wrong", "stock wrong", "aggregates wrong", "dead letters", "exceptions", "lost for good",
            "quiescence after the fault (s)", "peak worker RSS (MB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        c = r.counts
        cells = [
            r.drill,
            f"{c['events_missing']} / {c['events_extra']} / {c['events_duplicated']} / {c['events_wrong_value']}",
            f"{c['profiles_missing']} / {c['profiles_split']} / {c['profiles_extra']} / {c['profiles_wrong']}",
            str(c["consent_wrong"]), str(c["stock_wrong"]), str(c["aggregates_wrong"]),
            _by_kind(r.dead_letters), _by_kind(r.exceptions), str(r.lost_for_good),
            "-" if r.quiescence_seconds is None else f"{r.quiescence_seconds:g}", f"{r.peak_worker_rss_mb:g}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DOC_HEAD = """# Reliability: fault drills

Generated by `{command}` on {when} (do not edit by hand: run it again).
Each drill starts from a clean state (a private AOF-backed Redis, both sandboxes, Blue Cherry trading live at
{scale:g} x the sandbox's default rates, a tenant of {customers} customers, {styles} styles and {orders} orders;
orders go under their storefront reference, and a few come from a storefront that sends its own Placed Order,
half of those without their reference: the oracle lists those as waiting, with no event, `storefront_ref_missing`),
runs every lane's worker at concurrency {concurrency} plus beat and the poller as real processes, keeps the fault on
for {fault:g} s (the 429 storm 1.5 x as long), lifts it, stops trading and waits for quiescence. The end result is then
checked by the independent expected-state oracle (`testing/oracle`, rules in [rules.md](rules.md)) against the
Klaviyo sandbox. Where a drill left dead letters, `bcsync dlq requeue --all` ran and the oracle checked again:
the table shows the counts after it, "dead letters" what there was before it, and "lost for good" what was still
missing or dead-lettered after it.

What the drills are: {drills}.

Gates (`tests/integration/test_drills.py` runs `--quick` in the test command): 0 events missing, 0 duplicated,
0 profiles missing / split / extra / wrong, 0 consent wrong, 0 stock wrong, 0 aggregates wrong and nothing lost
for good in every drill; 0 dead letters in the transient ones.

"""


RESULTS_MARK = "<!-- drill results (read back by --write --drill): "


def earlier_results(path: Path) -> list[DrillResult]:
    """The rows a previous `--write` left in the doc, so a rerun of some drills keeps the others."""
    if not path.exists() or RESULTS_MARK not in path.read_text():
        return []
    rows = json.loads(path.read_text().split(RESULTS_MARK, 1)[1].split(" -->", 1)[0])
    return [DrillResult(drill=row["drill"], counts={k: row[k] for k in COLUMNS},
                        dead_letters=Counter(row["dead_letters"]), exceptions=row["exceptions"],
                        lost_for_good=row["lost_for_good"], quiescence_seconds=row["quiescence_seconds"],
                        peak_worker_rss_mb=row["peak_worker_rss_mb"], examples=row.get("examples", ""),
                        notes=row.get("notes", [])) for row in rows]


def merged(path: Path, results: list[DrillResult]) -> list[DrillResult]:
    fresh = {r.drill: r for r in results}
    kept = {r.drill: r for r in earlier_results(path) if r.drill not in fresh}
    return [fresh.get(name) or kept[name] for name in DRILLS if name in fresh or name in kept]


def write_doc(path: Path, results: list[DrillResult], size: DrillSize, concurrency: int, command: str) -> None:
    drills = "; ".join(f"**{r.drill}**: {DRILLS[r.drill].what}" for r in results)
    head = DOC_HEAD.format(command=command, when=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                           scale=size.live_scale, customers=size.customers, styles=size.styles, orders=size.orders,
                           concurrency=concurrency, fault=size.fault_seconds, drills=drills)
    details = "\n".join(f"### {r.drill}\n\n```\n{r.examples or 'no difference'}\n```\n"
                        + ("".join(f"\n{note}\n" for note in r.notes)) for r in results)
    rows = json.dumps([{**r.as_row(), "examples": r.examples, "notes": r.notes} for r in results])
    path.write_text(head + table(results) + "\n\n## What the oracle found, by drill\n\n" + details
                    + f"\n{RESULTS_MARK}{rows} -->\n")


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small tenant and the short list of drills")
    parser.add_argument("--drill", action="append", choices=sorted(DRILLS), help="run only these (repeatable)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes per lane (>= 2)")
    parser.add_argument("--write", type=Path, help="write the table into this Markdown file (docs/reliability.md)")
    parser.add_argument("--dialect", choices=DIALECTS, default="default",
                        help="the Blue Cherry tenant's dialect (docs/sandbox.md), read with its own mapping")
    args = parser.parse_args()
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2: the drills exist to run lanes concurrently")
    signal.signal(signal.SIGTERM, _stop)  # a kill stops the run cleanly too: every fleet process by its id
    size = QUICK if args.quick else FULL
    names = args.drill or (QUICK_DRILLS if args.quick else tuple(DRILLS))
    results = []
    command = ("python -m bench.drills" + (" --quick" if args.quick else "")
               + (f" --dialect {args.dialect}" if args.dialect != "default" else "") + f" --write {args.write}")
    if args.drill and set(args.drill) != set(DRILLS):  # the other rows are the last run's, kept by `merged`
        command += " (rows of " + ", ".join(args.drill) + " rerun with --drill)"
    for name in names:
        started = time.monotonic()
        result = run_drill(DRILLS[name], size, args.concurrency, args.dialect)
        results.append(result)
        if args.write:  # after every drill, so a long run that is stopped keeps what it measured
            write_doc(args.write, merged(args.write, results), size, args.concurrency, command)
        print(f"{name}: done in {time.monotonic() - started:.0f} s; {result.counts}; dead letters "
              f"{dict(result.dead_letters)}; lost {result.lost_for_good}" + "".join(f"; {n}" for n in result.notes),
              flush=True)
    print(table(results))
    for result in results:
        if result.examples:
            print(f"\n{result.drill}:\n{result.examples}")
    if args.write:
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
