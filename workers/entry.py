"""The `bcsync` entry point: the one place a command's start-up failure becomes one clear line.

Before any command module is imported (several read the settings at import: the Celery app is built then),
the settings and the tenant mapping are read, and - unless the command needs no Redis (`WITHOUT_REDIS`) or
only help was asked for - Redis is pinged. A refused setting, a refused mapping file, an unreachable Redis or
one that refuses the password is one line on stderr and a non-zero exit (2: configuration, 1: Redis), never
a traceback; the same for Redis failing while a command runs. `--help` reads the settings too: a bad
setting is reported before anything else, so fix it first.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import redis
from pydantic import SecretStr, ValidationError
from redis.exceptions import AuthenticationError, AuthorizationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.mapping import MappingError, get_mapping
from config.settings import Settings, get_settings

# Top-level commands that never touch the configured Redis, and why (every other command is refused at once
# when Redis does not answer). They still read and validate the settings and the mapping.
WITHOUT_REDIS: dict[str, str] = {
    "demo": "starts a private Redis when the configured one does not answer",
    "sandbox": "runs a sandbox HTTP server; no fleet state",
    "mapping": "onboarding reads Blue Cherry only, before the fleet (and its Redis) exists",
    "playbook": "writes the playbook from the mapping, the settings and the code",
}
PING_TIMEOUT_SECONDS = 3.0
CONFIG_EXIT, REDIS_EXIT = 2, 1


def main(argv: Sequence[str] | None = None) -> None:
    """Run `bcsync` with `argv` (default: the process's arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = get_settings()
    except ValidationError as exc:  # only the settings' own: a command's data errors are not settings errors
        _fail(settings_error(exc), CONFIG_EXIT)
    try:
        get_mapping()
    except MappingError as exc:
        _fail(f"bcsync: mapping refused: {one_line(str(exc))}", CONFIG_EXIT)
    url = settings.redis_url
    try:
        from workers.cli import app  # noqa: PLC0415 - only once the settings are known to be good

        if _needs_redis(args):
            _ping(url)
        app(args=args, prog_name="bcsync")
    except (AuthenticationError, AuthorizationError) as exc:
        _fail(f"bcsync: Redis at {redacted(url)} refused the credentials ({one_line(str(exc))}); check the "
              "password in BCSYNC_REDIS_URL", REDIS_EXIT)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        _fail(unreachable(url, exc), REDIS_EXIT)
    except Exception as exc:
        # kombu wraps a broker that stopped answering mid-command (a publish) in its OperationalError
        if type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith("kombu"):
            _fail(unreachable(url, exc), REDIS_EXIT)
        raise


def _needs_redis(args: list[str]) -> bool:
    """False for help, completion, the commands in WITHOUT_REDIS and `console --hash-password` (it only hashes)."""
    if any(a in ("--help", "-h", "--hash-password") for a in args):
        return False
    command = next((a for a in args if not a.startswith("-")), None)
    return command is not None and command not in WITHOUT_REDIS


def _ping(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=PING_TIMEOUT_SECONDS,
                                      socket_timeout=PING_TIMEOUT_SECONDS)
    except ValueError as exc:
        _fail(f"bcsync: setting BCSYNC_REDIS_URL={redacted(url)} refused: {one_line(str(exc))} "
              "(redis://[:password@]host:port/db)", CONFIG_EXIT)
    try:
        client.ping()
    finally:
        client.close()


def _fail(line: str, code: int) -> NoReturn:
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(code)


def unreachable(url: str, exc: BaseException) -> str:
    return (f"bcsync: Redis at {redacted(url)} is not reachable ({one_line(str(exc))}); check BCSYNC_REDIS_URL "
            "and that Redis is up")


def settings_error(exc: ValidationError) -> str:
    """`bcsync: setting BCSYNC_RATE_SHARE=1.5 refused: Input should be less than or equal to 1` - every error
    of the settings on one line; a secret's value is never printed."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error.get("loc", ()))
        rule = error.get("msg", "invalid").removeprefix("Value error, ")
        if not loc:  # a rule between settings (a model validator): its message names them
            parts.append(rule)
            continue
        name = f"{prefix}{loc}".upper()
        field = Settings.model_fields.get(str(error["loc"][0]))
        secret = field is not None and field.annotation is SecretStr
        value = "" if secret or "input" not in error else f"={error['input']}"
        parts.append(f"{name}{value}: {rule}")
    return one_line("bcsync: setting refused: " + "; ".join(parts) + " (see .env.example)")


def one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", "; ", text.strip())


def redacted(url: str) -> str:
    """The Redis URL as safe to print: a password in it is replaced."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{parts.hostname or ''}{port}"))


if __name__ == "__main__":
    main()
