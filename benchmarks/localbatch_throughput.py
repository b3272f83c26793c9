"""Throughput and memory of the local Batch API (simulate executor, faults off).

Starts `python -m localbatch` in a subprocess on a throw-away data dir, builds a batch of
~2 KB chat requests shaped like the shipped nightly job's (DocumentSummary strict schema,
document in <document> tags, 800 output tokens), then times upload → create →
poll → download of the output file, and reads the server's peak RSS (VmHWM) from /proc,
and the CPU time that the server and its simulator workers used meanwhile: the work is
CPU-bound, so that time over the cores is the floor of the wall time on this machine.
It runs a second, smaller batch on a fresh server to show the peak does not grow with the
file size.

    .venv/bin/python benchmarks/localbatch_throughput.py              # 50,000 lines (target ≤ 20 s)
    .venv/bin/python benchmarks/localbatch_throughput.py --lines 5000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._children import tree_cpu_seconds
from schemas.response_format import response_format_for
from schemas.summary import DocumentSummary
from tasks.processes import usable_cores

API_KEY = "bench-key"
# The shipped nightly job's request: DocumentSummary's strict schema, its prompt shape (the
# document between <document> tags) and its 800-token output cap.
SCHEMA = response_format_for(DocumentSummary, "/v1/chat/completions")["json_schema"]["schema"]
PROMPT = "Summarize the following document (part 1 of 1).\nSource file: doc-{i:06d}.txt\n\n<document>\n{text}\n</document>\n"
WORDS = [
    "revenue",
    "customer",
    "invoice",
    "latency",
    "server",
    "garden",
    "harvest",
    "contract",
    "market",
    "growth",
    "forecast",
    "engineer",
    "incident",
    "report",
    "quarterly",
    "analysis",
    "delivery",
    "payment",
    "refund",
    "travel",
    "museum",
    "river",
    "mountain",
    "village",
    "hiring",
    "interview",
    "offer",
    "salary",
    "team",
    "product",
    "launch",
    "pricing",
    "strategy",
    "risk",
]


@dataclass
class Run:
    lines: int
    input_bytes: int
    upload_s: float
    validating_s: float
    in_progress_s: float
    download_s: float
    total_s: float
    rss_start_mb: float
    rss_peak_mb: float
    server_cpu_s: float
    """CPU time of the server's own process between upload and download."""
    workers_cpu_s: float
    """CPU time of its simulator workers (and any other child) over the same window."""
    workers: int


def build_input(path: Path, lines: int, line_bytes: int, seed: int = 0) -> int:
    """Write `lines` chat requests, each about a `line_bytes` document; return the file size."""
    rnd = random.Random(seed)
    empty = {
        "custom_id": "doc-000000",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Summarize the document as JSON."},
                {"role": "user", "content": ""},
            ],
            "max_completion_tokens": 800,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "summary_v1", "schema": SCHEMA, "strict": True},
            },
        },
    }
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            parts = [f"Document {i}"]
            size = len(parts[0])  # the document is ~line_bytes; the schema comes on top
            while size < line_bytes:
                sentence = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 16)))
                sentence = sentence.capitalize() + "."
                parts.append(sentence)
                size += len(sentence) + 1
            empty["custom_id"] = f"doc-{i:06d}"
            text = PROMPT.format(i=i, text="\n".join(parts))
            empty["body"]["messages"][1]["content"] = text  # type: ignore[index]
            fh.write(json.dumps(empty) + "\n")
    return path.stat().st_size


