"""The partitioned build: stable partitions, the same results whatever the worker count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import polars as pl
import pytest

from schemas.build import BuildSummary
from schemas.job import JobSpec
from tasks import storage
from tasks.build import BuildCounts, build_shards, count_requests
from tasks.estimate import estimate_job, price_counts
from tasks.partitions import (
    BUCKETS,
    MAX_PARTITIONS,
    bucket_of,
    iter_partition,
    partition_count,
    plan_partitions,
)
from tasks.pricing import load_pricing
from tests.tasks.test_build import check_consistent, make_job, write_docs

REPO = Path(__file__).resolve().parents[2]


def requests_by_id(summary: BuildSummary) -> dict[str, bytes]:
    """custom_id → its request line, over every shard."""
    out: dict[str, bytes] = {}
    for shard in summary.shards:
        for line in storage.read_bytes(shard.uri).splitlines():
            out[orjson.loads(line)["custom_id"]] = line
    return out


def rejected_lines(summary: BuildSummary) -> list[bytes]:
    return sorted(storage.read_bytes(summary.rejected_uri).splitlines())


COUNTS = (
    "documents_seen",
    "documents_skipped",
    "documents_built",
    "documents_rejected",
    "requests",
    "input_tokens",
    "documents_chunked",
    "chunked_requests",
)


def counts_of(summary: BuildSummary) -> tuple[int, ...]:
    return tuple(getattr(summary, name) for name in COUNTS)


def estimate_of(job: JobSpec, summary: BuildSummary) -> float:
    """The run's estimate, priced as `prepare_run` prices a build."""
    counts = BuildCounts(**{name: getattr(summary, name) for name in COUNTS})
    shards = len(summary.shards)
    return price_counts(job, counts, shards=shards, pricing=load_pricing()).batch_cost_max_usd


def corpus(tmp_path: Path, count: int = 64) -> Path:
    folder = write_docs(tmp_path / "in", count, "Document {i}. " + "Words of a note. " * 40)
    (folder / "zz-empty.txt").write_text("")  # one reject
    return folder


def test_partition_count_is_a_power_of_two_derived_from_the_listing() -> None:
    assert [partition_count(n, 10) for n in (0, 1, 10, 11, 30, 41, 80, 10**6)] == [
        1,
        1,
        1,
        2,
        4,
        8,
        8,
        MAX_PARTITIONS,
    ]
    assert BUCKETS % MAX_PARTITIONS == 0
    assert bucket_of("a/b.txt") == bucket_of("a/b.txt") != bucket_of("a/c.txt")


def test_a_listing_of_few_big_files_is_split_by_its_bytes(tmp_path: Path) -> None:
    # 4,000 manuals of several MB each were one partition (files counted only): the whole
    # build ran on one core.
    assert partition_count(10, 1000, size=0, bytes_per_partition=100) == 1
    assert partition_count(10, 1000, size=101, bytes_per_partition=100) == 2
    assert partition_count(10, 1000, size=350, bytes_per_partition=100) == 4
    folder = corpus(tmp_path, 16)  # 16 files of ~700 bytes, one empty
    job = make_job(folder)
    by_bytes = plan_partitions(
        job.source,
        spill_dir=str(tmp_path / "s"),
        files_per_partition=1000,
        bytes_per_partition=2000,
    )
    assert by_bytes.count == 8 and by_bytes.entries == 17
    keys = [info.key for p in range(by_bytes.count) for info in iter_partition(by_bytes, p)]
    assert sorted(keys) == sorted(info.key for info in storage.list_entries(str(folder)))
    roomy = plan_partitions(
        job.source,
        spill_dir=str(tmp_path / "r"),
        files_per_partition=1000,
        bytes_per_partition=10**9,
    )
    assert roomy.count == 1
    parted = build_shards(job, str(tmp_path / "p"), workers=2, bytes_per_partition=2000)
    whole = build_shards(job, str(tmp_path / "w"), bytes_per_partition=10**9)
    assert len({s.shard_id.rsplit("-", 1)[0] for s in parted.shards}) > 1
    assert (parted.requests, parted.input_tokens, parted.documents_rejected) == (
        whole.requests,
        whole.input_tokens,
        whole.documents_rejected,
    )


