"""Strict structured-output formats from Pydantic models: the one wrapper of openai's private helpers.

openai-python builds the `response_format` (Chat Completions) and `text.format` (Responses)
parameters from a Pydantic model in private modules; everything here goes through
`response_format_for`, and a test pins its output for every shipped schema, so an upgrade of
the client that changes the generated schema shows up as a failing test, not as a silent
change of every request (and of every job fingerprint).

`check_strict` refuses, at job load, schemas that strict mode would reject at the API (see
`schema_problems`): keywords outside the guide's supported list (`minLength`, `maxLength`...),
a non-null `default`, free-form objects, more than 10 levels of nesting, more than 5,000
properties, more than 1,000 enum values, too many characters of names and values, a root that
is not an object, and `allOf`/`not`/`if`-`then`-`else`. The local Batch API applies the same
rules to every request line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import orjson
from pydantic import BaseModel

from schemas.job import Endpoint, JobSpecError

MAX_NESTING = 10
MAX_PROPERTIES = 5_000
MAX_ENUM_VALUES = 1_000
MAX_TOTAL_STRING_LENGTH = 120_000
"""Characters of all property names, definition names, enum values and const values."""
LARGE_ENUM = 250
MAX_LARGE_ENUM_STRING_LENGTH = 15_000
"""Characters of the values of one enum with more than `LARGE_ENUM` values."""
STRING_FORMATS = (
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
)
"""The string formats OpenAI's Structured Outputs guide lists as supported."""
_COMPOSITION = frozenset(
    {
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
    }
)
_KEYWORDS = frozenset(
    {
        # every schema
        "type", "description", "title", "enum", "const", "anyOf", "$ref", "default",
        # objects
        "properties", "required", "additionalProperties",
        # strings (the guide lists pattern and format only: not minLength / maxLength)
        "pattern", "format",
        # numbers
        "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        # arrays
        "items", "minItems", "maxItems",
    }
)  # fmt: skip
"""The keywords the "Supported schemas" section of OpenAI's Structured Outputs guide lists."""
_ROOT_KEYWORDS = _KEYWORDS | {"$defs", "definitions"}
_LENGTH_HINT = (
    "; drop Field(min_length=..., max_length=...) on text fields and say the length in the "
    "field's description instead"
)
_HINTS = {"minLength": _LENGTH_HINT, "maxLength": _LENGTH_HINT, "uniqueItems": "; say so in "
          "the field's description instead"}  # fmt: skip


@lru_cache(maxsize=64)
def _format_json(model_cls: type[BaseModel], endpoint: Endpoint) -> bytes:
    from openai.lib._parsing._completions import type_to_response_format_param
    from openai.lib._parsing._responses import type_to_text_format_param

    if endpoint == "/v1/responses":
        param: dict[str, Any] = dict(type_to_text_format_param(model_cls))
        named = param
    else:
        param = dict(cast("dict[str, Any]", type_to_response_format_param(model_cls)))
        named = param["json_schema"]
    # The name is the class's; OpenAI takes only [a-zA-Z0-9_-], at most 64 (`class Résumé`
    # would be refused on every line).
    named["name"] = _NOT_IN_NAME.sub("_", str(named["name"]))[:64]
    return orjson.dumps(param)


