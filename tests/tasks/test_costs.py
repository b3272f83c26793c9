"""A part's costs priced at once are, to the last bit, those priced line by line."""

from __future__ import annotations

import random

import polars as pl
import pytest

from tasks.outputs import Usage
from tasks.pricing import load_pricing
from tasks.runs.costs import _Pricer


def test_batch_costs_are_the_costs_of_each_line() -> None:
    pricer = _Pricer(load_pricing(), "gpt-4.1-mini")
    draw = random.Random(13)
    models = ["gpt-4.1-mini-2025-04-14", "gpt-4o-2024-08-06", "gpt-4.1", "no-such-model", "", None]
    rows = []
    for _ in range(5_000):
        input_tokens = draw.randrange(0, 200_000)
        rows.append(
            {
                "model": draw.choice(models),
                "billed": draw.random() < 0.9,
                "input_tokens": input_tokens,
                "cached_tokens": draw.randrange(0, input_tokens + 1),
                "output_tokens": draw.randrange(0, 30_000),
            }
        )
    frame = pl.DataFrame(rows)
    expected = [
        pricer.cost(
            r["model"],
            Usage(r["input_tokens"], r["cached_tokens"], r["output_tokens"])
            if r["billed"]
            else None,
        )
        for r in rows
    ]
    assert pricer.batch_costs(frame).to_list() == expected


def test_batch_costs_refuse_bad_usage_as_cost_does() -> None:
    pricer = _Pricer(load_pricing(), "gpt-4.1-mini")
    frame = pl.DataFrame(
        {
            "model": ["gpt-4.1-mini", "gpt-4.1-mini", "gpt-4.1-mini"],
            "billed": [True, False, True],
            "input_tokens": [10, 5, 10],
            "cached_tokens": [0, 9, 20],
            "output_tokens": [1, 1, 1],
        }
    )
    with pytest.raises(ValueError, match="cached_tokens=20"):
        pricer.batch_costs(frame)
    assert pricer.batch_costs(frame.head(2)).to_list()[1] == 0.0
