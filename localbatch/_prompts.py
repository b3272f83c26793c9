"""Read request bodies: the messages, the document text, the token counts and the cache hits.

Token counts follow OpenAI's cookbook for chat: 3 tokens per message (plus its role and
content, plus 1 for a `name`) and 3 more to prime the reply. The Responses API is counted the
same way, with `instructions` as a system message. Prompt caching is modelled as OpenAI
describes it: prompts of at least 1,024 tokens, cached in 128-token steps, hit when an earlier
request on this server had the same prefix.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import tiktoken

from localbatch._text import document_body
from tasks.tokens import encoding_for_model, token_counter

__all__ = [
    "Message",
    "PromptCache",
    "TokenCounter",
    "chat_messages",
    "content_text",
    "document_body",
    "document_text",
    "responses_messages",
]

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 85
"""Tokens charged for an image part (OpenAI's low-detail price; we never look at the image)."""
CACHE_MIN_TOKENS = 1024
CACHE_STEP = 128

_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_IMAGE_PART_TYPES = frozenset({"image_url", "input_image"})


@dataclass(slots=True)
class Message:
    role: str
    text: str
    name: str | None = None
    images: int = 0


def content_text(content: Any) -> tuple[str, int]:
    """The text of a message's content (a string or a list of parts) and its image count."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    images = 0
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            kind = part.get("type")
            if kind in _TEXT_PART_TYPES and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in _IMAGE_PART_TYPES:
                images += 1
            elif kind == "refusal" and isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
    return "\n".join(texts), images


def chat_messages(body: dict[str, Any]) -> list[Message] | None:
    """The messages of a chat completion request, or None if `messages` is not a list."""
    raw = body.get("messages")
    if not isinstance(raw, list):
        return None
    out: list[Message] = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        text, images = content_text(item.get("content"))
        name = item.get("name")
        out.append(
            Message(
                role=str(item.get("role", "user")),
                text=text,
                name=name if isinstance(name, str) else None,
                images=images,
            )
        )
    return out


def responses_messages(body: dict[str, Any]) -> list[Message] | None:
    """The messages of a Responses API request, or None if `input` is missing or malformed."""
    out: list[Message] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        out.append(Message(role="system", text=instructions))
    raw = body.get("input")
    if isinstance(raw, str):
        out.append(Message(role="user", text=raw))
        return out
    if not isinstance(raw, list):
        return None
    for item in raw:
        if not isinstance(item, dict):
            return None
        if "content" in item:
            text, images = content_text(item.get("content"))
            out.append(Message(role=str(item.get("role", "user")), text=text, images=images))
        elif isinstance(item.get("output"), str):
            out.append(Message(role="tool", text=item["output"]))
    return out


def document_text(messages: list[Message]) -> str:
    """The user message the simulator answers about: the last one (else the last message).

    The document itself is inside it; `document_body` finds it (between `<document>` tags, or
    after the instruction paragraph).
    """
    for message in reversed(messages):
        if message.role == "user" and message.text:
            return message.text
    return messages[-1].text if messages else ""


class TokenCounter:
    """Counts tokens with one model's tiktoken encoding; caches the role names."""

    def __init__(self, model: str) -> None:
        self.encoding: tiktoken.Encoding = encoding_for_model(model)
        self._count = token_counter(self.encoding)
        self._roles: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text) if text else []

    def count(self, text: str) -> int:
        return self._count(text) if text else 0

    def decode(self, tokens: list[int]) -> str:
        return self.encoding.decode(tokens)

    def role(self, role: str) -> list[int]:
        tokens = self._roles.get(role)
        if tokens is None:
            tokens = self._roles[role] = self.encode(role)
        return tokens

    def prompt_count(self, messages: list[Message]) -> int:
        """The cookbook token count of a prompt (what `prompt` counts, without the tokens)."""
        total = REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE + len(self.role(message.role)) + self.count(message.text)
            total += IMAGE_TOKENS * message.images
            if message.name:
                total += TOKENS_PER_NAME + self.count(message.name)
        return total

    def prompt(self, messages: list[Message]) -> tuple[int, list[int]]:
        """The cookbook token count of a prompt, and its tokens in order (for caching)."""
        total = REPLY_PRIMING
        sequence: list[int] = []
        for message in messages:
            role = self.role(message.role)
            content = self.encode(message.text)
            total += TOKENS_PER_MESSAGE + len(role) + len(content)
            total += IMAGE_TOKENS * message.images
            sequence.extend(role)
            sequence.extend(content)
            if message.name:
                name = self.encode(message.name)
                total += TOKENS_PER_NAME + len(name)
                sequence.extend(name)
        return total, sequence


class PromptCache:
    """Which prompt prefixes this server has seen, per model; bounded, least recent dropped."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def hit(self, model: str, tokens: list[int], prompt_tokens: int) -> tuple[int, int]:
        """Return (cached, written) tokens for this prompt, then remember its prefixes."""
        if prompt_tokens < CACHE_MIN_TOKENS or len(tokens) < CACHE_MIN_TOKENS:
            return 0, 0
        digest = hashlib.blake2b(model.encode(), digest_size=16)
        keys: list[tuple[int, bytes]] = []
        start = 0
        for end in range(CACHE_MIN_TOKENS, len(tokens) + 1, CACHE_STEP):
            digest.update(array("I", tokens[start:end]).tobytes())
            keys.append((end, digest.copy().digest()))
            start = end
        cached = 0
        with self._lock:
            for end, key in keys:
                if key in self._seen:
                    cached = end
                    self._seen.move_to_end(key)
                else:
                    self._seen[key] = None
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        longest = keys[-1][0] if keys else 0
        return min(cached, prompt_tokens), longest - cached
