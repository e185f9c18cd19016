"""A small sample tenant in the documented raw shapes (REST `style`, `inventory`, `Location`), and the
same data written as Blue Cherry CSV report drops."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

OBSERVED = datetime(2026, 11, 20, 18, 0, 0, tzinfo=UTC)

LOCATIONS: list[dict[str, Any]] = [
    {"location": "WH1", "loc_name": "Main DC", "loc_type": "W", "sellable": "Y"},
    {"location": "WH2", "loc_name": "West DC", "loc_type": "W", "sellable": "Y"},
    {"location": "QC", "loc_name": "Quality Hold", "loc_type": "W", "sellable": "N"},
]


def sku_row(color: str, size: str, upc: str, *, name: str = "Black", status: str = "A",
            price: float | None = 49.5, label: str = "", dimension: str = "") -> dict[str, Any]:
    return {"upc": upc, "ean": "", "color_code": color, "color_name": name, "lbl_code": label,
            "dimension": dimension, "size_desc": size, "status": status, "retail_price": price}


def style_record(style: str, skus: list[dict[str, Any]], *, status: str = "A", name: str = "Classic Tee",
                 last_mod: str = "2026-11-20 09:00:00", price: float | None = 49.5) -> dict[str, Any]:
    return {"pkey": 1, "style": style, "style_name": name, "style_desc": f"{name}, cotton",
            "group_code1": "ACME", "group_code2": "TOPS", "group_code3": "U", "division": "01",
            "season": "FA26", "retail_price": price, "status": status,
            "stylecolorsizes": {"rows-i": [{"fkey": i + 1, **s} for i, s in enumerate(skus)]},
            "last_mod": last_mod}


def inventory_record(style: str, color: str, size: str, upc: str, location: str, *, oh: int, pick: int = 0,
                     open_qty: int = 0, avail: int | None = None, label: str = "", dimension: str = "",
                     last_mod: str = "2026-11-20 10:00:00") -> dict[str, Any]:
    return {"style": style, "color_code": color, "lbl_code": label, "dimension": dimension, "size_desc": size,
            "upc": upc, "location": location, "qty_oh": oh, "qty_pick": pick,
            "qty_avail": oh - pick if avail is None else avail, "qty_open": open_qty, "last_mod": last_mod}


def sample_styles() -> list[dict[str, Any]]:
    return [
        style_record("T100", [
            sku_row("BLK", "S", "000000000011"), sku_row("BLK", "M", "000000000012"),
            sku_row("WHT", "S", "000000000021", name="White", price=52.0),
            sku_row("WHT", "M", "000000000022", name="White", status="D"),
        ]),
        style_record("J200", [sku_row("IND", "32", "000000000031", name="Indigo", dimension="30",
                                      label="LB")],
                     name="Slim Jean", last_mod="2026-11-20 09:30:00", price=89.0),
        style_record("X300", [sku_row("RED", "OS", "000000000041", name="Red", status="D")], status="D",
                     name="Old Scarf"),
    ]


def sample_inventory() -> list[dict[str, Any]]:
    return [
        inventory_record("T100", "BLK", "S", "000000000011", "WH1", oh=10, pick=2, open_qty=3),
        inventory_record("T100", "BLK", "S", "000000000011", "WH2", oh=4, pick=0, open_qty=1,
                         last_mod="2026-11-20 10:05:00"),
        inventory_record("T100", "BLK", "S", "000000000011", "QC", oh=50),
        inventory_record("T100", "BLK", "M", "000000000012", "WH1", oh=5, pick=5),
        inventory_record("T100", "WHT", "S", "000000000021", "WH1", oh=0, pick=0, open_qty=2),
        inventory_record("T100", "WHT", "S", "000000000021", "WH2", oh=6),
        inventory_record("J200", "IND", "32", "000000000031", "WH2", oh=3, open_qty=1, label="LB",
                         dimension="30"),
    ]


INVENTORY_HEADER = ["Div", "Loc Org", "BRAND", "Style", "Color #", "Label", "Dm/Pk", "Size", "SzBk", "UOM",
                    "UPC Number", "Season", "Location", "Total QOH", "Total Pick", "Avail QOH", "Total Open",
                    "Total Ship To WIP", "Total Received", "Total Invoice", "Last Mod"]
STYLE_HEADER = ["Style", "Color #", "Color Name", "Style Name", "SIZES", "Size Code", "UPC Number", "Season",
                "Label", "Dm/Pk", "Size", "Status", "Retail Price", "Division", "Brand", "Description"]


def inventory_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(INVENTORY_HEADER)
    for r in records:
        writer.writerow(["01", "US", "ACME", r["style"], r["color_code"], r["lbl_code"], r["dimension"],
                         r["size_desc"], "1", "EA", r["upc"], "FA26", r["location"], f"{r['qty_oh']:,}",
                         r["qty_pick"], r["qty_avail"], r["qty_open"], 0, 0, 0, r["last_mod"]])
    return out.getvalue()


def style_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STYLE_HEADER)
    for s in records:
        for k in s["stylecolorsizes"]["rows-i"]:
            price = "" if k["retail_price"] is None else f"{k['retail_price']:.2f}"
            writer.writerow([s["style"], k["color_code"], k["color_name"], s["style_name"], "S-M-L", "1",
                             k["upc"], s["season"], k["lbl_code"], k["dimension"], k["size_desc"],
                             k["status"], price, s["division"], s["group_code1"], s["style_desc"]])
    return out.getvalue()


@pytest.fixture
def drop_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "drops"
    folder.mkdir()
    return folder
