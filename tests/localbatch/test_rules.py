"""The local API refuses, line by line and in OpenAI's words, what OpenAI refuses."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import OpenAI

from tasks.tokens import count_tokens
from tests.localbatch._helpers import (
    SUMMARY_SCHEMA,
    chat_line,
    document,
    jsonl,
    read_lines,
    responses_line,
    results,
    upload,
    wait_for,
)
from tests.localbatch.conftest import MakeClient, MakeServer

SYSTEM = '{"role": "system", "content": "Summarize the document as JSON."}'


def run_file(client: OpenAI, text: str, endpoint: str = "/v1/chat/completions") -> Any:
    """Upload a hand-written input file, create a batch and wait until it ends."""
    file = upload(client, text.encode())
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
    )
    return wait_for(client, batch.id, timeout=60)


def assert_refused(
    line: dict[str, Any], *, status: int, code: str | None, param: str | None, message: str
) -> None:
    """The shape OpenAI writes for a request it refused: an HTTP-level line, error null."""
    assert line["error"] is None
    assert line["response"]["status_code"] == status
    error = line["response"]["body"]["error"]
    assert error == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


REASONING_FILE = "\n".join(
    [
        '{"custom_id": "warm", "method": "POST", "url": "/v1/chat/completions", "body": '
        '{"model": "gpt-5-mini", "temperature": 0.2, "max_completion_tokens": 500, '
        '"messages": [' + SYSTEM + ', {"role": "user", "content": "Quarterly results."}]}}',
        '{"custom_id": "legacy-cap", "method": "POST", "url": "/v1/chat/completions", "body": '
        '{"model": "gpt-5-mini", "max_tokens": 500, '
        '"messages": [' + SYSTEM + ', {"role": "user", "content": "Quarterly results."}]}}',
        '{"custom_id": "nucleus", "method": "POST", "url": "/v1/chat/completions", "body": '
        '{"model": "gpt-5-mini", "top_p": 0.5, '
        '"messages": [' + SYSTEM + ', {"role": "user", "content": "Quarterly results."}]}}',
        '{"custom_id": "default-temperature", "method": "POST", "url": "/v1/chat/completions", '
        '"body": {"model": "gpt-5-mini", "temperature": 1, "reasoning_effort": "minimal", '
        '"messages": [' + SYSTEM + ', {"role": "user", "content": "Quarterly results."}]}}',
    ]
)


def test_reasoning_model_parameters_are_refused_per_line(client: OpenAI) -> None:
    batch = run_file(client, REASONING_FILE + "\n")
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 3)
    out, err = results(client, batch)
    assert set(out) == {"default-temperature"}
    assert_refused(
        err["warm"],
        status=400,
        code="unsupported_value",
        param="temperature",
        message="Unsupported value: 'temperature' does not support 0.2 with this model. "
        "Only the default (1) value is supported.",
    )
    assert_refused(
        err["legacy-cap"],
        status=400,
        code="unsupported_parameter",
        param="max_tokens",
        message="Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
    )
    assert_refused(
        err["nucleus"],
        status=400,
        code="unsupported_parameter",
        param="top_p",
        message="Unsupported parameter: 'top_p' is not supported with this model.",
    )


def test_effort_schema_and_context_problems_are_refused_per_line(client: OpenAI) -> None:
    with_min_length = {
        **SUMMARY_SCHEMA,
        "properties": {**SUMMARY_SCHEMA["properties"], "title": {"type": "string", "minLength": 5}},
    }
    huge = "word " * 541_000
    lines = [
        chat_line("effort", document(1), reasoning_effort="low"),
        chat_line("min-length", document(2), schema=with_min_length),
        chat_line("too-long", huge, max_completion_tokens=800),
        chat_line("cap", document(3), max_completion_tokens=50_000),
        chat_line("fine", document(4), schema=SUMMARY_SCHEMA, temperature=0.2),
    ]
    batch = run_file(client, jsonl(lines).decode())
    out, err = results(client, batch)
    assert set(out) == {"fine"} and set(err) == {"effort", "min-length", "too-long", "cap"}
    assert_refused(
        err["effort"],
        status=400,
        code="unsupported_parameter",
        param="reasoning_effort",
        message="Unsupported parameter: 'reasoning_effort' is not supported with this model.",
    )
    assert_refused(
        err["min-length"],
        status=400,
        code="invalid_json_schema",
        param="response_format",
        message="Invalid schema for response_format 'summary_v1': In context=('properties', "
        "'title'), 'minLength' is not permitted.",
    )
    too_long = err["too-long"]["response"]["body"]["error"]
    assert (too_long["code"], too_long["param"]) == ("context_length_exceeded", "messages")
    assert too_long["message"].startswith(
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 541"
    )
    assert too_long["message"].endswith(" tokens. Please reduce the length of the messages.")
    assert_refused(
        err["cap"],
        status=400,
        code="invalid_value",
        param="max_completion_tokens",
        message="max_completion_tokens is too large: 50000. This model supports at most 16384 "
        "completion tokens, whereas you provided 50000.",
    )
    # Refused lines are not billed: the batch's usage is the one line that ran.
    assert batch.usage is not None
    assert batch.usage.input_tokens == out["fine"]["response"]["body"]["usage"]["prompt_tokens"]


def test_schema_refusals_use_openais_words(client: OpenAI) -> None:
    # The wording users quote from OpenAI's 400 answers, so that code matching on it (or a
    # person searching for it) meets the same text here.
    optional = {
        **SUMMARY_SCHEMA,
        "required": [k for k in SUMMARY_SCHEMA["required"] if k != "keywords"],
    }
    open_object = {**SUMMARY_SCHEMA, "additionalProperties": True}
    root_array = {"type": "array", "items": SUMMARY_SCHEMA}
    lines = [
        chat_line("optional", document(1), schema=optional),
        chat_line("open", document(2), schema=open_object),
        chat_line("array", document(3), schema=root_array),
    ]
    _, err = results(client, run_file(client, jsonl(lines).decode()))
    prefix = "Invalid schema for response_format 'summary_v1': "
    messages = {key: line["response"]["body"]["error"]["message"] for key, line in err.items()}
    assert messages == {
        "optional": prefix + "In context=(), 'required' is required to be supplied and to be an "
        "array including every key in properties. Missing 'keywords'.",
        "open": prefix + "In context=(), 'additionalProperties' is required to be supplied and "
        "to be false.",
        "array": prefix + "schema must be a JSON Schema of 'type: \"object\"', got 'type: "
        '"array"\'.',
    }


def test_a_described_reference_is_refused_as_openai_refuses_it(client: OpenAI) -> None:
    # Pydantic's schema for `address: Address = Field(description=...)` puts the description
    # beside the $ref; OpenAI refuses the line, so the local API must not answer it.
    address = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    person: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/Address", "description": "Where they live"},
        },
        "required": ["name", "address"],
        "additionalProperties": False,
        "$defs": {"Address": address},
    }
    bare = {
        **person,
        "properties": {**person["properties"], "address": {"$ref": "#/$defs/Address"}},
    }
    lines = [
        chat_line("described", document(1), schema=person),
        chat_line("bare", document(2), schema=bare),
    ]
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"bare"} and set(err) == {"described"}
    assert_refused(
        err["described"],
        status=400,
        code="invalid_json_schema",
        param="response_format",
        message="Invalid schema for response_format 'summary_v1': context=('properties', "
        "'address'), $ref cannot have keywords {'description'}.",
    )


def test_responses_lines_are_checked_too(client: OpenAI) -> None:
    lines = [
        responses_line("effort", document(1), model="o4-mini", reasoning={"effort": "minimal"}),
        responses_line("sampled", document(2), model="o4-mini", temperature=0.7),
        responses_line("fine", document(3), model="o4-mini", reasoning={"effort": "low"}),
    ]
    batch = run_file(client, jsonl(lines).decode(), endpoint="/v1/responses")
    out, err = results(client, batch)
    assert set(out) == {"fine"}
    assert_refused(
        err["effort"],
        status=400,
        code="unsupported_value",
        param="reasoning.effort",
        message="Unsupported value: 'reasoning.effort' does not support 'minimal' with this "
        "model. Supported values are: 'low', 'medium', and 'high'.",
    )
    assert_refused(
        err["sampled"],
        status=400,
        code="unsupported_parameter",
        param="temperature",
        message="Unsupported parameter: 'temperature' is not supported with this model.",
    )


def test_an_unknown_model_is_a_404_per_line(client: OpenAI) -> None:
    batch = run_file(client, jsonl([chat_line("a", document(1), model="gpt-9-ultra")]).decode())
    [line] = read_lines(client, batch.error_file_id)
    assert_refused(
        line,
        status=404,
        code="model_not_found",
        param=None,
        message="The model `gpt-9-ultra` does not exist or you do not have access to it.",
    )
    listed = {m.id for m in client.models.list()}
    assert {"gpt-5-mini", "o4-mini", "gpt-4.1-mini"} <= listed and "gpt-9-ultra" not in listed
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-9-ultra")
    assert caught.value.code == "model_not_found"
    assert client.models.retrieve("gpt-4o-mini-2024-07-18").id == "gpt-4o-mini-2024-07-18"


def test_the_specs_own_batch_example_runs(client: OpenAI) -> None:
    """The OpenAPI spec's batch input example (gpt-3.5-turbo-0125), and ada embeddings, which
    other clients' examples still use."""
    example = {
        "custom_id": "request-1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-3.5-turbo-0125",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is 2+2?"},
            ],
            "max_tokens": 1000,
        },
    }
    strict = chat_line("strict", document(1), model="gpt-3.5-turbo-0125", schema=SUMMARY_SCHEMA)
    out, err = results(client, run_file(client, jsonl([example, strict]).decode()))
    assert set(out) == {"request-1"} and set(err) == {"strict"}  # no Structured Outputs on 3.5
    assert out["request-1"]["response"]["body"]["model"] == "gpt-3.5-turbo-0125"
    ada = {"custom_id": "e", "method": "POST", "url": "/v1/embeddings",
           "body": {"model": "text-embedding-ada-002", "input": "The harbor budget."}}  # fmt: skip
    out, err = results(client, run_file(client, jsonl([ada]).decode(), "/v1/embeddings"))
    assert set(out) == {"e"}


