"""The `sandbox` extra (pyproject.toml): third-party packages only the sandboxes use, never the fleet.

`bcsync sandbox ...` and `bcsync demo` run on an install without it only far enough to say so in one line
(exit code 2). Standard library only, so that saying it can never fail the same way.
"""

from __future__ import annotations

import importlib

# Top-level modules of the extra's distributions: klaviyo-api ships `klaviyo_api` and `openapi_client`
# (tests/integration/cli/test_sandbox_extra.py keeps this in step with pyproject.toml).
EXTRA_MODULES = ("openapi_client", "klaviyo_api")
INSTALL = "pip install 'bcsync[sandbox]'"


def missing_from_extra(exc: ImportError) -> str | None:
    """The extra's module whose absence raised `exc`, or None when `exc` is about anything else."""
    top = (exc.name or "").partition(".")[0]
    return top if top in EXTRA_MODULES else None


def first_missing() -> str | None:
    """The first of the extra's modules that cannot be imported, or None when the extra is installed."""
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return missing_from_extra(exc) or name
    return None


def install_hint(command: str, module: str) -> str:
    return f"{command} needs the sandbox extra ({module} is not installed): {INSTALL}"
