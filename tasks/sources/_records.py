"""Records: JSON (one or a list), JSONL line by line, CSV/TSV/Parquet in batches of rows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import orjson

from schemas.documents import Document, RejectCode, RejectedDocument
from tasks import storage
from tasks.sources._reading import (
    GZIP_ERRORS,
    READ_ERRORS,
    gunzipped,
    is_read_failure,
    local_copy,
)
from tasks.storage import ObjectInfo

if TYPE_CHECKING:
    from tasks.sources._outcomes import Outcomes

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".parquet"})


def _batch_rows() -> int:
    """Rows per table batch: `tasks.sources.TABLE_BATCH_ROWS`, read when a table is read."""
    from tasks import sources

    return sources.TABLE_BATCH_ROWS


def iter_lines(fh: IO[bytes], block: int = 1 << 20) -> Iterator[bytes]:
    """Split a binary stream into lines without reading it whole."""
    rest = b""
    while True:
        chunk = fh.read(block)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def read_record(
    out: Outcomes, info: ObjectInfo, obj: object, index: int | None
) -> Document | RejectedDocument:
    """One JSON record (a dict) → a document; `index` None for a single-record file."""
    src = out.source
    default_id = info.key if index is None else f"{info.key}#{index}"
    if not isinstance(obj, dict):
        return out.reject(
            info,
            "bad_record",
            f"a record must be a JSON object, not {type(obj).__name__}",
            document_id=default_id,
        )
    doc_id = default_id
    if src.id_field is not None:
        value = obj.get(src.id_field)
        if value is None or isinstance(value, dict | list) or value == "":
            return out.reject(
                info,
                "bad_record",
                f"record has no usable id field {src.id_field!r}",
                document_id=default_id,
            )
        doc_id = str(value)
    meta = {name: str(obj[name]) for name in src.metadata_fields if obj.get(name) is not None}
    return read_record_text(out, info, obj.get(src.text_field), doc_id, index, meta)


def read_record_text(
    out: Outcomes,
    info: ObjectInfo,
    text: object,
    doc_id: str,
    index: int | None,
    meta: dict[str, str],
) -> Document | RejectedDocument:
    src = out.source
    if text is None:
        return out.reject(
            info,
            "missing_text_field",
            f"record has no text field {src.text_field!r}",
            document_id=doc_id,
        )
    if not isinstance(text, str):
        return out.reject(
            info,
            "bad_record",
            f"text field {src.text_field!r} holds {type(text).__name__}, not a string",
            document_id=doc_id,
        )
    raw = text.encode("utf-8", "surrogatepass")
    sha = hashlib.sha256(raw).hexdigest()
    if len(raw) > out.max_bytes:
        return out.reject(
            info,
            "too_large",
            f"record text is {len(raw)} bytes; limit {out.max_bytes}",
            document_id=doc_id,
            sha256=sha,
        )
    return out.text_document(
        info,
        text,
        sha256=sha,
        size=len(raw),
        metadata=meta,
        document_id=doc_id,
        record_index=index,
    )


def read_json(
    out: Outcomes, info: ObjectInfo, data: bytes, sha: str
) -> Iterator[Document | RejectedDocument]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield out.reject(info, "bad_record", f"not valid JSON: {exc}", sha256=sha)
        return
    if isinstance(obj, list):
        if not obj:
            yield out.reject(info, "empty", "an empty JSON list", sha256=sha)
        for i, item in enumerate(obj):
            yield read_record(out, info, item, i)
    else:
        yield read_record(out, info, obj, None)


def read_jsonl(out: Outcomes, info: ObjectInfo, gz: bool) -> Iterator[Document | RejectedDocument]:
    index = -1
    records = 0
    try:
        with storage.open_read(info.location) as raw:
            fh = gunzipped(raw) if gz else raw
            for index, line in enumerate(iter_lines(fh)):
                if not line.strip():
                    continue
                records += 1
                if len(line) > out.max_bytes + 1024:
                    yield out.reject(
                        info,
                        "too_large",
                        f"line of {len(line)} bytes; limit {out.max_bytes}",
                        document_id=f"{info.key}#{index}",
                    )
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield out.reject(
                        info,
                        "bad_record",
                        f"line {index + 1} is not valid JSON: {exc}",
                        document_id=f"{info.key}#{index}",
                    )
                    continue
                yield read_record(out, info, obj, index)
    except GZIP_ERRORS + READ_ERRORS as exc:
        code: RejectCode = "unreadable" if is_read_failure(exc) else "undecodable"
        yield out.reject(
            info,
            code,
            f"reading stopped after line {index + 1}: {exc}",
            document_id=f"{info.key}#{index + 1}",
        )
        return
    if records == 0:
        yield out.reject(info, "empty", "no records in the file")


def read_table(
    out: Outcomes, info: ObjectInfo, suffix: str, gz: bool
) -> Iterator[Document | RejectedDocument]:
    import polars as pl

    src = out.source
    if info.size == 0:
        yield out.reject(info, "empty", "the file is empty")
        return
    rows = 0
    try:
        with local_copy(info, gz) as path:
            if suffix == ".parquet":
                frame = pl.scan_parquet(path)
            else:
                sep = "\t" if suffix == ".tsv" else ","
                frame = pl.scan_csv(path, separator=sep, infer_schema=False)
            columns = frame.collect_schema().names()
            if src.text_field not in columns:
                yield out.reject(
                    info,
                    "missing_text_field",
                    f"no column {src.text_field!r} (columns: {', '.join(columns[:20])})",
                )
                return
            if src.id_field is not None and src.id_field not in columns:
                yield out.reject(info, "bad_record", f"no id column {src.id_field!r}")
                return
            meta_cols = [c for c in src.metadata_fields if c in columns]
            wanted = [src.text_field, *([src.id_field] if src.id_field else []), *meta_cols]
            selected = frame.select(pl.col(c).cast(pl.String) for c in dict.fromkeys(wanted))
            for batch in selected.collect_batches(chunk_size=_batch_rows()):
                yield from read_table_rows(
                    out, info, batch.to_dict(as_series=False), rows, meta_cols
                )
                rows += batch.height
    except (pl.exceptions.PolarsError, *GZIP_ERRORS, *READ_ERRORS) as exc:
        yield out.reject(
            info,
            "unreadable" if is_read_failure(exc) else "undecodable",
            f"reading stopped after row {rows}: {type(exc).__name__}: {exc}",
            document_id=f"{info.key}#{rows}",
        )
        return
    if rows == 0:
        yield out.reject(info, "empty", "no rows in the table")


def read_table_rows(
    out: Outcomes, info: ObjectInfo, cols: dict[str, list[Any]], offset: int, meta_cols: list[str]
) -> Iterator[Document | RejectedDocument]:
    src = out.source
    texts = cols[src.text_field]
    ids = cols[src.id_field] if src.id_field else None
    for i, text in enumerate(texts):
        index = offset + i
        doc_id = f"{info.key}#{index}"
        if ids is not None:
            value = ids[i]
            if value is None or value == "":
                yield out.reject(
                    info,
                    "bad_record",
                    f"row has no id in column {src.id_field!r}",
                    document_id=doc_id,
                )
                continue
            doc_id = value
        if text is None:
            yield out.reject(
                info, "empty", f"no value in column {src.text_field!r}", document_id=doc_id
            )
            continue
        meta = {c: cols[c][i] for c in meta_cols if cols[c][i] is not None}
        yield read_record_text(out, info, text, doc_id, index, meta)
