"""The request fields OpenAI's API accepts, from its official OpenAPI spec (version 2.3.0).

Each set is the `properties` of a request schema, followed through `allOf` and `$ref`
(`CreateChatCompletionRequest`, `CreateResponse`, `CreateEmbeddingRequest`,
`CreateBatchRequest`). They are written out here so that the server never reads the spec;
`tests/localbatch/test_fields.py` derives them from the spec again and fails, printing the new
sets, when they drift (a newer spec: paste them here).
"""

from __future__ import annotations

SPEC_VERSION = "2.3.0"

BODY_FIELDS: dict[str, frozenset[str]] = {
    # CreateChatCompletionRequest
    "/v1/chat/completions": frozenset(
        {
            "audio",
            "frequency_penalty",
            "function_call",
            "functions",
            "logit_bias",
            "logprobs",
            "max_completion_tokens",
            "max_tokens",
            "messages",
            "metadata",
            "modalities",
            "model",
            "moderation",
            "n",
            "parallel_tool_calls",
            "prediction",
            "presence_penalty",
            "prompt_cache_key",
            "prompt_cache_options",
            "prompt_cache_retention",
            "reasoning_effort",
            "response_format",
            "safety_identifier",
            "seed",
            "service_tier",
            "stop",
            "store",
            "stream",
            "stream_options",
            "temperature",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "user",
            "verbosity",
            "web_search_options",
        }
    ),
    # CreateResponse
    "/v1/responses": frozenset(
        {
            "background",
            "context_management",
            "conversation",
            "include",
            "input",
            "instructions",
            "max_output_tokens",
            "max_tool_calls",
            "metadata",
            "model",
            "moderation",
            "parallel_tool_calls",
            "previous_response_id",
            "prompt",
            "prompt_cache_key",
            "prompt_cache_options",
            "prompt_cache_retention",
            "reasoning",
            "safety_identifier",
            "service_tier",
            "store",
            "stream",
            "stream_options",
            "temperature",
            "text",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "truncation",
            "user",
        }
    ),
    # CreateEmbeddingRequest
    "/v1/embeddings": frozenset({"dimensions", "encoding_format", "input", "model", "user"}),
    # CreateModerationRequest
    "/v1/moderations": frozenset({"input", "model"}),
    # CreateCompletionRequest
    "/v1/completions": frozenset(
        {
            "best_of",
            "echo",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "max_tokens",
            "model",
            "n",
            "presence_penalty",
            "prompt",
            "seed",
            "stop",
            "stream",
            "stream_options",
            "suffix",
            "temperature",
            "top_p",
            "user",
        }
    ),
}
"""The body fields of a request line, per batch endpoint the local API serves."""

CREATE_BATCH_FIELDS = frozenset(
    {"completion_window", "endpoint", "input_file_id", "metadata", "output_expires_after"}
)
"""The fields of a `POST /v1/batches` body (`CreateBatchRequest`)."""

BODY_BOUNDS: dict[str, dict[str, tuple[str, float | None, float | None]]] = {
    "/v1/chat/completions": {
        "frequency_penalty": ("number", -2, 2),
        "n": ("integer", 1, 128),
        "presence_penalty": ("number", -2, 2),
        "temperature": ("number", 0, 2),
        "top_logprobs": ("integer", 0, 20),
        "top_p": ("number", 0, 1),
    },
    "/v1/responses": {
        "temperature": ("number", 0, 2),
        "top_logprobs": ("integer", 0, 20),
        "top_p": ("number", 0, 1),
    },
    "/v1/embeddings": {"dimensions": ("integer", 1, None)},
    "/v1/completions": {
        "best_of": ("integer", 0, 20),
        "frequency_penalty": ("number", -2, 2),
        "logprobs": ("integer", 0, 5),
        "max_tokens": ("integer", 0, None),
        "n": ("integer", 1, 128),
        "presence_penalty": ("number", -2, 2),
        "temperature": ("number", 0, 2),
        "top_p": ("number", 0, 1),
    },
}
"""(type, minimum, maximum) of the body fields whose spec schema bounds a number. Left out:
`seed` (its bounds are the int64 range) and the Responses `max_output_tokens` minimum, which
`tasks.capabilities` checks for the job preflight and the server alike."""

