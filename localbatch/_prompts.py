"""Read request bodies: the messages, the document text, the token counts and the cache hits.

Token counts follow OpenAI's cookbook for chat: 3 tokens per message (plus its role and
content, plus 1 for a `name`) and 3 more to prime the reply. An image costs what the model's
own rule says for its size and `detail` (`tasks.imagetokens`, from the capabilities file:
the very figures the job's estimate uses); an image whose size cannot be read (a remote URL)
is counted at 2048×2048. A PDF file part costs, as OpenAI describes PDF input, each page's
text plus the image of the page (at the size overnight renders scanned pages). The Responses API is counted the
same way, with `instructions` as a system message. Prompt caching is modelled as OpenAI
describes it: prompts of at least 1,024 tokens, cached in 128-token steps, hit when an earlier
request on this server had the same prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import tiktoken

from localbatch._text import document_body
from tasks.imagetokens import ImageDetail, ImageTokenRule, data_url_size, split_data_url
from tasks.tokens import encoding_for_model, token_counter

__all__ = [
    "Message",
    "PromptCache",
    "TokenCounter",
    "Visual",
    "chat_messages",
    "content_text",
    "document_body",
    "document_text",
    "responses_messages",
]

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
UNKNOWN_IMAGE_SIZE = (2048, 2048)
CACHE_MIN_TOKENS = 1024
CACHE_STEP = 128

_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_IMAGE_PART_TYPES = frozenset({"image_url", "input_image"})
_FILE_PART_TYPES = frozenset({"file", "input_file"})


@dataclass(slots=True, frozen=True)
class Visual:
    """An image or a file part of a message, which the simulator cannot look at."""

    kind: Literal["image", "file"]
    data: str
    """The image URL (a `data:` URL or a remote one), or a file part's `file_data`."""
    detail: ImageDetail = "auto"


@dataclass(slots=True)
class Message:
    role: str
    text: str
    name: str | None = None
    visuals: tuple[Visual, ...] = ()


def _visual(part: dict[str, Any]) -> Visual | None:
    kind = part.get("type")
    if kind in _IMAGE_PART_TYPES:
        raw = part.get("image_url")
        url = raw.get("url") if isinstance(raw, dict) else raw
        detail = (raw if isinstance(raw, dict) else part).get("detail")
        return Visual(
            "image",
            url if isinstance(url, str) else "",
            detail if detail in ("low", "high") else "auto",
        )
    if kind in _FILE_PART_TYPES:
        holder = part.get("file") if kind == "file" else part
        data = holder.get("file_data") if isinstance(holder, dict) else None
        return Visual("file", data if isinstance(data, str) else "")
    return None


def content_text(content: Any) -> tuple[str, tuple[Visual, ...]]:
    """The text of a message's content (a string or a list of parts), and its images/files."""
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        return "", ()
    texts: list[str] = []
    visuals: list[Visual] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            kind = part.get("type")
            if kind in _TEXT_PART_TYPES and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "refusal" and isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
            elif (visual := _visual(part)) is not None:
                visuals.append(visual)
    return "\n".join(texts), tuple(visuals)


def chat_messages(body: dict[str, Any]) -> list[Message] | None:
    """The messages of a chat completion request, or None if `messages` is not a list."""
    raw = body.get("messages")
    if not isinstance(raw, list):
        return None
    out: list[Message] = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        text, visuals = content_text(item.get("content"))
        name = item.get("name")
        out.append(
            Message(
                role=str(item.get("role", "user")),
                text=text,
                name=name if isinstance(name, str) else None,
                visuals=visuals,
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
    prompt = body.get("prompt")
    if raw is None and isinstance(prompt, dict):
        # A stored prompt (`prompt.id`) stands in for `input`, which the spec makes optional.
        # Its text lives on OpenAI's side: the simulator answers about its variables.
        variables = prompt.get("variables")
        pairs = variables.items() if isinstance(variables, dict) else ()
        text = "\n".join(f"{name}: {value}" for name, value in pairs if isinstance(value, str))
        out.append(Message(role="user", text=text or f"Stored prompt {prompt.get('id')}"))
        return out
    if isinstance(raw, str):
        out.append(Message(role="user", text=raw))
        return out
    if not isinstance(raw, list):
        return None
    for item in raw:
        if not isinstance(item, dict):
            return None
        if "content" in item:
            text, visuals = content_text(item.get("content"))
            out.append(Message(role=str(item.get("role", "user")), text=text, visuals=visuals))
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

    def __init__(self, model: str, image_rule: ImageTokenRule | None = None) -> None:
        from tasks.render import image_rule as model_image_rule

        self.encoding: tiktoken.Encoding = encoding_for_model(model)
        self._count = token_counter(self.encoding)
        self._roles: dict[str, list[int]] = {}
        self.image_rule = image_rule or model_image_rule(model)

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

    def visual_tokens(self, visuals: tuple[Visual, ...]) -> int:
        """The input tokens of a message's images and PDF files, by the model's rule."""
        total = 0
        for visual in visuals:
            if visual.kind == "image":
                width, height = data_url_size(visual.data) or UNKNOWN_IMAGE_SIZE
                total += self.image_rule.tokens(width, height, visual.detail)
            else:
                total += self.file_tokens(visual.data)
        return total

    def file_tokens(self, file_data: str) -> int:
        """A PDF file part: each page's text and the image of the page (0 if unreadable)."""
        from tasks.sources import pdf_pages

        try:
            _, payload = split_data_url(file_data)
            pages = pdf_pages(base64.b64decode(payload, validate=True))
        except (ValueError, binascii.Error):
            return 0
        rule = self.image_rule
        return sum(self.count(text) + rule.tokens(w, h, "high") for text, (w, h) in pages)

    def prompt_count(self, messages: list[Message]) -> int:
        """The cookbook token count of a prompt (what `prompt` counts, without the tokens)."""
        total = REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE + len(self.role(message.role)) + self.count(message.text)
            if message.visuals:
                total += self.visual_tokens(message.visuals)
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
            if message.visuals:
                total += self.visual_tokens(message.visuals)
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
        return self.settle(prefix_keys(model, tokens, prompt_tokens), prompt_tokens)

    def settle(self, keys: list[tuple[int, bytes]], prompt_tokens: int) -> tuple[int, int]:
        """(cached, written) for a prompt of these prefix keys; remembers them.

        Requests must be settled in the order they ran, so a simulator pool's workers compute
        the keys (`prefix_keys`) and the server settles them line by line.
        """
        if not keys:
            return 0, 0
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
        longest = keys[-1][0]
        return min(cached, prompt_tokens), longest - cached


def prefix_keys(model: str, tokens: list[int], prompt_tokens: int) -> list[tuple[int, bytes]]:
    """(end, digest) of each cacheable prefix of a prompt: 1,024 tokens, then 128-token steps."""
    if prompt_tokens < CACHE_MIN_TOKENS or len(tokens) < CACHE_MIN_TOKENS:
        return []
    digest = hashlib.blake2b(model.encode(), digest_size=16)
    keys: list[tuple[int, bytes]] = []
    start = 0
    for end in range(CACHE_MIN_TOKENS, len(tokens) + 1, CACHE_STEP):
        digest.update(array("I", tokens[start:end]).tobytes())
        keys.append((end, digest.copy().digest()))
        start = end
    return keys
