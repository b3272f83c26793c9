"""The shape of a request body as OpenAI checks it, whatever the model: refused in its words.

Each check answers the first problem of a chat or Responses body that OpenAI refuses with a
400 before any model runs: messages (roles, contents, content parts, tool calls and their
answers), Responses input roles, the structured-output format (its type, its `json_schema`
and the schema's name), tools (their function and its name), `tool_choice` and
`parallel_tool_calls` without tools, more than 4 `stop` sequences, chat `metadata` without
`store`, `metadata` over OpenAI's limits (16 pairs, keys of 64 characters, values of 512), chat
`top_logprobs` without `logprobs: true`, and Responses content parts of chat's types.

OpenAI's wordings, as users' reports quote its answers:
- "Invalid value: 'developer'. Supported values are: ..." with param `messages[0].role` and
  code `invalid_value` (run-llama/llama_index/issues/17748; the list here adds 'developer',
  which the API has taken since);
- "Missing required parameter: 'messages[2].content[0].type'." (neuron-core/neuron-ai/
  issues/292) and "Missing required parameter: 'text.format.name'." (openai/openai-node/
  pull/1404), code `missing_required_parameter`;
- "Invalid parameter: messages with role 'tool' must be a response to a preceeding message
  with 'tool_calls'." and "An assistant message with 'tool_calls' must be followed by tool
  messages responding to each 'tool_call_id'. The following tool_call_ids did not have
  response messages: ...", param `messages.[N].role`, code null (run-llama/llama_index/
  issues/10493, RamiAwar/dataline/issues/172);
- "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools'
  are specified." (Upsonic/Upsonic/issues/323), and the same for `tool_choice`
  (writer/writer-framework/pull/1013); which tool_choice and tools OpenAI takes together, on
  chat and on Responses, as vllm-project/vllm pulls 40311 and 40399 recorded them from the API;
- "The 'metadata' parameter is only allowed when 'store' is enabled." (tmc/langchaingo/
  issues/1484, spiceai/spiceai/pull/5231).
Ours, in the same patterns, where no quote was found: an item that is no object, the content
part types of a role, a part's missing or mistyped text or image (the API's validation
wording: "Invalid type for '...': expected ..., but got ... instead."), a format type outside
the spec's, a schema or function name outside the spec's pattern or over 64 characters
("string does not match pattern" / "string too long", the validation wording of the API's
other answers), `stop` over its spec's 4 items, metadata over its limits, and `top_logprobs`
without `logprobs` (its spec: "`logprobs` must be set to `true` if this parameter is used").
`embedding_inputs` reads an embeddings `input` in the shapes the spec takes, for the per-line
limits (`localbatch._rules`) and the batch-wide count of inputs (`localbatch._validate`).
"""

from __future__ import annotations

import re
from typing import Any

