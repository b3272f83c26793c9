"""Moderations batches: OpenAI's Batch API takes /v1/moderations, so the local API does too.

Every request goes through the official openai client; each answer must parse as the client's
`ModerationCreateResponse` and, where the spec is at hand, match its `CreateModerationResponse`.
"""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types import ModerationCreateResponse

from tests.localbatch._helpers import results, run_batch
from tests.localbatch._spec import load_spec, spec_errors

MODERATIONS = "/v1/moderations"


def line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": MODERATIONS, "body": body}


def refusal(out_line: dict[str, Any]) -> tuple[str | None, str | None, str]:
    error = out_line["response"]["body"]["error"]
    assert out_line["response"]["status_code"] == 400 and out_line["error"] is None
    return error["code"], error["param"], error["message"]


def test_a_moderations_batch_answers_like_openai(client: OpenAI) -> None:
    omni = "omni-moderation-latest"
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    lines = [
        line("texts", model=omni, input=["Have a nice day at the harbor.", "I will kill them."]),
        line("one", model=omni, input="The board approved the budget."),
        line("picture", model=omni, input=[{"type": "text", "text": "A cat."}, image]),
        line("no-input", model=omni),
        line("mixed", model=omni, input=["text", {"type": "text", "text": "more"}]),
        line("audio", model=omni, input=[{"type": "audio", "audio": "..."}]),
        line("no-url", model=omni, input=[{"type": "image_url", "image_url": {}}]),
    ]
    batch = run_batch(client, lines, endpoint=MODERATIONS)
    assert batch.status == "completed"
    out, err = results(client, batch)
    assert set(out) == {"texts", "one", "picture"}
    bodies = {custom_id: o["response"]["body"] for custom_id, o in out.items()}
    if load_spec() is not None:
        for body in bodies.values():
            assert spec_errors("CreateModerationResponse", body) == []
    texts = ModerationCreateResponse.model_validate(bodies["texts"])
    assert texts.model == omni and texts.id.startswith("modr-")
    calm, violent = texts.results
    assert not calm.flagged and violent.flagged and violent.categories.violence
    assert violent.category_scores.violence > 0.5 > calm.category_scores.violence
    assert violent.category_applied_input_types.violence == ["text"]
    [one] = ModerationCreateResponse.model_validate(bodies["one"]).results
    assert not one.flagged
    # Text and image objects are one input: one result, images counted where they can be.
    [picture] = ModerationCreateResponse.model_validate(bodies["picture"]).results
    assert picture.category_applied_input_types.violence == ["text", "image"]
    assert picture.category_applied_input_types.harassment == ["text"]
    assert refusal(err["no-input"]) == (
        "missing_required_parameter",
        "input",
        "Missing required parameter: 'input'.",
    )
    assert refusal(err["mixed"])[:2] == ("invalid_type", "input")
    assert refusal(err["audio"]) == (
        "invalid_value",
        "input[0].type",
        "Invalid value: 'audio'. Supported values are: 'image_url' and 'text'.",
    )
    assert refusal(err["no-url"])[:2] == ("missing_required_parameter", "input[0].image_url.url")


def test_a_model_that_does_not_moderate_or_see_is_refused(client: OpenAI) -> None:
    chat_model = line("chat-model", model="gpt-4o-mini", input="Hello.")
    out, err = results(client, run_batch(client, [chat_model], endpoint=MODERATIONS))
    assert refusal(err["chat-model"])[:2] == ("model_not_supported", "model")
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    text_only = [
        line("image", model="text-moderation-latest", input=[image]),
        line("text", model="text-moderation-latest", input="Have a nice day."),
    ]
    out, err = results(client, run_batch(client, text_only, endpoint=MODERATIONS))
    assert set(out) == {"text"} and refusal(err["image"])[1] == "input.[0].type"
    [result] = ModerationCreateResponse.model_validate(out["text"]["response"]["body"]).results
    assert result.categories.illicit is None  # the text models have no illicit category
