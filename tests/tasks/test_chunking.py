"""Chunking of text the splitter handled in quadratic time: long runs without whitespace."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from tasks import chunking
from tasks.chunking import split_text
from tasks.tokens import count_tokens

MODEL = "gpt-4o-mini"


def without_space(text: str) -> str:
    return re.sub(r"\s", "", text)


def assert_within_budget_and_in_order(text: str, chunks: list[str], budget: int) -> None:
    at = 0
    for chunk in chunks:
        assert count_tokens(chunk, MODEL) <= budget
        found = text.find(chunk, at)
        assert found >= at  # each chunk is the text's own, after the previous one
        at = found + 1


def test_long_run_without_whitespace_is_cut_within_budget_and_keeps_the_text() -> None:
    text = "x" * 200_000
    chunks = split_text(text, model=MODEL, max_tokens=3_000)
    assert len(chunks) >= 200_000 // 8 // 3_000
    assert_within_budget_and_in_order(text, chunks, 3_000)
    assert "".join(chunks) == text


def test_minified_json_is_cut_after_separators() -> None:
    rows = [{"id": i, "name": f"item{i}", "v": i / 7} for i in range(3_000)]
    text = json.dumps(rows, separators=(",", ":"))
    chunks = split_text(text, model=MODEL, max_tokens=2_000)
    assert len(chunks) > 1
    assert_within_budget_and_in_order(text, chunks, 2_000)
    assert "".join(chunks) == text
    for chunk in chunks[:-1]:
        assert chunk[-1] in ",}]"  # never inside a name or a number


def test_long_run_keeps_the_words_and_paragraphs_around_it() -> None:
    prose = "\n\n".join(f"Paragraph {i}. " + "Some ordinary words here. " * 30 for i in range(6))
    blob = "QUJD" * 20_000  # a base64 line of 80,000 characters
    text = f"{prose}\n\n{blob}\n\n{prose}"
    chunks = split_text(text, model=MODEL, max_tokens=1_500)
    assert_within_budget_and_in_order(text, chunks, 1_500)
    assert without_space("".join(chunks)) == without_space(text)
    for before, after in itertools.pairwise(chunks):
        end = text.find(before) + len(before)
        # Between chunks: whitespace (a paragraph or a run's edge), or a cut inside the run.
        assert text[end : text.find(after, end - 1)].strip() == "" or before[-1] == "D"
    # The prose around the run is cut as before, at the ends of its sentences.
    assert all(chunk.endswith(".") for chunk in chunks if "QUJD" not in chunk)


def test_long_run_chunks_overlap_by_whole_pieces_up_to_the_overlap() -> None:
    text = "".join(f"k{i}:v;" for i in range(30_000))  # no part repeats
    chunks = split_text(text, model=MODEL, max_tokens=1_000, overlap_tokens=300)
    assert_within_budget_and_in_order(text, chunks, 1_000)
    for before, after in itertools.pairwise(chunks):
        shared = next(n for n in range(len(after), -1, -1) if before.endswith(after[:n]))
        assert 0 < count_tokens(after[:shared], MODEL) <= 300


def test_tiny_budget_still_cuts_a_run_of_wide_characters() -> None:
    text = "漢字" * 5_000
    chunks = split_text(text, model=MODEL, max_tokens=20)
    assert_within_budget_and_in_order(text, chunks, 20)
    assert "".join(chunks) == text


def test_text_over_a_window_is_chunked_as_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "\n\n".join(
        f"Section {i}. " + "A plain sentence of words. " * (i % 9 + 3) for i in range(400)
    )
    whole = split_text(text, model=MODEL, max_tokens=300, overlap_tokens=40)
    monkeypatch.setattr(chunking, "WINDOW_MIN_CHARS", 4_000)
    monkeypatch.setattr(chunking, "WINDOW_CHARS_PER_TOKEN", 1)
    assert split_text(text, model=MODEL, max_tokens=300, overlap_tokens=40) == whole
