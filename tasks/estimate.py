"""Estimate what a job will cost before anything is sent: a dry run of the build.

`estimate_job` runs the very same build as `build_shards` (same partitions on the same local
pool, same documents, chunks, requests, token counts and shards) with shard writers that write
only their indexes, to a temporary folder, then prices the result:

- input tokens are counted exactly (tiktoken, offline; the schema's framing is estimated), and
  no prompt caching is assumed (cached tokens would only lower the cost);
- output tokens are stated two ways: the **maximum** (`params.max_output_tokens` × requests,
  which a run cannot exceed) and an **expected** figure (`expected_output_tokens` × requests,
  or, when the job does not say, `DEFAULT_EXPECTED_OUTPUT_FRACTION` of the maximum);
- each at the Batch price and at the standard-API price it replaces;
- when chunk outputs are reduced (`chunking.output = "document"`), one more request per split
  document, whose input is the prompts and schema plus its chunks' outputs: at most
  `max_output_tokens` each for the maximum, the expected output per chunk for the expected
  figure (`reduce_input_tokens`).

`check_budget` compares the **maximum** Batch cost with `budget_usd`: a budget is a promise
that the job cannot spend more, and only the maximum keeps it (retries excepted: failed
requests are not billed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from schemas.job import JobSpec
from tasks.build import BuildCounts, ShouldProcess, count_requests
from tasks.preflight import check_job
from tasks.pricing import PricingTable, cost_usd, load_pricing
from tasks.render import RequestRenderer, reduce_tokens

if TYPE_CHECKING:
    from rich.table import Table

DEFAULT_EXPECTED_OUTPUT_FRACTION = 0.5
"""Without `expected_output_tokens`, a request is assumed to use half its output budget."""


class BudgetExceededError(Exception):
    """The estimated cost of a job is over its `budget_usd`."""


class Estimate(BaseModel):
    """The size and cost of a job, computed without writing or sending anything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_name: str
    model: str
    endpoint: str
    documents: int
    """Documents (and records) found in the source."""
    documents_built: int
    documents_skipped: int
    documents_rejected: int
    rejected_by_code: dict[str, int]
    requests: int
    """Map requests: one per document, or per chunk of a split document."""
    shards: int
    input_tokens: int
    reduce_requests: int = 0
    """Reduce requests: one per split document when chunk outputs are reduced."""
    reduce_input_tokens_max: int = 0
    """Their input at most: prompts and schema plus `max_output_tokens` per chunk."""
    reduce_input_tokens_expected: int = 0
    """Their input as expected: prompts and schema plus the expected output per chunk."""
    max_output_tokens: int
    """`params.max_output_tokens` × requests: the most the job can produce."""
    expected_output_tokens: int
    expected_output_tokens_per_request: int
    expected_basis: str
    """Where the expected figure comes from."""
    batch_cost_max_usd: float
    standard_cost_max_usd: float
    batch_cost_expected_usd: float
    standard_cost_expected_usd: float
    budget_usd: float | None
    pricing_as_of: date
    pricing_file: str
    assumptions: list[str]


