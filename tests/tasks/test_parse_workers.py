"""Parsing shards on worker processes: the same parts and tables as one process, and a worker
that fails or dies leaves its shard for the next collect."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from overnight.settings import get_settings
from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import runs
from tasks.outputs import SIMULATED_FINGERPRINT
from tasks.processes import WORKER_ALLOCATOR, one_allocator_arena, usable_cores
from tasks.runs.parse import PART_ROWS, POOL_MIN_REQUESTS, parse_workers
from tests.tasks._runs import downloaded_shard, new_run, summary_job

ANSWER = {
    "title": "Quarterly report",
    "summary": "Revenue grew by four percent while costs stayed flat.",
    "key_points": ["Revenue +4%", "Costs flat"],
    "topics": ["finance"],
    "language": "en",
    "sentiment": "positive",
    "document_type": "report",
    "action_items": ["Draft the hiring plan"],
}


def _line(custom_id: str, n: int) -> bytes:
    """An output line: mostly answers, some bad ones, some HTTP errors, one in nine missing."""
    if n % 7 == 3:
        body: dict[str, Any] = {"error": {"message": "overloaded", "type": "server_error"}}
        response = {"status_code": 500, "request_id": f"req_{n}", "body": body}
    elif n % 7 == 5:
        body = {"error": {"message": "bad request", "code": "invalid_request"}}
        response = {"status_code": 400, "request_id": f"req_{n}", "body": body}
    else:
        content = orjson.dumps({**ANSWER, "title": f"Report {n}"}).decode()
        if n % 5 == 1:
            content = content[:30]  # bad JSON
        body = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "model": "gpt-4.1-mini-2025-04-14",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 700 + n,
                "completion_tokens": 120,
                "total_tokens": 820 + n,
                "prompt_tokens_details": {"cached_tokens": 512},
            },
            "system_fingerprint": SIMULATED_FINGERPRINT,
        }
        response = {"status_code": 200, "request_id": f"req_{n}", "body": body}
    return orjson.dumps({"id": f"batch_req_{n}", "custom_id": custom_id, "response": response})


def make_run(
    root: Path, *, shards: int, lines: int, max_attempts: int, big_shard_lines: int = 0
) -> RunManifest:
    """A run whose shards are all downloaded; the first one's batch failed (no answers), and
    the last has `big_shard_lines` lines if given."""
    job = summary_job(root, "parse-test")
    data = root / "data"
    data.mkdir(parents=True)
    # not the embedded backend: lines without an answer ask the run
    manifest = new_run(job, "parse-run", backend="local-test", max_attempts=max_attempts)
    sizes = [lines] * shards
    if big_shard_lines:
        sizes[-1] = big_shard_lines
    manifest.counts.requests = sum(sizes)
    for s, lines in enumerate(sizes):
        ids = [f"{s:04d}{i:028x}-0" for i in range(lines)]
        pl.DataFrame(
            {
                "custom_id": ids,
                "document_id": [f"docs/{s}-{i}.txt" for i in range(lines)],
                "source_uri": [f"/data/docs/{s}-{i}.txt" for i in range(lines)],
                "content_sha256": ["ab" * 32] * lines,
                "chunk_index": [0] * lines,
                "chunk_count": [1] * lines,
                "input_tokens": [700] * lines,
            }
        ).write_parquet(data / f"shard-{s}.index.parquet")
        failed = s == 0
        output = data / f"shard-{s}.output.jsonl"
        if not failed:
            output.write_bytes(
                b"\n".join(_line(cid, s * lines + i) for i, cid in enumerate(ids) if i % 9 != 8)
                + b"\n"
            )
        manifest.shards.append(
            downloaded_shard(
                data,
                s,
                job,
                lines,
                batch_status="failed" if failed else "completed",
                batch_errors=[{"code": "server_error", "message": "boom"}] if failed else None,
                output_uri=None if failed else str(output),
            )
        )
    runs.save_manifest(manifest)
    return manifest


def copy_run(manifest: RunManifest, root: Path) -> RunManifest:
    """The same downloaded run in another output folder (its outputs shared, read only)."""
    copy = manifest.model_copy(deep=True)
    copy.output = str(root / "out")
    copy.run_dir = str(root / "out" / "runs" / manifest.run_id)
    copy.job = {**manifest.job, "output": copy.output}
    runs.save_manifest(copy)
    return copy


def parsed_parts(manifest: RunManifest) -> dict[str, pl.DataFrame]:
    """Every part parsing wrote (without `written_at`), and each shard's retry list."""
    found = {}
    for shard in manifest.shards:
        for kind in ("results", "errors", "superseded"):
            for n, uri in enumerate(runs.part_uris(manifest, kind, shard)):
                found[f"{kind}/{shard.key}/{n}"] = pl.read_parquet(uri).drop("written_at")
        retry = Path(manifest.run_dir, "retry", f"{shard.key.replace('/', '-')}.json")
        found[f"retry/{shard.key}"] = pl.DataFrame({"custom_id": orjson.loads(retry.read_bytes())})
    return found


