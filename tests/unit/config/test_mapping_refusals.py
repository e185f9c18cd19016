"""A wrong mapping file is refused by `config.mapping.load_mapping` with the file, the key and what was
expected - for unknown keys, wrong types, values out of range, bad TOML and a missing file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from config.mapping import Mapping, MappingError, load_mapping
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "config" / "mapping.example.toml"


def refusal(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = tmp_path / "tenant-mapping.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    return path, str(caught.value)


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ('[tenant]\ntimezon = "Europe/Paris"\n', "tenant.timezon", "unknown key"),
        ('[stok]\nformula = "direct_ats"\n', "stok", "unknown key"),
        ('[fields.customer]\nemial = "mail"\n', "fields.customer.emial", "unknown key"),
        ('[stock]\nhigh_demand_units = "many"\n', "stock.high_demand_units", "valid integer"),
        ('[consent]\nhistorical_import = "maybe"\n', "consent.historical_import", "valid boolean"),
        ('[lifecycle]\norder_types = "WEB"\n', "lifecycle.order_types", "valid tuple"),
        ('[metrics]\nplaced_order = 7\n', "metrics.placed_order", "valid string"),
        ('[field_policy]\ndaily_batch_hour = 24\n', "field_policy.daily_batch_hour", "less than or equal to 23"),
        ('[lifecycle]\ndispatch_document = "shipment"\n', "lifecycle.dispatch_document", "'pick' or 'invoice'"),
        ('[stock]\nformula = "on_hand"\n', "stock.formula", "'avail_minus_open' or 'direct_ats'"),
        ('[owners]\ninvalid_record = "sales"\n', "owners.invalid_record", "'operations', 'ecommerce' or 'finance'"),
        ('[resources.order]\npath = "order"\npage_size = 500\n', "resources.order.page_size",
         "less than or equal to 200"),
        ('tenant = "Acme"\n', "tenant", "valid dictionary"),
    ],
)
def test_a_wrong_key_is_refused_naming_the_file_the_key_and_what_was_expected(
    tmp_path: Path, toml: str, key: str, expected: str
) -> None:
    path, message = refusal(tmp_path, toml)
    line = next((ln for ln in message.splitlines() if f"key '{key}'" in ln), None)
    assert line is not None, f"no line names key {key!r}:\n{message}"
    assert line.startswith(f"{path}: ")
    assert expected in line


def test_every_problem_is_listed_not_only_the_first(tmp_path: Path) -> None:
    _, message = refusal(tmp_path, '[tenant]\ntimezon = "x"\n[stock]\nhigh_demand_units = "many"\n'
                                   '[owners]\ndefault = "sales"\n')
    assert len(message.splitlines()) == 3
    for key in ("tenant.timezon", "stock.high_demand_units", "owners.default"):
        assert f"key '{key}'" in message


def test_a_typo_in_an_edited_copy_of_the_example_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("\nemail_list_id", "\nemail_listid")
    text = text.replace('# email_list_id = ""', 'email_listid = "XyZ123"')
    path, message = refusal(tmp_path, text)
    assert message == f"{path}: key 'consent.email_listid': an unknown key (typo?) (got 'XyZ123')"


def test_bad_toml_is_refused_naming_the_file_and_the_line(tmp_path: Path) -> None:
    path, message = refusal(tmp_path, '[tenant]\ntimezone = "America/New_York"\ncurrency = USD\n')
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 3" in message


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "mapping.toml"
    with pytest.raises(MappingError, match="mapping file not found") as caught:
        load_mapping(path)
    assert str(path) in str(caught.value)


def test_no_file_means_the_documented_defaults() -> None:
    assert load_mapping(None) == Mapping()


def test_a_partial_file_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text('[tenant]\ntimezone = "Europe/Paris"\n[consent]\nemail_list_id = "Ab12Cd"\n', encoding="utf-8")
    loaded = load_mapping(path)
    assert loaded.tenant.timezone == "Europe/Paris" and loaded.consent.email_list_id == "Ab12Cd"
    assert loaded.model_copy(update={"tenant": Mapping().tenant, "consent": Mapping().consent}) == Mapping()


def _tables(model: BaseModel, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], BaseModel]]:
    found = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found += [(path + (name,), value), *_tables(value, path + (name,))]
    return found


def test_changing_one_key_of_any_table_keeps_the_tables_other_defaults(tmp_path: Path) -> None:
    defaults = Mapping()
    lost = []
    for path, table in _tables(defaults):
        scalars = {k: v for k, v in table.model_dump(mode="json").items() if isinstance(v, str | bool | int | float)}
        if not scalars:
            continue
        name, value = next(iter(scalars.items()))  # write back one key at its own default value
        rendered = json.dumps(value)  # a JSON string, boolean or number is the same in TOML
        file = tmp_path / f"{'_'.join(path)}.toml"
        file.write_text(f"[{'.'.join(path)}]\n{name} = {rendered}\n", encoding="utf-8")
        try:
            same = load_mapping(file) == defaults
        except MappingError:
            same = False
        if not same:
            lost.append(".".join(path))
    assert not lost, f"a one-key override of these tables loses their documented defaults: {lost}"
