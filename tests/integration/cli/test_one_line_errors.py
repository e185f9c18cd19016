"""Every `bcsync` command, as an operator runs it, turns a refused setting and an unreachable Redis into one
clear line on stderr and a non-zero exit - no traceback. The commands are enumerated from the CLI's own
registry (`workers.cli.app`), so a command added later is covered without touching this test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer.main

from workers.cli import app
from workers.entry import WITHOUT_REDIS

BCSYNC = str(Path(sys.executable).with_name("bcsync"))


def _leaves(command: Any, path: list[str]) -> Iterator[list[str]]:
    """Each runnable command as the argv that reaches it, its required arguments and options filled."""
    subcommands = getattr(command, "commands", None)
    if subcommands is not None:
        for name, sub in subcommands.items():
            yield from _leaves(sub, [*path, name])
        return
    argv = list(path)
    for param in command.params:
        if param.required:  # a value of any type: the refusal comes before the command reads it
            argv += ["1"] if param.param_type_name == "argument" else [param.opts[0], "1"]
    yield argv


COMMANDS = list(_leaves(typer.main.get_command(app), []))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


Run = tuple[list[str], subprocess.CompletedProcess[str]]


def _run_all(argvs: list[list[str]], tmp_path: Path, **env: str) -> list[Run]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    base |= {"BCSYNC_KEY_PREFIX": "onelinetest", "COLUMNS": "80", "NO_COLOR": "1", **env}

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        # in an empty folder: no .env of the checkout is read
        return subprocess.run([BCSYNC, *argv], env=base, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(zip(argvs, pool.map(run, argvs), strict=True))


def _one_line_failure(done: subprocess.CompletedProcess[str], *needles: str) -> str | None:
    """Why `done` is not one clear line on stderr with a non-zero exit (None when it is)."""
    lines = done.stderr.splitlines()
    if done.returncode == 0:
        return f"exit 0; stderr {done.stderr!r}"
    if len(lines) != 1 or "Traceback" in done.stderr:
        return f"{len(lines)} lines of stderr: {done.stderr[-600:]!r}"
    missing = [n for n in needles if n not in lines[0]]
    return f"{missing} not in {lines[0]!r}" if missing else None


def test_the_registry_holds_every_command() -> None:
    names = {" ".join(argv[:2]) for argv in COMMANDS}
    for expected in ("status", "erase 1", "dlq list", "exceptions", "flower", "worker --lane", "mapping check"):
        assert expected in names, (expected, sorted(names))
    assert set(WITHOUT_REDIS) <= {argv[0] for argv in COMMANDS}, "WITHOUT_REDIS names a command that is gone"


def test_a_refused_setting_is_one_line_on_every_command(tmp_path: Path) -> None:
    failures = {}
    for argv, done in _run_all(COMMANDS, tmp_path, BCSYNC_RATE_SHARE="1.5"):
        why = _one_line_failure(done, "BCSYNC_RATE_SHARE=1.5", "less than or equal to 1")
        if why is None and done.returncode != 2:
            why = f"exit {done.returncode}, not 2"
        if why:
            failures[" ".join(argv)] = why
    assert not failures, failures


def test_a_type_error_and_a_rule_between_settings_are_one_line(tmp_path: Path) -> None:
    ((_, done),) = _run_all([["status"]], tmp_path, BCSYNC_VISIBILITY_TIMEOUT_SECONDS="not-a-number")
    assert _one_line_failure(done, "BCSYNC_VISIBILITY_TIMEOUT_SECONDS=not-a-number") is None, done.stderr
    ((_, done),) = _run_all([["status"]], tmp_path, BCSYNC_CONSENT_SETTLE_SECONDS="600")
    assert _one_line_failure(done, "consent_settle_seconds must be less than") is None, done.stderr


def test_an_unreachable_redis_is_one_line_on_every_command_that_uses_it(tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{_closed_port()}/0"
    shown = url.replace("hunter2", "***")
    uses_redis = [argv for argv in COMMANDS if argv[0] not in WITHOUT_REDIS]
    failures = {}
    for argv, done in _run_all(uses_redis, tmp_path, BCSYNC_REDIS_URL=url):
        why = _one_line_failure(done, shown, "not reachable", "BCSYNC_REDIS_URL")
        if why is None and ("hunter2" in done.stderr or done.stdout.strip()):
            why = f"the password shown, or output besides the line: {done.stdout!r}"
        if why:
            failures[" ".join(argv)] = why
    assert not failures, failures


# Commands in WITHOUT_REDIS that serve until stopped (each has its own test), and safe argv for the others
LONG_RUNNING = {"demo", "sandbox"}
SAFE_ARGV = {"playbook": ["playbook", "--out", "-"]}  # to stdout: never over the committed docs/playbook.md


def test_commands_without_redis_do_not_need_it(tmp_path: Path) -> None:
    """With Redis closed (and Blue Cherry too), a command in WITHOUT_REDIS says nothing of Redis and shows no
    traceback: `mapping check|suggest` fail on Blue Cherry, `playbook` succeeds."""
    argvs = [SAFE_ARGV.get(argv[0], argv) for argv in COMMANDS
             if argv[0] in WITHOUT_REDIS and argv[0] not in LONG_RUNNING]
    assert {argv[0] for argv in argvs} == set(WITHOUT_REDIS) - LONG_RUNNING
    runs = _run_all(argvs, tmp_path, BCSYNC_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0",
                    BCSYNC_BLUECHERRY_BASE_URL=f"http://127.0.0.1:{_closed_port()}",
                    BCSYNC_BLUECHERRY_MAX_ATTEMPTS="1")
    for argv, done in runs:
        assert "Traceback" not in done.stderr and "Redis" not in done.stderr, (argv, done.stderr)
        if argv[0] == "mapping":
            assert done.returncode != 0 and "Connection refused" in done.stderr + done.stdout, (argv, done.stderr)
        else:
            assert done.returncode == 0, (argv, done.stderr)


@pytest.mark.parametrize("argv", [["--help"], ["status", "--help"], ["dlq", "list", "--help"]])
def test_help_needs_no_redis(tmp_path: Path, argv: list[str]) -> None:
    ((_, done),) = _run_all([argv], tmp_path, BCSYNC_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    assert done.returncode == 0 and "Usage" in done.stdout, done.stderr