def test_older_models_that_clients_name_run_with_their_own_rules(client: OpenAI) -> None:
    """gpt-4-turbo, gpt-4, o1 and o3-mini were model_not_found, so clients' examples naming
    them failed on every line; each now runs, and refuses what that model refuses."""
    image = {"role": "user", "content": [
        {"type": "text", "text": "What is shown?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}  # fmt: skip
    cases = {
        # a model, and a line it refuses: Structured Outputs, vision, sampling, max_tokens
        "gpt-4-turbo-2024-04-09": chat_line("no", document(2), schema=SUMMARY_SCHEMA),
        "gpt-4-0613": {**chat_line("no", ""), "body": {"messages": [image]}},
        "o1": chat_line("no", document(2), temperature=0.2),
        "o3-mini": chat_line("no", document(2), max_tokens=300),
    }
    for model, refused in cases.items():
        ok = chat_line("ok", document(1), model=model, max_completion_tokens=400)
        refused["body"]["model"] = model
        out, err = results(client, run_file(client, jsonl([ok, refused]).decode()))
        assert set(out) == {"ok"} and set(err) == {"no"}, model
        assert out["ok"]["response"]["body"]["model"] == model
        assert err["no"]["response"]["status_code"] == 400, model


def test_gpt_5_1_and_5_2_run_with_their_reasoning_efforts(client: OpenAI) -> None:
    """gpt-5.1 and gpt-5.2 (and their dated snapshots) were model_not_found on every line;
    each now runs, with the efforts it takes ("none" on both, xhigh on 5.2 only)."""
    efforts = {"gpt-5.1-2025-11-13": ("none", "xhigh"), "gpt-5.2": ("xhigh", "max")}
    for model, (taken, refused) in efforts.items():
        lines = [
            chat_line("ok", document(1), model=model, reasoning_effort=taken),
            chat_line("no", document(2), model=model, reasoning_effort=refused),
        ]
        out, err = results(client, run_file(client, jsonl(lines).decode()))
        assert set(out) == {"ok"} and set(err) == {"no"}, model
        error = err["no"]["response"]["body"]["error"]
        assert error["param"] == "reasoning_effort", model
        assert f"does not support '{refused}' with this model" in error["message"], model
    batch = run_file(client, jsonl([chat_line("a", document(1), model="gpt-5.4-mini")]).decode())
    [line] = read_lines(client, batch.error_file_id)
    assert line["response"]["body"]["error"]["code"] == "model_not_found"


def test_lenient_runs_every_line_as_given(make_server: MakeServer, make_client: MakeClient) -> None:
    client = make_client(make_server(lenient=True))
    batch = run_file(client, REASONING_FILE + "\n")
    out, err = results(client, batch)
    assert len(out) == 4 and not err
    unknown = run_file(client, jsonl([chat_line("a", document(1), model="local-llama")]).decode())
    assert unknown.request_counts is not None and unknown.request_counts.completed == 1
    extras = [
        chat_line("typo", document(1), foo_bar=1),
        chat_line("streamed", document(2), stream=True),
    ]
    out, err = results(client, run_file(client, jsonl(extras).decode()))
    assert set(out) == {"typo", "streamed"} and not err
    short = [responses_line("short", document(3), max_output_tokens=8)]
    out, err = results(client, run_file(client, jsonl(short).decode(), "/v1/responses"))
    assert set(out) == {"short"} and not err


def test_a_body_field_outside_the_spec_is_refused_per_line(client: OpenAI) -> None:
    chat = run_file(
        client,
        jsonl(
            [
                chat_line("typo", document(1), foo_bar=1),
                chat_line("streamed", document(2), stream=True),
                chat_line("not-streamed", document(3), stream=False, seed=7, store=False),
            ]
        ).decode(),
    )
    out, err = results(client, chat)
    assert set(out) == {"not-streamed"}
    assert_refused(
        err["typo"],
        status=400,
        code=None,
        param=None,
        message="Unrecognized request argument supplied: foo_bar",
    )
    assert_refused(
        err["streamed"],
        status=400,
        code="invalid_value",
        param="stream",
        message="Invalid value for 'stream': true. A batch request cannot be streamed; remove "
        "'stream' or set it to false.",
    )
    responses = run_file(
        client,
        jsonl(
            [
                responses_line("typo", document(1), foo_bar=1),
                responses_line("chat-shaped", document(2), messages=[]),
                responses_line("fine", document(3), truncation="auto", store=False),
            ]
        ).decode(),
        endpoint="/v1/responses",
    )
    out, err = results(client, responses)
    assert set(out) == {"fine"}
    assert_refused(
        err["typo"],
        status=400,
        code="unknown_parameter",
        param="foo_bar",
        message="Unknown parameter: 'foo_bar'.",
    )
    assert_refused(
        err["chat-shaped"],
        status=400,
        code="unknown_parameter",
        param="messages",
        message="Unknown parameter: 'messages'.",
    )
    embedding = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": "text", "messages": []},
    }
    [line] = read_lines(
        client, run_file(client, jsonl([embedding]).decode(), "/v1/embeddings").error_file_id
    )
    assert line["response"]["body"]["error"]["message"] == (
        "Unrecognized request argument supplied: messages"
    )


def test_a_responses_output_cap_under_16_is_refused_per_line(client: OpenAI) -> None:
    lines = [
        responses_line("15", document(1), max_output_tokens=15),
        responses_line("16", document(2), max_output_tokens=16),
    ]
    out, err = results(client, run_file(client, jsonl(lines).decode(), "/v1/responses"))
    assert set(out) == {"16"}
    assert_refused(
        err["15"],
        status=400,
        code="integer_below_min_value",
        param="max_output_tokens",
        message="Invalid 'max_output_tokens': integer below minimum value. Expected a value "
        ">= 16, but got 15 instead.",
    )


def test_a_missing_messages_names_the_param(client: OpenAI) -> None:
    line = chat_line("none", document(1))
    del line["body"]["messages"]
    [refused] = read_lines(client, run_file(client, jsonl([line]).decode()).error_file_id)
    assert_refused(
        refused,
        status=400,
        code="missing_required_parameter",
        param="messages",
        message="Missing required parameter: 'messages'.",
    )


def _with_messages(custom_id: str, *messages: Any) -> dict[str, Any]:
    line = chat_line(custom_id, document(1))
    line["body"]["messages"] = list(messages)
    return line


USER = {"role": "user", "content": "What is the weather in Oslo? Answer in JSON."}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
}
ASKS = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWER = {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 4}'}


def test_messages_openai_refuses_are_refused_per_line(client: OpenAI) -> None:
    lines = [
        _with_messages("unknown-role", {"role": "human", "content": "Hi"}),
        _with_messages("no-role", {"content": "Hi"}),
        _with_messages("no-content", {"role": "user"}),
        _with_messages("not-an-object", "Hi"),
        _with_messages("stray-tool", USER, ANSWER),
        _with_messages("unanswered", USER, ASKS, {"role": "user", "content": "And Bergen?"}),
        _with_messages("left-open", USER, ASKS),
        _with_messages(
            "answered", {"role": "developer", "content": "JSON only."}, USER, ASKS, ANSWER
        ),
        chat_line("stream-options", document(2), stream_options={"include_usage": True}),
    ]
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"answered"}
    assert_refused(
        err["unknown-role"],
        status=400,
        code="invalid_value",
        param="messages[0].role",
        message="Invalid value: 'human'. Supported values are: 'system', 'assistant', 'user', "
        "'function', 'tool', and 'developer'.",
    )
    assert_refused(
        err["no-role"],
        status=400,
        code="missing_required_parameter",
        param="messages[0].role",
        message="Missing required parameter: 'messages[0].role'.",
    )
    assert_refused(
        err["no-content"],
        status=400,
        code="missing_required_parameter",
        param="messages[0].content",
        message="Missing required parameter: 'messages[0].content'.",
    )
    assert_refused(
        err["not-an-object"],
        status=400,
        code="invalid_type",
        param="messages[0]",
        message="Invalid type for 'messages[0]': expected an object, but got a string instead.",
    )
    assert_refused(
        err["stray-tool"],
        status=400,
        code=None,
        param="messages.[1].role",
        message="Invalid parameter: messages with role 'tool' must be a response to a "
        "preceeding message with 'tool_calls'.",
    )
    for custom_id in ("unanswered", "left-open"):
        assert_refused(
            err[custom_id],
            status=400,
            code=None,
            param="messages.[1].role",
            message="An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            "response messages: call_1",
        )
    assert_refused(
        err["stream-options"],
        status=400,
        code=None,
        param="stream_options",
        message="The 'stream_options' parameter is only allowed when 'stream' is enabled.",
    )


