"""compose.yaml, the Procfile and the Dockerfile, parsed and checked (no Docker engine runs here)."""

from __future__ import annotations

import importlib
import re
import shlex
from typing import Any

import pytest
import typer.main
import yaml

from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT
LANES = {"fast", "default", "batch"}
PROCESSES = {
    "worker-fast": ["bcsync", "worker", "--lane", "fast"],
    "worker-default": ["bcsync", "worker", "--lane", "default"],
    "worker-batch": ["bcsync", "worker", "--lane", "batch"],
    "beat": ["bcsync", "beat"],
    "poller": ["bcsync", "poller"],
    "flower": ["bcsync", "flower"],
}
# the Procfile: the same processes, except that its `web` process (the one a platform routes HTTP to, on $PORT)
# is the operations console; Flower stays a compose service (only `web` gets a port on a platform)
PROCFILE = {**{name: command for name, command in PROCESSES.items() if name != "flower"},
            "web": ["bcsync", "console", "--port", "$PORT", "--address", "0.0.0.0"]}
BCSYNC_SUBCOMMANDS = {"worker", "beat", "poller", "flower", "console", "run", "demo"}
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(?::?[-?][^}]*)?\}$")
SECRET_NAME = re.compile(r"password|secret|api_key|subscription_key|token|dsn", re.IGNORECASE)
SECRET_LITERALS = [
    re.compile(r"pk_[A-Za-z0-9]{16,}"),                # a Klaviyo private key
    re.compile(r"Klaviyo-API-Key\s+\S+", re.IGNORECASE),
    re.compile(r"[a-z]+://[^/\s:@$]*:[^@\s$]+@"),      # user:password@ in a URL
    re.compile(r"--basic[_-]auth[= ](?!\$)\S+"),       # flower's basic auth given literally
    re.compile(r"change-me"),                          # the placeholder password
    re.compile(r"https://[0-9a-f]{32}@"),              # a Sentry DSN
]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def procfile() -> dict[str, list[str]]:
    processes: dict[str, list[str]] = {}
    for number, line in enumerate((REPO / "Procfile").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep and re.fullmatch(r"[a-z][a-z0-9-]*", name), f"Procfile line {number}: not 'name: command'"
        assert name not in processes, f"Procfile: {name} twice"
        processes[name] = shlex.split(command)
    return processes


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def test_compose_has_every_service() -> None:
    assert set(services()) == {"redis", *PROCESSES}


def test_procfile_has_every_process() -> None:
    assert set(procfile()) == set(PROCFILE)


def test_procfile_and_compose_run_the_same_commands() -> None:
    composed = {name: command_of(service) for name, service in services().items() if name != "redis"}
    assert composed == PROCESSES and procfile() == PROCFILE


def test_every_command_is_a_known_bcsync_subcommand() -> None:
    commands = [command_of(s) for n, s in services().items() if n != "redis"] + list(procfile().values())
    for command in commands:
        assert command[0] == "bcsync", command
        assert command[1] in BCSYNC_SUBCOMMANDS, command


def test_redis_persists_and_never_evicts() -> None:
    redis = services()["redis"]
    assert str(redis["image"]).split(":")[0] == "redis" and str(redis["image"]).split(":")[1].startswith("7")
    command = command_of(redis)
    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--maxmemory-policy"] == "noeviction"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "redis-cli" in redis["healthcheck"]["test"] and "ping" in redis["healthcheck"]["test"]
    named = redis["volumes"][0].split(":")[0]
    assert named in compose()["volumes"], "a named volume, so data outlives the container"


def test_workers_have_one_lane_each_and_cover_all_lanes() -> None:
    lanes = []
    for name, service in services().items():
        command = command_of(service)
        if command[:2] != ["bcsync", "worker"]:
            continue
        assert command.count("--lane") == 1, f"{name} must serve exactly one lane"
        lanes.append(command[command.index("--lane") + 1])
        test = " ".join(service["healthcheck"]["test"])
        lane = command[command.index("--lane") + 1]
        assert f"bcsync health worker --lane {lane}" in test, f"{name} checks a worker of its own lane answers"
    assert sorted(lanes) == sorted(LANES)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_fleet_services_share_image_env_file_restart_and_wait_for_redis(name: str) -> None:
    service = services()[name]
    assert service["build"] == "." and service["image"] == "bcsync:latest"
    assert service["env_file"] == ".env"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert service["restart"] in ("unless-stopped", "always")


def test_flower_has_basic_auth_from_env_a_port_and_a_healthcheck() -> None:
    flower = services()["flower"]
    environment = flower["environment"]
    for key in ("BCSYNC_FLOWER_USER", "BCSYNC_FLOWER_PASSWORD"):
        assert ENV_REFERENCE.match(environment[key]), f"{key} must come from the environment"
        assert ":?" in environment[key], f"{key} must be required, not defaulted"
    assert any(str(port).endswith(":5555") for port in flower["ports"])
    assert "/healthcheck" in " ".join(flower["healthcheck"]["test"])


def test_compose_environment_holds_no_secret_literal() -> None:
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert ENV_REFERENCE.match(str(value)), f"{name}.{key} must be an env reference"


@pytest.mark.parametrize("path", ["compose.yaml", "Procfile", "Dockerfile"])
def test_no_secret_literal_in_the_file(path: str) -> None:
    text = (REPO / path).read_text(encoding="utf-8")
    for pattern in SECRET_LITERALS:
        assert not pattern.search(text), f"{path}: {pattern.pattern}"


def test_dockerfile_builds_one_image_running_as_non_root() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert any(re.match(r"RUN pip install (\.|/src)\b", line) for line in instructions)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the last USER is not root"
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and ".venv" in ignored, "no local secrets or venv in the image"


def test_the_cli_offers_every_subcommand_used_once_it_exists() -> None:
    """The subcommands are written in parallel: once any of them exists, all must. `bcsync poller`
    arrives with the customers flow, so it is held to this only once it is there."""
    cli = importlib.import_module("workers.cli")  # by name: its imports are not ours to type-check
    group = typer.main.get_command(cli.app)
    offered = set(getattr(group, "commands", {}))
    used = {command[1] for command in PROCESSES.values()} | {"run", "demo"}
    if "poller" not in offered:
        used.discard("poller")
    if not offered & used:
        pytest.skip(f"workers.cli offers none of {sorted(used)} yet")
    assert used <= offered, f"missing: {sorted(used - offered)}"
