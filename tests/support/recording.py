"""Reading the Klaviyo sandbox's request recording (`--record FILE`, one JSON object a line) while it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def recorded_requests(path: Path) -> list[dict[str, Any]]:
    """Every request recorded so far. The sandbox may be writing a line at this moment: a last line without its
    newline is not complete yet and is left for the next read (parsing it failed a test once, on a slow machine)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]