def typed(param: str, wanted: str, got: str) -> tuple[str, str, str]:
    """(code, param, message) of OpenAI's answer to a value of the wrong type."""
    return ("invalid_type", param,
            f"Invalid type for '{param}': expected {wanted}, but got {got} instead.")  # fmt: skip


def test_values_of_another_type_than_the_specs_are_refused_per_line(client: OpenAI) -> None:
    """A string where the spec takes an integer (a cap read from a config file as text), a
    boolean written as "true", an output cap of 0: all ran before; OpenAI refuses each."""
    lines = [
        chat_line("cap-text", document(1), max_tokens="300"),
        chat_line("cap-decimal", document(1), max_completion_tokens=300.5),
        chat_line("cap-zero", document(1), max_tokens=0),
        chat_line("cap-negative", document(1), max_completion_tokens=-1),
        chat_line("seed-text", document(1), seed="7"),
        chat_line("logprobs-text", document(1), logprobs="true"),
        chat_line("store-number", document(1), store=1),
        chat_line("user-number", document(1), user=42),
        chat_line("stop-number", document(1), stop=5),
        chat_line("nulls", document(1), max_tokens=None, seed=None, user=None, stop=None),
    ]
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"nulls"}  # a null is the field left out

    expected = {
        "cap-text": typed("max_tokens", "an integer", "a string"),
        "cap-decimal": typed("max_completion_tokens", "an integer", "a decimal"),
        "cap-zero": ("integer_below_min_value", "max_tokens", "Invalid 'max_tokens': integer "
                     "below minimum value. Expected a value >= 1, but got 0 instead."),
        "cap-negative": ("integer_below_min_value", "max_completion_tokens", "Invalid "
                         "'max_completion_tokens': integer below minimum value. Expected a "
                         "value >= 1, but got -1 instead."),
        "seed-text": typed("seed", "an integer", "a string"),
        "logprobs-text": typed("logprobs", "a boolean", "a string"),
        "store-number": typed("store", "a boolean", "an integer"),
        "user-number": typed("user", "a string", "an integer"),
        "stop-number": typed("stop", "one of an array or a string", "an integer"),
    }  # fmt: skip
    for custom_id, (code, param, message) in expected.items():
        assert_refused(err[custom_id], status=400, code=code, param=param, message=message)
    responses = [
        responses_line("output-text", document(1), max_output_tokens="500"),
        responses_line("background-text", document(1), background="no"),
        responses_line("fine", document(1), max_output_tokens=500),
    ]
    out, err = results(client, run_file(client, jsonl(responses).decode(), "/v1/responses"))
    assert set(out) == {"fine"}
    assert_refused(err["output-text"], status=400, code="invalid_type",
                   param="max_output_tokens", message="Invalid type for 'max_output_tokens': "
                   "expected an integer, but got a string instead.")  # fmt: skip
    assert err["background-text"]["response"]["body"]["error"]["param"] == "background"