def test_partitions_cover_the_listing_once_in_a_stable_order(tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    odd = folder / os.fsdecode(b"caf\xe9.txt")  # a name that is not UTF-8 survives the spill
    odd.write_text("Bonjour.")
    job = make_job(folder)
    plan = plan_partitions(job.source, spill_dir=str(tmp_path / "spill"), files_per_partition=8)
    again = plan_partitions(job.source, spill_dir=str(tmp_path / "again"), files_per_partition=8)
    assert plan.count == again.count == 16 and plan.entries == 66
    parts = [[info.key for info in iter_partition(plan, i)] for i in range(plan.count)]
    assert parts == [[info.key for info in iter_partition(again, i)] for i in range(plan.count)]
    listed = [info for p in range(plan.count) for info in iter_partition(plan, p)]
    assert sorted(info.key for info in listed) == sorted(
        info.key for info in storage.list_entries(str(folder))
    )
    [back] = [info for info in listed if info.path is not None]
    assert back.path == str(odd) and Path(back.path).read_text() == "Bonjour."
    for p, keys in enumerate(parts):
        assert all(bucket_of(k) * plan.count // BUCKETS == p for k in keys)
    small = plan_partitions(job.source, spill_dir=str(tmp_path / "none"), files_per_partition=100)
    assert small.count == 1 and len(small.listing) == 66 and not (tmp_path / "none").exists()


def test_results_do_not_depend_on_the_worker_count(tmp_path: Path) -> None:
    job = make_job(corpus(tmp_path), limits={"max_requests_per_shard": 3})
    seen: list[int] = []
    one = build_shards(job, str(tmp_path / "w1"), workers=1, files_per_partition=9)
    two = build_shards(
        job, str(tmp_path / "w2"), workers=2, files_per_partition=9, progress=seen.append
    )
    whole = build_shards(job, str(tmp_path / "whole"), files_per_partition=1000)
    for summary in (one, two, whole):
        check_consistent(summary)
    assert sum(seen) == two.documents_seen == 65
    # Same partitions, so the very same shards, whatever the worker count...
    assert [(s.shard_id, s.sha256, s.requests) for s in one.shards] == [
        (s.shard_id, s.sha256, s.requests) for s in two.shards
    ]
    assert {s.shard_id.rsplit("-", 1)[0] for s in two.shards} == {
        f"shard-p{p:02d}" for p in range(8)
    }
    # ...and against one partition: the same requests and counts, in other shards.
    assert requests_by_id(one) == requests_by_id(two) == requests_by_id(whole)
    assert counts_of(one) == counts_of(two) == counts_of(whole)
    assert estimate_of(job, one) == estimate_of(job, two)
    assert rejected_lines(one) == rejected_lines(two) == rejected_lines(whole)
    assert len(whole.shards) == 22 and len(two.shards) > len(whole.shards)
    assert not list((tmp_path / "w2" / "partitions").iterdir())  # spill and parts removed
    estimate = estimate_job(job)
    assert (estimate.requests, estimate.input_tokens) == (two.requests, two.input_tokens)


def test_the_estimate_counts_what_the_partitioned_build_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: the estimate read every partition in one process into one dry writer, so a
    # long listing was counted on one core (4 min 45 s for /usr/share/doc against the build's
    # 3 min 38 s on two) and its shard count was not the build's.
    job = make_job(corpus(tmp_path), limits={"max_requests_per_shard": 3})
    built = build_shards(job, str(tmp_path / "built"), workers=2, files_per_partition=9)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    for workers in (1, 2):
        seen: list[int] = []
        counts, shards = count_requests(
            job, workers=workers, files_per_partition=9, progress=seen.append
        )
        assert tuple(getattr(counts, name) for name in COUNTS) == counts_of(built)
        assert [(s.shard_id, s.requests, s.input_tokens) for s in shards] == [
            (s.shard_id, s.requests, s.input_tokens) for s in built.shards
        ]
        assert sum(seen) == 65
    assert not list(temp.iterdir())  # the dry build's indexes are gone


def _records_file(folder: Path, name: str, ids: list[str]) -> None:
    lines = [orjson.dumps({"id": i, "text": f"Record {i} from {name}."}) for i in ids]
    (folder / name).write_bytes(b"\n".join(lines) + b"\n")


def test_a_duplicate_id_in_two_partitions_is_rejected_once(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    names = [f"records-{i:02d}.jsonl" for i in range(16)]
    first, second = sorted(names, key=lambda n: bucket_of(n) * 2 // BUCKETS)[:: len(names) - 1]
    assert bucket_of(first) * 2 // BUCKETS == 0 and bucket_of(second) * 2 // BUCKETS == 1
    for name in names:
        ids = [f"{name}-{j}" for j in range(3)]
        if name in (first, second):
            ids.append("shared-id")
        _records_file(folder, name, ids)
    job = make_job(folder, source={"id_field": "id", "text_field": "text"})
    parted = build_shards(job, str(tmp_path / "p"), workers=1, files_per_partition=8)
    whole = build_shards(job, str(tmp_path / "w"), files_per_partition=100)
    check_consistent(parted)
    assert parted.documents_rejected == whole.documents_rejected == 1
    [reject] = [orjson.loads(line) for line in rejected_lines(parted)]
    assert (reject["code"], reject["document_id"]) == ("duplicate_id", "shared-id")
    assert second in reject["source_uri"]  # the later partition's copy is the one refused
    kept = {
        orjson.loads(line)["body"]["messages"][1]["content"]
        for line in requests_by_id(parted).values()
    }
    assert any(f"Record shared-id from {first}." in text for text in kept)
    assert counts_of(parted) == counts_of(whole)
    index = pl.concat([pl.read_parquet(s.index_uri) for s in parted.shards])
    assert index.height == parted.requests == 16 * 3 + 1
    estimate = estimate_job(job)
    assert (estimate.requests, estimate.input_tokens) == (parted.requests, parted.input_tokens)
    counts, shards = count_requests(job, workers=2, files_per_partition=8)
    assert tuple(getattr(counts, name) for name in COUNTS) == counts_of(parted)
    assert counts.rejected_by_code == {"duplicate_id": 1}
    assert sum(s.requests for s in shards) == parted.requests


_KILL_DRIVER = """
import sys
from tasks.pricing import load_pricing
from tests.tasks.test_build import make_job
from tasks.build import build_shards
job = make_job(sys.argv[1], limits={"max_requests_per_shard": 50})
build_shards(job, sys.argv[2], workers=2, files_per_partition=64)
"""


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _assert_gone(workers: set[int]) -> None:
    """Every one of these processes has exited within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc")
def test_a_killed_build_leaves_no_worker_behind(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "in", 1500, "Document {i}. " + "Words of a note. " * 30)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_DRIVER, str(folder), str(tmp_path / "run")], cwd=REPO, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "run").glob("shards/*.jsonl")):
            assert proc.poll() is None, "the build ended before it could be killed"
            time.sleep(0.05)
        workers = _descendants(proc.pid)
        assert len(workers) >= 2  # two workers (and the resource tracker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_gone(workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_partitioned_build_from_and_into_s3(tmp_path: Path, s3_bucket: str) -> None:
    client = storage.s3_client()
    for i in range(24):
        client.put_object(Bucket=s3_bucket, Key=f"in/doc-{i:02d}.txt", Body=f"Note {i}.".encode())
    job = make_job(f"s3://{s3_bucket}/in/")
    run_dir = f"s3://{s3_bucket}/runs/r1"
    parted = build_shards(job, run_dir, workers=1, files_per_partition=4)
    whole = build_shards(job, str(tmp_path / "whole"), files_per_partition=100)
    check_consistent(parted)
    assert len({s.shard_id.rsplit("-", 1)[0] for s in parted.shards}) == 8
    assert requests_by_id(parted) == requests_by_id(whole)
    assert counts_of(parted) == counts_of(whole)
    left = client.list_objects_v2(Bucket=s3_bucket, Prefix="runs/r1/partitions/")
    assert left.get("KeyCount", 0) == 0  # the spilled listing and partition rejects are gone


def slowly(_document: object) -> bool:
    """A `should_process` that makes each document take 50 ms: partitions that run long."""
    time.sleep(0.05)
    return True


_INTERRUPT_DRIVER = """
import sys
from tests.tasks.test_build import make_job
from tests.tasks.test_build_partitions import slowly
from tasks.build import build_shards
job = make_job(sys.argv[1])
build_shards(job, sys.argv[2], workers=2, files_per_partition=300, should_process=slowly)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc")
def test_ctrl_c_stops_a_partitioned_build_at_once(tmp_path: Path) -> None:
    # Regression: Ctrl-C waited for the partitions being built to finish (56 s for
    # `estimate` on /usr/share/doc) before the command stopped.
    folder = write_docs(tmp_path / "in", 1200, "Document {i}. A note on copper.")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPT_DRIVER, str(folder), str(tmp_path / "run")],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_descendants(proc.pid)) < 3:
            assert proc.poll() is None, "the build ended before it could be interrupted"
            time.sleep(0.05)
        workers = _descendants(proc.pid)
        time.sleep(2)  # the workers are inside their partitions (~15 s each)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal signals the whole group
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - started < 8
        assert proc.returncode != 0 and b"KeyboardInterrupt" in err
        _assert_gone(workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
