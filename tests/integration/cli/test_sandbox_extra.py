"""The `sandbox` extra is optional: the fleet never imports it (nor the sandboxes), and `bcsync demo` /
`bcsync sandbox ...` without it say how to install it in one line, exit code 2, no traceback.

"Without it" is a subprocess whose first import finder refuses the extra's modules, as on a machine where
only `pip install bcsync` ran. No server is started.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib

import pytest

from sandbox.extra import EXTRA_MODULES, INSTALL
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

WITHOUT_EXTRA = textwrap.dedent(
    f"""
    import importlib.abc
    import sys

    BLOCKED = {tuple(EXTRA_MODULES)!r}

    class NoSandboxExtra(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, NoSandboxExtra())
    """
)

# The fleet's packages: what the wheel ships (pyproject's package list), less the sandboxes.
PRODUCT_PACKAGES = sorted(
    {pattern.rstrip("*").rstrip(".") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    - {"sandbox"}
)
NOT_PRODUCT = ("workers.demo",)  # `bcsync demo` runs the sandboxes: it is checked below, not imported here


def run_without_extra(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRA + textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_blocker_blocks() -> None:
    done = run_without_extra(f"import {EXTRA_MODULES[0]}")
    assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, done.stderr


def test_every_fleet_module_imports_without_the_extra_and_without_the_sandboxes() -> None:
    assert {"config", "connectors", "sync", "tasks", "workers"} <= set(PRODUCT_PACKAGES)
    done = run_without_extra(
        f"""
        import importlib, json, pkgutil

        imported = []
        for top in {PRODUCT_PACKAGES!r}:
            package = importlib.import_module(top)
            imported.append(top)
            for info in pkgutil.walk_packages(package.__path__, top + "."):
                if info.name.startswith({NOT_PRODUCT!r}):
                    continue
                importlib.import_module(info.name)
                imported.append(info.name)
        leaked = sorted(name for name in sys.modules
                        if name.partition(".")[0] in ("sandbox", *BLOCKED))
        print(json.dumps({{"imported": imported, "leaked": leaked}}))
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "workers.cli" in result["imported"] and "config.celery" in result["imported"]
    assert not [name for name in result["imported"] if name.startswith(NOT_PRODUCT)]
    assert result["leaked"] == [], "the fleet imports the sandboxes or their extra"


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["demo", "--minutes", "0.1"], "bcsync demo"),
        (["sandbox", "klaviyo", "--port", "0"], "bcsync sandbox"),
    ],
)
def test_sandbox_commands_without_the_extra_say_how_to_install_it(argv: list[str], command: str) -> None:
    done = run_without_extra(
        f"""
        sys.argv = ["bcsync", *{argv!r}]
        from workers.entry import main
        main()
        """
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{command} needs the sandbox extra") and lines[0].endswith(INSTALL), lines[0]
    assert "Traceback" not in done.stdout + done.stderr


def test_sandbox_help_needs_no_extra() -> None:
    done = run_without_extra(
        """
        sys.argv = ["bcsync", "sandbox", "--help"]
        from workers.entry import main
        main()
        """
    )
    assert done.returncode == 0, done.stderr
    assert "klaviyo" in done.stdout and "bluecherry" in done.stdout


def test_extra_modules_are_those_of_the_sandbox_extra() -> None:
    """sandbox/extra.py names the modules that pyproject's `sandbox` extra installs; dev pulls the extra in."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    wanted = {normalized(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]) for requirement in extras["sandbox"]}
    modules = {
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if {normalized(d) for d in distributions} & wanted and not module.startswith("_")
    }
    assert modules == set(EXTRA_MODULES)
    assert "bcsync[sandbox]" in extras["dev"]
    core = {normalized(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in PYPROJECT["project"]["dependencies"]}
    assert not core & wanted, "a sandbox-only package is a core dependency too"
