"""Fixtures of the Klaviyo connector tests: the OpenAPI file as closed JSON schemas, a limiter."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from jsonschema import Draft202012Validator

from connectors.klaviyo.limiter import FleetRateLimiter
from tests.support.openapi import klaviyo_openapi


def close_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema, with every declared object closed as Klaviyo really is.

    `nullable: true` becomes a null alternative; an object with `properties` gets
    `additionalProperties: false`; an object without them (`properties`, `custom_metadata`) stays free-form.
    """
    if isinstance(node, list):
        return [close_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: close_schema(value) for key, value in node.items() if key not in ("example", "description")}
    if "properties" in node and isinstance(node["properties"], dict):
        out["properties"] = {name: close_schema(sub) for name, sub in node["properties"].items()}
        if node.get("type", "object") == "object":
            out["additionalProperties"] = False
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        elif "oneOf" in out:
            out["oneOf"] = [*out["oneOf"], {"type": "null"}]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    return out


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    return klaviyo_openapi()  # vendor/klaviyo/openapi-stable.json.gz; a missing file errors every test using it


@pytest.fixture(scope="session")
def closed_components(openapi: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": close_schema(copy.deepcopy(openapi["components"]["schemas"]))}


@pytest.fixture(scope="session")
def request_schema(
    openapi: dict[str, Any], closed_components: dict[str, Any]
) -> Callable[[str, str], Draft202012Validator]:
    """Validator of the request body of `METHOD /api/path` in the OpenAPI file, every object closed."""

    def make(method: str, path: str) -> Draft202012Validator:
        operation = openapi["paths"][path][method.lower()]
        content = operation["requestBody"]["content"]
        schema = next(iter(content.values()))["schema"]
        return Draft202012Validator({**schema, "components": closed_components})

    return make


@pytest.fixture
def limiter_factory(redis_url: str) -> Iterator[Callable[..., FleetRateLimiter]]:
    clients: list[redis.Redis] = []

    def make(**kwargs: Any) -> FleetRateLimiter:
        client = redis.Redis.from_url(redis_url)
        clients.append(client)
        return FleetRateLimiter(client, kwargs.pop("key_prefix", "test"), **kwargs)

    yield make
    for client in clients:
        client.close()
