"""`python -m testing.oracle --bluecherry URL --klaviyo URL [--mapping FILE] [--json]`.

Fetches the Blue Cherry sandbox's dump and the Klaviyo sandbox's state, prints the report (or the counts as
JSON) and exits 1 when any count is non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from testing.oracle.diff import diff_state
from testing.oracle.expected import expected_state
from testing.oracle.rules import TenantRules


def fetch(url: str, timeout: float) -> dict[str, Any]:
    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--bluecherry", required=True, help="Blue Cherry sandbox base URL")
    parser.add_argument("--klaviyo", required=True, help="Klaviyo sandbox base URL")
    parser.add_argument("--mapping", type=Path, help="the tenant's mapping TOML (default: documented defaults)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("--limit", type=int, default=5, help="examples per kind in the report")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each read")
    args = parser.parse_args(argv)
    rules = TenantRules.from_toml(args.mapping) if args.mapping else TenantRules()
    try:
        dump = fetch(f"{args.bluecherry.rstrip('/')}/_sandbox/dump", args.timeout)
        state = fetch(f"{args.klaviyo.rstrip('/')}/_sandbox/state", args.timeout)
    except httpx.HTTPError as exc:
        print(f"oracle: cannot read the sandboxes: {exc}", file=sys.stderr)
        return 2
    diff = diff_state(expected_state(dump, rules), state)
    print(json.dumps(diff.counts(), indent=2) if args.json else diff.report(args.limit))
    return 1 if any(diff.counts().values()) else 0