from localbatch._errors import error_body, missing_param
from localbatch._execution import Outcome
from localbatch._fields import COMPLETION_DEFAULT_MAX_TOKENS

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
"""The chat message roles OpenAI takes (its `ChatCompletionRequestMessage` variants)."""
_CONTENT_REQUIRED = frozenset({"system", "developer", "user", "tool", "function"})
"""The roles whose message requires `content` (an assistant's may have tool calls instead)."""
_PART_TYPES = {
    "user": ("text", "image_url", "input_audio", "file"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
    "assistant": ("text", "refusal"),
}
"""The content part types each role's message takes (the spec's `...MessageContentPart`s)."""
INPUT_ROLES = ("user", "assistant", "system", "developer")
"""The roles of a Responses input message (the spec's `EasyInputMessage.role`, in its order)."""
INPUT_PART_TYPES = (
    "input_text",
    "input_image",
    "input_audio",
    "output_text",
    "refusal",
    "input_file",
    "computer_screenshot",
    "summary_text",
    "encrypted_content",
)
"""The content part types of a Responses input message, as OpenAI lists them when it refuses
a chat-style `text` or `image_url` part (MervinPraison/PraisonAI/issues/3934)."""
_CHAT_FORMATS = ("text", "json_object", "json_schema")
_RESPONSES_FORMATS = ("text", "json_schema", "json_object")
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
"""The spec's pattern for a schema's and a function's name, at most 64 characters."""
_NAME_MAX = 64
_STOP_MAX = 4
_TOOLS_MAX = 128
"""Tools of one request, at most: "Invalid 'tools': array too long. Expected an array with
maximum length 128, but got an array with length 325 instead." (code `array_above_max_length`,
quoted in vishalmysore/Tools4AI#16 and many clients' trackers, 2024-2025)."""


def shape_problem(url: str, body: dict[str, Any]) -> Outcome | None:
    """The first problem of the body's shape that OpenAI refuses, or None."""
    if url == "/v1/chat/completions":
        return (
            _message_problem(body.get("messages"))
            or _format_problem(
                body.get("response_format"), "response_format", _CHAT_FORMATS, "json_schema"
            )
            or _tools_problem(body, chat=True)
            or _too_long(body.get("stop"), "stop", _STOP_MAX)
            or _metadata_problem(body)
            or _logprobs_problem(body)
        )
    if url == "/v1/responses":
        return (
            _input_problem(body.get("input"))
            or _format_problem(
                _text_format(body.get("text")), "text.format", _RESPONSES_FORMATS, ""
            )
            or _tools_problem(body, chat=False)
            or _metadata_limits(body.get("metadata"))
        )
    if url == "/v1/moderations":
        return _moderation_problem(body)
    if url == "/v1/completions":
        return _prompt_problem(body.get("prompt"))
    return None


def _refused(message: str, param: str | None, code: str | None) -> Outcome:
    return Outcome(status_code=400, body=error_body(message, param=param, code=code))


def _missing(param: str) -> Outcome:
    return Outcome(status_code=400, body=missing_param(param).body())


def listed(values: tuple[str, ...]) -> str:
    """Values quoted and listed as OpenAI's answers list them ('a', 'b', and 'c')."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def invalid_value(value: object, param: str, allowed: tuple[str, ...]) -> Outcome:
    """OpenAI's answer to a value outside a field's listed values."""
    return _refused(
        f"Invalid value: {str(value)[:64]!r}. Supported values are: {listed(allowed)}.",
        param,
        "invalid_value",
    )


def invalid_type(param: str, expected: str, value: object, *, got: str | None = None) -> Outcome:
    """OpenAI's answer to a value of another type than its field's (`expected`: "a string";
    `got` says what the value is where its type alone does not)."""
    return _refused(
        f"Invalid type for '{param}': expected {expected}, but got {got or type_name(value)} "
        "instead.",
        param,
        "invalid_type",
    )


def _value_problem(value: object, param: str, allowed: tuple[str, ...]) -> Outcome | None:
    """`value` missing, or not one of `allowed`."""
    if value is None:
        return _missing(param)
    if isinstance(value, str) and value in allowed:
        return None
    return invalid_value(value, param, allowed)


def type_name(value: object) -> str:
    """A JSON value's type as OpenAI's validation answers name it ("an integer", ...)."""
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a decimal"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), "another type")


_TEXT_OR_PARTS = "one of a string or array of objects"
"""What a message's content is, as OpenAI's answers word it."""


def _not_object(value: object, param: str) -> Outcome:
    return invalid_type(param, "an object", value)


def _object_at(value: object, param: str) -> dict[str, Any] | Outcome:
    """A field that must be an object: the object, or OpenAI's answer to it missing or of
    another type."""
    if value is None:
        return _missing(param)
    return value if isinstance(value, dict) else _not_object(value, param)


def _name_problem(name: object, param: str) -> Outcome | None:
    """A schema's or function's name: present, of the spec's characters, at most 64 long."""
    refused = _string_problem(name, param)
    if refused is not None or not isinstance(name, str):
        return refused
    if len(name) > _NAME_MAX:
        return _refused(
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{_NAME_MAX}, but got a string with length {len(name)} instead.",
            param,
            "string_above_max_length",
        )
    if not _NAME.match(name):
        return _refused(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches "
            f"the pattern '{_NAME.pattern}'.",
            param,
            "invalid_value",
        )
    return None


def _message_problem(messages: object) -> Outcome | None:
    """The first problem of a chat `messages` list: an item that is no object, a role missing
    or unknown, a content missing, empty or of parts its role does not take, a tool message
    that answers no tool call before it, or a tool call that no tool message answers."""
    if not isinstance(messages, list):
        return None  # a missing or mistyped `messages` is answered elsewhere
    unanswered: list[object] = []  # the ids of the last assistant tool calls not yet answered
    asked_at = 0
    for n, message in enumerate(messages):
        where = f"messages[{n}]"
        if not isinstance(message, dict):
            return _not_object(message, where)
        role = message.get("role")
        refused = _value_problem(role, f"{where}.role", ROLES)
        if refused is not None:
            return refused
        if role in _CONTENT_REQUIRED and "content" not in message:
            return _missing(f"{where}.content")
        refused = _content_problem(message.get("content"), f"{where}.content", str(role))
        if refused is not None:
            return refused
        if role == "tool":
            if message.get("tool_call_id") not in unanswered:
                return _refused(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{n}].role",
                    None,
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
    return _refused(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        f"{', '.join(map(str, unanswered))}",
        f"messages.[{asked_at}].role",
        None,
    )


def _content_problem(content: object, where: str, role: str) -> Outcome | None:
    """A message's content: a string, or at least one part, each an object of a type its role
    takes, with that type's own field."""
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list):
        return invalid_type(where, _TEXT_OR_PARTS, content)
    if not content:
        return _refused(
            f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            where,
            "empty_array",
        )
    allowed = _PART_TYPES.get(role)
    for n, part in enumerate(content):
        at = f"{where}[{n}]"
        if not isinstance(part, dict):
            return _not_object(part, at)
        if allowed is None:
            continue
        refused = _value_problem(part.get("type"), f"{at}.type", allowed) or _part_problem(part, at)
        if refused is not None:
            return refused
    return None


