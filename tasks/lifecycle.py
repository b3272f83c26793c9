"""The lifecycle of a run as the commands drive it: submit, run (submit and wait), collect.

These functions order the steps of `tasks.runs`; *how* each step runs is the `Runtime`'s
business. The CLI uses `DirectRuntime` (plain calls in this process, no Prefect server to
start) unless a Prefect API is configured; the flows in `flows/` pass `PrefectRuntime`
(`tasks.steps`), whose steps are Prefect tasks that report to the Prefect API. Both retry the
same transient failures with the same delays, and both wait by the same polling rule.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import openai

from schemas.job import JobSpec
from schemas.manifest import RunManifest
from tasks import reporting, runs
from tasks.build import build_progress
from tasks.gateway import EMBEDDED

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_DELAYS: list[int | float] = [2, 5, 15]
"""Seconds between the attempts of a step that failed for a transient reason."""

_TRANSIENT_S3_CODES = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """True for failures worth another try of the whole step: 429s, 5xx, S3 throttling.

    A Batch API that cannot be reached at all is not retried here: the openai client has
    already tried it a few times, and the user is better served by a prompt, clear error.
    """
    if isinstance(exc, openai.RateLimitError | openai.InternalServerError):
        return True
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in _TRANSIENT_S3_CODES or int(status or 0) >= 500
    return False


class Runtime(Protocol):
    """How the steps of a run are executed and reported."""

    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]

    def prepare_run(self, job: JobSpec, full: bool, retry_failed: bool) -> str: ...

    def submit_shards(self, run_dir: str) -> int: ...

    def advance_run(self, run_dir: str) -> dict[str, Any]: ...

    def show_progress(self, manifest: RunManifest) -> None: ...

    def publish(self, manifest: RunManifest) -> None: ...


def with_retries(step: Callable[[], T], *, what: str, delays: list[int | float]) -> T:
    """Call `step`, again after each delay while it fails for a transient reason."""
    for delay in [*delays, None]:
        try:
            return step()
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            log.warning("%s failed (%s); trying again in %ss", what, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class DirectRuntime:
    """Steps as plain calls in this process, with the flows' retry policy; no Prefect."""

    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.getLogger("overnight")
    )
    retry_delays: list[int | float] = field(default_factory=lambda: list(RETRY_DELAYS))
    progress_every: int = 20_000

    def prepare_run(self, job: JobSpec, full: bool, retry_failed: bool) -> str:
        progress = build_progress(self.logger.info, every=self.progress_every)
        return with_retries(
            lambda: (
                runs.prepare_run(
                    job, full=full, retry_failed=retry_failed, progress=progress
                ).run_dir
            ),
            what="preparing the run",
            delays=self.retry_delays,
        )

    def submit_shards(self, run_dir: str) -> int:
        return with_retries(
            lambda: runs.submit_run(run_dir), what="submitting", delays=self.retry_delays
        )

    def advance_run(self, run_dir: str) -> dict[str, Any]:
        manifest = with_retries(
            lambda: runs.advance_run(run_dir), what="collecting", delays=self.retry_delays
        )
        return {"run_id": manifest.run_id, "status": manifest.status}

    def show_progress(self, manifest: RunManifest) -> None:
        return None

    def publish(self, manifest: RunManifest) -> None:
        return None


# -- the three commands ----------------------------------------------------------------------


def submit_job(job: JobSpec, *, full: bool, retry_failed: bool, runtime: Runtime) -> str:
    """Build and submit one run of a job; return its run folder.

    An open run of the job that was asked to cancel is collected first: once its batches have
    stopped it is closed (its finished work kept) and a new run sends the rest. While they
    are still stopping nothing is sent, with a RunError saying so: an answer to any of its
    documents may still come, and sending them again now could pay for them twice.
    """
    run_dir = runtime.prepare_run(job, full, retry_failed)
    if (open_run := runs.load_manifest(run_dir)).cancel_requested:
        runtime.logger.info("collecting run %s, cancelled, before this run", open_run.run_id)
        runtime.advance_run(run_dir)
        cancelled = runs.load_manifest(run_dir)
        if cancelled.is_open:
            stopping = sum(1 for s in cancelled.shards if s.state in ("creating", "created"))
            raise runs.RunError(
                f"run {cancelled.run_id} of job {job.name} was asked to cancel and "
                f"{stopping} of its batch(es) are still stopping (OpenAI takes up to 10 "
                "minutes); nothing was submitted, so that none of its documents is paid for "
                f"twice. `overnight collect` closes it once they have stopped, then `overnight "
                "submit` sends the documents it did not finish; `overnight run` waits for it "
                "and runs the job"
            )
        runtime.publish(cancelled)
        run_dir = runtime.prepare_run(job, full, retry_failed)
    created = runtime.submit_shards(run_dir)
    manifest = runs.load_manifest(run_dir)
    runtime.logger.info(
        "run %s: %d requests in %d shard(s), %d batch(es) created, %d document(s) rejected; "
        "estimated batch cost $%.4f",
        manifest.run_id,
        manifest.counts.requests,
        len(manifest.shards),
        created,
        manifest.counts.documents_rejected,
        manifest.estimate_usd or 0.0,
    )
    return run_dir


def run_job(job: JobSpec, *, full: bool, retry_failed: bool, runtime: Runtime) -> dict[str, Any]:
    """Submit a job, wait for its batches by the polling rule, collect them; return a summary.

    An open run of the job that was asked to cancel is finished first (its work done before
    the cancel kept), then this run starts: `run` after `cancel` runs the job, rather than only
    closing the cancelled run and leaving its documents for the next `run`.
    """
    run_dir = runtime.prepare_run(job, full, retry_failed)
    if (open_run := runs.load_manifest(run_dir)).cancel_requested:
        runtime.logger.info("finishing run %s, cancelled, before this run", open_run.run_id)
        cancelled = wait_for_run(run_dir, runtime=runtime, deadline=None)
        runtime.publish(cancelled)
        run_dir = runtime.prepare_run(job, full, retry_failed)
    runtime.submit_shards(run_dir)
    manifest = wait_for_run(run_dir, runtime=runtime, deadline=None)
    runtime.publish(manifest)
    return summary(manifest)


