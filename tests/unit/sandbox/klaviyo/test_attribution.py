"""Attribution in the Klaviyo sandbox: campaigns, flows and messages defined through /_sandbox/attribution,
conversion events read back with include=attributions, and the campaign / flow values reports - in the shapes
of Klaviyo's OpenAPI file (the SDK's response models parse them) and at their limits (1/s, 2/min, 225/day)."""

from __future__ import annotations

from typing import Any

from openapi_client import models as sdk

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import FakeClock, Running

SENDS = {
    "campaigns": [{"id": "C1", "name": "Spring", "messages": [{"id": "CM1"}]},
                  {"id": "C2", "name": "Summer", "messages": [{"id": "CM2", "channel": "sms"}]}],
    "flows": [{"id": "F1", "name": "Welcome", "messages": [{"id": "FM1"}]}],
}


def _order(klaviyo: Running, number: str, value: float, when: str = "2026-03-02T10:00:00+00:00",
           metric: str = "Placed Order") -> None:
    body = bodies.event(metric=metric, unique_id=number, value=value, time=when)
    body["data"]["attributes"]["properties"] = {"ErpOrderNumber": number}
    assert klaviyo.client.post("/api/events", json=body).status_code == 202


def _attribute(klaviyo: Running, **message: str) -> Any:
    return klaviyo.client.post("/_sandbox/attribution", json={**SENDS, "attribute": [
        {"metric": "Placed Order", "match": {"ErpOrderNumber": number}, **{kind: mid}}
        for number, (kind, mid) in message.items()]})


def _values(kind: str, metric_id: str, start: str = "2026-03-01T00:00:00+00:00",
            end: str = "2026-04-01T00:00:00+00:00") -> dict[str, Any]:
    return {"data": {"type": f"{kind}-values-report", "attributes": {
        "statistics": ["conversions", "conversion_value"], "conversion_metric_id": metric_id,
        "timeframe": {"start": start, "end": end}}}}


def _metric_id(klaviyo: Running, name: str = "Placed Order") -> str:
    return str(klaviyo.client.get("/_sandbox/state").json()["metrics"][name])


def test_events_read_with_their_attributions(klaviyo: Running) -> None:
    for number, value in (("SO1", 100.0), ("SO2", 40.0), ("SO3", 7.5)):
        _order(klaviyo, number, value)
    made = _attribute(klaviyo, SO1=("campaign_message", "CM1"), SO2=("flow_message", "FM1"))
    assert made.status_code == 200, made.text
    metric_id = _metric_id(klaviyo)
    seen: dict[str, Any] = {}
    url: str | None = "/api/events"
    params: dict[str, Any] | None = {"filter": f'equals(metric_id,"{metric_id}")', "include": "attributions",
                                     "page[size]": "2"}
    pages = 0
    while url:
        page = klaviyo.client.get(url, params=params).json()
        sdk.GetEventResponseCollectionCompoundDocument.from_dict(page)  # Klaviyo's shape
        included = {item["id"]: item for item in page.get("included", [])}
        for event in page["data"]:
            refs = event["relationships"]["attributions"]["data"]
            number = event["attributes"]["event_properties"]["ErpOrderNumber"]
            seen[number] = [included[ref["id"]]["relationships"] for ref in refs]
        url, params, pages = page["links"]["next"], None, pages + 1
    assert pages == 2
    assert seen["SO1"][0]["campaign"]["data"]["id"] == "C1"
    assert seen["SO1"][0]["campaign-message"]["data"]["id"] == "CM1"
    assert seen["SO2"][0]["flow"]["data"]["id"] == "F1" and seen["SO2"][0]["flow-message"]["data"]["id"] == "FM1"
    assert seen["SO3"] == []


