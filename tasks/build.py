"""Build a job's Batch API input: documents → chunks → request lines → shards, streaming.

`build_shards` is the first half of the pipeline. It reads the source one document at a time,
lets the caller skip documents (`should_process`, where the nightly ledger plugs in), splits
documents longer than `chunking.max_input_tokens` at paragraph or sentence boundaries,
renders one request per chunk, counts its input tokens offline and writes it to a shard:

    <run_dir>/shards/shard-00000.jsonl            request lines
    <run_dir>/shards/shard-00000.index.parquet    custom_id → document, chunk, tokens
    <run_dir>/rejected.jsonl                      one RejectedDocument per line

Tokens are counted in the thread that reads, a batch of documents at a time: a counting
thread beside it was slower, on one process and on a pool of one process per core (the GIL
handed back and forth each document; benchmarks/build_throughput.py).
`count_requests` is the same build, dry: only the shards' indexes are written, in a
temporary folder, for `estimate`.

A long listing is split into partitions stable for that listing (`tasks.partitions`), each
built independently into its own shards (`shards/shard-p03-00000.jsonl`) by
`build_partition`: in this process, on a local process pool sized to the cores
(`tasks.build_pool`), or as Prefect tasks on a Dask cluster (`tasks.cluster_build`). The
partitions' shards, counts and rejects are then merged (`tasks.build_merge`), duplicate
custom_ids across partitions included, so the result does not depend on how many workers
ran: the same requests, the same estimate, shard contents identical up to order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TypeVar

import orjson

from schemas.build import BuildSummary, RequestIndexRow, ShardInfo
from schemas.documents import Document, RejectCode, RejectedDocument
from schemas.job import JobSpec
from tasks import storage
from tasks.capabilities import load_capabilities
from tasks.chunking import split_text
from tasks.ledger import Ledger
from tasks.partitions import PartitionPlan, iter_partition, plan_partitions, remove_spill
from tasks.render import RequestRenderer, document_key, image_sizes
from tasks.scratch import scratch_dir
from tasks.sharding import DuplicateCustomIdError, RequestTooLargeError, ShardWriter
from tasks.sources import iter_documents

DOCUMENT_BATCH = 256
"""Documents read, then token-counted, per step."""
CHUNK_MARGIN_TOKENS = 8
"""Room left for tokens merging across the seam between template text and a chunk."""

_T = TypeVar("_T")
ShouldProcess = Callable[[Document | RejectedDocument], bool]
"""False skips a document: the ledger says this job version already finished it (a rejected
document included, so the same bad file is not reported again every night)."""
Progress = Callable[[int], None]


def build_progress(say: Callable[[str], None], *, every: int) -> Progress:
    """A progress callback that says how many documents were read, and how fast, each time
    another `every` of them are (`say`: a logger's `info`, a console's `print`)."""
    started = time.monotonic()
    state = {"seen": 0, "next": every}

    def advance(n: int) -> None:
        state["seen"] += n
        if state["seen"] >= state["next"]:
            rate = state["seen"] / max(time.monotonic() - started, 1e-9)
            say(f"read {state['seen']:,} documents ({rate:,.0f}/s)")
            state["next"] = (state["seen"] // every + 1) * every

    return advance


class BuildError(Exception):
    """The job cannot be built at all (as opposed to one document being rejected)."""


@dataclass
class BuildCounts:
    """Counters of one pass over a source; documents_seen = skipped + built + rejected."""

    documents_seen: int = 0
    documents_skipped: int = 0
    documents_built: int = 0
    documents_rejected: int = 0
    requests: int = 0
    input_tokens: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    documents_chunked: int = 0
    """Documents split into more than one request."""
    chunked_requests: int = 0
    """The requests of those documents."""
    images: int = 0
    """Images sent (image files and the pages of scanned PDFs), across all requests."""
    carried_documents: list[tuple[str, str | None]] = field(default_factory=list)
    """Split documents processed again whose every chunk an earlier run answered (document_id,
    content_sha256): built with no request, their answers all carried (tasks/runs/carry.py)."""

    def add(self, other: BuildCounts) -> None:
        """Add another pass's counters to these."""
        self.documents_seen += other.documents_seen
        self.documents_skipped += other.documents_skipped
        self.documents_built += other.documents_built
        self.documents_rejected += other.documents_rejected
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.documents_chunked += other.documents_chunked
        self.chunked_requests += other.chunked_requests
        self.images += other.images
        self.carried_documents += other.carried_documents
        for code, n in other.rejected_by_code.items():
            self.rejected_by_code[code] = self.rejected_by_code.get(code, 0) + n


