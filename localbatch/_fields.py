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
}
"""(type, minimum, maximum) of the body fields whose spec schema bounds a number. Left out:
`seed` (its bounds are the int64 range) and the Responses `max_output_tokens` minimum, which
`tasks.capabilities` checks for the job preflight and the server alike."""

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
