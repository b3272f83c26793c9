"""Strict structured-output formats from Pydantic models: the one wrapper of openai's private helpers.

openai-python builds the `response_format` (Chat Completions) and `text.format` (Responses)
parameters from a Pydantic model in private modules; everything here goes through
`response_format_for`, and a test pins its output for every shipped schema, so an upgrade of
the client that changes the generated schema shows up as a failing test, not as a silent
change of every request (and of every job fingerprint).

`check_strict` refuses, at job load, schemas that strict mode would reject at the API:
free-form objects, more than 10 levels of nesting, more than 5,000 properties, more than
1,000 enum values, a root that is not an object, and `allOf`/`not`/`if`-`then`-`else`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

import orjson
from pydantic import BaseModel

from schemas.job import Endpoint, JobSpecError

MAX_NESTING = 10
MAX_PROPERTIES = 5_000
MAX_ENUM_VALUES = 1_000
_UNSUPPORTED = ("allOf", "not", "if", "then", "else")


@lru_cache(maxsize=64)
def _format_json(model_cls: type[BaseModel], endpoint: Endpoint) -> bytes:
    from openai.lib._parsing._completions import type_to_response_format_param
    from openai.lib._parsing._responses import type_to_text_format_param

    if endpoint == "/v1/responses":
        param: object = type_to_text_format_param(model_cls)
    else:
        param = type_to_response_format_param(model_cls)
    return orjson.dumps(param)


def response_format_for(model_cls: type[BaseModel], endpoint: Endpoint) -> dict[str, Any]:
    """The strict json_schema format for a model: chat `response_format` or responses `text.format`.

    Returns a fresh dict on every call; callers may change it.
    """
    return cast("dict[str, Any]", orjson.loads(_format_json(model_cls, endpoint)))


def strict_json_schema(model_cls: type[BaseModel]) -> dict[str, Any]:
    """The strict JSON schema the API receives for a model."""
    fmt = response_format_for(model_cls, "/v1/chat/completions")
    return cast("dict[str, Any]", fmt["json_schema"]["schema"])


def check_strict(model_cls: type[BaseModel], endpoint: Endpoint = "/v1/chat/completions") -> None:
    """Raise `JobSpecError` if strict structured outputs would reject the model's schema."""
    name = f"{model_cls.__module__}:{model_cls.__qualname__}"
    try:
        schema = strict_json_schema(model_cls)
    except (TypeError, ValueError, AssertionError) as exc:
        raise JobSpecError(f"{name}: cannot build a strict JSON schema: {exc}") from None
    problems = strict_problems(schema)
    if problems:
        listed = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise JobSpecError(f"{name}: strict structured outputs reject this schema: {listed}{more}")


def strict_problems(schema: dict[str, Any]) -> list[str]:
    """List what strict mode rejects in a JSON schema (empty when it is acceptable)."""
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append("the root must be an object (type: object), not a union or a scalar")
    counts = {"properties": 0, "enum": 0}
    defs = schema.get("$defs", {})
    visited_defs: set[str] = set()

    def walk(node: object, path: str, depth: int) -> None:
        if not isinstance(node, dict):
            return
        for key in _UNSUPPORTED:
            if key in node:
                problems.append(f"{path}: '{key}' is not supported")
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = ref.removeprefix("#/$defs/")
            if ref == "#" or target in visited_defs:
                return  # recursion: allowed, and counted once
            visited_defs.add(target)
            walk(defs.get(target), f"$defs.{target}", depth)
            return
        if "enum" in node:
            counts["enum"] += len(node["enum"])
        if not any(k in node for k in ("type", "anyOf", "enum", "const")):
            problems.append(f"{path}: a value without a type (Any) is not allowed")
        types = node.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if is_object:
            depth += 1
            if depth > MAX_NESTING:
                problems.append(f"{path}: nested more than {MAX_NESTING} object levels deep")
            if node.get("additionalProperties") is not False:
                problems.append(
                    f"{path}: free-form object (a dict, or additionalProperties not false); "
                    "strict mode needs a model with fixed fields"
                )
            props = node.get("properties", {})
            counts["properties"] += len(props)
            required = set(node.get("required", []))
            for key, sub in props.items():
                if key not in required:
                    problems.append(f"{path}.{key}: every property must be required")
                walk(sub, f"{path}.{key}", depth)
        walk(node.get("items"), f"{path}[]", depth)
        for i, variant in enumerate(node.get("anyOf", [])):
            walk(variant, f"{path}|{i}", depth)

    walk(schema, "$", 0)
    if counts["properties"] > MAX_PROPERTIES:
        problems.append(f"{counts['properties']} properties in all (limit {MAX_PROPERTIES})")
    if counts["enum"] > MAX_ENUM_VALUES:
        problems.append(f"{counts['enum']} enum values in all (limit {MAX_ENUM_VALUES})")
    return problems
