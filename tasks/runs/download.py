"""Downloading: fetch the output and error files of finished batches into the run folder."""

from __future__ import annotations

from schemas.manifest import RunManifest, utcnow
from tasks import storage
from tasks.failpoints import failpoint
from tasks.gateway import Gateway
from tasks.runs.store import save_manifest


def download_outputs(manifest: RunManifest, gateway: Gateway) -> int:
    """Download output and error files of terminal batches into the run folder."""
    done = 0
    for shard in manifest.shards:
        if shard.state != "terminal":
            continue
        stem = storage.join(manifest.run_dir, "outputs", shard.key.replace("/", "-"))
        if shard.output_file_id:
            shard.output_uri = f"{stem}.output.jsonl"
            gateway.download(shard.output_file_id, shard.output_uri)
        if shard.error_file_id:
            shard.error_uri = f"{stem}.errors.jsonl"
            gateway.download(shard.error_file_id, shard.error_uri)
        shard.state = "downloaded"
        shard.updated_at = utcnow()
        save_manifest(manifest)
        failpoint("after-download")
        done += 1
    return done