def test_values_inside_the_body_of_another_type_or_value_are_refused(client: OpenAI) -> None:
    """Inside the body too: a schema's `strict` written "true", a function's parameters as a
    string, a tool type from an older API, an unknown verbosity; all ran before."""
    schema = {"name": "summary_v1", "schema": SUMMARY_SCHEMA, "strict": True}
    params = {"type": "object", "properties": {}}
    lines = [
        chat_line("strict-text", document(1),
                  response_format={"type": "json_schema", "json_schema": {**schema, "strict": "true"}}),
        chat_line("params-text", document(1),
                  tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]),
        chat_line("tool-type", document(1), tools=[{"type": "retrieval"}]),
        chat_line("name-number", "x", messages=[{"role": "user", "content": "hi", "name": 7}]),
        chat_line("second-stop", document(1), stop=["END", 3]),
        chat_line("verbosity", document(1), verbosity="loud"),
        chat_line("choice", document(1), tool_choice="sometimes",
                  tools=[{"type": "function", "function": {"name": "f", "parameters": params}}]),
        chat_line("fine", document(1), verbosity="low", service_tier="auto", stop=["END"],
                  tools=[{"type": "function", "function": {"name": "f", "parameters": params,
                                                           "strict": None}}]),
    ]  # fmt: skip
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"fine"}

    expected = {
        "strict-text": typed("response_format.json_schema.strict", "a boolean", "a string"),
        "params-text": typed("tools[0].function.parameters", "an object", "a string"),
        "tool-type": ("invalid_value", "tools[0].type",
                      "Invalid value: 'retrieval'. Supported values are: 'function' and 'custom'."),
        "name-number": typed("messages[0].name", "a string", "an integer"),
        "second-stop": typed("stop[1]", "a string", "an integer"),
        "verbosity": ("invalid_value", "verbosity",
                      "Invalid value: 'loud'. Supported values are: 'low', 'medium', and 'high'."),
        "choice": ("invalid_value", "tool_choice", "Invalid value: 'sometimes'. Supported "
                   "values are: 'none', 'auto', and 'required'."),
    }  # fmt: skip
    for custom_id, (code, param, message) in expected.items():
        assert_refused(err[custom_id], status=400, code=code, param=param, message=message)
    responses = [
        responses_line("format-strict", document(1), schema=SUMMARY_SCHEMA),
        responses_line("summary", document(1), model="o4-mini",
                       reasoning={"effort": "low", "summary": "long"}),
        responses_line("fine", document(1), model="o4-mini",
                       reasoning={"effort": "low", "summary": "auto"}),
    ]  # fmt: skip
    responses[0]["body"]["text"]["format"]["strict"] = 1
    by_model: dict[str, list[dict[str, Any]]] = {}
    for line in responses:
        by_model.setdefault(line["body"]["model"], []).append(line)
    err = {}
    for lines_of_model in by_model.values():
        out, found = results(
            client, run_file(client, jsonl(lines_of_model).decode(), "/v1/responses")
        )
        err.update(found)
        assert set(out) <= {"fine"}
    assert_refused(err["format-strict"], status=400, code="invalid_type",
                   param="text.format.strict", message="Invalid type for 'text.format.strict': "
                   "expected a boolean, but got an integer instead.")  # fmt: skip
    assert_refused(err["summary"], status=400, code="invalid_value", param="reasoning.summary",
                   message="Invalid value: 'long'. Supported values are: 'auto', 'concise', "
                   "and 'detailed'.")  # fmt: skip


PATTERN = "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."


