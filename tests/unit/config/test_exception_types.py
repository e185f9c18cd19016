"""Every exception type the code records has an owner, a meaning and an action in the registry
(config/exception_types.py), and the mapping's [owners] names exactly those types with the registry's owners.

The code is read, not run: a `.record("<type>", ...)` call (on the register, a sink, the poller's recorder), a
problem or misfit built with a type (`Problem("unusable_phone", ...)`, `RecordProblem(..., "customer_mismatch")`,
`type=` / `kind=`), a module constant passed as the type (`EXPIRING`), and the `...Type = Literal[...]` aliases
of problem types. A new type recorded anywhere without a registry entry fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from config.exception_types import EXCEPTION_TYPES, OWNERS
from config.mapping import ExceptionOwners

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = ("config", "connectors", "sync", "state", "delivery", "flows", "tasks", "workers")
TYPE_NAME = re.compile(r"[a-z]+(_[a-z]+)+")  # exception types are snake_case words: reasons and keys are not


def _callee(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _type_arguments(node: ast.Call) -> list[ast.expr]:
    name = _callee(node)
    found: list[ast.expr] = []
    if name == "record" and node.args:
        found.append(node.args[0])
    if name.endswith("Problem") or name in ("Misfit", "problem"):
        found += [*node.args, *(k.value for k in node.keywords if k.arg in ("type", "kind"))]
    return found


def _module_constants(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    constants: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants.setdefault(target.id, set()).add(node.value.value)
    return constants


def _values(node: ast.AST, constants: dict[str, set[str]]) -> set[str]:
    """The type names a node of the tree records (empty for anything else)."""
    if isinstance(node, ast.Call):
        out: set[str] = set()
        for arg in _type_arguments(node):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.add(arg.value)
            elif isinstance(arg, ast.Name):
                out |= constants.get(arg.id, set())
        return out
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript) \
            and ast.unparse(node.value.value) == "Literal" \
            and any(isinstance(t, ast.Name) and t.id.endswith("Type") for t in node.targets):
        return {e.value for e in ast.walk(node.value.slice) if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def recorded_types(sources: dict[str, str]) -> dict[str, set[str]]:
    """Exception type -> where the sources (path -> text) record it."""
    trees = {path: ast.parse(text) for path, text in sources.items()}
    constants = _module_constants(trees)
    found: dict[str, set[str]] = {}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            for value in _values(node, constants):
                if TYPE_NAME.fullmatch(value):
                    found.setdefault(value, set()).add(f"{path}:{getattr(node, 'lineno', 0)}")
    return found


def product_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for pkg in PRODUCT for p in sorted((ROOT / pkg).rglob("*.py"))}


RECORDED = recorded_types(product_sources())


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_every_recorded_type_has_an_owner_a_meaning_and_an_action(name: str) -> None:
    assert name in EXCEPTION_TYPES, (
        f"exception type {name!r} is recorded at {sorted(RECORDED[name])} but has no entry in "
        "config/exception_types.py (owner, summary, meaning, action) nor a key in config.mapping.ExceptionOwners")
    entry = EXCEPTION_TYPES[name]
    assert entry.owner in OWNERS
    assert entry.summary.strip() and entry.meaning.strip() and entry.action.strip()


def test_the_registry_says_truly_which_types_are_recorded() -> None:
    # the scan finds every type the registry calls recorded (so it is not blind), and none it calls reserved
    assert {n for n, t in EXCEPTION_TYPES.items() if t.recorded} == set(RECORDED)


def test_the_mapping_owners_name_exactly_the_registry_with_its_defaults() -> None:
    defaults = ExceptionOwners()
    fields = set(ExceptionOwners.model_fields) - {"default"}
    assert fields == set(EXCEPTION_TYPES)
    assert {n: getattr(defaults, n) for n in fields} == {n: t.owner for n, t in EXCEPTION_TYPES.items()}


def test_a_new_type_without_an_entry_is_caught() -> None:
    source = (
        "BROKEN = 'widget_broken'\n"
        "def f(rt, x):\n"
        "    rt.exceptions.record('gadget_lost', 'key', 'reason')\n"
        "    rt.exceptions.record(BROKEN, 'key', 'reason')\n"
        "    return Problem('thing_missing', f'customer:{x}', 'no thing'), RecordProblem(x, 'f', 'r', 'odd_kind')\n"
        "SomeType = Literal['new_misfit']\n"
    )
    assert set(recorded_types({"x.py": source})) == {
        "gadget_lost", "widget_broken", "thing_missing", "odd_kind", "new_misfit"}
