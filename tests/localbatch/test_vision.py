"""Vision requests on the local API: counted by the model's image rule, refused as OpenAI
refuses them, and answered schema-valid by a simulator that says it did not see the images."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openai import OpenAI
from PIL import Image

from tests._scans import page_image, scanned_pdf
from tests.localbatch._helpers import (
    SUMMARY_SCHEMA,
    chat_line,
    message_content,
    responses_line,
    results,
    run_batch,
)
from tests.localbatch.conftest import MakeClient, MakeServer

TEXT = "Read the scanned invoice and summarize it."


def png_url(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (250, 250, 250)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def scan_url() -> str:
    buffer = io.BytesIO()
    page_image(["INVOICE 1042", "Total due: 310.00 EUR"]).save(buffer, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def with_images(line: dict[str, Any], *parts: dict[str, Any]) -> dict[str, Any]:
    messages = line["body"]["messages"]
    messages[-1]["content"] = [{"type": "text", "text": TEXT}, *parts]
    return line


def image_part(url: str, detail: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {"url": url} | ({"detail": detail} if detail else {})
    return {"type": "image_url", "image_url": image}


def test_image_tokens_follow_the_models_rule(client: OpenAI) -> None:
    big = png_url((1024, 1024))
    lines = []
    for model in ("gpt-4o-mini", "gpt-4.1-mini", "o4-mini"):
        lines.append(chat_line(f"{model}-text", TEXT, model=model, schema=SUMMARY_SCHEMA))
        lines.append(
            with_images(
                chat_line(f"{model}-high", TEXT, model=model, schema=SUMMARY_SCHEMA),
                image_part(big, "high"),
            )
        )
        lines.append(
            with_images(
                chat_line(f"{model}-low", TEXT, model=model, schema=SUMMARY_SCHEMA),
                image_part(big, "low"),
                image_part(big, "low"),
            )
        )
    # each model in its own batch (a batch takes one model)
    usage: dict[str, int] = {}
    for i in range(0, len(lines), 3):
        batch = run_batch(client, lines[i : i + 3])
        out, err = results(client, batch)
        assert not err
        usage |= {
            cid: line["response"]["body"]["usage"]["prompt_tokens"] for cid, line in out.items()
        }

    def image_tokens(model: str, detail: str) -> int:
        return usage[f"{model}-{detail}"] - usage[f"{model}-text"]

    # 1024×1024: 4 tiles on gpt-4o-mini (2,833 + 4 × 5,667); low = the base per image
    assert image_tokens("gpt-4o-mini", "high") == 25_501
    assert image_tokens("gpt-4o-mini", "low") == 2 * 2_833
    # patches: 1,024 × 1.62 and × 1.72, whatever the detail
    assert image_tokens("gpt-4.1-mini", "high") == 1_659
    assert image_tokens("gpt-4.1-mini", "low") == 2 * 1_659
    assert image_tokens("o4-mini", "high") == 1_762


def test_the_simulator_says_it_cannot_see_and_still_answers_schema_valid(client: OpenAI) -> None:
    chat = with_images(chat_line("scan", TEXT, schema=SUMMARY_SCHEMA), image_part(scan_url()))
    plain = chat_line("plain", "Invoice 1042 from Acme Tools: 310.00 EUR.", schema=SUMMARY_SCHEMA)
    out, err = results(client, run_batch(client, [chat, plain]))
    assert not err
    body = out["scan"]["response"]["body"]
    assert body["system_fingerprint"] == "fp_overnight_simulated_no_vision"
    jsonschema.validate(json.loads(message_content(out["scan"])), SUMMARY_SCHEMA)
    assert out["plain"]["response"]["body"]["system_fingerprint"] == "fp_overnight_simulated"

    line = responses_line("scan", TEXT, schema=SUMMARY_SCHEMA)
    line["body"]["input"][0]["content"].append({"type": "input_image", "image_url": scan_url()})
    out, err = results(client, run_batch(client, [line], endpoint="/v1/responses"))
    assert not err
    body = out["scan"]["response"]["body"]
    assert body["metadata"] == {"overnight_executor": "simulate", "overnight_vision": "not_read"}
    text = body["output"][-1]["content"][0]["text"]
    jsonschema.validate(json.loads(text), SUMMARY_SCHEMA)


def test_a_pdf_file_part_is_counted_per_page_and_not_seen(client: OpenAI) -> None:
    pdf = "data:application/pdf;base64," + base64.b64encode(scanned_pdf(2)).decode()
    part = {"type": "file", "file": {"filename": "scan.pdf", "file_data": pdf}}
    lines = [
        chat_line("text", TEXT, model="gpt-4o", schema=SUMMARY_SCHEMA),
        with_images(chat_line("pdf", TEXT, model="gpt-4o", schema=SUMMARY_SCHEMA), part),
    ]
    out, err = results(client, run_batch(client, lines))
    assert not err
    body = out["pdf"]["response"]["body"]
    assert body["system_fingerprint"] == "fp_overnight_simulated_no_vision"
    jsonschema.validate(json.loads(message_content(out["pdf"])), SUMMARY_SCHEMA)
    extra = (
        body["usage"]["prompt_tokens"] - out["text"]["response"]["body"]["usage"]["prompt_tokens"]
    )
    assert extra == 2 * 1105  # no text on the pages; each page image is 2 × 3 tiles on gpt-4o


def _refusal(line: dict[str, Any]) -> dict[str, Any]:
    assert line["error"] is None
    assert line["response"]["status_code"] == 400
    return dict(line["response"]["body"]["error"])


def test_bad_images_are_refused_per_line_in_openais_words(client: OpenAI) -> None:
    cases = {
        "no-prefix": image_part("scan.png"),
        "empty": image_part("data:image/png;base64,"),
        "bmp": image_part("data:image/bmp;base64,Qk0="),
        "not-an-image": image_part("data:image/png;base64,aGVsbG8="),
        "fine": image_part(png_url((64, 64))),
        "remote": image_part("https://example.com/scan.png"),
    }
    lines = [with_images(chat_line(cid, TEXT), part) for cid, part in cases.items()]
    out, err = results(client, run_batch(client, lines))
    assert set(out) == {"fine", "remote"}
    expected_url = (
        "Invalid image URL: 'messages[1].content[1].image_url.url'. Expected a base64-encoded "
        "data URL with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), "
        "but got "
    )
    param = "messages[1].content[1].image_url.url"
    assert _refusal(err["no-prefix"]) == {
        "message": expected_url + "a value without the 'data:' prefix.",
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_value",
    }
    assert _refusal(err["empty"])["message"] == expected_url + "empty base64-encoded bytes."
    assert _refusal(err["bmp"])["message"] == expected_url + "unsupported MIME type 'image/bmp'."
    assert _refusal(err["not-an-image"]) == {
        "message": "You uploaded an unsupported image. Please make sure your image has of one "
        "the following formats: ['png', 'jpeg', 'gif', 'webp'].",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_image_format",
    }


@pytest.fixture
def text_only_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from overnight.settings import get_settings

    shipped = (Path(__file__).resolve().parents[2] / "data" / "models.toml").read_text()
    own = tmp_path / "models.toml"
    own.write_text(
        shipped + '\n[models."text-only-1"]\ncontext_window = 128000\n'
        "max_output_tokens = 16384\nreasoning = false\nvision = false\n"
        'structured_outputs = true\nendpoints = ["/v1/chat/completions", "/v1/responses"]\n'
    )
    monkeypatch.setenv("OVERNIGHT_MODELS_FILE", str(own))
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("OVERNIGHT_MODELS_FILE")
    get_settings.cache_clear()


def test_images_and_files_on_a_model_without_vision_are_refused(
    text_only_models: None, make_server: MakeServer, make_client: MakeClient
) -> None:
    client = make_client(make_server())
    pdf = "data:application/pdf;base64," + base64.b64encode(scanned_pdf(1)).decode()
    lines = [
        with_images(chat_line("image", TEXT, model="text-only-1"), image_part(scan_url())),
        with_images(
            chat_line("file", TEXT, model="text-only-1"),
            {"type": "file", "file": {"filename": "a.pdf", "file_data": pdf}},
        ),
        chat_line("text", TEXT, model="text-only-1"),
    ]
    out, err = results(client, run_batch(client, lines))
    assert set(out) == {"text"}
    assert _refusal(err["image"]) == {
        "message": "Invalid content type. image_url is only supported by certain models.",
        "type": "invalid_request_error",
        "param": "messages.[1].content.[1].type",
        "code": None,
    }
    assert _refusal(err["file"])["message"] == (
        "Invalid content type. file is only supported by certain models."
    )
