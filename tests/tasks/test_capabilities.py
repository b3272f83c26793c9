"""The dated model-capabilities file: covers the pricing file, family rule, users' own files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.capabilities import (
    DEFAULT_MODELS_FILE,
    CapabilitiesError,
    UnknownModelCapabilitiesError,
    load_capabilities,
)
from tasks.pricing import load_pricing


@pytest.fixture
def own_models_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """OVERNIGHT_MODELS_FILE pointing at a file of the user's own (written by the test)."""
    from overnight.settings import get_settings

    own = tmp_path / "models.toml"
    monkeypatch.setenv("OVERNIGHT_MODELS_FILE", str(own))
    get_settings.cache_clear()
    yield own
    monkeypatch.delenv("OVERNIGHT_MODELS_FILE")
    get_settings.cache_clear()


def test_every_priced_model_has_capabilities() -> None:
    table = load_capabilities()
    assert table.path == str(DEFAULT_MODELS_FILE.resolve())
    assert set(load_pricing().models) <= set(table.models)


def test_reasoning_models_are_the_gpt5_family_and_the_o_series() -> None:
    table = load_capabilities()
    reasoning = {name for name, caps in table.models.items() if caps.reasoning}
    assert reasoning == {
        *("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5.1", "gpt-5.2"),
        *("o1", "o3", "o3-mini", "o4-mini"),
    }
    assert table.lookup("o3").reasoning_efforts == ("low", "medium", "high")
    assert "minimal" in table.lookup("gpt-5-mini").reasoning_efforts
    assert table.lookup("gpt-4o-mini").context_window == 128_000


def test_dated_snapshots_and_fine_tunes_take_their_family_entry() -> None:
    table = load_capabilities()
    assert table.lookup("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert table.lookup("ft:gpt-4.1-mini:acme::x1").model == "gpt-4.1-mini"
    assert table.lookup("gpt-4o-2024-05-13").structured_outputs is False  # its own entry
    assert table.get("gpt-4o-mini-search-preview") is None  # not a dated snapshot


def test_an_unknown_model_names_the_file_and_how_to_add_it() -> None:
    with pytest.raises(UnknownModelCapabilitiesError) as err:
        load_capabilities().lookup("gpt-9-turbo-2031-01-01")
    message = str(err.value)
    assert str(DEFAULT_MODELS_FILE.resolve()) in message
    assert "OVERNIGHT_MODELS_FILE" in message and '[models."gpt-9-turbo"]' in message


def test_a_users_own_models_file_replaces_the_shipped_one(own_models_file: Path) -> None:
    own_models_file.write_text(
        'as_of = 2026-11-30\nsource = "our gateway"\n[models."local-llama"]\n'
        "context_window = 8192\nmax_output_tokens = 2048\nreasoning = false\nvision = false\n"
        'structured_outputs = true\nendpoints = ["/v1/chat/completions"]\n'
        'chat_output_cap = "max_tokens"\n'
    )
    table = load_capabilities()
    assert table.path == str(own_models_file.resolve())
    assert table.lookup("local-llama").output_cap_field("/v1/chat/completions") == "max_tokens"
    with pytest.raises(UnknownModelCapabilitiesError, match=f"add it to {own_models_file}"):
        table.lookup("gpt-4o-mini")


def test_a_malformed_file_is_named_with_the_bad_field(tmp_path: Path) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text(
        'as_of = 2026-11-30\nsource = "x"\n[models."m"]\ncontext_window = "big"\n'
        "max_output_tokens = 1\nreasoning = false\nvision = false\nstructured_outputs = true\n"
        'endpoints = ["/v1/chat/completions"]\n'
    )
    with pytest.raises(
        CapabilitiesError, match=r"models\.toml: invalid .*models\.m\.context_window"
    ):
        load_capabilities(bad)
    bad.write_text(
        'as_of = 2026-11-30\nsource = "x"\n[models."m"]\ncontext_window = 10\n'
        "max_output_tokens = 1\nreasoning = false\nvision = false\nstructured_outputs = true\n"
        'endpoints = ["/v1/chat/completions"]\nreasoning_efforts = ["low"]\n'
    )
    with pytest.raises(CapabilitiesError, match="only for reasoning models"):
        load_capabilities(bad)
    with pytest.raises(CapabilitiesError, match="cannot read"):
        load_capabilities(tmp_path / "missing.toml")


def test_a_newer_openai_model_the_file_does_not_describe_is_named_as_such() -> None:
    """gpt-5.4-mini (OpenAI's API reference lists it) was answered "did you mean
    'gpt-5-mini'?", as if it were a typo, pointing the user at another model and its prices."""
    with pytest.raises(UnknownModelCapabilitiesError) as err:
        load_capabilities().lookup("gpt-5.4-mini-2026-03-17")
    message = str(err.value)
    assert "'gpt-5.4-mini-2026-03-17' is an OpenAI model that the capabilities file" in message
    assert "does not describe yet" in message and "did you mean" not in message
    assert '[models."gpt-5.4-mini"]' in message
    with pytest.raises(UnknownModelCapabilitiesError, match="did you mean 'gpt-5-mini'"):
        load_capabilities().lookup("gpt5-mini")  # a slip of the keyboard still gets the guess


def test_gpt_5_1_and_5_2_snapshots_run_with_their_own_efforts() -> None:
    table = load_capabilities()
    assert table.lookup("gpt-5.1-2025-11-13").model == "gpt-5.1"
    assert table.lookup("gpt-5.1").reasoning_efforts == ("none", "low", "medium", "high")
    assert "xhigh" in table.lookup("gpt-5.2-2025-12-11").reasoning_efforts
    prices = load_pricing()
    assert prices.price("gpt-5.2-2025-12-11").batch_output == 7.00
