"""``python -m sandbox.bluecherry.dump URL [--out FILE]``: save a running sandbox's ``GET /_sandbox/dump``.

The dump is every stored record of every resource plus the clock (docs/sandbox-bluecherry.md, "Dump"): what
an expected-state oracle compares Klaviyo against. Without ``--out`` the JSON goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import httpx


def fetch_dump(url: str, timeout: float = 300.0) -> bytes:
    """The raw JSON of ``GET <url>/_sandbox/dump`` (a big tenant takes a while: hence the long timeout)."""
    response = httpx.get(f"{url.rstrip('/')}/_sandbox/dump", timeout=timeout)
    response.raise_for_status()
    return response.content


def write_atomically(path: Path, content: bytes) -> None:
    """Written beside the target and renamed, so a reader never sees half a dump."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.bluecherry.dump",
        description="Save a running Blue Cherry sandbox's GET /_sandbox/dump as JSON.",
    )
    parser.add_argument("url", help="the sandbox's base URL, e.g. http://127.0.0.1:8701")
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the dump")
    args = parser.parse_args(argv)
    try:
        content = fetch_dump(args.url, args.timeout)
    except httpx.HTTPError as exc:
        print(f"bluecherry dump: {exc}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.buffer.write(content + b"\n")
        sys.stdout.flush()
        return 0
    write_atomically(args.out, content)
    counts = {name: len(rows) for name, rows in json.loads(content)["resources"].items()}
    print(f"wrote {args.out}: " + ", ".join(f"{n} {name}" for name, n in counts.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
