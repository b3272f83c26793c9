"""Model prices from the dated pricing file, and the cost of a number of tokens.

The prices live in `data/pricing.toml` (USD per 1M tokens, standard and Batch, with the date
and source written in the file) so that users can edit them when OpenAI changes its prices.
`OVERNIGHT_PRICING_FILE` points overnight at a pricing file of the user's own instead.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from overnight.resources import data_file, read_model_file

DEFAULT_PRICING_FILE = data_file("pricing.toml")
_DATED_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")


def model_candidates(model: str) -> tuple[str, ...]:
    """The names a model is looked up under, most specific first: itself, its fine-tune base,
    then that base without a dated suffix (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`)."""
    base = model.removeprefix("ft:").split(":", 1)[0]
    return tuple(dict.fromkeys((model, base, _DATED_SUFFIX.sub("", base))))


def model_family(model: str) -> str:
    """A model's base name without fine-tune parts or dated suffix."""
    return model_candidates(model)[-1]


class PricingError(Exception):
    """The pricing file cannot be read or is malformed."""


class UnknownModelError(PricingError, KeyError):
    """The pricing file has no price for a model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelPrice(BaseModel):
    """USD per 1M tokens for one model, standard and Batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)
    batch_input: float = Field(ge=0)
    batch_cached_input: float = Field(ge=0)
    batch_output: float = Field(ge=0)


class PricingTable(BaseModel):
    """The prices of one pricing file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: date
    source: str
    currency: str = "USD"
    notes: str = ""
    path: str
    models: dict[str, ModelPrice]

    def price(self, model: str) -> ModelPrice:
        """The price of a model; dated snapshots and fine-tunes fall back to their base model."""
        for candidate in model_candidates(model):
            if candidate in self.models:
                return self.models[candidate]
        name = model_family(model)
        if Path(self.path) == DEFAULT_PRICING_FILE.resolve():
            where = (
                f"copy {self.path} to a file of your own, add the model there and set "
                "OVERNIGHT_PRICING_FILE to that file"
            )
        else:
            where = f"add the model to {self.path}"
        raise UnknownModelError(
            f"no price for model {model!r} in {self.path}: {where}, as a "
            f'[models."{name}"] table with input, cached_input, output, batch_input, '
            "batch_cached_input and batch_output (USD per 1M tokens, from "
            "https://openai.com/api/pricing)"
        )


def load_pricing(path: str | Path | None = None) -> PricingTable:
    """Read a pricing file (by default `OVERNIGHT_PRICING_FILE`, else the shipped one)."""
    if path is None:
        from overnight.settings import get_settings

        path = get_settings().pricing_file or DEFAULT_PRICING_FILE
    return read_model_file(Path(path), PricingTable, error=PricingError, what="pricing file")


def cost_usd(
    price: ModelPrice, *, input_tokens: int, cached_tokens: int, output_tokens: int, batch: bool
) -> float:
    """USD for a request's usage. `cached_tokens` are part of `input_tokens`; reasoning tokens
    are part of `output_tokens`."""
    if cached_tokens > input_tokens or min(input_tokens, cached_tokens, output_tokens) < 0:
        raise ValueError(
            f"bad usage: input_tokens={input_tokens}, cached_tokens={cached_tokens}, "
            f"output_tokens={output_tokens} (cached tokens are part of input tokens)"
        )
    if batch:
        rates = (price.batch_input, price.batch_cached_input, price.batch_output)
    else:
        rates = (price.input, price.cached_input, price.output)
    uncached = input_tokens - cached_tokens
    return (uncached * rates[0] + cached_tokens * rates[1] + output_tokens * rates[2]) / 1_000_000
