from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from schemas.build import BuildSummary, RequestIndexRow
from schemas.job import JobSpec, LimitsSpec, parse_job
from schemas.response_format import response_format_for
from tasks import build, storage
from tasks.build import BuildError, build_shards
from tasks.chunking import split_text
from tasks.render import RequestRenderer, custom_id_for, token_counter
from tasks.sharding import DuplicateCustomIdError, RequestTooLargeError, ShardWriter
from tasks.tokens import count_tokens, encoding_for_model

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
CASES = REPO / "tests" / "cases"
PARAGRAPH = (
    "The committee met on Tuesday to review the harbour budget. Members agreed that the "
    "dredging contract should be tendered again, because the only bid came in far above the "
    "estimate. The chair asked officers to report back with two cheaper options."
)


def make_job(uri: Path | str, /, **changes: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": "build-test",
        "source": {"uri": str(uri)},
        "output": "/unused",
        "model": "gpt-4o-mini",
        "system_prompt": "Summarize the document.",
        "user_template": "Document {id}:\n\n{text}",
        "output_schema": "schemas.summary:DocumentSummary",
        "params": {"max_output_tokens": 300, "temperature": 0.1, "seed": 3},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_job(data)


def write_docs(folder: Path, count: int, text: str = "Short document number {i}.") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"doc-{i:03d}.txt").write_text(text.format(i=i))
    return folder


def read_lines(uri: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in storage.read_bytes(uri).splitlines()]


def check_consistent(summary: BuildSummary) -> None:
    """Everything a build promises about its own outputs."""
    assert summary.documents_seen == (
        summary.documents_skipped + summary.documents_built + summary.documents_rejected
    )
    assert summary.rejected_count == summary.documents_rejected
    rejected = storage.read_bytes(summary.rejected_uri).splitlines()
    assert len(rejected) == summary.rejected_count
    ids: list[str] = []
    for shard in summary.shards:
        data = storage.read_bytes(shard.uri)
        assert hashlib.sha256(data).hexdigest() == shard.sha256
        assert len(data) == shard.bytes
        lines = [orjson.loads(line) for line in data.splitlines()]
        index = pl.read_parquet(storage.read_bytes(shard.index_uri))
        assert index.columns == list(RequestIndexRow._fields)
        assert index["custom_id"].to_list() == [line["custom_id"] for line in lines]
        assert index["input_tokens"].sum() == shard.input_tokens
        assert len(lines) == shard.requests
        assert {line["body"]["model"] for line in lines} == {shard.model}
        assert {line["url"] for line in lines} == {shard.endpoint}
        ids += index["custom_id"].to_list()
    assert len(ids) == len(set(ids)) == summary.requests
    assert sum(s.input_tokens for s in summary.shards) == summary.input_tokens


# -- end to end over the samples -------------------------------------------------------------


def test_build_the_sample_folder(tmp_path: Path) -> None:
    job = make_job(SAMPLES)
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    assert summary.job_fingerprint == job.fingerprint()
    assert summary.documents_rejected == 2
    codes = {
        orjson.loads(line)["code"] for line in (tmp_path / "run" / "rejected.jsonl").open("rb")
    }
    assert codes == {"empty", "undecodable"}  # the sample ZIP is cut short
    assert summary.documents_built == summary.requests >= 12
    assert [s.shard_id for s in summary.shards] == ["shard-00000"]
    assert summary.shards[0].uri == str(tmp_path / "run" / "shards" / "shard-00000.jsonl")
    assert summary.shards[0].index_uri.endswith("shards/shard-00000.index.parquet")


def test_chat_request_body(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 1, "Hello there.")
    job = make_job(tmp_path / "in")
    summary = build_shards(job, str(tmp_path / "run"))
    [line] = read_lines(summary.shards[0].uri)
    assert list(line) == ["custom_id", "method", "url", "body"]
    assert line["custom_id"] == custom_id_for("doc-000.txt", 0)
    assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
    body = line["body"]
    assert body == {
        "model": "gpt-4o-mini",
        "max_completion_tokens": 300,
        "temperature": 0.1,
        "seed": 3,
        "response_format": response_format_for(job.output_model(), job.endpoint),
        "messages": [
            {"role": "system", "content": "Summarize the document."},
            {"role": "user", "content": "Document doc-000.txt:\n\nHello there."},
        ],
    }


