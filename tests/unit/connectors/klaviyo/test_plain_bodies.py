"""Bodies validated into plain dicts (connectors/klaviyo/plain_bodies.py) are what the models made of them: the
same bytes for every builder's bodies, and the same refusals, error by error, for broken ones."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.klaviyo import builders
from connectors.klaviyo.bodies import EventBulkCreateJobBody, ProfileImportJobBody
from connectors.klaviyo.plain_bodies import plain_validator
from tests.unit.connectors.klaviyo.test_models_schema import ITEM, PROFILE, VARIANT, event

Built = tuple[type[BaseModel], dict[str, Any]]

BUILDS: list[tuple[str, Callable[[], Any]]] = [
    ("profile import", lambda: builders.profile_import_body(PROFILE)),
    ("profile import, few fields", lambda: builders.profile_import_body({"external_id": "C2", "first_name": None})),
    ("bulk profile import", lambda: builders.bulk_profile_import_body([PROFILE, {"external_id": "C2"}], "L1")),
    ("event", lambda: builders.event_body(event(1))),
    ("event by profile id", lambda: builders.event_body({"metric": "M", "profile": {"id": "01P"}, "properties": {}})),
    ("bulk events", lambda: builders.bulk_events_body(
        [event(1), event(2, "bob@example.com"), event(3), event(4, metric="Fulfilled Order")])),
    ("subscribe", lambda: builders.subscribe_body([
        {"channel": "email", "profile": {"email": "a@example.com", "id": "01P"}, "list_id": "L1"},
        {"channel": "sms", "profile": {"phone_number": "+12125550100"}, "list_id": "L1"},
        {"channel": "email", "profile": {"email": "c@example.com"}, "list_id": None, "historical_import": True,
         "consented_at": "2020-05-01T00:00:00+00:00"}])),
    ("unsubscribe", lambda: builders.unsubscribe_body(
        [{"channel": "email", "profile": {"email": "a@example.com"}, "list_id": None}])),
    ("catalog item", lambda: builders.catalog_item_body(ITEM)),
    ("catalog item update", lambda: builders.catalog_item_update_body({**ITEM, "published": False})),
    ("catalog variant", lambda: builders.catalog_variant_create_body(VARIANT)),
    ("catalog variant update", lambda: builders.catalog_variant_update_body(VARIANT)),
    ("inventory", lambda: builders.catalog_variant_update_body({"external_id": "V", "inventory_quantity": 0})),
    ("bulk items", lambda: builders.catalog_bulk_item_create_body([ITEM])),
    ("bulk item updates", lambda: builders.catalog_bulk_item_update_body([ITEM])),
    ("bulk variants", lambda: builders.catalog_bulk_variant_create_body([VARIANT])),
    ("bulk variant updates", lambda: builders.catalog_bulk_variant_update_body([VARIANT])),
    ("back in stock", lambda: builders.back_in_stock_body(
        {"channels": ["EMAIL"], "profile": {"email": "a@example.com"}, "variant_external_id": "V"})),
    ("deletion", lambda: builders.deletion_body({"profile": {"email": "a@example.com"}})),
]


def captured(build: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> list[Built]:
    """Every (model, data) the builder validated: whole bodies, and catalog rows one by one."""
    seen: list[Built] = []

    class Recording:
        def __init__(self, model: type[BaseModel]) -> None:
            self.model = model

        def validate_python(self, data: Any) -> Any:
            seen.append((self.model, copy.deepcopy(data)))
            return plain_validator(self.model).validate_python(data)

    with monkeypatch.context() as patch:
        patch.setattr(builders, "plain_validator", Recording)
        build()
    assert seen, "the builder validated nothing"
    return seen


def by_the_model(model: type[BaseModel], data: dict[str, Any]) -> bytes:
    """What the builders sent before: the model built, then dumped by alias without what was not set."""
    return model.__pydantic_serializer__.to_json(model.model_validate(data), by_alias=True, exclude_unset=True)


@pytest.mark.parametrize(("name", "build"), BUILDS, ids=[name for name, _ in BUILDS])
def test_every_builders_body_is_the_models_bytes(name: str, build: Callable[[], Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for model, data in captured(build, monkeypatch):
        assert builders.encode(plain_validator(model).validate_python(data)) == by_the_model(model, data)


def broken(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Copies of `data` each broken in one place: a key dropped, an unknown key, a value of the wrong type."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield path + (key, "dropped"), {k: v for k, v in data.items() if k != key}
            yield path + (key, "a list"), {**data, key: [1]}
            for where, inner in broken(value, path + (key,)):
                yield where, {**data, key: inner}
        yield path + ("unknown",), {**data, "not_a_field": 1}
    elif isinstance(data, list) and data:
        for where, inner in broken(data[0], path + (0,)):
            yield where, [inner, *data[1:]]


def outcome(validate: Callable[[], Any]) -> Any:
    """The errors, with one wording made the same: where a model said "a valid dictionary or instance of
    ProfileResource", a typed dict says "a valid dictionary" (a payload is never a model instance)."""
    try:
        validate()
    except ValidationError as exc:
        return [(e["loc"], re.sub(r" or instance of \w+$", "", e["msg"]),
                 "dict_type" if e["type"] == "model_type" else e["type"]) for e in exc.errors()]
    return "valid"