_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_-]")


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
    return [problem.describe() for problem in schema_problems(schema)]


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One thing strict mode rejects, where it is (the keys from the root) and what it is."""

    context: tuple[str, ...]
    """The keys leading to the offending node, e.g. `("properties", "title")`."""
    keyword: str | None
    """The keyword that is not permitted there, if the problem is one keyword."""
    message: str
    openai: str | None = None
    """OpenAI's own words for this problem, where users' reports quote them (see
    `openai_message`)."""

    @property
    def json_path(self) -> str:
        """`$.properties.title.minLength`: the node (and keyword) in the schema document."""
        parts = [*self.context, *([self.keyword] if self.keyword else [])]
        return "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)

    def describe(self) -> str:
        return f"{self.json_path}: {self.message}"

    def openai_message(self) -> str:
        """The problem in the words OpenAI's API uses (after "Invalid schema for ...: ").

        Quoted from users' reports of OpenAI's 400 answers: a root that is no object
        ("schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'."), and
        "In context=(...), 'required' is required to be supplied and to be an array including
        every key in properties. Missing 'x'." and "..., 'additionalProperties' is required to
        be supplied and to be false."; the rest in the same `In context=` form, unconfirmed.
        """
        if self.openai is not None:
            return self.openai
        if self.keyword is not None:
            return f"In context={self.context!r}, '{self.keyword}' is not permitted."
        return f"In context={self.context!r}, {self.message}"


_DEFS_KEYS = ("$defs", "definitions")


def schema_problems(schema: dict[str, Any]) -> list[SchemaProblem]:
    """Everything OpenAI's strict mode rejects in a JSON schema, each with its path.

    Checked against the "Supported schemas" section of OpenAI's Structured Outputs guide: the
    keywords it lists (anything else is refused, e.g. `minLength`, `maxLength`, `uniqueItems`,
    `examples`, `discriminator`), string formats, a non-null `default`, an object root, every
    property required, `additionalProperties: false`, a `$ref` with keywords beside it (which
    Pydantic writes for a described field of a model type; OpenAI answers "$ref cannot have
    keywords {'description'}"), and its limits (`MAX_PROPERTIES`, `MAX_NESTING`,
    `MAX_ENUM_VALUES`, `MAX_TOTAL_STRING_LENGTH`, `MAX_LARGE_ENUM_STRING_LENGTH`).
    """
    problems: list[SchemaProblem] = []
    if schema.get("type") != "object":
        got = schema.get("type")
        problems.append(
            SchemaProblem(
                (),
                None,
                "the root must be an object (type: object), not a union or a scalar",
                openai=f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
                if isinstance(got, str)
                else None,
            )
        )
    counts = {"properties": 0, "enum": 0, "chars": 0}
    defs: dict[str, Any] = {}
    for key in _DEFS_KEYS:
        found = schema.get(key)
        if isinstance(found, dict):
            defs.update({f"{key}/{name}": sub for name, sub in found.items()})
            counts["chars"] += sum(len(str(name)) for name in found)
    visited_defs: set[str] = set()

    def add(
        context: tuple[str, ...], keyword: str | None, message: str, openai: str | None = None
    ) -> None:
        problems.append(SchemaProblem(context, keyword, message, openai))

    def walk(node: object, path: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, dict):
            return
        for key in node:
            allowed = _ROOT_KEYWORDS if not path else _KEYWORDS
            if key in _COMPOSITION:
                add(path, key, f"'{key}' is not supported")
            elif key not in allowed:
                add(
                    path,
                    key,
                    f"'{key}' is not permitted: not among the keywords OpenAI's Structured "
                    f"Outputs guide lists as supported{_HINTS.get(key, '')}",
                )
        if "default" in node and node["default"] is not None:
            add(
                path,
                "default",
                "'default' is not permitted; give the field no default (or None), strict "
                "mode always produces every field",
            )
        fmt = node.get("format")
        if fmt is not None and fmt not in STRING_FORMATS:
            add(
                path,
                "format",
                f"format {fmt!r} is not supported; supported: {', '.join(STRING_FORMATS)}",
            )
        ref = node.get("$ref")
        if isinstance(ref, str):
            beside = sorted(k for k in node if k != "$ref" and (path or k not in _DEFS_KEYS))
            if beside:
                listed = "{" + ", ".join(repr(k) for k in beside) + "}"
                add(
                    path,
                    None,
                    f"'$ref' cannot have keywords beside it ({', '.join(beside)}): put them in "
                    "the definition it points to, or inline the definition here (openai-python "
                    "does so for the models it sends)",
                    openai=f"context={path!r}, $ref cannot have keywords {listed}.",
                )
            if ref == "#":
                return  # recursion to the root: allowed
            target = ref.removeprefix("#/")
            if target not in defs:
                add(path, "$ref", f"'$ref' {ref!r} does not point into $defs")
                return
            if target in visited_defs:
                return  # recursion: allowed, and counted once
            visited_defs.add(target)
            walk(defs[target], tuple(target.split("/")), depth)
            return
        enum = node.get("enum")
        if isinstance(enum, list):
            counts["enum"] += len(enum)
            chars = sum(len(v) for v in enum if isinstance(v, str))
            counts["chars"] += chars
            if len(enum) > LARGE_ENUM and chars > MAX_LARGE_ENUM_STRING_LENGTH:
                add(
                    path,
                    None,
                    f"an enum of {len(enum)} values (more than {LARGE_ENUM}) whose strings total "
                    f"{chars} characters (limit {MAX_LARGE_ENUM_STRING_LENGTH})",
                )
        const = node.get("const")
        if isinstance(const, str):
            counts["chars"] += len(const)
        if not any(k in node for k in ("type", "anyOf", "enum", "const")):
            add(path, None, "a value without a type (Any) is not allowed")
        types = node.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if is_object:
            depth += 1
            if depth > MAX_NESTING:
                add(path, None, f"nested more than {MAX_NESTING} object levels deep")
            if node.get("additionalProperties") is not False:
                add(
                    path,
                    None,
                    "free-form object (a dict, or additionalProperties not false); "
                    "strict mode needs a model with fixed fields",
                    openai=f"In context={path!r}, 'additionalProperties' is required to be "
                    "supplied and to be false.",
                )
            props = node.get("properties", {})
            if isinstance(props, dict):
                counts["properties"] += len(props)
                counts["chars"] += sum(len(str(key)) for key in props)
                required = set(node.get("required", []))
                for key, sub in props.items():
                    if key not in required:
                        add(
                            (*path, "properties", key),
                            None,
                            "every property must be required",
                            openai=f"In context={path!r}, 'required' is required to be supplied "
                            "and to be an array including every key in properties. Missing "
                            f"'{key}'.",
                        )
                    walk(sub, (*path, "properties", str(key)), depth)
        walk(node.get("items"), (*path, "items"), depth)
        for i, variant in enumerate(node.get("anyOf", []) or []):
            walk(variant, (*path, "anyOf", str(i)), depth)

    walk(schema, (), 0)
    for target, sub in defs.items():  # definitions no property points to are checked too
        if target not in visited_defs:
            visited_defs.add(target)
            walk(sub, tuple(target.split("/")), 0)
    if counts["properties"] > MAX_PROPERTIES:
        add((), None, f"{counts['properties']} properties in all (limit {MAX_PROPERTIES})")
    if counts["enum"] > MAX_ENUM_VALUES:
        add((), None, f"{counts['enum']} enum values in all (limit {MAX_ENUM_VALUES})")
    if counts["chars"] > MAX_TOTAL_STRING_LENGTH:
        add(
            (),
            None,
            f"property names, definition names, enum and const values total {counts['chars']} "
            f"characters (limit {MAX_TOTAL_STRING_LENGTH})",
        )
    return problems