def estimate_job(
    job: JobSpec,
    *,
    should_process: ShouldProcess | None = None,
    pricing: PricingTable | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Estimate:
    """Count the job's documents, requests and input tokens, and price them. Writes nothing
    but temporary shard indexes.

    `progress(n)` is called with the number of documents read since its previous call; a long
    listing is counted on `workers` processes (default: as the build, one per core)."""
    check_job(job)  # what the model would refuse, refused before reading the corpus
    pricing = pricing or load_pricing()
    pricing.price(job.model)  # fail on an unknown model before reading the corpus
    counts, shards = count_requests(
        job, should_process=should_process, progress=progress, workers=workers
    )
    return price_counts(job, counts, shards=len(shards), pricing=pricing)


def price_counts(
    job: JobSpec, counts: BuildCounts, *, shards: int, pricing: PricingTable
) -> Estimate:
    """Price what a (dry or real) build counted: the estimate `estimate` prints and `submit`
    records and checks against the budget."""
    price = pricing.price(job.model)
    requests = counts.requests
    max_out = job.params.max_output_tokens * requests
    if job.expected_output_tokens is not None:
        per_request = min(job.expected_output_tokens, job.params.max_output_tokens)
        basis = f"expected_output_tokens = {job.expected_output_tokens} per request"
    else:
        per_request = int(job.params.max_output_tokens * DEFAULT_EXPECTED_OUTPUT_FRACTION)
        basis = (
            f"no expected_output_tokens in the job: assumed {DEFAULT_EXPECTED_OUTPUT_FRACTION:.0%} "
            f"of max_output_tokens = {per_request} per request"
        )
    expected_out = per_request * requests
    reduce_requests = counts.documents_chunked if job.chunking.output == "document" else 0
    reduce_in_max = reduce_in_expected = 0
    reduce_note = 'no reduce stage (chunking.output = "chunk": one row per chunk)'
    if reduce_requests:
        # Spread the chunks evenly over the split documents: the token count is linear in both.
        renderer, chunks = RequestRenderer(job), counts.chunked_requests

        def reduce_input(output_tokens: int) -> int:
            one = reduce_tokens(renderer, chunks=0, output_tokens=0)
            per_chunk = reduce_tokens(renderer, chunks=1, output_tokens=output_tokens) - one
            return one * reduce_requests + per_chunk * chunks

        reduce_in_max = reduce_input(job.params.max_output_tokens)
        reduce_in_expected = reduce_input(per_request)
        max_out += job.params.max_output_tokens * reduce_requests
        expected_out += per_request * reduce_requests
        reduce_note = (
            f"reduce stage: {reduce_requests} split document(s) get one more request each, "
            "whose input is the prompts and schema plus its chunks' outputs (maximum: "
            f"max_output_tokens = {job.params.max_output_tokens} per chunk; expected: "
            f"{per_request} per chunk) and whose output is one more answer"
        )

    def cost(output_tokens: int, *, batch: bool, reduce_input: int = 0) -> float:
        return cost_usd(
            price,
            input_tokens=counts.input_tokens + reduce_input,
            cached_tokens=0,
            output_tokens=output_tokens,
            batch=batch,
        )

    image_note: list[str] = []
    if counts.images:
        from tasks.render import image_rule

        detail = job.params.image_detail or "auto (counted as high)"
        image_note.append(
            f"{counts.images} image(s) counted by {job.model}'s image-token rule "
            f"({image_rule(job.model).describe()}), detail {detail}, from their pixel sizes"
        )
    return Estimate(
        job_name=job.name,
        model=job.model,
        endpoint=job.endpoint,
        documents=counts.documents_seen,
        documents_built=counts.documents_built,
        documents_skipped=counts.documents_skipped,
        documents_rejected=counts.documents_rejected,
        rejected_by_code=dict(sorted(counts.rejected_by_code.items())),
        requests=requests,
        shards=shards,
        input_tokens=counts.input_tokens,
        reduce_requests=reduce_requests,
        reduce_input_tokens_max=reduce_in_max,
        reduce_input_tokens_expected=reduce_in_expected,
        max_output_tokens=max_out,
        expected_output_tokens=expected_out,
        expected_output_tokens_per_request=per_request,
        expected_basis=basis,
        batch_cost_max_usd=cost(max_out, batch=True, reduce_input=reduce_in_max),
        standard_cost_max_usd=cost(max_out, batch=False, reduce_input=reduce_in_max),
        batch_cost_expected_usd=cost(expected_out, batch=True, reduce_input=reduce_in_expected),
        standard_cost_expected_usd=cost(expected_out, batch=False, reduce_input=reduce_in_expected),
        budget_usd=job.budget_usd,
        pricing_as_of=pricing.as_of,
        pricing_file=pricing.path,
        assumptions=[
            "input tokens counted offline with tiktoken (messages, template and the strict "
            "schema; the schema's framing by the API is estimated)",
            "no prompt caching (cached input would only lower the cost)",
            f"maximum output: max_output_tokens = {job.params.max_output_tokens} per request",
            f"expected output: {basis}",
            reduce_note,
            *image_note,
            "retries not included (failed requests are not billed)",
            f"prices from {pricing.path} as of {pricing.as_of}",
        ],
    )


def check_budget(job: JobSpec, estimate: Estimate) -> None:
    """Raise `BudgetExceededError` if the maximum Batch cost is over the job's budget."""
    if job.budget_usd is None or estimate.batch_cost_max_usd <= job.budget_usd:
        return
    raise BudgetExceededError(
        f"job {job.name!r}: the estimated maximum Batch cost ${estimate.batch_cost_max_usd:,.4f} "
        f"({estimate.requests} requests, {estimate.input_tokens} input tokens, up to "
        f"{job.params.max_output_tokens} output tokens each, {job.model} prices of "
        f"{estimate.pricing_as_of}) exceeds budget_usd ${job.budget_usd:,.4f}; raise budget_usd, "
        "lower params.max_output_tokens, or narrow the source"
    )


def estimate_tables(estimate: Estimate) -> list[Table]:
    """Rich tables of an estimate: what will be sent, and what it costs."""
    from rich.table import Table

    e = estimate
    size = Table(title=f"{e.job_name}: {e.model} via {e.endpoint}", title_justify="left")
    size.add_column("what")
    size.add_column("count", justify="right")
    size.add_row("documents found", f"{e.documents:,}")
    size.add_row("unchanged since done (skipped)", f"{e.documents_skipped:,}")
    rejected = ", ".join(f"{code} {n:,}" for code, n in e.rejected_by_code.items())
    size.add_row("rejected", f"{e.documents_rejected:,}" + (f" ({rejected})" if rejected else ""))
    size.add_row("documents to send", f"{e.documents_built:,}")
    size.add_row("requests", f"{e.requests:,}")
    if e.reduce_requests:
        size.add_row("reduce requests (one per split document)", f"{e.reduce_requests:,}")
    size.add_row("shards (batches)", f"{e.shards:,}")
    size.add_row("input tokens (exact)", f"{e.input_tokens:,}")

    cost = Table(
        title=f"cost in USD, {e.model} prices as of {e.pricing_as_of}", title_justify="left"
    )
    cost.add_column("")
    cost.add_column("maximum output", justify="right")
    cost.add_column("expected output", justify="right")
    cost.add_row("output tokens", f"{e.max_output_tokens:,}", f"{e.expected_output_tokens:,}")
    cost.add_row("Batch API", f"${e.batch_cost_max_usd:,.4f}", f"${e.batch_cost_expected_usd:,.4f}")
    cost.add_row(
        "standard API", f"${e.standard_cost_max_usd:,.4f}", f"${e.standard_cost_expected_usd:,.4f}"
    )
    cost.add_row(
        "saved by Batch",
        f"${e.standard_cost_max_usd - e.batch_cost_max_usd:,.4f}",
        f"${e.standard_cost_expected_usd - e.batch_cost_expected_usd:,.4f}",
    )
    if e.budget_usd is not None:
        verdict = "within" if e.batch_cost_max_usd <= e.budget_usd else "OVER"
        cost.add_row("budget_usd (checked: maximum)", f"${e.budget_usd:,.4f} {verdict}", "")
    cost.caption = f"expected: {e.expected_basis}; no prompt caching assumed"
    return [size, cost]


__all__ = [
    "DEFAULT_EXPECTED_OUTPUT_FRACTION",
    "BudgetExceededError",
    "Estimate",
    "check_budget",
    "estimate_job",
    "estimate_tables",
]
