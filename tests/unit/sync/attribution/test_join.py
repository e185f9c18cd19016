"""The pure attribution join: per campaign and flow Klaviyo's revenue beside the ERP's placed value and net of the
same orders, rates, open orders, the ERP's orders without a conversion event; Klaviyo's pages and reports read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from sync.attribution.join import Conversion, ErpOrder, KlaviyoTotal, join
from sync.attribution.klaviyo import chunks, conversions_of_page, merge_totals, totals_of_results

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _order(number: str, placed: str, cancelled: str = "0", refunded: str = "0", is_open: bool = False,
           key: str | None = None) -> ErpOrder:
    return ErpOrder(number=number, join_key=number if key is None else key, placed_at=T0, placed_value=D(placed),
                    cancelled_value=D(cancelled), refunded=D(refunded), is_open=is_open, currency="USD")


def _conv(number: str, value: str, kind: str | None = "campaign", send: str = "C1", minute: int = 0) -> Conversion:
    return Conversion(event_id=f"E{number}{minute}", order_key=number, value=D(value),
                      time=T0 + timedelta(minutes=minute), kind=kind, send_id=send if kind else "",  # type: ignore[arg-type]
                      message_id=f"{send}M" if kind else "")


def test_campaign_rows_hold_klaviyo_revenue_erp_placed_net_rates_and_open_orders() -> None:
    orders = [_order("SO1", "100"), _order("SO2", "50", cancelled="50"), _order("SO3", "80", refunded="20"),
              _order("SO4", "30", is_open=True), _order("SO5", "10")]
    conversions = [_conv("SO1", "100"), _conv("SO2", "50"), _conv("SO3", "80", send="C2"),
                   _conv("SO4", "30", kind="flow", send="F1"), _conv("SO5", "10", kind=None)]
    totals = [KlaviyoTotal("campaign", "C1", D("150"), 2), KlaviyoTotal("campaign", "C2", D("80"), 1),
              KlaviyoTotal("flow", "F1", D("30"), 1)]
    report = join(conversions, orders, totals)
    c1 = report.row("campaign", "C1")
    assert c1 is not None and (c1.klaviyo_revenue, c1.erp_placed, c1.erp_net) == (D("150"), D("150"), D("100"))
    assert c1.cancellation_rate == D("0.3333") and c1.refund_rate == 0 and not c1.mismatch
    c2 = report.row("campaign", "C2")
    assert c2 is not None and (c2.erp_net, c2.refund_rate, c2.open_orders) == (D("60"), D("0.25"), 0)
    f1 = report.row("flow", "F1")
    assert f1 is not None and f1.open_orders == 1 and f1.currencies == ["USD"]
    assert report.missing == [] and report.unattributed == 1 and report.orders == 5


def test_an_order_without_its_event_is_missing_and_its_campaign_mismatches() -> None:
    orders = [_order("SO1", "100"), _order("SO2", "40"), _order("SO3", "5", key="")]
    report = join([_conv("SO1", "100")], orders, [KlaviyoTotal("campaign", "C1", D("140"), 2)])
    assert [o.number for o in report.missing] == ["SO2"]
    assert report.not_expected == 1  # no join key: not expected in Klaviyo (storefront setting, no reference)
    row = report.row("campaign", "C1")
    assert row is not None and row.mismatch and row.erp_placed == D("100")


def test_an_event_of_an_unknown_order_and_another_value_show_in_the_drill_down() -> None:
    report = join([_conv("SO1", "90"), _conv("SO9", "10")], [_order("SO1", "100")],
                  [KlaviyoTotal("campaign", "C1", D("100"), 2)])
    row = report.row("campaign", "C1")
    assert row is not None and row.unknown_orders == ["SO9"]
    assert [line.value_differs for line in row.orders] == [True, True]
    # the totals agree by chance (90 + 10 against SO1's 100); an event of an order the ERP lacks is a mismatch
    assert row.erp_placed == row.klaviyo_revenue == D("100") and row.mismatch


def test_a_repeated_event_counts_once_and_only_filters_one_send() -> None:
    report = join([_conv("SO1", "100"), _conv("SO1", "100", minute=5), _conv("SO2", "5", send="C2")],
                  [_order("SO1", "100"), _order("SO2", "5")], [], only="C1")
    (row,) = report.sends
    assert row.send_id == "C1" and len(row.orders) == 1 and row.klaviyo_revenue is None and row.mismatch


def test_pages_and_reports_read_into_the_join_inputs() -> None:
    page = {"data": [
        {"id": "E1", "attributes": {"datetime": "2026-03-02T10:00:00+00:00",
                                    "event_properties": {"ErpOrderNumber": "SO1", "$value": 12.5}},
         "relationships": {"attributions": {"data": [{"type": "attribution", "id": "A1"}]}}},
        {"id": "E2", "attributes": {"timestamp": 1_772_445_600, "event_properties": {"ErpOrderNumber": "SO2"}},
         "relationships": {"attributions": {"data": []}}}],
        "included": [{"type": "attribution", "id": "A1", "relationships": {
            "flow": {"data": {"type": "flow", "id": "F1"}}, "flow-message": {"data": {"type": "flow-message",
                                                                                   "id": "FM1"}}}}]}
    first, second = conversions_of_page(page, "ErpOrderNumber")
    assert (first.kind, first.send_id, first.message_id, first.value) == ("flow", "F1", "FM1", D("12.5"))
    assert second.kind is None and second.order_key == "SO2"
    results = [{"groupings": {"campaign_id": "C1", "campaign_message_id": "M1"},
                "statistics": {"conversion_value": 10.1, "conversions": 1.0}},
               {"groupings": {"campaign_id": "C1", "campaign_message_id": "M2"},
                "statistics": {"conversion_value": 5.2, "conversions": 2.0}}]
    march = totals_of_results("campaign", results)
    assert march == {"C1": (D("15.3"), 3)}
    (total,) = merge_totals("campaign", [march, {"C1": (D("1"), 1)}])
    assert (total.revenue, total.conversions) == (D("16.30"), 4)


def test_the_period_is_cut_at_month_starts_and_old_chunks_are_settled() -> None:
    parts = chunks(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))
    assert [(c.start.day, c.start.month, c.end.day, c.end.month) for c in parts] == [
        (15, 1, 1, 2), (1, 2, 1, 3), (1, 3, 10, 3)]
    now = datetime(2026, 3, 12, tzinfo=UTC)
    assert [c.settled(now, timedelta(days=7)) for c in parts] == [True, True, False]


def test_a_period_up_to_now_keys_its_last_month_as_the_month_so_far() -> None:
    first = chunks(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 10, 9, tzinfo=UTC))[-1]
    later = chunks(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 10, 15, tzinfo=UTC))[-1]
    assert first.key != later.key and first.open_key == later.open_key  # an hour later: the same cached copy
    assert first.month_end == datetime(2026, 4, 1, tzinfo=UTC)