@dataclass
class PartitionResult:
    """What building one partition produced: its counters, shards and rejects file."""

    index: int
    counts: BuildCounts
    shards: list[ShardInfo]
    rejected_uri: str


def _batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


_LONG_SPACE = re.compile(r"\s{64,}")


def _edge_slack(text: str, max_chunks: int) -> int:
    """How many fewer tokens than the whole text `max_chunks` chunks of it can hold, at most.

    A chunk is trimmed at both edges, so whitespace there is in no chunk; and tokens counted
    piece by piece can come out a few fewer than the whole's at each cut. A whitespace run
    is at most as many tokens as characters.
    """
    longest = max((m.end() - m.start() for m in _LONG_SPACE.finditer(text)), default=63)
    return 2 * max_chunks * (longest + 8)


def _build_reject(doc: Document, code: RejectCode, message: str) -> RejectedDocument:
    return RejectedDocument(
        document_id=doc.document_id,
        source_uri=doc.source_uri,
        content_sha256=doc.content_sha256,
        stage="build",
        code=code,
        message=message,
    )


class _Planner:
    def __init__(
        self,
        job: JobSpec,
        writer: ShardWriter,
        on_reject: Callable[[RejectedDocument], None],
        should_process: ShouldProcess | None,
        progress: Progress | None,
    ) -> None:
        self.job = job
        self.writer = writer
        self.on_reject = on_reject
        self.should_process = should_process
        self.answered = (
            should_process.answered_chunks if isinstance(should_process, Ledger) else None
        )
        self.progress = progress
        self.renderer = RequestRenderer(job)
        self.max_input = job.chunking.max_input_tokens
        self.max_output = job.params.max_output_tokens
        self.caps = load_capabilities().get(job.model)
        self.counts = BuildCounts()
        self.check(job, self.renderer)

    @staticmethod
    def check(job: JobSpec, renderer: RequestRenderer | None = None) -> None:
        """Raise `BuildError` if the prompt alone leaves no room for a document."""
        static = (renderer or RequestRenderer(job)).static_tokens
        if static >= job.chunking.max_input_tokens:
            raise BuildError(
                f"the system prompt and output schema alone take {static} "
                f"tokens; chunking.max_input_tokens is {job.chunking.max_input_tokens}"
            )

    def reject(self, rejected: RejectedDocument) -> None:
        self.counts.documents_rejected += 1
        by_code = self.counts.rejected_by_code
        by_code[rejected.code] = by_code.get(rejected.code, 0) + 1
        self.on_reject(rejected)

    def run(self, documents: Iterable[Document | RejectedDocument]) -> BuildCounts:
        count_many = self.renderer.count_many
        for batch in _batched(documents, DOCUMENT_BATCH):
            prepared = self.prepare(batch)
            self.finish(len(batch), prepared, count_many([text for _, text in prepared]))
        return self.counts

    def prepare(self, batch: list[Document | RejectedDocument]) -> list[tuple[Document, str]]:
        prepared: list[tuple[Document, str]] = []
        should_process = self.should_process
        user_text = self.renderer.user_text
        for item in batch:
            self.counts.documents_seen += 1
            if should_process is not None and not should_process(item):
                self.counts.documents_skipped += 1
                continue
            if isinstance(item, RejectedDocument):
                self.reject(item)
                continue
            try:
                prepared.append((item, user_text(item, item.text or "")))
            except (ValueError, TypeError, LookupError, AttributeError) as exc:
                self.reject(_build_reject(item, "template_error", f"user_template: {exc!r}"))
        return prepared

    def finish(self, n: int, prepared: list[tuple[Document, str]], counted: list[int]) -> None:
        request_tokens = self.renderer.request_tokens
        for (doc, text), tokens in zip(prepared, counted, strict=True):
            total = request_tokens(tokens, image_sizes(doc) if doc.images else ())
            refused = self.refuse(doc, total)
            if refused is not None:
                self.reject(refused)
            elif total <= self.max_input:
                self.emit(doc, [(text, total)])
            else:
                parts = self.chunk(doc, total)
                if isinstance(parts, RejectedDocument):
                    self.reject(parts)
                else:
                    self.emit(doc, parts)
        if self.progress is not None:
            self.progress(n)

    def refuse(self, doc: Document, total: int) -> RejectedDocument | None:
        """What the model refuses in this document whatever the chunking: images without
        vision, or one request (images are never split) too big for the context window."""
        caps = self.caps
        if caps is None:
            return None
        if doc.images and not caps.vision:
            what = f"{len(doc.images)} image(s)"
            if doc.metadata.get("read_as") == "page_images":
                what = f"a scanned PDF (no text layer), read as {len(doc.images)} page image(s)"
            return _build_reject(
                doc,
                "vision_unsupported",
                f"{what}, and {self.job.model} does not accept image input "
                "(vision = false in its capabilities); use a model with vision, e.g. "
                "gpt-4.1-mini, or leave images out with source.exclude",
            )
        if (doc.images or self.job.chunking.max_chunks == 1) and total > self.max_input:
            return self.too_long(doc, total)
        return None

    def too_long(self, doc: Document, tokens: int) -> RejectedDocument | None:
        """A `context_length_exceeded` reject if one request cannot fit the model's window."""
        caps = self.caps
        if caps is None or tokens + self.max_output <= caps.context_window:
            return None
        return _build_reject(
            doc,
            "context_length_exceeded",
            f"a request of {tokens} input tokens plus params.max_output_tokens "
            f"{self.max_output} exceeds {self.job.model}'s context window of "
            f"{caps.context_window} tokens; OpenAI would refuse it, so it is not sent "
            "(allow chunking with chunking.max_chunks > 1, or use a model with a larger window)",
        )

    def chunk(self, doc: Document, total: int) -> list[tuple[str, int]] | RejectedDocument:
        """Split a document over several requests, each within max_input_tokens."""
        renderer, chunking = self.renderer, self.job.chunking
        too_many = f"{total} input tokens; chunking.max_input_tokens is {self.max_input}"
        if doc.metadata.get("read_as") == "page_images":
            return _build_reject(
                doc,
                "too_many_tokens",
                f"a scanned PDF of {len(doc.images)} page image(s) is one request of "
                f"{too_many} (pages are never split; {self.job.model}'s image rule prices "
                'each page): set params.image_detail = "low", lower source.max_pages, or '
                "raise chunking.max_input_tokens",
            )
        if doc.images or not doc.text:
            return _build_reject(doc, "too_many_tokens", f"an image request of {too_many}")
        if chunking.max_chunks == 1:
            return _build_reject(doc, "too_many_tokens", f"{too_many} and max_chunks is 1")
        frame = renderer.count(
            renderer.user_text(doc, "", chunking.max_chunks, chunking.max_chunks)
        )
        budget = self.max_input - renderer.static_tokens - frame - CHUNK_MARGIN_TOKENS
        # Too long for max_chunks by its token count alone (a log, a data dump): refused
        # without splitting it, which takes about half a second a megabyte.
        text_tokens = total - renderer.static_tokens - frame
        least = (text_tokens - _edge_slack(doc.text, chunking.max_chunks)) / max(budget, 1)
        if least > chunking.max_chunks:
            return _build_reject(
                doc,
                "too_many_tokens",
                f"{text_tokens} text tokens need more than {chunking.max_chunks} chunks of at "
                f"most {budget}; chunking.max_chunks is {chunking.max_chunks}",
            )
        for _ in range(4):
            if budget <= chunking.overlap_tokens or budget < 16:
                break
            pieces = split_text(
                doc.text,
                model=self.job.model,
                max_tokens=budget,
                overlap_tokens=chunking.overlap_tokens,
            )
            if len(pieces) > chunking.max_chunks:
                return _build_reject(
                    doc,
                    "too_many_tokens",
                    f"needs {len(pieces)} chunks of at most {budget} text tokens; "
                    f"chunking.max_chunks is {chunking.max_chunks}",
                )
            texts = [renderer.user_text(doc, p, i, len(pieces)) for i, p in enumerate(pieces)]
            counts = [renderer.request_tokens(t) for t in renderer.count_many(texts)]
            if max(counts) <= self.max_input:
                return list(zip(texts, counts, strict=True))
            budget = budget * 9 // 10
        return _build_reject(
            doc, "too_many_tokens", f"cannot split within {self.max_input} tokens a request"
        )

    def emit(self, doc: Document, parts: list[tuple[str, int]]) -> None:
        """Write a document's requests, all of them or (with a reject) none."""
        writer, renderer = self.writer, self.renderer
        for _, tokens in parts:  # never happens when max_input_tokens fits the window
            too_long = self.too_long(doc, tokens)
            if too_long is not None:
                self.reject(too_long)
                return
        key = document_key(doc.document_id)
        count = len(parts)
        ids = [f"{key}-{i}" for i in range(count)]
        send = list(range(count))
        if count > 1 and self.answered is not None:
            # Chunks an earlier run answered are carried, not sent again (tasks/runs/carry.py).
            answered = self.answered(doc.document_id, doc.content_sha256, count)
            send = [i for i in send if i not in answered]
            if not send:  # every chunk answered: nothing to send, all carried
                self.counts.carried_documents.append((doc.document_id, doc.content_sha256))
                self.counts.documents_built += 1
                self.counts.documents_chunked += 1
                return
        lines = {i: renderer.line(ids[i], parts[i][0], doc.images) for i in send}
        try:
            if len(send) > 1:  # check every chunk first, so a document is never half written
                for i in send:
                    if writer.seen(ids[i]):
                        raise DuplicateCustomIdError(ids[i])
                    writer.check_fits(len(lines[i]), parts[i][1])
            for i in send:
                tokens = parts[i][1]
                row = RequestIndexRow(
                    ids[i], doc.document_id, doc.source_uri, doc.content_sha256, i, count, tokens
                )
                writer.add(ids[i], lines[i], row, tokens)
                self.counts.input_tokens += tokens
        except DuplicateCustomIdError:
            message = (
                f"custom_id {ids[0]} is already in this run: another document has the id "
                f"{doc.document_id!r}"
            )
            self.reject(_build_reject(doc, "duplicate_id", message))
            return
        except RequestTooLargeError as exc:
            code: RejectCode = "too_large" if exc.reason == "bytes" else "too_many_tokens"
            self.reject(_build_reject(doc, code, str(exc)))
            return
        self.counts.requests += len(send)
        self.counts.images += len(send) * len(doc.images)
        self.counts.documents_built += 1
        if count > 1:
            self.counts.documents_chunked += 1
            self.counts.chunked_requests += len(send)