BODY_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    # CreateChatCompletionRequest
    "/v1/chat/completions": {
        "audio": ("null", "object"),
        "frequency_penalty": ("null", "number"),
        "function_call": ("object", "string"),
        "functions": ("array",),
        "logit_bias": ("null", "object"),
        "logprobs": ("boolean", "null"),
        "max_completion_tokens": ("integer", "null"),
        "max_tokens": ("integer", "null"),
        "messages": ("array",),
        "metadata": ("null", "object"),
        "modalities": ("array", "null"),
        "model": ("string",),
        "moderation": ("null", "object"),
        "n": ("integer", "null"),
        "parallel_tool_calls": ("boolean",),
        "prediction": ("null", "object"),
        "presence_penalty": ("null", "number"),
        "prompt_cache_key": ("null", "string"),
        "prompt_cache_options": ("object",),
        "prompt_cache_retention": ("null", "string"),
        "reasoning_effort": ("null", "string"),
        "response_format": ("object",),
        "safety_identifier": ("null", "string"),
        "seed": ("integer", "null"),
        "service_tier": ("null", "string"),
        "stop": ("array", "null", "string"),
        "store": ("boolean", "null"),
        "stream": ("boolean", "null"),
        "stream_options": ("null", "object"),
        "temperature": ("null", "number"),
        "tool_choice": ("object", "string"),
        "tools": ("array",),
        "top_logprobs": ("integer", "null"),
        "top_p": ("null", "number"),
        "user": ("string",),
        "verbosity": ("null", "string"),
        "web_search_options": ("object",),
    },
    # CreateResponse
    "/v1/responses": {
        "background": ("boolean", "null"),
        "context_management": ("array", "null"),
        "conversation": ("null", "object", "string"),
        "include": ("array", "null"),
        "input": ("array", "string"),
        "instructions": ("null", "string"),
        "max_output_tokens": ("integer", "null"),
        "max_tool_calls": ("integer", "null"),
        "metadata": ("null", "object"),
        "model": ("string",),
        "moderation": ("null", "object"),
        "parallel_tool_calls": ("boolean", "null"),
        "previous_response_id": ("null", "string"),
        "prompt": ("null", "object"),
        "prompt_cache_key": ("null", "string"),
        "prompt_cache_options": ("object",),
        "prompt_cache_retention": ("null", "string"),
        "reasoning": ("null", "object"),
        "safety_identifier": ("null", "string"),
        "service_tier": ("null", "string"),
        "store": ("boolean", "null"),
        "stream": ("boolean", "null"),
        "stream_options": ("null", "object"),
        "temperature": ("null", "number"),
        "text": ("object",),
        "tool_choice": ("object", "string"),
        "tools": ("array",),
        "top_logprobs": ("integer",),
        "top_p": ("null", "number"),
        "truncation": ("null", "string"),
        "user": ("string",),
    },
    # CreateEmbeddingRequest
    "/v1/embeddings": {
        "dimensions": ("integer",),
        "encoding_format": ("string",),
        "input": ("array", "string"),
        "model": ("string",),
        "user": ("string",),
    },
    # CreateModerationRequest
    "/v1/moderations": {
        "input": ("array", "string"),
        "model": ("string",),
    },
    # CreateCompletionRequest
    "/v1/completions": {
        "best_of": ("integer", "null"),
        "echo": ("boolean", "null"),
        "frequency_penalty": ("null", "number"),
        "logit_bias": ("null", "object"),
        "logprobs": ("integer", "null"),
        "max_tokens": ("integer", "null"),
        "model": ("string",),
        "n": ("integer", "null"),
        "presence_penalty": ("null", "number"),
        "prompt": ("array", "null", "string"),
        "seed": ("integer", "null"),
        "stop": ("array", "null", "string"),
        "stream": ("boolean", "null"),
        "stream_options": ("null", "object"),
        "suffix": ("null", "string"),
        "temperature": ("null", "number"),
        "top_p": ("null", "number"),
        "user": ("string",),
    },
}
"""The JSON types each body field's spec schema allows (through `$ref`, `anyOf`, `oneOf` and
`nullable`): a value of another type is refused, as OpenAI refuses it ("Invalid type for 'n':
expected an integer, but got a string instead."). `tests/localbatch/test_fields.py` derives
them from the spec again. A null is taken as the field left out, whatever its types: clients
send nulls for unset options, and what OpenAI answers to a null where its spec allows none was
not found."""

