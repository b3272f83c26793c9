"""Throughput and memory of the build: a local folder of ~2 KB text files → finished shards.

Generates a corpus of --docs files in a temporary folder, then, each in a fresh process:

- the tokenizer ceiling as issue 13 defines it: tiktoken's `encode_ordinary_batch` over the
  same documents on every core (the texts read first, only the encoding timed);
- tiktoken on every core: `encode_ordinary` in a loop, one process per core, each over its
  share. This is what the cores can tokenize: `encode_ordinary_batch` hands each text to a
  thread pool, and with ~2 KB texts that hand-off costs about what the encoding does (the
  batch reached 45-50% of the loop on 2 cores, 2026-12-07), so a build can pass it;
- the build (`tasks.build.build_shards`: listing, partitions, token counting, chunking checks,
  rendering, sharding and index parquet included) with 1 worker and with one per core;
- with --compare-threads, the same partitions built on a thread pool of one thread per core;
- with --compare-script, what a hand-written build does (the usual script after OpenAI's
  batch guide: `os.walk`, tiktoken's `encode`, `json.dumps` into one JSONL file), for scale.

It prints documents per second, the ratio of each build to both ceilings measured in the same
run, and the peak RSS of the whole process tree (the build and its workers, sampled from
/proc every 20 ms).

    .venv/bin/python benchmarks/build_throughput.py                  # 25,000 docs, ~1 min
    .venv/bin/python benchmarks/build_throughput.py --compare-threads --compare-script
    .venv/bin/python benchmarks/build_throughput.py --full           # 10^6 docs: ~2.5 GB of disk
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._children import run_child  # noqa: E402

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


def _job(corpus: str, run_dir: str, shard_requests: int) -> Any:
    from schemas.job import parse_job

    return parse_job(
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


def child_build(corpus: str, run_dir: str, shard_requests: int, workers: int, pool: str) -> None:
    """Build one corpus in this process (and its workers); print its figures as JSON."""
    from schemas.job import JobSpec
    from tasks.build import build_shards

    job = _job(corpus, run_dir, shard_requests)
    assert isinstance(job, JobSpec)
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(_dask_cluster(workers, job)) if pool == "dask" else None
        start = time.perf_counter()
        if pool == "threads":
            documents, requests, shard_uris = _build_on_threads(job, run_dir, workers)
        else:
            summary = build_shards(job, run_dir, workers=workers, dask_address=address)
            documents, requests = summary.documents_seen, summary.requests
            shard_uris = [s.uri for s in summary.shards]
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "documents": documents,
                "requests": requests,
                "shards": len(shard_uris),
                "seconds": seconds,
                "docs_per_second": documents / seconds,
                "requests_digest": _requests_digest(shard_uris),
            }
        )
    )


def _requests_digest(shard_uris: list[str]) -> str:
    """An order-free digest of every request line (the sum of their sha256), streaming: equal
    for builds with the same requests, whatever their shards."""
    total = 0
    for uri in shard_uris:
        with open(uri, "rb") as fh:
            for line in fh:
                total += int.from_bytes(hashlib.sha256(line.rstrip(b"\n")).digest(), "big")
    return f"{total % (1 << 256):064x}"


@contextlib.contextmanager
def _dask_cluster(workers: int, job: Any) -> Iterator[str]:
    """A LocalCluster of `workers` processes, and Prefect's API warmed up (both untimed)."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    import distributed
    from prefect import flow

    @flow
    def warm_up() -> None:
        return None

    warm_up()  # starts Prefect's ephemeral API once, as a long-lived deployment has it
    if not os.environ.get("PREFECT_API_URL"):
        from prefect.server.api.server import SubprocessASGIServer

        # Dask workers report their task runs to the API: hand them this one's address.
        os.environ["PREFECT_API_URL"] = SubprocessASGIServer().api_url
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # A long-lived cluster has its imports, tokenizer and output schema loaded.
        client.run(_warm_up_worker, job)
        yield cluster.scheduler_address


def _warm_up_worker(job: Any) -> None:
    import prefect.task_engine  # noqa: F401  (what a worker imports for its first task run)

    import tasks.cluster_build  # noqa: F401
    from tasks.build_pool import warm_up

    warm_up(job)


def _build_on_threads(job: Any, run_dir: str, workers: int) -> tuple[int, int, list[str]]:
    """The partitions of `build_shards`, on threads instead of processes (for comparison)."""
    from concurrent.futures import ThreadPoolExecutor

    from tasks import storage
    from tasks.build import build_partition
    from tasks.build_merge import merge_partitions
    from tasks.partitions import plan_partitions, remove_spill

    plan = plan_partitions(job.source, spill_dir=storage.join(run_dir, "partitions"))
    with ThreadPoolExecutor(workers) as pool:
        results = list(
            pool.map(lambda i: build_partition(job, run_dir, plan, i), range(plan.count))
        )
    counts, shards, _ = merge_partitions(run_dir, results)
    remove_spill(plan)
    return counts.documents_seen, counts.requests, [s.uri for s in shards]


