"""Split long documents into token-bounded chunks at paragraph or sentence boundaries.

The splitting is done by semantic-text-splitter (Rust, with tiktoken's own encodings built
in, so it works offline): it cuts at the largest semantic unit that fits — paragraphs, then
sentences, then words — and repeats up to `overlap` tokens of the previous chunk at the start
of the next. Token counts are those of our tiktoken encodings (same vocabulary).
"""

from __future__ import annotations

from functools import lru_cache

from semantic_text_splitter import TextSplitter

from tasks.tokens import encoding_name_for

# semantic-text-splitter picks its tokenizer by model name; one model per encoding is enough.
_MODEL_FOR_ENCODING = {"o200k_base": "gpt-4o", "cl100k_base": "gpt-4"}


@lru_cache(maxsize=32)
def _splitter(encoding: str, capacity: int, overlap: int) -> TextSplitter:
    return TextSplitter.from_tiktoken_model(
        _MODEL_FOR_ENCODING[encoding], capacity, overlap=min(overlap, capacity - 1)
    )


def split_text(text: str, *, model: str, max_tokens: int, overlap_tokens: int = 0) -> list[str]:
    """Split text into chunks of at most `max_tokens` tokens, overlapping by up to `overlap_tokens`.

    Chunks end at paragraph boundaries where they can, else at sentence, then word boundaries;
    surrounding whitespace is trimmed.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    splitter = _splitter(encoding_name_for(model), max_tokens, overlap_tokens)
    return [chunk for chunk in splitter.chunks(text) if chunk]
