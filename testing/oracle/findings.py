"""The oracle's answer: findings of fixed kinds, their counts and a readable report."""

from __future__ import annotations

from dataclasses import dataclass, field

from testing.oracle.expected import Skipped

KINDS = (
    "events_missing", "events_extra", "events_duplicated", "events_wrong_value",
    "profiles_missing", "profiles_split", "profiles_extra", "profiles_wrong",
    "consent_wrong", "stock_wrong", "aggregates_wrong",
)  # fmt: skip
CENT = 0.01 + 1e-9  # amounts may differ by rounding, never by more than a cent
EventKey = tuple[str, str]


@dataclass(frozen=True)
class Finding:
    kind: str
    key: str
    expected: object
    actual: object
    detail: str


@dataclass
class StateDiff:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    waiting: list[Skipped] = field(default_factory=list)  # orders whose events rightly wait (not a difference)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for finding in self.findings:
            counts[finding.kind] += 1
        return counts

    def report(self, limit_per_kind: int = 5) -> str:
        counts = self.counts()
        total = sum(counts.values())
        lines = [f"oracle: {total} difference(s); {len(self.skipped)} ERP record(s) skipped by the rules; "
                 f"{len(self.waiting)} order(s) waiting"]
        lines += [f"  {kind:<20} {count}" for kind, count in counts.items()]
        for kind in KINDS:
            examples = [f for f in self.findings if f.kind == kind]
            if examples:
                lines.append(f"{kind} (first {min(limit_per_kind, len(examples))} of {len(examples)}):")
                lines += [f"  {f.key}: {f.detail} (expected {f.expected!r}, actual {f.actual!r})"
                          for f in examples[:limit_per_kind]]
        for title, entries in (("skipped", self.skipped), ("waiting", self.waiting)):
            if entries:
                lines.append(f"{title} (first {min(limit_per_kind, len(entries))} of {len(entries)}):")
                lines += [f"  {s.record}: {s.reason}" for s in entries[:limit_per_kind]]
        return "\n".join(lines)