def child_ceiling(corpus: str, workers: int) -> None:
    """Time `encode_ordinary_batch` over the corpus's texts on `workers` threads."""
    from tasks.tokens import encoding_for_model

    encoding = encoding_for_model("gpt-4.1-mini")
    encoding.encode_ordinary("warm up")
    files = sorted(Path(corpus).rglob("*.txt"))
    seconds = 0.0
    tokens = 0
    for i in range(0, len(files), 20_000):
        texts = [f.read_text() for f in files[i : i + 20_000]]
        start = time.perf_counter()
        encoded = encoding.encode_ordinary_batch(texts, num_threads=workers)
        seconds += time.perf_counter() - start
        tokens += sum(map(len, encoded))
    print(json.dumps({"documents": len(files), "tokens": tokens, "seconds": seconds}))


def child_script(corpus: str, out: str) -> None:
    """What a hand-written build does (the usual script after OpenAI's batch guide): walk the
    folder, read each file as UTF-8, count its prompt's tokens with tiktoken's `encode` for
    the estimate, `json.dumps` a request line into one JSONL file; in one process, with no
    shard limits, index, content hashes, chunking, other formats or rejects (a file that is
    not UTF-8 stops it)."""
    from schemas.response_format import response_format_for
    from schemas.summary import DocumentSummary
    from tasks.tokens import encoding_for_model

    job = _job(corpus, out, 50_000)
    encoding = encoding_for_model(job.model)
    encoding.encode("warm up")
    response_format = response_format_for(DocumentSummary, "/v1/chat/completions")
    start = time.perf_counter()
    documents = tokens = 0
    with open(Path(out) / "requests.jsonl", "w", encoding="utf-8") as fh:
        for root, folders, names in os.walk(corpus):
            folders.sort()
            for name in sorted(names):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as src:
                    text = src.read()
                user = job.user_template.format(text=text, id=name)
                tokens += len(encoding.encode(job.system_prompt)) + len(encoding.encode(user))
                request = {
                    "custom_id": name,
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": job.model,
                        "messages": [
                            {"role": "system", "content": job.system_prompt},
                            {"role": "user", "content": user},
                        ],
                        "response_format": response_format,
                        "max_completion_tokens": job.params.max_output_tokens,
                    },
                }
                fh.write(json.dumps(request) + "\n")
                documents += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"documents": documents, "tokens": tokens, "seconds": seconds}))


def _encode_slice(files: list[str], barrier: Any) -> tuple[int, int, float]:
    """In a worker process: read `files`, wait for the others, then time `encode_ordinary`
    over their texts one at a time (no thread pool)."""
    from tasks.tokens import encoding_for_model

    encoding = encoding_for_model("gpt-4.1-mini")
    encoding.encode_ordinary("warm up")
    texts = [Path(f).read_text() for f in files]
    barrier.wait()
    start = time.perf_counter()
    tokens = sum(len(encoding.encode_ordinary(text)) for text in texts)
    return len(texts), tokens, time.perf_counter() - start


def child_core_ceiling(corpus: str, workers: int) -> None:
    """Time tiktoken's `encode_ordinary` in a loop on one process per core, each over its
    share of the corpus, started together: what the cores can tokenize, without the thread
    pool of `encode_ordinary_batch`. (Memory: each process holds its share of the texts.)"""
    import multiprocessing

    files = [str(f) for f in sorted(Path(corpus).rglob("*.txt"))]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(workers) as pool:
        barrier = manager.Barrier(workers)
        shares = [(files[i::workers], barrier) for i in range(workers)]
        results = pool.starmap(_encode_slice, shares)
    print(
        json.dumps(
            {
                "documents": sum(r[0] for r in results),
                "tokens": sum(r[1] for r in results),
                "seconds": max(r[2] for r in results),
            }
        )
    )


