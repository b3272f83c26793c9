"""Split long documents into token-bounded chunks at paragraph or sentence boundaries.

The splitting is done by semantic-text-splitter (Rust, with tiktoken's own encodings built
in, so it works offline): it cuts at the largest semantic unit that fits — paragraphs, then
sentences, then words — and repeats up to `overlap` tokens of the previous chunk at the start
of the next. Token counts are those of our tiktoken encodings (same vocabulary).

Runs of text with no whitespace longer than a chunk could hold in bytes (a file of one
letter, minified JSON, base64, a CJK paragraph with no line break) are cut here instead. The
splitter handles them in time quadratic in the run's length: for every chunk it tokenizes the
run's first "word" or "sentence", which is the whole rest of the run, then binary-searches
characters, tokenizing a chunk-sized single BPE piece at each step (6 MB of `x` took minutes).
Here such a run is cut into short pieces, each ending at punctuation where it has some, each
counted once; the pieces are packed into chunks by their counts and every chunk is checked by
a real count. The text around the runs still goes to the splitter; a chunk that ends where a
run starts is joined with the next one when the two fit together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from semantic_text_splitter import TextSplitter

from tasks.tokens import encoding_name_for, get_encoding, token_counter

# semantic-text-splitter picks its tokenizer by model name; one model per encoding is enough.
_MODEL_FOR_ENCODING = {"o200k_base": "gpt-4o", "cl100k_base": "gpt-4"}

WINDOW_CHARS_PER_TOKEN = 64
WINDOW_MIN_CHARS = 1 << 16
"""The splitter is given at most this much text at a time (see `_splitter_spans`): its own
work per chunk grows with the length of the text after the chunk (on text with no sentence
or line breaks, 4 MB took 7 s in chunks of 3,000 tokens)."""

PIECE_CHARS = 512
"""The longest piece a long run is cut into (fewer for small budgets: see `_piece_chars`)."""

# Where a piece of a run may end, best first: after a separator (a comma or a full stop not
# inside a number, a semicolon, a closing bracket), then after any other punctuation.
_SEPARATOR_END = re.compile(r"[;)\]}!?。！？，；、]|[.,](?!\d)")
_PUNCTUATION_END = re.compile(r"[^\w\s]")


@lru_cache(maxsize=32)
def _splitter(encoding: str, capacity: int, overlap: int) -> TextSplitter:
    return TextSplitter.from_tiktoken_model(
        _MODEL_FOR_ENCODING[encoding], capacity, overlap=min(overlap, capacity - 1)
    )


@lru_cache(maxsize=32)
def _long_run(min_chars: int) -> re.Pattern[str]:
    # Anchored at the run's start, so each run is scanned once (linear in the text).
    return re.compile(rf"(?<!\S)\S{{{min_chars},}}")


def split_text(text: str, *, model: str, max_tokens: int, overlap_tokens: int = 0) -> list[str]:
    """Split text into chunks of at most `max_tokens` tokens, overlapping by up to `overlap_tokens`.

    Chunks end at paragraph boundaries where they can, else at sentence, then word boundaries;
    surrounding whitespace is trimmed. A run without whitespace longer than `max_tokens`
    characters is cut at punctuation, else anywhere (see the module docstring).
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    encoding = encoding_name_for(model)
    splitter = _splitter(encoding, max_tokens, overlap_tokens)
    # A run of at most max_tokens characters fits the budget in bytes, so the splitter never
    # needs to look inside it; only longer runs take the path below.
    runs = [(m.start(), m.end()) for m in _long_run(max_tokens + 1).finditer(text)]
    if not runs:
        window = _window_chars(max_tokens)
        if len(text) <= window:
            return [chunk for chunk in splitter.chunks(text) if chunk]
        return [text[a:b] for a, b in _splitter_spans(text, 0, len(text), splitter, window)]
    count = token_counter(get_encoding(encoding))
    spans = list(_spans(text, runs, splitter, count, max_tokens, overlap_tokens))
    return [text[start:end] for start, end in _join_at_seams(text, spans, count, max_tokens)]


@dataclass(slots=True)
class _Span:
    start: int
    end: int
    segment: int
    """Which stretch of the text (a long run, or the text between two) the span came from."""


