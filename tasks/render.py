"""Render Batch API request lines for one job, and count their input tokens offline.

The static part of every request (model, parameters, strict response format, system prompt)
is serialised once; a line is then `{"custom_id": ..., <static part>, <user message>}` with
the user message last, so the document text comes after everything shared (prompt caching
applies to the common prefix) and rendering a line costs one `orjson.dumps` of a string.

Input tokens are counted with tiktoken the way OpenAI's cookbook counts chat messages
(3 tokens per message, 1 per role name, 3 to prime the reply), plus the tokens of the strict
JSON schema (the API adds it to the prompt; its exact framing is not published, so this part
is an estimate) and the tokens of each image by the model's own rule (`tasks.imagetokens`,
from its `image_tokens` in the capabilities file), from the image's size in pixels, read when
the document was loaded, and `params.image_detail` (unset, i.e. `auto`, counts as `high`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from schemas.documents import Document
from schemas.job import JobSpec, template_fields
from schemas.response_format import response_format_for
from tasks.imagetokens import DEFAULT_RULE, ImageTokenRule, data_url_size
from tasks.tokens import encoding_for_model, token_counter

TOKENS_PER_MESSAGE = 3
TOKENS_PER_ROLE = 1
REPLY_PRIMING_TOKENS = 3
UNKNOWN_IMAGE_SIZE = (2048, 2048)
"""The size assumed for an image whose size cannot be read (the most any rule charges for)."""
CUSTOM_ID_DIGEST_BYTES = 16
_SENTINEL = "\x00overnight-user-content\x00"


def document_key(document_id: str) -> str:
    """The 32-hex-digit blake2b digest of a document id: the stem of its custom_ids."""
    return hashlib.blake2b(
        document_id.encode("utf-8", "surrogatepass"), digest_size=CUSTOM_ID_DIGEST_BYTES
    ).hexdigest()


def custom_id_for(document_id: str, chunk_index: int) -> str:
    """`<blake2b(document_id)>-<chunk_index>`: stable across runs, at most 64 characters."""
    return f"{document_key(document_id)}-{chunk_index}"


REDUCE_INSTRUCTIONS = (
    "The document {id} was too long to read in one request, so it was read in {n} "
    "consecutive parts, and each part got its own answer in the required JSON format. "
    "The answers follow, in order. Combine them into one answer in the same format for the "
    "whole document: merge and deduplicate lists, keep the most important items, and write "
    "every text field about the document as a whole. Use only what the answers say."
)
"""The user message of a reduce request, before the parts. Changing it changes requests:
bump `schemas.job.RENDER_VERSION` with it."""


def reduce_custom_id(document_id: str) -> str:
    """`<blake2b(document_id)>-r`: the reduce request of a split document (chunks end `-<n>`)."""
    return f"{document_key(document_id)}-r"


def reduce_user_text(document_id: str, outputs: Sequence[str]) -> str:
    """The user message of the reduce request over a document's chunk outputs, in order."""
    head = REDUCE_INSTRUCTIONS.format(id=document_id, n=len(outputs))
    parts = "".join(
        f'\n\n<part number="{i}">\n{output}\n</part>' for i, output in enumerate(outputs, 1)
    )
    return head + parts


def reduce_tokens(renderer: RequestRenderer, *, chunks: int, output_tokens: int) -> int:
    """Estimated input tokens of a reduce request over `chunks` outputs of `output_tokens`."""
    head = renderer.count(reduce_user_text("document", []))
    per_part = renderer.count(reduce_user_text("document", [""])) - head
    return renderer.request_tokens(head + chunks * (per_part + output_tokens))


def output_cap_field(model: str, endpoint: str) -> str:
    """The request field `params.max_output_tokens` is sent as, from the model's capabilities.

    `max_output_tokens` on the Responses API; on chat, `max_completion_tokens` (which every
    OpenAI model accepts, and reasoning models require) unless the capabilities file says the
    model takes `max_tokens`.
    """
    from tasks.capabilities import load_capabilities

    caps = load_capabilities().get(model)
    if caps is None:
        return "max_output_tokens" if endpoint == "/v1/responses" else "max_completion_tokens"
    return caps.output_cap_field(endpoint)


def image_rule(model: str) -> ImageTokenRule:
    """The image-token rule of a model, from the capabilities file (gpt-4o's if unknown)."""
    from tasks.capabilities import load_capabilities

    caps = load_capabilities().get(model)
    return caps.image_rule() if caps is not None else DEFAULT_RULE


def image_sizes(doc: Document) -> tuple[tuple[int, int], ...]:
    """The pixel size of each image of a document: as loaded, else read from its data URL."""
    if len(doc.image_sizes) == len(doc.images):
        return doc.image_sizes
    return tuple(data_url_size(url) or UNKNOWN_IMAGE_SIZE for url in doc.images)