def test_chat_shapes_openai_refuses_are_refused_per_line(client: OpenAI) -> None:
    schema = {"name": "summary_v1", "schema": SUMMARY_SCHEMA, "strict": True}
    function = {"name": "weather", "parameters": {"type": "object", "properties": {}}}
    lines = [
        chat_line("format-type", document(1), response_format={"type": "xml"}),
        chat_line("no-json-schema", document(1), response_format={"type": "json_schema"}),
        chat_line("no-name", document(1), response_format={"type": "json_schema",
                  "json_schema": {"schema": SUMMARY_SCHEMA, "strict": True}}),
        chat_line("bad-name", document(1), response_format={"type": "json_schema",
                  "json_schema": {**schema, "name": "my summary"}}),
        chat_line("long-name", document(1), response_format={"type": "json_schema",
                  "json_schema": {**schema, "name": "s" * 65}}),
        chat_line("tool-name", document(1), tools=[{"type": "function",
                  "function": {**function, "name": "get weather"}}]),
        chat_line("no-function", document(1), tools=[{"type": "function"}]),
        chat_line("choice-alone", document(1), tool_choice="auto"),
        chat_line("no-tools", document(1), tools=[]),
        chat_line("parallel-alone", document(1), parallel_tool_calls=False),
        chat_line("five-stops", document(1), stop=["a", "b", "c", "d", "e"]),
        chat_line("metadata", document(1), metadata={"team": "ops"}),
        chat_line("top-logprobs", document(1), top_logprobs=3),
        chat_line("part-type", "x", messages=[{"role": "user", "content": [{"type": "txt"}]}]),
        chat_line("no-parts", "x", messages=[{"role": "user", "content": []}]),
        chat_line("number", "x", messages=[{"role": "user", "content": 5}]),
        chat_line("no-text", "x", messages=[{"role": "user", "content": [{"type": "text"}]}]),
        chat_line("image-string", "x", messages=[{"role": "user", "content": [
                  {"type": "image_url", "image_url": "data:image/png;base64,AAAA"}]}]),
        chat_line("image-detail", "x", messages=[{"role": "user", "content": [
                  {"type": "image_url", "image_url": {"url": "x", "detail": "ultra"}}]}]),
        chat_line("fine", document(1), response_format={"type": "json_schema",
                  "json_schema": schema}, tools=[{"type": "function", "function": function}],
                  tool_choice="auto", parallel_tool_calls=False, stop=["a", "b", "c", "d"],
                  metadata={"team": "ops"}, store=True),
    ]  # fmt: skip
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"fine"}
    name = "response_format.json_schema.name"
    expected = {
        "format-type": ("invalid_value", "response_format.type", "Invalid value: 'xml'. "
                        "Supported values are: 'text', 'json_object', and 'json_schema'."),
        "no-json-schema": ("missing_required_parameter", "response_format.json_schema",
                           "Missing required parameter: 'response_format.json_schema'."),
        "no-name": ("missing_required_parameter", name,
                    f"Missing required parameter: '{name}'."),
        "bad-name": ("invalid_value", name,
                     f"Invalid '{name}': string does not match pattern. {PATTERN}"),
        "long-name": ("string_above_max_length", name, f"Invalid '{name}': string too long. "
                      "Expected a string with maximum length 64, but got a string with length "
                      "65 instead."),
        "tool-name": ("invalid_value", "tools[0].function.name", "Invalid "
                      f"'tools[0].function.name': string does not match pattern. {PATTERN}"),
        "no-function": ("missing_required_parameter", "tools[0].function",
                        "Missing required parameter: 'tools[0].function'."),
        "choice-alone": (None, "tool_choice", "Invalid value for 'tool_choice': 'tool_choice' "
                         "is only allowed when 'tools' are specified."),
        "no-tools": ("empty_array", "tools", "Invalid 'tools': empty array. Expected an array "
                     "with minimum length 1, but got an empty array instead."),
        "parallel-alone": (None, "parallel_tool_calls", "Invalid value for "
                           "'parallel_tool_calls': 'parallel_tool_calls' is only allowed when "
                           "'tools' are specified."),
        "five-stops": ("array_above_max_length", "stop", "Invalid 'stop': array too long. "
                       "Expected an array with maximum length 4, but got an array with length "
                       "5 instead."),
        "metadata": (None, "metadata",
                     "The 'metadata' parameter is only allowed when 'store' is enabled."),
        "top-logprobs": (None, "top_logprobs", "Invalid value for 'top_logprobs': 'logprobs' "
                         "must be set to true when 'top_logprobs' is used."),
        "part-type": ("invalid_value", "messages[0].content[0].type", "Invalid value: 'txt'. "
                      "Supported values are: 'text', 'image_url', 'input_audio', and 'file'."),
        "no-parts": ("empty_array", "messages[0].content", "Invalid 'messages[0].content': "
                     "empty array. Expected an array with minimum length 1, but got an empty "
                     "array instead."),
        "number": ("invalid_type", "messages[0].content", "Invalid type for "
                   "'messages[0].content': expected one of a string or array of objects, but "
                   "got an integer instead."),
        "no-text": ("missing_required_parameter", "messages[0].content[0].text",
                    "Missing required parameter: 'messages[0].content[0].text'."),
        "image-string": ("invalid_type", "messages[0].content[0].image_url", "Invalid type for "
                         "'messages[0].content[0].image_url': expected an object, but got a "
                         "string instead."),
        "image-detail": ("invalid_value", "messages[0].content[0].image_url.detail", "Invalid "
                         "value: 'ultra'. Supported values are: 'auto', 'low', and 'high'."),
    }  # fmt: skip
    for key, (code, param, message) in expected.items():
        assert_refused(err[key], status=400, code=code, param=param, message=message)


def test_responses_shapes_openai_refuses_are_refused_per_line(client: OpenAI) -> None:
    fmt = {"type": "json_schema", "name": "summary_v1", "schema": SUMMARY_SCHEMA, "strict": True}
    tool = {"type": "function", "name": "weather", "parameters": {"type": "object"}}

    def line(custom_id: str, given: dict[str, Any], **body: Any) -> dict[str, Any]:
        made = responses_line(custom_id, document(1), **body)
        made["body"]["text"] = {"format": given}
        return made

    lines = [
        line("no-name", {k: v for k, v in fmt.items() if k != "name"}),
        line("bad-name", {**fmt, "name": "a b"}),
        line("no-schema", {k: v for k, v in fmt.items() if k != "schema"}),
        line("format-type", {"type": "yaml"}),
        line("tool-name", fmt, tools=[{**tool, "name": "get weather"}]),
        line("chat-part", fmt, input=[{"role": "user", "content": [{"type": "text"}]}]),
        line("metadata", fmt, metadata={f"k{i}": "v" for i in range(17)}),
        line("required-alone", fmt, tool_choice="required"),
        line("named-missing", fmt, tools=[tool], tool_choice={"type": "function", "name": "x"}),
        line("named-list", fmt, tools=[tool], tool_choice={"type": "function", "name": ["x"]}),
        line("fine", fmt, tools=[tool], metadata={"team": "ops"}),
        line("auto-alone", fmt, tool_choice="auto"),
    ]
    out, err = results(client, run_file(client, jsonl(lines).decode(), "/v1/responses"))
    assert set(out) == {"fine", "auto-alone"}
    expected = {
        "required-alone": (None, "tool_choice",
                           "Tool choice 'required' must be specified with 'tools' parameter."),
        "named-missing": (None, "tool_choice",
                          "Tool choice 'function' not found in 'tools' parameter."),
        "named-list": (None, "tool_choice",
                       "Tool choice 'function' not found in 'tools' parameter."),
        "no-name": ("missing_required_parameter", "text.format.name",
                    "Missing required parameter: 'text.format.name'."),
        "bad-name": ("invalid_value", "text.format.name",
                     f"Invalid 'text.format.name': string does not match pattern. {PATTERN}"),
        "no-schema": ("missing_required_parameter", "text.format.schema",
                      "Missing required parameter: 'text.format.schema'."),
        "format-type": ("invalid_value", "text.format.type", "Invalid value: 'yaml'. Supported "
                        "values are: 'text', 'json_schema', and 'json_object'."),
        "tool-name": ("invalid_value", "tools[0].name",
                      f"Invalid 'tools[0].name': string does not match pattern. {PATTERN}"),
        "chat-part": ("invalid_value", "input[0].content[0].type", "Invalid value: 'text'. "
                      "Supported values are: 'input_text', 'input_image', 'input_audio', "
                      "'output_text', 'refusal', 'input_file', 'computer_screenshot', "
                      "'summary_text', and 'encrypted_content'."),
        "metadata": ("invalid_value", "metadata",
                     "Invalid 'metadata': at most 16 pairs allowed, got 17."),
    }  # fmt: skip
    for key, (code, param, message) in expected.items():
        assert_refused(err[key], status=400, code=code, param=param, message=message)