def counters(manifest: RunManifest) -> list[tuple[Any, ...]]:
    return [(s.key, s.state, s.parts, s.results, s.errors, s.retryable) for s in manifest.shards]


def _kinds(manifest: RunManifest) -> set[str]:
    """Which kinds of row parsing wrote: result, error (terminal) and retry (superseded)."""
    kinds = set()
    for shard in manifest.shards:
        if shard.results:
            kinds.add("result")
        if shard.errors:
            kinds.add("error")
        if shard.retryable:
            kinds.add("retry")
    return kinds


def assert_same_parse(one: RunManifest, other: RunManifest) -> None:
    assert counters(one) == counters(other)
    mine, theirs = parsed_parts(one), parsed_parts(other)
    assert mine.keys() == theirs.keys()
    for name, frame in mine.items():
        assert_frame_equal(frame, theirs[name], check_row_order=True)


@pytest.mark.parametrize(
    ("max_attempts", "cores"),
    [(1, 2), (3, 2), (1, 4)],  # 2 workers on 2 cores write parts in turn, on 4 on a thread
)
def test_worker_processes_write_the_parts_and_tables_of_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_attempts: int, cores: int
) -> None:
    monkeypatch.setattr("tasks.runs.parse.usable_cores", lambda: cores)
    serial = make_run(
        tmp_path / "serial",
        shards=5,
        lines=90,
        max_attempts=max_attempts,
        big_shard_lines=PART_ROWS + 50,  # two parts
    )
    pooled = copy_run(serial, tmp_path / "pooled")
    job = JobSpec.model_validate(serial.job)

    assert runs.parse_outputs(serial, job, workers=1) == 5
    assert runs.parse_outputs(pooled, job, workers=2) == 5

    assert_same_parse(serial, pooled)
    assert counters(runs.load_manifest(pooled.run_dir)) == counters(serial)
    assert serial.shards[-1].parts == 2
    assert {"result", "error"} <= {k for k in _kinds(serial)}
    # The failed first batch has no answer of its own: both take the run's word, simulated.
    first = pl.read_parquet(runs.part_uris(pooled, "errors", pooled.shards[0])[0])
    assert first.get_column("simulated").all()
    if max_attempts == 1:  # nothing to retry: the run is finished, with the same tables
        assert runs.finalize_run(serial, job) and runs.finalize_run(pooled, job)
        for name in ("results", "errors"):
            assert_frame_equal(
                pl.read_parquet(serial.tables[name]).drop("written_at"),
                pl.read_parquet(pooled.tables[name]).drop("written_at"),
            )
        costs = pl.read_parquet(serial.tables["costs"]).drop("written_at")
        assert_frame_equal(costs, pl.read_parquet(pooled.tables["costs"]).drop("written_at"))
        assert serial.counts.results + serial.counts.errors == serial.counts.requests


def test_a_dead_worker_is_a_clear_error_and_the_next_collect_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = make_run(tmp_path / "ref", shards=4, lines=30, max_attempts=1)
    job = JobSpec.model_validate(reference.job)
    manifest = copy_run(reference, tmp_path / "run")
    runs.parse_outputs(reference, job, workers=1)

    # Each worker exits abruptly (like kill -9) once it has written a part of its shard.
    monkeypatch.setenv("OVERNIGHT_FAILPOINT", "during-parse")
    with pytest.raises(runs.RunError, match="parse worker process died"):
        runs.parse_outputs(manifest, job, workers=2)
    on_disk = runs.load_manifest(manifest.run_dir)
    assert {s.state for s in on_disk.shards} == {"downloaded"}, "no half-parsed shard recorded"

    monkeypatch.delenv("OVERNIGHT_FAILPOINT")
    again = runs.load_manifest(manifest.run_dir)
    assert runs.parse_outputs(again, job, workers=2) == 4
    assert_same_parse(reference, again)
    assert runs.finalize_run(again, job)
    assert again.counts.results + again.counts.errors == again.counts.requests == 120


