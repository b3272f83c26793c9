"""Job specs: what to read, which model to ask, with which prompt and output schema, within which limits.

A job file (TOML or YAML) is loaded with `load_job`; the resulting `JobSpec` is frozen and
JSON-serialisable, so it can be a Prefect flow parameter. `JobSpec.fingerprint()` hashes
everything that changes a request body and nothing else, so a nightly ledger can tell which
documents this version of the job has already done.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import string
import sys
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

Endpoint = Literal["/v1/chat/completions", "/v1/responses"]
ChunkOutput = Literal["chunk", "document"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
ImageDetail = Literal["auto", "low", "high"]

RENDER_VERSION = 1
"""Bumped whenever the way request bodies are rendered changes; part of every fingerprint."""

TEMPLATE_FIELDS = frozenset(
    {"text", "id", "metadata", "source_uri", "chunk_index", "chunk_number", "chunk_count"}
)
"""The names a `user_template` may use, e.g. `{text}`, `{id}`, `{metadata[author]}`;
`chunk_index` counts from 0, `chunk_number` from 1. A missing metadata key renders empty."""

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SCHEMA_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class JobSpecError(ValueError):
    """A job file or job spec is invalid; the message names the file and the field."""


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSpec(_Spec):
    """Where the documents are and how to read them."""

    uri: str = Field(min_length=1)
    """A local folder or file, or `s3://bucket/prefix`."""
    include: tuple[str, ...] = ()
    """Glob patterns on the key relative to `uri` (or the file name); empty = everything."""
    exclude: tuple[str, ...] = ()
    """Glob patterns like `include`; a folder they match is left out with all it holds."""
    text_field: str = Field(default="text", min_length=1)
    """The field (JSON/JSONL) or column (CSV/Parquet) holding a record's text."""
    id_field: str | None = None
    """A field or column holding a record's id; without it, id = key + "#" + record number."""
    metadata_fields: tuple[str, ...] = ()
    """Record fields copied (as strings) into `Document.metadata`, usable in the template."""
    max_document_bytes: int = Field(default=10_000_000, gt=0)
    """Largest document: a file read whole (txt, html, pdf, json, images; after gunzip) or a
    record's text (jsonl, csv, parquet). Larger ones are rejected as `too_large`."""
    max_pages: int = Field(default=50, gt=0)
    """Most pages of a scanned PDF, which is sent as one image per page; one with more pages
    is rejected as `too_many_pages`. (A PDF with a text layer is read as text and chunked by
    tokens, whatever its length.)"""
    min_page_chars: int = Field(default=20, ge=0)
    """A PDF page with fewer characters of text than this counts as scanned; a PDF most of
    whose pages are scanned is read as page images for a vision model (0: never)."""


