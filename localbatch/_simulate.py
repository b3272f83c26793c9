"""The simulator: deterministic, schema-valid answers made from each request's own document.

Usage comes from real token counts (tiktoken). Chat bodies look like `chat.completion`
objects, Responses bodies like `response` objects, embeddings like `list` objects. Every
answer says it is simulated: `system_fingerprint` for chat, `metadata` for Responses.

The simulator cannot see: for a request with images or PDF file parts it answers from the
text parts alone (a schema-valid answer all the same, its usage counting the images by the
model's rule) and says so: `system_fingerprint = "fp_overnight_simulated_no_vision"` on chat,
`metadata.overnight_vision = "not_read"` on Responses.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import math
import operator
import random
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson

from localbatch._execution import (
    Outcome,
    WorkItem,
    http_error,
    injected,
    server_error,
    short_id,
)
from localbatch._jsongen import Document, SchemaFaker, stable_hash, violate
from localbatch._prompts import (
    CACHE_MIN_TOKENS,
    Message,
    PromptCache,
    TokenCounter,
    Visual,
    chat_messages,
    document_body,
    document_text,
    prefix_keys,
    responses_messages,
)
from localbatch._shapes import completion_cap, completion_prompts, moderation_inputs
from localbatch._text import source_name
from tasks.imagetokens import DataUrlError, data_url_size, split_data_url

log = logging.getLogger("localbatch")

SYSTEM_FINGERPRINT = "fp_overnight_simulated"
NO_VISION_FINGERPRINT = SYSTEM_FINGERPRINT + "_no_vision"
"""The fingerprint of an answer to a request with images or files the simulator did not see."""
NO_VISION_METADATA = {"overnight_vision": "not_read"}
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
_REASONING_BUDGET = {"low": 64, "medium": 192, "high": 512, "xhigh": 1024}
_EMBEDDING_DIMS = {"text-embedding-3-large": 3072}
_MAX_BREVITY = 3


@dataclass(slots=True)
class _Completion:
    text: str | None
    """None when refused."""
    finish: str
    prompt: int
    cached: int
    written: int
    completion: int
    reasoning: int
    refused: bool


def _missing(name: str) -> Outcome:
    # `param` names the field, as in OpenAI's other missing_required_parameter answers (e.g.
    # `messages[4].content[0].type`); for a missing `messages` itself only third-party copies
    # of the answer were found, not one quoted from OpenAI.
    return http_error(
        400,
        f"Missing required parameter: '{name}'.",
        type="invalid_request_error",
        code="missing_required_parameter",
        param=name,
    )


class Simulator:
    """The `simulate` executor."""

    def __init__(self, *, seed: int, cache: PromptCache | None = None) -> None:
        self.seed = seed
        self.cache = cache or PromptCache()
        self._counters: dict[str, TokenCounter] = {}
        self._fakers: dict[tuple[str, bytes], tuple[SchemaFaker, list[int]]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        return None

    def execute(self, items: Sequence[WorkItem]) -> list[Outcome]:
        return [self.run(item) for item in items]

    def run(self, item: WorkItem) -> Outcome:
        forced = injected(item)
        if forced is not None:
            return forced
        try:
            if item.url == "/v1/chat/completions":
                return self._chat(item)
            if item.url == "/v1/responses":
                return self._responses(item)
            if item.url == "/v1/embeddings":
                return self._embeddings(item)
            if item.url == "/v1/moderations":
                return self._moderations(item)
            if item.url == "/v1/completions":
                return self._completions(item)
        except Exception:
            # One odd request body (a schema no JSON can satisfy...) fails alone, not the batch.
            log.exception("simulating %s failed", item.custom_id)
            return server_error()
        return http_error(
            400, f"Unsupported URL: {item.url}", type="invalid_request_error", code=None
        )

    # -- helpers ------------------------------------------------------------------------------

    def _counter(self, model: str) -> TokenCounter:
        counter = self._counters.get(model)
        if counter is None:
            with self._lock:
                counter = self._counters.setdefault(model, TokenCounter(model))
        return counter

    def _faker(
        self, schema: dict[str, Any], counter: TokenCounter
    ) -> tuple[SchemaFaker, list[int]]:
        """The faker of a schema, and the schema's prompt tokens for this model (both cached)."""
        key = (counter.encoding.name, orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        found = self._fakers.get(key)
        if found is None:
            with self._lock:
                if len(self._fakers) > 256:
                    self._fakers.clear()
                made = (SchemaFaker(schema), counter.encode(orjson.dumps(schema).decode()))
                found = self._fakers.setdefault(key, made)
        return found

    def _answer(
        self,
        item: WorkItem,
        doc: Document,
        schema: dict[str, Any] | None,
        faker: SchemaFaker | None,
        json_mode: bool,
    ) -> str:
        """The answer text: JSON for a schema (or JSON mode), else an extractive summary."""
        if schema is not None and faker is not None:
            instance = faker.generate(doc)
            if item.fault == "schema_violation":
                instance = violate(faker.resolve(schema), instance, doc)
            text = orjson.dumps(instance).decode()
        elif json_mode:
            text = orjson.dumps({"summary": doc.summary(), "keywords": doc.topics(5)}).decode()
        else:
            # A text with no content words ("hi") has no sentence to rank: it is its own gist.
            text = doc.summary() or doc.sentences[0]
        if item.fault == "invalid_json":
            text = text[: max(1, len(text) // 2)]
            if not text.startswith("{"):
                text = "{" + text
        return text

    def _scored_tokens(
        self, item: WorkItem, tokens: list[int], top: int
    ) -> list[list[tuple[bytes, float]]]:
        """Each token's bytes and made-up but deterministic log probability, then up to
        `top - 1` less likely alternatives: what both kinds of `logprobs` are written from."""
        encoding = self._counter(item.model).encoding
        common = encoding.encode_ordinary(_COMMON_WORDS)  # the alternatives, less likely
        scored = []
        for position, token in enumerate(tokens):
            spread = stable_hash(item.key, str(position)) % 1000
            chosen = -round(spread / 4000, 6)  # the written token is the likeliest: > -0.25
            others = [t for t in common if t != token][: max(0, top - 1)]
            scored.append(
                [
                    (encoding.decode_single_token_bytes(t), logprob)
                    for t, logprob in [
                        (token, chosen),
                        *((t, round(chosen - 1.5 - k, 6)) for k, t in enumerate(others)),
                    ]
                ]
            )
        return scored

    def _logprobs(self, item: WorkItem, text: str, top: int) -> list[dict[str, Any]]:
        """Per-token log probabilities of an answer, as asked for (`logprobs`): its real tokens,
        made-up but deterministic probabilities, and `top` alternatives a token, most likely
        (the token written) first."""
        tokens = self._counter(item.model).encoding.encode_ordinary(text)
        entries = []
        for scored in self._scored_tokens(item, tokens, top):
            first, *alternatives = [
                {"token": raw.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(raw)}
                for raw, logprob in scored
            ]
            entries.append({**first, "top_logprobs": [first, *alternatives] if top else []})
        return entries

    def _reasoning(self, item: WorkItem, effort: Any, doc: Document) -> int:
        if not isinstance(effort, str) or effort not in _REASONING_BUDGET:
            return 0
        return _REASONING_BUDGET[effort] + stable_hash(doc.key, item.model) % 64

    def _complete(
        self,
        item: WorkItem,
        messages: list[Message],
        schema: dict[str, Any] | None,
        json_mode: bool,
        cap: Any,
        effort: Any,
    ) -> _Completion:
        counter = self._counter(item.model)
        prompt_tokens = counter.prompt_count(messages)
        faker: SchemaFaker | None = None
        schema_tokens: list[int] = []
        if schema is not None:
            # The API puts a structured-output schema into the prompt and bills its tokens;
            # as a shared prefix it is also cacheable.
            faker, schema_tokens = self._faker(schema, counter)
            prompt_tokens += len(schema_tokens)
        cached = written = 0
        if prompt_tokens >= CACHE_MIN_TOKENS:  # shorter prompts are never cached: skip encoding
            sequence = schema_tokens + counter.prompt(messages)[1]
            keys = prefix_keys(item.model, sequence, prompt_tokens)
            cached, written = self.cache.settle(keys, prompt_tokens)
        prompt_text = document_text(messages)
        body_text = document_body(prompt_text)
        name = source_name(prompt_text, body_text)
        if not body_text.strip() and _sees(messages):
            body_text = _unseen_text(messages)
        doc = Document(body_text, self.seed, name=name)
        if item.fault == "refusal":
            return _Completion(
                None, "stop", prompt_tokens, cached, written, counter.count(REFUSAL_TEXT), 0, True
            )
        text = self._answer(item, doc, schema, faker, json_mode)
        reasoning = self._reasoning(item, effort, doc)
        # Counted, not encoded: the tokens themselves are only needed to cut an answer.
        n_tokens = counter.count(text)
        limit = cap if isinstance(cap, int) and cap > 0 else None
        if item.fault == "length":
            limit = max(reasoning + 1, reasoning + n_tokens // 2)
        elif limit is not None:
            # A model writes to fit its budget: shorter answers (fewer, shorter items) first;
            # only a cap too small for any answer truncates.
            while reasoning + n_tokens > limit and doc.level < _MAX_BREVITY:
                doc.level += 1
                text = self._answer(item, doc, schema, faker, json_mode)
                n_tokens = counter.count(text)
        finish = "stop"
        if limit is not None and reasoning + n_tokens > limit:
            keep = max(0, limit - reasoning)
            reasoning = min(reasoning, limit)
            tokens = counter.encode(text)[:keep]
            text = counter.decode(tokens)
            n_tokens = len(tokens)
            finish = "length"
        return _Completion(
            text, finish, prompt_tokens, cached, written, n_tokens + reasoning, reasoning, False
        )

    # -- endpoints ----------------------------------------------------------------------------

    def _chat(self, item: WorkItem) -> Outcome:
        body = item.body
        messages = chat_messages(body)
        if not messages:
            return _missing("messages")
        schema, json_mode = _chat_format(body)
        forced = _forced_function(body, responses=False)
        if forced is not None:  # the call's arguments are written as its parameters ask
            schema, json_mode = forced[1], False
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        done = self._complete(item, messages, schema, json_mode, cap, body.get("reasoning_effort"))
        text, finish, prompt, cached = done.text, done.finish, done.prompt, done.cached
        completion, reasoning, refused = done.completion, done.reasoning, done.refused
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "refusal": REFUSAL_TEXT if refused else None,
            "annotations": [],
        }
        if forced is not None and not refused:
            call_id = "call_" + short_id("call:" + item.key, 24)
            function = {"name": forced[0], "arguments": text or "{}"}
            message["content"] = None
            message["tool_calls"] = [{"id": call_id, "type": "function", "function": function}]
            if finish == "stop" and body.get("tool_choice") == "required":
                finish = "tool_calls"  # a named tool_choice ends "stop", as OpenAI's do
        n = _choice_count(body)
        logprobs: dict[str, Any] | None = None
        if body.get("logprobs") is True and isinstance(message["content"], str):
            top = body.get("top_logprobs")
            entries = self._logprobs(item, message["content"], top if isinstance(top, int) else 0)
            logprobs = {"content": entries, "refusal": None}
        choices: list[dict[str, Any]] = [
            {"index": i, "message": message, "logprobs": logprobs, "finish_reason": finish}
            for i in range(n)
        ]
        completion *= n
        reasoning *= n
        result = {
            "id": "chatcmpl-" + short_id("chat:" + item.key, 29),
            "object": "chat.completion",
            "created": item.created,
            "model": item.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": reasoning,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": NO_VISION_FINGERPRINT if _sees(messages) else SYSTEM_FINGERPRINT,
        }
        return Outcome(
            status_code=200,
            body=result,
            input_tokens=prompt,
            cached_tokens=cached,
            output_tokens=completion,
            reasoning_tokens=reasoning,
        )

    def _responses(self, item: WorkItem) -> Outcome:
        body = item.body
        messages = responses_messages(body)
        if not messages:
            return _missing("input")
        schema, json_mode, text_format = _responses_format(body)
        forced = _forced_function(body, responses=True)
        if forced is not None:
            schema, json_mode = forced[1], False
        reasoning_cfg = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        effort = reasoning_cfg.get("effort") if reasoning_cfg else None
        cap = body.get("max_output_tokens")
        done = self._complete(item, messages, schema, json_mode, cap, effort)
        text, finish, prompt, cached = done.text, done.finish, done.prompt, done.cached
        completion, reasoning, refused = done.completion, done.reasoning, done.refused
        incomplete = finish == "length"
        content: list[dict[str, Any]]
        if refused:
            content = [{"type": "refusal", "refusal": REFUSAL_TEXT}]
        else:
            include = body.get("include")
            wanted = isinstance(include, list) and "message.output_text.logprobs" in include
            top = body.get("top_logprobs")
            entries = (
                self._logprobs(item, text or "", top if isinstance(top, int) else 0)
                if wanted
                else []
            )
            content = [
                {"type": "output_text", "text": text or "", "annotations": [], "logprobs": entries}
            ]
        output: list[dict[str, Any]] = []
        if reasoning:
            output.append(
                {"id": "rs_" + short_id("rs:" + item.key, 40), "type": "reasoning", "summary": []}
            )
        if forced is not None and not refused:
            output.append(
                {
                    "id": "fc_" + short_id("fc:" + item.key, 40),
                    "type": "function_call",
                    "status": "incomplete" if incomplete else "completed",
                    "call_id": "call_" + short_id("call:" + item.key, 24),
                    "name": forced[0],
                    "arguments": text or "{}",
                }
            )
        else:
            output.append(
                {
                    "id": "msg_" + short_id("msg:" + item.key, 40),
                    "type": "message",
                    "status": "incomplete" if incomplete else "completed",
                    "role": "assistant",
                    "content": content,
                }
            )
        raw_metadata = body.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        result = {
            "id": "resp_" + short_id("resp:" + item.key, 40),
            "object": "response",
            "created_at": item.created,
            "status": "incomplete" if incomplete else "completed",
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": cap if isinstance(cap, int) else None,
            "model": item.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": effort, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": text_format},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {
                    "cached_tokens": cached,
                    "cache_write_tokens": done.written,
                },
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": reasoning},
                "total_tokens": prompt + completion,
            },
            "metadata": {
                **metadata,
                "overnight_executor": "simulate",
                **(NO_VISION_METADATA if _sees(messages) else {}),
            },
        }
        if isinstance(body.get("user"), str):
            result["user"] = body["user"]
        return Outcome(
            status_code=200,
            body=result,
            input_tokens=prompt,
            cached_tokens=cached,
            output_tokens=completion,
            reasoning_tokens=reasoning,
        )

    def _embeddings(self, item: WorkItem) -> Outcome:
        body = item.body
        raw = body.get("input")
        if isinstance(raw, str):
            inputs: list[Any] = [raw]
        elif isinstance(raw, list) and raw:
            inputs = raw if not all(isinstance(x, int) for x in raw) else [raw]
        else:
            return _missing("input")
        dims = body.get("dimensions")
        if not isinstance(dims, int) or dims < 1:
            dims = _EMBEDDING_DIMS.get(item.model, 1536)
        counter = self._counter(item.model)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        total = 0
        for index, one in enumerate(inputs):
            if isinstance(one, str):
                text = one
                total += counter.count(one)
            elif isinstance(one, list):
                text = " ".join(str(t) for t in one)
                total += len(one)
            else:
                return http_error(
                    400, "Invalid 'input'.", type="invalid_request_error", code="invalid_value"
                )
            vector = _embed(text, dims, self.seed)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        result = {
            "object": "list",
            "data": data,
            "model": item.model,
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }
        return Outcome(status_code=200, body=result, input_tokens=total)

    def _completions(self, item: WorkItem) -> Outcome:
        """A `text_completion`: for each prompt, `n` choices continuing it with its gist (an
        extractive summary), cut at `max_tokens` (16 when not given) as OpenAI cuts."""
        body = item.body
        prompts = completion_prompts(body.get("prompt"))
        if prompts is None:
            return _missing("prompt")
        counter = self._counter(item.model)
        cap = completion_cap(body)
        n = _choice_count(body)
        top = body.get("logprobs")
        echo = body.get("echo") is True
        choices: list[dict[str, Any]] = []
        prompt_tokens = completion_tokens = 0
        for prompt in prompts:
            if isinstance(prompt, str):
                text, tokens_in = prompt, counter.count(prompt)
            else:
                text, tokens_in = _decoded(counter, prompt), len(prompt)
            prompt_tokens += tokens_in
            doc = Document(document_body(text), self.seed)
            answer = " " + (doc.summary() or doc.sentences[0]) if text.strip() else ""
            tokens = counter.encode(answer)
            finish = "stop"
            if len(tokens) > cap:
                tokens, finish = tokens[:cap], "length"
                answer = counter.decode(tokens)
            for _ in range(n):
                completion_tokens += len(tokens)
                entry = {
                    "text": text + answer if echo else answer,
                    "index": len(choices),
                    "logprobs": None,
                    "finish_reason": finish,
                }
                if isinstance(top, int) and not isinstance(top, bool):
                    entry["logprobs"] = self._legacy_logprobs(
                        item, tokens, top, len(text) if echo else 0
                    )
                choices.append(entry)
        result = {
            "id": "cmpl-" + short_id("cmpl:" + item.key, 29),
            "object": "text_completion",
            "created": item.created,
            "model": item.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        return Outcome(
            status_code=200,
            body=result,
            input_tokens=prompt_tokens,
            output_tokens=completion_tokens,
        )

    def _legacy_logprobs(
        self, item: WorkItem, tokens: list[int], top: int, offset: int
    ) -> dict[str, Any]:
        """The completions endpoint's `logprobs` object: each token written, its log
        probability, `top` likeliest alternatives (the token itself first), and its offset."""
        texts: list[str] = []
        chosen: list[float] = []
        alternatives: list[dict[str, float]] = []
        offsets: list[int] = []
        for scored in self._scored_tokens(item, tokens, top):
            words = [(raw.decode("utf-8", "replace"), logprob) for raw, logprob in scored]
            texts.append(words[0][0])
            chosen.append(words[0][1])
            found: dict[str, float] = {}
            for word, logprob in words if top else []:
                found.setdefault(word, logprob)
            alternatives.append(found)
            offsets.append(offset)
            offset += len(words[0][0])
        return {
            "tokens": texts,
            "token_logprobs": chosen,
            "top_logprobs": alternatives,
            "text_offset": offsets,
        }

    def _moderations(self, item: WorkItem) -> Outcome:
        """A `moderation` object: one result a string, one for an array of text and image
        objects (read as one input); scores from the words of each category's cue list."""
        shapes = moderation_inputs(item.body.get("input"))
        if shapes is None:
            return _missing("input")
        strings, objects = shapes
        omni = item.model.startswith("omni-")
        inputs: list[tuple[str, bool]] = [(text, False) for text in strings]
        if objects:
            text = " ".join(str(o.get("text") or "") for o in objects if o.get("type") == "text")
            inputs = [(text, any(o.get("type") == "image_url" for o in objects))]
        results = [_moderation_result(text, image, omni, self.seed) for text, image in inputs]
        body = {
            "id": "modr-" + short_id("modr:" + item.key, 24),
            "model": item.model,
            "results": results,
        }
        return Outcome(status_code=200, body=body)


_MODERATION_CUES: dict[str, tuple[str, ...]] = {
    "harassment": ("idiot", "stupid", "loser", "shut up", "worthless"),
    "harassment/threatening": ("i will hurt you", "you will regret", "watch your back"),
    "hate": ("subhuman", "vermin", "go back to your country"),
    "hate/threatening": ("exterminate them", "wipe them out"),
    "illicit": ("how to shoplift", "launder money", "counterfeit", "steal a car"),
    "illicit/violent": ("build a bomb", "make a weapon", "buy a gun illegally"),
    "self-harm": ("hurt myself", "self-harm", "suicide", "kill myself"),
    "self-harm/intent": ("i want to die", "kill myself", "end my life"),
    "self-harm/instructions": ("how to kill myself", "ways to hurt myself"),
    "sexual": ("explicit sex", "porn", "nude"),
    "sexual/minors": ("sexual minor",),
    "violence": ("kill", "murder", "stab", "shoot", "attack them", "beat them"),
    "violence/graphic": ("gore", "dismember", "blood everywhere", "mutilat"),
}
"""A few words a category's content tends to use: a text with one scores high for it. The
simulator reads no meaning: these make flagged answers possible and deterministic."""
_IMAGE_CATEGORIES = frozenset(
    ("self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence",
     "violence/graphic")
)  # fmt: skip
"""The categories OpenAI's spec lets an image count for (`category_applied_input_types`)."""


def _moderation_result(text: str, image: bool, omni: bool, seed: int) -> dict[str, Any]:
    lowered = text.lower()
    categories: dict[str, bool | None] = {}
    scores: dict[str, float] = {}
    applied: dict[str, list[str]] = {}
    for name, cues in _MODERATION_CUES.items():
        if not omni and name.startswith("illicit"):  # the text models have no such category
            categories[name], scores[name], applied[name] = None, 0.0, []
            continue
        spread = stable_hash(str(seed), name, text) % 1000 / 1000
        hit = any(cue in lowered for cue in cues)
        score = round(0.55 + 0.4 * spread if hit else 1e-6 + 4e-4 * spread, 6)
        categories[name], scores[name] = score >= 0.5, score
        kinds = ["text"] if text else []
        applied[name] = [*kinds, "image"] if image and name in _IMAGE_CATEGORIES else kinds
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


def _choice_count(body: dict[str, Any]) -> int:
    """The choices a chat or completions request asks for (`n`, 1 to 128)."""
    n = body.get("n")
    return min(n, 128) if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def _decoded(counter: TokenCounter, tokens: list[int]) -> str:
    """A token-array prompt as text; ids outside the vocabulary read as nothing."""
    try:
        return counter.decode(tokens)
    except (KeyError, ValueError, OverflowError):
        return ""


def _sees(messages: list[Message]) -> bool:
    """True when a request has images or files: what the simulator cannot look at."""
    return any(message.visuals for message in messages)


def _unseen_text(messages: list[Message]) -> str:
    """What the simulator can say of a request that is only images or files: what they are.

    A scanned page or a photo has no text to answer from; its answer says what it was
    given ("A 1275 × 1650 PNG image") and that it was not looked at, rather than passing
    for a summary of an empty document.
    """
    described = [_visual_name(v) for message in messages for v in message.visuals]
    first = described[0] if len(described) == 1 else f"{len(described)} images or files"
    listed = "" if len(described) == 1 else " ".join(f"{d}." for d in described) + " "
    return (
        f"{first}.\n\n{listed}Its content was not read, as the local Batch API answers from "
        "the text of a request and does not look at images or files."
    )


def _visual_name(visual: Visual) -> str:
    """ "A 640 × 480 PNG image", "An image", "A PDF file"."""
    if visual.kind != "image":
        return "A PDF file"
    kind = "image"
    with contextlib.suppress(DataUrlError):  # a remote URL, or a malformed one: "an image"
        mime, _ = split_data_url(visual.data)
        if mime.startswith("image/") and len(mime) > len("image/"):
            kind = f"{mime.removeprefix('image/').removeprefix('x-').upper()} image"
    size = data_url_size(visual.data)
    if size:
        return f"A {size[0]} × {size[1]} {kind}"
    return "An image" if kind == "image" else f"A {kind}"


_COMMON_WORDS = " the a and of to in is that it for on with as was at by an be this"


def _called_functions(body: dict[str, Any], *, responses: bool) -> set[str]:
    """Names of the functions the conversation already shows the model calling: chat's assistant
    `tool_calls` (and legacy `function_call`), or the Responses API's `function_call` input items."""
    names: set[str] = set()
    items = body.get("input") if responses else body.get("messages")
    if not isinstance(items, list):
        return names
    for item in items:
        if not isinstance(item, dict):
            continue
        if responses:
            if item.get("type") == "function_call" and isinstance(item.get("name"), str):
                names.add(item["name"])
            continue
        if item.get("role") != "assistant":
            continue
        calls = item.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.add(function["name"])
        legacy = item.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
            names.add(legacy["name"])
    return names


def _forced_function(body: dict[str, Any], *, responses: bool) -> tuple[str, dict[str, Any]] | None:
    """(name, parameters schema) of the function a request forces the model to call: the one
    `tool_choice` names, or for `"required"` the first the conversation has not called yet (the
    last listed once every one has been called, so an agent loop that answers through a final
    tool, listed after its working tools, ends); None when the model may answer text."""
    choice = body.get("tool_choice")
    tools = body.get("tools")
    if choice in (None, "auto", "none") or not isinstance(tools, list):
        return None
    functions: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        spec = tool if responses else tool.get("function")
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            parameters = spec.get("parameters")
            functions[spec["name"]] = (
                parameters
                if isinstance(parameters, dict) and parameters
                else {"type": "object", "properties": {}}  # a function without parameters
            )
    if not functions:
        return None
    if choice == "required":
        called = _called_functions(body, responses=responses)
        name = next((n for n in functions if n not in called), list(functions)[-1])
    elif isinstance(choice, dict) and choice.get("type") == "function":
        named = choice.get("name") if responses else (choice.get("function") or {}).get("name")
        if named not in functions:
            return None
        name = named
    else:
        return None
    return name, functions[name]


def _chat_format(body: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None, False
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            return spec["schema"], False
        return None, True
    return None, fmt.get("type") == "json_object"


def _responses_format(body: dict[str, Any]) -> tuple[dict[str, Any] | None, bool, dict[str, Any]]:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None, False, {"type": "text"}
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return fmt["schema"], False, fmt
    return None, fmt.get("type") == "json_object", fmt


_EMBED_WORDS, _EMBED_NOISE, _EMBED_SHARED = 0.8, 0.35, 0.45
"""The weights of an embedding's three parts (see `_embed`): unrelated texts come out at a
cosine similarity of about 0.2, as real embedding models' do, not 0."""


def _unit(vector: list[float]) -> list[float]:
    norm = math.hypot(*vector)
    return [v / norm for v in vector] if norm else vector


@functools.lru_cache(maxsize=64)
def _shared_direction(dims: int, seed: int) -> tuple[float, ...]:
    """The direction every vector of `dims` dimensions leans to, weighted already."""
    rng = random.Random(stable_hash(str(seed), "shared-direction", str(dims)))
    return tuple(_EMBED_SHARED * v for v in _unit([rng.gauss(0.0, 1.0) for _ in range(dims)]))


@functools.lru_cache(maxsize=64)
def _noise_values(dims: int) -> tuple[float, ...]:
    """The noise part's value for each byte of the hash, weighted (5461.25 is the mean of
    (byte - 127.5)² over the 256 bytes: the noise part comes out a unit vector's share)."""
    scale = _EMBED_NOISE / math.sqrt(dims * 5461.25)
    return tuple(scale * (b - 127.5) for b in range(256))


def _embed(text: str, dims: int, seed: int) -> list[float]:
    """A dense unit vector: texts sharing words point in similar directions.

    The words part is feature hashing (each word adds ±1 in two hashed slots), so shared words
    make vectors similar; a dense pseudo-random part drawn from the text (uniform bytes of a
    hash: as dense as gaussian noise once summed, and much cheaper), and a direction shared by
    every vector of these dimensions (real embeddings all lean one way), make it look like a
    model's: every value non-zero, unrelated texts mildly similar. The dense parts are summed
    by C loops (`map`): ~0.1 ms a 1,536-dimension vector.
    """
    slots: dict[int, float] = {}
    for word in (text.lower().split() or [""])[:2048]:
        h = stable_hash(str(seed), word)
        for k in range(2):
            slot = (h >> (k * 20)) % dims
            slots[slot] = slots.get(slot, 0.0) + (1.0 if (h >> (40 + k)) & 1 else -1.0)
    digest = hashlib.shake_128(f"{seed}:noise:{text}".encode()).digest(dims)
    shared, noise_of_byte = _shared_direction(dims, seed), _noise_values(dims)
    vector = list(map(operator.add, shared, map(noise_of_byte.__getitem__, digest)))
    words = math.hypot(*slots.values())
    if words:  # zero when the words' signs cancel out: the other parts remain
        for slot, count in slots.items():
            vector[slot] += _EMBED_WORDS * count / words
    return list(map(round, map((1.0 / math.hypot(*vector)).__mul__, vector), repeat(7, dims)))


def set_cached_usage(outcome: Outcome, url: str, cached: int, written: int) -> None:
    """Write a prompt's cache result into an answer built before it was known (a pool's)."""
    usage = outcome.body.get("usage") if outcome.body is not None else None
    if not isinstance(usage, dict):
        return
    outcome.cached_tokens = cached
    if url == "/v1/chat/completions":
        usage["prompt_tokens_details"]["cached_tokens"] = cached
    elif url == "/v1/responses":
        usage["input_tokens_details"] = {"cached_tokens": cached, "cache_write_tokens": written}
