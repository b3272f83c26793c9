"""Collect throughput: batch output lines → classified, validated, written parquet tables.

Builds a synthetic run (shards with their index, and OpenAI-shaped output files of chat
completions whose content is a DocumentSummary), then times `parse_outputs` + `finalize_run`,
the part of `collect` that runs on our machine. Prints lines/s and peak RSS.

    python benchmarks/collect_throughput.py --lines 200000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.job import JobSpec
from schemas.manifest import RunManifest, ShardRecord
from tasks import runs


def make_run(root: Path, lines: int, shard_size: int, invalid_every: int) -> RunManifest:
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
    runs.save_manifest(manifest)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument(
        "--invalid-every", type=int, default=100, help="every Nth answer is bad JSON"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="overnight-bench-") as tmp:
        t0 = time.perf_counter()
        manifest = make_run(Path(tmp), args.lines, args.shard_size, args.invalid_every)
        made = time.perf_counter() - t0
        job = JobSpec.model_validate(manifest.job)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t1 = time.perf_counter()
        runs.parse_outputs(manifest, job)
        parsed = time.perf_counter() - t1
        rss_parsed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t2 = time.perf_counter()
        done = runs.finalize_run(manifest, job)
        finished = time.perf_counter() - t2
        total = parsed + finished
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = sum(f.stat().st_size for f in Path(tmp, "out", "runs").rglob("*.output.jsonl"))
        print(
            f"lines                 {args.lines:,} in {len(manifest.shards)} shard(s), {size / 1e6:,.0f} MB of output files (made in {made:.1f} s)"
        )
        print(f"parse + validate      {parsed:.2f} s  ({args.lines / parsed:,.0f} lines/s)")
        print(f"finalize (tables)     {finished:.2f} s")
        print(f"collect total         {total:.2f} s  ({args.lines / total:,.0f} lines/s)")
        print(
            f"results / errors      {manifest.counts.results:,} / {manifest.counts.errors:,}  (done={done})"
        )
        print(
            f"peak RSS              {peak:,.0f} MB (before parsing: {rss_before:,.0f} MB, "
            f"after parsing: {rss_parsed:,.0f} MB)"
        )
        print(f"cpu count             {os.cpu_count()}")


if __name__ == "__main__":
    main()