def test_chat_request_body_of_a_reasoning_model(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 1, "Hello there.")
    job = make_job(
        tmp_path / "in",
        model="gpt-5-mini",
        params={"temperature": None, "reasoning_effort": "low"},
    )
    summary = build_shards(job, str(tmp_path / "run"))
    [line] = read_lines(summary.shards[0].uri)
    assert line["body"] == {
        "model": "gpt-5-mini",
        "max_completion_tokens": 300,
        "seed": 3,
        "reasoning_effort": "low",
        "response_format": response_format_for(job.output_model(), job.endpoint),
        "messages": [
            {"role": "system", "content": "Summarize the document."},
            {"role": "user", "content": "Document doc-000.txt:\n\nHello there."},
        ],
    }


def test_responses_request_body(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 1, "Hello there.")
    job = make_job(
        tmp_path / "in",
        endpoint="/v1/responses",
        params={"max_output_tokens": 50, "seed": None},
    )
    summary = build_shards(job, str(tmp_path / "run"))
    [line] = read_lines(summary.shards[0].uri)
    assert line["url"] == "/v1/responses"
    assert line["body"] == {
        "model": "gpt-4o-mini",
        "max_output_tokens": 50,
        "temperature": 0.1,
        "text": {"format": response_format_for(job.output_model(), "/v1/responses")},
        "instructions": "Summarize the document.",
        "input": [{"role": "user", "content": "Document doc-000.txt:\n\nHello there."}],
    }
    reasoning = make_job(
        tmp_path / "in",
        model="gpt-5-nano",
        endpoint="/v1/responses",
        params={"max_output_tokens": 50, "seed": None, "temperature": None,
                "reasoning_effort": "minimal"},
    )  # fmt: skip
    summary = build_shards(reasoning, str(tmp_path / "run-reasoning"))
    [line] = read_lines(summary.shards[0].uri)
    assert line["body"] == {
        "model": "gpt-5-nano",
        "max_output_tokens": 50,
        "reasoning": {"effort": "minimal"},
        "text": {"format": response_format_for(job.output_model(), "/v1/responses")},
        "instructions": "Summarize the document.",
        "input": [{"role": "user", "content": "Document doc-000.txt:\n\nHello there."}],
    }


def test_image_documents_render_as_content_parts(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pixel.png").write_bytes((CASES / "pixel.png").read_bytes())
    for endpoint, part in (("/v1/chat/completions", "image_url"), ("/v1/responses", "input_image")):
        job = make_job(tmp_path / "in", endpoint=endpoint, params={"seed": None})
        summary = build_shards(job, str(tmp_path / endpoint.replace("/", "_")))
        [line] = read_lines(summary.shards[0].uri)
        messages = line["body"].get("messages") or line["body"]["input"]
        content = messages[-1]["content"]
        assert [p["type"] for p in content][1] == part
        assert "data:image/png;base64," in orjson.dumps(content).decode()
        renderer = RequestRenderer(job)
        text_tokens = renderer.count("Document pixel.png:\n\n")
        # a 1×1 image is one 512 px tile: gpt-4o-mini's 2,833 base + 5,667 per tile
        assert renderer.image_tokens([(1, 1)]) == 2833 + 5667
        assert summary.input_tokens == renderer.static_tokens + text_tokens + 2833 + 5667


def test_user_template_fields(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "r.jsonl").write_text('{"text": "body", "author": "Ann"}\n')
    job = make_job(
        tmp_path / "in",
        user_template="By {metadata[author]}{metadata[missing]} ({chunk_number}/{chunk_count}, "
        "from {source_uri}):\n{text}",
        source={"metadata_fields": ["author"]},
    )
    summary = build_shards(job, str(tmp_path / "run"))
    [line] = read_lines(summary.shards[0].uri)
    uri = tmp_path / "in" / "r.jsonl"
    assert line["body"]["messages"][1]["content"] == f"By Ann (1/1, from {uri}):\nbody"


def test_a_template_that_fails_for_one_document_rejects_it(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 2)
    job = make_job(tmp_path / "in", user_template="{id:d} {text}")
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    assert summary.documents_rejected == 2
    assert {r["code"] for r in read_lines(summary.rejected_uri)} == {"template_error"}


# -- tokens and ids --------------------------------------------------------------------------


def test_input_tokens_are_counted_exactly(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 1, "Überraschung! 12345 tokens, naïve café.")
    job = make_job(tmp_path / "in")
    summary = build_shards(job, str(tmp_path / "run"))
    schema = response_format_for(job.output_model(), job.endpoint)["json_schema"]["schema"]
    by_hand = (
        3  # reply priming
        + 3 + 1 + count_tokens("Summarize the document.", job.model)  # system message
        + 3 + 1 + count_tokens("Document doc-000.txt:\n\nÜberraschung! 12345 tokens, naïve café.", job.model)
        + count_tokens(orjson.dumps(schema).decode(), job.model)
    )  # fmt: skip
    assert summary.input_tokens == by_hand


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "<|endoftext|> is text here",
        "naïve 日本語 🎉\n\n  x",
        "lone \ud800 surrogate",
    ],
)
def test_fast_token_counter_matches_tiktoken(text: str) -> None:
    for model in ("gpt-4o-mini", "gpt-4"):
        encoding = encoding_for_model(model)
        assert token_counter(encoding)(text) == len(encoding.encode_ordinary(text))


