"""How long `save_manifest` takes for a run of 10^6 requests, on local disk and on moto S3.

The manifest holds one record per shard (never one per request), so its size grows with the
shard count: 10^6 requests are 20 shards of 50,000 at the least, 32 when a partitioned build
(32 partitions) writes them, and more after retries. Builds such manifests with every shard
fully collected (batch ids, request counts, output URIs, a few batch errors), then times
`save_manifest` --repeat times on a local folder and on a moto S3 server on 127.0.0.1, and
prints the median and the slowest save in ms, and the manifest's size.

    .venv/bin/python benchmarks/manifest_save.py
    .venv/bin/python benchmarks/manifest_save.py --requests 1000000 --shards 20 32 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from schemas.job import JobSpec
from schemas.manifest import RunManifest, ShardRecord, utcnow
from tasks import storage
from tasks.runs.store import manifest_uri, save_manifest


def make_manifest(run_dir: str, requests: int, shards: int) -> RunManifest:
    """A finished-looking manifest of `requests` requests over `shards` shards."""
    job = JobSpec.model_validate(
        {
            "name": "bench",
            "source": {"uri": "s3://corpus/docs/"},
            "output": run_dir.rsplit("/runs/", 1)[0],
            "model": "gpt-4.1-mini",
            "system_prompt": "Summarize the document for a daily digest. Be faithful.",
            "output_schema": "schemas.summary:DocumentSummary",
            "params": {"max_output_tokens": 600},
        }
    )
    manifest = RunManifest(
        run_id="bench-20260101T000000Z-12345678",
        job_name=job.name,
        job_fingerprint=job.fingerprint(),
        job=job.model_dump(mode="json"),
        run_dir=run_dir,
        output=job.output,
        backend="openai",
        status="in_progress",
    )
    manifest.counts.requests = requests
    now = utcnow()
    per_shard = -(-requests // shards)
    for s in range(shards):
        count = min(per_shard, requests - s * per_shard)
        shard_id = f"shard-p{s % 32:02d}-{s // 32:05d}"
        manifest.shards.append(
            ShardRecord(
                shard_id=shard_id,
                uri=storage.join(run_dir, "shards", f"{shard_id}.jsonl"),
                index_uri=storage.join(run_dir, "shards", f"{shard_id}.index.parquet"),
                sha256="ab" * 32,
                requests=count,
                bytes=count * 2_900,
                input_tokens=count * 700,
                model=job.model,
                endpoint=job.endpoint,
                key=f"a1/{shard_id}",
                attempt=1,
                state="parsed",
                file_id=f"file-{s:024x}",
                batch_id=f"batch_{s:024x}",
                batch_status="completed",
                request_counts={"total": count, "completed": count - 3, "failed": 3},
                batch_errors=[
                    {"code": "invalid_request", "message": "line 17: bad body", "line": 17}
                ],
                output_file_id=f"file-out-{s:020x}",
                error_file_id=f"file-err-{s:020x}",
                output_uri=storage.join(run_dir, "outputs", f"a1-{shard_id}.output.jsonl"),
                error_uri=storage.join(run_dir, "outputs", f"a1-{shard_id}.error.jsonl"),
                results=count - 3,
                errors=3,
                parts=max(1, count // 20_000),
                submitted_at=now - timedelta(hours=5),
                running_since=now - timedelta(hours=4),
                polls=40,
            )
        )
    return manifest


def time_saves(manifest: RunManifest, repeat: int) -> tuple[float, float, int]:
    """Median and slowest save in ms, and the manifest's size in bytes."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        save_manifest(manifest)
        times.append((time.perf_counter() - start) * 1000)
    size = len(storage.read_bytes(manifest_uri(manifest.run_dir)))
    return statistics.median(times), max(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[20, 32, 200])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    storage.s3_client.cache_clear()
    storage.s3_client().create_bucket(Bucket="bench-out")
    try:
        with tempfile.TemporaryDirectory(prefix="overnight-manifest-") as tmp:
            for shards in args.shards:
                for where, base in (("local disk", tmp), ("moto S3", "s3://bench-out")):
                    run_dir = storage.join(base, "out", "runs", f"bench-{shards}")
                    manifest = make_manifest(run_dir, args.requests, shards)
                    save_manifest(manifest)  # warm up: imports, the S3 connection
                    median, slowest, size = time_saves(manifest, args.repeat)
                    print(
                        f"{args.requests:,} requests in {shards} shards, {where}: "
                        f"save_manifest {median:.1f} ms median, {slowest:.1f} ms slowest "
                        f"({size / 1024:.0f} KB)",
                        flush=True,
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
