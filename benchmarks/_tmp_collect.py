"""Collect throughput: batch output lines → classified, validated, written parquet tables.

Builds a synthetic run (shards with their index, and OpenAI-shaped output files of chat
completions whose content is a DocumentSummary), then, each in a fresh process:

- the parse-and-validate ceiling: `orjson.loads` of every output line and Pydantic validation
  of its content (`DocumentSummary.model_validate_json`), the output files shared among one
  process per core (started and warmed up first; only the parsing is timed): the most that
  judging these lines could reach on this machine;
- `collect`'s work on our side, `parse_outputs` + `finalize_run` (classification, validation,
  parquet parts, the results/errors/costs tables, the ledger), with 1 worker (this process)
  and with one worker process per core (pool start included);
- with --compare-threads, the same shards parsed on a thread pool of one thread per core;
- with --compare-script, what a hand-written collect does (the usual script after OpenAI's
  batch guide: `json.loads`, the answer validated into the model, rows kept as dicts, one
  DataFrame written at the end), in one process, for scale.

It prints lines per second, the ratio of each to the ceiling measured in the same run (the
mean of one measure before the collects and one after, as the machine's pace drifts), the
peak RSS of the whole process tree (the collect and its workers, sampled from /proc every
20 ms), and whether the tables are identical whatever the worker count.

    .venv/bin/python benchmarks/collect_throughput.py --lines 20000        # a quick check
    .venv/bin/python benchmarks/collect_throughput.py                      # 10^6 lines, 20 shards
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._children import run_child
from schemas.job import JobSpec
from schemas.manifest import RunManifest, ShardRecord


def make_run(root: Path, lines: int, shard_size: int, invalid_every: int) -> RunManifest:
    """Write the shards' indexes and output files under `root`; return the run's manifest."""
    job = JobSpec.model_validate(
        {
            "name": "bench",
            "source": {"uri": str(root / "docs")},
            "output": str(root / "out"),
            "model": "gpt-4.1-mini",
            "system_prompt": "Summarize.",
            "output_schema": "schemas.summary:DocumentSummary",
            "params": {"max_output_tokens": 600},
        }
    )
    run_dir = root / "out" / "runs" / "bench-run"
    manifest = RunManifest(
        run_id="bench-run",
        job_name=job.name,
        job_fingerprint=job.fingerprint(),
        job=job.model_dump(mode="json"),
        run_dir=str(run_dir),
        output=job.output,
        backend="embedded",
        status="in_progress",
    )
    manifest.counts.requests = lines
    (run_dir / "shards").mkdir(parents=True)
    (run_dir / "outputs").mkdir(parents=True)
    n = 0
    for s, start in enumerate(range(0, lines, shard_size)):
        count = min(shard_size, lines - start)
        ids = [f"{i:032x}-0" for i in range(start, start + count)]
        index = pl.DataFrame(
            {
                "custom_id": ids,
                "document_id": [f"docs/{i:08d}.txt" for i in range(start, start + count)],
                "source_uri": [f"/data/docs/{i:08d}.txt" for i in range(start, start + count)],
                "content_sha256": ["ab" * 32] * count,
                "chunk_index": [0] * count,
                "chunk_count": [1] * count,
                "input_tokens": [700] * count,
            }
        )
        index_uri = run_dir / "shards" / f"shard-{s:05d}.index.parquet"
        index.write_parquet(index_uri)
        out_uri = run_dir / "outputs" / f"a1-shard-{s:05d}.output.jsonl"
        with open(out_uri, "wb") as fh:
            for j, cid in enumerate(ids):
                n += 1
                content = {
                    "title": f"Quarterly report {n}",
                    "summary": "Revenue grew by four percent while costs stayed flat. "
                    "The board approved the new warehouse and asked for a hiring plan.",
                    "key_points": ["Revenue +4%", "Costs flat", "Warehouse approved"],
                    "topics": ["finance", "operations"],
                    "language": "en",
                    "sentiment": "positive",
                    "document_type": "report",
                    "action_items": ["Finance to draft the hiring plan"],
                }
                text = orjson.dumps(content).decode()
                if invalid_every and j % invalid_every == 0:
                    text = text[:40]
                body = {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": 1760000000,
                    "model": "gpt-4.1-mini-2025-04-14",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 700,
                        "completion_tokens": 120,
                        "total_tokens": 820,
                        "prompt_tokens_details": {"cached_tokens": 512},
                        "completion_tokens_details": {"reasoning_tokens": 0},
                    },
                    "system_fingerprint": "fp_bench",
                }
                line = {
                    "id": f"batch_req_{n}",
                    "custom_id": cid,
                    "response": {"status_code": 200, "request_id": f"req_{n}", "body": body},
                    "error": None,
                }
                fh.write(orjson.dumps(line) + b"\n")
        manifest.shards.append(
            ShardRecord(
                key=f"a1/shard-{s:05d}",
                attempt=1,
                shard_id=f"shard-{s:05d}",
                uri=str(run_dir / "shards" / f"shard-{s:05d}.jsonl"),
                index_uri=str(index_uri),
                sha256="0" * 64,
                requests=count,
                bytes=0,
                input_tokens=700 * count,
                model=job.model,
                endpoint=job.endpoint,
                state="downloaded",
                batch_id=f"batch_{s}",
                batch_status="completed",
                output_uri=str(out_uri),
            )
        )
    return manifest


def child_collect(template: str, run_root: str, workers: int, pool: str) -> None:
    """Collect a copy of the run in `run_root` here (and in workers); print figures as JSON."""
    from tasks import runs

    manifest = RunManifest.model_validate_json(Path(template).read_bytes())
    out = Path(run_root) / "out"
    manifest.output = str(out)
    manifest.run_dir = str(out / "runs" / manifest.run_id)
    manifest.job = {**manifest.job, "output": str(out)}
    runs.save_manifest(manifest)
    job = JobSpec.model_validate(manifest.job)
    t0 = time.perf_counter()
    if pool == "threads":
        _parse_on_threads(manifest, job, workers)
    else:
        runs.parse_outputs(manifest, job, workers=workers)
    parsed = time.perf_counter() - t0
    tm = os.times()
    print(
        f"CPU parse: self user+sys {tm.user + tm.system:.2f} children {tm.children_user + tm.children_system:.2f} wall {parsed:.2f}",
        file=sys.stderr,
    )
    t1 = time.perf_counter()
    done = runs.finalize_run(manifest, job)
    finished = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "lines": manifest.counts.requests,
                "parse_seconds": parsed,
                "finalize_seconds": finished,
                "results": manifest.counts.results,
                "errors": manifest.counts.errors,
                "done": done,
                "tables": {name: manifest.tables[name] for name in ("results", "errors")},
            }
        )
    )


def _parse_on_threads(manifest: RunManifest, job: JobSpec, workers: int) -> None:
    """The shards of `parse_outputs`, parsed on threads instead of processes (to compare)."""
    from concurrent.futures import ThreadPoolExecutor

    from tasks import runs
    from tasks.pricing import load_pricing
    from tasks.runs.costs import _Pricer

    output_model = job.output_model()
    pricer = _Pricer(load_pricing(), job.model)
    pending = [s for s in manifest.shards if s.state == "downloaded"]

    def parse(shard: ShardRecord) -> None:
        runs.parse_shard(
            manifest,
            shard,
            output_model=output_model,
            pricer=pricer,
            retry_invalid_outputs=job.limits.retry_invalid_outputs,
            run_simulated=True,
        )

    with ThreadPoolExecutor(workers) as threads:
        list(threads.map(parse, pending))
    for shard in pending:
        shard.state = "parsed"
    runs.save_manifest(manifest)


def _judge_file(uri: str) -> int:
    """The ceiling's unit of work: parse every line of one output file and validate its
    answer; return the line count."""
    from schemas.summary import DocumentSummary

    count = 0
    with open(uri, "rb") as fh:
        for line in fh:
            record = orjson.loads(line)
            content = record["response"]["body"]["choices"][0]["message"]["content"]
            with contextlib.suppress(ValueError):  # the bad answers: judged all the same
                DocumentSummary.model_validate_json(content)
            count += 1
    return count


def _warm(_: int) -> int:
    """Start a ceiling worker: its imports and first validation are not timed."""
    _judge_file(os.devnull)
    return os.getpid()


def child_ceiling(template: str, workers: int) -> None:
    """Time orjson + Pydantic validation of every output line on `workers` processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    manifest = RunManifest.model_validate_json(Path(template).read_bytes())
    files = [s.output_uri for s in manifest.shards if s.output_uri]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_warm, range(workers * 4)))  # every worker started, imports done
        start = time.perf_counter()
        lines = sum(pool.map(_judge_file, files))
        seconds = time.perf_counter() - start
    print(json.dumps({"lines": lines, "seconds": seconds}))


