"""Klaviyo's OpenAPI file, vendored in the repository (vendor/klaviyo/README.md says where it came from)."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KLAVIYO_OPENAPI = ROOT / "vendor" / "klaviyo" / "openapi-stable.json.gz"


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    with gzip.open(KLAVIYO_OPENAPI, "rt", encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    return spec


def klaviyo_openapi() -> dict[str, Any]:
    """The parsed spec, read once per process. A missing file is an error (FileNotFoundError), never a skip.

    Callers get the cached object: copy it (copy.deepcopy) before changing anything in it.
    """
    return _load()