@pytest.mark.parametrize(("name", "build"), [b for b in BUILDS if b[0] in (
    "profile import", "bulk events", "subscribe", "catalog variant update", "bulk variants", "deletion",
    "back in stock")],
    ids=lambda v: v if isinstance(v, str) else "")
def test_a_broken_body_is_refused_with_the_models_errors(name: str, build: Callable[[], Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    checked = 0
    for model, data in captured(build, monkeypatch):
        for where, bad in broken(data):
            ours = outcome(partial(plain_validator(model).validate_python, bad))
            theirs = outcome(partial(model.model_validate, bad))
            assert ours == theirs, where
            if ours == "valid":
                assert builders.encode(plain_validator(model).validate_python(bad)) == by_the_model(model, bad)
            checked += 1
    assert checked > 20


def test_a_models_own_check_runs_on_the_dict() -> None:
    """ProfileResource's rule (an identifier is required), inside a bulk event body and a profile import job."""
    profile = {"type": "profile", "attributes": {"first_name": "Ada"}}
    events = {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": [
        {"type": "event-bulk-create", "attributes": {
            "profile": {"data": profile},
            "events": {"data": [{"type": "event", "attributes": {
                "properties": {}, "metric": {"data": {"type": "metric", "attributes": {"name": "M"}}}}}]}}}]}}}}
    for model, body in ((EventBulkCreateJobBody, events),):
        with pytest.raises(ValidationError, match="needs one of email"):
            plain_validator(model).validate_python(body)
        with pytest.raises(ValidationError, match="needs one of email"):
            model.model_validate(body)
    assert plain_validator(ProfileImportJobBody) is plain_validator(ProfileImportJobBody)  # built once


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_by_name=True)
    first: str | None = Field(None, alias="first-name")


class _Checked(BaseModel):
    """A check that reads aliased fields, its own and a nested model's (held by reference, twice)."""
    model_config = ConfigDict(extra="forbid", validate_by_name=True)
    given: str | None = Field(None, alias="given-name")
    inner: _Inner | None = Field(None, alias="the-inner")
    other: _Inner | None = None

    @model_validator(mode="after")
    def _named(self) -> _Checked:
        if not (self.given or (self.inner and self.inner.first) or (self.other and self.other.first)):
            raise ValueError("needs a name")
        return self


@pytest.mark.parametrize("body", [
    {"given-name": "Ada"}, {"given": "Ada"}, {"the-inner": {"first-name": "Ada"}}, {"other": {"first": "Ada"}},
    {}, {"the-inner": {}}, {"other": {"first-name": None}},
])
def test_a_models_own_check_reads_aliased_fields_by_their_names(body: dict[str, Any]) -> None:
    """The check reads `self.given` and `self.inner.first`: the dict holds them under their aliases."""
    try:
        expected: Any = _Checked.model_validate(body).model_dump(by_alias=True, exclude_unset=True)
    except ValidationError as exc:
        expected = [e["msg"] for e in exc.errors()]
    try:
        ours: Any = plain_validator(_Checked).validate_python(body)
    except ValidationError as exc:
        ours = [e["msg"] for e in exc.errors()]
    assert ours == expected


def test_a_check_reading_a_name_the_model_does_not_have_fails_as_on_the_model() -> None:
    class Broken(BaseModel):
        given: str | None = None

        @model_validator(mode="after")
        def _reads_a_typo(self) -> Broken:
            assert self.givne  # type: ignore[attr-defined]
            return self

    with pytest.raises(AttributeError):
        Broken.model_validate({"given": "x"})
    with pytest.raises(AttributeError):
        plain_validator(Broken).validate_python({"given": "x"})
