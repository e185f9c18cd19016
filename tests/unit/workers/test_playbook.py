"""docs/playbook.md is generated (`bcsync playbook --defaults`), never hand-written: the committed file equals a fresh
generation, names every exception type with its owner, meaning and action, every resource with the mapping's names,
and follows the mapping and the settings it is generated from."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from config.exception_types import EXCEPTION_TYPES
from config.mapping import Mapping, load_mapping
from config.settings import Settings
from workers.playbook import default_settings, playbook, render
from workers.playbook_objects import DATA_OBJECTS

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "docs" / "playbook.md"


def test_the_committed_playbook_is_a_fresh_generation() -> None:
    assert COMMITTED.read_text() == render(Mapping(), default_settings()), (
        "docs/playbook.md is out of date: regenerate it with `bcsync playbook --defaults --out docs/playbook.md`")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = text.find("\n### ", start + len(heading))
    end = text.find("\n## ", start + len(heading))
    ends = [e for e in (following, end) if e != -1]
    return text[start:min(ends) if ends else len(text)]


def test_every_exception_type_is_under_its_owner_with_meaning_and_action() -> None:
    text = render(Mapping(), default_settings())
    for name, entry in EXCEPTION_TYPES.items():
        owner_part = _section(text, f"### {entry.owner}")
        row = next(line for line in owner_part.splitlines() if line.startswith(f"| `{name}`"))
        assert entry.meaning.split(" (")[0][:40] in row and entry.action[:30] in row


def test_every_resource_and_mapped_field_is_there_with_the_mappings_names() -> None:
    mapping = load_mapping(ROOT / "config" / "examples" / "ibmi.toml")
    text = render(mapping, default_settings())
    for obj in DATA_OBJECTS:
        resource = getattr(mapping.resources, obj.resource)
        assert f"### {obj.resource} (`{resource.path}`)" in text
        assert f"Polled every {resource.poll_seconds:,.0f} s" in text
    assert "| `fields.customer.code` | `" + mapping.fields.customer.code + "` |" in text
    assert "| `fields.order.number` | `" + mapping.fields.order.number + "` |" in text
    assert mapping.metrics.placed_order in text


def test_owners_and_speeds_follow_the_mapping_and_the_settings() -> None:
    mapping = Mapping.model_validate({"owners": {"unusable_phone": "ecommerce"}, "stock": {"debounce_seconds": 45}})
    settings = Settings.model_construct(rate_share=0.5, max_attempts=4)
    text = render(mapping, settings)
    assert "| `unusable_phone`" in _section(text, "### ecommerce")
    assert "| `unusable_phone`" not in _section(text, "### operations")
    assert "sent once quiet for 45 s" in text and "retried up to 4 times" in text
    # 'events' is Klaviyo's XL tier, 350/s and 3500/min: half of it is the fleet's
    assert re.search(r"\| `events` \| 350/s, 3500/min \| 175/s, 1750/min \|", text)


def test_check_exits_1_on_a_stale_file_and_0_on_a_fresh_one(tmp_path: Path) -> None:
    out = tmp_path / "playbook.md"
    out.write_text("# an old hand-written playbook\n")
    runner = CliRunner()
    app = typer.Typer()
    app.command()(playbook)
    stale = runner.invoke(app, ["--defaults", "--check", "--out", str(out)])
    assert stale.exit_code == 1 and "out of date" in stale.output
    assert runner.invoke(app, ["--defaults", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["--defaults", "--check", "--out", str(out)]).exit_code == 0
    assert out.read_text() == COMMITTED.read_text()
