"""`config/mapping.example.toml` and the key reference in docs/configuration.md are generated from the
Mapping defaults: they must be up to date, complete, and load back to exactly the defaults."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from config.mapping import Mapping, load_mapping
from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT
EXAMPLE = REPO / "config" / "mapping.example.toml"
DOC = REPO / "docs" / "configuration.md"
GENERATOR = ["-m", "scripts.gen_mapping_example"]  # run from the repository root


def load_generator() -> ModuleType:
    return importlib.import_module("scripts.gen_mapping_example")


def leaf_keys(model: BaseModel, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    """Every key of the mapping that holds a value (not a table), with its default - walked independently
    of the generator, so a generator that skips keys cannot hide them."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from leaf_keys(value, path + (name,))
        else:
            yield path + (name,), value


def test_the_example_file_is_up_to_date() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == load_generator().render(), (
        "config/mapping.example.toml is out of date: run .venv/bin/python -m scripts.gen_mapping_example"
    )


def test_the_key_reference_in_the_doc_is_up_to_date() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert doc == load_generator().with_reference(doc), (
        "the key reference in docs/configuration.md is out of date: run python -m scripts.gen_mapping_example"
    )


def test_the_check_mode_agrees() -> None:
    done = subprocess.run([sys.executable, *GENERATOR, "--check"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_loads_back_to_exactly_the_defaults() -> None:
    assert load_mapping(EXAMPLE) == Mapping()


def test_the_example_spells_out_every_key_with_a_value(tmp_path: Path) -> None:
    # loading back to the defaults proves nothing if keys are missing (they default): compare the raw file
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert raw == Mapping().model_dump(mode="json", exclude_none=True, by_alias=True)
    unset = [".".join(path) for path, value in leaf_keys(Mapping()) if value is None]
    text = EXAMPLE.read_text(encoding="utf-8")
    for dotted in unset:  # TOML has no null: unset keys are shown commented out under their table
        table, _, name = dotted.rpartition(".")
        section = text.split(f"[{table}]\n", 1)[1].split("\n[", 1)[0]
        shown = next((line for line in section.splitlines() if line.startswith(f"# {name} = ")), None)
        assert shown is not None, f"{dotted} (unset by default) is not shown in [{table}]"
        # the value shown (\"\" or an example table) is one the key takes: uncommented, the file still loads
        edited = tmp_path / f"{name}.toml"
        edited.write_text(text.replace(f"\n{shown}\n", f"\n{shown[2:]}\n", 1), encoding="utf-8")
        load_mapping(edited)


def test_every_key_has_a_comment_line_above_it() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        is_key = line and not line.startswith(("#", "[")) and "=" in line
        if is_key or line.startswith("["):
            above = lines[i - 1]
            assert above.startswith("# ") and len(above) > 5, f"line {i + 1} {line!r} has no comment above it"


def test_every_mapping_key_is_in_the_configuration_doc() -> None:
    doc = DOC.read_text(encoding="utf-8")
    missing = [".".join(path) for path, _ in leaf_keys(Mapping()) if f"`{'.'.join(path)}`" not in doc]
    assert not missing, f"docs/configuration.md does not mention: {missing}"
    sections = [name for name in Mapping.model_fields if f"[{name}]" not in doc]
    assert not sections, f"docs/configuration.md has no section for: {sections}"


def test_a_key_without_a_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = load_generator()
    monkeypatch.delitem(generator.MEANINGS, "Consent.custom_source")
    with pytest.raises(SystemExit, match=r"Consent\.custom_source has no meaning"):
        generator.render()


GENERATOR_MODULE = load_generator()


@given(st.text())
@example("quote \" backslash \\ tab \t newline \n del \x7f nul \x00 unicode \u00e9\u2028\U0001f600")
def test_any_string_round_trips_through_the_emitter(value: str) -> None:
    assert tomllib.loads(f"key = {GENERATOR_MODULE.toml_value(value)}")["key"] == value


@given(st.lists(st.text(max_size=8), max_size=4), st.booleans(), st.integers(), st.floats(allow_nan=False,
       allow_infinity=False))
def test_lists_booleans_and_numbers_round_trip(items: list[str], flag: bool, number: int, real: float) -> None:
    g = GENERATOR_MODULE
    text = f"a = {g.toml_value(tuple(items))}\nb = {g.toml_value(flag)}\nc = {g.toml_value(number)}\n" \
           f"d = {g.toml_value(real)}\n"
    assert tomllib.loads(text) == {"a": items, "b": flag, "c": number, "d": real}
