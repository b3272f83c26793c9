"""What OpenAI refuses per request line, refused here too, in OpenAI's words.

Every line of a batch is checked against the model-capabilities file (`data/models.toml`, or
`OVERNIGHT_MODELS_FILE`) before it runs, with the same rules the job preflight uses
(`tasks.capabilities.request_problems`): an unknown model is a 404 `model_not_found`, a
parameter the model refuses a 400 `unsupported_parameter` / `unsupported_value`, a strict
schema outside OpenAI's subset a 400 `invalid_json_schema`, a prompt plus output cap over the
model's window a 400 `context_length_exceeded`. Before any of that, the body's fields are
checked against the fields of the endpoint's request schema in OpenAI's OpenAPI spec
(`localbatch._fields`), `"stream": true` and `stream_options` are refused, and so is a body
whose shape OpenAI refuses whatever the model (`localbatch._shapes`: messages and their roles,
contents and tool calls, Responses input roles, the structured-output format and its name,
function tools, `tool_choice` / `parallel_tool_calls` without tools, `stop`, chat `metadata`
without `store`), and embeddings
inputs that are empty, over the model's input limit or over 300,000 tokens in all. Each lands in the error file as an
HTTP-level line (`response.status_code`, `response.body.error`, `error: null`), as OpenAI
writes it.

What is confirmed of OpenAI's answers here (from public copies of them):
- an unknown chat body field: `Unrecognized request argument supplied: <name>`, param and code
  null (e.g. github.com/davidmigloz/langchain_dart/issues/712, coroot/coroot/issues/698);
- an unknown Responses body field: `Unknown parameter: '<name>'.`, param `<name>`, code
  `unknown_parameter` (github.com/1jehuang/jcode/issues/1028, quoting a nested one).
Not confirmed: the answer to an unknown embeddings field (given chat's, the older stack's),
which field is named when there are several (the first in the body here), and whether OpenAI
checks fields before or after the model. What OpenAI does with `"stream": true` in a batch
line was not found either: its docs only say batch bodies take no streaming, so it is refused
per line, in our words, since a batch cannot stream.

`ServerConfig.lenient` turns all of this off, for upstreams (self-hosted models) that accept
more than OpenAI does.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from localbatch._errors import error_body
from localbatch._execution import Outcome, WorkItem
from localbatch._fields import (
    BODY_BOUNDS,
    BODY_ENUMS,
    BODY_FIELDS,
    BODY_TYPES,
    LEGACY_MESSAGE_FIELDS,
    NESTED_FIELDS,
    NESTED_VALUES,
    OUTPUT_CAP_BOUNDS,
    first_unknown,
)
from localbatch._prompts import TokenCounter, chat_messages, responses_messages
from localbatch._shapes import (
    completion_cap,
    completion_prompts,
    embedding_inputs,
    invalid_type,
    invalid_value,
    moderation_inputs,
    shape_problem,
)

if TYPE_CHECKING:
    from tasks.capabilities import CapabilitiesTable, ModelCapabilities, RequestProblem
    from tasks.imagetokens import ImageTokenRule

log = logging.getLogger("localbatch")

_CAP_FIELDS = {
    "/v1/chat/completions": ("max_completion_tokens", "max_tokens"),
    "/v1/responses": ("max_output_tokens",),
}


def _outcome(problem: RequestProblem) -> Outcome:
    return Outcome(status_code=problem.status_code, body=problem.error_body())


def _unknown_field(url: str, name: str) -> Outcome:
    if url == "/v1/responses":
        error = error_body(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    else:
        error = error_body(f"Unrecognized request argument supplied: {name}")
    return Outcome(status_code=400, body=error)


_JSON_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "integer": ("an integer", (int,)),
    "number": ("a number", (int, float)),
    "boolean": ("a boolean", (bool,)),
    "string": ("a string", (str,)),
    "array": ("an array", (list,)),
    "object": ("an object", (dict,)),
}
"""Each JSON type: how OpenAI's answers name it, and the Python classes of its values."""
_ACCEPTS: dict[tuple[str, ...], tuple[tuple[type, ...], bool, str]] = {}


def _accepts(allowed: tuple[str, ...]) -> tuple[tuple[type, ...], bool, str]:
    """The Python classes of a field's JSON types, whether a bool counts (a bool is an int to
    Python, never an integer or a number to JSON), and the types as an answer names them."""
    found = _ACCEPTS.get(allowed)
    if found is None:
        known = [_JSON_TYPES[kind] for kind in allowed if kind in _JSON_TYPES]
        words = [word for word, _ in known]
        expected = words[0] if len(words) == 1 else "one of " + " or ".join(words)
        classes = tuple(c for _, kinds in known for c in kinds)
        found = _ACCEPTS[allowed] = (classes, "boolean" in allowed, expected)
    return found


