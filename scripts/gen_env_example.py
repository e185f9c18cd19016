"""Write `.env.example` from `config.settings.Settings`: every setting, its default and what it means.

    .venv/bin/python -m scripts.gen_env_example          # rewrite .env.example
    .venv/bin/python -m scripts.gen_env_example --check  # exit 1 when .env.example is out of date

A setting's meaning is its ``Field(description=...)``; for fields declared without one, ``MEANINGS`` below
supplies it. A new setting with neither is refused, so the file never lists a value nobody explained.
Settings whose default is "unset" (None) are written commented out: an empty value would not mean unset.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[1]

from config.settings import Settings  # noqa: E402 - needs the repo on sys.path when run as a script

TARGET = REPO / ".env.example"

MEANINGS: dict[str, str] = {
    "redis_url": "Redis for the Celery broker and all fleet state (redis://[:password@]host:port/db).",
    "klaviyo_base_url": "Klaviyo API root; the sandbox's URL in development and tests.",
    "klaviyo_api_key": "Klaviyo private API key (pk_...). Secret: sent as `Authorization: Klaviyo-API-Key`.",
    "klaviyo_revision": "Klaviyo API revision header pinned for every request.",
    "klaviyo_timeout_seconds": "Timeout of one Klaviyo HTTP request, in seconds.",
    "klaviyo_max_connections": "Pooled HTTP connections to Klaviyo per worker process.",
    "bluecherry_base_url": "Blue Cherry REST API root (Azure API Management gateway).",
    "bluecherry_subscription_key": "Blue Cherry APIM key (secret; sent as Ocp-Apim-Subscription-Key).",
    "bluecherry_timeout_seconds": "Timeout of one Blue Cherry HTTP request, in seconds.",
    "bluecherry_max_attempts": "Tries of one Blue Cherry request on transient errors before it fails.",
    "backoff_base_seconds": "First retry delay of a delivery; later ones grow exponentially to the max.",
    "backoff_max_seconds": "Longest retry delay of a failed delivery, in seconds.",
    "delayed_drain_interval_seconds": "How often due delayed retries are moved back into their lane.",
    "task_soft_time_limit_seconds": "Soft time limit of one task: it is asked to stop after this.",
    "task_time_limit_seconds": "Hard time limit of one task: its process is killed after this.",
    "worker_concurrency": "Processes per worker (per lane); scale the batch lane's first.",
    "ledger_ttl_days": "Retention of delivery-ledger entries (what was delivered, when), in days.",
    "exception_ttl_days": "Retention of exception-register entries (data problems for operators), in days.",
    "fingerprint_ttl_days": "Retention of per-record fingerprints and delivered versions, in days.",
    "poller_lock_ttl_seconds": "Lifetime of the poller's Redis lock; a standby poller takes over after this.",
    "poll_overlap_seconds": "Each poll re-reads this many seconds before its watermark (late commits).",
    "sentry_dsn": "Sentry DSN; unset = Sentry off (keys, e-mails, phones are scrubbed).",
    "sentry_environment": "Sentry environment name attached to every event.",
    "sentry_traces_sample_rate": "Share of tasks traced in Sentry (0 = tracing off).",
    "flower_port": "Port of the Flower web UI.",
    "flower_user": "Flower basic-auth user name.",
    "demo_klaviyo_port": "Port of the Klaviyo sandbox that `bcsync demo` starts.",
    "demo_bluecherry_port": "Port of the Blue Cherry sandbox that `bcsync demo` starts.",
}

_SECTION = re.compile(r"^\s*#\s*---\s*(?P<title>.+?)\s*-*\s*$")
_FIELD = re.compile(r"^\s{4}(?P<name>[a-z_][a-z0-9_]*)\s*:")


def sections() -> dict[str, str]:
    """Field name -> the ``# --- Title ---`` comment it sits under in config/settings.py."""
    found: dict[str, str] = {}
    title = ""
    for line in inspect.getsource(Settings).splitlines():
        if heading := _SECTION.match(line):
            title = heading["title"]
        elif (field := _FIELD.match(line)) and field["name"] in Settings.model_fields:
            found[field["name"]] = title
    return found


def dotenv_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    text = str(value)
    if re.search(r"[\s#\"'$]", text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def render() -> str:
    titles = sections()
    prefix = str(Settings.model_config.get("env_prefix", ""))
    lines = [
        "# Every bcsync setting with its default. Copy to `.env` and change what differs.",
        "# Generated from config/settings.py by scripts/gen_env_example.py - do not edit by hand.",
    ]
    current = None
    for name, info in Settings.model_fields.items():
        meaning = info.description or MEANINGS.get(name)
        if not meaning:
            raise SystemExit(
                f"setting {name!r} has no meaning: add Field(description=...) in config/settings.py "
                f"or an entry in MEANINGS in {Path(__file__).name}"
            )
        if titles.get(name, "") != current:
            current = titles.get(name, "")
            lines += ["", f"# === {current or 'Other'} ==="]
        key = f"{prefix}{name}".upper()
        lines.append(f"# {meaning}")
        if info.default is None:
            lines.append(f"# {key}=")
        else:
            lines.append(f"{key}={dotenv_value(info.default)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the file is up to date")
    parser.add_argument("--file", type=Path, default=TARGET, help="the file to write or check")
    args = parser.parse_args()
    target: Path = args.file
    text = render()
    if args.check:
        if target.exists() and target.read_text(encoding="utf-8") == text:
            return 0
        print(f"{target} is out of date with config/settings.py: run python -m scripts.gen_env_example")
        return 1
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(Settings.model_fields)} settings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
