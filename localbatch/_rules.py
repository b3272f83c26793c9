"""What OpenAI refuses per request line, refused here too, in OpenAI's words.

Every line of a batch is checked against the model-capabilities file (`data/models.toml`, or
`OVERNIGHT_MODELS_FILE`) before it runs, with the same rules the job preflight uses
(`tasks.capabilities.request_problems`): an unknown model is a 404 `model_not_found`, a
parameter the model refuses a 400 `unsupported_parameter` / `unsupported_value`, a strict
schema outside OpenAI's subset a 400 `invalid_json_schema`, a prompt plus output cap over the
model's window a 400 `context_length_exceeded`. Before any of that, the body's fields are
checked against the fields of the endpoint's request schema in OpenAI's OpenAPI spec
(`localbatch._fields`), `"stream": true` and `stream_options` are refused, and so is a chat
`messages` list OpenAI refuses (an unknown or missing role, a missing content, a tool message
that answers no tool call, a tool call left unanswered; `_message_problem`), a Responses input
message whose role is missing or unknown, and embeddings
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

import threading
from typing import TYPE_CHECKING, Any

import orjson

from localbatch._errors import error_body, missing_param
from localbatch._execution import Outcome, WorkItem
from localbatch._fields import BODY_BOUNDS, BODY_ENUMS, BODY_FIELDS, first_unknown
from localbatch._prompts import TokenCounter, chat_messages, responses_messages

if TYPE_CHECKING:
    from tasks.capabilities import CapabilitiesTable, ModelCapabilities, RequestProblem
    from tasks.imagetokens import ImageTokenRule

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


def _value_problem(url: str, body: dict[str, Any]) -> Outcome | None:
    """A body value outside its spec bounds, type or listed values, in OpenAI's validation
    words ("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16,
    but got 5 instead." is quoted from OpenAI; the others follow the same pattern)."""
    for name, (kind, low, high) in BODY_BOUNDS.get(url, {}).items():
        value = body.get(name)
        if value is None:
            continue
        integer = kind == "integer"
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            wanted = "an integer" if integer else "a number"
            got = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}.get(
                type(value), "a decimal" if isinstance(value, float) else "another type"
            )
            return _invalid(
                f"Invalid type for '{name}': expected {wanted}, but got {got} instead.",
                name,
                "invalid_type",
            )
        what = "integer" if integer else "decimal"
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
    for name, allowed in BODY_ENUMS.get(url, {}).items():
        value = body.get(name)
        if value is not None and value not in allowed:
            listed = ", ".join(f"'{v}'" for v in allowed[:-1]) + f" and '{allowed[-1]}'"
            return _invalid(
                f"Invalid value: {str(value)[:64]!r}. Supported values are: {listed}.",
                name,
                "invalid_value",
            )
    return None


def _invalid(message: str, param: str, code: str) -> Outcome:
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


EMBEDDING_ITEMS = 2048
"""The most inputs one embeddings request may hold (the spec's `maxItems`)."""


def embedding_inputs(value: object) -> list[str | list[int]] | None:
    """The inputs of an embeddings body's `input`, or None where the spec refuses its shape: a
    non-empty string, or an array of 1 to 2048 non-empty strings, of tokens (one input), or of
    non-empty token arrays."""

    def tokens(x: object) -> bool:
        return isinstance(x, list) and bool(x) and all(type(t) is int for t in x)

    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not 1 <= len(value) <= EMBEDDING_ITEMS:
        return None
    if all(isinstance(x, str) and x for x in value):
        return list(value)
    if tokens(value):
        return [value]
    if all(tokens(x) for x in value):
        return list(value)
    return None


EMBEDDING_REQUEST_TOKENS = 300_000
"""The most tokens an embeddings request's inputs may hold in all (OpenAI's OpenAPI spec)."""

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
"""The chat message roles OpenAI takes (its `ChatCompletionRequestMessage` variants)."""
_CONTENT_REQUIRED = frozenset({"system", "developer", "user", "tool", "function"})
"""The roles whose message requires `content` (an assistant's may have tool calls instead)."""


