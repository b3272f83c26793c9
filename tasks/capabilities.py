"""What each model accepts, from the dated capabilities file, and the request rules it implies.

The capabilities live in `data/models.toml` (context window, output cap, reasoning or not,
vision, structured outputs, endpoints; with the date and source written in the file) so that
users can edit them when OpenAI changes a model; `OVERNIGHT_MODELS_FILE` points overnight at a
file of the user's own instead. Dated snapshots and fine-tunes take their base model's entry,
by the same rule as the pricing file.

`request_problems` checks one request body against a model's capabilities and answers in
OpenAI's words (its messages, `param` and `code`): the job preflight (`tasks.preflight`) runs
it on the request a job would send, and the local Batch API on every line it is given, so the
two can never disagree.

The wordings are OpenAI's where public answers of the API show them: `unsupported_parameter`
for `max_tokens` / `top_p` / `reasoning_effort`, `unsupported_value` for `temperature`,
`context_length_exceeded` on chat, `model_not_found`, "max_tokens is too large", a Responses
`max_output_tokens` under 16 (`integer_below_min_value`; quoted in
github.com/earendil-works/pi/issues/6265, in full in vectorize-io/hindsight/issues/58), the
image content type, an image data URL that is not one ("Invalid image URL: ... but got a value
without the 'data:' prefix" / "empty base64-encoded bytes"), image bytes that do not decode
(`invalid_image_format`), and `invalid_json_schema` ("In context=(...), 'minLength' is not
permitted."). Ours, in OpenAI's style, where no answer was found: a model on an endpoint it
does not serve, an output cap over the limit on the Responses API, the effort values a model
takes, a data URL with an unsupported MIME type or bad base64, a PDF file part without a PDF
data URL, and a file part on a model without vision.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from overnight.resources import data_file, read_model_file
from tasks.imagetokens import (
    DEFAULT_RULE,
    DataUrlError,
    ImageTokenRule,
    data_url_problem,
    split_data_url,
)
from tasks.pricing import model_candidates, model_family

DEFAULT_MODELS_FILE = data_file("models.toml")

ModelEndpoint = Literal[
    "/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/moderations", "/v1/completions"
]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
ChatOutputCap = Literal["max_completion_tokens", "max_tokens"]

SAMPLING_PARAMS = (
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
)
"""Chat parameters reasoning models refuse outright (temperature is refused unless 1)."""
RESPONSES_SAMPLING_PARAMS = ("temperature", "top_p", "top_logprobs")
"""Responses parameters reasoning models refuse."""
RESPONSES_MIN_OUTPUT_TOKENS = 16
"""The least `max_output_tokens` the Responses API takes, any model (its OpenAPI spec's minimum)."""


class CapabilitiesError(Exception):
    """The capabilities file cannot be read or is malformed."""


class UnknownModelCapabilitiesError(CapabilitiesError, KeyError):
    """The capabilities file has no entry for a model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelCapabilities(BaseModel):
    """What one model accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    context_window: int = Field(gt=0)
    """Input plus output tokens of one request, at most."""
    max_output_tokens: int = Field(ge=0)
    """Output tokens of one request (reasoning tokens included), at most."""
    reasoning: bool
    reasoning_efforts: tuple[Effort, ...] = ()
    vision: bool
    structured_outputs: bool
    endpoints: tuple[ModelEndpoint, ...] = Field(min_length=1)
    chat_output_cap: ChatOutputCap = "max_completion_tokens"
    image_tokens: ImageTokenRule | None = None
    """How the model bills an image; None (a vision model without the entry) = gpt-4o's rule."""
    audio: bool = False
    """Takes audio input and writes audio output on chat (the gpt-4o audio models)."""
    legacy_messages: bool = False
    """Chat messages are checked against the 2023 message schema: other fields are refused."""
    chat_web_search: bool = False
    """Takes chat's `web_search_options` (the search models)."""
    unconfirmed: tuple[str, ...] = ()
    """What could not be confirmed from OpenAI's own pages when the entry was written."""

    @model_validator(mode="after")
    def _consistent(self) -> ModelCapabilities:
        if self.reasoning_efforts and not self.reasoning:
            raise ValueError("reasoning_efforts is only for reasoning models (reasoning = true)")
        if self.reasoning and self.chat_output_cap != "max_completion_tokens":
            raise ValueError("reasoning models take max_completion_tokens, never max_tokens")
        if self.image_tokens is not None and not self.vision:
            raise ValueError("image_tokens is only for models with vision (vision = true)")
        return self

    def image_rule(self) -> ImageTokenRule:
        """The model's image-token rule (gpt-4o's tiles rule when its entry has none)."""
        return self.image_tokens or DEFAULT_RULE

    def output_cap_field(self, endpoint: str) -> str:
        """The request field that caps the output on an endpoint."""
        return "max_output_tokens" if endpoint == "/v1/responses" else self.chat_output_cap


class CapabilitiesTable(BaseModel):
    """The models of one capabilities file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: date
    source: str
    notes: str = ""
    path: str
    models: dict[str, ModelCapabilities]
    undescribed: tuple[str, ...] = ()
    """Models OpenAI lists that the file does not describe (yet): refused as such, with no
    "did you mean" pointing at another model."""

    def get(self, model: str) -> ModelCapabilities | None:
        """A model's entry (dated snapshots and fine-tunes fall back to their base), or None."""
        for candidate in model_candidates(model):
            if candidate in self.models:
                return self.models[candidate]
        return None

    def lookup(self, model: str) -> ModelCapabilities:
        """A model's entry, or `UnknownModelCapabilitiesError` saying how to add it."""
        found = self.get(model)
        if found is not None:
            return found
        name = model_family(model)
        if name in self.undescribed:
            known = (
                f"{model!r} is an OpenAI model that the capabilities file {self.path} (as of "
                f"{self.as_of}) does not describe yet: its context window, parameter rules and "
                "prices could not be checked when the file was written. To run it, "
            )
        else:
            close = difflib.get_close_matches(name, list(self.models), n=1, cutoff=0.8)
            # A slip of the keyboard, most likely: name the model it looks like first.
            guess = f"did you mean {close[0]!r}? If not, " if close else ""
            known = f"model {model!r} is not in the capabilities file {self.path}: {guess}"
        if Path(self.path) == DEFAULT_MODELS_FILE.resolve():
            where = (
                f"copy {self.path} to a file of your own (e.g. ./models.toml), add the model "
                "there, and set OVERNIGHT_MODELS_FILE to that file"
            )
        else:
            where = f"add it to {self.path}"
        raise UnknownModelCapabilitiesError(
            f"{known}{where}, with the "
            f"facts from https://platform.openai.com/docs/models/{name}, like this: "
            f'[models."{name}"] context_window = 128000, max_output_tokens = 16384, '
            "reasoning = false, vision = true, structured_outputs = true, "
            'endpoints = ["/v1/chat/completions", "/v1/responses"] '
            "(a new model also needs its prices in pricing.toml, see OVERNIGHT_PRICING_FILE)"
        )


def load_capabilities(path: str | Path | None = None) -> CapabilitiesTable:
    """Read a capabilities file (by default `OVERNIGHT_MODELS_FILE`, else the shipped one)."""
    if path is None:
        from overnight.settings import get_settings

        path = get_settings().models_file or DEFAULT_MODELS_FILE
    return read_model_file(
        Path(path), CapabilitiesTable, error=CapabilitiesError, what="model capabilities file"
    )


# -- the rules of one request ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestProblem:
    """Why OpenAI refuses a request: an HTTP 400 with `body.error` {message, param, code}."""

    param: str | None
    code: str | None
    message: str
    status_code: int = 400
    type: str = "invalid_request_error"

    def error_body(self) -> dict[str, Any]:
        """The JSON body OpenAI answers with."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def unknown_model(model: str) -> RequestProblem:
    """OpenAI's answer to a model it does not have."""
    return RequestProblem(
        param=None,
        code="model_not_found",
        message=f"The model `{model}` does not exist or you do not have access to it.",
        status_code=404,
    )


def _unsupported_parameter(param: str, instead: str | None = None) -> RequestProblem:
    use = f" Use '{instead}' instead." if instead else ""
    return RequestProblem(
        param=param,
        code="unsupported_parameter",
        message=f"Unsupported parameter: '{param}' is not supported with this model.{use}",
    )


def _quote_list(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _effort_problem(caps: ModelCapabilities, param: str, effort: object) -> RequestProblem | None:
    if not caps.reasoning:
        return _unsupported_parameter(param)
    if effort in caps.reasoning_efforts:
        return None
    return RequestProblem(
        param=param,
        code="unsupported_value",
        message=f"Unsupported value: '{param}' does not support {effort!r} with this model. "
        f"Supported values are: {_quote_list(caps.reasoning_efforts)}.",
    )


def _cap_problem(caps: ModelCapabilities, param: str, value: object) -> RequestProblem | None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= caps.max_output_tokens:
        return None
    return RequestProblem(
        param=param,
        code="invalid_value",
        message=f"{param} is too large: {value}. This model supports at most "
        f"{caps.max_output_tokens} completion tokens, whereas you provided {value}.",
    )


def _below_min_output(value: object) -> RequestProblem | None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value >= RESPONSES_MIN_OUTPUT_TOKENS
    ):
        return None
    return RequestProblem(
        param="max_output_tokens",
        code="integer_below_min_value",
        message="Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
        f"{RESPONSES_MIN_OUTPUT_TOKENS}, but got {value} instead.",
    )


UNSUPPORTED_IMAGE = (
    "You uploaded an unsupported image. Please make sure your image has of one the following "
    "formats: ['png', 'jpeg', 'gif', 'webp']."
)
"""OpenAI's answer to image bytes it cannot decode (its wording, typo included)."""


def _image_url_problem(part: dict[str, Any], where: str, chat: bool) -> RequestProblem | None:
    raw = part.get("image_url")
    url = raw.get("url") if chat and isinstance(raw, dict) else raw
    param = f"{where}.image_url.url" if chat else f"{where}.image_url"
    if not isinstance(url, str):
        return None  # a file_id or a malformed part: not ours to judge
    why = data_url_problem(url)
    if why is None:
        return None
    if why.endswith(" image"):  # the bytes are no image, or one of a type OpenAI refuses
        return RequestProblem(param=None, code="invalid_image_format", message=UNSUPPORTED_IMAGE)
    return RequestProblem(
        param=param,
        code="invalid_value",
        message=f"Invalid image URL: '{param}'. Expected a base64-encoded data URL with an "
        f"image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got {why}.",
    )


def _file_problem(part: dict[str, Any], where: str, chat: bool) -> RequestProblem | None:
    holder = part.get("file") if chat else part
    data = holder.get("file_data") if isinstance(holder, dict) else None
    if not isinstance(data, str):
        return None  # a file_id: uploaded files are not checked here
    param = f"{where}.file.file_data" if chat else f"{where}.file_data"
    try:
        mime, _ = split_data_url(data)
        why = None if mime == "application/pdf" else f"unsupported MIME type '{mime}'"
    except DataUrlError as exc:
        why = str(exc)
    if why is None:
        return None
    return RequestProblem(
        param=param,
        code="invalid_value",
        message=f"Invalid file data: '{param}'. Expected a base64-encoded data URL with a PDF "
        f"MIME type (e.g. 'data:application/pdf;base64,SGVsbG8='), but got {why}.",
    )


def _image_problems(
    caps: ModelCapabilities, items: object, prefix: str, chat: bool
) -> list[RequestProblem]:
    """Image and file parts: refused on a model without vision, else each must be valid."""
    if not isinstance(items, list):
        return []
    image_part, file_part = ("image_url", "file") if chat else ("input_image", "input_file")
    problems: list[RequestProblem] = []
    for i, item in enumerate(items):
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in (image_part, file_part) or not isinstance(part, dict):
                continue
            if not caps.vision:
                return [
                    RequestProblem(
                        param=f"{prefix}.[{i}].content.[{j}].type",
                        code=None,
                        message=f"Invalid content type. {kind} is only supported by "
                        "certain models.",
                    )
                ]
            where = f"{prefix}[{i}].content[{j}]"
            check = _image_url_problem if kind == image_part else _file_problem
            problem = check(part, where, chat)
            if problem is not None:
                problems.append(problem)
    return problems


def _audio_problems(caps: ModelCapabilities, body: dict[str, Any]) -> list[RequestProblem]:
    """Audio on a chat model without it: an `input_audio` part, refused as OpenAI refuses
    another part type a model cannot read (its words for images and files), or audio output
    asked for (`modalities` with "audio", or `audio`), refused in our words: OpenAI's answer to
    that on a text model was not found."""
    if caps.audio:
        return []
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "input_audio":
                return [
                    RequestProblem(
                        param=f"messages.[{i}].content.[{j}].type",
                        code=None,
                        message="Invalid content type. input_audio is only supported by "
                        "certain models.",
                    )
                ]
    modalities = body.get("modalities")
    asked = isinstance(modalities, list) and "audio" in modalities
    if asked or body.get("audio") is not None:
        param = "modalities" if asked else "audio"
        return [
            RequestProblem(
                param=param,
                code="unsupported_value",
                message=f"Unsupported value: '{param}' asks for audio output, which this model "
                "does not produce. Use an audio model (gpt-4o-audio-preview), or remove "
                "'audio' from 'modalities' and the 'audio' parameter.",
            )
        ]
    return []


def _tool_problems(tools: object, *, chat: bool) -> list[RequestProblem]:
    """A strict function tool whose parameters fall outside strict mode's schema subset.

    OpenAI's answer, as users' reports quote it: "Invalid schema for function 'x': In
    context=(...), ...", param `tools[i].function.parameters`, code
    `invalid_function_parameters` (the Responses param, `tools[i].parameters`, is inferred).
    Only tools marked `strict: true` are checked.
    """
    if not isinstance(tools, list):
        return []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        spec = tool.get("function") if chat else tool
        if not isinstance(spec, dict) or spec.get("strict") is not True:
            continue
        parameters = spec.get("parameters")
        problems = cached_schema_problems(parameters) if isinstance(parameters, dict) else []
        if problems:
            where = f"tools[{i}].function.parameters" if chat else f"tools[{i}].parameters"
            return [
                RequestProblem(
                    param=where,
                    code="invalid_function_parameters",
                    message=f"Invalid schema for function '{spec.get('name')}': {problems[0]}",
                )
            ]
    return []


def _mentions_json(messages: object) -> bool:
    """Whether any message's text says "json" (in any case): JSON mode's precondition."""
    if not isinstance(messages, list):
        return True  # a missing or malformed `messages` is refused for that instead
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else [content]
        for part in parts:
            text = part.get("text") if isinstance(part, dict) else part
            if isinstance(text, str) and "json" in text.lower():
                return True
    return False


def _format_problems(
    caps: ModelCapabilities, fmt: object, spec: object, param: str, schema_param: str
) -> list[RequestProblem]:
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return []
    if not caps.structured_outputs:
        return [
            RequestProblem(
                param=param,
                code=None,
                message=f"Invalid parameter: '{param}' of type 'json_schema' is not supported "
                "with this model.",
            )
        ]
    if not isinstance(spec, dict) or spec.get("strict") is not True:
        return []
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        return []
    problems = cached_schema_problems(schema)
    if not problems:
        return []
    name = spec.get("name")
    return [
        RequestProblem(
            param=schema_param,
            code="invalid_json_schema",
            message=f"Invalid schema for response_format '{name}': {problems[0]}",
        )
    ]


def cached_schema_problems(schema: dict[str, Any]) -> list[str]:
    """`schema_problems` in OpenAI's words, remembered per schema (one check per job, not line)."""
    import orjson

    return _schema_problems(orjson.dumps(schema))


@lru_cache(maxsize=256)
def _schema_problems(schema_json: bytes) -> list[str]:
    import orjson

    from schemas.response_format import schema_problems

    return [p.openai_message() for p in schema_problems(orjson.loads(schema_json))]


def request_problems(
    caps: ModelCapabilities, endpoint: str, body: dict[str, Any]
) -> list[RequestProblem]:
    """Every parameter of a request body the model refuses, as OpenAI words it (first = answer)."""
    if endpoint not in caps.endpoints:
        return [
            RequestProblem(
                param="model",
                code="model_not_supported",
                message=f"The model '{caps.model}' is not supported with the {endpoint} "
                f"endpoint; it serves {', '.join(caps.endpoints)}.",
            )
        ]
    problems: list[RequestProblem] = []
    if endpoint == "/v1/chat/completions":
        if body.get("messages") == []:
            # OpenAI's answer, as users' reports quote it.
            return [
                RequestProblem(
                    param="messages",
                    code="empty_array",
                    message="Invalid 'messages': empty array. Expected an array with minimum "
                    "length 1, but got an empty array instead.",
                )
            ]
        if caps.reasoning:
            if body.get("max_tokens") is not None:
                problems.append(_unsupported_parameter("max_tokens", "max_completion_tokens"))
            temperature = body.get("temperature")
            if temperature is not None and temperature != 1:
                problems.append(
                    RequestProblem(
                        param="temperature",
                        code="unsupported_value",
                        message=f"Unsupported value: 'temperature' does not support "
                        f"{temperature} with this model. Only the default (1) value is "
                        "supported.",
                    )
                )
            problems += [
                _unsupported_parameter(p) for p in SAMPLING_PARAMS if body.get(p) is not None
            ]
        if body.get("reasoning_effort") is not None:
            problem = _effort_problem(caps, "reasoning_effort", body["reasoning_effort"])
            problems += [problem] if problem else []
        for field in ("max_completion_tokens", "max_tokens"):
            problem = _cap_problem(caps, field, body.get(field))
            problems += [problem] if problem else []
        problems += _image_problems(caps, body.get("messages"), "messages", chat=True)
        problems += _audio_problems(caps, body)
        problems += _tool_problems(body.get("tools"), chat=True)
        fmt = body.get("response_format")
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        problems += _format_problems(caps, fmt, spec, "response_format", "response_format")
        if (
            isinstance(fmt, dict)
            and fmt.get("type") == "json_object"
            and not _mentions_json(body.get("messages"))
        ):
            # OpenAI's JSON mode answer, as widely reported (the exact text is unconfirmed).
            problems.append(
                RequestProblem(
                    param="messages",
                    code=None,
                    message="'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                )
            )
    elif endpoint == "/v1/responses":
        problem = _below_min_output(body.get("max_output_tokens"))
        problems += [problem] if problem else []
        if caps.reasoning:
            problems += [
                _unsupported_parameter(p)
                for p in RESPONSES_SAMPLING_PARAMS
                if body.get(p) is not None
            ]
        reasoning = body.get("reasoning")
        if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
            problem = _effort_problem(caps, "reasoning.effort", reasoning["effort"])
            problems += [problem] if problem else []
        problem = _cap_problem(caps, "max_output_tokens", body.get("max_output_tokens"))
        problems += [problem] if problem else []
        problems += _image_problems(caps, body.get("input"), "input", chat=False)
        problems += _tool_problems(body.get("tools"), chat=False)
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        problems += _format_problems(caps, fmt, fmt, "text.format", "text.format.schema")
    return problems


def context_problem(
    caps: ModelCapabilities, endpoint: str, *, input_tokens: int, output_cap: int
) -> RequestProblem | None:
    """OpenAI's answer when a prompt plus its output cap do not fit the model's window."""
    window = caps.context_window
    if input_tokens + output_cap <= window:
        return None
    if endpoint == "/v1/responses":
        return RequestProblem(
            param="input",
            code="context_length_exceeded",
            message="Your input exceeds the context window of this model. Please adjust your "
            "input and try again.",
        )
    if input_tokens > window:
        message = (
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {input_tokens} tokens. Please reduce the length of the messages."
        )
    else:
        message = (
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{input_tokens + output_cap} tokens ({input_tokens} in the messages, {output_cap} "
            "in the completion). Please reduce the length of the messages or completion."
        )
    return RequestProblem(param="messages", code="context_length_exceeded", message=message)
