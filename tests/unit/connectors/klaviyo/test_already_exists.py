"""Telling "the object already exists" from a creation's error: by code and detail, never by an HTTP status.

A catalog bulk job's failed row is an `APIJobErrorPayload` (Klaviyo's OpenAPI spec: id, code, title, detail,
source.pointer and nothing else - no status). Every job-row shape below is checked against that schema,
closed, so the recogniser is tested on what Klaviyo documents, not on what a sandbox happens to send."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from connectors.klaviyo.errors import (
    KlaviyoErrorItem,
    PermanentError,
    already_exists,
    creation_found_existing,
    parse_error_items,
)

ITEM_ID = "$custom:::$default:::S100-BLK"


def job_row(code: str, detail: str, title: str = "Conflict.", row: int = 0) -> dict[str, Any]:
    return {"id": "e4eebb08-b055-4a6f-bb13-c8cb69c9eb94", "code": code, "title": title, "detail": detail,
            "source": {"pointer": f"/data/attributes/items/data/{row}"}}


EXISTING_ROWS = {
    # the Klaviyo sandbox's own answer
    "sandbox item": job_row("duplicate_catalog_item", f"A catalog-item with id '{ITEM_ID}' already exists."),
    "sandbox variant": job_row("duplicate_catalog_variant", "A catalog-variant with id '$custom:::x' already exists."),
    # JSON:API's code for a client-made id that is taken, with a detail that says nothing more
    "conflict code only": job_row("conflict", "Conflict."),
    "duplicate code, other detail": job_row("duplicate", "Could not create the resource."),
    "code in capitals": job_row("DUPLICATE", "Catalog item exists."),
    # the spec's one documented code, `invalid`, with a detail saying it exists: the detail decides
    "invalid code, existing detail": job_row("invalid", "A catalog item with this external_id already exists.",
                                             "Invalid input"),
    "unknown code, existing detail": job_row("catalog_item_exists_error", f"Item {ITEM_ID} already exists"),
    "exists already": job_row("error", "This catalog variant exists already."),
}

OTHER_ROWS = {
    # the spec's own example of a job error
    "documented example": job_row("invalid", "The payload provided in the request is invalid.", "Invalid input"),
    "not found": job_row("not_found", f"A catalog-item with id '{ITEM_ID}' does not exist.", "Not found."),
    "item of a variant missing": job_row("not_found", "The catalog item '$custom:::x' does not exist."),
    "invalid field": job_row("invalid", "'colour' is not a valid field for the resource 'catalog-item'."),
    "server error": job_row("error", "A server error occurred.", "A server error occurred."),
    # another object (a profile) holds the identifiers: not this object existing
    "duplicate profile": job_row("duplicate_profile", "A profile already exists with one of these identifiers."),
}


@pytest.fixture(scope="module")
def job_error_schema(closed_components: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({"$ref": "#/components/schemas/APIJobErrorPayload", "components": closed_components})


@pytest.mark.parametrize("name", sorted(EXISTING_ROWS))
def test_a_job_row_saying_the_object_exists_is_recognised(name: str, job_error_schema: Draft202012Validator) -> None:
    row = EXISTING_ROWS[name]
    job_error_schema.validate(row)  # the documented shape: no status to go by
    assert already_exists(row)
    assert already_exists(KlaviyoErrorItem.from_json(row))


@pytest.mark.parametrize("name", sorted(OTHER_ROWS))
def test_other_job_row_errors_are_not(name: str, job_error_schema: Draft202012Validator) -> None:
    row = OTHER_ROWS[name]
    job_error_schema.validate(row)
    assert not already_exists(row)


def test_the_documented_shape_has_no_status(job_error_schema: Draft202012Validator) -> None:
    assert not job_error_schema.is_valid({**EXISTING_ROWS["sandbox item"], "status": 409})
    # ... and a status, where a caller adds one, decides nothing: a 409 saying something else is not "exists"
    assert not already_exists({**OTHER_ROWS["duplicate profile"], "status": 409})
    assert not already_exists({"status": 409})
    assert not already_exists({}) and not already_exists("odd")  # type: ignore[arg-type]


def single_error(status: int, body: dict[str, Any]) -> PermanentError:
    return PermanentError("refused", status=status, errors=parse_error_items(body), endpoint="catalog-items")


def test_a_single_create_refused_as_existing() -> None:
    sandbox_409 = {"errors": [{"id": "1", "status": 409, "code": "duplicate_catalog_item", "title": "Conflict.",
                               "detail": f"A catalog-item with id '{ITEM_ID}' already exists.",
                               "source": {"pointer": "/data/attributes/external_id"}, "meta": {}}]}
    assert creation_found_existing(single_error(409, sandbox_409))
    assert creation_found_existing(single_error(409, {"errors": [job_row("conflict", "Conflict.")]}))
    assert creation_found_existing(single_error(400, {"errors": [EXISTING_ROWS["invalid code, existing detail"]]}))
    assert creation_found_existing(single_error(409, {}))  # no readable body: JSON:API's 409 on a create


def test_a_single_create_refused_for_another_reason() -> None:
    assert not creation_found_existing(single_error(404, {"errors": [OTHER_ROWS["item of a variant missing"]]}))
    assert not creation_found_existing(single_error(400, {"errors": [OTHER_ROWS["invalid field"]]}))
    assert not creation_found_existing(single_error(409, {"errors": [OTHER_ROWS["duplicate profile"]]}))
    assert not creation_found_existing(single_error(400, {}))
