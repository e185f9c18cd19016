"""The deployment files as an operator uses them (parsed, no Docker needed): compose.yaml bounds Redis' memory
(sized from docs/deployment.md's measured table) without eviction, every fleet service has a health check through
`bcsync health`, Flower's password guard trips on the shipped .env.example, the Procfile's web process (the console)
listens on $PORT, and the documented scaling recipe never starts a second Redis."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DEPLOYMENT = (ROOT / "docs" / "deployment.md").read_text()
UNITS = {"kb": 1 / 1024, "mb": 1.0, "gb": 1024.0}  # Redis' memory units, in MiB (1mb = 1024*1024 bytes)
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


class Refused(Exception):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default} (unset or empty -> default), ${VAR:?error} (unset or empty
    -> refused)."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name, "")
        if current:
            return current
        if op == "?":
            raise Refused(arg)
        return arg if op == "-" else ""
    return INTERPOLATION.sub(one, value)


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if "=" in line and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def mib(size: str) -> float:
    match = re.fullmatch(r"(\d+)(kb|mb|gb)", size.lower())
    assert match, f"not a Redis memory size: {size!r}"
    return int(match.group(1)) * UNITS[match.group(2)]


def measured_mib(row_label: str) -> float:
    """The used_memory MiB of a bold total row of docs/deployment.md's "Redis memory" tables."""
    row = next(line for line in DEPLOYMENT.splitlines() if line.startswith(f"| **{row_label}**"))
    return float(re.findall(r"\*\*([\d,]+)\*\*", row)[0].replace(",", ""))


def redis_option(name: str) -> str:
    command = SERVICES["redis"]["command"]
    return str(command[command.index(f"--{name}") + 1])


def test_redis_never_evicts_and_its_memory_is_bounded_by_the_measured_table() -> None:
    assert redis_option("maxmemory-policy") == "noeviction"
    default = interpolate(redis_option("maxmemory"), {})  # REDIS_MAXMEMORY unset: the documented default
    measured = measured_mib("1M customers + 1M orders + 1M SKUs") + measured_mib("1M facts")
    assert 1.1 * measured <= mib(default) <= 2 * measured, (default, measured)
    assert interpolate(redis_option("maxmemory"), {"REDIS_MAXMEMORY": "2700mb"}) == "2700mb"
    assert f"`{default}`" in DEPLOYMENT  # the default is documented


def _health(service: str) -> list[str]:
    test = SERVICES[service].get("healthcheck", {}).get("test")
    assert test, f"{service} has no health check"
    return shlex.split(test[1]) if test[0] == "CMD-SHELL" else list(test[1:])


@pytest.mark.parametrize("service", ["beat", "poller"])
def test_beat_and_poller_have_health_checks(service: str) -> None:
    assert _health(service) == ["bcsync", "health", service]


@pytest.mark.parametrize("service", [name for name in SERVICES if name.startswith("worker-")])
def test_each_worker_checks_its_own_lane(service: str) -> None:
    command = SERVICES[service]["command"]
    lane = command[command.index("--lane") + 1]
    check = _health(service)
    assert check[:3] == ["bcsync", "health", "worker"] and check[check.index("--lane") + 1] == lane


def test_compose_refuses_to_start_flower_without_a_password() -> None:
    environment = SERVICES["flower"]["environment"]
    shipped = dotenv(ROOT / ".env.example")  # what `cp .env.example .env` gives
    assert shipped.get("BCSYNC_FLOWER_PASSWORD", "") == ""
    with pytest.raises(Refused, match="BCSYNC_FLOWER_PASSWORD"):
        interpolate(environment["BCSYNC_FLOWER_PASSWORD"], shipped)
    with pytest.raises(Refused):
        interpolate(environment["BCSYNC_FLOWER_PASSWORD"], {})
    assert interpolate(environment["BCSYNC_FLOWER_PASSWORD"], {**shipped, "BCSYNC_FLOWER_PASSWORD": "s3cret-long-pw"}) \
        == "s3cret-long-pw"
    assert SERVICES["flower"]["ports"] == ["127.0.0.1:5555:5555"]  # published on the host's loopback only


def procfile() -> dict[str, list[str]]:
    lines = [line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    return {name.strip(): shlex.split(command) for name, command in lines}


def test_the_procfile_web_process_is_the_console_on_port_with_users_from_the_environment() -> None:
    """The platform routes HTTP to `web` on $PORT: the operations console now that one exists (issue 21; Flower was
    the web process until then), on every address, its users from the environment - never on the command line."""
    from workers.cli import app  # noqa: PLC0415  the CLI's registry: which web commands exist

    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    web = procfile()["web"]
    assert web[:2] == ["bcsync", "console" if "console" in commands else "flower"]
    assert web[web.index("--port") + 1] == "$PORT"
    assert web[web.index("--address") + 1] == "0.0.0.0"  # the platform's router must reach it
    assert not any(word in arg.upper() for arg in web for word in ("PASSWORD", "USERS"))  # from the environment
    assert "flower" not in procfile()  # no second web process: only `web` gets a port and the router


def test_the_procfile_runs_what_compose_runs() -> None:
    procs = procfile()
    for service, svc in SERVICES.items():
        if service in ("redis", "flower"):
            continue
        assert procs[service] == svc["command"], service


def test_the_scaling_recipe_never_starts_a_second_redis() -> None:
    ups = [line.strip() for line in DEPLOYMENT.splitlines() if line.strip().startswith("docker compose up")]
    named = [u for u in ups if re.search(r"\sworker-\w+(\s|$)", re.sub(r"--scale \S+", "", u))]
    assert named, "the recipe for further hosts is gone"
    for line in named:  # a service named explicitly starts its dependencies - the redis service - unless --no-deps
        assert "--no-deps" in line, line
