"""The CSV report-drop reader: shapes, encodings, bad rows, once-only (on real Redis), REST/CSV parity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from config.mapping import Mapping
from connectors.bluecherry.csv_drops import (
    CsvDropError,
    RedisDropTracker,
    decode,
    file_id,
    pending_drops,
    read_drop,
    read_inventory_report,
    read_style_master,
    report_kind,
)
from sync.catalog.transform import catalog_operations
from sync.stock.ats import compute_ats, parse_inventory_row, sellable_warehouses
from tests.unit.sync.stock.conftest import (
    LOCATIONS,
    inventory_csv,
    sample_inventory,
    sample_styles,
    style_csv,
)

MAPPING = Mapping()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def ats_of(records: list[dict]) -> dict:
    rows = [parse_inventory_row(r, MAPPING.fields.inventory) for r in records]
    figures = compute_ats(rows, sellable_warehouses(MAPPING.stock, LOCATIONS))
    return {sku: f.quantity for sku, f in figures.items()}


def catalog_state(styles: list[dict], ats: dict) -> list[tuple]:
    plan = catalog_operations(styles, MAPPING, ats=ats)
    assert plan.problems == []
    return sorted((op.kind, op.key, op.lane, repr(sorted(op.payload.items()))) for op in plan.operations)


def test_rest_and_csv_give_identical_ats_and_catalog_operations(drop_dir: Path) -> None:
    inv_file = write(drop_dir, "inv.csv", inventory_csv(sample_inventory()).encode("cp1252"))
    sty_file = write(drop_dir, "sty.csv", style_csv(sample_styles()).encode("cp1252"))
    inv, sty = read_inventory_report(inv_file, MAPPING), read_style_master(sty_file, MAPPING)
    assert inv.problems == [] and sty.problems == []
    rest_ats, csv_ats = ats_of(sample_inventory()), ats_of(inv.records)
    assert rest_ats == csv_ats
    assert sum(rest_ats.values()) > 0
    assert catalog_state(sample_styles(), rest_ats) == catalog_state(sty.records, csv_ats)


def test_csv_rows_become_rest_shaped_records(drop_dir: Path) -> None:
    inv_file = write(drop_dir, "i.csv", inventory_csv(sample_inventory()[:1]).encode())
    inv = read_inventory_report(inv_file, MAPPING)
    assert inv.records == [{
        "style": "T100", "color_code": "BLK", "lbl_code": "", "dimension": "", "size_desc": "S",
        "upc": "000000000011", "location": "WH1", "qty_oh": 10, "qty_pick": 2, "qty_avail": 8, "qty_open": 3,
        "last_mod": "2026-11-20 10:00:00",
    }]
    sty = read_style_master(write(drop_dir, "s.csv", style_csv(sample_styles()[1:2]).encode()), MAPPING)
    assert sty.records == [{
        "style": "J200", "style_name": "Slim Jean", "season": "FA26", "division": "01", "group_code1": "ACME",
        "style_desc": "Slim Jean, cotton",
        "stylecolorsizes": {"rows-i": [{
            "color_code": "IND", "color_name": "Indigo", "upc": "000000000031", "lbl_code": "LB",
            "dimension": "30", "size_desc": "32", "status": "A", "retail_price": 49.5}]},
    }]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("Style,Color Name\r\nT1,Crème\r\n".encode("utf-8-sig"), "utf-8-sig"),
        ("Style,Color Name\r\nT1,Crème\r\n".encode(), "utf-8"),
        ("Style,Color Name\r\nT1,Crème\r\n".encode("cp1252"), "cp1252"),
        ("Style,Color Name\r\nT1,Crème\r\n".encode("utf-16"), "utf-16"),
    ],
)
def test_encodings_are_detected(data: bytes, encoding: str) -> None:
    text, found = decode(data)
    assert found == encoding
    assert "Crème" in text and not text.startswith("\ufeff")


def test_a_bad_byte_spoils_only_its_row(drop_dir: Path) -> None:
    header = "Style,Color #,Color Name,Style Name,Size,UPC Number,Retail Price\r\n"
    good = "T1,BLK,Crème,Tee,S,1,9.99\r\n"
    bad = b"T1,RED,Rouge \x81,Tee,M,2,9.99\r\n"  # 0x81 is undefined in cp1252
    data = header.encode("cp1252") + good.encode("cp1252") + bad + b"T1,BLU,Blue,Tee,L,3,9\r\n"
    path = write(drop_dir, "s.csv", data)
    result = read_style_master(path, MAPPING)
    assert result.encoding == "cp1252"
    assert [(p.line, p.reason) for p in result.problems] == [
        (3, "undecodable byte 0x81 in column 'Color Name'")]
    sizes = [s["size_desc"] for s in result.records[0]["stylecolorsizes"]["rows-i"]]
    assert sizes == ["S", "L"]
    assert result.records[0]["stylecolorsizes"]["rows-i"][0]["color_name"] == "Crème"
    mixed = write(drop_dir, "u.csv", header.encode() + good.encode() + bad)  # UTF-8 with one bad byte
    mixed_result = read_style_master(mixed, MAPPING)
    assert mixed_result.encoding == "utf-8"
    assert [p.line for p in mixed_result.problems] == [3]


def test_bad_rows_become_row_problems_and_the_rest_of_the_file_goes_on(drop_dir: Path) -> None:
    text = inventory_csv(sample_inventory()[:2]).splitlines()
    lines = [
        text[0],
        text[1],
        text[2].replace(",4,0,4,1,", ",four,0,4,1,"),  # Total QOH not a number
        "01,US,ACME,T100,BLK",  # too few columns
        text[1].replace("T100", "", 1),  # no style
        "",  # blank line: skipped silently
        text[1].replace(",WH1,", ",WH2,").replace(",10,2,8,3,", ',"1,234",(2),"1,232",3-,'),
        'x,"unterminated\x00quote',
    ]
    result = read_inventory_report(write(drop_dir, "bad.csv", "\r\n".join(lines).encode()), MAPPING)
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [
        (3, "not a number"), (4, "5 columns, the header has 21"), (5, "no Style or no Location"),
        (8, "2 columns, the header has 21"),
    ]
    assert [str(p) for p in result.problems][0].startswith("bad.csv:3: not a number: 'four'")
    quantities = [(r["location"], r["qty_oh"], r["qty_pick"], r["qty_avail"], r["qty_open"])
                  for r in result.records]
    assert quantities == [("WH1", 10, 2, 8, 3), ("WH2", 1234, -2, 1232, -3)]


def test_files_that_are_not_reports_are_refused_clearly(drop_dir: Path) -> None:
    with pytest.raises(CsvDropError, match="lacks column"):
        read_inventory_report(write(drop_dir, "x.csv", b"Loc,Qty\r\nWH1,3\r\n"), MAPPING)
    with pytest.raises(CsvDropError, match="neither an inventory report nor a style master"):
        report_kind(write(drop_dir, "y.csv", b"a,b\r\n1,2\r\n"))
    with pytest.raises(CsvDropError, match="empty"):
        read_style_master(write(drop_dir, "z.csv", b""), MAPPING)


def test_read_drop_tells_the_reports_apart(drop_dir: Path) -> None:
    inv = write(drop_dir, "inventory_1.csv", inventory_csv(sample_inventory()).encode("cp1252"))
    sty = write(drop_dir, "style_master_1.csv", style_csv(sample_styles()).encode("cp1252"))
    assert (read_drop(inv, MAPPING).kind, read_drop(sty, MAPPING).kind) == ("inventory", "style")


def test_a_file_is_processed_once_even_across_restarts(drop_dir: Path, redis_url: str) -> None:
    first = write(drop_dir, "inventory_1.csv", inventory_csv(sample_inventory()).encode())
    os.utime(first, (1_000, 1_000))
    second = write(drop_dir, "inventory_2.csv", inventory_csv(sample_inventory()[:1]).encode())
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    tracker = RedisDropTracker(client, prefix="test:drops:", ttl_days=30)
    assert pending_drops(drop_dir, tracker) == [first, second]
    tracker.mark(read_drop(first, MAPPING).file_id)
    client.close()

    restarted = RedisDropTracker(redis.Redis.from_url(redis_url, decode_responses=True), prefix="test:drops:")
    assert pending_drops(drop_dir, restarted) == [second]
    assert restarted.seen(file_id(first))
    ttl = restarted.client.ttl(f"test:drops:{file_id(first)}")
    assert 0 < ttl <= 30 * 86400
    first.write_bytes(first.read_bytes() + b"\r\n")  # same name, new content: a new drop
    assert pending_drops(drop_dir, restarted) == [second, first]  # oldest first: first was just rewritten
    restarted.client.close()