def child_script(template: str, out: str) -> None:
    """What a hand-written collect does (the usual script after OpenAI's batch guide): every
    line through `json.loads`, each answer validated into the model, rows kept as dicts, one
    DataFrame, one parquet file; no identities, costs, retries or resume."""
    from pydantic import ValidationError

    from schemas.summary import DocumentSummary

    manifest = RunManifest.model_validate_json(Path(template).read_bytes())
    start = time.perf_counter()
    results: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    for shard in manifest.shards:
        with open(str(shard.output_uri), encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                body = record["response"]["body"]
                content = body["choices"][0]["message"]["content"]
                try:
                    summary = DocumentSummary.model_validate_json(content)
                except ValidationError as exc:
                    errors.append({"custom_id": record["custom_id"], "error": str(exc)})
                    continue
                usage = body["usage"]
                results.append(
                    {
                        "custom_id": record["custom_id"],
                        **summary.model_dump(),
                        "input_tokens": usage["prompt_tokens"],
                        "output_tokens": usage["completion_tokens"],
                    }
                )
    pl.DataFrame(results).write_parquet(out)
    pl.DataFrame(errors).write_parquet(out + ".errors")
    seconds = time.perf_counter() - start
    print(json.dumps({"lines": len(results) + len(errors), "seconds": seconds}))


_P = 1_000_000_007


def table_digest(uri: str) -> list[int]:
    """An order-free digest of a table (every column but `written_at`, each with its row's
    custom_id), streaming: equal for tables with the same rows in any order."""
    frame = pl.scan_parquet(uri).drop("written_at")
    names = frame.collect_schema().names()
    key = pl.col("custom_id").alias("_key")
    return list(
        frame.select([(pl.struct(key, pl.col(c)).hash(seed=0) % _P).sum().alias(c) for c in names])
        .collect()
        .row(0)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="output lines (requests)")
    parser.add_argument("--shard-size", type=int, default=50_000, help="lines per shard")
    parser.add_argument(
        "--invalid-every", type=int, default=100, help="every Nth answer is bad JSON"
    )
    parser.add_argument("--workers", type=int, default=0, help="all-core worker count (0: cores)")
    parser.add_argument(
        "--compare-threads", action="store_true", help="also parse on a thread pool"
    )
    parser.add_argument(
        "--compare-script",
        action="store_true",
        help="also time a hand-written collect (json + Pydantic + one DataFrame, one process)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", nargs=2, metavar=("TEMPLATE", "ROOT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child-pool", default="processes", help=argparse.SUPPRESS)
    parser.add_argument("--ceiling", metavar="TEMPLATE", help=argparse.SUPPRESS)
    parser.add_argument("--script", nargs=2, metavar=("TEMPLATE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.script:
        child_script(*args.script)
        return
    if args.child:
        child_collect(*args.child, args.child_workers, args.child_pool)
        return
    if args.ceiling:
        child_ceiling(args.ceiling, args.child_workers)
        return

    from tasks.processes import usable_cores

    cores = args.workers or usable_cores()
    tmp = Path(tempfile.mkdtemp(prefix="overnight-bench-"))
    try:
        t0 = time.perf_counter()
        manifest = make_run(tmp / "data", args.lines, args.shard_size, args.invalid_every)
        template = tmp / "manifest.json"
        template.write_text(manifest.model_dump_json())
        os.sync()  # flush the output files now, not while collect is being timed
        size = sum(f.stat().st_size for f in (tmp / "data").rglob("*.output.jsonl"))
        print(
            f"lines {args.lines:,} in {len(manifest.shards)} shard(s), {size / 1e6:,.0f} MB of "
            f"output files (made in {time.perf_counter() - t0:.1f} s); {cores} core(s), load "
            f"average {os.getloadavg()[0]:.1f}",
            flush=True,
        )

        def ceiling() -> float:
            found, _ = run_child(
                __file__, ["--ceiling", str(template), "--child-workers", str(cores)]
            )
            return float(found["lines"] / found["seconds"])

        # The ceiling is measured before and after the collects and their mean taken: this
        # machine's pace drifts by 10-30% within minutes, and one side of the ratio alone
        # would carry that drift.
        before = ceiling()
        measured = [("1 worker", 1, "processes"), (f"{cores} workers", cores, "processes")]
        if args.compare_threads:
            measured.append((f"{cores} threads", cores, "threads"))
        digests: dict[str, list[list[int]]] = {}
        collected: list[tuple[str, dict[str, Any], float]] = []
        for label, workers, pool in measured:
            run_root = tmp / f"run-{pool}-{workers}"
            result, rss = run_child(
                __file__,
                [
                    "--child",
                    str(template),
                    str(run_root),
                    "--child-workers",
                    str(workers),
                    "--child-pool",
                    pool,
                ],
            )
            collected.append((label, result, rss))
            digests[label] = [table_digest(uri) for uri in result["tables"].values()]
            shutil.rmtree(run_root, ignore_errors=True)
        after = ceiling()
        ceiling_rate = (before + after) / 2
        print(
            f"  parse-and-validate ceiling (orjson + Pydantic, {cores} processes): "
            f"{ceiling_rate:,.0f} lines/s (mean of {before:,.0f} before the collects and "
            f"{after:,.0f} after)",
            flush=True,
        )
        for label, result, rss in collected:
            total = result["parse_seconds"] + result["finalize_seconds"]
            rate = result["lines"] / total
            parse_rate = result["lines"] / result["parse_seconds"]
            print(
                f"  collect, {label}: {result['lines']:,} lines in {total:.2f} s "
                f"(parse {result['parse_seconds']:.2f} s, tables "
                f"{result['finalize_seconds']:.2f} s) = {rate:,.0f} lines/s = "
                f"{rate / ceiling_rate:.0%} of the ceiling (parse alone {parse_rate:,.0f} "
                f"lines/s = {parse_rate / ceiling_rate:.0%}); results / errors "
                f"{result['results']:,} / {result['errors']:,} (done={result['done']}); "
                f"peak RSS of the process tree {rss:.0f} MB",
                flush=True,
            )
        if args.compare_script:
            script, rss = run_child(
                __file__, ["--script", str(template), str(tmp / "script.parquet")]
            )
            rate = script["lines"] / script["seconds"]
            print(
                f"  a hand-written collect (json + Pydantic + one DataFrame, 1 process): "
                f"{script['lines']:,} lines in {script['seconds']:.2f} s = {rate:,.0f} lines/s "
                f"= {rate / ceiling_rate:.0%} of the ceiling; peak RSS {rss:.0f} MB",
                flush=True,
            )
        same = len({json.dumps(d) for d in digests.values()}) == 1
        print(
            f"  results and errors tables identical across worker counts: {'yes' if same else 'NO'}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