def test_responses_input_roles_openai_refuses_are_refused_per_line(client: OpenAI) -> None:
    def line(custom_id: str, *items: Any) -> dict[str, Any]:
        return responses_line(custom_id, document(1), input=list(items))

    lines = [
        line("unknown-role", {"role": "human", "content": "Hi"}),
        line("no-role", {"type": "message", "content": "Hi"}),
        line(
            "fine",
            {"role": "developer", "content": "JSON only."},
            {"role": "user", "content": "Hi"},
        ),
    ]
    out, err = results(client, run_file(client, jsonl(lines).decode(), "/v1/responses"))
    assert set(out) == {"fine"}
    assert_refused(
        err["unknown-role"],
        status=400,
        code="invalid_value",
        param="input[0].role",
        message="Invalid value: 'human'. Supported values are: 'user', 'assistant', 'system', "
        "and 'developer'.",
    )
    assert_refused(
        err["no-role"],
        status=400,
        code="missing_required_parameter",
        param="input[0].role",
        message="Missing required parameter: 'input[0].role'.",
    )


def test_responses_content_parts_of_the_wrong_shape_are_refused(client: OpenAI) -> None:
    """A text part whose text is a number, an image URL that is not a string, a part that is
    a bare string, a content that is a number, an unknown image detail: all ran before."""

    def line(custom_id: str, content: object) -> dict[str, Any]:
        return responses_line(custom_id, document(1), input=[{"role": "user", "content": content}])

    image = "https://example.com/chart.png"
    lines = [
        line("text-number", [{"type": "input_text", "text": 5}]),
        line("no-text", [{"type": "input_text"}]),
        line("url-number", [{"type": "input_image", "image_url": 5}]),
        line("bare-string", ["hello"]),
        line("content-number", 5),
        line("detail", [{"type": "input_image", "image_url": image, "detail": "ultra"}]),
        # OpenAI's own examples send image parts without `detail`, which its spec requires.
        line("fine", [{"type": "input_text", "text": "Describe."},
                      {"type": "input_image", "image_url": image}]),
    ]  # fmt: skip
    out, err = results(client, run_file(client, jsonl(lines).decode(), "/v1/responses"))
    assert set(out) == {"fine"}
    at = "input[0].content"
    expected = {
        "text-number": typed(f"{at}[0].text", "a string", "an integer"),
        "no-text": ("missing_required_parameter", f"{at}[0].text",
                    f"Missing required parameter: '{at}[0].text'."),
        "url-number": typed(f"{at}[0].image_url", "a string", "an integer"),
        "bare-string": typed(f"{at}[0]", "an object", "a string"),
        "content-number": typed(at, "one of a string or array of objects", "an integer"),
        "detail": ("invalid_value", f"{at}[0].detail", "Invalid value: 'ultra'. Supported "
                   "values are: 'low', 'high', 'auto', and 'original'."),
    }  # fmt: skip
    for custom_id, (code, param, message) in expected.items():
        assert_refused(err[custom_id], status=400, code=code, param=param, message=message)


def test_an_empty_messages_array_is_refused_in_openais_words(client: OpenAI) -> None:
    line = chat_line("empty", document(1))
    line["body"]["messages"] = []
    [refused] = read_lines(client, run_file(client, jsonl([line]).decode()).error_file_id)
    assert_refused(
        refused,
        status=400,
        code="empty_array",
        param="messages",
        message="Invalid 'messages': empty array. Expected an array with minimum length 1, but "
        "got an empty array instead.",
    )


def test_json_mode_without_the_word_json_is_refused(client: OpenAI) -> None:
    # OpenAI refuses JSON mode unless some message says "json" (a model left uninstructed
    # can emit whitespace until its cap).
    silent = chat_line("silent", "x", response_format={"type": "json_object"})
    silent["body"]["messages"] = [{"role": "user", "content": "Tell me about the harbor."}]
    told = chat_line("told", "x", response_format={"type": "json_object"})
    told["body"]["messages"] = [
        {"role": "user", "content": [{"type": "text", "text": "The harbor, as Json."}]}
    ]
    out, err = results(client, run_file(client, jsonl([silent, told]).decode()))
    assert set(out) == {"told"}
    assert_refused(
        err["silent"],
        status=400,
        code=None,
        param="messages",
        message="'messages' must contain the word 'json' in some form, to use 'response_format' "
        "of type 'json_object'.",
    )


def test_values_outside_the_specs_bounds_are_refused_per_line(client: OpenAI) -> None:
    lines = [
        chat_line("hot", document(1), temperature=5),
        chat_line("none", document(2), n=0),
        chat_line("text-n", document(3), n="3"),
        chat_line("many-logprobs", document(4), logprobs=True, top_logprobs=30),
        chat_line("fine", document(5), temperature=2, n=1, top_p=1),
    ]
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"fine"}
    expected = {
        "hot": ("decimal_above_max_value", "temperature", "Invalid 'temperature': decimal "
                "above maximum value. Expected a value <= 2, but got 5 instead."),
        "none": ("integer_below_min_value", "n", "Invalid 'n': integer below minimum value. "
                 "Expected a value >= 1, but got 0 instead."),
        "text-n": ("invalid_type", "n", "Invalid type for 'n': expected an integer, but got a "
                   "string instead."),
        "many-logprobs": ("integer_above_max_value", "top_logprobs", "Invalid 'top_logprobs': "
                          "integer above maximum value. Expected a value <= 20, but got 30 "
                          "instead."),
    }  # fmt: skip
    for key, (code, param, message) in expected.items():
        assert_refused(err[key], status=400, code=code, param=param, message=message)


def test_an_embeddings_encoding_outside_the_specs_values_is_refused(client: OpenAI) -> None:
    line = {
        "custom_id": "int8",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": "a", "encoding_format": "int8"},
    }
    [refused] = read_lines(
        client, run_file(client, jsonl([line]).decode(), endpoint="/v1/embeddings").error_file_id
    )
    assert_refused(
        refused,
        status=400,
        code="invalid_value",
        param="encoding_format",
        message="Invalid value: 'int8'. Supported values are: 'float' and 'base64'.",
    )