def _part_problem(part: dict[str, Any], at: str) -> Outcome | None:
    """The field a text, refusal or image part carries: present and of its type."""
    kind = part["type"]
    if kind in ("text", "refusal"):
        return _string_problem(part.get(kind), f"{at}.{kind}")
    if kind != "image_url":
        return None
    image = _object_at(part.get("image_url"), f"{at}.image_url")
    if isinstance(image, Outcome):
        return image
    refused = _string_problem(image.get("url"), f"{at}.image_url.url")
    if refused is None and image.get("detail") is not None:
        refused = _value_problem(image["detail"], f"{at}.image_url.detail", _DETAILS)
    return refused


_DETAILS = ("auto", "low", "high")


def _string_problem(value: object, param: str) -> Outcome | None:
    if value is None:
        return _missing(param)
    if isinstance(value, str):
        return None
    return invalid_type(param, "a string", value)


def _input_problem(given: object) -> Outcome | None:
    """A Responses `input` message with a role missing or outside the spec's."""
    if not isinstance(given, list):
        return None  # a string, or a mistyped input answered elsewhere
    for n, item in enumerate(given):
        if not isinstance(item, dict) or ("role" not in item and item.get("type") != "message"):
            continue  # not a message: a tool call output, a reference, ...
        refused = _value_problem(item.get("role"), f"input[{n}].role", INPUT_ROLES)
        parts = item.get("content")
        if refused is None and parts is not None and not isinstance(parts, str | list):
            refused = invalid_type(f"input[{n}].content", _TEXT_OR_PARTS, parts)
        for m, part in enumerate(parts if isinstance(parts, list) else ()):
            if refused is not None:
                break
            at = f"input[{n}].content[{m}]"
            if not isinstance(part, dict):
                refused = _not_object(part, at)
            else:
                refused = _value_problem(part.get("type"), f"{at}.type", INPUT_PART_TYPES)
                refused = refused or _input_part_problem(part, at)
        if refused is not None:
            return refused
    return None


_INPUT_DETAILS = ("low", "high", "auto", "original")
"""A Responses image part's `detail` (the spec's `ImageDetail`). The spec also marks it
required, but OpenAI's own examples send image parts without it: not required here."""
_INPUT_PART_STRINGS = {
    "input_image": ("image_url", "file_id"),
    "input_file": ("file_id", "file_data", "file_url", "filename"),
}
"""The optional string fields of a Responses image or file part (the spec's
`InputImageContent`, `InputFileContent`)."""


def _input_part_problem(part: dict[str, Any], at: str) -> Outcome | None:
    """A Responses content part's own fields: a text part's text, present and a string; an
    image or file part's fields strings where given, an image's detail one of the spec's."""
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        return _string_problem(part.get("text"), f"{at}.text")
    for name in _INPUT_PART_STRINGS.get(kind, ()):
        if part.get(name) is not None:
            refused = _string_problem(part[name], f"{at}.{name}")
            if refused is not None:
                return refused
    if kind == "input_image" and part.get("detail") is not None:
        return _value_problem(part["detail"], f"{at}.detail", _INPUT_DETAILS)
    return None


