"""An expected-state oracle: from a Blue Cherry dump, what Klaviyo must hold by the rules of docs/rules.md,
and where Klaviyo's state differs. Written from the documents, independently of the product (it imports
nothing of it: an import contract), so a bug in the product is not copied into the check.

    from testing.oracle import TenantRules, expected_state, diff_state
    diff = diff_state(expected_state(dump, TenantRules.from_toml("mapping.toml")), klaviyo_state)
    diff.counts(); diff.findings; print(diff.report())
"""

from testing.oracle.diff import diff_state
from testing.oracle.expected import ExpectedEvent, ExpectedProfile, ExpectedState, PlacedOrder, Skipped, expected_state
from testing.oracle.findings import KINDS, Finding, StateDiff
from testing.oracle.rules import DIALECTS, Dialect, TenantRules

__all__ = [
    "DIALECTS", "KINDS", "Dialect", "ExpectedEvent", "ExpectedProfile", "ExpectedState", "Finding", "PlacedOrder",
    "Skipped", "StateDiff", "TenantRules", "diff_state", "expected_state",
]