def request_body(
    job: JobSpec,
    user_content: object,
    *,
    response_format: dict[str, Any] | None = None,
    cap_field: str | None = None,
) -> dict[str, Any]:
    """The body of one request of a job, the user message's content given (no tokenizer)."""
    if response_format is None:
        response_format = response_format_for(job.output_model(), job.endpoint)
    if cap_field is None:
        cap_field = output_cap_field(job.model, job.endpoint)
    p = job.params
    body: dict[str, Any] = {"model": job.model}
    if job.endpoint == "/v1/responses":
        body["max_output_tokens"] = p.max_output_tokens
        if p.temperature is not None:
            body["temperature"] = p.temperature
        if p.top_p is not None:
            body["top_p"] = p.top_p
        if p.reasoning_effort is not None:
            body["reasoning"] = {"effort": p.reasoning_effort}
        body["text"] = {"format": response_format}
        body["instructions"] = job.system_prompt
        body["input"] = [{"role": "user", "content": user_content}]
    else:
        body[cap_field] = p.max_output_tokens
        if p.temperature is not None:
            body["temperature"] = p.temperature
        if p.top_p is not None:
            body["top_p"] = p.top_p
        if p.seed is not None:
            body["seed"] = p.seed
        if p.reasoning_effort is not None:
            body["reasoning_effort"] = p.reasoning_effort
        body["response_format"] = response_format
        body["messages"] = [
            {"role": "system", "content": job.system_prompt},
            {"role": "user", "content": user_content},
        ]
    return body


class _Metadata(dict[str, str]):
    """Template metadata: a missing key renders as an empty string."""

    def __missing__(self, key: object) -> str:
        return ""


class RequestRenderer:
    """Renders request lines and counts input tokens for one job."""

    def __init__(self, job: JobSpec) -> None:
        self.job = job
        self.endpoint = job.endpoint
        self.encoding = encoding_for_model(job.model)
        self.response_format = response_format_for(job.output_model(), job.endpoint)
        self.output_cap_field = output_cap_field(job.model, job.endpoint)
        self._template = job.user_template
        self._plain_template = job.user_template == "{text}"
        self._uses_more = not template_fields(job.user_template) <= {"text", "id"}
        self._count = token_counter(self.encoding)
        self._static_body = self._body(_SENTINEL)
        head = orjson.dumps(
            {"custom_id": "", "method": "POST", "url": job.endpoint, "body": self._static_body}
        )
        marker = orjson.dumps(_SENTINEL)
        before, after = head.split(marker)
        # before = b'{"custom_id":"","method"...'; split off the custom_id value's slot.
        self._head = before.removeprefix(b'{"custom_id":""')
        self._tail = after + b"\n"
        self.static_tokens = self._static_tokens()
        self.image_rule = image_rule(job.model)
        self.image_detail = job.params.image_detail

    # -- bodies -----------------------------------------------------------------------------

    def _body(self, user_content: object) -> dict[str, Any]:
        return request_body(
            self.job,
            user_content,
            response_format=self.response_format,
            cap_field=self.output_cap_field,
        )

    def body(self, user_text: str, images: Sequence[str] = ()) -> dict[str, Any]:
        """The request body for one user message (for tests and tools; lines use `line`)."""
        return self._body(self._content(user_text, images))

    def _content(self, user_text: str, images: Sequence[str]) -> object:
        if not images:
            return user_text
        detail = self.image_detail
        if self.endpoint == "/v1/responses":
            parts: list[dict[str, Any]] = [{"type": "input_text", "text": user_text}]
            parts += [
                {"type": "input_image", "image_url": url, "detail": detail or "auto"}
                for url in images
            ]
        else:
            parts = [{"type": "text", "text": user_text}]
            image_url: dict[str, Any] = {} if detail is None else {"detail": detail}
            parts += [
                {"type": "image_url", "image_url": {"url": url, **image_url}} for url in images
            ]
        return parts

    def line(self, custom_id: str, user_text: str, images: Sequence[str] = ()) -> bytes:
        """One JSONL line (newline included) of the batch input file."""
        content = orjson.dumps(self._content(user_text, images))
        return b"".join(
            (b'{"custom_id":"', custom_id.encode("ascii"), b'"', self._head, content, self._tail)
        )

    # -- the user message -------------------------------------------------------------------

    def user_text(
        self, doc: Document, text: str, chunk_index: int = 0, chunk_count: int = 1
    ) -> str:
        """Render the user template for a document (or one chunk of it).

        Raises ValueError or TypeError when the template cannot be rendered for this document.
        """
        if self._plain_template:
            return text
        fields: dict[str, object] = {"text": text, "id": doc.document_id}
        if self._uses_more:
            fields.update(
                metadata=_Metadata(doc.metadata),
                source_uri=doc.source_uri,
                chunk_index=chunk_index,
                chunk_number=chunk_index + 1,
                chunk_count=chunk_count,
            )
        return self._template.format_map(fields)

    # -- tokens -----------------------------------------------------------------------------

    def count(self, text: str) -> int:
        """Tokens of plain text (special-token text counted as text)."""
        return self._count(text)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text."""
        count = self._count
        return [count(text) for text in texts]

    def _static_tokens(self) -> int:
        schema = self.response_format.get("json_schema", self.response_format).get("schema", {})
        system = TOKENS_PER_MESSAGE + TOKENS_PER_ROLE + self.count(self.job.system_prompt)
        user = TOKENS_PER_MESSAGE + TOKENS_PER_ROLE
        return REPLY_PRIMING_TOKENS + system + user + self.count(orjson.dumps(schema).decode())

    def image_tokens(self, sizes: Sequence[tuple[int, int]]) -> int:
        """Input tokens of images of these pixel sizes, by the model's rule and the detail."""
        detail = self.image_detail or "auto"
        return sum(self.image_rule.tokens(w, h, detail) for w, h in sizes)

    def request_tokens(self, user_tokens: int, images: Sequence[tuple[int, int]] = ()) -> int:
        """Estimated input tokens of a request whose user text has `user_tokens` tokens and
        which carries images of these pixel sizes."""
        return self.static_tokens + user_tokens + (self.image_tokens(images) if images else 0)
