"""Scanned PDFs: read as page images, capped in pages, priced by the model's image rule."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pypdf import PdfReader, PdfWriter

from schemas.documents import Document, RejectedDocument
from schemas.job import JobSpec, SourceSpec, parse_job
from tasks.build import build_shards
from tasks.imagetokens import data_url_size
from tasks.render import RequestRenderer
from tasks.sources import iter_documents
from tests._scans import scanned_pdf

CASES = Path(__file__).resolve().parents[1] / "cases"


def load(folder: Path, **source: Any) -> dict[str, Document | RejectedDocument]:
    return {d.document_id: d for d in iter_documents(SourceSpec(uri=str(folder), **source))}


def job(folder: Path, **changes: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": "scans",
        "source": {"uri": str(folder)},
        "output": "/unused",
        "model": "gpt-4.1-mini",
        "system_prompt": "Extract the invoice.",
        "output_schema": "schemas.summary:DocumentSummary",
        "params": {"max_output_tokens": 400},
    }
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    return parse_job(data)


def mixed_pdf(text_pages: int, scanned_pages: int) -> bytes:
    """`text_pages` copies of a text-layer page, then `scanned_pages` page images."""
    writer = PdfWriter()
    for _ in range(text_pages):
        writer.add_page(PdfReader(CASES / "doc.pdf").pages[0])
    for page in PdfReader(io.BytesIO(scanned_pdf(scanned_pages))).pages:
        writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_scan_becomes_one_jpeg_per_page_with_its_size(tmp_path: Path) -> None:
    (tmp_path / "scan.pdf").write_bytes(scanned_pdf(3))
    doc = load(tmp_path)["scan.pdf"]
    assert isinstance(doc, Document)
    assert doc.text is None
    assert len(doc.images) == 3
    assert all(url.startswith("data:image/jpeg;base64,") for url in doc.images)
    # drawn at 150 dpi on A4 (1240×1754 px), rendered back at 150 dpi
    assert doc.image_sizes == ((1241, 1754),) * 3
    assert [data_url_size(url) for url in doc.images] == list(doc.image_sizes)
    assert doc.metadata == {
        "format": "pdf",
        "pages": "3",
        "read_as": "page_images",
        "scanned_pages": "3",
    }
    assert all(len(url) < 600_000 for url in doc.images)  # JPEG 85: a page stays small


def test_a_scan_over_the_page_cap_is_rejected_saying_so(tmp_path: Path) -> None:
    (tmp_path / "long-scan.pdf").write_bytes(scanned_pdf(4))
    rejected = load(tmp_path, max_pages=3)["long-scan.pdf"]
    assert isinstance(rejected, RejectedDocument)
    assert rejected.code == "too_many_pages"
    assert rejected.message == (
        "a scanned PDF of 4 pages (no text layer on 4); it would be sent as one image per "
        "page, and source.max_pages is 3"
    )
    assert SourceSpec(uri="x").max_pages == 50


def test_most_pages_decide_between_text_and_images(tmp_path: Path) -> None:
    (tmp_path / "mostly-text.pdf").write_bytes(mixed_pdf(2, 1))
    (tmp_path / "mostly-scan.pdf").write_bytes(mixed_pdf(1, 2))
    docs = load(tmp_path)
    text = docs["mostly-text.pdf"]
    assert isinstance(text, Document)
    assert text.images == ()
    assert text.text is not None and text.text.count("A small PDF for the format tests.") == 2
    scan = docs["mostly-scan.pdf"]
    assert isinstance(scan, Document)
    assert len(scan.images) == 3  # every page, the text one included
    assert scan.metadata["scanned_pages"] == "2"


def test_min_page_chars_zero_never_reads_pages_as_images(tmp_path: Path) -> None:
    (tmp_path / "scan.pdf").write_bytes(scanned_pdf(2))
    rejected = load(tmp_path, min_page_chars=0)["scan.pdf"]
    assert isinstance(rejected, RejectedDocument)
    assert (rejected.code, rejected.message) == ("empty", "no text in its 2 page(s)")


def test_blank_pages_without_text_are_empty(tmp_path: Path) -> None:
    (tmp_path / "blank.pdf").write_bytes((CASES / "scanned.pdf").read_bytes())
    rejected = load(tmp_path)["blank.pdf"]
    assert isinstance(rejected, RejectedDocument)
    assert rejected.code == "empty"
    assert rejected.message == "no text layer and nothing on its 1 page(s): every page is blank"


def test_the_estimate_counts_each_page_by_the_models_rule(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.pdf").write_bytes(scanned_pdf(2))
    for model, per_page in (("gpt-4.1-mini", 2385), ("gpt-4o", 1105), ("o4-mini", 2532)):
        # patches: 1241×1754 is 39 × 55 = 2,145 patches, over the cap; scaled to 1023×1447,
        # 32 × 46 = 1,472 patches (× 1.62 = 2,385; × 1.72 = 2,532);
        # tiles: the short side scaled to 768 gives 768×1086, 2 × 3 tiles: 85 + 6 × 170
        spec = job(tmp_path / "in", model=model)
        summary = build_shards(spec, str(tmp_path / model))
        renderer = RequestRenderer(spec)
        assert renderer.image_tokens([(1241, 1754)]) == per_page
        assert summary.input_tokens == renderer.static_tokens + 2 * per_page


def test_image_detail_is_sent_on_every_page_and_changes_the_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.pdf").write_bytes(scanned_pdf(1))
    plain = job(tmp_path / "in", model="gpt-4o")
    low = job(tmp_path / "in", model="gpt-4o", params={"image_detail": "low"})
    assert "image_detail" not in plain.request_definition()["params"]
    assert plain.fingerprint() != low.fingerprint()
    summary = build_shards(low, str(tmp_path / "low"))
    [line] = [orjson.loads(x) for x in Path(summary.shards[0].uri).read_bytes().splitlines()]
    parts = line["body"]["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert parts[1]["image_url"]["detail"] == "low"
    assert summary.input_tokens == RequestRenderer(low).static_tokens + 85


@pytest.fixture
def no_vision_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's models file with a text-only chat model."""
    from overnight.settings import get_settings

    shipped = (Path(__file__).resolve().parents[2] / "data" / "models.toml").read_text()
    own = tmp_path / "models.toml"
    own.write_text(
        shipped + '\n[models."text-only-1"]\ncontext_window = 128000\n'
        "max_output_tokens = 16384\nreasoning = false\nvision = false\n"
        'structured_outputs = true\nendpoints = ["/v1/chat/completions"]\n'
    )
    monkeypatch.setenv("OVERNIGHT_MODELS_FILE", str(own))
    get_settings.cache_clear()
    yield "text-only-1"
    monkeypatch.delenv("OVERNIGHT_MODELS_FILE")
    get_settings.cache_clear()