def test_embeddings_inputs_openai_refuses_are_refused_per_line(client: OpenAI) -> None:
    def line(custom_id: str, given: Any) -> dict[str, Any]:
        body = {"model": "text-embedding-3-small", "input": given}
        return {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": body}

    word = "harbor "  # one token a word
    lines = [
        line("empty", ""),
        line("empty-item", ["a", ""]),
        line("no-items", []),
        line("too-many-items", ["a"] * 2_049),
        line("mixed", ["a", [17]]),
        line("too-long", word * 9_000),
        line("too-long-tokens", [[17] * 8_193]),
        line("flat-tokens-over-2048", [17] * 2_049),
        line("too-many", [word * 8_000] * 40),
        line("at-the-limit", [word * 8_000, word * 8_000]),
        line("at-the-limit-tokens", [[17] * 8_192]),
    ]
    batch = run_file(client, jsonl(lines).decode(), endpoint="/v1/embeddings")
    out, err = results(client, batch)
    assert set(out) == {"at-the-limit", "at-the-limit-tokens"}
    shapes = ("empty", "empty-item", "no-items", "too-many-items", "mixed", "flat-tokens-over-2048")
    for key in shapes:
        assert_refused(
            err[key],
            status=400,
            code=None,
            param=None,
            message="'$.input' is invalid. Please check the API reference: "
            "https://platform.openai.com/docs/api-reference.",
        )
    for key in ("too-long", "too-long-tokens"):
        assert_refused(
            err[key],
            status=400,
            code=None,
            param=None,
            message="Invalid 'input': maximum context length is 8192 tokens.",
        )
    each = count_tokens(word * 8_000, "text-embedding-3-small")  # 8,000 and some
    error = err["too-many"]["response"]["body"]["error"]
    assert err["too-many"]["response"]["status_code"] == 400
    assert error == {
        "message": f"Requested {40 * each} tokens, max 300000 tokens per request",
        "type": "max_tokens_per_request",
        "param": None,
        "code": "max_tokens_per_request",
    }


def test_a_strict_function_tool_outside_the_schema_subset_is_refused(client: OpenAI) -> None:
    loose = {"type": "object", "properties": {"city": {"type": "string", "minLength": 2}}}
    tool = {"type": "function", "function": {"name": "forecast", "strict": True}}
    strict = chat_line("strict", document(1), tools=[{**tool, "function": {
        **tool["function"], "parameters": loose}}])  # fmt: skip
    lenient = chat_line("lenient", document(2), tools=[{"type": "function", "function": {
        "name": "forecast", "parameters": loose}}])  # fmt: skip
    out, err = results(client, run_file(client, jsonl([strict, lenient]).decode()))
    assert set(out) == {"lenient"}  # not strict: any JSON schema goes
    assert_refused(
        err["strict"],
        status=400,
        code="invalid_function_parameters",
        param="tools[0].function.parameters",
        message="Invalid schema for function 'forecast': In context=(), 'additionalProperties' "
        "is required to be supplied and to be false.",
    )


def _by_model(client: OpenAI, lines: list[dict[str, Any]], endpoint: str) -> tuple[Any, Any]:
    """Run lines of several models (one batch per model); their output and error lines."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_model.setdefault(line["body"]["model"], []).append(line)
    out: dict[str, Any] = {}
    err: dict[str, Any] = {}
    for group in by_model.values():
        found_out, found_err = results(client, run_file(client, jsonl(group).decode(), endpoint))
        out.update(found_out)
        err.update(found_err)
    return out, err


def unknown(param: str) -> tuple[str, str, str]:
    return ("unknown_parameter", param, f"Unknown parameter: '{param}'.")


def test_unknown_fields_inside_the_body_are_refused_per_line(client: OpenAI) -> None:
    """A field OpenAI does not know inside an object of the body: `strict` one level too high in
    `response_format` (a common slip), a replayed Responses item carrying its output-only or a
    client's own fields. All ran before; OpenAI answers each "Unknown parameter"."""
    schema = {"name": "summary_v1", "schema": SUMMARY_SCHEMA, "strict": True}
    params = {"type": "object", "properties": {}}
    chat = [
        chat_line("strict-too-high", document(1), response_format={
            "type": "json_schema", "json_schema": schema, "strict": True}),
        chat_line("schema-extra", document(1), response_format={
            "type": "json_schema", "json_schema": {**schema, "additionalProperties": False}}),
        chat_line("function-extra", document(1), tools=[{"type": "function", "function": {
            "name": "f", "parameters": params, "returns": "string"}}]),
        chat_line("fine", document(1), response_format={"type": "json_schema", "json_schema": schema},
                  tools=[{"type": "function", "function": {"name": "f", "parameters": params}}]),
    ]  # fmt: skip
    out, err = results(client, run_file(client, jsonl(chat).decode()))
    assert set(out) == {"fine"}
    expected = {
        "strict-too-high": unknown("response_format.strict"),
        "schema-extra": unknown("response_format.json_schema.additionalProperties"),
        "function-extra": unknown("tools[0].function.returns"),
    }
    for custom_id, (code, param, message) in expected.items():
        assert_refused(err[custom_id], status=400, code=code, param=param, message=message)

    replayed = {
        "type": "message",
        "role": "assistant",
        "id": "msg_1",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Earlier answer.", "annotations": []}],
    }
    responses = [
        responses_line("item-metadata", "", input=[
            {"role": "user", "content": document(1), "metadata": {"client": "chat"}}]),
        responses_line("part-extra", "", input=[{"role": "user", "content": [
            {"type": "input_text", "text": document(1), "cache": True}]}]),
        responses_line("call-parsed", "", input=[
            {"role": "user", "content": document(1)},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}",
             "parsed_arguments": {}},
            {"type": "function_call_output", "call_id": "c1", "output": "{}"}]),
        responses_line("format-extra", document(1), schema=SUMMARY_SCHEMA),
        responses_line("reasoning-extra", document(1), model="o4-mini",
                       reasoning={"effort": "low", "budget": 100}),
        responses_line("fine", "", input=[
            {"role": "user", "content": document(1)}, replayed,
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "More."}]}]),
    ]  # fmt: skip
    responses[3]["body"]["text"]["format"]["additionalProperties"] = False
    out, err = _by_model(client, responses, "/v1/responses")
    assert set(out) == {"fine"}
    expected = {
        "item-metadata": unknown("input[0].metadata"),
        "part-extra": unknown("input[0].content[0].cache"),
        "call-parsed": unknown("input[1].parsed_arguments"),
        "format-extra": unknown("text.format.additionalProperties"),
        "reasoning-extra": unknown("reasoning.budget"),
    }
    for custom_id, (code, param, message) in expected.items():
        assert_refused(err[custom_id], status=400, code=code, param=param, message=message)