def _format_problem(fmt: object, param: str, kinds: tuple[str, ...], nested: str) -> Outcome | None:
    """A structured-output format: a type of the spec's, and for `json_schema` its name (and on
    the Responses API, flat, its schema). `nested` names chat's inner object
    (`response_format.json_schema`); Responses has none ("")."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        return _not_object(fmt, param)
    kind = fmt.get("type")
    refused = _value_problem(kind, f"{param}.type", kinds)
    if refused is not None or kind != "json_schema":
        return refused
    if nested:
        spec = fmt.get(nested)
        if spec is None:
            return _missing(f"{param}.{nested}")
        if not isinstance(spec, dict):
            return _not_object(spec, f"{param}.{nested}")
        return _name_problem(spec.get("name"), f"{param}.{nested}.name")
    refused = _name_problem(fmt.get("name"), f"{param}.name")
    if refused is None and fmt.get("schema") is None:
        refused = _missing(f"{param}.schema")
    return refused


def _text_format(text: object) -> object:
    return text.get("format") if isinstance(text, dict) else None


def _tools_problem(body: dict[str, Any], *, chat: bool) -> Outcome | None:
    """Each function tool's function and name; on chat, no empty `tools`, and `tool_choice`
    and `parallel_tool_calls` only beside tools (OpenAI's behaviour as vllm-project/vllm/
    pull/40311 recorded it from the API); on Responses, a `tool_choice` its tools can meet."""
    tools = body.get("tools")
    refused = _too_long(tools, "tools", _TOOLS_MAX)
    if refused is not None:
        return refused
    if isinstance(tools, list):
        for n, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return _not_object(tool, f"tools[{n}]")
            if tool.get("type") != "function":
                continue  # built-in and custom tools: checked by the spec's fields only
            if chat:
                function = _object_at(tool.get("function"), f"tools[{n}].function")
                if isinstance(function, Outcome):
                    return function
                refused = _name_problem(function.get("name"), f"tools[{n}].function.name")
            else:
                refused = _name_problem(tool.get("name"), f"tools[{n}].name")
            if refused is not None:
                return refused
    if not chat:
        return _responses_choice_problem(body.get("tool_choice"), tools)
    if tools == []:
        return _refused(
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.",
            "tools",
            "empty_array",
        )
    if tools:
        return None
    for field in ("tool_choice", "parallel_tool_calls"):
        if body.get(field) is not None:
            return _refused(
                f"Invalid value for '{field}': '{field}' is only allowed when 'tools' are "
                "specified.",
                field,
                None,
            )
    return None


def _responses_choice_problem(choice: object, tools: object) -> Outcome | None:
    """A Responses `tool_choice` that needs a tool the request does not give: `required`
    without tools, or a named function that is not among them ("auto" and "none" go without
    tools). OpenAI's answers, as vllm-project/vllm/pull/40399 recorded them from the API."""
    listed = tools if isinstance(tools, list) else []
    if choice == "required" and not listed:
        return _refused(
            "Tool choice 'required' must be specified with 'tools' parameter.", "tool_choice", None
        )
    if not isinstance(choice, dict) or choice.get("type") != "function":
        return None
    name = choice.get("name")
    if any(
        isinstance(t, dict) and t.get("type") == "function" and t.get("name") == name
        for t in listed
    ):
        return None
    return _refused("Tool choice 'function' not found in 'tools' parameter.", "tool_choice", None)


def _too_long(value: object, name: str, maximum: int) -> Outcome | None:
    """An array over its maximum length, in OpenAI's words."""
    if not isinstance(value, list) or len(value) <= maximum:
        return None
    return _refused(
        f"Invalid '{name}': array too long. Expected an array with maximum length {maximum}, "
        f"but got an array with length {len(value)} instead.",
        name,
        "array_above_max_length",
    )


def _logprobs_problem(body: dict[str, Any]) -> Outcome | None:
    """Chat `top_logprobs` without `logprobs: true`, which its spec requires (our words)."""
    if body.get("top_logprobs") is None or body.get("logprobs") is True:
        return None
    return _refused(
        "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' "
        "is used.",
        "top_logprobs",
        None,
    )


def _metadata_problem(body: dict[str, Any]) -> Outcome | None:
    if body.get("metadata") is None:
        return None
    if body.get("store") is not True:
        return _refused(
            "The 'metadata' parameter is only allowed when 'store' is enabled.", "metadata", None
        )
    return _metadata_limits(body.get("metadata"))


def _metadata_limits(value: object) -> Outcome | None:
    problem = metadata_problem(value)
    return None if problem is None else _refused(problem, "metadata", "invalid_value")