def test_unknown_include_and_bad_definitions_are_refused(klaviyo: Running) -> None:
    refused = klaviyo.client.get("/api/events", params={"include": "campaigns"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["source"]["parameter"] == "include"
    _order(klaviyo, "SO1", 10.0)
    nothing = _attribute(klaviyo, SO9=("campaign_message", "CM1"))
    assert nothing.status_code == 400 and "0 Placed Order events match" in nothing.json()["error"]
    unknown = _attribute(klaviyo, SO1=("campaign_message", "CM9"))
    assert unknown.status_code == 400 and "no campaign has a message 'CM9'" in unknown.json()["error"]


def test_values_reports_sum_attributed_conversions_in_the_timeframe(klaviyo: Running) -> None:
    _order(klaviyo, "SO1", 100.0)
    _order(klaviyo, "SO2", 40.0, when="2026-03-20T10:00:00+00:00")
    _order(klaviyo, "SO3", 60.0, when="2026-04-02T10:00:00+00:00")  # outside March
    _order(klaviyo, "SO4", 25.0)
    _attribute(klaviyo, SO1=("campaign_message", "CM1"), SO2=("campaign_message", "CM1"),
               SO3=("campaign_message", "CM1"), SO4=("flow_message", "FM1"))
    metric_id = _metric_id(klaviyo)
    campaigns = klaviyo.client.post("/api/campaign-values-reports", json=_values("campaign", metric_id))
    assert campaigns.status_code == 200, campaigns.text
    body = campaigns.json()
    sdk.PostCampaignValuesResponseDTO.from_dict(body)
    rows = {r["groupings"]["campaign_id"]: r for r in body["data"]["attributes"]["results"]}
    assert rows["C1"]["statistics"] == {"conversions": 2.0, "conversion_value": 140.0}
    assert rows["C1"]["groupings"] == {"campaign_id": "C1", "campaign_message_id": "CM1", "send_channel": "email"}
    assert rows["C2"]["statistics"] == {"conversions": 0.0, "conversion_value": 0.0}  # a message without any
    flows = klaviyo.client.post("/api/flow-values-reports", json=_values("flow", metric_id))
    sdk.PostFlowValuesResponseDTO.from_dict(flows.json())
    (row,) = flows.json()["data"]["attributes"]["results"]
    assert row["groupings"]["flow_id"] == "F1" and row["statistics"]["conversion_value"] == 25.0
    only = _values("campaign", metric_id)
    only["data"]["attributes"]["filter"] = 'equals(campaign_id,"C2")'
    (c2,) = klaviyo.client.post("/api/campaign-values-reports", json=only).json()["data"]["attributes"]["results"]
    assert c2["groupings"]["campaign_id"] == "C2"


def test_values_report_request_checked_like_klaviyo(klaviyo: Running) -> None:
    _order(klaviyo, "SO1", 10.0)
    metric_id = _metric_id(klaviyo)
    missing = _values("campaign", metric_id)
    del missing["data"]["attributes"]["conversion_metric_id"]
    assert klaviyo.client.post("/api/campaign-values-reports", json=missing).status_code == 400
    too_long = _values("campaign", metric_id, start="2024-01-01T00:00:00+00:00")
    answer = klaviyo.client.post("/api/campaign-values-reports", json=too_long)
    assert answer.status_code == 400 and "at most one year" in answer.json()["errors"][0]["detail"]
    unknown = klaviyo.client.post("/api/flow-values-reports", json=_values("flow", "NOPE"))
    assert unknown.status_code == 400


def test_values_reports_limits_per_second_minute_and_day(start_sandbox: Any) -> None:
    clock = FakeClock()
    running: Running = start_sandbox(KlaviyoSandboxConfig(), clock)
    _order(running, "SO1", 10.0)
    body = _values("campaign", _metric_id(running))

    def post() -> Any:
        return running.client.post("/api/campaign-values-reports", json=body)

    assert post().status_code == 200
    burst = post()
    assert burst.status_code == 429  # 1/s
    clock.advance(1)
    assert post().status_code == 200
    clock.advance(1)
    steady = post()
    assert steady.status_code == 429 and int(steady.headers["Retry-After"]) > 1  # 2/min
    for _ in range(111):  # 2 a minute for the rest of the day's 225
        clock.advance(60)
        assert post().status_code == 200
        clock.advance(1)
        assert post().status_code == 200
    clock.advance(60)
    assert post().status_code == 200  # the 225th
    clock.advance(1)
    daily = post()
    assert daily.status_code == 429 and int(daily.headers["Retry-After"]) > 60  # 225/day: until tomorrow
    assert running.client.get("/_sandbox/stats").json()["endpoints"][
        "POST /api/campaign-values-reports"]["daily_limit"] == 225
