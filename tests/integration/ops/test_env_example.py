"""`.env.example` is generated from Settings and must stay in step with it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import Field

from config.settings import Settings
from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT
ENV_EXAMPLE = REPO / ".env.example"
GENERATOR = ["-m", "scripts.gen_env_example"]  # run from the repository root


def load_generator() -> ModuleType:
    return importlib.import_module("scripts.gen_env_example")


def test_env_example_is_up_to_date_with_settings() -> None:
    expected = load_generator().render()
    assert ENV_EXAMPLE.read_text(encoding="utf-8") == expected, (
        ".env.example is out of date: run .venv/bin/python -m scripts.gen_env_example"
    )


def test_every_setting_is_listed_with_a_meaning_above_it() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for name in Settings.model_fields:
        key = f"BCSYNC_{name.upper()}="
        at = [i for i, line in enumerate(lines) if line.removeprefix("# ").startswith(key)]
        assert len(at) == 1, f"{key} listed {len(at)} times"
        comment = lines[at[0] - 1]
        assert comment.startswith("# ") and len(comment) > 12 and "=" not in comment.split()[1], comment


def test_the_example_loads_back_to_exactly_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("BCSYNC_")]:
        monkeypatch.delenv(key)
    loaded = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    as_plain = {name: str(value) for name, value in loaded.model_dump().items()}
    assert loaded.model_dump() == defaults.model_dump(), as_plain
    secrets = ("klaviyo_api_key", "bluecherry_subscription_key", "sentry_dsn", "flower_password")
    for name in secrets:
        assert getattr(loaded, name).get_secret_value() == getattr(defaults, name).get_secret_value()


def test_a_setting_without_a_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = load_generator()

    class Grown(Settings):
        brand_new_knob: int = 3

    class Described(Settings):
        brand_new_knob: int = Field(3, description="A knob with a meaning.")

    monkeypatch.setattr(generator, "Settings", Grown)
    with pytest.raises(SystemExit, match="brand_new_knob"):
        generator.render()
    monkeypatch.setattr(generator, "Settings", Described)
    assert "# A knob with a meaning.\nBCSYNC_BRAND_NEW_KNOB=3\n" in generator.render()


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *GENERATOR, "--check", "--file", str(path)], cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    assert check(ENV_EXAMPLE).returncode == 0
    stale = tmp_path / ".env.example"
    stale.write_text(ENV_EXAMPLE.read_text(encoding="utf-8").replace("BCSYNC_RATE_SHARE=", "# gone="))
    result = check(stale)
    assert result.returncode == 1 and "out of date" in result.stdout
