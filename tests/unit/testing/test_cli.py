"""python -m testing.oracle: reads both sandboxes, prints the report or the counts, exits 1 on differences."""

from __future__ import annotations

import json
from typing import Any

import pytest

from testing.oracle import cli, expected_state
from tests.unit.testing.tenant import customer, dump, render


def serve(monkeypatch: pytest.MonkeyPatch, state: dict[str, Any], bluecherry: dict[str, Any]) -> list[str]:
    asked: list[str] = []

    def fetch(url: str, timeout: float) -> dict[str, Any]:
        asked.append(url)
        return bluecherry if url.endswith("/_sandbox/dump") else state

    monkeypatch.setattr(cli, "fetch", fetch)
    return asked


def test_no_difference_exits_0_and_prints_counts(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    tenant = dump(customer=[customer("C1")])
    asked = serve(monkeypatch, render(expected_state(tenant)), tenant)
    assert cli.main(["--bluecherry", "http://bc/", "--klaviyo", "http://k", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profiles_missing"] == 0
    assert asked == ["http://bc/_sandbox/dump", "http://k/_sandbox/state"]


def test_differences_exit_1_with_the_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Any) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[lifecycle]\ncatch_all_customers = ["GUEST"]\n')
    serve(monkeypatch, {}, dump(customer=[customer("C1"), customer("WEBGUEST")]))
    assert cli.main(["--bluecherry", "http://bc", "--klaviyo", "http://k", "--mapping", str(mapping)]) == 1
    out = capsys.readouterr().out
    assert "profiles_missing     2" in out and "customer:WEBGUEST" in out  # WEBGUEST is a customer here
