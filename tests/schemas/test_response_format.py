from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, cast

import pytest
from pydantic import BaseModel, Field, RootModel, create_model

from schemas.contacts import ContactsV1
from schemas.invoice import InvoiceV1
from schemas.job import Endpoint, JobSpecError
from schemas.response_format import (
    check_strict,
    response_format_for,
    schema_problems,
    strict_json_schema,
    strict_problems,
)
from schemas.summary import DocumentSummary

SNAPSHOTS = Path(__file__).parent / "snapshots"
SHIPPED: list[type[BaseModel]] = [DocumentSummary, InvoiceV1, ContactsV1]
ENDPOINTS: dict[str, Endpoint] = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}


@pytest.mark.parametrize("model", SHIPPED, ids=lambda m: m.__name__)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_shipped_schema_formats_are_pinned(model: type[BaseModel], endpoint: str) -> None:
    """The exact format sent to the API; regenerate with OVERNIGHT_UPDATE_SNAPSHOTS=1."""
    generated = response_format_for(model, ENDPOINTS[endpoint])
    snapshot = SNAPSHOTS / f"{model.__name__}.{endpoint}.json"
    if os.environ.get("OVERNIGHT_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(json.dumps(generated, indent=2, ensure_ascii=False) + "\n")
    assert generated == json.loads(snapshot.read_text())
    check_strict(model, ENDPOINTS[endpoint])


def test_formats_have_the_shape_each_endpoint_expects() -> None:
    chat = response_format_for(InvoiceV1, "/v1/chat/completions")
    assert chat["type"] == "json_schema"
    assert chat["json_schema"]["strict"] is True
    assert chat["json_schema"]["name"] == "InvoiceV1"
    responses = response_format_for(InvoiceV1, "/v1/responses")
    assert responses == {
        "type": "json_schema",
        "strict": True,
        "name": "InvoiceV1",
        "schema": chat["json_schema"]["schema"],
    }


def test_the_schema_name_sent_is_one_openai_takes() -> None:
    """The name is the class's, and OpenAI refuses one outside [a-zA-Z0-9_-] or over 64."""
    accented = create_model("Résumé", title=(str, ...))
    long = create_model("Invoice" * 10, title=(str, ...))
    chat = response_format_for(accented, "/v1/chat/completions")
    assert chat["json_schema"]["name"] == "R_sum_"
    assert response_format_for(long, "/v1/responses")["name"] == ("Invoice" * 10)[:64]


def test_returned_formats_are_fresh_copies() -> None:
    first = response_format_for(DocumentSummary, "/v1/chat/completions")
    first["json_schema"]["name"] = "changed"
    assert response_format_for(DocumentSummary, "/v1/chat/completions")["json_schema"]["name"] == (
        "DocumentSummary"
    )


def test_nullable_fields_are_required_unions_with_null() -> None:
    schema = strict_json_schema(InvoiceV1)
    assert set(schema["required"]) == set(schema["properties"])
    assert {"type": "null"} in schema["properties"]["total"]["anyOf"]
    assert schema["additionalProperties"] is False


# -- what strict mode rejects ----------------------------------------------------------------


class FreeForm(BaseModel):
    title: str
    extra: dict[str, str]


class Untyped(BaseModel):
    value: Any


def _nested(depth: int) -> type[BaseModel]:
    inner: Any = create_model("Leaf", x=(int, ...))
    for level in range(depth - 1):
        inner = create_model(f"Level{level}", child=(inner, ...))  # type: ignore[misc,assignment]
    return cast("type[BaseModel]", inner)


WideModel = create_model("WideModel", **{f"f{i}": (int, ...) for i in range(5_001)})  # type: ignore[call-overload]
ManyEnums = create_model(
    "ManyEnums",
    a=(Literal[tuple(f"a{i}" for i in range(600))], ...),  # type: ignore
    b=(Literal[tuple(f"b{i}" for i in range(401))], ...),  # type: ignore
)


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (FreeForm, "free-form object"),
        (Untyped, "without a type"),
        (_nested(11), "nested more than 10"),
        (WideModel, "5001 properties"),
        (ManyEnums, "1001 enum values"),
        (RootModel[list[int]], "root must be an object"),
    ],
    ids=["dict", "any", "depth", "properties", "enums", "root"],
)
def test_schemas_strict_mode_rejects_fail_at_load(model: type[BaseModel], problem: str) -> None:
    with pytest.raises(JobSpecError, match="strict structured outputs reject") as err:
        check_strict(model)
    assert problem in str(err.value)


def test_ten_levels_of_nesting_are_allowed() -> None:
    check_strict(_nested(10))


@pytest.mark.parametrize("keyword", ["allOf", "not", "if"])
def test_composition_keywords_are_rejected(keyword: str) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["a"],
        "properties": {"a": {"type": "string", keyword: [{"type": "string"}]}},
    }
    assert any(f"'{keyword}' is not supported" in p for p in strict_problems(schema))


def test_recursive_schemas_are_accepted() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node]

    Node.model_rebuild()
    check_strict(Node)