def test_older_chat_models_refuse_message_fields_newer_ones_take(client: OpenAI) -> None:
    """gpt-3.5-turbo, gpt-4 and gpt-4-turbo check messages against the 2023 schema: a replayed
    assistant message with `refusal`, or a client's own `id`, is refused there and runs on
    gpt-4o-mini (as the API answered in openai/openai-node#1161)."""
    history = [
        {"role": "user", "content": "Summarize: the board approved the budget."},
        {"role": "assistant", "content": "The budget passed.", "refusal": None},
        {"role": "user", "content": "Shorter, please.", "id": "m3"},
    ]
    lines = [
        chat_line(model, "", model=model, messages=history)
        for model in ("gpt-3.5-turbo", "gpt-4", "gpt-4-turbo", "gpt-4o-mini")
    ]
    lines.append(chat_line("plain", "", model="gpt-4", messages=[history[0]]))
    out, err = _by_model(client, lines, "/v1/chat/completions")
    assert set(out) == {"gpt-4o-mini", "plain"}
    for model in ("gpt-3.5-turbo", "gpt-4", "gpt-4-turbo"):
        assert_refused(err[model], status=400, code=None, param=None, message=(
            "Additional properties are not allowed ('refusal' was unexpected) - 'messages.1'"))  # fmt: skip


def test_logit_bias_and_web_search_options_openai_refuses_are_refused(client: OpenAI) -> None:
    """A logit_bias keyed by a word, by a token past the vocabulary or biased past ±100, and
    web_search_options on a model that does not search: all ran before."""
    lines = [
        chat_line("word-key", document(1), logit_bias={"AI": 10}),
        chat_line("past-vocabulary", document(1), model="gpt-3.5-turbo",
                  logit_bias={"100265": -100}),
        chat_line("too-strong", document(1), logit_bias={"1734": 500}),
        chat_line("text-bias", document(1), logit_bias={"1734": "-100"}),
        chat_line("too-many", document(1), logit_bias={str(n): 1 for n in range(301)}),
        chat_line("search", document(1), web_search_options={}),
        chat_line("fine", document(1), logit_bias={"1734": -100, "0": 5}, web_search_options=None),
        chat_line("fine-3.5", document(1), model="gpt-3.5-turbo", logit_bias={"100257": -100}),
    ]  # fmt: skip
    out, err = _by_model(client, lines, "/v1/chat/completions")
    assert set(out) == {"fine", "fine-3.5"}
    expected = {
        "word-key": (None, "logit_bias", "Invalid key in 'logit_bias': AI. You should only be "
                     "submitting non-negative integers."),
        "past-vocabulary": (None, "logit_bias",
                            "Invalid key in 'logit_bias': 100265. Maximum value is 100257."),
        "too-strong": ("integer_above_max_value", "logit_bias.1734", "Invalid 'logit_bias.1734': "
                       "integer above maximum value. Expected a value <= 100, but got 500 instead."),
        "text-bias": typed("logit_bias.1734", "an integer", "a string"),
        "too-many": (None, "logit_bias", "Invalid 'logit_bias': too many entries. Expected at "
                     "most 300, but got 301 instead."),
        "search": unknown("web_search_options"),
    }  # fmt: skip
    for custom_id, (code, param, message) in expected.items():
        assert_refused(err[custom_id], status=400, code=code, param=param, message=message)


def test_more_than_128_tools_are_refused_on_both_endpoints(client: OpenAI) -> None:
    """129 tools ran; OpenAI refuses them (an agent with many MCP servers meets this)."""
    params = {"type": "object", "properties": {}}
    chat_tools = [{"type": "function", "function": {"name": f"f{n}", "parameters": params}}
                  for n in range(129)]  # fmt: skip
    lines = [chat_line("many", document(1), tools=chat_tools),
             chat_line("most", document(1), tools=chat_tools[:128])]  # fmt: skip
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"most"}
    message = ("Invalid 'tools': array too long. Expected an array with maximum length 128, but "
               "got an array with length 129 instead.")  # fmt: skip
    assert_refused(err["many"], status=400, code="array_above_max_length", param="tools",
                   message=message)  # fmt: skip
    tools = [{"type": "function", "name": f"f{n}", "parameters": params} for n in range(129)]
    lines = [responses_line("many", document(1), tools=tools),
             responses_line("most", document(1), tools=tools[:128])]  # fmt: skip
    out, err = results(client, run_file(client, jsonl(lines).decode(), "/v1/responses"))
    assert set(out) == {"most"}
    assert_refused(err["many"], status=400, code="array_above_max_length", param="tools",
                   message=message)  # fmt: skip


def test_audio_on_a_model_without_audio_is_refused(client: OpenAI) -> None:
    """No listed model takes or writes audio on chat: an input_audio part, or audio output asked
    for, ran and got a text answer; OpenAI's audio models are not in the models file."""
    clip = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    lines = [
        chat_line("audio-in", "", messages=[
            {"role": "user", "content": [{"type": "text", "text": "Transcribe this."}, clip]}]),
        chat_line("audio-out", document(1), modalities=["text", "audio"],
                  audio={"voice": "alloy", "format": "mp3"}),
        chat_line("voice-only", document(1), audio={"voice": "alloy", "format": "mp3"}),
        chat_line("text", document(1), modalities=["text"]),
    ]  # fmt: skip
    out, err = results(client, run_file(client, jsonl(lines).decode()))
    assert set(out) == {"text"}
    assert_refused(err["audio-in"], status=400, code=None, param="messages.[0].content.[1].type",
                   message="Invalid content type. input_audio is only supported by certain "
                   "models.")  # fmt: skip
    assert err["audio-out"]["response"]["body"]["error"]["param"] == "modalities"
    assert err["voice-only"]["response"]["body"]["error"]["param"] == "audio"
    for custom_id in ("audio-out", "voice-only"):
        error = err[custom_id]["response"]["body"]["error"]
        assert error["code"] == "unsupported_value" and "audio model" in error["message"]


def test_the_server_log_says_once_why_a_newer_openai_model_is_not_found(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client naming gpt-5.4-mini saw model_not_found on every line and nothing on the
    server said that the model is OpenAI's but the capabilities file does not describe it."""
    from localbatch._execution import WorkItem
    from localbatch._rules import LineRules

    rules = LineRules()
    for n, model in enumerate(["gpt-5.4-mini", "gpt-5.4-mini-2026-03-17", "gpt-9-ultra"]):
        line = chat_line(f"l{n}", document(1), model=model)
        item = WorkItem(n, line["custom_id"], line["url"], line["body"], model, f"k{n}", 0)
        outcome = rules.check(item, b"")
        assert outcome is not None and outcome.body["error"]["code"] == "model_not_found"
    told = [r.getMessage() for r in caplog.records if r.name == "localbatch"]
    assert len(told) == 1, told
    assert "lines naming gpt-5.4-mini end model_not_found: OpenAI lists it" in told[0]
    assert "OVERNIGHT_MODELS_FILE" in told[0]
