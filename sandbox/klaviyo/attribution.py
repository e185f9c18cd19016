"""Klaviyo's attribution, as far as the fleet reads it: campaigns and flows with their messages, conversion
events attributed to one message each, and the values reports that sum the attributed conversions.

A test (or the demo) defines campaigns, flows and messages and attributes given events to them through
`POST /_sandbox/attribution` (`define`); the API answers `GET /api/events?include=attributions`
(`attribution_resource`) and `POST /api/campaign-values-reports` / `POST /api/flow-values-reports` (`values_report`).

What it simplifies (docs/sandbox.md, "Attribution"): Klaviyo decides attribution itself - the last message the
profile received (or clicked) within the account's attribution window before the conversion; the sandbox
attributes exactly what it is told, at most one message per event, with no window. A values report counts the
attributed conversion events whose own time is in the timeframe (UTC: Klaviyo uses the account's timezone), and
every defined message appears in the results, with zeros when none converted. Statistics other than the
conversion ones (recipients, opens, clicks...) are 0: nothing in the sandbox sends messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.klaviyo.events import Event, EventLog
from sandbox.klaviyo.filters import Condition, FilterError, Junction, conditions, parse_datetime, parse_filter


class AttributionError(ValueError):
    """A definition or report request the sandbox refuses (its message says what and where)."""


@dataclass
class Message:
    id: str
    name: str
    channel: str  # email | sms | push-notification | whatsapp


@dataclass
class Send:
    """A campaign or a flow: its messages by id."""

    id: str
    name: str
    messages: dict[str, Message] = field(default_factory=dict)


@dataclass(frozen=True)
class Attribution:
    id: str
    event_id: str
    kind: str  # campaign | flow
    send_id: str
    message_id: str


CHANNELS = ("email", "sms", "push-notification", "whatsapp")
CONVERSION_STATISTICS = ("conversions", "conversion_uniques", "conversion_value", "average_order_value")
MAX_TIMEFRAME = timedelta(days=366)


class AttributionBook:
    def __init__(self) -> None:
        self.sends: dict[str, dict[str, Send]] = {"campaign": {}, "flow": {}}
        self.by_event: dict[str, Attribution] = {}
        self._next = 0

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    # --- the admin knob ---------------------------------------------------------------------------------

    def define(self, body: Any, events: EventLog) -> dict[str, Any]:
        """`{"campaigns": [{"id", "name", "messages": [{"id", "name", "channel"}]}], "flows": [...],
        "attribute": [{"metric": NAME, "match": {PROPERTY: VALUE}} or {"event_id": ID}, with
        "campaign_message" or "flow_message": ID]}`. Returns the attribution ids made, by request position."""
        if not isinstance(body, dict):
            raise AttributionError("the body must be a JSON object")
        for key, kind in (("campaigns", "campaign"), ("flows", "flow")):
            for i, raw in enumerate(body.get(key) or []):
                self._define_send(kind, raw, f"{key}[{i}]")
        made: list[str] = []
        for i, raw in enumerate(body.get("attribute") or []):
            made.append(self._attribute(raw, events, f"attribute[{i}]").id)
        return {"attributions": made, "campaigns": len(self.sends["campaign"]), "flows": len(self.sends["flow"])}

    def _define_send(self, kind: str, raw: Any, where: str) -> None:
        if not isinstance(raw, dict) or not raw.get("id"):
            raise AttributionError(f"{where}: a {kind} needs an id")
        send = self.sends[kind].setdefault(str(raw["id"]), Send(str(raw["id"]), str(raw.get("name") or raw["id"])))
        for j, message in enumerate(raw.get("messages") or []):
            if not isinstance(message, dict) or not message.get("id"):
                raise AttributionError(f"{where}.messages[{j}]: a message needs an id")
            channel = str(message.get("channel") or "email")
            if channel not in CHANNELS:
                raise AttributionError(f"{where}.messages[{j}]: channel {channel!r} is not one of {CHANNELS}")
            send.messages[str(message["id"])] = Message(str(message["id"]), str(message.get("name") or ""), channel)

    def _message(self, kind: str, message_id: str, where: str) -> Send:
        for send in self.sends[kind].values():
            if message_id in send.messages:
                return send
        raise AttributionError(f"{where}: no {kind} has a message {message_id!r}")

    def _attribute(self, raw: Any, events: EventLog, where: str) -> Attribution:
        if not isinstance(raw, dict):
            raise AttributionError(f"{where}: must be an object")
        kind = "campaign" if raw.get("campaign_message") else "flow" if raw.get("flow_message") else ""
        if not kind:
            raise AttributionError(f"{where}: name a campaign_message or a flow_message")
        message_id = str(raw[f"{kind}_message"])
        send = self._message(kind, message_id, where)
        event = self._event(raw, events, where)
        self._next += 1
        found = Attribution(f"ATTR{self._next:06d}", event.id, kind, send.id, message_id)
        self.by_event[event.id] = found  # one message per conversion: a second attribution replaces the first
        return found

    @staticmethod
    def _event(raw: dict[str, Any], events: EventLog, where: str) -> Event:
        if raw.get("event_id"):
            event = events.find(str(raw["event_id"]))
            if event is None:
                raise AttributionError(f"{where}: no event {raw['event_id']!r}")
            return event
        metric = events.metrics_by_name.get(str(raw.get("metric") or ""))
        match = raw.get("match")
        if metric is None or not isinstance(match, dict) or not match:
            raise AttributionError(f"{where}: name an event_id, or a stored metric and a match of its properties")
        found = [event for event in events.by_metric.get(metric.id, [])
                 if all(event.attributes_json()["event_properties"].get(k) == v for k, v in match.items())]
        if len(found) != 1:
            raise AttributionError(f"{where}: {len(found)} {metric.name} events match {match} (one needed)")
        return found[0]

    # --- the API ----------------------------------------------------------------------------------------

    def of_event(self, event_id: str) -> Attribution | None:
        return self.by_event.get(event_id)

    def values_report(self, kind: str, attributes: dict[str, Any], events: EventLog,
                      now: datetime) -> list[dict[str, Any]]:
        """The results of a campaign (`kind` campaign) or flow values report: one row per message (and
        channel), the asked statistics of the conversions of `conversion_metric_id` in the timeframe."""
        start, end = timeframe(attributes.get("timeframe") or {}, now)
        metric_id = str(attributes.get("conversion_metric_id") or "")
        if metric_id not in events.metrics:
            raise AttributionError(f"conversion_metric_id: no metric {metric_id!r}")
        wanted = _filter(kind, attributes.get("filter"))
        rows: dict[tuple[str, str], list[Event]] = {
            (send.id, message.id): [] for send in self.sends[kind].values() for message in send.messages.values()
            if wanted(send.id, message.id, message.channel)}
        for event in events.by_metric.get(metric_id, []):
            found = self.by_event.get(event.id)
            if found and found.kind == kind and start <= event.time < end and (found.send_id, found.message_id) in rows:
                rows[(found.send_id, found.message_id)].append(event)
        group_by = attributes.get("group_by") or [f"{kind}_id", f"{kind}_message_id", "send_channel"]
        return [{"groupings": self._groupings(kind, send_id, message_id, group_by),
                 "statistics": statistics(attributes.get("statistics") or [], converted)}
                for (send_id, message_id), converted in rows.items()]

    def _groupings(self, kind: str, send_id: str, message_id: str, group_by: list[str]) -> dict[str, Any]:
        send = self.sends[kind][send_id]
        message = send.messages[message_id]
        known = {f"{kind}_id": send.id, f"{kind}_message_id": message.id, "send_channel": message.channel,
                 f"{kind}_message_name": message.name, "flow_name": send.name}
        return {name: known.get(name) for name in group_by}


def statistics(asked: list[str], converted: list[Event]) -> dict[str, float]:
    value = round(sum(event.value or 0.0 for event in converted), 2)
    count = len(converted)
    known = {"conversions": float(count), "conversion_uniques": float(len({e.profile_id for e in converted})),
             "conversion_value": value, "average_order_value": round(value / count, 2) if count else 0.0}
    return {name: known.get(name, 0.0) for name in asked}


def timeframe(raw: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a `Timeframe` (a key) or a `CustomTimeframe`, at most a year long."""
    if "key" in raw:
        return _keyed(str(raw["key"]), now)
    try:
        start, end = parse_datetime(str(raw["start"])), parse_datetime(str(raw["end"]))
    except (KeyError, ValueError):
        raise AttributionError("timeframe: a key, or a start and an end (date-time)") from None
    if not start < end:
        raise AttributionError("timeframe: the start must be before the end")
    if end - start > MAX_TIMEFRAME:
        raise AttributionError("timeframe: at most one year (Max length: 1 year)")
    return start, end


