"""Request bodies checked the way Klaviyo checks them.

Types and required fields come from the official SDK's pydantic models (`openapi_client.models`). Those
models (like the OpenAPI file) silently accept keys they do not declare, while Klaviyo refuses them, so
`closure_errors` walks each model's declared fields (by alias) and rejects every undeclared key, except
inside free-form objects (`properties`, `custom_metadata`, ...), which the models type as plain dicts.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from sandbox.klaviyo.errors import ApiError, ErrorItem, pointer_of

MAX_STRING_BYTES = 100 * 1024
MAX_ERRORS = 50  # errors reported per rejected request, like an API that stops counting

M = TypeVar("M", bound=BaseModel)


@dataclass
class ObjectShape:
    """The keys a JSON object may have, and the closed objects below each key."""

    resource: str
    fields: dict[str, FieldShape] = field(default_factory=dict)


@dataclass
class FieldShape:
    obj: ObjectShape | None = None  # the value is a closed object
    item: ObjectShape | None = None  # the value is a list of closed objects


_shapes: dict[tuple[type[BaseModel], str], ObjectShape] = {}


def _resource_name(model: type[BaseModel], inherited: str) -> str:
    type_field = model.model_fields.get("type")
    if type_field is not None and inspect.isclass(type_field.annotation):
        annotation = type_field.annotation
        if issubclass(annotation, enum.Enum):
            return str(next(iter(annotation)).value)
    return inherited


def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, type[BaseModel] | None]:
    """(model for a direct object, model for list items) found in a field annotation."""
    origin = typing.get_origin(annotation)
    if origin is None:
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            return annotation, None
        return None, None
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (list, typing.List):  # noqa: UP006 - older annotations spell it typing.List
        args = typing.get_args(annotation)
        direct, _ = _models_in(args[0]) if args else (None, None)
        return None, direct
    if origin in (typing.Union, types.UnionType):
        direct_found: type[BaseModel] | None = None
        item_found: type[BaseModel] | None = None
        for arg in typing.get_args(annotation):
            direct, item = _models_in(arg)
            direct_found = direct_found or direct
            item_found = item_found or item
        return direct_found, item_found
    return None, None  # dict[...] and anything else: free-form


def shape_of(model: type[BaseModel], inherited: str = "") -> ObjectShape:
    resource = _resource_name(model, inherited)
    key = (model, resource)
    if key in _shapes:
        return _shapes[key]
    shape = ObjectShape(resource=resource)
    _shapes[key] = shape  # registered before recursing, so self-referencing models terminate
    for name, info in model.model_fields.items():
        direct, item = _models_in(info.annotation)
        shape.fields[info.alias or name] = FieldShape(
            obj=shape_of(direct, resource) if direct else None,
            item=shape_of(item, resource) if item else None,
        )
    return shape


def closure_errors(model: type[BaseModel], body: Any, limit: int = MAX_ERRORS) -> list[ErrorItem]:
    """An error for every key the models do not declare, with Klaviyo's wording and a pointer to it."""
    errors: list[ErrorItem] = []
    stack: list[tuple[ObjectShape, Any, tuple[str | int, ...]]] = [(shape_of(model), body, ())]
    while stack and len(errors) < limit:
        shape, value, path = stack.pop()
        if not isinstance(value, dict):
            continue  # wrong types are pydantic's to report
        for key, child in value.items():
            spec = shape.fields.get(key)
            if spec is None:
                errors.append(
                    ErrorItem(
                        status=400,
                        detail=f"'{key}' is not a valid field for the resource '{shape.resource}'.",
                        pointer=pointer_of((*path, key)),
                    )
                )
                continue
            if spec.obj is not None:
                stack.append((spec.obj, child, (*path, key)))
            elif spec.item is not None and isinstance(child, list):
                stack.extend((spec.item, entry, (*path, key, i)) for i, entry in enumerate(child))
    errors.sort(key=lambda item: item.pointer)
    return errors


def _pointer_for_loc(body: Any, loc: tuple[int | str, ...], missing: bool) -> str:
    """Follow a pydantic error location through the body, skipping union-member labels it adds."""
    path: list[str | int] = []
    node = body
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
        elif missing and isinstance(node, dict) and part == loc[-1]:
            path.append(part)
    return pointer_of(path)


def _detail(error: Any, pointer: str) -> str:
    parts = [part for part in pointer.split("/") if part and not part.isdigit()]
    field_name = parts[-1] if parts else "body"
    if error["type"] == "missing":
        return f"'{field_name}' is a required field."
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"Invalid value for '{field_name}': {message}."


def validate_body(model: type[M], body: Any) -> M:
    """The body as the SDK model, or ApiError 400 listing every problem with a pointer."""
    if not isinstance(body, dict):
        raise ApiError([ErrorItem(status=400, detail="The request body must be a JSON object.", pointer="/")])
    errors = closure_errors(model, body)
    try:
        parsed = model.model_validate(body)
    except pydantic.ValidationError as exc:
        for error in exc.errors()[:MAX_ERRORS]:
            pointer = _pointer_for_loc(body, tuple(error["loc"]), error["type"] == "missing")
            errors.append(ErrorItem(status=400, detail=_detail(error, pointer), pointer=pointer))
    errors.extend(string_errors(body))
    if errors:
        raise ApiError(_unique(errors)[:MAX_ERRORS])
    return parsed


def _unique(errors: list[ErrorItem]) -> list[ErrorItem]:
    """One error per pointer: a union field reports each member's complaint, Klaviyo reports one."""
    seen: set[str] = set()
    result = []
    for item in errors:
        key = item.pointer
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


def string_errors(body: Any) -> list[ErrorItem]:
    """Klaviyo caps every single string at 100 KB."""
    errors: list[ErrorItem] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_STRING_BYTES // 4 and len(value.encode()) > MAX_STRING_BYTES:
                errors.append(
                    ErrorItem(
                        status=400,
                        detail=f"String values are limited to {MAX_STRING_BYTES} bytes.",
                        pointer=pointer_of(path),
                    )
                )
        elif isinstance(value, dict):
            stack.extend((child, (*path, key)) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(value))
    return errors


def batch_size_error(items: list[Any], limit: int, what: str, pointer: str) -> None:
    if len(items) > limit:
        raise ApiError(
            [
                ErrorItem(
                    status=400,
                    detail=f"A request may contain at most {limit} {what}; this one has {len(items)}.",
                    pointer=pointer,
                )
            ]
        )
    if not items:
        raise ApiError([ErrorItem(status=400, detail=f"At least one of {what} is required.", pointer=pointer)])