def _spans(
    text: str,
    runs: list[tuple[int, int]],
    splitter: TextSplitter,
    count: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int,
) -> Iterator[_Span]:
    """The chunks of each stretch of the text in order, as offsets into the text."""
    cursor = 0
    segment = 0
    window = _window_chars(max_tokens)
    for run_start, run_end in runs:
        if text[cursor:run_start].strip():
            for start, end in _splitter_spans(text, cursor, run_start, splitter, window):
                yield _Span(start, end, segment)
            segment += 1
        for start, end in _run_chunks(text, run_start, run_end, count, max_tokens, overlap_tokens):
            yield _Span(start, end, segment)
        segment += 1
        cursor = run_end
    if text[cursor:].strip():
        for start, end in _splitter_spans(text, cursor, len(text), splitter, window):
            yield _Span(start, end, segment)


def _window_chars(max_tokens: int) -> int:
    return max(WINDOW_MIN_CHARS, WINDOW_CHARS_PER_TOKEN * max_tokens)


def _splitter_spans(
    text: str, start: int, end: int, splitter: TextSplitter, window: int
) -> Iterator[tuple[int, int]]:
    """The splitter's chunks of text[start:end], as offsets, found a window at a time.

    Each window's chunks are kept but its last (which the window's end may have cut short);
    the next window starts where that one did. A window too short for two chunks grows.
    """
    at = start
    while True:
        stop = min(end, at + window)
        spans = [
            (at + offset, at + offset + len(chunk))
            for offset, chunk in splitter.chunk_indices(text[at:stop])
            if chunk
        ]
        if stop == end:
            yield from spans
            return
        if len(spans) < 2:
            window *= 2
            continue
        yield from spans[:-1]
        at = spans[-1][0]


def _piece_chars(max_tokens: int) -> int:
    # A token is at least one byte and a character at most four: a piece of max_tokens // 4
    # characters always fits the budget on its own.
    return max(1, min(PIECE_CHARS, max_tokens // 4))


def _run_pieces(text: str, start: int, end: int, max_chars: int) -> list[int]:
    """The ends of consecutive pieces of text[start:end], each at most `max_chars` long,
    ending at a separator, else at punctuation, in their second half where there is one."""
    ends: list[int] = []
    at = start
    while at < end:
        limit = min(at + max_chars, end)
        cut = limit
        if limit < end:
            floor = at + max_chars // 2
            for pattern in (_SEPARATOR_END, _PUNCTUATION_END):
                last = None
                for match in pattern.finditer(text, floor, limit):
                    last = match.end()
                if last is not None:
                    cut = last
                    break
        ends.append(cut)
        at = cut
    return ends


def _run_chunks(
    text: str,
    start: int,
    end: int,
    count: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int,
) -> Iterator[tuple[int, int]]:
    """Chunks of one run without whitespace: whole pieces packed up to the budget, each
    chunk's real count checked, the next chunk starting up to `overlap_tokens` back."""
    ends = _run_pieces(text, start, end, _piece_chars(max_tokens))
    starts = [start, *ends[:-1]]
    tokens = [count(text[a:b]) for a, b in zip(starts, ends, strict=True)]
    first = 0
    while first < len(ends):
        last, total = first, tokens[first]
        while last + 1 < len(ends) and total + tokens[last + 1] <= max_tokens:
            last += 1
            total += tokens[last]
        # Pieces counted apart may not add up to the whole: the whole is what must fit.
        while last > first and count(text[starts[first] : ends[last]]) > max_tokens:
            last -= 1
        yield starts[first], ends[last]
        if last + 1 >= len(ends):
            return
        following, overlap = last + 1, 0
        while following - 1 > first and overlap + tokens[following - 1] <= overlap_tokens:
            following -= 1
            overlap += tokens[following]
        first = following


def _join_at_seams(
    text: str, spans: list[_Span], count: Callable[[str], int], max_tokens: int
) -> Iterator[tuple[int, int]]:
    """Join a chunk with the next where one stretch of the text ends and the next begins,
    when together they fit: a run's edges are whitespace, a good place to cut, but not a
    reason for an extra chunk."""
    current: _Span | None = None
    for span in spans:
        if current is None:
            current = span
            continue
        if span.segment != current.segment and count(text[current.start : span.end]) <= max_tokens:
            current = _Span(current.start, span.end, span.segment)
            continue
        yield current.start, current.end
        current = span
    if current is not None:
        yield current.start, current.end