def _type_name(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a decimal"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), "another type")


def _role_problem(role: object, where: str, allowed: tuple[str, ...]) -> Outcome | None:
    """A message's role missing, or not one of `allowed`, in OpenAI's words."""
    if role is None:
        return Outcome(status_code=400, body=missing_param(f"{where}.role").body())
    if isinstance(role, str) and role in allowed:
        return None
    listed = ", ".join(f"'{r}'" for r in allowed[:-1]) + f", and '{allowed[-1]}'"
    return _invalid(
        f"Invalid value: {str(role)[:64]!r}. Supported values are: {listed}.",
        f"{where}.role",
        "invalid_value",
    )


def _message_problem(messages: object) -> Outcome | None:
    """The first problem OpenAI answers in a chat `messages` list, in its words: an item that
    is no object, a role missing or unknown, a content missing, a tool message that answers no
    tool call before it, or a tool call that no tool message answers.

    Confirmed from OpenAI's answers quoted in users' reports: "Invalid value: 'developer'.
    Supported values are: ..." with param `messages[0].role` and code `invalid_value`
    (run-llama/llama_index/issues/17748; the list here adds 'developer', which the API has
    taken since); "Missing required parameter: 'messages[2].content[0].type'." (the pattern,
    neuron-core/neuron-ai/issues/292); "Invalid parameter: messages with role 'tool' must be a
    response to a preceeding message with 'tool_calls'." and "An assistant message with
    'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The
    following tool_call_ids did not have response messages: ...", both with param
    `messages.[N].role` and code null (run-llama/llama_index/issues/10493,
    RamiAwar/dataline/issues/172). Not confirmed: the wording for an item that is no object.
    """
    if not isinstance(messages, list):
        return None  # a missing or mistyped `messages` is answered elsewhere
    unanswered: list[object] = []  # the ids of the last assistant tool calls not yet answered
    asked_at = 0
    for n, message in enumerate(messages):
        where = f"messages[{n}]"
        if not isinstance(message, dict):
            return _invalid(
                f"Invalid type for '{where}': expected an object, but got "
                f"{_type_name(message)} instead.",
                where,
                "invalid_type",
            )
        role = message.get("role")
        refused = _role_problem(role, where, _ROLES)
        if refused is not None:
            return refused
        if role in _CONTENT_REQUIRED and "content" not in message:
            return Outcome(status_code=400, body=missing_param(f"{where}.content").body())
        if role == "tool":
            if message.get("tool_call_id") not in unanswered:
                return Outcome(
                    status_code=400,
                    body=error_body(
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.",
                        param=f"messages.[{n}].role",
                    ),
                )
            unanswered.remove(message["tool_call_id"])
            continue
        if unanswered:
            break
        calls = message.get("tool_calls") if role == "assistant" else None
        if isinstance(calls, list):
            unanswered = [c.get("id") for c in calls if isinstance(c, dict)]
            asked_at = n
    if not unanswered:
        return None
    return Outcome(
        status_code=400,
        body=error_body(
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(map(str, unanswered))}",
            param=f"messages.[{asked_at}].role",
        ),
    )


_INPUT_ROLES = ("user", "assistant", "system", "developer")
"""The roles of a Responses input message (the spec's `EasyInputMessage.role`, in its order)."""


def _input_problem(given: object) -> Outcome | None:
    """A Responses `input` message with a role missing or outside the spec's, in the words of
    chat's answer (OpenAI's own for the Responses API was not found)."""
    if not isinstance(given, list):
        return None  # a string, or a mistyped input answered elsewhere
    for n, item in enumerate(given):
        if not isinstance(item, dict) or ("role" not in item and item.get("type") != "message"):
            continue  # not a message: a tool call output, a reference, ...
        refused = _role_problem(item.get("role"), f"input[{n}]", _INPUT_ROLES)
        if refused is not None:
            return refused
    return None


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

    def model_ids(self) -> list[str]:
        """The models of the capabilities file, for `GET /v1/models`."""
        return list(self.table.models)

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
        if refused is None and item.url == "/v1/chat/completions":
            refused = _message_problem(body.get("messages"))
        elif refused is None and item.url == "/v1/responses":
            refused = _input_problem(body.get("input"))
        if refused is not None:
            return refused
        model = body.get("model")
        if not isinstance(model, str):
            return None  # validation already failed such a batch
        caps = self.table.get(model)
        if caps is None:
            return _outcome(unknown_model(model))
        problems = request_problems(caps, item.url, body)
        if problems:
            return _outcome(problems[0])
        if item.url == "/v1/embeddings":
            return self._embedding_problem(caps, raw, body)
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