def _files_per_partition(files_per_partition: int | None) -> int:
    if files_per_partition is not None:
        return files_per_partition
    from overnight.settings import get_settings

    return get_settings().build_partition_files


def _bytes_per_partition(bytes_per_partition: int | None) -> int:
    if bytes_per_partition is not None:
        return bytes_per_partition
    from overnight.settings import get_settings

    return get_settings().build_partition_bytes


def count_requests(
    job: JobSpec,
    *,
    should_process: ShouldProcess | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    files_per_partition: int | None = None,
    bytes_per_partition: int | None = None,
) -> tuple[BuildCounts, list[ShardInfo]]:
    """What `build_shards` would build, counted without writing it: the counters and shards
    of a dry build (each shard's index only, in a temporary folder removed on return).

    The same partitions, on the same local pool (`workers`), merged the same way, so the
    figures are those of the build whatever the worker count; a Dask cluster is not used.
    """
    with scratch_dir("estimate") as scratch:
        counts, shards, _, _ = _build_partitions(
            job,
            str(scratch),
            dry_run=True,
            should_process=should_process,
            progress=progress,
            workers=workers,
            dask_address="",
            files_per_partition=files_per_partition,
            bytes_per_partition=bytes_per_partition,
        )
    return counts, shards


def partition_prefix(plan: PartitionPlan, index: int) -> str:
    """Where partition `index` writes its shards under the run folder."""
    return "shards/shard" if plan.count == 1 else f"shards/shard-p{index:02d}"


