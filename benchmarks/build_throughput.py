"""Throughput and memory of the build: a local folder of ~2 KB text files → finished shards.

Generates two corpora in a temporary folder (a quarter of --docs, and --docs), builds each in
a fresh process with `tasks.build.build_shards` (token counting, chunking checks, rendering,
sharding and index parquet included) and prints documents per second and the peak RSS of
each process. Memory must not grow with the corpus: the two peaks should be close.

    .venv/bin/python benchmarks/build_throughput.py --docs 20000
    .venv/bin/python benchmarks/build_throughput.py --docs 20000 --shard-requests 2000
    .venv/bin/python benchmarks/build_throughput.py --docs 1000000   # full size: ~7 GB of disk
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_TEXT = (
    "the a of to and in for on with by from report customer order invoice payment team "
    "office meeting project release data queue service delivery update policy budget risk "
    "quarter revenue staff support ticket review action owner date account system network "
    "incident summary request approval contract supplier price cost schedule plan decision "
    "München café naïve résumé 2025 £310,000 41% Q2 v1.8 — “quoted” e-mail"
)
_WORDS = _TEXT.split()


def _paragraphs(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = rng.choices(_WORDS, k=rng.randint(8, 20))
            sentences.append(" ".join(words).capitalize() + ".")
        out.append(" ".join(sentences))
    return out


def generate(folder: Path, docs: int, doc_bytes: int, seed: int = 7) -> int:
    """Write `docs` text files of about `doc_bytes` bytes, 1,000 per subfolder; return bytes."""
    rng = random.Random(seed)
    pool = _paragraphs(rng, 2000)
    total = 0
    for i in range(docs):
        sub = folder / f"part-{i // 1000:05d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        parts = [f"Document {i}: weekly note from site {rng.randint(1, 500)}"]
        size = len(parts[0])
        while size < doc_bytes:
            para = pool[rng.randrange(len(pool))]
            parts.append(para)
            size += len(para) + 2
        data = "\n\n".join(parts).encode()
        (sub / f"doc-{i:07d}.txt").write_bytes(data)
        total += len(data)
    return total


def child(corpus: str, run_dir: str, shard_requests: int) -> None:
    """Build one corpus in this process and print its figures as JSON."""
    from schemas.job import parse_job
    from tasks.build import build_shards

    job = parse_job(
        {
            "name": "bench",
            "source": {"uri": corpus},
            "output": run_dir,
            "model": "gpt-4.1-mini",
            "system_prompt": "Summarize the document for a daily digest. Be faithful.",
            "user_template": "Summarize this document ({id}).\n\n<document>\n{text}\n</document>",
            "output_schema": "schemas.summary:DocumentSummary",
            "params": {"max_output_tokens": 600},
            "chunking": {"max_input_tokens": 8000},
            "limits": {"max_requests_per_shard": shard_requests},
        }
    )
    from tasks.tokens import encoding_for_model

    encoding_for_model(job.model).encode_ordinary("warm up")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    summary = build_shards(job, run_dir)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "documents": summary.documents_seen,
                "requests": summary.requests,
                "shards": len(summary.shards),
                "input_tokens": summary.input_tokens,
                "seconds": seconds,
                "docs_per_second": summary.documents_seen / seconds,
                "rss_before_build_mb": rss_before / 1024,
                "peak_rss_mb": peak_kb / 1024,
                "shard_bytes": sum(s.bytes for s in summary.shards),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000, help="documents in the large corpus")
    parser.add_argument("--doc-bytes", type=int, default=2_000, help="approximate document size")
    parser.add_argument(
        "--shard-requests",
        type=int,
        default=50_000,
        help="max_requests_per_shard; lower it to see memory stay flat on a small corpus",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", nargs=2, metavar=("CORPUS", "RUN_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, shard_requests=args.shard_requests)
        return

    tmp = Path(tempfile.mkdtemp(prefix="overnight-bench-"))
    try:
        results = []
        for docs in (max(args.docs // 4, 1), args.docs):
            corpus = tmp / f"corpus-{docs}"
            t0 = time.perf_counter()
            size = generate(corpus, docs, args.doc_bytes)
            os.sync()  # flush the new corpus now, not while the build is being timed
            print(
                f"generated {docs:,} documents ({size / docs:,.0f} B each) "
                f"in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(corpus),
                    str(tmp / f"run-{docs}"),
                    "--shard-requests",
                    str(args.shard_requests),
                ],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"  built {result['documents']:,} docs → {result['requests']:,} requests in "
                f"{result['shards']} shard(s), {result['input_tokens']:,} input tokens: "
                f"{result['seconds']:.2f} s = {result['docs_per_second']:,.0f} docs/s; "
                f"peak RSS {result['peak_rss_mb']:.0f} MB "
                f"(after imports {result['rss_before_build_mb']:.0f} MB)",
                flush=True,
            )
            shutil.rmtree(corpus, ignore_errors=True)
            shutil.rmtree(tmp / f"run-{docs}", ignore_errors=True)
        small, large = results
        print(
            f"peak RSS: {small['peak_rss_mb']:.0f} MB at {small['documents']:,} docs, "
            f"{large['peak_rss_mb']:.0f} MB at {large['documents']:,} docs "
            f"(+{large['peak_rss_mb'] - small['peak_rss_mb']:.0f} MB)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
