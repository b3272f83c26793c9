"""`overnight serve` / `python -m localbatch`: options, a real foreground run, no key printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import typer
from typer.testing import CliRunner

from localbatch.cli import serve
from tests.localbatch._helpers import printed_base_url, stop_server


def test_serve_options() -> None:
    app = typer.Typer()
    app.command()(serve)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--data-dir",
        "--api-key",
        "--executor",
        "--forward-url",
        "--forward-api-key",
        "--forward-concurrency",
        "--seed",
        "--time-scale",
        "--faults",
        "--line-500-rate",
        "--api-429-rate",
        "--lenient",
    ):
        assert option in result.output, option
    assert "OVERNIGHT_LOCAL_API_KEY" in result.output


def test_serve_is_registered_in_the_overnight_cli() -> None:
    from overnight.cli import app

    assert any(
        command.name == "serve" and command.callback is serve for command in app.registered_commands
    )


def test_serve_runs_in_the_foreground_and_never_prints_the_key(tmp_path: Path) -> None:
    faults = tmp_path / "faults.toml"
    faults.write_text("line_500_rate = 1.0\n")
    env = {**os.environ, "OVERNIGHT_LOCAL_API_KEY": "very-secret-key-123"}
    command = [sys.executable, "-m", "localbatch", "--port", "0"]
    command += [
        "--data-dir",
        str(tmp_path / "d"),
        "--faults",
        str(faults),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    try:
        base_url = printed_base_url(process, output)
        client = openai.OpenAI(base_url=base_url, api_key="very-secret-key-123", max_retries=0)
        for _ in range(200):
            try:
                assert client.batches.list().data == []
                break
            except openai.APIConnectionError:
                time.sleep(0.05)
        file = client.files.create(file=("a.jsonl", b""), purpose="batch")
        assert file.bytes == 0
    finally:
        stop_server(process, output)
    assert process.returncode in (0, 130)  # 130: ended by SIGINT after a clean shutdown
    assert "very-secret-key-123" not in "".join(output)


def test_serve_without_a_key_takes_any_key_but_not_none(tmp_path: Path) -> None:
    """Other projects' clients work unchanged, whatever key they carry; the banner's export
    lines can be pasted as they are."""
    env = {k: v for k, v in os.environ.items() if k != "OVERNIGHT_LOCAL_API_KEY"}
    command = [sys.executable, "-m", "localbatch", "--port", "0", "--log-level", "warning"]
    command += ["--data-dir", str(tmp_path / "d")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    output: list[str] = []
    try:
        base_url = printed_base_url(process, output)
        for _ in range(200):
            try:
                theirs = openai.OpenAI(base_url=base_url, api_key="sk-their-own-key", max_retries=0)
                assert theirs.batches.list().data == []
                break
            except openai.APIConnectionError:
                time.sleep(0.05)
        assert openai.OpenAI(base_url=base_url, api_key="x", max_retries=0).files.list().data == []
        bare = httpx.get(f"{base_url}/batches", timeout=10)
        assert bare.status_code == 401
    finally:
        stop_server(process, output)
    assert "export OPENAI_API_KEY=overnight-local  # any key is taken" in "".join(output)


def test_serve_lenient_runs_lines_openai_would_refuse(tmp_path: Path) -> None:
    line = (
        b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": '
        b'{"model": "gpt-5-mini", "temperature": 0.2, '
        b'"messages": [{"role": "user", "content": "Hello there."}]}}\n'
    )
    statuses = {}
    for lenient in (False, True):
        command = [sys.executable, "-m", "localbatch", "--port", "0", "--log-level", "warning"]
        command += ["--data-dir", str(tmp_path / f"d{lenient}")]
        command += ["--api-key", "cli-test-key"]
        command += ["--lenient"] if lenient else []
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert ("lenient" in banner) is lenient, banner
            client = openai.OpenAI(base_url=printed_base_url(process), api_key="cli-test-key")
            for _ in range(200):
                try:
                    file = client.files.create(file=("in.jsonl", line), purpose="batch")
                    break
                except openai.APIConnectionError:
                    time.sleep(0.05)
            batch = client.batches.create(
                input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            deadline = time.monotonic() + 60
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                assert time.monotonic() < deadline, batch.status
                time.sleep(0.05)
                batch = client.batches.retrieve(batch.id)
            assert batch.status == "completed"
            assert batch.request_counts is not None
            statuses[lenient] = (batch.request_counts.completed, batch.request_counts.failed)
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
    assert statuses == {False: (0, 1), True: (1, 0)}