def _type_problem(name: str, value: object, allowed: tuple[str, ...]) -> Outcome | None:
    if value is None:
        return None
    classes, bools, expected = _accepts(allowed)
    if isinstance(value, classes) and (bools or not isinstance(value, bool)):
        return None
    return invalid_type(name, expected, value)


def _bounds_problem(
    name: str, value: object, kind: str, low: float | None, high: float | None
) -> Outcome | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    what = "integer" if kind == "integer" else "decimal"
    if low is not None and value < low:
        return _invalid(
            f"Invalid '{name}': {what} below minimum value. Expected a value >= {low:g}, "
            f"but got {value!r} instead.",
            name,
            f"{what}_below_min_value",
        )
    if high is not None and value > high:
        return _invalid(
            f"Invalid '{name}': {what} above maximum value. Expected a value <= {high:g}, "
            f"but got {value!r} instead.",
            name,
            f"{what}_above_max_value",
        )
    return None


def _value_problem(url: str, body: dict[str, Any]) -> Outcome | None:
    """The first body field, in the order written, whose value is of another type than its
    spec's or outside its bounds, else one outside its listed values, in OpenAI's validation
    words ("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16,
    but got 5 instead." is quoted from OpenAI; the others follow the same pattern)."""
    types = BODY_TYPES.get(url, {})
    bounds = _BOUNDS.get(url, {})
    for name, value in body.items():
        allowed = types.get(name)
        problem = _type_problem(name, value, allowed) if allowed else None
        if problem is None and name in bounds:
            problem = _bounds_problem(name, value, *bounds[name])
        if problem is not None:
            return problem
    for name, allowed in BODY_ENUMS.get(url, {}).items():
        value = body.get(name)
        if value is not None and value not in allowed:
            return invalid_value(value, name, tuple(allowed))
    return None


_BOUNDS = {
    url: {**BODY_BOUNDS.get(url, {}), **OUTPUT_CAP_BOUNDS.get(url, {})}
    for url in BODY_BOUNDS.keys() | OUTPUT_CAP_BOUNDS.keys()
}
"""The spec's bounds, and the minimums the API enforces beyond them."""


_Steps = tuple[tuple[str, bool], ...]
_T = TypeVar("_T")


def _steps(path: str) -> _Steps:
    """A path inside a body as (name, each item of an array) steps: `tools[].type` is
    (("tools", True), ("type", False))."""
    return tuple((step.removesuffix("[]"), step.endswith("[]")) for step in path.split("."))


def _by_field(entries: list[tuple[str, _T]]) -> dict[str, list[tuple[_Steps, _T]]]:
    """(path, rule) entries as each path's steps and rule, by the body field the path starts at:
    a body is then walked once, in the order its fields are written."""
    grouped: dict[str, list[tuple[_Steps, _T]]] = {}
    for path, rule in entries:
        steps = _steps(path)
        grouped.setdefault(steps[0][0], []).append((steps, rule))
    return grouped


_NESTED = {
    url: _by_field([(path, (allowed, values)) for path, allowed, values in entries])
    for url, entries in NESTED_VALUES.items()
}
"""NESTED_VALUES by the body field each path starts at."""
_NESTED_FIELDS = {url: _by_field(list(entries)) for url, entries in NESTED_FIELDS.items()}
"""NESTED_FIELDS by the body field each path starts at."""


def _found_at(body: dict[str, Any], steps: _Steps) -> list[tuple[str, object]]:
    """(param, value) of every value at a path in a body (`tools[].type`: each tool's type),
    the param written as OpenAI writes it (`tools[1].type`)."""
    found: list[tuple[str, object]] = [("", body)]
    for name, each in steps:
        deeper: list[tuple[str, object]] = []
        for where, value in found:
            if not isinstance(value, dict) or name not in value:
                continue
            here, inner = f"{where}.{name}" if where else name, value[name]
            if not each:
                deeper.append((here, inner))
            elif isinstance(inner, list):
                deeper.extend((f"{here}[{n}]", item) for n, item in enumerate(inner))
        found = deeper
    return found