def metadata_problem(value: object) -> str | None:
    """Why a `metadata` object breaks OpenAI's limits (at most 16 pairs of strings, keys of
    at most 64 characters, values of at most 512), or None; our words."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return "Invalid 'metadata': expected an object of strings."
    if len(value) > 16:
        return f"Invalid 'metadata': at most 16 pairs allowed, got {len(value)}."
    for key, item in value.items():
        if len(key) > 64:
            return f"Invalid 'metadata': key '{key[:64]}...' is longer than 64 characters."
        if not isinstance(item, str):
            return f"Invalid 'metadata': value of '{key}' is not a string."
        if len(item) > 512:
            return f"Invalid 'metadata': value of '{key}' is longer than 512 characters."
    return None


EMBEDDING_ITEMS = 2048
"""The most inputs one embeddings request may hold (the spec's `maxItems`)."""


def embedding_inputs(value: object) -> list[str | list[int]] | None:
    """The inputs of an embeddings body's `input`, or None where the spec refuses its shape: a
    non-empty string, or an array of 1 to 2048 non-empty strings, of tokens (one input), or of
    non-empty token arrays."""
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not 1 <= len(value) <= EMBEDDING_ITEMS:
        return None
    return _texts_or_tokens(value, nonempty=True)


def _texts_or_tokens(value: list[Any], *, nonempty: bool) -> list[str | list[int]] | None:
    """The inputs of a non-empty array of texts, of tokens (one input) or of token arrays, as
    embeddings and completions take them; None for any other array (or, with `nonempty`, one
    holding an empty text or token array)."""

    def tokens(x: object) -> bool:
        return isinstance(x, list) and (bool(x) or not nonempty) and all(type(t) is int for t in x)

    if all(isinstance(x, str) and (x or not nonempty) for x in value):
        return list(value)
    if tokens(value):
        return [value]
    if all(tokens(x) for x in value):
        return list(value)
    return None


MODERATION_PART_TYPES = ("image_url", "text")
"""The types of a moderation input object (the spec's `CreateModerationRequest.input`)."""


def moderation_inputs(given: object) -> tuple[list[str], list[dict[str, Any]]] | None:
    """A moderation `input` in the spec's shapes: (strings, []) for a string or an array of
    strings, ([], objects) for an array of text and image objects; None for any other shape."""
    if isinstance(given, str):
        return [given], []
    if not isinstance(given, list):
        return None
    if all(isinstance(item, str) for item in given):
        return list(given), []
    if all(isinstance(item, dict) for item in given):
        return [], list(given)
    return None


def _moderation_problem(body: dict[str, Any]) -> Outcome | None:
    """A moderation `input` missing, of no shape the spec takes (strings and objects mixed),
    or with an object that is neither a text nor an image, or lacks its text or URL."""
    given = body.get("input")
    if given is None:
        return _missing("input")
    shapes = moderation_inputs(given)
    if shapes is None:  # an array (any other type is refused first, by the spec's types)
        return invalid_type(
            "input",
            "one of a string, an array of strings or an array of objects",
            given,
            got="an array of mixed items",
        )
    for n, item in enumerate(shapes[1]):
        at = f"input[{n}]"
        kind = item.get("type")
        refused = _value_problem(kind, f"{at}.type", MODERATION_PART_TYPES)
        if refused is None and kind == "text":
            refused = _string_problem(item.get("text"), f"{at}.text")
        elif refused is None:
            image = _object_at(item.get("image_url"), f"{at}.image_url")
            refused = (
                image
                if isinstance(image, Outcome)
                else _string_problem(image.get("url"), f"{at}.image_url.url")
            )
        if refused is not None:
            return refused
    return None


def completion_prompts(given: object) -> list[str | list[int]] | None:
    """A completions `prompt` in the spec's shapes, as a list of prompts: a string, strings,
    a token array or token arrays; None for any other shape."""
    if isinstance(given, str):
        return [given]
    if not isinstance(given, list) or not given:
        return None
    return _texts_or_tokens(given, nonempty=False)


def completion_cap(body: dict[str, Any]) -> int:
    """A completions request's `max_tokens`, or the spec's default when it gives none."""
    cap = body.get("max_tokens")
    if not isinstance(cap, int) or isinstance(cap, bool):
        return COMPLETION_DEFAULT_MAX_TOKENS
    return cap


def _prompt_problem(given: object) -> Outcome | None:
    """A completions `prompt` missing, empty, or of no shape the spec takes."""
    if given is None:
        return _missing("prompt")
    if given == []:
        return _refused(
            "Invalid 'prompt': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.",
            "prompt",
            "empty_array",
        )
    if completion_prompts(given) is not None:
        return None
    # An array (any other type is refused first, by the spec's types).
    return invalid_type(
        "prompt",
        "one of a string, an array of strings, an array of integers or an array of arrays of "
        "integers",
        given,
        got="an array of another shape",
    )
