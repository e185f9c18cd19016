"""Worker processes without the outage safeguards, to show that the outage test fails without them.

A worker that imports this module (`WorkerProcess(include=("tests.support.without_safeguards",))`) runs without
what `TEST_WITHOUT_SAFEGUARDS` names (comma-separated):
- `registry`: the in-flight registry accepts every envelope and records nothing, so a re-synced order's
  events go out again in new envelopes and none is dropped as held elsewhere (the code before issue 10);
- `probe`: the drainer never probes Klaviyo after an outage, so waiting work sits out its backoff.
Used by `python -m bench.outage --without ...`; never by the suite.
"""

from __future__ import annotations

import os
from typing import Any

import delivery.drainer
import delivery.publish
from delivery.runtime import Runtime
from state.inflight import InFlight

WITHOUT = {name.strip() for name in os.environ.get("TEST_WITHOUT_SAFEGUARDS", "").split(",") if name.strip()}
UNKNOWN = WITHOUT - {"registry", "probe"}
if UNKNOWN:
    raise ValueError(f"TEST_WITHOUT_SAFEGUARDS: unknown safeguard(s) {sorted(UNKNOWN)}; known: registry, probe")


def _claim_everything(envelopes: list[dict[str, Any]], inflight: InFlight) -> list[dict[str, Any]]:
    return list(envelopes)


def _no_probe(rt: Runtime) -> int:
    return 0


if "registry" in WITHOUT:
    delivery.publish.claim_operations = _claim_everything
if "probe" in WITHOUT:
    delivery.drainer.probe_after_outage = _no_probe
