"""Runs: the manifest store and the steps that move a run from built shards to parquet tables.

One module per step, in the order `advance_run` (in `advance`) runs them:

    store       the manifest: load, save atomically, list open and finished runs
    prepare     prepare_run: build shards, estimate, refuse if over budget, or resume
    submit      submit_ready: upload shards, create each batch exactly once
    poll        poll_batches: refresh the batches that are due
    download    download_outputs: fetch output and error files of finished batches
    parse       parse_outputs: judge every line into result, error and superseded parts
    reduce      plan_reduce: one request per split document over its chunks' outputs
    retry       plan_retries: put retryable lines into the next attempt's shards
    finalize    finalize_run: write the tables, check inputs = results + errors, close
    stages      map and reduce shards, each stage with its own attempts
    costs       cost_rows: batch and standard cost per model
    cancel      cancel_run: cancel in-flight batches and record what each did

Every public name is importable from `tasks.runs`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from schemas.manifest import RunManifest

if TYPE_CHECKING:
    from tasks.runs.advance import advance_run, record_problem
    from tasks.runs.cancel import cancel_run
    from tasks.runs.costs import cost_rows
    from tasks.runs.download import download_outputs
    from tasks.runs.finalize import finalize_run
    from tasks.runs.parse import PART_ROWS, parse_outputs, parse_shard, part_uris
    from tasks.runs.poll import poll_batches, seconds_until_due
    from tasks.runs.prepare import new_run_id, prepare_run
    from tasks.runs.reduce import plan_reduce
    from tasks.runs.retry import plan_retries
    from tasks.runs.store import (
        InvariantError,
        RunError,
        list_open_runs,
        list_runs,
        load_manifest,
        manifest_uri,
        save_manifest,
    )
    from tasks.runs.submit import submit_ready, submit_run

_HOMES = {
    "advance": ["advance_run", "record_problem"],
    "cancel": ["cancel_run"],
    "costs": ["cost_rows"],
    "download": ["download_outputs"],
    "finalize": ["finalize_run"],
    "parse": ["PART_ROWS", "parse_outputs", "parse_shard", "part_uris"],
    "poll": ["poll_batches", "seconds_until_due"],
    "prepare": ["new_run_id", "prepare_run"],
    "reduce": ["plan_reduce"],
    "retry": ["plan_retries"],
    "store": [
        "InvariantError",
        "RunError",
        "list_open_runs",
        "list_runs",
        "load_manifest",
        "manifest_uri",
        "save_manifest",
    ],
    "submit": ["submit_ready", "submit_run"],
}
"""Where each public name lives. They are imported when first used, not with the package:
a parse worker process imports `tasks.runs.parse` alone, not the Batch API client (openai)
that submitting and polling need (a second less to start, and ~25 MB less a worker)."""

_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> object:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PART_ROWS",
    "InvariantError",
    "RunError",
    "RunManifest",
    "advance_run",
    "cancel_run",
    "cost_rows",
    "download_outputs",
    "finalize_run",
    "list_open_runs",
    "list_runs",
    "load_manifest",
    "manifest_uri",
    "new_run_id",
    "parse_outputs",
    "parse_shard",
    "part_uris",
    "plan_reduce",
    "plan_retries",
    "poll_batches",
    "prepare_run",
    "record_problem",
    "save_manifest",
    "seconds_until_due",
    "submit_ready",
    "submit_run",
]
