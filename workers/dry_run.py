"""What a backfill's `--dry-run` prints: a summary an operator reads in one screen - how many operations of each
kind on each lane, a few samples of each kind, the problems it would record by type with an example - instead of
every operation. `--verbose` adds every operation as a JSON line (on stdout, for scripts).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rich.console import Console

from sync.operations import Operation
from workers.render_cli import compact_table

SAMPLES = 3  # operations shown per kind
PROBLEM_EXAMPLES = 3


def describe(op: Operation) -> str:
    """One readable line for an operation: what it is about, not its payload."""
    p = op.payload
    if op.kind == "event":
        value = p.get("value")
        parts = [str(p.get("metric", "")), str(p.get("time") or "")[:10],
                 f"{value:,.2f}" if isinstance(value, int | float) else ""]
        return ", ".join(part for part in parts if part).replace(", ", " ", 1)
    if op.kind in ("profile_upsert", "profile_deletion"):
        who = p.get("external_id") or op.profile_of
        return f"profile {who}" if who else "profile's ERP aggregates"
    if op.kind in ("subscribe", "unsubscribe"):
        return f"{op.kind} {p.get('channel') or ''}".strip()
    return str(p.get("external_id") or op.key)


@dataclass
class DryRun:
    """Collects what a dry run would send and record."""

    verbose: bool = False
    echo: Callable[[str], None] = print  # where --verbose's JSON lines go (stdout)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    samples: dict[str, list[Operation]] = field(default_factory=dict)
    problems: Counter[str] = field(default_factory=Counter)
    problem_examples: dict[str, list[str]] = field(default_factory=dict)

    def operations(self, ops: Iterable[Operation]) -> None:
        for op in ops:
            self.counts[(op.kind, op.lane)] += 1
            kept = self.samples.setdefault(op.kind, [])
            if len(kept) < SAMPLES:
                kept.append(op)
            if self.verbose:
                self.echo(json.dumps(op.model_dump(mode="json"), sort_keys=True))

    def problem(self, type_: str, record_key: str, reason: str) -> None:
        self.problems[type_] += 1
        examples = self.problem_examples.setdefault(type_, [])
        if len(examples) < PROBLEM_EXAMPLES:
            examples.append(f"{record_key}: {reason}")

    def print(self, console: Console) -> None:
        if not self.counts:
            console.print("Dry run: nothing would be sent.")
        else:
            table = compact_table("Dry run: would send (nothing sent, nothing recorded)", ("kind", "lane", "count"),
                                  "samples")
            for (kind, lane), count in sorted(self.counts.items()):
                table.add_row(kind, lane, f"{count:,}", "\n".join(
                    f"{op.record or '-'}: {describe(op)}" for op in self.samples.get(kind, []) if op.lane == lane))
            console.print(table)
        for type_, count in sorted(self.problems.items()):
            console.print(f"would record {count:,} {type_}, e.g. " + "; ".join(self.problem_examples[type_]))
        if not self.verbose and self.counts:
            console.print("(--verbose prints every operation as a JSON line)")