def rss_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "OVERNIGHT_LOCAL_API_KEY": API_KEY}
    command = [sys.executable, "-m", "localbatch", "--port", "0", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the server exited before printing its URL")
        match = re.search(r"export OPENAI_BASE_URL=(\S+)", line)
        if match:
            return process, match.group(1)


def run_once(lines: int, line_bytes: int, workdir: Path) -> Run:
    input_path = workdir / f"input-{lines}.jsonl"
    size = build_input(input_path, lines, line_bytes)
    process, base_url = start_server(workdir / f"data-{lines}")
    try:
        client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=5, timeout=600)
        for _ in range(200):
            try:
                client.batches.list(limit=1)
                break
            except openai.APIConnectionError:
                time.sleep(0.05)
        time.sleep(0.5)  # let the tokenizer warm up, as a long-running server would have
        rss_start = rss_mb(process.pid, "VmRSS")
        cpu_start = tree_cpu_seconds(process.pid)

        started = time.perf_counter()
        with input_path.open("rb") as fh:
            file = client.files.create(file=(input_path.name, fh), purpose="batch")
        uploaded = time.perf_counter()
        batch = client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        in_progress_at = None
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.05)
            batch = client.batches.retrieve(batch.id)
            if in_progress_at is None and batch.status != "validating":
                in_progress_at = time.perf_counter()
        done_at = time.perf_counter()
        if batch.status != "completed" or batch.output_file_id is None:
            raise RuntimeError(f"batch ended {batch.status}: {batch.errors}")
        output = workdir / f"output-{lines}.jsonl"
        with client.files.with_streaming_response.content(batch.output_file_id) as response:
            response.stream_to_file(output)
        finished = time.perf_counter()
        cpu_end = tree_cpu_seconds(process.pid)
        used = {pid: cpu - cpu_start.get(pid, 0.0) for pid, cpu in cpu_end.items()}
        children = {pid: cpu for pid, cpu in used.items() if pid != process.pid}
        counts = batch.request_counts
        assert counts is not None and counts.completed == lines, counts
        return Run(
            lines=lines,
            input_bytes=size,
            upload_s=uploaded - started,
            validating_s=(in_progress_at or done_at) - uploaded,
            in_progress_s=done_at - (in_progress_at or done_at),
            download_s=finished - done_at,
            total_s=finished - started,
            rss_start_mb=rss_start,
            rss_peak_mb=rss_mb(process.pid, "VmHWM"),
            server_cpu_s=used.get(process.pid, 0.0),
            workers_cpu_s=sum(children.values()),
            # The resource tracker is a child too, but idle: count those that worked.
            workers=sum(1 for cpu in children.values() if cpu > 0.5),
        )
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000, help="request lines in the batch")
    parser.add_argument(
        "--line-bytes",
        type=int,
        default=1700,
        help="approximate bytes of each line's document (1,700: 50,000 lines stay under 200 MB)",
    )
    parser.add_argument(
        "--compare-lines",
        type=int,
        default=None,
        help="a second, smaller batch (default: lines/10) on a fresh server, to compare peak RSS; "
        "0 to skip",
    )
    args = parser.parse_args()
    compare = args.compare_lines if args.compare_lines is not None else max(1, args.lines // 10)

    with tempfile.TemporaryDirectory(prefix="localbatch-bench-") as tmp:
        runs = [run_once(args.lines, args.line_bytes, Path(tmp))]
        if compare:
            runs.append(run_once(compare, args.line_bytes, Path(tmp)))

    main_run = runs[0]
    print(f"lines                     {main_run.lines:,} (documents of ~{args.line_bytes} B)")
    print(f"input file                {main_run.input_bytes / 1e6:.1f} MB")
    print(f"upload → output downloaded {main_run.total_s:.2f} s  (target ≤ 20 s at 50,000 lines)")
    print(
        f"  upload {main_run.upload_s:.2f} s, validating {main_run.validating_s:.2f} s, "
        f"in progress + finalizing {main_run.in_progress_s:.2f} s, "
        f"download {main_run.download_s:.2f} s"
    )
    print(f"throughput                {main_run.lines / main_run.total_s:,.0f} lines/s")
    cpu = main_run.server_cpu_s + main_run.workers_cpu_s
    cores = usable_cores()
    print(
        f"CPU over that time        {cpu:.1f} s: server {main_run.server_cpu_s:.1f} s + "
        f"{main_run.workers} simulator worker(s) {main_run.workers_cpu_s:.1f} s = "
        f"{cpu / main_run.lines * 1e6:,.0f} µs a line; on {cores} core(s) at least "
        f"{cpu / cores:.1f} s (wall time above that is idle cores)"
    )
    for run in runs:
        print(
            f"server RSS at {run.lines:>7,} lines ({run.input_bytes / 1e6:6.1f} MB input): "
            f"{run.rss_start_mb:6.1f} MB idle, peak {run.rss_peak_mb:6.1f} MB"
        )


if __name__ == "__main__":
    main()