def _keyed(key: str, now: datetime) -> tuple[datetime, datetime]:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = {"today": 0, "last_7_days": 7, "last_30_days": 30, "last_90_days": 90, "last_365_days": 365}
    if key in days:
        return (today - timedelta(days=days[key]), now) if days[key] else (today, now)
    if key == "yesterday":
        return today - timedelta(days=1), today
    if key in ("this_month", "last_month"):
        first = today.replace(day=1)
        if key == "this_month":
            return first, now
        previous = (first - timedelta(days=1)).replace(day=1)
        return previous, first
    if key in ("this_year", "last_12_months"):
        return (today.replace(month=1, day=1), now) if key == "this_year" else (today - timedelta(days=365), now)
    raise AttributionError(f"timeframe: the sandbox does not model the key {key!r}")


def _filter(kind: str, raw: Any) -> Callable[[str, str, str], bool]:
    """The report's `filter`: equals / contains-any on the send's id, its message id and the channel, joined
    by and (Klaviyo's scalar attributes; names and tags are not modelled)."""
    if not raw:
        return lambda send, message, channel: True
    try:
        tree = parse_filter(str(raw))
    except FilterError as exc:
        raise AttributionError(f"filter: {exc}") from None
    if any(isinstance(part, Junction) and part.op != "and" for part in tree.parts) or tree.op != "and":
        raise AttributionError("filter: only AND can be used as a combination operator")
    fields = {f"{kind}_id": 0, f"{kind}_message_id": 1, "send_channel": 2}
    tests: list[tuple[int, set[str]]] = []
    for condition in conditions(tree):
        if condition.field not in fields or condition.op not in ("equals", "contains-any"):
            raise AttributionError(f"filter: {condition.op}({condition.field}) is not supported")
        tests.append((fields[condition.field], _values(condition)))

    def wanted(send: str, message: str, channel: str) -> bool:
        row = (send, message, channel)
        return all(row[at] in values for at, values in tests)

    return wanted


def _values(condition: Condition) -> set[str]:
    value = condition.value
    if isinstance(value, list | tuple):
        if len(value) > 100:
            raise AttributionError("filter: at most 100 items per list filter")
        return {str(v) for v in value}
    return {str(value)}