def _unknown_nested(url: str, body: dict[str, Any]) -> Outcome | None:
    """The first field, inside an object of the body, that objects of its kind do not take
    (NESTED_FIELDS), refused as OpenAI refuses it: "Unknown parameter: 'input[1].metadata'."."""
    rules = _NESTED_FIELDS.get(url, {})
    for field in body:  # in the order written: the same first problem in every process
        for steps, kinds in rules.get(field, ()):
            for param, value in _found_at(body, steps):
                if not isinstance(value, dict):
                    continue
                kind = value.get("type")
                accepted = kinds.get(kind if isinstance(kind, str) else None)
                if accepted is None:
                    continue  # a kind the spec does not list: the value checks answer it
                unknown = first_unknown(value, accepted)
                if unknown is not None:
                    name = f"{param}.{unknown}"
                    return _invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    return None


def _legacy_message_problem(body: dict[str, Any]) -> Outcome | None:
    """A chat message field outside the 2023 message schema, refused as the API refuses it for
    the models still validated against that schema (LEGACY_MESSAGE_FIELDS)."""
    messages = body.get("messages")
    for n, message in enumerate(messages if isinstance(messages, list) else ()):
        role = message.get("role") if isinstance(message, dict) else None
        accepted = LEGACY_MESSAGE_FIELDS.get(role) if isinstance(role, str) else None
        if accepted is None:
            continue  # not an object, or a role the shape checks refuse
        unexpected = [key for key in message if key not in accepted]
        if unexpected:
            names = ", ".join(f"'{key}'" for key in unexpected)
            verb = "was" if len(unexpected) == 1 else "were"
            return Outcome(
                status_code=400,
                body=error_body(
                    f"Additional properties are not allowed ({names} {verb} unexpected) - "
                    f"'messages.{n}'"
                ),
            )
    return None


LOGIT_BIAS_MAX_ENTRIES = 300
"""Entries of `logit_bias`, at most (the API's limit as reported in dottxt-ai/outlines#99,
2023; its words for going over it were not found)."""


def _logit_bias_problem(bias: object, counter: TokenCounter) -> Outcome | None:
    """A `logit_bias` key that is not a token of the model's vocabulary, a bias that is not an
    integer from -100 to 100, or too many entries. The key answers are OpenAI's ("Invalid key
    in 'logit_bias': AI. You should only be submitting non-negative integers.", quoted in
    OkGoDoIt/OpenAI-API-dotnet#163; "... 100265. Maximum value is 100257.", the end-of-text
    token of cl100k_base, in openai/openai-python#572)."""
    if not isinstance(bias, dict):
        return None  # null, or a mistyped field answered by the type checks
    highest = counter.encoding.eot_token
    for key, value in bias.items():
        if not (key.isascii() and key.isdigit()):
            return _invalid(
                f"Invalid key in 'logit_bias': {key}. You should only be submitting "
                "non-negative integers.",
                "logit_bias",
                None,
            )
        if int(key) > highest:
            return _invalid(
                f"Invalid key in 'logit_bias': {key}. Maximum value is {highest}.",
                "logit_bias",
                None,
            )
        name = f"logit_bias.{key}"
        refused = _type_problem(name, value, ("integer",))
        refused = refused or _bounds_problem(name, value, "integer", -100, 100)
        if refused is not None:
            return refused
    if len(bias) > LOGIT_BIAS_MAX_ENTRIES:
        return _invalid(
            f"Invalid 'logit_bias': too many entries. Expected at most "
            f"{LOGIT_BIAS_MAX_ENTRIES}, but got {len(bias)} instead.",
            "logit_bias",
            None,
        )
    return None


def _nested_problem(url: str, body: dict[str, Any]) -> Outcome | None:
    """The first value inside the body (by its fields' order, then NESTED_VALUES') of another
    type than its spec's or outside its listed values."""
    rules = _NESTED.get(url, {})
    for field in body:  # in the order written: the same first problem in every process
        for steps, (allowed, values) in rules.get(field, ()):
            for param, value in _found_at(body, steps):
                problem = _type_problem(param, value, allowed)
                if problem is None and values and isinstance(value, str) and value not in values:
                    problem = invalid_value(value, param, values)
                if problem is not None:
                    return problem
    return None


def _moderation_image_problem(caps: ModelCapabilities, body: dict[str, Any]) -> Outcome | None:
    """An image to a text-only moderation model, refused in the words OpenAI's other models
    use for an image they cannot read (its answer for this case was not found)."""
    shapes = moderation_inputs(body.get("input"))
    if caps.vision or shapes is None:
        return None
    for n, item in enumerate(shapes[1]):
        if item.get("type") == "image_url":
            return Outcome(
                status_code=400,
                body=error_body(
                    "Invalid content type. image_url is only supported by certain models.",
                    param=f"input.[{n}].type",
                ),
            )
    return None


def _invalid(message: str, param: str, code: str | None) -> Outcome:
    return Outcome(status_code=400, body=error_body(message, param=param, code=code))


