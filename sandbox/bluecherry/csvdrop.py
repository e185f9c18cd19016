"""CSV report drops: the inventory report and the style master export, written from the tenant's data.

Files appear atomically (written to a hidden temp file in the same folder, then renamed) with a timestamped
name, in a Windows code page by default, so a reader polling the folder never sees half a file.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sandbox.bluecherry.clock import SandboxClock
from sandbox.bluecherry.store import RecordStore

INVENTORY_COLUMNS = (
    "Div",
    "Loc Org",
    "BRAND",
    "Style",
    "Color #",
    "Label",
    "Dm/Pk",
    "Size",
    "SzBk",
    "UOM",
    "UPC Number",
    "Season",
    "Location",
    "Total QOH",
    "Total Pick",
    "Avail QOH",
    "Total Open",
    "Total Ship To WIP",
    "Total Received",
    "Total Invoice",
    "Total Prod",
)
STYLE_COLUMNS = (
    "Style",
    "Color #",
    "Color Name",
    "Style Name",
    "SIZES",
    "Size Code",
    "UPC Number",
    "Season",
    "Label",
    "Dm/Pk",
    "Size",
    "Status",
    "Retail Price",
    "Division",
    "Brand",
    "Description",
    "Category",
    "Gender",
    "EAN",
    "Style Status",
    "Style Price",
)


def inventory_rows(store: RecordStore) -> Iterator[tuple[Any, ...]]:
    skus: dict[str, dict[str, Any]] = {}
    for row in store.iterate("inventory"):
        inv = row.body
        sku = skus.get(inv["upc"]) or store.get_sku(inv["upc"]) or {}
        if len(skus) < 50000:
            skus[inv["upc"]] = sku
        yield (
            sku.get("division", ""),
            "US",
            sku.get("brand", ""),
            inv["style"],
            inv["color_code"],
            inv["lbl_code"],
            inv["dimension"],
            inv["size_desc"],
            sku.get("size_code", ""),
            "EA",
            inv["upc"],
            sku.get("season", ""),
            inv["location"],
            inv["qty_oh"],
            inv["qty_pick"],
            inv["qty_avail"],
            inv["qty_open"],
            inv.get("qty_wip", 0),
            inv.get("qty_received", 0),
            inv.get("qty_invoiced", 0),
            0,
        )


def style_rows(store: RecordStore) -> Iterator[tuple[Any, ...]]:
    for row in store.iterate("style"):
        style = row.body
        for s in style["stylecolorsizes"]["rows-i"]:
            sku = store.get_sku(s["upc"]) or {}
            yield (
                style["style"],
                s["color_code"],
                s["color_name"],
                style["style_name"],
                style.get("size_range", ""),
                sku.get("size_code", ""),
                s["upc"],
                style["season"],
                s["lbl_code"],
                s["dimension"],
                s["size_desc"],
                s["status"],
                f"{s['retail_price']:.2f}",
                style["division"],
                style["group_code1"],
                style["style_desc"],
                style["group_code2"],
                style["group_code3"],
                s["ean"],
                style["status"],
                f"{style['retail_price']:.2f}",
            )


def write_atomically(
    folder: Path, name: str, header: tuple[str, ...], rows: Iterable[tuple[Any, ...]], encoding: str
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding=encoding, errors="replace", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(rows)
        target = folder / name
        counter = 1
        while target.exists():  # two drops in one second keep both files
            counter += 1
            target = folder / f"{Path(name).stem}_{counter}{Path(name).suffix}"
        os.replace(tmp, target)
        return target
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


Cell = Callable[[str, Any], Any]  # (column, value) -> what the tenant's export writes (dialects.Dialect.csv_cell)


def in_dialect(
    header: tuple[str, ...], rows: Iterable[tuple[Any, ...]], cell: Cell | None
) -> Iterable[tuple[Any, ...]]:
    """The rows with every cell written as the tenant's export writes it (padded codes, edited numbers)."""
    if cell is None:
        return rows
    return (tuple(cell(column, value) for column, value in zip(header, row, strict=True)) for row in rows)


def drop_reports(
    store: RecordStore, clock: SandboxClock, folder: str | Path, encoding: str = "cp1252", cell: Cell | None = None
) -> list[Path]:
    stamp = clock.now_local().replace("-", "").replace(":", "").replace(" ", "_")
    folder = Path(folder)
    inventory = in_dialect(INVENTORY_COLUMNS, inventory_rows(store), cell)
    styles = in_dialect(STYLE_COLUMNS, style_rows(store), cell)
    return [
        write_atomically(folder, f"inventory_{stamp}.csv", INVENTORY_COLUMNS, inventory, encoding),
        write_atomically(folder, f"style_master_{stamp}.csv", STYLE_COLUMNS, styles, encoding),
    ]
