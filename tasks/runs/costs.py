"""Costs: price usage at batch and standard rates, and the run's per-model cost rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from schemas.manifest import RunManifest, utcnow
from tasks import tables
from tasks.outputs import Usage
from tasks.pricing import ModelPrice, PricingTable, UnknownModelError, cost_usd, load_pricing


class _Pricer:
    """Batch and standard cost of usage, per model as the API named it."""

    def __init__(self, pricing: PricingTable, fallback_model: str) -> None:
        self.pricing = pricing
        self.fallback = pricing.price(fallback_model)
        self._cache: dict[str, ModelPrice] = {}

    def price(self, model: str | None) -> ModelPrice:
        if not model:
            return self.fallback
        if model not in self._cache:
            try:
                self._cache[model] = self.pricing.price(model)
            except UnknownModelError:
                self._cache[model] = self.fallback
        return self._cache[model]

    def cost(self, model: str | None, usage: Usage | None, *, batch: bool = True) -> float:
        if usage is None:
            return 0.0
        return cost_usd(
            self.price(model),
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            batch=batch,
        )

    def batch_costs(self, frame: pl.DataFrame) -> pl.Series:
        """`cost` of every row of `frame` (its `model`, `billed`, else 0, and token counts).

        The rates are looked up once per model; the arithmetic is `cost_usd`'s, on whole
        columns, in its order, to the last bit: polars divides a column by a number as a
        multiplication by its inverse (off by one bit at times), so the division is by a
        column of that number. Bad usage raises `cost`'s error for the first row that has it.
        Two queries a part, whatever its size: each polars call costs ~0.5 ms, which at one
        call per step was most of the pricing of a 5,000-line part.
        """
        billed = pl.col("billed").fill_null(False)
        model = pl.col("model").fill_null("")  # no model: the fallback's rates
        names = frame.select(model.filter(billed).unique()).to_series().to_list()
        prices = {m: self.price(m) for m in names}

        def rate(of: Callable[[ModelPrice], float]) -> pl.Expr:
            by_model = {m: of(p) for m, p in prices.items()}
            return model.replace_strict(by_model, default=0.0, return_dtype=pl.Float64())

        inputs, cached, outputs = (pl.col(name) for name in _TOKENS)
        # A column, not a number: polars would divide by multiplying by the inverse. And made
        # here, not in the query, which would simplify it into the number again.
        million = pl.lit(pl.Series([1_000_000.0]).new_from_index(0, frame.height))
        costs = (
            (inputs - cached) * rate(lambda p: p.batch_input)
            + cached * rate(lambda p: p.batch_cached_input)
            + outputs * rate(lambda p: p.batch_output)
        ) / million
        bad = billed & ((cached > inputs) | (pl.min_horizontal(_TOKENS) < 0))
        priced = frame.select(
            pl.when(billed).then(costs).otherwise(0.0).cast(pl.Float64()).alias("cost_usd"),
            bad.alias("bad"),
        )
        flags = priced.get_column("bad")
        if flags.any():
            row = frame.row(int(flags.arg_true()[0]), named=True)
            self.cost(row["model"], Usage(*(row[name] for name in _TOKENS)))
        return priced.get_column("cost_usd")


_TOKENS = ("input_tokens", "cached_tokens", "output_tokens")


def cost_rows(
    manifest: RunManifest, *, results: list[str], errors: list[str], superseded: list[str]
) -> list[dict[str, Any]]:
    """Per model: requests, outcomes, tokens, batch and standard cost of everything billed.

    `results` and `errors` parts hold each request's one row; `superseded` parts hold billed
    attempts that were retried, which count in tokens and cost but not in requests.
    """
    columns = [
        "model",
        "simulated",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
    ]
    pricing = load_pricing()
    pricer = _Pricer(pricing, str(manifest.job["model"]))
    kinds = [(results, True, True), (errors, False, True), (superseded, False, False)]
    # One query over every part (empty ones included: each was written when its shard was
    # parsed), read by polars' threads, instead of one read per part.
    with tables.local_copies([uri for uris, _, _ in kinds for uri in uris]) as local:
        scans = []
        start = 0
        for uris, succeeded, final in kinds:
            paths, start = local[start : start + len(uris)], start + len(uris)
            if paths:
                scans.append(
                    pl.scan_parquet(paths)
                    .select(columns)
                    .with_columns(succeeded=pl.lit(succeeded), final=pl.lit(final))
                )
        if not scans:
            return []
        grouped = (
            pl.concat(scans)
            .group_by("model", "simulated")
            .agg(
                requests=pl.col("final").sum(),
                succeeded=(pl.col("succeeded") & pl.col("final")).sum(),
                failed=(~pl.col("succeeded") & pl.col("final")).sum(),
                input_tokens=pl.col("input_tokens").sum(),
                cached_tokens=pl.col("cached_tokens").sum(),
                output_tokens=pl.col("output_tokens").sum(),
                reasoning_tokens=pl.col("reasoning_tokens").sum(),
                batch_cost_usd=pl.col("cost_usd").sum(),
            )
            .sort("model", "simulated")
            .collect()
        )
    if grouped.is_empty():
        return []
    rows = []
    for g in grouped.iter_rows(named=True):
        standard = pricer.cost(
            g["model"],
            Usage(g["input_tokens"], g["cached_tokens"], g["output_tokens"], 0),
            batch=False,
        )
        rows.append(
            {
                "run_id": manifest.run_id,
                "job_fingerprint": manifest.job_fingerprint,
                **g,
                "standard_cost_usd": standard,
                "savings_usd": standard - g["batch_cost_usd"],
                "estimated_cost_usd": manifest.estimate_usd,
                "pricing_as_of": str(pricing.as_of),
                "written_at": utcnow(),
            }
        )
    return rows