def test_a_job_with_a_rejected_schema_fails_to_load() -> None:
    from schemas.job import parse_job

    with pytest.raises(JobSpecError, match="free-form object"):
        parse_job(
            {
                "name": "free",
                "source": {"uri": "/in"},
                "output": "/out",
                "model": "gpt-4o-mini",
                "system_prompt": "x",
                "output_schema": f"{__name__}:FreeForm",
                "params": {"max_output_tokens": 5},
            }
        )


# -- the keywords and limits of OpenAI's "Supported schemas" ------------------------------------


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def test_supported_keywords_pass() -> None:
    schema = _object(
        when={"type": "string", "format": "date-time", "description": "When."},
        code={"type": "string", "pattern": "^[A-Z]{3}$"},
        share={"type": "number", "minimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.01},
        tags={"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
        kind={"type": "string", "enum": ["a", "b"]},
        fixed={"const": "x"},
        maybe={"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
    )
    assert schema_problems(schema) == []


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"type": "string", "minLength": 1}, "$.properties.a.minLength"),
        ({"type": "string", "maxLength": 9}, "$.properties.a.maxLength"),
        ({"type": "string", "format": "uri"}, "$.properties.a.format"),
        ({"type": "integer", "default": 3}, "$.properties.a.default"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True},
         "$.properties.a.uniqueItems"),
        ({"type": "array", "items": {"type": "string", "examples": ["x"]}},
         "$.properties.a.items.examples"),
        ({"anyOf": [{"type": "string", "minLength": 2}, {"type": "null"}]},
         "$.properties.a.anyOf[0].minLength"),
    ],
    ids=["minLength", "maxLength", "format", "default", "uniqueItems", "examples", "anyOf"],
)  # fmt: skip
def test_unsupported_keywords_are_named_by_their_json_path(node: dict[str, Any], path: str) -> None:
    [problem] = schema_problems(_object(a=node))
    assert problem.json_path == path
    keyword = path.rsplit(".", 1)[1]
    assert problem.openai_message().endswith(f"'{keyword}' is not permitted.")


def test_total_string_length_is_limited() -> None:
    names = {f"p{i:05d}_" + "x" * 40: {"type": "string"} for i in range(2_900)}
    [problem] = schema_problems(_object(**names))
    assert "characters (limit 120000)" in problem.message


def test_a_large_enum_has_a_string_length_limit() -> None:
    fine = _object(a={"type": "string", "enum": [f"v{i:03d}" + "y" * 50 for i in range(250)]})
    assert schema_problems(fine) == []
    big = _object(a={"type": "string", "enum": [f"v{i:03d}" + "y" * 50 for i in range(300)]})
    [problem] = schema_problems(big)
    assert problem.json_path == "$.properties.a" and "(limit 15000)" in problem.message


def test_definitions_are_checked_with_their_path() -> None:
    schema = _object(item={"$ref": "#/$defs/Item"})
    schema["$defs"] = {"Item": _object(name={"type": "string", "maxLength": 3})}
    [problem] = schema_problems(schema)
    assert problem.json_path == "$.$defs.Item.properties.name.maxLength"
    assert problem.openai_message() == (
        "In context=('$defs', 'Item', 'properties', 'name'), 'maxLength' is not permitted."
    )


def test_a_ref_with_keywords_beside_it_is_refused_in_openais_words() -> None:
    # What Pydantic writes for `address: Address = Field(description=...)`, as clients that
    # send `model_json_schema()` unchanged (instructor's batch files) do. OpenAI answers
    # "context=('properties', 'address'), $ref cannot have keywords {'description'}."
    class Address(BaseModel):
        model_config = {"extra": "forbid"}
        city: str

    class Person(BaseModel):
        model_config = {"extra": "forbid"}
        name: str
        address: Address = Field(description="Where they live")

    schema = Person.model_json_schema()
    assert schema["properties"]["address"] == {
        "$ref": "#/$defs/Address",
        "description": "Where they live",
    }
    [problem] = schema_problems(schema)
    assert problem.json_path == "$.properties.address"
    assert problem.openai_message() == (
        "context=('properties', 'address'), $ref cannot have keywords {'description'}."
    )
    assert "put them in the definition" in problem.describe()
    # Several keywords are all named; a bare $ref, and $defs beside a root, are fine.
    schema["properties"]["address"]["title"] = "Address"
    [problem] = schema_problems(schema)
    assert problem.openai_message().endswith("$ref cannot have keywords {'description', 'title'}.")
    del schema["properties"]["address"]["title"], schema["properties"]["address"]["description"]
    assert schema_problems(schema) == []
    # A job's own model is sent as openai-python builds it, with such references inlined.
    check_strict(Person)
    assert "$ref" not in strict_json_schema(Person)["properties"]["address"]


def test_pydantic_length_constraints_fail_at_load_with_a_remedy() -> None:
    class Titled(BaseModel):
        title: str = Field(min_length=3)

    with pytest.raises(JobSpecError) as err:
        check_strict(Titled)
    assert "$.properties.title.minLength: 'minLength' is not permitted" in str(err.value)
    assert "Field(min_length=..., max_length=...)" in str(err.value)