def build_partition(
    job: JobSpec,
    run_dir: str,
    plan: PartitionPlan,
    index: int,
    *,
    should_process: ShouldProcess | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> PartitionResult:
    """Build one partition of the listing into its own shards and rejects file (with
    `dry_run`, the shards' indexes only: what `estimate` counts)."""
    rejected_uri = (
        storage.join(run_dir, "rejected.jsonl")
        if plan.count == 1
        else storage.join(run_dir, "partitions", f"rejected-p{index:02d}.jsonl")
    )
    with (
        storage.open_write(rejected_uri) as rejected_fh,
        ShardWriter(
            run_dir,
            prefix=partition_prefix(plan, index),
            limits=job.limits,
            model=job.model,
            endpoint=job.endpoint,
            dry_run=dry_run,
        ) as writer,
    ):

        def on_reject(rejected: RejectedDocument) -> None:
            rejected_fh.write(orjson.dumps(rejected.model_dump(mode="json")) + b"\n")

        planner = _Planner(job, writer, on_reject, should_process, progress)
        counts = planner.run(iter_documents(job.source, iter_partition(plan, index)))
    return PartitionResult(index, counts, writer.shards, rejected_uri)


def _build_partitions(
    job: JobSpec,
    run_dir: str,
    *,
    dry_run: bool,
    should_process: ShouldProcess | None,
    progress: Progress | None,
    workers: int | None,
    dask_address: str | None,
    files_per_partition: int | None,
    bytes_per_partition: int | None,
) -> tuple[BuildCounts, list[ShardInfo], str, PartitionPlan]:
    """List the source into partitions, build them where the runner says (one partition
    here) and merge them: the counters, shards, rejects file and plan of `build_shards` and
    `count_requests`."""
    from tasks.build_merge import merge_partitions
    from tasks.build_pool import PartitionRunner

    with PartitionRunner(
        job,
        workers=workers,
        dask_address=dask_address,
        should_process=should_process,
        progress=progress,
    ) as runner:
        plan = plan_partitions(
            job.source,
            spill_dir=storage.join(run_dir, "partitions"),
            files_per_partition=_files_per_partition(files_per_partition),
            bytes_per_partition=_bytes_per_partition(bytes_per_partition),
            on_spill=runner.start,
        )
        results = runner.run(run_dir, plan, dry_run=dry_run)
    counts, shards, rejected_uri = merge_partitions(run_dir, results, dry_run=dry_run)
    return counts, shards, rejected_uri, plan


def build_shards(
    job: JobSpec,
    run_dir: str,
    *,
    should_process: ShouldProcess | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    files_per_partition: int | None = None,
    bytes_per_partition: int | None = None,
) -> BuildSummary:
    """Write the job's request shards, their indexes and rejects under `run_dir`.

    `should_process(document)` returning False skips a document (counted, not rejected);
    `progress(n)` is called with the number of documents handled since its previous call.
    A listing of several partitions is built by `workers` processes (default
    `OVERNIGHT_BUILD_WORKERS`, else one per core; 1 builds here, one partition after the
    other), or on the Dask cluster at `dask_address` (default `OVERNIGHT_DASK_ADDRESS`);
    `should_process` must then be picklable (a `Ledger`'s method is).
    """
    counts, shards, rejected_uri, plan = _build_partitions(
        job,
        run_dir,
        dry_run=False,
        should_process=should_process,
        progress=progress,
        workers=workers,
        dask_address=dask_address,
        files_per_partition=files_per_partition,
        bytes_per_partition=bytes_per_partition,
    )
    remove_spill(plan)
    return BuildSummary(
        job_name=job.name,
        job_fingerprint=job.fingerprint(),
        documents_seen=counts.documents_seen,
        documents_skipped=counts.documents_skipped,
        documents_built=counts.documents_built,
        documents_rejected=counts.documents_rejected,
        requests=counts.requests,
        input_tokens=counts.input_tokens,
        shards=shards,
        rejected_uri=rejected_uri,
        rejected_count=counts.documents_rejected,
        documents_chunked=counts.documents_chunked,
        chunked_requests=counts.chunked_requests,
        carried_documents=counts.carried_documents,
    )
