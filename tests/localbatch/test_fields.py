"""The body fields the local API accepts are the spec's, and the project's own requests use
only those."""

from __future__ import annotations

from pathlib import Path

import pytest

from localbatch._fields import (
    BODY_BOUNDS,
    BODY_ENUMS,
    BODY_FIELDS,
    BODY_TYPES,
    CREATE_BATCH_FIELDS,
    NESTED_FIELDS,
    NESTED_VALUES,
)
from schemas.job import load_job
from tasks.capabilities import RESPONSES_MIN_OUTPUT_TOKENS
from tasks.render import request_body
from tests.localbatch._spec import (
    load_spec,
    path_fields,
    path_types,
    request_fields,
    request_properties,
    request_types,
)

JOBS = Path(__file__).resolve().parents[2] / "data" / "jobs"
REQUEST_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionRequest",
    "/v1/responses": "CreateResponse",
    "/v1/embeddings": "CreateEmbeddingRequest",
    "/v1/moderations": "CreateModerationRequest",
    "/v1/completions": "CreateCompletionRequest",
}


def _literal(fields: frozenset[str]) -> str:
    return "frozenset({" + ", ".join(repr(f) for f in sorted(fields)) + "})"


@pytest.mark.parametrize("endpoint", sorted(REQUEST_SCHEMAS))
def test_body_fields_are_the_spec_request_schema(endpoint: str) -> None:
    derived = request_fields(REQUEST_SCHEMAS[endpoint])
    assert BODY_FIELDS[endpoint] == derived, (
        f"localbatch/_fields.py is out of date with the spec for {endpoint}; "
        f"use {_literal(derived)}"
    )


def test_create_batch_fields_are_the_spec_request_schema() -> None:
    derived = request_fields("CreateBatchRequest")
    assert derived == CREATE_BATCH_FIELDS, f"use {_literal(derived)}"


def test_every_endpoint_the_server_takes_has_its_fields() -> None:
    from localbatch._app import SUPPORTED_ENDPOINTS

    assert set(BODY_FIELDS) == set(SUPPORTED_ENDPOINTS) == set(REQUEST_SCHEMAS)


def test_the_responses_minimum_output_cap_is_the_spec_minimum() -> None:
    spec = load_spec()
    assert spec is not None
    minimums = {
        option.get("minimum")
        for part in spec["components"]["schemas"]["CreateResponse"]["allOf"]
        if "$ref" not in part
        for option in part.get("properties", {}).get("max_output_tokens", {}).get("anyOf", [])
    } - {None}
    assert minimums == {RESPONSES_MIN_OUTPUT_TOKENS}


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/responses"])
@pytest.mark.parametrize("name", ["nightly_summary", "invoices", "contacts"])
def test_the_shipped_jobs_send_only_spec_fields(name: str, endpoint: str) -> None:
    job = load_job(JOBS / f"{name}.toml").model_copy(update={"endpoint": endpoint})
    body = request_body(job, "document text")
    assert body.keys() <= BODY_FIELDS[endpoint]


@pytest.mark.parametrize("endpoint", sorted(REQUEST_SCHEMAS))
def test_value_bounds_and_enums_are_the_specs(endpoint: str) -> None:
    bounds: dict[str, tuple[str, float | None, float | None]] = {}
    enums: dict[str, tuple[str, ...]] = {}
    for name, option in request_properties(REQUEST_SCHEMAS[endpoint]):
        kind = option.get("type")
        if name == "seed" or (endpoint == "/v1/responses" and name == "max_output_tokens"):
            continue  # the int64 range; the minimum tasks.capabilities checks (test below)
        if kind in ("integer", "number") and ("minimum" in option or "maximum" in option):
            bounds[name] = (kind, option.get("minimum"), option.get("maximum"))
        if kind == "string" and "enum" in option and name != "model":
            enums[name] = tuple(option["enum"])
    assert BODY_BOUNDS.get(endpoint, {}) == bounds, f"localbatch/_fields.py: use {bounds}"
    assert BODY_ENUMS.get(endpoint, {}) == enums, f"localbatch/_fields.py: use {enums}"


@pytest.mark.parametrize("endpoint", sorted(REQUEST_SCHEMAS))
def test_value_types_are_the_specs(endpoint: str) -> None:
    derived = request_types(REQUEST_SCHEMAS[endpoint])
    # The extracted subset lacks a few references; the whole spec tells every field's types.
    known = {name: types for name, types in derived.items() if types is not None}
    assert len(known) >= len(derived) - 5
    assert {name: BODY_TYPES[endpoint].get(name) for name in known} == known, (
        f"localbatch/_fields.py: use {known} (plus the fields the subset cannot tell)"
    )
    assert BODY_TYPES[endpoint].keys() <= BODY_FIELDS[endpoint]


@pytest.mark.parametrize("endpoint", sorted(NESTED_VALUES))
def test_nested_value_types_and_values_are_the_specs(endpoint: str) -> None:
    for path, types, values in NESTED_VALUES[endpoint]:
        assert path_types(REQUEST_SCHEMAS[endpoint], path) == (types, values), path
        assert path.partition(".")[0].removesuffix("[]") in BODY_FIELDS[endpoint]


@pytest.mark.parametrize("endpoint", sorted(NESTED_FIELDS))
def test_the_fields_of_objects_inside_the_body_are_the_specs(endpoint: str) -> None:
    for path, kinds in NESTED_FIELDS[endpoint]:
        derived = path_fields(REQUEST_SCHEMAS[endpoint], path)
        assert kinds == derived, f"{path}: use {derived}"
        assert path.partition(".")[0].removesuffix("[]") in BODY_FIELDS[endpoint]
