"""What `bcsync status` says of mapping problems and of the poller (workers/status.py), line by line."""

from __future__ import annotations

from workers.status import mapping_problem_line, poller_lines


def test_a_mapping_problem_is_one_line_with_its_count_and_examples() -> None:
    status = {"type": "unknown_status", "key": "order.ord_status=Z", "count": 1200,
              "examples": [{"record": f"order:SO{n}", "value": "Z"} for n in range(5)]}
    assert mapping_problem_line(status) == ("mapping problem unknown_status order.ord_status=Z: 1200x, e.g. "
                                            "order:SO0, order:SO1, order:SO2 (bcsync exceptions --type unknown_status)")
    date = {"type": "unparseable_date", "key": "invoice.inv_dt", "count": 2,
            "examples": [{"record": "invoice:I1", "value": "03/02/2026"}]}
    assert "invoice.inv_dt: 2x, e.g. '03/02/2026' on invoice:I1" in mapping_problem_line(date)
    variant = {"type": "variant_id_mismatch", "key": "catalog.variant_external_id", "count": 7,
               "examples": [{"sku": "T1-BLK---S", "stock_id": "12", "catalog_id": "012"},
                            {"sku": "T1-BLK---01", "stock_id": "T1-BLK---01", "catalog_id": ""}]}
    assert ("e.g. SKU T1-BLK---S -> '12' (catalog: '012'), SKU T1-BLK---01 -> 'T1-BLK---01' (no catalog variant)"
            in mapping_problem_line(variant))


def test_the_poller_lines_name_read_errors_invalid_records_and_watermarks_held_too_long() -> None:
    poller = {
        "order": {"error": "Resource 'SalesOrder' not found (404 from http://bc/api/SalesOrder)",
                  "error_kind": "not_found", "failing_since": 86400.0, "failures": 3, "held": 3, "records": 0,
                  "invalid": 0},
        "customer": {"error": None, "held": 12, "records": 200, "invalid": 7},
        "style": {"error": None, "held": 10, "records": 4, "invalid": 0},
    }
    errors, invalid, held = poller_lines(poller, held_after=10)
    assert errors == ("poller read errors: order not_found since 01-02 00:00 UTC, 3 cycle(s): Resource 'SalesOrder' "
                      "not found (404 from http://bc/api/SalesOrder)")
    assert invalid == "poller invalid records (last cycle): customer 7 of 200"
    assert held == "watermarks held back more than 10 cycles: customer 12 cycles"  # style's 10 is not more
    assert poller_lines({}, 10) == ["poller read errors: none", "poller invalid records (last cycle): none",
                                    "watermarks held back more than 10 cycles: none"]