def test_a_worker_error_surfaces_and_the_shards_it_did_not_reach_wait(tmp_path: Path) -> None:
    reference = make_run(tmp_path / "ref", shards=5, lines=30, max_attempts=1)
    job = JobSpec.model_validate(reference.job)
    manifest = copy_run(reference, tmp_path / "run")
    runs.parse_outputs(reference, job, workers=1)
    lost = manifest.shards[1].output_uri
    assert lost is not None
    shutil.move(lost, lost + ".away")  # a storage hiccup: the file cannot be read

    with pytest.raises(FileNotFoundError, match=r"shard-1\.output\.jsonl"):
        runs.parse_outputs(manifest, job, workers=2)
    on_disk = runs.load_manifest(manifest.run_dir)
    assert on_disk.shards[1].state == "downloaded"
    assert [s.state for s in on_disk.shards] == [s.state for s in manifest.shards]

    shutil.move(lost + ".away", lost)
    again = runs.load_manifest(manifest.run_dir)
    assert runs.parse_outputs(again, job, workers=2) >= 1
    assert_same_parse(reference, again)


def test_the_worker_count_follows_the_setting_the_size_and_the_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = make_run(tmp_path, shards=3, lines=10, max_attempts=1)
    pending = manifest.shards
    monkeypatch.delenv("OVERNIGHT_COLLECT_WORKERS", raising=False)
    get_settings.cache_clear()
    assert parse_workers(None, pending) == 1  # too few lines to repay starting processes
    assert parse_workers(8, pending) == 3  # never more than the shards
    assert parse_workers(None, pending[:1]) == 1
    big = [s.model_copy(update={"requests": POOL_MIN_REQUESTS}) for s in pending]
    assert parse_workers(None, big) == min(3, usable_cores())
    with pytest.raises(ValueError, match="at least 1"):
        parse_workers(0, pending)
    monkeypatch.setenv("OVERNIGHT_COLLECT_WORKERS", "2")
    get_settings.cache_clear()
    try:
        assert parse_workers(None, pending) == 2
        assert parse_workers(1, big) == 1
    finally:
        get_settings.cache_clear()


def test_a_parse_worker_imports_the_parsing_stack_not_the_batch_client() -> None:
    """A worker starts by importing `tasks.runs.parse`: without openai (or boto3, prefect) it
    starts a second sooner and holds ~25 MB less."""
    code = (
        "import sys, tasks.runs.parse; "
        "print(sorted({'openai', 'boto3', 'prefect'} & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_public_name_of_tasks_runs_resolves() -> None:
    names = set(runs.__all__)
    assert {"parse_outputs", "parse_shard", "finalize_run", "RunError", "PART_ROWS"} <= names
    for name in names:
        assert getattr(runs, name) is not None
    with pytest.raises(AttributeError):
        _ = runs.no_such_name  # type: ignore[attr-defined]


def _allocator_setting() -> str | None:
    return os.environ.get("_RJEM_MALLOC_CONF")


def test_parse_workers_start_with_one_allocator_arena(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers spawned while the setting is in place start with it (their polars allocator
    reads it as they load; polars puts its own defaults first); this process's settings are
    as they were once the workers have started, and an arena count of the user's own stays."""
    polars_defaults = os.environ["_RJEM_MALLOC_CONF"]  # written by polars as it loaded
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        spawning = one_allocator_arena()
        future = pool.submit(_allocator_setting)
        spawning.close()
        assert os.environ["_RJEM_MALLOC_CONF"] == polars_defaults
        seen = future.result(timeout=60)
    assert seen is not None and seen.endswith("," + WORKER_ALLOCATOR)
    assert WORKER_ALLOCATOR == "narenas:1"

    monkeypatch.setenv("_RJEM_MALLOC_CONF", "narenas:4")
    with one_allocator_arena():
        assert os.environ["_RJEM_MALLOC_CONF"] == "narenas:4"
    monkeypatch.delenv("_RJEM_MALLOC_CONF")
    with one_allocator_arena():
        assert os.environ["_RJEM_MALLOC_CONF"] == "narenas:1"
    assert "_RJEM_MALLOC_CONF" not in os.environ
