"""Tests for tests/support/fake_openai.py, driven by the real ``openai`` client.

Why these exist: every memvault test that talks to "the LLM" trusts this fake.  If its wire
shapes drift from the real API, or its faults do not reach the client the way real faults
do, those tests would pass against a fiction.  So each behaviour is checked end to end
through ``openai.OpenAI`` / ``openai.AsyncOpenAI`` and, where possible, the response JSON is
validated against the SDK's own pydantic models.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Batch, CreateEmbeddingResponse, FileObject
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from tests.support.fake_openai import FakeOpenAI, Fault, Reply, item_to_json, parse_jsonl

REPO_ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "I moved to Lisbon and I drink green tea every morning."}]


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    """A fresh server per test; small embedding dim keeps payloads tiny."""
    with FakeOpenAI(embedding_dim=64) as server:
        yield server


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# ------------------------------------------------------------------------------ chat


def test_chat_completion_usage_service_tier_and_shape(srv: FakeOpenAI) -> None:
    srv.enqueue({"facts": ["Lives in Lisbon", "Drinks green tea"]})
    client = srv.client(max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=USER,
        service_tier="flex",
        response_format={"type": "json_object"},
    )
    # Strict pydantic validation: the body is a genuine ChatCompletion, not just parseable.
    ChatCompletion.model_validate(raw.http_response.json())
    completion = raw.parse()
    assert json.loads(completion.choices[0].message.content or "") == {
        "facts": ["Lives in Lisbon", "Drinks green tea"]
    }
    assert completion.model == "gpt-4o-mini"
    assert completion.service_tier == "flex"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert completion._request_id is not None and completion._request_id.startswith("req_")

    ((method, path, body, headers),) = srv.requests
    assert (method, path) == ("POST", "/v1/chat/completions")
    assert body["response_format"] == {"type": "json_object"}
    assert headers["authorization"] == "Bearer sk-fake-memvault"
    assert srv.count("chat.completions") == 1 and srv.pending == 0


def test_chat_stream_chunks_usage_and_a_keep_alive_connection(srv: FakeOpenAI) -> None:
    """Streamed answers: valid ChatCompletionChunks that join to the content; the usage
    chunk only when asked; the connection is reused afterwards (chunked encoding)."""
    from openai.types.chat import ChatCompletionChunk

    content = json.dumps({"memories": [{"event": "ADD", "text": "Lives in Lisbon"}]})
    srv.enqueue(content, content)
    client = srv.client(max_retries=0)
    for include in (True, False):
        kw: dict[str, Any] = {"stream_options": {"include_usage": True}} if include else {}
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True, **kw)
        )
        for c in chunks:
            ChatCompletionChunk.model_validate(c.model_dump())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == content
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        usage = [c.usage for c in chunks if c.usage is not None]
        if include:
            assert len(usage) == 1 and usage[0].completion_tokens > 0 and not chunks[-1].choices
        else:
            assert usage == []
    records = srv.streams
    assert len(records) == 2 and all(r.done.wait(2) and not r.closed_early for r in records)
    assert records[0].sent == records[0].total


def test_a_stream_closed_early_is_recorded(srv: FakeOpenAI) -> None:
    srv.enqueue(Reply("word " * 500, stream_delay=0.002))
    stream = srv.client(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True
    )
    with stream:
        for i, _ in enumerate(stream):
            if i == 5:
                break
    record = srv.streams[-1]
    assert record.done.wait(5) and record.closed_early and record.sent < record.total // 2


def test_streaming_the_responses_api_is_refused(srv: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="stream"):
        srv.client(max_retries=0).responses.create(model="gpt-4o-mini", input="hi", stream=True)


def test_default_reply_handler_and_service_tier_default(srv: FakeOpenAI) -> None:
    client = srv.client(max_retries=0)
    first = client.chat.completions.create(model="m", messages=USER)
    assert json.loads(first.choices[0].message.content or "") == {"facts": []}
    assert first.service_tier == "default"

    srv.default_reply = {"memory": []}
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == (
        '{"memory": []}'
    )

    srv.chat_handler = lambda req: {"echo": req["messages"][-1]["content"].upper()}
    reply = client.chat.completions.create(model="m", messages=USER).choices[0].message.content
    assert json.loads(reply or "") == {"echo": USER[0]["content"].upper()}

    srv.chat_handler = lambda req: None  # None -> default reply
    reply = client.chat.completions.create(model="m", messages=USER).choices[0].message.content
    assert reply == '{"memory": []}'


def test_queue_beats_handler_and_usage_override(srv: FakeOpenAI) -> None:
    srv.chat_handler = lambda req: "from handler"
    srv.enqueue(Reply("scripted", usage={"prompt_tokens": 1000, "cached_tokens": 768}))
    client = srv.client(max_retries=0)
    first = client.chat.completions.create(model="m", messages=USER)
    second = client.chat.completions.create(model="m", messages=USER)
    assert first.choices[0].message.content == "scripted"
    assert first.usage is not None and first.usage.prompt_tokens == 1000
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 768
    assert second.choices[0].message.content == "from handler"


@pytest.mark.asyncio
async def test_async_chat_completion(srv: FakeOpenAI) -> None:
    srv.enqueue({"facts": ["async"]}, Fault.rate_limit(retry_after=0.01), "second")
    async with srv.async_client(max_retries=1) as client:
        first = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        second = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert json.loads(first.choices[0].message.content or "") == {"facts": ["async"]}
    assert second.choices[0].message.content == "second"
    assert srv.count("chat.completions") == 3


def test_prompt_cache_simulation(srv: FakeOpenAI) -> None:
    """A repeated >= 1024-token prefix reports cached_tokens, in 128-token steps."""
    system = {"role": "system", "content": " ".join(f"rule{i}" for i in range(1500))}
    client = srv.client(max_retries=0)
    cold = client.chat.completions.create(model="m", messages=[system, *USER])
    warm = client.chat.completions.create(
        model="m", messages=[system, {"role": "user", "content": "something else entirely"}]
    )
    assert cold.usage is not None and cold.usage.prompt_tokens_details is not None
    assert warm.usage is not None and warm.usage.prompt_tokens_details is not None
    assert cold.usage.prompt_tokens_details.cached_tokens == 0
    cached = warm.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= 1024 and (cached - 1024) % 128 == 0
    assert cached <= warm.usage.prompt_tokens


# ------------------------------------------------------------------------------ responses


def test_responses_output_text_usage_and_shape(srv: FakeOpenAI) -> None:
    srv.enqueue(Reply.json({"facts": ["Lives in Lisbon"]}, reasoning_content="User moved."))
    client = srv.client(max_retries=0)
    raw = client.responses.with_raw_response.create(
        model="gpt-5-mini",
        instructions="Extract facts as JSON.",
        input=[{"role": "user", "content": USER[0]["content"]}],
        service_tier="priority",
    )
    Response.model_validate(raw.http_response.json())
    response = raw.parse()
    assert json.loads(response.output_text) == {"facts": ["Lives in Lisbon"]}
    assert response.service_tier == "priority"
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens

    srv.responses_handler = lambda req: f"plain: {req['input']}"
    assert client.responses.create(model="m", input="hi").output_text == "plain: hi"
    assert srv.count("responses") == 2


# ------------------------------------------------------------------------------ embeddings


def test_embeddings_deterministic_dimensions_and_similarity(srv: FakeOpenAI) -> None:
    client = srv.client(max_retries=0)
    texts = [
        "the user likes green tea",
        "the user likes black tea",
        "quarterly revenue grew in Berlin",
    ]
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=texts, encoding_format="float"
    )
    CreateEmbeddingResponse.model_validate(raw.http_response.json())
    floats = raw.parse()
    # Default encoding is base64 in the SDK; both must decode to the same vectors.
    b64 = client.embeddings.create(model="text-embedding-3-small", input=texts)
    again = client.embeddings.create(model="text-embedding-3-small", input=texts[0])
    vectors = [d.embedding for d in floats.data]
    assert [len(v) for v in vectors] == [64, 64, 64]  # default dim of this server
    for v, w in zip(vectors, (d.embedding for d in b64.data), strict=True):
        assert max(abs(x - y) for x, y in zip(v, w, strict=True)) < 1e-6
    assert max(abs(x - y) for x, y in zip(vectors[0], again.data[0].embedding, strict=True)) < 1e-6
    assert vectors[0] == pytest.approx(FakeOpenAI.embed(texts[0], 64), abs=1e-6)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-6 for v in vectors)
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[2]) + 0.3
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 0

    small = client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=16)
    assert len(small.data[0].embedding) == 16
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=0)


def test_embedding_faults_are_scoped(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.rate_limit(retry_after=0.01), endpoint="embeddings")
    client = srv.client(max_retries=1)
    client.chat.completions.create(model="m", messages=USER)  # not affected
    client.embeddings.create(model="text-embedding-3-small", input="x")
    assert srv.count("embeddings") == 2 and srv.pending == 0
    with pytest.raises(TypeError):
        srv.enqueue("content makes no sense for embeddings", endpoint="embeddings")


# ------------------------------------------------------------------------------ faults


def test_rate_limit_with_retry_after_is_retried_by_the_client(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.rate_limit(retry_after=0.05), {"facts": ["ok"]})
    client = srv.client(max_retries=2)
    started = time.perf_counter()
    completion = client.chat.completions.create(model="m", messages=USER)
    assert json.loads(completion.choices[0].message.content or "") == {"facts": ["ok"]}
    assert time.perf_counter() - started < 2.0  # honoured 50 ms, not the 0.5 s+ backoff
    requests = srv.requests_for("chat.completions")
    assert len(requests) == 2
    assert requests[1].headers.get("x-stainless-retry-count") == "1"


def test_rate_limit_exhausts_retries(srv: FakeOpenAI) -> None:
    srv.enqueue(*[Fault.rate_limit(retry_after=0.01)] * 3)
    with pytest.raises(openai.RateLimitError) as info:
        srv.client(max_retries=2).chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 429
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "0.01"
    assert srv.count("chat.completions") == 3


def test_rate_limit_mode_every_nth_request(srv: FakeOpenAI) -> None:
    srv.rate_limit(every_n=3, retry_after=0.01)
    client = srv.client(max_retries=2)
    for _ in range(6):
        client.chat.completions.create(model="m", messages=USER)
    # Requests 3 and 6 were refused and retried: 6 calls -> 8 requests, 2 of them 429s.
    assert srv.count("chat.completions") == 8
    assert srv.rate_limited_count == 2
    srv.rate_limit(None)
    client.chat.completions.create(model="m", messages=USER)
    assert srv.rate_limited_count == 2


def test_server_errors(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.server_error(), Fault.server_error(503), Fault.quota_exceeded())
    client = srv.client(max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 500
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 503
    with pytest.raises(openai.RateLimitError) as quota:
        client.chat.completions.create(model="m", messages=USER)
    assert quota.value.code == "insufficient_quota"


def test_server_error_then_success_with_retry(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.server_error(retry_after=0.01), "recovered")
    completion = srv.client(max_retries=1).chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "recovered"


def test_client_timeout(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.timeout(10.0))
    client = srv.client(max_retries=0, timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=USER)
    assert time.perf_counter() - started < 5.0  # the client gave up; it did not wait 10 s
    # The stalled handler does not block the server: the next call is served at once.
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content


def test_timeout_then_retry_succeeds(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.timeout(5.0), "second try")
    client = srv.client(max_retries=1, timeout=0.2)
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == (
        "second try"
    )


def test_malformed_body_raises(srv: FakeOpenAI) -> None:
    """Pins the SDK's real behaviour so memvault's error handling is written against facts.

    Invalid JSON under ``application/json`` surfaces as ``json.JSONDecodeError`` (a
    ``ValueError``), which is NOT an ``openai.APIError``; a non-JSON content type is only
    an ``APIError`` (``APIResponseValidationError``) with ``_strict_response_validation``.
    """
    srv.enqueue(Fault.malformed_body())
    client = srv.client(max_retries=0)
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="m", messages=USER)

    html = "<html><body>502 Bad Gateway</body></html>"
    srv.enqueue(Fault.malformed_body(html, content_type="text/html"))
    strict = srv.client(max_retries=0, _strict_response_validation=True)
    with pytest.raises(openai.APIResponseValidationError) as info:
        strict.chat.completions.create(model="m", messages=USER)
    assert isinstance(info.value, openai.APIError)

    srv.enqueue(Fault.malformed_body(html, content_type="text/html"))
    lenient = client.chat.completions.create(model="m", messages=USER)
    assert lenient == html  # type: ignore[comparison-overlap]  # the SDK returns raw text


def test_disconnect_is_an_api_connection_error(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.disconnect())
    with pytest.raises(openai.APIConnectionError):
        srv.client(max_retries=0).chat.completions.create(model="m", messages=USER)


def test_malformed_content_and_reasoning_shapes(srv: FakeOpenAI) -> None:
    facts = {"facts": ["Lives in Lisbon"]}
    srv.enqueue(
        Fault.malformed_content(),
        Reply.think(facts),
        Reply.fenced(facts),
        Reply.truncated(facts),
        Fault.malformed("content"),
    )
    client = srv.client(max_retries=0)
    contents = []
    finish = []
    for _ in range(5):
        choice = client.chat.completions.create(model="m", messages=USER).choices[0]
        contents.append(choice.message.content or "")
        finish.append(choice.finish_reason)
    prose, think, fenced, truncated, prose2 = contents
    for text in (prose, think, fenced, truncated, prose2):
        with pytest.raises(ValueError):
            json.loads(text)
    assert think.startswith("<think>")
    assert json.loads(think.split("</think>", 1)[1]) == facts
    fence = re.search(r"```json\s*(.*?)```", fenced, re.S)
    assert fence is not None and json.loads(fence.group(1)) == facts
    assert fenced.split("```")[0].strip() and fenced.split("```")[-1].strip()  # prose around
    assert finish == ["stop", "stop", "stop", "length", "stop"]


def test_handler_exception_becomes_500_and_is_recorded(srv: FakeOpenAI) -> None:
    def broken(request: dict[str, Any]) -> str:
        raise RuntimeError("bug in test handler")

    srv.chat_handler = broken
    with pytest.raises(openai.InternalServerError):
        srv.client(max_retries=0).chat.completions.create(model="m", messages=USER)
    (tb,) = srv.handler_errors
    assert "bug in test handler" in tb


def test_models_list_and_unknown_route(srv: FakeOpenAI) -> None:
    client = srv.client(max_retries=0)
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    with pytest.raises(openai.NotFoundError):
        client.post("/nope", cast_to=dict, body={})


# ------------------------------------------------------------------------------ batches


def _chat_lines(n: int, url: str = "/v1/chat/completions") -> bytes:
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": url,
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"fact number {i}"}],
            },
        }
        for i in range(n)
    ]
    return ("\n".join(json.dumps(line) for line in lines) + "\n").encode()


def _poll(client: openai.OpenAI, batch_id: str, limit: int = 10) -> tuple[Batch, list[str]]:
    statuses = []
    for _ in range(limit):
        batch = client.batches.retrieve(batch_id)
        statuses.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch, statuses
    raise AssertionError(f"batch never finished: {statuses}")


def test_batch_lifecycle_survives_server_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    data = _chat_lines(3)
    with FakeOpenAI(state_dir=state) as first:
        client = first.client(max_retries=0)
        raw_file = client.files.with_raw_response.create(
            file=("memories.jsonl", data), purpose="batch"
        )
        FileObject.model_validate(raw_file.http_response.json())
        uploaded = raw_file.parse()
        assert (uploaded.purpose, uploaded.bytes, uploaded.filename) == (
            "batch",
            len(data),
            "memories.jsonl",
        )
        assert client.files.retrieve(uploaded.id).id == uploaded.id
        assert client.files.content(uploaded.id).read() == data  # byte-exact round trip
        created = client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"job": "nightly"},
        )
        assert created.status == "validating"

    def handler(request: dict[str, Any]) -> dict[str, Any]:
        return {"facts": [request["messages"][-1]["content"]]}

    # A new server object (new port, nothing in memory) resumes from state_dir.
    with FakeOpenAI(state_dir=state, chat_handler=handler) as second:
        client = second.client(max_retries=0)
        raw = client.batches.with_raw_response.retrieve(created.id)
        Batch.model_validate(raw.http_response.json())
        batch, statuses = _poll(client, created.id)
        assert [raw.parse().status, *statuses] == ["in_progress", "completed"]
        assert batch.metadata == {"job": "nightly"}
        assert batch.request_counts is not None
        assert (batch.request_counts.total, batch.request_counts.completed) == (3, 3)
        assert batch.request_counts.failed == 0 and batch.error_file_id is None
        assert batch.output_file_id is not None and batch.completed_at is not None
        assert batch.usage is not None and batch.usage.input_tokens > 0

        output = client.files.content(batch.output_file_id).text
        records = {r["custom_id"]: r for r in parse_jsonl(output)}
        assert set(records) == {"req-0", "req-1", "req-2"}
        for i in range(3):
            record = records[f"req-{i}"]
            assert record["error"] is None and record["id"].startswith("batch_req_")
            assert record["response"]["status_code"] == 200
            assert record["response"]["request_id"].startswith("req_")
            completion = ChatCompletion.model_validate(record["response"]["body"])
            assert json.loads(completion.choices[0].message.content or "") == {
                "facts": [f"fact number {i}"]
            }
        assert second.count("batch_line.chat.completions") == 3


def test_batch_partial_failures_go_to_error_file(srv: FakeOpenAI) -> None:
    client = srv.client(max_retries=0)
    uploaded = client.files.create(file=("in.jsonl", _chat_lines(4)), purpose="batch")
    # Batch lines consume the same FIFO; a timeout does not stall a batch, it just answers.
    srv.enqueue(
        "line zero", Fault.server_error(), Fault.rate_limit(retry_after=1), Fault.timeout(9)
    )
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch, _ = _poll(client, created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 2)
    assert batch.output_file_id and batch.error_file_id
    ok = list(parse_jsonl(client.files.content(batch.output_file_id).read()))
    errors = list(parse_jsonl(client.files.content(batch.error_file_id).read()))
    assert [r["custom_id"] for r in ok] == ["req-0", "req-3"]
    assert [r["response"]["body"]["choices"][0]["message"]["content"] for r in ok] == [
        "line zero",
        '{"facts": []}',
    ]
    assert {r["custom_id"]: r["response"]["status_code"] for r in errors} == {
        "req-1": 500,
        "req-2": 429,
    }
    assert all("error" in r["response"]["body"] for r in errors)


def test_batch_validation_failure(srv: FakeOpenAI) -> None:
    client = srv.client(max_retries=0)
    uploaded = client.files.create(
        file=("in.jsonl", _chat_lines(2, url="/v1/embeddings")), purpose="batch"
    )
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch, statuses = _poll(client, created.id)
    assert statuses == ["failed"]
    assert batch.errors is not None and batch.errors.data
    assert batch.errors.data[0].code == "mismatched_endpoint" and batch.errors.data[0].line == 1
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_embeddings_batch_and_time_based_steps(tmp_path: Path) -> None:
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": f"text {i}", "dimensions": 8},
        }
        for i in range(2)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    with FakeOpenAI(batch_step_seconds=0.05, batch_finalizing=True) as server:
        client = server.client(max_retries=0)
        uploaded = client.files.create(file=("e.jsonl", data), purpose="batch")
        created = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
        )
        time.sleep(0.25)  # > 3 steps: validating -> in_progress -> finalizing -> completed
        batch = client.batches.retrieve(created.id)
        assert batch.status == "completed" and batch.output_file_id
        for record in parse_jsonl(client.files.content(batch.output_file_id).read()):
            body = CreateEmbeddingResponse.model_validate(record["response"]["body"])
            assert body.data[0].embedding == pytest.approx(
                FakeOpenAI.embed(f"text {record['custom_id'][1:]}", 8)
            )


def test_batch_cancel(srv: FakeOpenAI) -> None:
    client = srv.client(max_retries=0)
    uploaded = client.files.create(file=("in.jsonl", _chat_lines(1)), purpose="batch")
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(created.id).status == "cancelling"
    assert client.batches.retrieve(created.id).status == "cancelled"
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(created.id)
    assert srv.count("batch_line.chat.completions") == 0


def test_batch_retrieve_faults_and_force_status(srv: FakeOpenAI) -> None:
    client = srv.client(max_retries=1)
    uploaded = client.files.create(file=("in.jsonl", _chat_lines(1)), purpose="batch")
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    srv.enqueue(Fault.rate_limit(retry_after=0.01), endpoint="batches.retrieve")
    assert client.batches.retrieve(created.id).status == "in_progress"
    assert srv.count("batches.retrieve") == 2
    srv.force_batch_status(created.id, "expired")
    assert client.batches.retrieve(created.id).status == "expired"


# ------------------------------------------------------------------------------ processes


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def test_standalone_process_mode(tmp_path: Path) -> None:
    script = tmp_path / "decisions.py"
    script.write_text(
        "def chat_handler(request):\n"
        "    return {'facts': [request['messages'][-1]['content'].upper()]}\n"
    )
    port_file = tmp_path / "port"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fake_openai",
            "--port-file",
            str(port_file),
            "--script",
            str(script),
            "--latency-ms",
            "5",
            "--rate-limit-every",
            "2",
            "--rate-limit-retry-after",
            "0.01",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not write its port file"
            time.sleep(0.02)
        port = int(port_file.read_text())
        base = f"http://127.0.0.1:{port}"
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-test", max_retries=2)
        for word in ("tea", "lisbon"):
            msg = [{"role": "user", "content": word}]
            out = client.chat.completions.create(model="m", messages=msg)
            assert json.loads(out.choices[0].message.content or "") == {"facts": [word.upper()]}
        stats = _get_json(f"{base}/_fake/stats")
        assert stats["counts"]["chat.completions"] == 3 and stats["rate_limited"] == 1

        # Scripting another process over its control plane.
        _post_json(f"{base}/_fake/rate_limit", {"every_n": 0})
        _post_json(f"{base}/_fake/enqueue", {"items": [item_to_json(Fault.server_error(503))]})
        with pytest.raises(openai.APIStatusError) as info:
            client.with_options(max_retries=0).chat.completions.create(model="m", messages=msg)
        assert info.value.status_code == 503
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "server.log").read_text()


# ------------------------------------------------------------------------------ concurrency


@pytest.mark.asyncio
async def test_concurrent_requests_are_served_in_parallel() -> None:
    """50 requests x 200 ms latency: serialized would take 10 s; concurrent well under 3 s."""
    with FakeOpenAI(latency_ms=200) as server:
        async with server.async_client(max_retries=0) as client:
            started = time.perf_counter()
            results = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": f"n{i}"}]
                    )
                    for i in range(50)
                )
            )
            elapsed = time.perf_counter() - started
        assert server.count("chat.completions") == 50
    assert len(results) == 50
    assert elapsed < 3.0, f"requests were serialized: {elapsed:.2f}s"


def test_fifo_is_thread_safe(srv: FakeOpenAI) -> None:
    """200 scripted replies consumed by 8 threads: each exactly once, none lost."""
    expected = [f"reply-{i}" for i in range(200)]
    srv.enqueue(*expected)
    client = srv.client(max_retries=0)
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            out = client.chat.completions.create(model="m", messages=USER)
            with lock:
                seen.append(out.choices[0].message.content or "")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(seen) == sorted(expected)
    assert srv.pending == 0 and len(srv.requests) == 200


# ------------------------------------------------------------------------------ lifecycle


def test_close_is_clean_even_with_a_stalled_request() -> None:
    server = FakeOpenAI().start()
    port = server.port
    server.enqueue(Fault.timeout(30.0))
    client = server.client(max_retries=0, timeout=60)
    errors: list[BaseException] = []

    def stalled_call() -> None:
        try:
            client.chat.completions.create(model="m", messages=USER)
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=stalled_call)
    caller.start()
    assert server.wait_for_requests(1)
    started = time.perf_counter()
    server.close()
    server.close()  # idempotent
    assert time.perf_counter() - started < 5.0  # not the 30 s stall
    caller.join(timeout=5)
    assert not caller.is_alive()
    assert errors and isinstance(errors[0], openai.APIConnectionError)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert not [t for t in threading.enumerate() if t.name == f"fake-openai-{port}"]


def test_restart_keeps_port_and_state() -> None:
    with FakeOpenAI() as server:
        client = server.client(max_retries=0)
        uploaded = client.files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
        url = server.base_url
        server.restart()
        assert server.base_url == url
        assert client.files.retrieve(uploaded.id).bytes == 3
    assert not server.running
