"""The manifest store: a run's state, read and written atomically, and the list of runs."""

from __future__ import annotations

from collections.abc import Generator

from schemas.manifest import RunManifest, utcnow
from tasks import storage


class RunError(Exception):
    """A run cannot proceed; the message says why and what to do."""


class InvariantError(RunError):
    """inputs ≠ results + errors: the run is not marked done."""


def manifest_uri(run_dir: str) -> str:
    return storage.join(run_dir, "manifest.json")


def load_manifest(run_dir: str) -> RunManifest:
    try:
        data = storage.read_bytes(manifest_uri(run_dir))
    except (FileNotFoundError, OSError) as exc:
        raise RunError(f"no run at {run_dir}: {exc}") from exc
    return RunManifest.model_validate_json(data)


def save_manifest(manifest: RunManifest) -> None:
    """Write the manifest atomically."""
    manifest.updated_at = utcnow()
    storage.write_bytes(manifest_uri(manifest.run_dir), manifest.model_dump_json(indent=2).encode())


def _open_marker(output: str, run_id: str) -> str:
    return storage.join(output, "runs", "_open", run_id)


def list_open_runs(output: str) -> list[str]:
    """Run folders of the runs under an output location that are not finished yet."""
    marker_dir = storage.join(output, "runs", "_open")
    if not storage.is_s3(output) and not storage.exists(marker_dir):
        return []
    return [storage.join(output, "runs", info.key) for info in storage.list_files(marker_dir)]


def list_runs(output: str) -> list[str]:
    """Every run folder under an output location, oldest first."""
    runs_dir = storage.join(output, "runs")
    found = [
        storage.join(runs_dir, name)
        for name in storage.list_dirs(runs_dir)
        if not name.startswith("_")
    ]
    return [run_dir for run_dir in found if storage.exists(manifest_uri(run_dir))]


def _iter_lines(uri: str | None) -> Generator[bytes, None, None]:
    if uri:
        yield from storage.iter_lines(uri)