def test_custom_ids_are_stable_short_and_distinct() -> None:
    first = custom_id_for("folder/report.pdf", 0)
    assert first == custom_id_for("folder/report.pdf", 0)
    assert len(first) <= 64
    assert first.endswith("-0")
    many = {
        custom_id_for(f"doc-{i}.txt#{j}", k) for i in range(300) for j in range(3) for k in range(3)
    }
    assert len(many) == 300 * 3 * 3
    assert max(len(c) for c in many) <= 64
    assert custom_id_for("a" * 10_000, 99_999).startswith(custom_id_for("a" * 10_000, 0)[:32])


def test_custom_ids_are_the_same_in_a_second_build(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 5)
    job = make_job(tmp_path / "in")
    one = build_shards(job, str(tmp_path / "r1"))
    two = build_shards(job, str(tmp_path / "r2"))
    ids = [
        pl.read_parquet(s.index_uri)["custom_id"].to_list() for s in (one.shards[0], two.shards[0])
    ]
    assert ids[0] == ids[1]
    assert one.shards[0].sha256 == two.shards[0].sha256


def test_a_duplicate_document_id_is_rejected_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"id": "same", "text": "first"}\n')
    (tmp_path / "in" / "b.jsonl").write_text('{"id": "same", "text": "second"}\n')
    job = make_job(tmp_path / "in", source={"id_field": "id"})
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    assert (summary.requests, summary.documents_rejected) == (1, 1)
    [reject] = read_lines(summary.rejected_uri)
    assert (reject["code"], reject["stage"], reject["document_id"]) == (
        "duplicate_id",
        "build",
        "same",
    )
    [line] = read_lines(summary.shards[0].uri)
    assert line["body"]["messages"][1]["content"].endswith("first")


