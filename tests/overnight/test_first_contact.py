"""The first commands on a new machine, as real processes: fast, alone, and one line on failure.

Each test runs the installed `overnight` command with a new, empty PREFECT_HOME and
OVERNIGHT_HOME, as a newcomer's shell would, and with no Prefect API configured unless it
says so.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
_SCRIPT = Path(sys.executable).with_name("overnight")
OVERNIGHT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "overnight.cli"]


def fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A newcomer's environment: no OpenAI, Prefect or overnight settings, new empty homes."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "OPENAI_", "OVERNIGHT_"))
    }
    (tmp_path / "prefect-home").mkdir(exist_ok=True)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["OVERNIGHT_HOME"] = str(tmp_path / "overnight-home")
    env.update(extra)
    return env


def job_file(tmp_path: Path, **changes: str) -> Path:
    """The demo job over a copy of the samples, writing under tmp_path/out."""
    text = (REPO / "data" / "jobs" / "nightly_summary.toml").read_text()
    text = text.replace('uri = "../samples"', f'uri = "{changes.pop("source", SAMPLES)}"')
    text = text.replace('output = "../../out"', f'output = "{tmp_path / "out"}"')
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def overnight(
    *args: str, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OVERNIGHT, *args],
        cwd=Path(env["PREFECT_HOME"]).parent,  # the test's own folder, not the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def query(
    tmp_path: Path, sql: str, *options: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`overnight query` over the test's output folder; it must succeed."""
    shown = overnight("query", "-o", str(tmp_path / "out"), sql, *options, env=env)
    assert shown.returncode == 0, shown.stderr
    return shown


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """Both cores kept busy by other processes, as on a loaded machine."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds `marker` (our unique home folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def test_the_first_run_on_a_new_loaded_machine_needs_no_prefect_server(
    tmp_path: Path, busy_cpu: None
) -> None:
    env = fresh_env(tmp_path)
    started = time.monotonic()
    ran = overnight("run", str(job_file(tmp_path)), env=env)
    elapsed = time.monotonic() - started
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "done" in ran.stdout and "16 results" in ran.stdout
    assert "No OPENAI_API_KEY set" in ran.stderr
    assert "SIMULATED by the local Batch API" in ran.stdout  # never passes for a real bill
    assert "Traceback" not in ran.stderr and "temporary server" not in ran.stderr
    assert list((tmp_path / "prefect-home").iterdir()) == []  # Prefect never started
    assert elapsed < 60
    # overnight's own INFO lines reach the terminal
    assert "INFO" in ran.stderr and "16 requests" in ran.stderr


def test_a_killed_command_leaves_no_process_behind(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for i in range(400):
        (corpus / f"doc-{i:03d}.txt").write_text(f"Note {i}. " + "The river rose again. " * 40)
    proc = subprocess.Popen(
        [*OVERNIGHT, "run", str(job_file(tmp_path, source=str(corpus)))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # kill while the embedded Batch API works on the batch
            if "requests" in line:
                break
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert children == []
    deadline = time.monotonic() + 5
    while _processes_with(env["OVERNIGHT_HOME"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(env["OVERNIGHT_HOME"]) == []
    # and the next command finishes the run it left
    collected = overnight("collect", "-o", str(tmp_path / "out"), env=env)
    assert collected.returncode == 0, collected.stderr[-3000:]
    assert ": done" in collected.stdout


def _corpus(tmp_path: Path, n: int = 400) -> Path:
    """Enough documents (~400 KB of requests) that the embedded API starts its worker pool."""
    corpus = tmp_path / "docs"
    corpus.mkdir(parents=True)
    for i in range(n):
        (corpus / f"doc-{i:03d}.txt").write_text(f"Note {i}. " + "The river rose again. " * 40)
    return corpus


def test_submit_on_the_embedded_api_exits_without_a_traceback(tmp_path: Path) -> None:
    # Every submit printed "the simulator pool did not start" and a RuntimeError traceback:
    # the embedded API's worker pool was still starting as the command exited.
    env = fresh_env(tmp_path)
    job = job_file(tmp_path, source=str(_corpus(tmp_path)))
    for _ in range(2):
        submitted = overnight("submit", "--full", str(job), env=env)
        assert submitted.returncode == 0, submitted.stderr[-3000:]
        said = submitted.stdout + submitted.stderr
        assert "Traceback" not in said and "did not start" not in said, said[-3000:]
        assert "submitted:" in said


def test_ctrl_c_during_run_stops_at_once_and_quietly(tmp_path: Path) -> None:
    # Ctrl-C (SIGINT to the whole process group) while the batch started could print worker
    # tracebacks, and a SIGINT landing in an import could leave `run` waiting for ever.
    for run, delay in enumerate((0.0, 0.3)):
        folder = tmp_path / f"run-{run}"
        folder.mkdir()
        env = fresh_env(folder)
        job = job_file(folder, source=str(_corpus(folder)))
        proc = subprocess.Popen(
            [*OVERNIGHT, "run", "--full", str(job)],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # Ctrl-C as the batch starts on the embedded API
                if "created" in line:
                    break
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGINT)
            rest, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 130, (delay, rest[-3000:])
        assert "Traceback" not in rest and "Stopped waiting" in rest, rest[-3000:]
        collected = overnight("collect", "-o", str(folder / "out"), env=env)
        assert collected.returncode == 0, collected.stderr[-3000:]
        assert ": done" in collected.stdout


def test_ctrl_c_says_whether_the_runs_batches_were_sent(tmp_path: Path) -> None:
    # Regression: Ctrl-C during the build said "The run's batches go on" when none was sent.
    from overnight._commands import _stopped_message
    from tasks import storage
    from tasks.runs import save_manifest
    from tests.tasks._runs import downloaded_shard, new_run, summary_job

    job = summary_job(tmp_path, "notes")
    job_path = tmp_path / "job.toml"
    assert "before a run was made" in _stopped_message(job, job_path)

    manifest = new_run(job, "notes-1", backend="embedded", max_attempts=3)
    save_manifest(manifest)
    storage.write_bytes(storage.join(job.output, "runs", "_open", "notes-1"), b"")
    said = _stopped_message(job, job_path)
    assert "before the run's batches were sent" in said and "overnight collect" in said

    manifest.shards.append(downloaded_shard(tmp_path, 0, job, 1, batch_status="in_progress"))
    save_manifest(manifest)
    assert "Stopped waiting" in _stopped_message(job, job_path)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _only_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert result.returncode == 2
    return lines[0]


def test_a_budget_refusal_is_one_line(tmp_path: Path, batch_server: object) -> None:
    env = fresh_env(
        tmp_path,
        OPENAI_API_KEY=batch_server.api_key,  # type: ignore[attr-defined]
        OPENAI_BASE_URL=batch_server.base_url,  # type: ignore[attr-defined]
    )
    job = job_file(tmp_path, **{"budget_usd = 5.0": "budget_usd = 0.001"})
    line = _only_line(overnight("submit", str(job), env=env))
    assert line == (
        "error: job 'nightly-summary': the estimated maximum Batch cost $0.0122 (16 requests, "
        "9609 input tokens, up to 800 output tokens each, gpt-4.1-mini prices of 2025-09-01) "
        "exceeds budget_usd $0.0010; raise budget_usd, lower params.max_output_tokens, or "
        "narrow the source"
    )


def test_a_wrong_key_is_one_line(tmp_path: Path, batch_server: object) -> None:
    env = fresh_env(
        tmp_path,
        OPENAI_API_KEY="not-the-key",
        OPENAI_BASE_URL=batch_server.base_url,  # type: ignore[attr-defined]
    )
    line = _only_line(overnight("submit", str(job_file(tmp_path)), env=env))
    assert line == "error: the Batch API refused the key (401): check OPENAI_API_KEY"


def test_an_unreachable_batch_api_is_one_line_within_30_seconds(tmp_path: Path) -> None:
    port = _closed_port()
    env = fresh_env(
        tmp_path, OPENAI_API_KEY="any-key", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1"
    )
    started = time.monotonic()
    line = _only_line(overnight("submit", str(job_file(tmp_path)), env=env))
    assert time.monotonic() - started < 30
    assert line == (
        f"error: cannot reach the Batch API at http://127.0.0.1:{port} ([Errno 111] "
        "Connection refused); tried 4 times: check OPENAI_BASE_URL and the network"
    )


def test_an_unreachable_prefect_api_is_one_line(tmp_path: Path) -> None:
    port = _closed_port()
    env = fresh_env(tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    line = _only_line(overnight("run", str(job_file(tmp_path)), env=env))
    assert line == (
        f"error: cannot reach the Prefect API at http://127.0.0.1:{port}/api ([Errno 111] "
        "Connection refused): start it (`prefect server start`), or unset PREFECT_API_URL "
        "to run without Prefect"
    )


def test_an_s3_error_is_one_line(tmp_path: Path, s3_endpoint: str) -> None:
    env = fresh_env(tmp_path)
    job = job_file(tmp_path, source="s3://no-such-bucket-here/incoming/")
    line = _only_line(overnight("submit", str(job), env=env))
    assert line.startswith("error: cannot list s3://no-such-bucket-here/incoming/: ")
    assert "NoSuchBucket" in line


def test_a_bad_job_file_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    job = job_file(tmp_path, **{'model = "gpt-4.1-mini"': 'model = ""'})
    line = _only_line(overnight("run", str(job), env=env))
    assert line.startswith(f"error: {job}: invalid job file: model: ")
    debug = overnight("--debug", "run", str(job), env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_schema_module_next_to_the_job_file_imports(tmp_path: Path) -> None:
    (tmp_path / "myschemas.py").write_text(
        "from pydantic import BaseModel, Field\n\n"
        "class Gist(BaseModel):\n"
        '    gist: str = Field(description="The document in one sentence.")\n'
    )
    job = job_file(
        tmp_path,
        **{'output_schema = "schemas.summary:DocumentSummary"': 'output_schema = "myschemas:Gist"'},
    )
    env = fresh_env(tmp_path)
    ran = overnight("run", str(job), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "16" in query(tmp_path, "select count(gist) from results", env=env).stdout


def test_query_and_report_name_a_location_without_output(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    missing = tmp_path / "typo"
    for args in (("query", "-o", str(missing), "select 1"), ("report", "-o", str(missing))):
        line = _only_line(overnight(*args, env=env))
        assert line == (
            f"error: no overnight output under {missing}: it has no results, errors or costs "
            "tables and no runs; check --output (-o) or --job"
        )


def test_the_examples_work_from_a_copy_made_by_init(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    made = overnight("init", str(tmp_path / "mine"), env=env)
    assert made.returncode == 0, made.stderr
    ran = overnight("run", str(tmp_path / "mine" / "data" / "jobs" / "contacts.toml"), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (tmp_path / "mine" / "out" / "results").is_dir()


@pytest.mark.slow
def test_the_shipped_data_is_found_in_an_installed_wheel(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".*cache", ".prefect-home", "out", "build", "*.egg-info"
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path / "wheel"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("overnight-*.whl"))
    shutil.unpack_archive(wheel, tmp_path / "site", format="zip")
    probe = (
        "from tasks.pricing import load_pricing; from overnight.resources import data_file;"
        "print(load_pricing().path); print(data_file('jobs', 'invoices.toml').is_file())"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        str(tmp_path / "site" / "overnight" / "data" / "pricing.toml"),
        "True",
    ]


def test_a_base_url_without_a_key_is_refused_not_simulated(tmp_path: Path) -> None:
    env = fresh_env(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:8000/v1")
    line = _only_line(overnight("submit", str(job_file(tmp_path)), env=env))
    assert line == (
        "error: OPENAI_BASE_URL is set (http://127.0.0.1:8000/v1) but OPENAI_API_KEY is not: "
        "set the key that server expects (any value if it checks none), or unset "
        "OPENAI_BASE_URL to run on the embedded local Batch API"
    )
    assert not (tmp_path / "out" / "runs").exists() or not any(
        p.name != "_locks" and p.name != "_open" for p in (tmp_path / "out" / "runs").iterdir()
    )


def test_text_that_looks_like_rich_markup_prints_as_is(tmp_path: Path) -> None:
    # Regression: "[/bold]" in a file name made `run` exit 1 after writing every table, and
    # `query` crashed on "[/bold]" and dropped "[x]"-like text and ":smile:" codes.
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLES, docs)
    (docs / "dangling.txt").symlink_to("/nonexistent/[/bold] oops")
    for n in range(6):  # more reasons than the summary shows
        (docs / f"odd-{n}.bin").write_bytes(b"\x7fELF" + bytes([n]) * 64)
    env = fresh_env(tmp_path)
    ran = overnight("run", str(job_file(tmp_path, source=str(docs))), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "[/bold] oops" in ran.stdout
    assert "errors by reason:" in ran.stdout
    listed = ran.stdout.split("errors by reason:")[1]
    assert " e.g. " in listed
    # A long example is cut at a word and says so (it stopped mid-word at 140 characters).
    unsupported = " ".join(listed.split("unsupported_type", 1)[1].split("\n  ")[0].split())
    assert unsupported.endswith("…") and "overnight reads text" in unsupported
    shown = query(
        tmp_path, "select '[/bold] x' as a, '[x] done, see [note] and arr[i] :smile:' as b", env=env
    )
    assert "[/bold] x" in shown.stdout
    assert "[x] done, see [note] and arr[i] :smile:" in shown.stdout


def test_control_characters_in_names_and_answers_print_as_escapes(tmp_path: Path) -> None:
    # Regression: a file named with an escape sequence (ESC [ 2 J clears the screen) was
    # printed raw in `run`'s closing lines and `query`'s table, and the terminal obeyed it.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fine.txt").write_text("The committee approved the budget for the new library.")
    (docs / "empty\x1b[2Jclear\r.txt").write_text("")
    env = fresh_env(tmp_path)
    ran = overnight("run", str(job_file(tmp_path, source=str(docs))), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "load/empty  e.g. empty\\x1b[2Jclear\\r.txt: the file is empty" in ran.stdout
    assert "\x1b" not in ran.stdout + ran.stderr
    shown = query(
        tmp_path,
        "select document_id, chr(27) || ']0;pwned' || chr(7) || chr(8238) || 'txt.exe' as answer "
        "from errors",
        env=env,
    )
    assert "empty\\x1b[2Jclear\\r.txt" in shown.stdout
    assert "\\x1b]0;pwned\\x07\\u202etxt.exe" in shown.stdout
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    as_csv = query(tmp_path, "select document_id from errors", "-f", "csv", env=env)
    assert "empty\x1b[2Jclear" in as_csv.stdout  # machine-readable output stays exact


def test_printable_escapes_only_what_a_terminal_would_act_on() -> None:
    from overnight._terminal import PrintableFormatter, printable

    kept = "naïve café 中文 🙂 tab\there\nnext line"
    assert printable(kept) == kept
    assert printable("x\x1b[2Jy\rz\x00\x7f\x9b\u202e") == "x\\x1b[2Jy\\rz\\x00\\x7f\\x9b\\u202e"
    record = logging.LogRecord(
        "tasks", logging.WARNING, "", 0, "cannot read %s", ("a\x1b[31m",), None
    )
    assert PrintableFormatter("%(message)s").format(record) == "cannot read a\\x1b[31m"


def test_errors_by_reason_says_how_to_list_the_reasons_it_leaves_out(tmp_path: Path) -> None:
    # Regression: only the five commonest reasons were listed, with nothing saying more
    # existed, and one message stood for all of a reason's rows as if every file said it.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fine.txt").write_text("The committee approved the budget for the new library.")
    (docs / "empty.txt").write_text("")
    (docs / "dangling.txt").symlink_to(tmp_path / "nowhere")
    (docs / "loop1").symlink_to(docs / "loop2")
    (docs / "loop2").symlink_to(docs / "loop1")
    (docs / "bad.json").write_text('{"id": 1, "text": ')
    (docs / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    (docs / "bad.gz").write_bytes(b"\x1f\x8b not gzip")
    (docs / "bad.csv").write_text('id,text\n1,"unterminated\n')
    (docs / "bad.docx").write_bytes(b"PK\x03\x04 broken")
    (docs / "bad.zip").write_bytes(b"PK\x03\x04broken")
    (docs / "program").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))
    (docs / "binary.txt").write_bytes(b"\x7fELF" + bytes(64))
    env = fresh_env(tmp_path)
    ran = overnight("run", str(job_file(tmp_path, source=str(docs))), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    listed = [line for line in ran.stdout.split("errors by reason:")[1].splitlines() if line]
    shown = [line for line in listed if " e.g. " in line]
    assert len(shown) == 6
    assert any("load/empty  e.g. empty.txt: the file is empty" in line for line in shown)
    rest = [line for line in listed if "more reason(s)" in line]
    assert len(rest) == 1
    command = shlex.split(rest[0].split(": ", 1)[1])
    assert command[:2] == ["overnight", "query"]
    answer = overnight(*command[1:], "--format", "csv", env=env)
    assert answer.returncode == 0, answer.stderr
    counted = answer.stdout.splitlines()[1:]
    assert len(counted) == len(shown) + int(rest[0].split("and ")[1].split()[0])


def test_a_schema_module_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def broken(:\n    pass\n")
    (tmp_path / "raising.py").write_text("raise RuntimeError('no database here')\n")
    env = fresh_env(tmp_path)
    cases = {
        "broken:Gist": "importing module 'broken' failed (",
        "raising:Gist": "RuntimeError: no database here",
        "pydantic:BaseModel": "is not a Pydantic model class of your own",
    }
    for schema, expected in cases.items():
        job = job_file(
            tmp_path,
            **{
                'output_schema = "schemas.summary:DocumentSummary"': (f'output_schema = "{schema}"')
            },
        )
        line = _only_line(overnight("estimate", str(job), env=env))
        assert expected in line, line
    syntax = _only_line(
        overnight("estimate", str(job_file(tmp_path, **{
            'output_schema = "schemas.summary:DocumentSummary"': 'output_schema = "broken:X"'
        })), env=env)
    )  # fmt: skip
    assert "broken.py, line 1" in syntax and "SyntaxError" in syntax


def test_a_missing_run_or_an_unwritable_answer_file_is_one_line(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    ran = overnight("run", str(job_file(tmp_path)), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = str(tmp_path / "out")
    missing = _only_line(overnight("status", "-o", out, "--run", "no-such-run", env=env))
    assert missing.startswith("error: ") and "no-such-run" in missing
    unwritable = _only_line(
        overnight("query", "-o", out, "--to", str(tmp_path / "no" / "dir.csv"), "select 1",
                  env=env)
    )  # fmt: skip
    assert unwritable.startswith("error: ") and "no/dir.csv" in unwritable
    (tmp_path / "a-file").write_text("not a folder")
    under_file = _only_line(
        overnight("run", str(job_file(tmp_path, **{f'output = "{tmp_path / "out"}"': (
            f'output = "{tmp_path / "a-file" / "out"}"')})), env=env)
    )  # fmt: skip
    assert under_file.startswith("error: ") and "a-file" in under_file


def test_a_run_that_never_reached_its_api_says_what_the_next_command_does(
    tmp_path: Path,
) -> None:
    # Regression: collect and cancel of a run whose submit never reached its API said a new
    # submit would start a new run, when it moves this one; cancel could not close it at all.
    port = _closed_port()
    unreachable = fresh_env(
        tmp_path, OPENAI_API_KEY="any-key", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1"
    )
    job = str(job_file(tmp_path))
    assert overnight("submit", job, env=unreachable).returncode == 2
    env = fresh_env(tmp_path)
    refused = overnight("collect", job, env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    line = refused.stderr.splitlines()[-1]
    assert line.startswith("error: run ")
    assert f"meant for http://127.0.0.1:{port}/v1" in line
    assert "none of its batches was created there" in line
    assert "moves the run to the backend configured now" in line

    (run_dir,) = [p for p in (tmp_path / "out" / "runs").iterdir() if not p.name.startswith("_")]
    cancelled = overnight("cancel", run_dir.name, job, env=env)
    assert cancelled.returncode == 0, cancelled.stderr[-2000:]
    collected = overnight("collect", job, env=env)
    assert collected.returncode == 0, collected.stderr[-2000:]
    assert f"{run_dir.name}: cancelled" in collected.stdout


def test_a_run_beside_overnight_serve_on_the_same_home_is_one_line(tmp_path: Path) -> None:
    # Regression: the embedded API's failed start printed ~25 lines of web-server traceback.
    env = fresh_env(tmp_path)
    port = _closed_port()
    server = subprocess.Popen(
        [*OVERNIGHT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        line = _only_line(overnight("run", str(job_file(tmp_path)), env=env))
        assert line.startswith("error: cannot start the embedded local Batch API in ")
        assert "`overnight serve`" in line
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_run_over_an_empty_source_warns(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    env = fresh_env(tmp_path)
    ran = overnight("run", str(job_file(tmp_path, source=str(tmp_path / "empty"))), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert f"warning: the source {tmp_path / 'empty'} holds no documents" in ran.stderr
