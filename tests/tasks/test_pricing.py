from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tasks.pricing import (
    DEFAULT_PRICING_FILE,
    ModelPrice,
    PricingError,
    UnknownModelError,
    cost_usd,
    load_pricing,
)


def test_the_shipped_file_is_dated_and_has_the_reference_prices() -> None:
    table = load_pricing()
    assert table.as_of == date(2025, 9, 1)
    assert "OpenAI" in table.source
    assert table.path == str(DEFAULT_PRICING_FILE)
    mini = table.price("gpt-4o-mini")
    assert (mini.input, mini.cached_input, mini.output) == (0.15, 0.075, 0.60)
    assert (mini.batch_input, mini.batch_output) == (0.075, 0.30)
    # No Batch cached price is published for gpt-4o-mini: cached tokens at the Batch input rate.
    assert mini.batch_cached_input == mini.batch_input
    assert table.price("gpt-5-mini").batch_cached_input == 0.0125
    for name, price in table.models.items():
        assert price.batch_input == pytest.approx(price.input / 2), name
        assert price.batch_output == pytest.approx(price.output / 2), name
    assert "cached tokens are charged at the Batch input rate" in table.notes


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o-mini"),
        ("ft:gpt-4.1:acme:custom:xyz", "gpt-4.1"),
        ("gpt-5", "gpt-5"),
    ],
)
def test_snapshots_and_fine_tunes_price_as_their_base(model: str, base: str) -> None:
    table = load_pricing()
    assert table.price(model) == table.price(base)


def test_an_unknown_model_names_the_file_to_edit() -> None:
    with pytest.raises(UnknownModelError) as err:
        load_pricing().price("gpt-9-turbo-2031-01-01")
    assert str(DEFAULT_PRICING_FILE) in str(err.value)
    assert '[models."gpt-9-turbo"]' in str(err.value) and "\n" not in str(err.value)
    assert "OVERNIGHT_PRICING_FILE" in str(err.value)
    with pytest.raises(UnknownModelError):
        load_pricing().price("gpt-4o-mini-search-preview")  # not a dated snapshot


def test_cost_arithmetic() -> None:
    price = ModelPrice(
        model="m",
        input=2.0,
        cached_input=0.5,
        output=8.0,
        batch_input=1.0,
        batch_cached_input=0.25,
        batch_output=4.0,
    )
    # 1,000,000 input of which 400,000 cached, 250,000 output.
    batch = cost_usd(
        price, input_tokens=1_000_000, cached_tokens=400_000, output_tokens=250_000, batch=True
    )
    assert batch == pytest.approx(0.6 * 1.0 + 0.4 * 0.25 + 0.25 * 4.0)  # 1.70
    standard = cost_usd(
        price, input_tokens=1_000_000, cached_tokens=400_000, output_tokens=250_000, batch=False
    )
    assert standard == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 0.25 * 8.0)  # 3.40
    assert cost_usd(price, input_tokens=0, cached_tokens=0, output_tokens=0, batch=True) == 0
    with pytest.raises(ValueError, match="cached tokens are part of input"):
        cost_usd(price, input_tokens=10, cached_tokens=11, output_tokens=0, batch=True)


def test_a_custom_pricing_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        'as_of = 2026-01-31\nsource = "test"\n[models.local]\ninput = 1\ncached_input = 1\n'
        "output = 1\nbatch_input = 0.5\nbatch_cached_input = 0.5\nbatch_output = 0.5\n"
    )
    table = load_pricing(path)
    assert table.as_of == date(2026, 1, 31)
    assert table.price("local").batch_output == 0.5
    path.write_text('as_of = 2026-01-31\nsource = "test"\n[models.local]\ninput = -1\n')
    with pytest.raises(PricingError, match=r"prices\.toml: invalid pricing file"):
        load_pricing(path)
    with pytest.raises(PricingError, match="cannot read"):
        load_pricing(tmp_path / "missing.toml")


def test_a_users_own_pricing_file_replaces_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from overnight.settings import get_settings

    own = tmp_path / "pricing.toml"
    own.write_text(
        'as_of = "2026-11-30"\nsource = "our contract"\n[models."gpt-4o-mini"]\n'
        "input = 1.0\ncached_input = 0.5\noutput = 2.0\n"
        "batch_input = 0.5\nbatch_cached_input = 0.25\nbatch_output = 1.0\n"
    )
    monkeypatch.setenv("OVERNIGHT_PRICING_FILE", str(own))
    get_settings.cache_clear()
    try:
        table = load_pricing()
        assert table.path == str(own) and table.price("gpt-4o-mini").batch_input == 0.5
        with pytest.raises(UnknownModelError) as err:
            table.price("gpt-9")
        assert f"add the model to {own}" in str(err.value)
    finally:
        monkeypatch.delenv("OVERNIGHT_PRICING_FILE")
        get_settings.cache_clear()