def _stream_refused() -> Outcome:
    return _invalid(
        "Invalid value for 'stream': true. A batch request cannot be streamed; remove 'stream' "
        "or set it to false.",
        "stream",
        "invalid_value",
    )


def _stream_options_refused() -> Outcome:
    # OpenAI's answer, as users' reports quote it (github.com/BerriAI/litellm/issues/5803).
    return Outcome(
        status_code=400,
        body=error_body(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        ),
    )


EMBEDDING_REQUEST_TOKENS = 300_000
"""The most tokens an embeddings request's inputs may hold in all (OpenAI's OpenAPI spec)."""


def _schema(url: str, body: dict[str, Any]) -> Any:
    if url == "/v1/chat/completions":
        fmt = body.get("response_format")
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    else:
        text = body.get("text")
        spec = text.get("format") if isinstance(text, dict) else None
    return spec.get("schema") if isinstance(spec, dict) else None


class LineRules:
    """Checks request lines against the spec and the capabilities file; safe to share between threads."""

    def __init__(self, table: CapabilitiesTable | None = None) -> None:
        from tasks.capabilities import load_capabilities

        self.table = table or load_capabilities()
        self._counters: dict[str, TokenCounter] = {}
        self._lock = threading.Lock()
        self._told: set[str] = set()

    def model_ids(self) -> list[str]:
        """The models of the capabilities file, for `GET /v1/models`."""
        return list(self.table.models)

    def _tell_undescribed(self, model: str) -> None:
        """Say once on the server's log why a model OpenAI has is model_not_found here."""
        from tasks.pricing import model_family

        family = model_family(model)
        if family not in self.table.undescribed:
            return
        with self._lock:
            if family in self._told:
                return
            self._told.add(family)
        log.warning(
            "lines naming %s end model_not_found: OpenAI lists it, but the capabilities file "
            "%s does not describe it yet; add its entry there (or in a copy named by "
            "OVERNIGHT_MODELS_FILE) and restart",
            family,
            self.table.path,
        )

    def check(self, item: WorkItem, raw: bytes) -> Outcome | None:
        """The error OpenAI would answer this line with, or None if it may run."""
        from tasks.capabilities import context_problem, request_problems, unknown_model

        body = item.body
        if not isinstance(body, dict):
            return None  # validation already failed such a batch
        accepted = BODY_FIELDS.get(item.url)
        if accepted is not None and (unknown := first_unknown(body, accepted)) is not None:
            return _unknown_field(item.url, unknown)
        if body.get("stream") is True:
            return _stream_refused()
        if body.get("stream_options") is not None and body.get("stream") is not True:
            return _stream_options_refused()
        refused = _value_problem(item.url, body)
        if refused is None:
            refused = shape_problem(item.url, body)
        if refused is None:
            refused = _unknown_nested(item.url, body)
        if refused is None:
            refused = _nested_problem(item.url, body)
        if refused is not None:
            return refused
        model = body.get("model")
        if not isinstance(model, str):
            return None  # validation already failed such a batch
        caps = self.table.get(model)
        if caps is None:
            self._tell_undescribed(model)
            return _outcome(unknown_model(model))
        problems = request_problems(caps, item.url, body)
        if problems:
            return _outcome(problems[0])
        legacy = caps.legacy_messages and item.url == "/v1/chat/completions"
        if legacy and (refused := _legacy_message_problem(body)) is not None:
            return refused
        if body.get("web_search_options") is not None and not caps.chat_web_search:
            # Only the search models take it (gpt-4o-search-preview ...); o4-mini was answered
            # in these words (BerriAI/litellm#12311).
            return _invalid(
                "Unknown parameter: 'web_search_options'.",
                "web_search_options",
                "unknown_parameter",
            )
        if body.get("logit_bias") is not None:
            counter = self._counter(caps.model, caps.image_rule())
            if (refused := _logit_bias_problem(body["logit_bias"], counter)) is not None:
                return refused
        if item.url == "/v1/embeddings":
            return self._embedding_problem(caps, raw, body)
        if item.url == "/v1/moderations":
            return _moderation_image_problem(caps, body)
        if item.url == "/v1/completions":
            return self._completion_problem(caps, raw, body)
        fields = _CAP_FIELDS.get(item.url)
        if fields is None:
            return None
        cap = next(
            (v for f in fields if isinstance(v := body.get(f), int) and not isinstance(v, bool)),
            0,
        )
        # Every text token is at least one byte of the line, and no image costs more than its
        # rule's maximum (each image part names "image" at least once): count only lines that
        # might not fit. A PDF file part has no such bound, so it is always counted.
        bound = len(raw) + caps.image_rule().max_tokens() * raw.count(b"image")
        if bound + cap <= caps.context_window and b'"file_data"' not in raw:
            return None
        tokens = self._input_tokens(model, item.url, body, caps.image_rule())
        problem = context_problem(caps, item.url, input_tokens=tokens, output_cap=cap)
        return _outcome(problem) if problem is not None else None

    def _completion_problem(
        self, caps: ModelCapabilities, raw: bytes, body: dict[str, Any]
    ) -> Outcome | None:
        """A prompt that does not fit the model's window with its `max_tokens` (16 when not
        given), in the words of OpenAI's completions answer."""
        cap = completion_cap(body)
        prompts = completion_prompts(body.get("prompt")) or []
        counter = self._counter(caps.model, caps.image_rule())
        highest = counter.encoding.max_token_value
        for prompt in prompts:
            if isinstance(prompt, str):
                continue
            bad = next((t for t in prompt if not 0 <= t <= highest), None)
            if bad is not None:
                # OpenAI's words for a token outside the vocabulary (as users quote them).
                return Outcome(
                    status_code=400,
                    body=error_body(
                        f"Invalid token in prompt: {bad}. Minimum value is 0, maximum value is "
                        f"{highest} (inclusive).",
                        param=None,
                    ),
                )
        window = caps.context_window
        if len(raw) + cap <= window:
            return None  # every token is at least one byte of the line
        for prompt in prompts:
            tokens = counter.count(prompt) if isinstance(prompt, str) else len(prompt)
            if tokens + cap > window:
                message = (
                    f"This model's maximum context length is {window} tokens, however you "
                    f"requested {tokens + cap} tokens ({tokens} in your prompt; {cap} for the "
                    "completion). Please reduce your prompt; or completion length."
                )
                return Outcome(
                    status_code=400,
                    body=error_body(message, param=None, code="context_length_exceeded"),
                )
        return None

    def _counter(self, model: str, rule: ImageTokenRule) -> TokenCounter:
        counter = self._counters.get(model)
        if counter is None:
            with self._lock:
                counter = self._counters.setdefault(model, TokenCounter(model, rule))
        return counter

    def _embedding_problem(
        self, caps: ModelCapabilities, raw: bytes, body: dict[str, Any]
    ) -> Outcome | None:
        """An embeddings `input` OpenAI refuses: an empty one, one over the model's input
        limit, or inputs over 300,000 tokens in all (its OpenAPI spec's limits).

        OpenAI's answers, as users' reports quote them: "'$.input' is invalid. Please check
        the API reference: ..." for an empty string (openai/openai-python/issues/576,
        aryn-ai/sycamore/pull/943), "Invalid 'input': maximum context length is 8192 tokens."
        (neo4j-labs/agent-memory/issues/104), and "Requested N tokens, max 300000 tokens per
        request" with type and code `max_tokens_per_request` (assafelovic/gpt-researcher/
        issues/1524). The first answer is given here to any input outside the spec's shape
        (`embedding_inputs`); only the empty string's is confirmed.
        """
        if "input" not in body:
            return None  # answered as a missing parameter
        items = embedding_inputs(body["input"])
        if items is None:
            return Outcome(
                status_code=400,
                body=error_body(
                    "'$.input' is invalid. Please check the API reference: "
                    "https://platform.openai.com/docs/api-reference."
                ),
            )
        if len(raw) <= caps.context_window:
            return None  # every token is at least one byte of the line: nothing is over
        counter = self._counter(caps.model, caps.image_rule())
        total = 0
        for item in items:
            count = counter.count(item) if isinstance(item, str) else len(item)
            if count > caps.context_window:
                return Outcome(
                    status_code=400,
                    body=error_body(
                        f"Invalid 'input': maximum context length is {caps.context_window} tokens."
                    ),
                )
            total += count
        if total > EMBEDDING_REQUEST_TOKENS:
            return Outcome(
                status_code=400,
                body=error_body(
                    f"Requested {total} tokens, max {EMBEDDING_REQUEST_TOKENS} tokens per request",
                    type="max_tokens_per_request",
                    code="max_tokens_per_request",
                ),
            )
        return None

    def _input_tokens(
        self, model: str, url: str, body: dict[str, Any], rule: ImageTokenRule
    ) -> int:
        counter = self._counter(model, rule)
        messages = (
            chat_messages(body) if url == "/v1/chat/completions" else responses_messages(body)
        )
        tokens = counter.prompt_count(messages) if messages else 0
        schema = _schema(url, body)
        if isinstance(schema, dict):
            tokens += counter.count(orjson.dumps(schema).decode())
        return tokens
