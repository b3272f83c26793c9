"""Check response bodies against OpenAI's official OpenAPI spec (loaded once per session)."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:openai:openapi"
_HERE = Path(__file__).resolve().parent
# The whole official spec when it is at hand (beside the checkout, or named by the variable);
# otherwise the schemas these tests need, extracted unchanged from it into the repository.
_CANDIDATES = (
    os.environ.get("OPENAI_OPENAPI_SPEC", ""),
    str(_HERE.parents[2] / "shared" / "reference" / "openai-openapi.yaml"),
    str(_HERE / "openai_spec_subset.json"),
)

# (method, path pattern, schema of a 2xx body; None = raw bytes, not JSON)
ROUTES: tuple[tuple[str, re.Pattern[str], str | None], ...] = (
    ("POST", re.compile(r"^/v1/files$"), "OpenAIFile"),
    ("GET", re.compile(r"^/v1/files$"), "ListFilesResponse"),
    ("GET", re.compile(r"^/v1/files/[^/]+$"), "OpenAIFile"),
    ("DELETE", re.compile(r"^/v1/files/[^/]+$"), "DeleteFileResponse"),
    ("GET", re.compile(r"^/v1/files/[^/]+/content$"), None),
    ("POST", re.compile(r"^/v1/batches$"), "Batch"),
    ("GET", re.compile(r"^/v1/batches$"), "ListBatchesResponse"),
    ("GET", re.compile(r"^/v1/batches/[^/]+$"), "Batch"),
    ("POST", re.compile(r"^/v1/batches/[^/]+/cancel$"), "Batch"),
)


def spec_path() -> Path | None:
    for candidate in _CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@cache
def load_spec() -> dict[str, Any] | None:
    """The spec as a plain dict (loaded once), or None when it is not at hand."""
    path = spec_path()
    if path is None:
        return None
    with path.open("rb") as fh:
        spec: dict[str, Any] = yaml.load(fh, Loader=yaml.CSafeLoader)
    return spec


@cache
def _registry() -> Registry[Any] | None:
    spec = load_spec()
    if spec is None:
        return None
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def _spec_schemas() -> dict[str, Any]:
    """The spec's `components.schemas`; raises when no spec is at hand."""
    spec = load_spec()
    if spec is None:
        raise RuntimeError("the OpenAI OpenAPI spec is not available (set OPENAI_OPENAPI_SPEC)")
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def _deref(schemas: dict[str, Any], schema: Any) -> Any:
    """A schema with its `$ref`s followed."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def request_fields(schema_name: str) -> frozenset[str]:
    """The fields a request schema takes: its `properties`, through `allOf` and `$ref`."""
    schemas = _spec_schemas()

    def fields(schema: dict[str, Any]) -> frozenset[str]:
        if "$ref" in schema:
            return fields(schemas[schema["$ref"].rsplit("/", 1)[1]])
        found = frozenset(schema.get("properties", {}))
        return found.union(*(fields(part) for part in schema.get("allOf", [])))

    return fields(schemas[schema_name])


@cache
def request_properties(schema_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(field, schema) of a request schema's properties through `allOf` and `$ref`, each
    `anyOf` option of a field (references followed) listed on its own."""
    schemas = _spec_schemas()

    def resolve(schema: Any) -> Any:
        return _deref(schemas, schema)

    def properties(schema: dict[str, Any]) -> dict[str, Any]:
        schema = resolve(schema)
        found = dict(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            found.update(properties(part))
        return found

    out = []
    for name, field_schema in sorted(properties(schemas[schema_name]).items()):
        for option in field_schema.get("anyOf") or [field_schema]:
            option = resolve(option)
            if isinstance(option, dict):
                out.append((name, option))
    return out


_ENUM_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


@cache
def request_types(schema_name: str) -> dict[str, tuple[str, ...] | None]:
    """The JSON types each field of a request schema allows, through `$ref`, `anyOf`, `oneOf`,
    `nullable` and enums; None for a field whose types the spec at hand cannot tell (a
    reference missing from the extracted subset, or a schema without types)."""
    schemas = _spec_schemas()

    def types(schema: Any) -> set[str] | None:
        if not isinstance(schema, dict):
            return None
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            return types(schemas[name]) if name in schemas else None
        found: set[str] = set()
        kind = schema.get("type")
        found.update([kind] if isinstance(kind, str) else kind or [])
        if schema.get("nullable"):
            found.add("null")
        for options in (schema.get("anyOf"), schema.get("oneOf")):
            for option in options or []:
                sub = types(option)
                if sub is None:
                    return None
                found |= sub
        if "allOf" in schema and not kind:
            for part in schema["allOf"]:
                if sub := types(part):
                    found |= sub
                    break
        if "enum" in schema and not kind:
            found |= {_ENUM_TYPES[type(value)] for value in schema["enum"]}
        return found or None

    def properties(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        found = dict(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            found.update(properties(part))
        return found

    return {
        name: tuple(sorted(found)) if (found := types(field)) else None
        for name, field in sorted(properties(schemas[schema_name]).items())
    }


def _members(schemas: dict[str, Any], schema: Any) -> list[dict[str, Any]]:
    """The object schemas a schema stands for: each alternative of its `anyOf` / `oneOf`
    (references followed), an `allOf` merged into one."""
    schema = _deref(schemas, schema)
    if not isinstance(schema, dict):
        return []
    options = (schema.get("anyOf") or []) + (schema.get("oneOf") or [])
    if options:
        own = [schema] if schema.get("properties") or schema.get("type") else []
        return [m for option in options for m in _members(schemas, option)] + own
    if "allOf" in schema:
        merged: dict[str, Any] = {"properties": {}}
        for part in schema["allOf"]:
            for member in _members(schemas, part):
                merged["properties"].update(member.get("properties") or {})
                merged.setdefault("type", member.get("type"))
        return [merged]
    return [schema]


def _schemas_at(schema_name: str, path: str) -> list[Any]:
    """The schemas of a field inside a request schema, `path` as `tools[].function.strict`
    (`[]`: each item of an array); every alternative of a union that has the field counts."""
    schemas = _spec_schemas()
    current: list[Any] = [schemas[schema_name]]
    for segment in path.split("."):
        name = segment.removesuffix("[]")
        found = [
            option
            for schema in current
            for member in _members(schemas, schema)
            if (option := (member.get("properties") or {}).get(name)) is not None
        ]
        if segment.endswith("[]"):
            found = [
                member["items"]
                for schema in found
                for member in _members(schemas, schema)
                if member.get("type") == "array" and "items" in member
            ]
        current = found
    return current


def path_types(schema_name: str, path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(JSON types, listed values in the spec's order) of a field inside a request schema,
    `path` as `tools[].function.strict` (`[]`: each item of an array); every alternative of a
    union that has the field counts."""
    schemas = _spec_schemas()
    types: set[str] = set()
    values: list[Any] = []
    for schema in _schemas_at(schema_name, path):
        for member in _members(schemas, schema):
            kind = member.get("type")
            types.update([kind] if isinstance(kind, str) else kind or [])
            if member.get("nullable"):
                types.add("null")
            values.extend(v for v in member.get("enum", []) if v not in values)
    return tuple(sorted(types)), tuple(values)


def path_fields(schema_name: str, path: str) -> dict[str | None, frozenset[str]]:
    """The fields each kind of object at `path` inside a request schema takes, by its `type`
    (the value its `type` property is limited to), every alternative of a union counted; under
    None, the fields of the objects that may leave their `type` out."""
    schemas = _spec_schemas()
    kinds: dict[str | None, frozenset[str]] = {}
    for schema in _schemas_at(schema_name, path):
        for member in _members(schemas, schema):
            properties = member.get("properties") or {}
            if not properties:
                continue
            names: list[str | None] = []
            for tag in _members(schemas, properties.get("type") or {}):
                names.extend(tag.get("enum") or ([tag["const"]] if "const" in tag else []))
            if not names or "type" not in (member.get("required") or ()):
                names.append(None)  # an object may leave its type out: it may be this one
            for kind in names:
                kinds[kind] = kinds.get(kind, frozenset()) | frozenset(properties)
    return kinds


def validator(schema_name: str) -> Draft202012Validator:
    registry = _registry()
    if registry is None:
        raise RuntimeError("the OpenAI OpenAPI spec is not available (set OPENAI_OPENAPI_SPEC)")
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry
    )


# OpenAI returns these as null when unset, although its spec types them as non-nullable (the
# API reference's own examples show the nulls). The server sends them the way the API does;
# the check ignores a null only for these keys.
NULL_WHEN_UNSET = frozenset(
    {
        "errors",
        "model",
        "output_file_id",
        "error_file_id",
        "in_progress_at",
        "finalizing_at",
        "completed_at",
        "failed_at",
        "expired_at",
        "cancelling_at",
        "cancelled_at",
        "expires_at",
        "status_details",
    }
)


def _without_documented_nulls(instance: Any) -> Any:
    if isinstance(instance, dict):
        if isinstance(instance.get("data"), list):
            return {**instance, "data": [_without_documented_nulls(i) for i in instance["data"]]}
        return {k: v for k, v in instance.items() if not (v is None and k in NULL_WHEN_UNSET)}
    return instance


def spec_errors(schema_name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the spec's schema `schema_name` (empty when valid)."""
    instance = _without_documented_nulls(instance)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator(schema_name).iter_errors(instance)
    ]


def schema_for(method: str, path: str, status: int) -> str | None:
    """The spec schema a response must match; '' for raw bytes; None for non-OpenAI routes."""
    if status >= 400:
        return "ErrorResponse"
    for route_method, pattern, schema in ROUTES:
        if route_method == method and pattern.match(path):
            return schema or ""
    return None


@dataclass
class SpecChecker:
    """Validates every response it is shown; remembers what it checked and what failed."""

    checked: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def available(self) -> bool:
        return _registry() is not None

    def check(self, method: str, path: str, status: int, body: bytes) -> None:
        schema = schema_for(method, path, status)
        if not schema or not self.available:
            return
        try:
            instance = orjson.loads(body)
        except orjson.JSONDecodeError:
            problems = [f"body is not JSON: {body[:200]!r}"]
        else:
            problems = spec_errors(schema, instance)
        with self._lock:
            self.checked[schema] = self.checked.get(schema, 0) + 1
            for problem in problems:
                self.failures.append(f"{method} {path} -> {status} ({schema}): {problem}")
        if problems:
            raise AssertionError(f"{method} {path}: response does not match {schema}: {problems}")