def test_a_scan_for_a_model_without_vision_is_refused_before_submit(
    tmp_path: Path, no_vision_model: str
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.pdf").write_bytes(scanned_pdf(2))
    (tmp_path / "in" / "note.txt").write_text("Plain text is fine.")
    summary = build_shards(job(tmp_path / "in", model=no_vision_model), str(tmp_path / "run"))
    rejected = [orjson.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").open("rb")]
    assert [(r["document_id"], r["stage"], r["code"]) for r in rejected] == [
        ("scan.pdf", "build", "vision_unsupported")
    ]
    assert rejected[0]["message"] == (
        "a scanned PDF (no text layer), read as 2 page image(s), and text-only-1 does not "
        "accept image input (vision = false in its capabilities); use a model with vision, "
        "e.g. gpt-4.1-mini, or leave images out with source.exclude"
    )
    assert summary.requests == 1


def test_the_estimate_says_how_it_counted_the_pages(tmp_path: Path) -> None:
    from tasks.estimate import estimate_job

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.pdf").write_bytes(scanned_pdf(2))
    estimate = estimate_job(job(tmp_path / "in", model="gpt-4o-mini"))
    assert estimate.requests == 1
    assert estimate.input_tokens >= 2 * 36_835  # 2,833 + 6 × 5,667 per A4 page
    assert (
        "2 image(s) counted by gpt-4o-mini's image-token rule (2833 + 5667 per 512 px tile "
        "(2833 at low detail)), detail auto (counted as high), from their pixel sizes"
    ) in estimate.assumptions


def test_a_scan_too_big_for_one_request_is_rejected_with_what_to_change(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.pdf").write_bytes(scanned_pdf(3))
    spec = job(tmp_path / "in", model="gpt-4o-mini", chunking={"max_input_tokens": 100_000})
    summary = build_shards(spec, str(tmp_path / "run"))
    [rejected] = [orjson.loads(x) for x in (tmp_path / "run" / "rejected.jsonl").open("rb")]
    total = RequestRenderer(spec).static_tokens + 3 * 36_835
    assert (rejected["code"], rejected["message"]) == (
        "too_many_tokens",
        f"a scanned PDF of 3 page image(s) is one request of {total} input tokens; "
        "chunking.max_input_tokens is 100000 (pages are never split; gpt-4o-mini's image rule "
        'prices each page): set params.image_detail = "low", lower source.max_pages, or raise '
        "chunking.max_input_tokens",
    )
    assert summary.requests == 0