def _tokenizer_rate(flag: str, corpus: Path, cores: int) -> tuple[float, dict[str, Any]]:
    """Documents per second of one tokenizer measure (`--ceiling` or `--core-ceiling`), in a
    fresh process, and its figures."""
    figures, _ = run_child(__file__, [flag, str(corpus), "--child-workers", str(cores)])
    return figures["documents"] / figures["seconds"], figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=25_000, help="documents in the corpus")
    parser.add_argument("--full", action="store_true", help="10^6 documents (overrides --docs)")
    parser.add_argument("--doc-bytes", type=int, default=2_000, help="approximate document size")
    parser.add_argument("--shard-requests", type=int, default=50_000, help="max_requests_per_shard")
    parser.add_argument("--workers", type=int, default=0, help="all-core worker count (0: cores)")
    parser.add_argument(
        "--compare-threads", action="store_true", help="also build on a thread pool"
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="also build on a Dask LocalCluster of one process per core (needs [dask])",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", nargs=2, metavar=("CORPUS", "RUN_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child-pool", default="processes", help=argparse.SUPPRESS)
    parser.add_argument("--ceiling", metavar="CORPUS", help=argparse.SUPPRESS)
    parser.add_argument("--core-ceiling", metavar="CORPUS", help=argparse.SUPPRESS)
    parser.add_argument("--script", nargs=2, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--compare-script",
        action="store_true",
        help="also time a hand-written build (os.walk, json.dumps, tiktoken; one process)",
    )
    args = parser.parse_args()
    if args.child:
        child_build(*args.child, args.shard_requests, args.child_workers, args.child_pool)
        return
    if args.ceiling:
        child_ceiling(args.ceiling, args.child_workers)
        return
    if args.core_ceiling:
        child_core_ceiling(args.core_ceiling, args.child_workers)
        return
    if args.script:
        child_script(*args.script)
        return

    from tasks.build_pool import usable_cores

    cores = args.workers or usable_cores()
    docs = 1_000_000 if args.full else args.docs
    tmp = Path(tempfile.mkdtemp(prefix="overnight-bench-"))
    try:
        corpus = tmp / "corpus"
        t0 = time.perf_counter()
        size = generate(corpus, docs, args.doc_bytes)
        os.sync()  # flush the new corpus now, not while the build is being timed
        print(
            f"generated {docs:,} documents ({size / docs:,.0f} B each) "
            f"in {time.perf_counter() - t0:.1f} s; {cores} core(s)",
            flush=True,
        )
        ceiling_rate, ceiling = _tokenizer_rate("--ceiling", corpus, cores)
        print(
            f"  tokenizer ceiling (encode_ordinary_batch, {cores} threads): "
            f"{ceiling_rate:,.0f} docs/s ({ceiling['tokens']:,} tokens in "
            f"{ceiling['seconds']:.2f} s)",
            flush=True,
        )
        core_rate, _ = _tokenizer_rate("--core-ceiling", corpus, cores)
        print(
            f"  tiktoken on every core (encode_ordinary in a loop, {cores} processes): "
            f"{core_rate:,.0f} docs/s; the thread pool of encode_ordinary_batch reaches "
            f"{ceiling_rate / core_rate:.0%} of it",
            flush=True,
        )
        runs = [("1 worker", 1, "processes"), (f"{cores} workers", cores, "processes")]
        if args.compare_threads:
            runs.append((f"{cores} threads", cores, "threads"))
        if args.dask:
            runs.append((f"Dask LocalCluster of {cores} workers", cores, "dask"))
        figures: dict[str, dict[str, Any]] = {}
        for label, workers, pool in runs:
            run_dir = tmp / f"run-{pool}-{workers}"
            result, rss = run_child(
                __file__,
                [
                    "--child",
                    str(corpus),
                    str(run_dir),
                    "--shard-requests",
                    str(args.shard_requests),
                    "--child-workers",
                    str(workers),
                    "--child-pool",
                    pool,
                ],
            )
            print(
                f"  build, {label}: {result['documents']:,} docs → {result['requests']:,} "
                f"requests in {result['shards']} shard(s): {result['seconds']:.2f} s = "
                f"{result['docs_per_second']:,.0f} docs/s = "
                f"{result['docs_per_second'] / ceiling_rate:.0%} of the ceiling, "
                f"{result['docs_per_second'] / core_rate:.0%} of tiktoken on every core; "
                f"peak RSS of the process tree {rss:.0f} MB",
                flush=True,
            )
            figures[pool if workers > 1 else "one"] = result
            shutil.rmtree(run_dir, ignore_errors=True)
        if args.compare_script:
            out = tmp / "script"
            out.mkdir()
            script, rss = run_child(__file__, ["--script", str(corpus), str(out)])
            rate = script["documents"] / script["seconds"]
            print(
                f"  a hand-written build (os.walk, tiktoken encode, json.dumps, 1 process): "
                f"{script['documents']:,} docs in {script['seconds']:.2f} s = {rate:,.0f} docs/s; "
                f"peak RSS {rss:.0f} MB",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
        digests = {name: f["requests_digest"] for name, f in figures.items()}
        same = len(set(digests.values())) == 1
        print(f"  request lines identical across builds: {'yes' if same else digests}")
        if "dask" in figures:
            local, dask = figures["processes"]["seconds"], figures["dask"]["seconds"]
            print(
                f"  Dask wall time {dask:.2f} s = {dask / local:.2f}× the local pool's "
                f"{local:.2f} s (overhead {dask - local:+.2f} s)"
            )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