class GenerationParams(_Spec):
    """Sampling parameters sent with every request."""

    max_output_tokens: int = Field(gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    reasoning_effort: ReasoningEffort | None = None
    image_detail: ImageDetail | None = None
    """The `detail` of every image part (`high` reads small print on scanned pages; `low` is
    one cheap low-resolution look). None: OpenAI's default, `auto`, estimated as `high`."""


class ChunkingSpec(_Spec):
    """How long documents are split into several requests."""

    max_input_tokens: int = Field(default=100_000, gt=0)
    """Largest estimated input of one request: prompts, schema and document text together."""
    overlap_tokens: int = Field(default=200, ge=0)
    """Text repeated from the end of one chunk at the start of the next."""
    max_chunks: int = Field(default=64, ge=1)
    """A document needing more chunks is rejected as `too_many_tokens`; 1 disables chunking."""
    output: ChunkOutput = "chunk"
    """`chunk`: one result row per chunk of a long document (as before this option existed).
    `document`: one result row per document: the chunks' outputs are combined by a second
    Batch request per split document (the reduce stage) into one output of the same schema,
    and the chunk rows go to the `chunks` table."""

    @model_validator(mode="after")
    def _overlap_below_max(self) -> ChunkingSpec:
        if self.overlap_tokens >= self.max_input_tokens // 2:
            raise ValueError("overlap_tokens must be less than half of max_input_tokens")
        return self


class LimitsSpec(_Spec):
    """Batch API limits the shards must respect, and retry policy."""

    max_requests_per_shard: int = Field(default=50_000, gt=0, le=50_000)
    max_shard_bytes: int = Field(default=200_000_000, gt=0, le=209_715_200)
    """Just under the 200 MB input-file limit."""
    max_shard_tokens: int | None = Field(default=None, gt=0)
    """Estimated input tokens per shard: the organisation's enqueued-token limit for the model."""
    max_in_flight_tokens: int | None = Field(default=None, gt=0)
    """Estimated input tokens across all batches in flight at once (the scheduler's limit)."""
    max_attempts: int = Field(default=3, ge=1)
    retry_invalid_outputs: bool = False


class JobSpec(_Spec):
    """One job: source documents → requests to one model → validated rows of one schema."""

    name: str
    description: str = ""
    source: SourceSpec
    output: str = Field(min_length=1)
    """A local folder or `s3://bucket/prefix` where runs, results and costs are written."""
    model: str = Field(min_length=1)
    endpoint: Endpoint = "/v1/chat/completions"
    system_prompt: str = Field(min_length=1)
    user_template: str = "{text}"
    """`str.format` template of the user message; see `TEMPLATE_FIELDS`. Keep `{text}` last so
    the static part of every request is a shared prefix (prompt caching)."""
    schema_dir: str | None = None
    """A folder searched, after the installed packages, for `output_schema`'s module;
    `load_job` sets it to the job file's folder, so `myschemas:Invoice` next to it imports."""
    output_schema: str
    """Import path of the Pydantic output model, e.g. `schemas.summary:DocumentSummary`."""
    params: GenerationParams
    chunking: ChunkingSpec = ChunkingSpec()
    limits: LimitsSpec = LimitsSpec()
    budget_usd: float | None = Field(default=None, gt=0)
    expected_output_tokens: int | None = Field(default=None, gt=0)
    """Typical output tokens per request, for estimates; see `tasks.estimate`."""

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                "must be a slug: lower-case letters, digits, '-' or '_', at most 63 characters"
            )
        return value

    @field_validator("user_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        check_template(value)
        return value

    @field_validator("output_schema")
    @classmethod
    def _schema_importable(cls, value: str, info: ValidationInfo) -> str:
        if not _SCHEMA_PATH.match(value):
            raise ValueError("must be an import path like 'schemas.summary:DocumentSummary'")
        import_output_model(value, info.data.get("schema_dir"))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        from schemas.response_format import check_strict

        if self.endpoint == "/v1/responses" and self.params.seed is not None:
            raise ValueError("params.seed is not a parameter of /v1/responses; remove it")
        check_strict(self.output_model(), self.endpoint)
        return self

    def output_model(self) -> type[BaseModel]:
        """Import and return the output schema class."""
        return import_output_model(self.output_schema, self.schema_dir)

    def request_definition(self) -> dict[str, Any]:
        """Everything that shapes a request body, as plain JSON values."""
        from schemas.response_format import response_format_for

        return {
            "render_version": RENDER_VERSION,
            "model": self.model,
            "endpoint": self.endpoint,
            "system_prompt": self.system_prompt,
            "user_template": self.user_template,
            "response_format": response_format_for(self.output_model(), self.endpoint),
            "params": self.params.model_dump(
                mode="json", exclude={"image_detail"} if self.params.image_detail is None else None
            ),
            "chunking": self.chunking.model_dump(
                mode="json", exclude={"output"} if self.chunking.output == "chunk" else None
            ),
        }

    def fingerprint(self) -> str:
        """sha256 hex over what changes a request (not source, output, limits or budget).

        `chunking.output` counts only when it is `document` (it adds the reduce requests and
        changes what a document's row is), and `params.image_detail` only when it is set, so
        jobs written before those options keep theirs.
        """
        canonical = orjson.dumps(self.request_definition(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()


def template_fields(template: str) -> set[str]:
    """The root names a `str.format` template uses (`{metadata[x]}` → `metadata`)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid format template: {exc}") from None
    names: set[str] = set()
    for _literal, field, _spec, _conversion in parsed:
        if field is None:
            continue
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not root or root.isdigit():
            raise ValueError("positional fields like '{}' are not allowed; use '{text}'")
        names.add(root)
    return names


def check_template(template: str) -> None:
    """Raise ValueError if a user template is malformed or names an unknown field."""
    names = template_fields(template)
    unknown = sorted(names - TEMPLATE_FIELDS)
    if unknown:
        known = ", ".join(sorted(TEMPLATE_FIELDS))
        raise ValueError(f"unknown field {{{unknown[0]}}}; known fields: {known}")
    if "text" not in names:
        raise ValueError("must contain {text}, or the document never reaches the model")


@lru_cache(maxsize=64)
def import_output_model(path: str, search_dir: str | None = None) -> type[BaseModel]:
    """Import `module:Class` (also from `search_dir`) and check it is a Pydantic model."""
    module_name, _, attr = path.partition(":")
    if search_dir and search_dir not in sys.path:
        sys.path.append(search_dir)  # after the installed packages: it never shadows them
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in the installed packages and {search_dir})" if search_dir else ""
        raise ValueError(f"cannot import module {module_name!r}{where}: {exc}") from None
    except Exception as exc:  # the user's module itself fails: a syntax error, a raise
        where = f"{exc.filename}, line {exc.lineno}" if isinstance(exc, SyntaxError) else ""
        detail = f"{type(exc).__name__}: {exc.msg if isinstance(exc, SyntaxError) else exc}"
        raise ValueError(
            f"importing module {module_name!r} failed ({where or 'while it ran'}): {detail}"
        ) from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
        raise ValueError(
            f"{path!r} is not a Pydantic model class of your own (module {module.__file__}): "
            "name a class that subclasses pydantic.BaseModel"
        )
    return cls


def _resolve(value: object, base: Path) -> object:
    if not isinstance(value, str) or value.startswith("s3://") or not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _format_errors(path: Path, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = " ".join(err["msg"].removeprefix("Value error, ").split())
        problems.append(f"{loc}: {msg}")
    return f"{path}: invalid job file: " + "; ".join(problems)


def parse_job(data: dict[str, Any], *, path: str | Path = "<job>") -> JobSpec:
    """Validate a job mapping, raising `JobSpecError` with one line per bad field.

    A job whose fields are valid is then preflighted (`tasks.preflight`): what the model would
    refuse on every request is refused here, before anything is built or sent.
    """
    try:
        job = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise JobSpecError(_format_errors(Path(path), exc)) from None
    from tasks.preflight import check_job

    check_job(job, path=path)
    return job


def load_job(path: str | Path) -> JobSpec:
    """Load a TOML or YAML job file; relative source/output paths are taken from its folder."""
    file = Path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobSpecError(f"{file}: cannot read job file: {exc.strerror or exc}") from None
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            data: object = tomllib.loads(raw)
        elif suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(raw)
        else:
            raise JobSpecError(f"{file}: job files are .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise JobSpecError(f"{file}: not valid {suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise JobSpecError(f"{file}: a job file must be a mapping of fields")
    base = file.resolve().parent
    data.setdefault("schema_dir", str(base))
    if "output" in data:
        data["output"] = _resolve(data["output"], base)
    source = data.get("source")
    if isinstance(source, dict) and "uri" in source:
        data["source"] = {**source, "uri": _resolve(source["uri"], base)}
    return parse_job(data, path=file)