NESTED_VALUES: dict[str, tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = {
    "/v1/chat/completions": (
        ("response_format.json_schema.schema", ("object",), ()),
        ("response_format.json_schema.strict", ("boolean", "null"), ()),
        ("response_format.json_schema.description", ("string",), ()),
        ("tools[].type", ("string",), ("function", "custom")),
        ("tools[].function.description", ("string",), ()),
        ("tools[].function.parameters", ("object",), ()),
        ("tools[].function.strict", ("boolean", "null"), ()),
        ("messages[].name", ("string",), ()),
        ("modalities[]", ("string",), ("text", "audio")),
        ("stop[]", ("string",), ()),
        ("tool_choice", ("object", "string"), ("none", "auto", "required")),
        ("prediction.type", ("string",), ("content",)),
        (
            "reasoning_effort",
            ("null", "string"),
            ("none", "minimal", "low", "medium", "high", "xhigh", "max"),
        ),
        (
            "service_tier",
            ("null", "string"),
            ("auto", "default", "flex", "scale", "priority", "fast"),
        ),
        ("verbosity", ("null", "string"), ("low", "medium", "high")),
    ),
    "/v1/responses": (
        ("text.format.schema", ("object",), ()),
        ("text.format.strict", ("boolean", "null"), ()),
        ("text.format.description", ("string",), ()),
        ("text.verbosity", ("null", "string"), ("low", "medium", "high")),
        (
            "reasoning.effort",
            ("null", "string"),
            ("none", "minimal", "low", "medium", "high", "xhigh", "max"),
        ),
        ("reasoning.summary", ("null", "string"), ("auto", "concise", "detailed")),
        (
            "include[]",
            ("string",),
            (
                "file_search_call.results",
                "web_search_call.results",
                "web_search_call.action.sources",
                "message.input_image.image_url",
                "computer_call_output.output.image_url",
                "code_interpreter_call.outputs",
                "reasoning.encrypted_content",
                "message.output_text.logprobs",
            ),
        ),
        (
            "tools[].type",
            ("string",),
            (
                "function",
                "file_search",
                "computer",
                "computer_use_preview",
                "web_search",
                "web_search_2025_08_26",
                "mcp",
                "code_interpreter",
                "programmatic_tool_calling",
                "image_generation",
                "local_shell",
                "shell",
                "custom",
                "namespace",
                "tool_search",
                "web_search_preview",
                "web_search_preview_2025_03_11",
                "apply_patch",
            ),
        ),
        ("tools[].description", ("null", "string"), ()),
        ("tools[].parameters", ("null", "object"), ()),
        ("tools[].strict", ("boolean", "null"), ()),
        ("tool_choice", ("object", "string"), ("none", "auto", "required")),
        (
            "service_tier",
            ("null", "string"),
            ("auto", "default", "flex", "scale", "priority", "fast", "ultrafast"),
        ),
    ),
}
"""(path, JSON types, listed values) of fields inside a body that clients get wrong and the
shape checks (`localbatch._shapes`) do not cover, from the spec: `tools[].type` is the `type`
of each item of `tools`; listed values bind strings only. `tests/localbatch/test_fields.py`
derives each entry from the spec again. A null counts as the field left out."""


def _keys(names: str) -> frozenset[str]:
    return frozenset(names.split())


NESTED_FIELDS: dict[str, tuple[tuple[str, dict[str | None, frozenset[str]]], ...]] = {
    # CreateChatCompletionRequest
    "/v1/chat/completions": (
        (
            "response_format",
            {
                "text": _keys("type"),
                "json_schema": _keys("json_schema type"),
                "json_object": _keys("type"),
            },
        ),
        (
            "response_format.json_schema",
            {
                None: _keys("description name schema strict"),
            },
        ),
        (
            "tools[]",
            {
                "function": _keys("function type"),
                "custom": _keys("custom type"),
            },
        ),
        (
            "tools[].function",
            {
                None: _keys("description name parameters strict"),
            },
        ),
        (
            "tools[].custom",
            {
                None: _keys("description format name"),
            },
        ),
        (
            "tool_choice",
            {
                "allowed_tools": _keys("allowed_tools type"),
                "function": _keys("function type"),
                "custom": _keys("custom type"),
            },
        ),
        (
            "tool_choice.function",
            {
                None: _keys("name"),
            },
        ),
        (
            "prediction",
            {
                "content": _keys("content type"),
            },
        ),
        (
            "audio",
            {
                None: _keys("format voice"),
            },
        ),
    ),
    # CreateResponse
    "/v1/responses": (
        (
            "input[]",
            {
                "message": _keys("content id phase role status type"),
                None: _keys("content id phase role status type"),
                "file_search_call": _keys("id queries results status type"),
                "computer_call": _keys(
                    "action actions call_id id pending_safety_checks status type"
                ),
                "computer_call_output": _keys(
                    "acknowledged_safety_checks call_id id output status type"
                ),
                "web_search_call": _keys("action id status type"),
                "function_call": _keys("arguments call_id caller id name namespace status type"),
                "function_call_output": _keys(
                    "call_id caller id name namespace output status type"
                ),
                "tool_search_call": _keys("arguments call_id execution id status type"),
                "tool_search_output": _keys("call_id execution id status tools type"),
                "additional_tools": _keys("id role tools type"),
                "reasoning": _keys("content encrypted_content id status summary type"),
                "compaction": _keys("encrypted_content id type"),
                "image_generation_call": _keys("id result status type"),
                "code_interpreter_call": _keys("code container_id id outputs status type"),
                "local_shell_call": _keys("action call_id id status type"),
                "local_shell_call_output": _keys("id output status type"),
                "shell_call": _keys("action call_id caller environment id status type"),
                "shell_call_output": _keys(
                    "call_id caller id max_output_length output status type"
                ),
                "apply_patch_call": _keys("call_id caller id operation status type"),
                "apply_patch_call_output": _keys("call_id caller id output status type"),
                "mcp_list_tools": _keys("error id server_label tools type"),
                "mcp_approval_request": _keys("arguments id name server_label type"),
                "mcp_approval_response": _keys("approval_request_id approve id reason type"),
                "mcp_call": _keys(
                    "approval_request_id arguments error id name output server_label status type"
                ),
                "custom_tool_call_output": _keys("call_id caller id output type"),
                "custom_tool_call": _keys("call_id caller id input name namespace type"),
                "compaction_trigger": _keys("type"),
                "item_reference": _keys("id type"),
                "program": _keys("call_id code fingerprint id type"),
                "program_output": _keys("call_id id result status type"),
            },
        ),
        (
            "input[].content[]",
            {
                "input_text": _keys("prompt_cache_breakpoint text type"),
                "input_image": _keys("detail file_id image_url prompt_cache_breakpoint type"),
                "input_file": _keys(
                    "detail file_data file_id file_url filename prompt_cache_breakpoint type"
                ),
                "output_text": _keys("annotations logprobs text type"),
                "refusal": _keys("refusal type"),
                "reasoning_text": _keys("text type"),
            },
        ),
        (
            "text",
            {
                None: _keys("format verbosity"),
            },
        ),
        (
            "text.format",
            {
                "text": _keys("type"),
                "json_schema": _keys("description name schema strict type"),
                "json_object": _keys("type"),
            },
        ),
        (
            "reasoning",
            {
                None: _keys("context effort generate_summary mode summary"),
            },
        ),
        (
            "tools[]",
            {
                "function": _keys(
                    "allowed_callers defer_loading description name output_schema parameters "
                    "strict type"
                ),
                "file_search": _keys(
                    "filters max_num_results ranking_options type vector_store_ids"
                ),
                "computer": _keys("type"),
                "computer_use_preview": _keys("display_height display_width environment type"),
                "web_search": _keys(
                    "external_web_access filters search_context_size type user_location"
                ),
                "web_search_2025_08_26": _keys(
                    "external_web_access filters search_context_size type user_location"
                ),
                "mcp": _keys(
                    "allowed_callers allowed_tools authorization connector_id defer_loading "
                    "headers require_approval server_description server_label server_url "
                    "tunnel_id type"
                ),
                "code_interpreter": _keys("allowed_callers container type"),
                "programmatic_tool_calling": _keys("type"),
                "image_generation": _keys(
                    "action background input_fidelity input_image_mask model moderation "
                    "output_compression output_format partial_images quality size type"
                ),
                "local_shell": _keys("type"),
                "shell": _keys("allowed_callers environment type"),
                "custom": _keys("allowed_callers defer_loading description format name type"),
                "namespace": _keys("description name tools type"),
                "tool_search": _keys("description execution parameters type"),
                "web_search_preview": _keys(
                    "search_content_types search_context_size type user_location"
                ),
                "web_search_preview_2025_03_11": _keys(
                    "search_content_types search_context_size type user_location"
                ),
                "apply_patch": _keys("allowed_callers type"),
            },
        ),
        (
            "tool_choice",
            {
                "allowed_tools": _keys("mode tools type"),
                "file_search": _keys("type"),
                "web_search_preview": _keys("type"),
                "computer": _keys("type"),
                "computer_use_preview": _keys("type"),
                "computer_use": _keys("type"),
                "web_search_preview_2025_03_11": _keys("type"),
                "image_generation": _keys("type"),
                "code_interpreter": _keys("type"),
                "function": _keys("name type"),
                "mcp": _keys("name server_label type"),
                "custom": _keys("name type"),
                "programmatic_tool_calling": _keys("type"),
                "apply_patch": _keys("type"),
                "shell": _keys("type"),
            },
        ),
        (
            "prompt",
            {
                None: _keys("id variables version"),
            },
        ),
        (
            "conversation",
            {
                None: _keys("id"),
            },
        ),
    ),
}

"""(path, fields by kind) of objects inside a body whose unknown fields OpenAI refuses, as
"Unknown parameter: 'input[1].metadata'." (code `unknown_parameter`; its answers quoted in
microsoft/agent-framework#2203, pydantic/pydantic-ai#3653, openai/codex#10834 for Responses
items, i-am-bee/beeai-framework#980 for chat's `response_format.strict`). Each object's fields
are those of its kind (the value of its `type`); under None, those of an object that leaves its
type out. An object of a kind not listed is left to the other checks. Chat messages are not
here: the API takes unknown message fields from current models (openai/openai-node#1161);
`LEGACY_MESSAGE_FIELDS` covers the models that refuse them. `tests/localbatch/test_fields.py`
derives each entry from the spec again."""

LEGACY_MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "system": _keys("content name role"),
    "developer": _keys("content name role"),
    "user": _keys("content name role"),
    "assistant": _keys("content function_call name role tool_calls"),
    "tool": _keys("content role tool_call_id"),
    "function": _keys("content name role"),
}
"""The message fields of the chat schema before Structured Outputs and audio (2023), which the
API still validates messages to older models against (`legacy_messages` in models.toml): it
answers another field with "Additional properties are not allowed ('refusal' was unexpected) -
'messages.2'" (openai/openai-node#1161, 2024-12, for gpt-3.5-turbo, gpt-4 and gpt-4-turbo, while
gpt-4o took the same request; transitive-bullshit/agentic#531 for 'id')."""

