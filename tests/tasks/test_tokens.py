from __future__ import annotations

from pathlib import Path

import pytest

from tasks import tokens


def test_o200k_counts_offline_from_seeded_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tokens.get_encoding.cache_clear()
    assert tokens.count_tokens("hello world", "gpt-4o-mini") == 2
    # The seeded file is the one tiktoken looks up, so no download was attempted.
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
    ],
)
def test_models_map_to_their_tokenizer(model: str, encoding: str) -> None:
    assert tokens.encoding_name_for(model) == encoding


def test_cl100k_and_o200k_tokenize_differently() -> None:
    text = "Überraschung! 12345 tokens, naïve café"
    assert tokens.count_tokens(text, "gpt-4") != tokens.count_tokens(text, "gpt-4o")