def test_duplicates_are_found_across_shards(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    records = [{"id": f"r{i % 4}", "text": f"text {i}"} for i in range(6)]
    (tmp_path / "in" / "a.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    job = make_job(tmp_path / "in", source={"id_field": "id"}, limits={"max_requests_per_shard": 2})
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    assert (summary.requests, summary.documents_rejected, len(summary.shards)) == (4, 2, 2)


# -- skipping and progress -------------------------------------------------------------------


def test_should_process_skips_and_progress_counts(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 600)
    (tmp_path / "in" / "zz-empty.txt").write_text("")
    job = make_job(tmp_path / "in")
    calls: list[int] = []
    summary = build_shards(
        job,
        str(tmp_path / "run"),
        should_process=lambda d: not d.document_id.endswith(("5.txt", "7.txt")),
        progress=calls.append,
    )
    check_consistent(summary)
    assert summary.documents_seen == 601
    assert summary.documents_skipped == 120
    assert summary.documents_built == 480
    assert sum(calls) == 601 and len(calls) >= 3


# -- shard limits ----------------------------------------------------------------------------


def test_shards_respect_the_request_limit(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 8)
    job = make_job(tmp_path / "in", limits={"max_requests_per_shard": 3})
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    assert [s.requests for s in summary.shards] == [3, 3, 2]
    assert [s.shard_id for s in summary.shards] == ["shard-00000", "shard-00001", "shard-00002"]


def test_shards_respect_the_byte_limit(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 8)
    job = make_job(tmp_path / "in")
    line_bytes = build_shards(job, str(tmp_path / "probe")).shards[0].bytes // 8
    limit = int(line_bytes * 2.5)
    job = make_job(tmp_path / "in", limits={"max_shard_bytes": limit})
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    assert [s.requests for s in summary.shards] == [2, 2, 2, 2]
    assert all(s.bytes < limit for s in summary.shards)


def test_shards_respect_the_token_limit(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 7)
    job = make_job(tmp_path / "in")
    per_request = build_shards(job, str(tmp_path / "probe")).input_tokens // 7
    limit = per_request * 3 + 1
    job = make_job(tmp_path / "in", limits={"max_shard_tokens": limit})
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    assert [s.requests for s in summary.shards] == [3, 3, 1]
    assert all(s.input_tokens <= limit for s in summary.shards)


def test_a_request_larger_than_a_shard_is_rejected(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 2)
    (tmp_path / "in" / "doc-001.txt").write_text(PARAGRAPH * 3)
    job = make_job(tmp_path / "in")
    small = build_shards(job, str(tmp_path / "probe")).shards[0]
    tokens = pl.read_parquet(small.index_uri)["input_tokens"].to_list()
    job = make_job(tmp_path / "in", limits={"max_shard_tokens": min(tokens)})
    summary = build_shards(job, str(tmp_path / "tokens"))
    check_consistent(summary)
    assert [r["code"] for r in read_lines(summary.rejected_uri)] == ["too_many_tokens"]
    sizes = [len(line) for line in storage.read_bytes(small.uri).splitlines(keepends=True)]
    job = make_job(tmp_path / "in", limits={"max_shard_bytes": max(sizes)})
    summary = build_shards(job, str(tmp_path / "bytes"))
    assert [r["code"] for r in read_lines(summary.rejected_uri)] == ["too_large"]


def test_prompts_larger_than_the_request_limit_fail_the_build(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", 1)
    job = make_job(tmp_path / "in", chunking={"max_input_tokens": 200, "overlap_tokens": 0})
    with pytest.raises(BuildError, match="max_input_tokens"):
        build_shards(job, str(tmp_path / "run"))


# -- chunking --------------------------------------------------------------------------------


def long_document(paragraphs: int) -> str:
    return "\n\n".join(f"Section {i}. {PARAGRAPH}" for i in range(paragraphs))


def test_split_text_cuts_at_paragraphs_with_overlap() -> None:
    text = long_document(12)
    chunks = split_text(text, model="gpt-4o-mini", max_tokens=150, overlap_tokens=60)
    assert len(chunks) >= 6
    for chunk in chunks:
        assert count_tokens(chunk, "gpt-4o-mini") <= 150
        assert chunk.startswith(("Section", "The ", "Members", "estimate.")) or chunk[0].isupper()
        assert chunk.endswith(".")
    for before, after in itertools.pairwise(chunks):
        first_sentence = after.split(". ")[0]
        assert first_sentence in before  # the overlap repeats the end of the previous chunk
    assert split_text(text, model="gpt-4o-mini", max_tokens=10_000) == [text]


def test_long_documents_become_several_requests(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "long.txt").write_text(long_document(20))
    (tmp_path / "in" / "short.txt").write_text("Short.")
    job = make_job(tmp_path / "in", chunking={"max_input_tokens": 900, "overlap_tokens": 50})
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    index = pl.read_parquet(summary.shards[0].index_uri)
    long = index.filter(pl.col("document_id") == "long.txt")
    count = long.height
    assert count >= 3
    assert long["chunk_index"].to_list() == list(range(count))
    assert set(long["chunk_count"].to_list()) == {count}
    assert long["custom_id"].to_list() == [custom_id_for("long.txt", i) for i in range(count)]
    assert max(long["input_tokens"].to_list()) <= 900
    assert summary.documents_built == 2 and summary.requests == count + 1
    renderer = RequestRenderer(job)
    lines = {line["custom_id"]: line for line in read_lines(summary.shards[0].uri)}
    for row in long.iter_rows(named=True):
        content = lines[row["custom_id"]]["body"]["messages"][1]["content"]
        assert renderer.static_tokens + renderer.count(content) == row["input_tokens"]
        assert content.startswith("Document long.txt:\n\n")
        assert content.rstrip().endswith(".")  # cut at a sentence or paragraph end


def test_too_many_chunks_or_no_chunking_rejects(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "long.txt").write_text(long_document(20))
    for chunking in ({"max_chunks": 2}, {"max_chunks": 1}):
        job = make_job(tmp_path / "in", chunking={"max_input_tokens": 900, **chunking})
        summary = build_shards(job, str(tmp_path / f"run{chunking['max_chunks']}"))
        check_consistent(summary)
        assert summary.requests == 0
        [reject] = read_lines(summary.rejected_uri)
        assert (reject["code"], reject["stage"]) == ("too_many_tokens", "build")


def test_a_document_far_past_max_chunks_is_refused_without_splitting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A log of many megabytes took seconds a megabyte to split, only to be refused for its
    # chunk count: one that cannot fit max_chunks by its token count alone is never split.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "dump.txt").write_text(long_document(120))  # ~6,000 tokens
    (tmp_path / "in" / "long.txt").write_text(long_document(20))
    job = make_job(tmp_path / "in", chunking={"max_input_tokens": 900, "max_chunks": 2})
    split = build.split_text
    split_lengths: list[int] = []

    def spy(text: str, **kwargs: Any) -> list[str]:
        split_lengths.append(len(text))
        return split(text, **kwargs)

    monkeypatch.setattr(build, "split_text", spy)
    summary = build_shards(job, str(tmp_path / "run"))
    check_consistent(summary)
    rejects = {r["document_id"]: r for r in read_lines(summary.rejected_uri)}
    assert rejects["dump.txt"]["code"] == "too_many_tokens"
    assert "text tokens need more than 2 chunks" in rejects["dump.txt"]["message"]
    # The shorter one is split as before, and refused for the chunks it really needs.
    assert split_lengths == [len(long_document(20))]
    assert rejects["long.txt"]["message"].startswith("needs ")


def test_the_chunk_count_bound_never_refuses_a_document_that_would_fit(tmp_path: Path) -> None:
    # Documents around the bound, whitespace-heavy ones too: each refused unsplit really
    # needs more chunks than allowed when split.
    (tmp_path / "in").mkdir()
    for n in range(14, 60, 3):
        (tmp_path / "in" / f"p{n}.txt").write_text(long_document(n))
        spaced = ("\n" + " " * 300 + "\n").join(f"Section {i}. {PARAGRAPH}" for i in range(n))
        (tmp_path / "in" / f"s{n}.txt").write_text(spaced)
    job = make_job(tmp_path / "in", chunking={"max_input_tokens": 900, "max_chunks": 2})
    summary = build_shards(job, str(tmp_path / "run"))
    early = 0
    for reject in read_lines(summary.rejected_uri):
        message = reject["message"]
        if "text tokens need more than" in message:
            early += 1
            budget = int(message.split("chunks of at most ")[1].split(";")[0])
            text = (tmp_path / "in" / reject["document_id"]).read_text()
            assert len(split_text(text, model="gpt-4o-mini", max_tokens=budget)) > 2
    assert early >= 10  # the bound does refuse most of the long ones unsplit


# -- the shard writer on its own -------------------------------------------------------------


def row(custom_id: str, tokens: int = 10) -> RequestIndexRow:
    return RequestIndexRow(custom_id, "doc", "uri", "sha", 0, 1, tokens)


def line(custom_id: str, model: str = "gpt-4o-mini") -> bytes:
    return orjson.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/responses", "body": {"model": model}}
    )


def test_shard_writer_for_a_retry_attempt(tmp_path: Path) -> None:
    writer = ShardWriter(
        str(tmp_path), prefix="attempt-2/shard", limits=LimitsSpec(max_requests_per_shard=2)
    )
    for i in range(3):
        writer.add(f"id-{i}", line(f"id-{i}"), row(f"id-{i}"), 10)  # no trailing newline
    infos = writer.close()
    assert [(s.shard_id, s.requests, s.input_tokens) for s in infos] == [
        ("shard-00000", 2, 20),
        ("shard-00001", 1, 10),
    ]
    assert infos[0].uri == str(tmp_path / "attempt-2" / "shard-00000.jsonl")
    assert (infos[0].model, infos[0].endpoint) == ("gpt-4o-mini", "/v1/responses")
    assert (tmp_path / "attempt-2" / "shard-00000.jsonl").read_bytes().count(b"\n") == 2
    assert pl.read_parquet(infos[1].index_uri)["custom_id"].to_list() == ["id-2"]
    assert writer.close() == infos


def test_shard_writer_refuses_duplicates_and_oversized_requests(tmp_path: Path) -> None:
    writer = ShardWriter(str(tmp_path), limits=LimitsSpec(max_shard_tokens=50, max_shard_bytes=500))
    writer.add("a", line("a"), row("a"), 10)
    with pytest.raises(DuplicateCustomIdError):
        writer.add("a", line("a"), row("a"), 10)
    with pytest.raises(RequestTooLargeError) as too_many:
        writer.add("b", line("b"), row("b", 51), 51)
    assert too_many.value.reason == "tokens"
    with pytest.raises(RequestTooLargeError) as too_big:
        writer.add("c", b"x" * 600, row("c"), 10)
    assert too_big.value.reason == "bytes"
    assert [s.requests for s in writer.close()] == [1]


def test_shard_writer_finds_duplicates_in_finished_shards(tmp_path: Path) -> None:
    writer = ShardWriter(str(tmp_path), limits=LimitsSpec(max_requests_per_shard=1))
    for custom_id in ("a", "b", "c"):
        writer.add(custom_id, line(custom_id), row(custom_id, 1), 1)
    assert writer.seen("a") and writer.seen("b") and writer.seen("c") and not writer.seen("d")
    with pytest.raises(DuplicateCustomIdError):
        writer.add("a", line("a"), row("a", 1), 1)
    writer.close()


def test_an_error_leaves_no_partial_shard(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        ShardWriter(str(tmp_path), limits=LimitsSpec(max_requests_per_shard=2)) as writer,
    ):
        for custom_id in ("a", "b", "c"):
            writer.add(custom_id, line(custom_id), row(custom_id, 1), 1)
        raise RuntimeError("boom")
    files = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert files == ["shard-00000.index.parquet", "shard-00000.jsonl"]  # the finished one only


def test_empty_writer_writes_nothing(tmp_path: Path) -> None:
    assert ShardWriter(str(tmp_path), limits=LimitsSpec()).close() == []
    assert not (tmp_path / "shards").exists()


def test_index_row_must_match(tmp_path: Path) -> None:
    from tasks.sharding import ShardingError

    writer = ShardWriter(str(tmp_path), limits=LimitsSpec())
    with pytest.raises(ShardingError, match="index row"):
        writer.add("a", line("a"), row("b"), 10)
    writer.abort()


# -- S3 run folders --------------------------------------------------------------------------


def test_build_into_an_s3_run_folder(s3_bucket: str) -> None:
    job = make_job(SAMPLES, limits={"max_requests_per_shard": 5})
    summary = build_shards(job, f"s3://{s3_bucket}/runs/r1")
    check_consistent(summary)
    assert len(summary.shards) >= 3
    assert summary.shards[1].uri == f"s3://{s3_bucket}/runs/r1/shards/shard-00001.jsonl"
    assert summary.rejected_uri == f"s3://{s3_bucket}/runs/r1/rejected.jsonl"
