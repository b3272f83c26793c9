"""The simulator: schema-valid, per-document, deterministic answers with real token counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion
from openai.types.create_embedding_response import CreateEmbeddingResponse
from openai.types.responses import Response

from localbatch._jsongen import Document, SchemaFaker
from tasks.tokens import count_tokens
from tests.localbatch._helpers import (
    SUMMARY_SCHEMA,
    chat_line,
    document,
    message_content,
    read_lines,
    responses_line,
    results,
    run_batch,
)
from tests.localbatch._spec import spec_errors, spec_path
from tests.localbatch.conftest import MakeClient, MakeServer

needs_spec = pytest.mark.skipif(spec_path() is None, reason="OpenAI OpenAPI spec not found")


def _cookbook_prompt_tokens(messages: list[dict[str, str]], model: str) -> int:
    total = 3
    for message in messages:
        total += 3 + count_tokens(message["role"], model) + count_tokens(message["content"], model)
    return total


def test_chat_answers_are_schema_valid_and_differ_per_document(client: OpenAI) -> None:
    lines = [chat_line(f"d{i}", document(i), schema=SUMMARY_SCHEMA) for i in range(12)]
    out, err = results(client, run_batch(client, lines))
    assert err == {}
    values = {cid: json.loads(message_content(line)) for cid, line in out.items()}
    for value in values.values():
        jsonschema.validate(value, SUMMARY_SCHEMA)
    assert len({json.dumps(v, sort_keys=True) for v in values.values()}) == 12
    first = values["d1"]
    assert first["title"] == document(1).splitlines()[0]
    assert first["summary"].startswith(document(1).splitlines()[1][:40])
    assert set(first["keywords"]) <= set(document(1).lower().replace(".", " ").split())


def test_chat_bodies_look_like_real_completions(client: OpenAI) -> None:
    line = chat_line("a", document(3), schema=SUMMARY_SCHEMA)
    out, _ = results(client, run_batch(client, [line]))
    body = out["a"]["response"]["body"]
    completion = ChatCompletion.model_validate(body)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.system_fingerprint == "fp_overnight_simulated"
    choice = completion.choices[0]
    assert (choice.index, choice.finish_reason, choice.logprobs) == (0, "stop", None)
    assert choice.message.role == "assistant" and choice.message.refusal is None
    usage = completion.usage
    assert usage is not None
    schema_text = json.dumps(SUMMARY_SCHEMA, separators=(",", ":"))
    assert usage.prompt_tokens == _cookbook_prompt_tokens(
        line["body"]["messages"], "gpt-4o-mini"
    ) + count_tokens(schema_text, "gpt-4o-mini"), "messages and the schema are billed"
    assert usage.completion_tokens == count_tokens(choice.message.content or "", "gpt-4o-mini")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


@needs_spec
def test_output_bodies_match_the_official_spec(client: OpenAI) -> None:
    chat = results(client, run_batch(client, [chat_line("c", document(1), schema=SUMMARY_SCHEMA)]))
    assert spec_errors("CreateChatCompletionResponse", chat[0]["c"]["response"]["body"]) == []
    responses = results(
        client,
        run_batch(
            client,
            [responses_line("r", document(2), schema=SUMMARY_SCHEMA)],
            endpoint="/v1/responses",
        ),
    )
    body = responses[0]["r"]["response"]["body"]
    assert spec_errors("Response", body) == []
    Response.model_validate(body)
    embedding_line = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": ["one text", "two texts"]},
    }
    embeddings = results(client, run_batch(client, [embedding_line], endpoint="/v1/embeddings"))
    body = embeddings[0]["e"]["response"]["body"]
    assert spec_errors("CreateEmbeddingResponse", body) == []
    parsed = CreateEmbeddingResponse.model_validate(body)
    assert len(parsed.data) == 2 and len(parsed.data[0].embedding) == 1536


def test_responses_bodies(client: OpenAI) -> None:
    lines = [responses_line(f"r{i}", document(i), schema=SUMMARY_SCHEMA) for i in range(4)]
    out, err = results(client, run_batch(client, lines, endpoint="/v1/responses"))
    assert err == {}
    texts = set()
    for line in out.values():
        response = Response.model_validate(line["response"]["body"])
        assert response.object == "response" and response.status == "completed"
        assert response.output_text
        jsonschema.validate(json.loads(response.output_text), SUMMARY_SCHEMA)
        texts.add(response.output_text)
        assert response.usage is not None
        assert response.usage.output_tokens == count_tokens(response.output_text, "gpt-4o-mini")
        assert response.metadata == {"overnight_executor": "simulate"}
    assert len(texts) == 4


def test_plain_text_without_a_schema(client: OpenAI) -> None:
    out, _ = results(client, run_batch(client, [chat_line(f"p{i}", document(i)) for i in range(3)]))
    contents = [message_content(out[f"p{i}"]) for i in range(3)]
    assert len(set(contents)) == 3
    assert contents[0].startswith(document(0).splitlines()[1][:30])
    with pytest.raises(json.JSONDecodeError):
        json.loads(contents[0])


def test_a_short_prompt_gets_a_non_empty_answer(client: OpenAI) -> None:
    # Regression: "hi" (no content word to rank) got an empty answer of 0 tokens.
    lines = [chat_line(f"q{i}", text) for i, text in enumerate(["hi", "What is 2+2?"])]
    out, _ = results(client, run_batch(client, lines))
    for key in ("q0", "q1"):
        body = out[key]["response"]["body"]
        assert message_content(out[key]) and body["usage"]["completion_tokens"] > 0


def test_same_seed_same_outputs(
    make_server: MakeServer, make_client: MakeClient, tmp_path: Path
) -> None:
    lines = [chat_line(f"s{i}", document(i), schema=SUMMARY_SCHEMA) for i in range(6)]
    lines += [chat_line("t", document(9))]

    def answers(seed: int, name: str) -> dict[str, Any]:
        server = make_server(data_dir=tmp_path / name, seed=seed)
        client = make_client(server)
        out, _ = results(client, run_batch(client, lines))
        body_of = {cid: line["response"]["body"] for cid, line in out.items()}
        return {cid: (b["choices"], b["usage"]) for cid, b in body_of.items()}

    first, again, other = answers(0, "a"), answers(0, "b"), answers(1, "c")
    assert first == again
    assert first != other  # seeds change hashed choices (enums, booleans, nulls)


def test_max_tokens_truncates_with_finish_reason_length(client: OpenAI) -> None:
    lines = [
        chat_line("chat", document(1), schema=SUMMARY_SCHEMA, max_completion_tokens=20),
        chat_line("legacy", document(2), max_tokens=5),
    ]
    out, _ = results(client, run_batch(client, lines))
    for cid, cap in (("chat", 20), ("legacy", 5)):
        body = out[cid]["response"]["body"]
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] == cap
    responses = results(
        client,
        run_batch(
            client,
            [responses_line("r", document(3), schema=SUMMARY_SCHEMA, max_output_tokens=16)],
            endpoint="/v1/responses",
        ),
    )[0]
    body = responses["r"]["response"]["body"]
    assert body["status"] == "incomplete" and body["usage"]["output_tokens"] == 16


def test_reasoning_effort_adds_reasoning_tokens(client: OpenAI) -> None:
    out, _ = results(
        client,
        run_batch(client, [chat_line("r", document(1), model="o4-mini", reasoning_effort="low")]),
    )
    usage = out["r"]["response"]["body"]["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 64 <= reasoning < 128
    content = message_content(out["r"])
    assert usage["completion_tokens"] == reasoning + count_tokens(content, "o4-mini")


def test_cached_tokens_for_a_shared_long_prefix(client: OpenAI) -> None:
    preamble = " ".join(f"Rule {i}: be precise about item {i * 7}." for i in range(220))
    assert count_tokens(preamble, "gpt-4o-mini") > 1300

    def line(cid: str, text: str, system: str = preamble) -> dict[str, Any]:
        item = chat_line(cid, text)
        item["body"]["messages"][0]["content"] = system
        return item

    out, _ = results(
        client,
        run_batch(
            client,
            [
                line("first", document(1)),
                line("second", document(2)),
                line("third", document(3)),
                line("other-prefix", document(4), system="Different. " + preamble),
                line("short", "tiny", system="Be brief."),
            ],
        ),
    )

    def cached(cid: str) -> tuple[int, int]:
        usage = out[cid]["response"]["body"]["usage"]
        return usage["prompt_tokens_details"]["cached_tokens"], usage["prompt_tokens"]

    assert cached("first")[0] == 0
    second, prompt = cached("second")
    assert second >= 1024 and second % 128 == 0 and second <= prompt
    assert cached("third")[0] == second
    assert cached("other-prefix")[0] == 0
    assert cached("short")[0] == 0
    batch = client.batches.list().data[0]
    assert batch.usage is not None
    assert batch.usage.input_tokens_details.cached_tokens == 2 * second


def test_request_errors_in_a_body_become_400_lines(client: OpenAI) -> None:
    bad = {
        "custom_id": "bad",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini"},
    }
    batch = run_batch(client, [bad, chat_line("good", document(1))])
    out, err = results(client, batch)
    assert list(out) == ["good"]
    assert err["bad"]["response"]["status_code"] == 400
    assert err["bad"]["response"]["body"]["error"] == {
        "message": "Missing required parameter: 'messages'.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "missing_required_parameter",
    }
    assert batch.request_counts is not None and batch.request_counts.failed == 1


def test_output_files_list_every_line_once(client: OpenAI) -> None:
    batch = run_batch(client, [chat_line(f"x{i}", document(i)) for i in range(150)])
    out = read_lines(client, batch.output_file_id)
    assert len(out) == 150 and len({line["custom_id"] for line in out}) == 150
    assert len({line["id"] for line in out}) == 150


# -- the schema faker on its own -------------------------------------------------------------

TRICKY_SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "issue_date": {"type": "string", "format": "date"},
            "total_amount": {"type": "number", "exclusiveMinimum": 0},
            "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
            "vendor_email": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
            "line_items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string", "maxLength": 40},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 99},
                        "unit_price": {"type": "number", "minimum": 0, "multipleOf": 0.5},
                    },
                    "required": ["description", "quantity", "unit_price"],
                    "additionalProperties": False,
                },
            },
        },
        "required": [
            "invoice_number",
            "issue_date",
            "total_amount",
            "currency",
            "vendor_email",
            "line_items",
        ],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "node": {"$ref": "#/$defs/Node"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 8, "maxItems": 8},
            "kind": {"const": "tree"},
            "maybe": {"type": ["integer", "null"], "minimum": -5, "maximum": -1},
            "priority": {"type": "integer", "minimum": 10, "exclusiveMaximum": 12},
            "headline": {"type": "string", "minLength": 30, "maxLength": 35},
        },
        "required": ["node", "tags", "kind", "maybe", "priority", "headline"],
        "additionalProperties": False,
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["label", "children"],
                "additionalProperties": False,
            }
        },
    },
]


@pytest.mark.parametrize("schema", TRICKY_SCHEMAS, ids=["invoice", "recursive"])
def test_faker_output_is_valid_for_tricky_schemas(schema: dict[str, Any]) -> None:
    faker = SchemaFaker(schema)
    outputs = []
    for i in range(15):
        value = faker.generate(
            Document(document(i) + " Contact: billing@acme.test on 2024-03-05.", i)
        )
        jsonschema.validate(value, schema)
        outputs.append(json.dumps(value, sort_keys=True))
    assert len(set(outputs)) > 1


def test_faker_is_a_pure_function_of_text_and_seed() -> None:
    faker = SchemaFaker(SUMMARY_SCHEMA)
    assert faker.generate(Document(document(4), 0)) == faker.generate(Document(document(4), 0))


def test_hostile_request_bodies_fail_alone_and_never_the_batch(client: OpenAI) -> None:
    impossible = {
        "type": "object",
        "properties": {"self": {"$ref": "#"}},
        "required": ["self"],
        "additionalProperties": False,
    }
    huge = {
        "type": "object",
        "properties": {
            "many": {"type": "array", "items": {"type": "integer"}, "minItems": 10**9},
            "long": {"type": "string", "minLength": 10**9},
            "odd": {"type": "mystery"},
            "bad_enum": {"enum": []},
        },
        "required": ["many", "long", "odd", "bad_enum"],
    }
    lines = [
        chat_line("impossible", document(1), schema=impossible),
        chat_line("huge", document(2), schema=huge),
        chat_line("many-choices", document(3), n=1000, max_tokens="lots"),
        {
            "custom_id": "messages-not-a-list",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": "hello"},
        },
        {
            "custom_id": "odd-parts",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": 7, "content": [1, {"type": "text"}, {"type": "image_url"}]}],
            },
        },
        chat_line("fine", document(4), schema=SUMMARY_SCHEMA),
    ]
    batch = run_batch(client, lines)
    assert batch.status == "completed"
    out, err = results(client, batch)
    assert set(out) | set(err) == {line["custom_id"] for line in lines}
    assert "fine" in out
    # n is at most 128 in OpenAI's spec: refused per line, as OpenAI does, not clamped.
    many = err["many-choices"]["response"]
    assert (many["status_code"], many["body"]["error"]["code"]) == (400, "integer_above_max_value")
    assert err["messages-not-a-list"]["response"]["status_code"] == 400
    assert client.batches.retrieve(batch.id).status == "completed"  # still answering


def test_embeddings_are_never_zero_vectors(client: OpenAI) -> None:
    # Regression: a word whose hashed features cancelled out gave an all-zero vector, whose
    # cosine similarity with anything is NaN (one in 16 single words at 8 dimensions).
    words = [f"w{i}" for i in range(200)]
    line = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": words, "dimensions": 8},
    }
    out, err = results(client, run_batch(client, [line], endpoint="/v1/embeddings"))
    assert err == {}
    vectors = [d.embedding for d in CreateEmbeddingResponse.model_validate(
        out["e"]["response"]["body"]).data]  # fmt: skip
    assert len(vectors) == 200
    for vector in vectors:
        assert abs(sum(v * v for v in vector) - 1.0) < 1e-4


def test_embeddings_look_like_a_models(client: OpenAI) -> None:
    """Dense vectors, texts sharing words closer than unrelated ones, unrelated ones mildly
    similar (as real embeddings are), the same text the same vector. They were 1 to 6 non-zero
    values out of 1,536, and unrelated texts exactly orthogonal."""
    texts = [
        "The harbor board approved the budget for next year",
        "The harbor board rejected the budget",
        "Quantum chromodynamics describes how gluons bind quarks",
        "The harbor board approved the budget for next year",
    ]
    line = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": texts},
    }
    out, err = results(client, run_batch(client, [line], endpoint="/v1/embeddings"))
    assert err == {}
    vectors = [d.embedding for d in CreateEmbeddingResponse.model_validate(
        out["e"]["response"]["body"]).data]  # fmt: skip

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    for vector in vectors:
        assert len(vector) == 1536 and abs(cosine(vector, vector) - 1.0) < 1e-4
        assert sum(1 for v in vector if v == 0.0) < 15  # dense
    related, unrelated = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
    assert related > unrelated + 0.3
    assert 0.05 < unrelated < 0.4
    assert vectors[0] == vectors[3]


def test_a_responses_line_with_a_stored_prompt_and_no_input_is_answered(client: OpenAI) -> None:
    # Regression: `input` is optional when a stored `prompt` stands in for it; such a line was
    # refused with "Missing required parameter: 'input'."
    line = {
        "custom_id": "stored",
        "method": "POST",
        "url": "/v1/responses",
        "body": {
            "model": "gpt-4.1-mini",
            "prompt": {
                "id": "pmpt_123",
                "version": "2",
                "variables": {"customer": "Acme", "issue": "The invoice total is wrong."},
            },
        },
    }
    out, err = results(client, run_batch(client, [line], endpoint="/v1/responses"))
    assert err == {}
    response = Response.model_validate(out["stored"]["response"]["body"])
    assert response.status == "completed" and response.output_text


WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city named in the text."},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}


def test_a_forced_function_call_is_answered_with_a_tool_call(client: OpenAI) -> None:
    # Regression: forced tool calls were answered with text, so code reading
    # `message.tool_calls[0]` (forced function calling for extraction) crashed.
    tools = [
        {"type": "function", "function": {"name": "noop", "parameters": {}}},
        {"type": "function", "function": {"name": "forecast", "parameters": WEATHER}},
    ]
    named = {"type": "function", "function": {"name": "forecast"}}
    lines = [
        chat_line("named", document(1), tools=tools, tool_choice=named),
        chat_line("required", document(2), tools=tools, tool_choice="required"),
        chat_line("auto", document(3), tools=tools),
    ]
    out, err = results(client, run_batch(client, lines))
    assert err == {}
    for key, name, finish in (("named", "forecast", "stop"), ("required", "noop", "tool_calls")):
        body = out[key]["response"]["body"]
        assert spec_errors("CreateChatCompletionResponse", body) == []
        choice = ChatCompletion.model_validate(body).choices[0]
        assert choice.finish_reason == finish and choice.message.content is None
        call = (choice.message.tool_calls or [])[0]
        assert call.function.name == name and call.id.startswith("call_")  # type: ignore[union-attr]
        arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
        jsonschema.validate(arguments, WEATHER if name == "forecast" else {"type": "object"})
    assert ChatCompletion.model_validate(out["auto"]["response"]["body"]).choices[0].message.content


def test_a_forced_function_call_in_the_responses_api(client: OpenAI) -> None:
    line = responses_line(
        "named",
        document(1),
        tools=[{"type": "function", "name": "forecast", "parameters": WEATHER, "strict": True}],
        tool_choice={"type": "function", "name": "forecast"},
    )
    out, err = results(client, run_batch(client, [line], endpoint="/v1/responses"))
    assert err == {}
    body = out["named"]["response"]["body"]
    assert spec_errors("Response", body) == []
    [call] = Response.model_validate(body).output
    assert call.type == "function_call" and call.name == "forecast"
    jsonschema.validate(json.loads(call.arguments), WEATHER)


def test_logprobs_are_given_when_asked_for(client: OpenAI) -> None:
    # Regression: `logprobs: true` gave `logprobs: null`, so code reading
    # `choice.logprobs.content` (a classifier's confidence) crashed.
    lines = [
        chat_line(
            "asked", "Is this invoice paid? Answer yes or no.", logprobs=True, top_logprobs=3
        ),
        chat_line("plain", "Is this invoice paid? Answer yes or no."),
    ]
    out, err = results(client, run_batch(client, lines))
    assert err == {}
    body = out["asked"]["response"]["body"]
    assert spec_errors("CreateChatCompletionResponse", body) == []
    choice = ChatCompletion.model_validate(body).choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert len(tokens) == body["usage"]["completion_tokens"]
    for token in tokens:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        assert token.top_logprobs[0].token == token.token
        assert all(a.logprob < token.logprob for a in token.top_logprobs[1:])
    assert out["plain"]["response"]["body"]["choices"][0]["logprobs"] is None
    responses = responses_line(
        "r", "Is this invoice paid?", include=["message.output_text.logprobs"], top_logprobs=2
    )
    answered, _ = results(client, run_batch(client, [responses], endpoint="/v1/responses"))
    [part] = Response.model_validate(answered["r"]["response"]["body"]).output[0].content
    assert part.logprobs and all(len(t.top_logprobs) == 2 for t in part.logprobs)


def test_an_agent_loop_forcing_tool_calls_reaches_its_final_tool(client: OpenAI) -> None:
    # Regression: `tool_choice: "required"` always called the first tool listed, so an agent
    # that answers through a final tool listed after its working tools (pydantic-ai's
    # `final_result`) called the working tool forever and never ended.
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
        {"type": "function", "function": {"name": "final_result", "parameters": WEATHER}},
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris this week?"}]
    names = []
    for turn in range(3):
        line = {
            "custom_id": f"turn-{turn}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": messages,
                "tools": tools,
                "tool_choice": "required",
            },
        }
        out, err = results(client, run_batch(client, [line]))
        assert err == {}
        message = ChatCompletion.model_validate(out[f"turn-{turn}"]["response"]["body"])
        [call] = message.choices[0].message.tool_calls or []
        names.append(call.function.name)  # type: ignore[union-attr]
        messages += [
            message.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ]
    # the working tool first, then the final tool, which stays the answer once all were called
    assert names == ["get_weather", "final_result", "final_result"]

    items: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris this week?"}]
    called = []
    for turn in range(2):
        response_line = {
            "custom_id": f"r-{turn}",
            "method": "POST",
            "url": "/v1/responses",
            "body": {
                "model": "gpt-4o-mini",
                "input": items,
                "tools": [
                    {"type": "function", "name": "get_weather", "parameters": WEATHER},
                    {"type": "function", "name": "final_result", "parameters": WEATHER},
                ],
                "tool_choice": "required",
            },
        }
        out, err = results(client, run_batch(client, [response_line], endpoint="/v1/responses"))
        assert err == {}
        [item] = Response.model_validate(out[f"r-{turn}"]["response"]["body"]).output
        assert item.type == "function_call"
        called.append(item.name)
        items += [
            {
                "type": "function_call",
                "call_id": item.call_id,
                "name": item.name,
                "arguments": item.arguments,
            },
            {"type": "function_call_output", "call_id": item.call_id, "output": "sunny"},
        ]
    assert called == ["get_weather", "final_result"]
