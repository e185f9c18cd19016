"""The import contracts in pyproject.toml hold, and a deliberate violation breaks them (so they can fail)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT
PACKAGES = ("config", "connectors", "sync", "state", "delivery", "flows", "tasks", "workers", "sandbox", "testing")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy_of_the_product(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_product_keeps_its_import_contracts() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_copy_keeps_them_too(copy_of_the_product: Path) -> None:
    """The check reads the copy it runs in (not the installed project), so the violations below are real."""
    result = lint_imports(copy_of_the_product)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("sync/_violation.py", "from state.ledger import Ledger  # noqa: F401\n", "Imports point one way"),
        ("state/_violation.py", "from delivery.engine import process_envelope  # noqa: F401\n",
         "Imports point one way"),
        ("sync/_violation.py", "import redis  # noqa: F401\n", "sync is the pure domain"),
        ("sandbox/_violation.py", "from config.settings import Settings  # noqa: F401\n",
         "The sandboxes are stand-ins"),
        ("delivery/_violation.py", "from sandbox.server import free_port  # noqa: F401\n",
         "The product imports the sandboxes only"),
        ("testing/oracle/_violation.py", "from sync.orders.aggregates import customer_aggregates  # noqa: F401\n",
         "The oracle is independent"),
    ],
)
def test_a_deliberate_violation_breaks_the_contracts(
    copy_of_the_product: Path, module: str, source: str, broken: str
) -> None:
    (copy_of_the_product / module).write_text(source)
    result = lint_imports(copy_of_the_product)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout


def test_no_module_of_the_product_takes_part_in_an_import_cycle() -> None:
    """Layers say nothing about modules of one package importing each other in a circle: check that too."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = [
        (module, other) for module in graph.modules for other in graph.find_modules_directly_imported_by(module)
        if other != module and graph.chain_exists(importer=other, imported=module)
    ]
    assert cycles == []
