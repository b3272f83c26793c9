"""The build on a Dask cluster (prefect-dask) gives the results of the local build."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.build import build_shards
from tests.tasks.test_build import check_consistent, make_job, write_docs
from tests.tasks.test_build_partitions import (
    counts_of,
    estimate_of,
    rejected_lines,
    requests_by_id,
)

distributed = pytest.importorskip("distributed", reason="prefect-dask is the optional [dask] extra")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two worker processes, one thread each, on 127.0.0.1; yields the scheduler's address."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local.scheduler_address


def test_the_dask_build_equals_the_local_build(tmp_path: Path, cluster: str) -> None:
    folder = write_docs(tmp_path / "in", 60, "Note {i}. " + "Words of a weekly note. " * 30)
    (folder / "zz-empty.txt").write_text("")
    job = make_job(folder, limits={"max_requests_per_shard": 10})
    local = build_shards(job, str(tmp_path / "local"), workers=1, files_per_partition=16)
    seen: list[int] = []
    remote = build_shards(
        job,
        str(tmp_path / "dask"),
        dask_address=cluster,
        files_per_partition=16,
        progress=seen.append,
    )
    check_consistent(remote)
    assert sum(seen) == remote.documents_seen == 61
    assert requests_by_id(remote) == requests_by_id(local)
    assert counts_of(remote) == counts_of(local)
    assert rejected_lines(remote) == rejected_lines(local)
    assert [(s.shard_id, s.sha256) for s in remote.shards] == [
        (s.shard_id, s.sha256) for s in local.shards
    ]
    assert len({s.shard_id.rsplit("-", 1)[0] for s in remote.shards}) == 4

    assert estimate_of(job, remote) == estimate_of(job, local)
