"""Metrics and events, de-duplicated by `unique_id` per (profile, metric) as Klaviyo does."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.klaviyo.ids import IdFactory
from sandbox.klaviyo.timeutil import from_epoch, iso


@dataclass
class Metric:
    id: str
    name: str
    created: datetime


@dataclass
class Event:
    id: str
    metric_id: str
    profile_id: str
    time: datetime
    properties: dict[str, Any]
    value: float | None
    value_currency: str | None
    unique_id: str | None
    backfill: bool
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def attributes_json(self) -> dict[str, Any]:
        properties = dict(self.properties)
        if self.unique_id is not None:
            properties["$event_id"] = self.unique_id  # where Klaviyo surfaces unique_id when read back
        if self.value is not None:
            properties["$value"] = self.value
        return {
            "timestamp": int(self.time.timestamp()),
            "event_properties": properties,
            "datetime": iso(self.time),
            "uuid": self.uuid,
        }


def dedup_key(profile_id: str, metric_id: str, unique_id: str | None, moment: datetime) -> tuple[str, str, str]:
    return profile_id, metric_id, f"u:{unique_id}" if unique_id is not None else f"t:{int(moment.timestamp())}"


class EventLog:
    def __init__(self, ids: IdFactory) -> None:
        self.ids = ids
        self.metrics_by_name: dict[str, Metric] = {}
        self.metrics: dict[str, Metric] = {}
        self.by_metric: dict[str, list[Event]] = defaultdict(list)
        self.by_profile: dict[str, list[Event]] = defaultdict(list)
        self.seen: set[tuple[str, str, str]] = set()
        self.duplicates_suppressed = 0
        self.count = 0
        self.bulk_job_sizes: Counter[int] = Counter()  # events per accepted bulk create job -> jobs (benches)

    def metric(self, name: str, now: float) -> Metric:
        found = self.metrics_by_name.get(name)
        if found is None:
            found = Metric(id=self.ids.metric_id(), name=name, created=from_epoch(now))
            self.metrics_by_name[name] = found
            self.metrics[found.id] = found
        return found

    def add(
        self,
        profile_id: str,
        metric_name: str,
        attributes: dict[str, Any],
        moment: datetime,
        now: float,
    ) -> Event | None:
        """Store the event, or count it as a duplicate (None). Without a unique_id Klaviyo dedupes on the
        event time to the second, so the sandbox does the same."""
        metric = self.metric(metric_name, now)
        unique_id = attributes.get("unique_id")
        key = dedup_key(profile_id, metric.id, unique_id, moment)
        if key in self.seen:
            self.duplicates_suppressed += 1
            return None
        self.seen.add(key)
        event = Event(
            id=self.ids.ulid(now),
            metric_id=metric.id,
            profile_id=profile_id,
            time=moment,
            properties=dict(attributes.get("properties") or {}),
            value=attributes.get("value"),
            value_currency=attributes.get("value_currency"),
            unique_id=unique_id,
            backfill=bool(attributes.get("backfill")),
        )
        self.by_metric[metric.id].append(event)
        self.by_profile[profile_id].append(event)
        self.count += 1
        return event

    def find(self, event_id: str) -> Event | None:
        return next((e for events in self.by_metric.values() for e in events if e.id == event_id), None)

    def remove(self, event: Event) -> None:
        """Forget one event as if it had never been received: a repeat of it would be stored again, and a
        metric left without events goes too (only events create metrics)."""
        self.by_metric[event.metric_id] = [e for e in self.by_metric[event.metric_id] if e is not event]
        self.by_profile[event.profile_id] = [e for e in self.by_profile[event.profile_id] if e is not event]
        if not self.by_profile[event.profile_id]:
            del self.by_profile[event.profile_id]
        if not self.by_metric[event.metric_id]:
            del self.by_metric[event.metric_id]
            metric = self.metrics.pop(event.metric_id)
            del self.metrics_by_name[metric.name]
        self.seen.discard(dedup_key(event.profile_id, event.metric_id, event.unique_id, event.time))
        self.count -= 1

    def forget_profile(self, profile_id: str) -> None:
        events = self.by_profile.pop(profile_id, [])
        doomed = {id(event) for event in events}
        for event in events:
            bucket = self.by_metric.get(event.metric_id)
            if bucket is not None:
                self.by_metric[event.metric_id] = [e for e in bucket if id(e) not in doomed]
        self.seen = {key for key in self.seen if key[0] != profile_id}
        self.count -= len(events)

    def clear(self) -> None:
        self.__init__(self.ids)  # type: ignore[misc]