COMPLETION_DEFAULT_MAX_TOKENS = 16
"""A completions request's `max_tokens` when it gives none (the spec's default)."""

OUTPUT_CAP_BOUNDS: dict[str, dict[str, tuple[str, float | None, float | None]]] = {
    "/v1/chat/completions": {
        "max_tokens": ("integer", 1, None),
        "max_completion_tokens": ("integer", 1, None),
    }
}
"""The chat output caps' minimum, which the spec does not write but the API enforces: it
answered `max_tokens: 0` with "0 is less than the minimum of 1 - 'max_tokens'" (quoted in
henrycunh/golem issue 44, 2023); refused here in its current validation words."""

BODY_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "/v1/chat/completions": {"prompt_cache_retention": ("in_memory", "24h")},
    "/v1/responses": {
        "prompt_cache_retention": ("in_memory", "24h"),
        "truncation": ("auto", "disabled"),
    },
    "/v1/embeddings": {"encoding_format": ("float", "base64")},
}
"""The body fields whose spec schema lists their string values."""


def first_unknown(body: dict[str, object], accepted: frozenset[str]) -> str | None:
    """The first field of `body`, in the order written, that is not among `accepted`."""
    unknown = body.keys() - accepted
    return next((key for key in body if key in unknown), None) if unknown else None
