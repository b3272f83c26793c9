"""Completions batches: OpenAI's Batch API still takes the legacy /v1/completions endpoint.

Every request goes through the official openai client; each answer must parse as the client's
`Completion` and, where the spec is at hand, match its `CreateCompletionResponse`.
"""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types import Completion

from tasks.tokens import count_tokens
from tests.localbatch._helpers import document, results, run_batch
from tests.localbatch._spec import load_spec, spec_errors

COMPLETIONS = "/v1/completions"
INSTRUCT = "gpt-3.5-turbo-instruct"


def line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": COMPLETIONS,
        "body": {"model": INSTRUCT, **body},
    }


def refusal(out_line: dict[str, Any]) -> tuple[str | None, str | None, str]:
    error = out_line["response"]["body"]["error"]
    assert out_line["response"]["status_code"] == 400 and out_line["error"] is None
    return error["code"], error["param"], error["message"]


def test_a_completions_batch_answers_like_openai(client: OpenAI) -> None:
    text = document(1)
    lines = [
        line("default-cap", prompt=f"Summarize: {text}"),
        line("room", prompt=f"Summarize: {text}", max_tokens=300, n=2, echo=True, logprobs=2),
        line("several", prompt=["One harbor report.", "Another budget note."], max_tokens=50),
        line("tokens", prompt=[[9906, 1917], [9906]], max_tokens=5),
        line("no-prompt"),
        line("empty", prompt=[]),
        line("mixed", prompt=["text", 5]),
        line("cap-text", prompt="Hi", max_tokens="20"),
        line("long", prompt="word " * 5000),
        line("bad-token", prompt=[9906, 99999999]),
    ]
    batch = run_batch(client, lines, endpoint=COMPLETIONS)
    assert batch.status == "completed"
    out, err = results(client, batch)
    assert set(out) == {"default-cap", "room", "several", "tokens"}
    bodies = {custom_id: o["response"]["body"] for custom_id, o in out.items()}
    if load_spec() is not None:
        for body in bodies.values():
            assert spec_errors("CreateCompletionResponse", body) == []
    capped = Completion.model_validate(bodies["default-cap"])
    assert capped.object == "text_completion" and capped.id.startswith("cmpl-")
    [choice] = capped.choices
    assert choice.finish_reason == "length"  # OpenAI's default max_tokens is 16
    assert capped.usage is not None and capped.usage.completion_tokens == 16
    assert capped.usage.prompt_tokens == count_tokens(f"Summarize: {text}", INSTRUCT)
    room = Completion.model_validate(bodies["room"])
    assert [c.index for c in room.choices] == [0, 1]
    first = room.choices[0]
    assert first.finish_reason == "stop" and first.text.startswith(f"Summarize: {text} ")
    assert first.logprobs is not None and first.logprobs.tokens
    assert first.logprobs.text_offset and first.logprobs.text_offset[0] == len(f"Summarize: {text}")
    assert all(len(top) <= 2 for top in first.logprobs.top_logprobs or [])
    several = Completion.model_validate(bodies["several"])
    assert len(several.choices) == 2 and several.choices[0].text != several.choices[1].text
    assert Completion.model_validate(bodies["tokens"]).usage.prompt_tokens == 3  # type: ignore[union-attr]
    assert refusal(err["no-prompt"]) == (
        "missing_required_parameter",
        "prompt",
        "Missing required parameter: 'prompt'.",
    )
    assert refusal(err["empty"])[:2] == ("empty_array", "prompt")
    assert refusal(err["mixed"])[:2] == ("invalid_type", "prompt")
    assert refusal(err["cap-text"]) == (
        "invalid_type",
        "max_tokens",
        "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
    )
    assert refusal(err["bad-token"])[2] == (
        "Invalid token in prompt: 99999999. Minimum value is 0, maximum value is 100276 "
        "(inclusive)."
    )
    code, _, message = refusal(err["long"])
    assert code == "context_length_exceeded"
    assert message.startswith("This model's maximum context length is 4096 tokens, however you ")


def test_chat_and_completion_models_keep_to_their_endpoints(client: OpenAI) -> None:
    chat_model = line("chat-model", prompt="Hello")
    chat_model["body"]["model"] = "gpt-4o-mini"
    _, err = results(client, run_batch(client, [chat_model], endpoint=COMPLETIONS))
    assert refusal(err["chat-model"])[:2] == ("model_not_supported", "model")
    instruct_on_chat = {
        "custom_id": "instruct",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": INSTRUCT, "messages": [{"role": "user", "content": "Hello"}]},
    }
    _, err = results(client, run_batch(client, [instruct_on_chat]))
    assert refusal(err["instruct"])[:2] == ("model_not_supported", "model")
