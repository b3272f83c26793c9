"""The API key never shows up in output, logs, manifests, parquet or error messages."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from localbatch import LocalBatchServer, ServerConfig
from schemas.job import JobSpec
from tests.flows.conftest import write_corpus

REPO = Path(__file__).resolve().parents[2]
SECRET = "fake-key-SECRETvalue0123456789abcdefXYZ"  # shaped like a key, not a real one


def _overnight(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "overnight.cli", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_the_key_is_never_written_or_printed(
    make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    write_corpus(tmp_path / "docs", 3)
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(make_job().model_dump(mode="json", exclude_defaults=True)))
    config = ServerConfig(data_dir=tmp_path / "server", api_key=SECRET)
    with LocalBatchServer(config) as server:
        env = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": server.base_url}
        ran = _overnight(env, "run", str(job_file))
        assert ran.returncode == 0, ran.stderr[-2000:]
        # A wrong key fails with a message that does not echo it.
        wrong = "fake-key-WRONGvalue9876543210zyxwvuABC"
        (tmp_path / "docs" / "new.txt").write_text("A new document arrived tonight.")
        denied = _overnight({**env, "OPENAI_API_KEY": wrong}, "run", str(job_file))
        assert denied.returncode != 0
        assert "401" in denied.stderr or "API key" in denied.stderr
    for text in (ran.stdout, ran.stderr, denied.stdout, denied.stderr):
        assert SECRET not in text and wrong not in text
    assert _files_containing(tmp_path / "out", SECRET.encode()) == []
    assert _files_containing(tmp_path / "out", wrong.encode()) == []
