"""The simulator on several processes answers exactly as the simulator in one thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai import OpenAI

from localbatch._execution import WorkItem, output_line
from localbatch._pool import POOL_CHUNK, POOL_MIN_BYTES, PooledSimulator
from localbatch._simulate import Simulator
from tests.localbatch._helpers import (
    SUMMARY_SCHEMA,
    chat_line,
    document,
    jsonl,
    printed_base_url,
    read_lines,
    responses_line,
    run_batch,
)

# A long shared preamble puts every prompt over 1,024 tokens, so answers depend on the prompt
# cache (what earlier lines sent): the one piece of state the simulator keeps between lines.
PREAMBLE = "Policy handbook, section 4. " + " ".join(
    f"Rule {n}: every invoice above {n * 100} euros needs a second signature." for n in range(90)
)


def _lines(n: int, *, preamble: bool = True, responses: bool = True) -> list[dict[str, Any]]:
    lines = []
    for i in range(n):
        text = document(i, sentences=4 + i % 7)
        if preamble and i % 3 == 0:
            text = PREAMBLE + "\n\n" + text
        if responses and i % 2:
            lines.append(responses_line(f"r-{i}", text, schema=SUMMARY_SCHEMA))
        else:
            lines.append(chat_line(f"c-{i}", text, schema=SUMMARY_SCHEMA, max_tokens=300))
    return lines


def _items(lines: list[dict[str, Any]]) -> list[WorkItem]:
    items = []
    for number, line in enumerate(lines):
        raw = orjson.dumps(line)
        items.append(
            WorkItem(
                line=number,
                custom_id=line["custom_id"],
                url=line["url"],
                body=line["body"],
                model=line["body"]["model"],
                key=f"batch_x:{line['custom_id']}",
                created=1_700_000_000,
                raw=raw,
            )
        )
    return items


def _written(items: list[WorkItem], executor: Any) -> list[bytes]:
    outcomes = executor.execute(items)
    return [
        orjson.dumps(output_line(i.key, i.custom_id, o))
        for i, o in zip(items, outcomes, strict=True)
    ]


@pytest.fixture(scope="module")
def pool() -> Any:
    pooled = PooledSimulator(seed=7, workers=2)
    assert pooled.wait_ready(120), "the simulator workers did not start"
    yield pooled
    pooled.close()


def test_pool_writes_the_same_lines_as_one_thread(pool: PooledSimulator) -> None:
    items = _items(_lines(POOL_CHUNK))
    serial = _written(items, Simulator(seed=7))
    # Twice in a row: the second run hits the prompt cache the first one filled.
    pooled_first = _written(items, pool)
    pooled_again = _written(items, pool)
    serial_again = _written(items, Simulator(seed=7))  # a fresh cache: as the first run
    assert pooled_first == serial == serial_again
    cached = [orjson.loads(line)["response"]["body"]["usage"] for line in pooled_again]
    hits = [
        u.get("prompt_tokens_details", u.get("input_tokens_details"))["cached_tokens"]
        for u in cached
    ]
    assert sum(1 for h in hits if h >= 1024) == len(range(0, POOL_CHUNK, 3))
    one_thread = Simulator(seed=7)
    one_thread.execute(items)
    assert pooled_again == _written(items, one_thread)


def test_a_dead_worker_costs_only_time(pool: PooledSimulator) -> None:
    items = _items(_lines(256, preamble=False))  # no cached prefix: the pool's cache is warm
    expected = _written(items, Simulator(seed=7))
    os.kill(pool.worker_pids()[0], signal.SIGKILL)
    time.sleep(0.2)
    assert _written(items, pool) == expected  # the chunk ran in the server's thread
    assert pool.wait_ready(120)  # and a new pool started
    assert _written(items, pool)[:3] != [] and len(pool.worker_pids()) == 2


def test_a_big_batch_through_the_client_matches_one_thread(
    make_server: Any, tmp_path: Path
) -> None:
    lines = _lines(700, responses=False)  # a batch has one endpoint
    outputs = []
    for workers in (2, 1):
        server = make_server(
            data_dir=tmp_path / f"data-{workers}", simulate_workers=workers, seed=3
        )
        executor = server._service().executor
        if workers == 2:
            assert isinstance(executor, PooledSimulator) and executor.wait_ready(120)
        client = OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        batch = run_batch(client, lines)
        assert batch.status == "completed" and batch.request_counts.completed == 700
        rows = read_lines(client, batch.output_file_id)
        # Ids are derived from the batch id, which differs between the servers.
        outputs.append(
            [(r["custom_id"], r["response"]["body"]["usage"], _content(r)) for r in rows]
        )
    assert outputs[0] == outputs[1]


def _content(row: dict[str, Any]) -> str:
    body = row["response"]["body"]
    if "choices" in body:
        return body["choices"][0]["message"]["content"]
    return body["output"][-1]["content"][0]["text"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads process parents from /proc")
def test_a_killed_server_leaves_no_simulator_worker(tmp_path: Path) -> None:
    env = {**os.environ, "OVERNIGHT_LOCAL_API_KEY": "test-key"}
    command = [sys.executable, "-m", "localbatch", "--port", "0", "--data-dir", str(tmp_path)]
    server = subprocess.Popen(
        [*command, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        client = OpenAI(base_url=printed_base_url(server), api_key="test-key", max_retries=3)
        file = client.files.create(
            file=("in.jsonl", jsonl(_lines(3000, responses=False))), purpose="batch"
        )
        client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [p for p in _children(server.pid) if _children(p) == [] and p != server.pid]
        assert len(workers) >= 2, "the simulator workers never started"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.1)
    alive = [p for p in workers if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]
    assert not alive, f"simulator workers outlived their server: {alive}"


def _state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "zombie"
    return "zombie" if "State:\tZ" in status else "running"


def _serve(data_dir: Path) -> tuple[subprocess.Popen[str], OpenAI]:
    env = {**os.environ, "OVERNIGHT_LOCAL_API_KEY": "test-key"}
    command = [sys.executable, "-m", "localbatch", "--port", "0", "--data-dir", str(data_dir)]
    server = subprocess.Popen(
        [*command, "--workers", "2", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return server, OpenAI(base_url=printed_base_url(server), api_key="test-key", max_retries=3)


def test_a_server_killed_with_a_chunk_ahead_writes_every_line_once(tmp_path: Path) -> None:
    """The engine begins the next chunk on the workers before writing the last one: a server
    SIGKILLed then, and started again on its data, redoes the unwritten chunks and nothing else."""
    lines = _lines(2500, preamble=False, responses=False)
    server, client = _serve(tmp_path)
    try:
        file = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
        batch = client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        deadline = time.monotonic() + 120
        done = 0
        while done < 3 * POOL_CHUNK and time.monotonic() < deadline:
            time.sleep(0.05)
            counts = client.batches.retrieve(batch.id).request_counts
            done = counts.completed if counts is not None else 0
        assert 3 * POOL_CHUNK <= done < len(lines), f"killed too late or never: {done} done"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
    server, client = _serve(tmp_path)
    try:
        finished = client.batches.retrieve(batch.id)
        deadline = time.monotonic() + 180
        while finished.status != "completed" and time.monotonic() < deadline:
            time.sleep(0.2)
            finished = client.batches.retrieve(batch.id)
        assert finished.status == "completed", finished.status
        assert finished.output_file_id is not None
        rows = read_lines(client, finished.output_file_id)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert [r["custom_id"] for r in rows] == [line["custom_id"] for line in lines]
    one_thread = Simulator(seed=0).execute(_items(lines))
    assert [_content(r) for r in rows] == [
        o.body["choices"][0]["message"]["content"] for o in one_thread if o.body is not None
    ]


def test_no_pool_starts_while_the_process_exits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch that begins as the command that made it returns (`overnight submit` on the
    embedded API) must not start workers: `concurrent.futures` refuses them by then, which
    printed "the simulator pool did not start" and a traceback."""
    monkeypatch.setattr(threading, "_SHUTTING_DOWN", True, raising=False)
    simulator = PooledSimulator(seed=0, workers=2)
    try:
        simulator.prepare(10 * POOL_MIN_BYTES)
        assert simulator.wait_ready(0.2) is False
        assert simulator.worker_pids() == []
        assert not any(t.name == "localbatch-pool-start" for t in threading.enumerate())
    finally:
        simulator.close()
    assert "did not start" not in caplog.text