def wait_for_run(run_dir: str, *, runtime: Runtime, deadline: float | None) -> RunManifest:
    """Advance a run until it is finished (or `deadline`, a monotonic time, has passed).

    Between advances it sleeps until the next batch is due by the polling rule, so a batch on
    a local backend is picked up about a second after it finishes, and one on OpenAI costs
    about 90 polls over 24 hours.
    """
    manifest = runs.load_manifest(run_dir)
    last_line = ""
    with reporting.live_progress(manifest) as show:
        while True:
            runtime.advance_run(run_dir)
            manifest = runs.load_manifest(run_dir)
            runtime.show_progress(manifest)
            line = reporting.progress_line(manifest)
            if not show(manifest) and line.split(",", 1)[0] != last_line.split(",", 1)[0]:
                runtime.logger.info(line)  # no terminal to draw on: a line when progress moves
                last_line = line
            if not manifest.is_open:
                return manifest
            pause = runs.seconds_until_due(manifest)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return manifest
                pause = min(pause, left)
            time.sleep(pause)


def summary(manifest: RunManifest) -> dict[str, Any]:
    return {
        "run_id": manifest.run_id,
        "run_dir": manifest.run_dir,
        "status": manifest.status,
        "results": manifest.counts.results,
        "errors": manifest.counts.errors,
        "tables": manifest.tables,
    }


@dataclass(frozen=True)
class CollectOutcome:
    """What one collect did to one run: its status now, or the failure that stopped it."""

    run_id: str
    run_dir: str
    status: str
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "status": self.status,
            "problem": self.problem,
        }


def collect_output(
    output: str, *, runtime: Runtime, embedded_wait_seconds: float = 300.0
) -> list[CollectOutcome]:
    """Advance every open run under `output`, each on its own: one failing run stops no other.

    Batches on the embedded local API only make progress while an overnight process hosts
    it, so for those runs this keeps collecting (up to `embedded_wait_seconds`) while their
    batches are in flight, instead of returning after one look. A run that fails is recorded
    with its reason in its manifest (`status` shows it) and in the outcome.
    """
    outcomes = []
    run_dirs = runs.list_open_runs(output)
    if not run_dirs:
        runtime.logger.info("no open runs under %s", output)
    for run_dir in run_dirs:
        run_id = run_dir.rstrip("/").rsplit("/", 1)[-1]
        try:
            manifest = runs.load_manifest(run_dir)
            if manifest.backend == EMBEDDED:
                deadline = time.monotonic() + embedded_wait_seconds
                manifest = wait_for_run(run_dir, runtime=runtime, deadline=deadline)
            else:
                runtime.advance_run(run_dir)
                manifest = runs.load_manifest(run_dir)
        except Exception as exc:
            problem = describe_failure(exc)
            if len(run_dirs) > 1:  # said as it happens; a lone run's is said once, at the end
                runtime.logger.error("run %s: %s", run_id, problem)
            runs.record_problem(run_dir, problem)
            outcomes.append(CollectOutcome(run_id, run_dir, "failed", problem))
            continue
        runtime.logger.info(reporting.progress_line(manifest))
        if not manifest.is_open:
            runtime.publish(manifest)
        outcomes.append(CollectOutcome(manifest.run_id, run_dir, manifest.status))
    return outcomes


def describe_failure(exc: BaseException) -> str:
    """One line a user can act on, for the failures a run can meet."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, openai.AuthenticationError):
        return f"the Batch API refused the key ({exc.status_code}): check OPENAI_API_KEY"
    if isinstance(exc, openai.APIConnectionError):
        url = _request_url(exc)
        cause = exc.__cause__ or exc
        return (
            f"cannot reach the Batch API at {url} ({_one_line(cause)}); tried "
            f"{_attempts()} times: check OPENAI_BASE_URL and the network"
        )
    if isinstance(exc, openai.APIStatusError):
        return f"the Batch API answered {exc.status_code}: {_one_line(exc.message)}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"storage: {error.get('Code', 'error')}: {error.get('Message') or exc}"
    if isinstance(exc, BotoCoreError):
        return f"storage: {_one_line(exc)}"
    if isinstance(exc, OSError) and exc.errno in _LOCAL_DISK:
        path = str(exc.filename) if exc.filename else "a folder"
        return _LOCAL_DISK[exc.errno].format(path=path) + (
            " (overnight writes the job's `output` there, or the local Batch API's files under "
            "OVERNIGHT_HOME)"
        )
    return _one_line(exc) or type(exc).__name__


_ACCESS = "permission denied on {path}: give this user access to it, or choose another folder"
_LOCAL_DISK = {
    errno.EACCES: _ACCESS,
    errno.EPERM: _ACCESS,
    errno.EROFS: "{path} is on a read-only file system: choose another folder",
    errno.ENOSPC: "no space left on the disk of {path}: free some space, or choose another folder",
}
"""What a user does about the local disk's refusals, by errno."""


def _request_url(exc: openai.APIConnectionError) -> str:
    try:
        url = exc.request.url
    except (AttributeError, RuntimeError):
        return "the configured address"
    return f"{url.scheme}://{url.host}{':' + str(url.port) if url.port else ''}"


def _attempts() -> int:
    from tasks.gateway import CLIENT_RETRIES

    return CLIENT_RETRIES + 1


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
