"""CSV report drops: reference columns, the same buckets as REST, atomic timestamped files, on a schedule."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.bluecherry.csvdrop import INVENTORY_COLUMNS, STYLE_COLUMNS
from tests.unit.sandbox.bluecherry.conftest import BlueCherry


def read(path: str) -> list[dict[str, str]]:
    with open(path, encoding="cp1252", newline="") as handle:
        return list(csv.DictReader(handle))


def test_drop_writes_both_reports_with_the_rest_buckets(bc: BlueCherry, upc: str, tmp_path: Path) -> None:
    bc.apply({"op": "place_order", "customer": "C0000001", "lines": [{"upc": upc, "qty": 4}], "confirm": True})
    order = bc.get("order", **{"$filter": "customer eq 'C0000001'"})[-1]
    bc.apply({"op": "pick", "ord_num": order["ord_num"], "lines": [{"line_seq": 1, "qty": 1}]})
    response = bc.control.post("/csv-drop", json={"dir": str(tmp_path)})
    assert response.status_code == 200
    inventory_file, style_file = response.json()["files"]
    assert Path(inventory_file).name == "inventory_20261120_120000.csv"
    assert Path(style_file).name == "style_master_20261120_120000.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([Path(inventory_file).name, Path(style_file).name])
    with open(inventory_file, encoding="cp1252", newline="") as handle:
        assert tuple(next(csv.reader(handle))) == INVENTORY_COLUMNS
    rows = {(r["UPC Number"], r["Location"]): r for r in read(inventory_file)}
    rest = bc.all("inventory")
    assert len(rows) == len(rest)
    for inv in rest:
        row = rows[(inv["upc"], inv["location"])]
        assert (
            int(row["Total QOH"]),
            int(row["Total Pick"]),
            int(row["Avail QOH"]),
            int(row["Total Open"]),
        ) == (inv["qty_oh"], inv["qty_pick"], inv["qty_avail"], inv["qty_open"])
    mine = rows[(upc, "WH1")]
    assert (mine["Total QOH"], mine["Total Pick"], mine["Avail QOH"], mine["Total Open"]) == (
        "100",
        "1",
        "99",
        "3",
    )
    styles = read(style_file)
    assert tuple(styles[0]) == STYLE_COLUMNS
    assert {r["UPC Number"] for r in styles} == set(bc.sandbox.store.sku_upcs())


def test_encoding_is_cp1252_and_repeated_drops_keep_both_files(bc: BlueCherry, tmp_path: Path) -> None:
    style = bc.get("style", _pgsize=1)[0]
    bc.apply({"op": "edit_style", "style": style["style"], "fields": {"style_name": "Café Crème Tee"}})
    first = bc.control.post("/csv-drop", json={"dir": str(tmp_path)}).json()["files"]
    second = bc.control.post("/csv-drop", json={"dir": str(tmp_path)}).json()["files"]
    assert len(set(first + second)) == 4
    raw = Path(first[1]).read_bytes()
    assert "Café Crème Tee".encode("cp1252") in raw and "Café".encode() not in raw
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_drop_without_a_folder_is_a_clear_400(bc: BlueCherry) -> None:
    response = bc.control.post("/csv-drop")
    assert response.status_code == 400 and "no CSV folder" in response.text


def test_scheduled_drops_appear_in_the_folder(start_sandbox: Callable[..., BlueCherry], tmp_path: Path) -> None:
    start_sandbox(csv_drop_dir=str(tmp_path), csv_interval=0.2, live_tick_seconds=0.1)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("inventory_*.csv"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(tmp_path.glob("inventory_*.csv"))) >= 2
    assert list(tmp_path.glob("style_master_*.csv"))
