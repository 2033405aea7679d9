"""A scriptable, stdlib-only fake of the OpenAI HTTP API for memvault's tests.

Why it exists: the house rule is that tests may fake *only* the remote LLM, and must do so
over real HTTP so the genuine ``openai`` client (retries, Retry-After handling, timeouts,
response parsing, multipart uploads) runs end to end.  Mocking the client object would hide
exactly the failure modes a memory library must survive: 429 storms, 5xx, hung sockets,
truncated or non-JSON bodies, reasoning models that wrap their JSON in prose.

Design choices (and why):

* ``http.server.ThreadingHTTPServer`` on ``127.0.0.1:0`` in a daemon thread: no extra
  dependencies, an ephemeral port so parallel test runs never collide, and one thread per
  connection so injected latency does not serialize concurrent requests.
* HTTP/1.1 keep-alive, because that is what the openai client's connection pool uses in
  production; open connections are tracked so ``close()`` really tears everything down.
* Scripting is a FIFO of reactions (``enqueue``) plus a handler callable: FIFO for
  "first call fails, second succeeds" stories, the handler for content that depends on the
  prompt.  Both also drive Batch API lines, so a batch sees the same scripted answers.
* Batch state can live in a ``state_dir`` as JSON files, so a test can restart the server
  (or a different process can pick up) between ``batches.create`` and polling.
* Standalone mode (``python -m tests.support.fake_openai --port-file F``) for tests that run
  memvault in a subprocess.
* ``stream=True`` chat completions are answered as server-sent events, one chunk per
  token-ish piece (plus a usage chunk when ``stream_options.include_usage`` asks), written
  with chunked transfer encoding; each stream is logged in ``streams`` (pieces sent, and
  whether the client hung up early), so a test can prove a client stopped reading.

Usage::

    with FakeOpenAI() as srv:
        srv.enqueue(Fault.rate_limit(retry_after=0.05), {"facts": ["likes tea"]})
        client = srv.client(max_retries=2)
        out = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert srv.count("chat.completions") == 2
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover - typing only; openai is imported lazily at runtime
    import openai

__all__ = [
    "FakeOpenAI",
    "Fault",
    "RecordedRequest",
    "Reply",
    "StreamRecord",
    "embed_text",
    "item_to_json",
    "main",
    "normalize_route",
    "parse_jsonl",
]

logger = logging.getLogger("tests.support.fake_openai")

# Routes whose requests produce model output; un-scoped ``enqueue`` items apply to the two LLM
# routes only, so an embedding call cannot silently eat a reply meant for the LLM.
LLM_ROUTES: frozenset[str] = frozenset({"chat.completions", "responses"})
MODEL_ROUTES: frozenset[str] = LLM_ROUTES | {"embeddings"}
BATCH_ENDPOINTS: dict[str, str] = {
    "/v1/chat/completions": "chat.completions",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
}
BATCH_TERMINAL: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o-mini",
    "gpt-4.1-mini",
    "gpt-5-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)

_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern + r"\Z"), name)
    for method, pattern, name in (
        ("POST", r"/v1/chat/completions", "chat.completions"),
        ("POST", r"/v1/responses", "responses"),
        ("POST", r"/v1/embeddings", "embeddings"),
        ("GET", r"/v1/models", "models.list"),
        ("GET", r"/v1/models/(?P<id>.+)", "models.retrieve"),
        ("POST", r"/v1/files", "files.create"),
        ("GET", r"/v1/files", "files.list"),
        ("GET", r"/v1/files/(?P<id>[^/]+)", "files.retrieve"),
        ("DELETE", r"/v1/files/(?P<id>[^/]+)", "files.delete"),
        ("GET", r"/v1/files/(?P<id>[^/]+)/content", "files.content"),
        ("POST", r"/v1/batches", "batches.create"),
        ("GET", r"/v1/batches", "batches.list"),
        ("GET", r"/v1/batches/(?P<id>[^/]+)", "batches.retrieve"),
        ("POST", r"/v1/batches/(?P<id>[^/]+)/cancel", "batches.cancel"),
    )
)
_ROUTE_NAMES: frozenset[str] = frozenset(name for _, _, name in _ROUTES)
_ROUTE_ALIASES: dict[str, str] = {
    "chat": "chat.completions",
    "/v1/chat/completions": "chat.completions",
    "/chat/completions": "chat.completions",
    "/v1/responses": "responses",
    "/responses": "responses",
    "/v1/embeddings": "embeddings",
    "/embeddings": "embeddings",
}

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# Stream pieces: a token with the whitespace before it, so the pieces join to the text.
_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")
_WORD_RE = re.compile(r"\w+")
# Prompt caching as OpenAI documents it: prefixes of >= 1024 tokens, cached in 128-token steps.
_CACHE_MIN_TOKENS = 1024
_CACHE_STEP = 128
_CACHE_MAX_ENTRIES = 200_000


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _dump(value: Any) -> str:
    """Serialize scripted content: strings pass through, anything else becomes JSON text."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def normalize_route(endpoint: str) -> str:
    """Map "chat", "/v1/chat/completions", "embeddings", "batches.retrieve"... to a route name.

    Why: tests read better with the short names, but batch lines and logs carry URL paths.
    """
    route = _ROUTE_ALIASES.get(endpoint, endpoint)
    if route not in _ROUTE_NAMES:
        raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(_ROUTE_NAMES)}")
    return route


# --------------------------------------------------------------------------------------------
# Scripted reactions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A scripted successful LLM answer, with knobs for the awkward shapes real models emit.

    ``usage`` may override any of ``prompt_tokens``, ``completion_tokens``, ``cached_tokens``,
    ``reasoning_tokens`` so cost-accounting code can be tested against exact numbers.
    """

    content: str | None
    finish_reason: str = "stop"
    reasoning_content: str | None = None
    usage: Mapping[str, int] | None = None
    #: Streamed answers only: seconds between chunks (a model generating at some speed).
    stream_delay: float = 0.0
    #: Answer ``stream=True`` with one plain JSON body, as a server or proxy that ignores
    #: streaming does.
    ignore_stream: bool = False

    @classmethod
    def json(cls, obj: Any, **kwargs: Any) -> Reply:
        """Plain JSON content, exactly what a well-behaved model returns in JSON mode."""
        return cls(_dump(obj), **kwargs)

    @classmethod
    def think(
        cls,
        obj: Any,
        thinking: str = "The user mentioned some preferences. I should extract them as facts.",
        **kwargs: Any,
    ) -> Reply:
        """Reasoning-model output: a ``<think>...</think>`` block before the JSON (DeepSeek/Qwen)."""
        return cls(f"<think>\n{thinking}\n</think>\n\n{_dump(obj)}", **kwargs)

    @classmethod
    def fenced(
        cls,
        obj: Any,
        before: str = "Sure! Here is the JSON you asked for:",
        after: str = "Let me know if you need anything else.",
        **kwargs: Any,
    ) -> Reply:
        """JSON inside a ```json fence with chatty prose around it, as many models answer."""
        body = obj if isinstance(obj, str) else json.dumps(obj, indent=2, ensure_ascii=False)
        return cls(f"{before}\n\n```json\n{body}\n```\n\n{after}", **kwargs)

    @classmethod
    def looping(
        cls, facts: Sequence[str], repeats: Sequence[str] | None = None, items: int = 200, **kw: Any
    ) -> Reply:
        """What a small model does until ``max_tokens`` (issue 16): the facts as ADDs, then
        ADD/UPDATE items of ``repeats`` (default: the facts) over and over, ``items`` items
        in all, cut mid-item with ``finish_reason="length"``. Streamed, that is thousands of
        chunks; ``stream_delay`` paces them."""
        again = list(repeats if repeats is not None else facts)
        parts = [{"event": "ADD", "text": f} for f in facts]
        i = 0
        while len(parts) < items:
            text = again[i % len(again)]
            parts.append(
                {"event": "UPDATE", "id": "1", "text": text}
                if i % 2
                else {"event": "ADD", "text": text}
            )
            i += 1
        body = ", ".join(json.dumps(x, ensure_ascii=False) for x in parts)
        return cls('{"memories": [' + body + ', {"event": "ADD", "te', "length", **kw)

    @classmethod
    def truncated(cls, obj: Any) -> Reply:
        """JSON cut in half with ``finish_reason="length"``: what max_tokens exhaustion looks like."""
        text = _dump(obj)
        return cls(text[: max(1, len(text) // 2)], finish_reason="length")


@dataclass(frozen=True)
class Fault:
    """A scripted failure.  Build with the classmethods; the fields are an implementation detail.

    Kinds: ``http_error`` (any status, optional Retry-After), ``timeout`` (sleep, then answer),
    ``malformed_body`` (200 with invalid JSON), ``malformed_content`` (valid completion whose
    content is prose, not JSON), ``disconnect`` (close the socket without a response),
    ``malformed_stream`` (a streamed answer whose chunk ``body`` is not JSON).
    """

    kind: str
    status: int = 500
    message: str = ""
    error_type: str = "server_error"
    code: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    then: Any = None
    body: str | None = None
    content_type: str = "application/json"

    @classmethod
    def error(
        cls,
        status: int,
        *,
        message: str = "Injected error from FakeOpenAI.",
        error_type: str = "invalid_request_error",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Any OpenAI-shaped HTTP error (400 context_length_exceeded, 401, 404, 503...)."""
        return cls(
            "http_error",
            status=status,
            message=message,
            error_type=error_type,
            code=code,
            retry_after=retry_after,
        )

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0, *, message: str | None = None) -> Fault:
        """HTTP 429 ``rate_limit_exceeded`` with ``Retry-After`` (seconds) and ``retry-after-ms``."""
        return cls.error(
            429,
            message=message
            or "Rate limit reached for requests (injected by FakeOpenAI). Please try again later.",
            error_type="requests",
            code="rate_limit_exceeded",
            retry_after=retry_after,
        )

    @classmethod
    def quota_exceeded(cls) -> Fault:
        """HTTP 429 ``insufficient_quota``: a 429 that retrying will never fix."""
        return cls.error(
            429,
            message="You exceeded your current quota (injected by FakeOpenAI).",
            error_type="insufficient_quota",
            code="insufficient_quota",
        )

    @classmethod
    def server_error(
        cls, status: int = 500, *, retry_after: float | None = None, message: str | None = None
    ) -> Fault:
        """A 5xx (500 by default; 502/503 are also common in the wild)."""
        return cls.error(
            status,
            message=message or "The server had an error while processing your request.",
            error_type="server_error",
            code=None,
            retry_after=retry_after,
        )

    @classmethod
    def timeout(cls, seconds: float = 5.0, then: Any = None) -> Fault:
        """Stall ``seconds`` (longer than the client timeout), then answer with ``then``.

        ``then=None`` means "whatever the handler / default reply would have said".  The stall
        is interrupted by ``close()`` so a timed-out test never delays teardown.
        """
        return cls("timeout", seconds=seconds, then=then)

    @classmethod
    def malformed_body(
        cls, body: str | None = None, *, content_type: str = "application/json"
    ) -> Fault:
        """HTTP 200 whose body is not the JSON it claims to be (default: truncated JSON).

        What the openai client does with it (2.x, verified by the tests): with a JSON
        content type it raises ``json.JSONDecodeError`` -- a ``ValueError``, *not* an
        ``openai.APIError``.  With ``content_type="text/html"`` (a proxy error page) it
        *returns the raw text* instead of a model object, unless the client was built with
        ``_strict_response_validation=True``, which raises ``APIResponseValidationError``.
        """
        return cls("malformed_body", body=body, content_type=content_type)

    @classmethod
    def malformed_content(
        cls, text: str = "Sure! The user likes tea and lives in Paris. Anything else?"
    ) -> Fault:
        """A perfectly valid completion whose *content* is prose instead of the requested JSON."""
        return cls("malformed_content", message=text)

    @classmethod
    def malformed(cls, variant: str = "body") -> Fault:
        """Shorthand: ``variant="body"`` -> :meth:`malformed_body`, ``"content"`` -> content."""
        if variant == "body":
            return cls.malformed_body()
        if variant == "content":
            return cls.malformed_content()
        raise ValueError("variant must be 'body' or 'content'")

    @classmethod
    def malformed_stream(cls, text: str = '{"memories": [{"event": "ADD", "text": "User') -> Fault:
        """A streamed answer: ``text`` in valid chunks, then a chunk cut mid-JSON (what a
        proxy that truncates events sends). Asked without ``stream``: a malformed body."""
        return cls("malformed_stream", message=text)

    @classmethod
    def disconnect(cls) -> Fault:
        """Drop the connection without answering (the client sees a connection error)."""
        return cls("disconnect")


ScriptItem = Reply | Fault
HandlerResult = str | dict[str, Any] | list[Any] | Reply | Fault | None
ChatHandler = Callable[[dict[str, Any]], HandlerResult]
EmbeddingHandler = Callable[[str, int], Sequence[float]]


@dataclass
class StreamRecord:
    """One streamed answer as the server wrote it: ``sent`` of ``total`` events went out;
    ``closed_early``: the client hung up before the end. ``done`` is set when it ended."""

    total: int
    sent: int = 0
    closed_early: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class RecordedRequest(NamedTuple):
    """One HTTP request as the server saw it (multipart uploads are summarized, not stored)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class _Outcome:
    """What the HTTP layer should write back (or ``disconnect``)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    disconnect: bool = False
    #: Server-sent events to write one by one (chunked), instead of ``body``.
    events: list[bytes] | None = None
    event_delay: float = 0.0
    record: StreamRecord | None = None

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Outcome:
        return cls(status, json.dumps(obj).encode(), headers=dict(headers or {}))


def _error_body(
    message: str, error_type: str, code: str | None, param: Any = None
) -> dict[str, Any]:
    """OpenAI's error envelope (the HTTP status travels in the status line, as for real)."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _error(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> _Outcome:
    return _Outcome.json(_error_body(message, error_type, code, param), status=status)


def _fault_outcome(fault: Fault) -> _Outcome:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
        headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
    if fault.status == 429:
        headers["x-ratelimit-remaining-requests"] = "0"
    body = _error_body(fault.message, fault.error_type, fault.code)
    return _Outcome.json(body, status=fault.status, headers=headers)


_MALFORMED_BODY = (
    b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"index": 0, '
    b'"message": {"role": "assistant", "content": "{\\"facts\\": [\\"likes'
)


# --------------------------------------------------------------------------------------------
# Text utilities: token counts, embeddings
# --------------------------------------------------------------------------------------------

_TEXT_KEYS = ("content", "text", "input", "instructions", "arguments", "output")


def _collect_text(value: Any) -> list[str]:
    """Gather the human text of messages / Responses input, ignoring roles, ids and types."""
    if isinstance(value, str):
        return [value]
    out: list[str] = []
    if isinstance(value, list):
        for item in value:
            out.extend(_collect_text(item))
    elif isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                out.extend(_collect_text(value[key]))
    return out


def _tokens(text: str) -> list[str]:
    """Crude tokenizer (words and punctuation): close enough to tiktoken for English prose."""
    return _TOKEN_RE.findall(text)


def embed_text(text: str, dim: int) -> list[float]:
    """Deterministic bag-of-hashed-words unit vector.

    Why this scheme: texts sharing words get positive cosine similarity (so retrieval tests
    behave sensibly), identical texts get identical vectors across processes and runs (blake2b,
    not Python's salted ``hash``), and it costs O(words) regardless of ``dim``.
    """
    if dim <= 0:
        raise ValueError("dim must be positive")
    vec = [0.0] * dim
    words = _WORD_RE.findall(text.lower()) or [f"\x00raw:{text}"]
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=32, person=b"mv-fake").digest()
        for i in range(0, 32, 8):  # four (index, sign) pairs per word
            index = int.from_bytes(digest[i : i + 6], "little") % dim
            vec[index] += 1.0 if digest[i + 7] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vec))
    if (
        norm == 0.0
    ):  # signs cancelled out exactly (possible at tiny dims): still return a unit vector
        vec[int.from_bytes(hashlib.blake2b(text.encode()).digest()[:4], "little") % dim] = 1.0
        return vec
    return [x / norm for x in vec]


# --------------------------------------------------------------------------------------------
# Multipart + JSON helpers
# --------------------------------------------------------------------------------------------


def _parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Byte-exact multipart/form-data parser (the ``cgi`` module is deprecated and gone in 3.13)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError("multipart body without boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        name_m = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        file_m = re.search(r'(?:^|;)\s*filename="([^"]*)"', disposition)
        if not name_m:
            continue
        if file_m:
            files[name_m.group(1)] = (file_m.group(1), content)
        else:
            fields[name_m.group(1)] = content.decode("utf-8")
    return fields, files


def _as_script(value: Any) -> Reply | Fault:
    """Normalize scripted content (str / JSON-able / Reply / Fault) to a Reply or Fault."""
    return value if isinstance(value, Reply | Fault) else Reply(_dump(value))


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    """Strip the fake's private bookkeeping keys (prefixed ``_``) before sending an object."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


# --------------------------------------------------------------------------------------------
# File + batch storage (memory, or JSON files in state_dir so it survives restarts)
# --------------------------------------------------------------------------------------------


class _Store:
    """Files and batches, optionally persisted as JSON so a restarted server can resume.

    Only one live server should use a given ``state_dir`` at a time (no cross-process locks).
    """

    def __init__(self, state_dir: str | os.PathLike[str] | None) -> None:
        self.lock = threading.RLock()
        self._dir = Path(state_dir) if state_dir is not None else None
        self._files: dict[str, dict[str, Any]] = {}
        self._data: dict[str, bytes] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        if self._dir is not None:
            (self._dir / "files").mkdir(parents=True, exist_ok=True)
            (self._dir / "batches").mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a crash mid-write never leaves half a JSON file

    def _read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None

    def put_file(self, meta: dict[str, Any], data: bytes) -> None:
        with self.lock:
            if self._dir is None:
                self._files[meta["id"]] = meta
                self._data[meta["id"]] = data
            else:
                self._write(self._dir / "files" / f"{meta['id']}.data", data)
                self._write(self._dir / "files" / f"{meta['id']}.json", json.dumps(meta).encode())

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        with self.lock:
            if self._dir is None:
                return self._files.get(file_id)
            return self._read_json(self._dir / "files" / f"{file_id}.json")

    def file_data(self, file_id: str) -> bytes | None:
        with self.lock:
            if self._dir is None:
                return self._data.get(file_id)
            try:
                return (self._dir / "files" / f"{file_id}.data").read_bytes()
            except FileNotFoundError:
                return None

    def delete_file(self, file_id: str) -> bool:
        with self.lock:
            if self._dir is None:
                self._data.pop(file_id, None)
                return self._files.pop(file_id, None) is not None
            existed = False
            for suffix in (".json", ".data"):
                try:
                    (self._dir / "files" / f"{file_id}{suffix}").unlink()
                    existed = True
                except FileNotFoundError:
                    pass
            return existed

    def list_files(self) -> list[dict[str, Any]]:
        with self.lock:
            if self._dir is None:
                return list(self._files.values())
            metas = [self._read_json(p) for p in (self._dir / "files").glob("*.json")]
            return sorted((m for m in metas if m), key=lambda m: m["created_at"])

    def put_batch(self, batch: dict[str, Any]) -> None:
        with self.lock:
            if self._dir is None:
                self._batches[batch["id"]] = batch
            else:
                path = self._dir / "batches" / f"{batch['id']}.json"
                self._write(path, json.dumps(batch).encode())

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            if self._dir is None:
                return self._batches.get(batch_id)
            return self._read_json(self._dir / "batches" / f"{batch_id}.json")

    def list_batches(self) -> list[dict[str, Any]]:
        with self.lock:
            if self._dir is None:
                return list(self._batches.values())
            metas = [self._read_json(p) for p in (self._dir / "batches").glob("*.json")]
            return sorted((m for m in metas if m), key=lambda m: m["created_at"])


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer tuned for tests: deep backlog, no reverse DNS, quiet errors."""

    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops SYNs when 50 clients connect at once, and a dropped SYN
    # costs a 1 s retransmit: that would make concurrency tests flaky.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse-DNS lookup that can hang
        # for seconds on machines without network; we know our name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # client went away (e.g. it timed out first): expected
            return
        logger.error("fake_openai handler crashed:\n%s", traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, delegates to ``FakeOpenAI._serve``, writes the outcome."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK
    # adds ~40 ms to every response, which would make latency benchmarks meaningless.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._conn_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._conn_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = fake._serve(method, self.path, headers, body)
        if outcome.disconnect or fake._stop.is_set():
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if outcome.events is not None:
            self._write_events(outcome)
            return
        try:
            self.send_response(outcome.status)
            self.send_header("Content-Type", outcome.content_type)
            self.send_header("Content-Length", str(len(outcome.body)))
            self.send_header("x-request-id", _new_id("req_"))
            for name, value in outcome.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(outcome.body)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) before we answered
            self.close_connection = True

    def _write_events(self, outcome: _Outcome) -> None:
        """Write SSE events as HTTP chunks, pacing them; note a client that hangs up."""
        assert outcome.events is not None
        record = outcome.record or StreamRecord(len(outcome.events))
        fake = self.server.fake
        try:
            self.send_response(outcome.status)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("x-request-id", _new_id("req_"))
            self.end_headers()
            self.wfile.flush()
            for event in outcome.events:
                if fake._sleep(outcome.event_delay):
                    raise OSError("server closing")
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                record.sent += 1
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client closed the stream (or we are shutting down)
            record.closed_early = True
            self.close_connection = True
        finally:
            record.done.set()


# --------------------------------------------------------------------------------------------
# The fake server
# --------------------------------------------------------------------------------------------


class FakeOpenAI:
    """A scriptable OpenAI-compatible server on ``127.0.0.1`` (ephemeral port by default).

    Thread-safe: scripting methods and the request log may be used from any thread while the
    server handles requests concurrently.  Not started until ``start()`` / ``with``.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        latency_ms: float = 0.0,
        default_reply: str | dict[str, Any] | list[Any] | None = None,
        chat_handler: ChatHandler | None = None,
        responses_handler: ChatHandler | None = None,
        embedding_handler: EmbeddingHandler | None = None,
        embedding_dim: int = 1536,
        state_dir: str | os.PathLike[str] | None = None,
        batch_step_polls: int = 1,
        batch_step_seconds: float | None = None,
        batch_finalizing: bool = False,
        shuffle_batch_output: bool = False,
        simulate_prompt_cache: bool = True,
        models: Sequence[str] = DEFAULT_MODELS,
    ) -> None:
        """Configure (but do not start) the server.

        ``chat_handler(request_json)`` computes LLM content for chat *and* Responses calls
        unless ``responses_handler`` is given; returning ``None`` means ``default_reply``.
        ``batch_step_polls``: retrieves per status step (validating -> in_progress ->
        [finalizing ->] completed).  ``batch_step_seconds``: if set, steps advance by wall
        time instead.  ``shuffle_batch_output``: emit output lines in a scrambled order, as
        the real Batch API may, to catch code that assumes input order.
        """
        self.latency_ms = latency_ms
        # A neutral "nothing to extract" answer keeps un-scripted LLM calls harmless.
        self.default_reply: str | dict[str, Any] | list[Any] = (
            {"facts": []} if default_reply is None else default_reply
        )
        self.chat_handler = chat_handler
        self.responses_handler = responses_handler
        self.embedding_handler = embedding_handler
        self.embedding_dim = embedding_dim
        self.batch_step_polls = max(1, batch_step_polls)
        self.batch_step_seconds = batch_step_seconds
        self.batch_finalizing = batch_finalizing
        self.shuffle_batch_output = shuffle_batch_output
        self.simulate_prompt_cache = simulate_prompt_cache
        self.models = list(models)
        self.state_dir = Path(state_dir) if state_dir is not None else None

        self._requested_port = port
        self._store = _Store(state_dir)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conn_cond = threading.Condition()

        self._queue: list[tuple[str | None, ScriptItem]] = []
        self._log: list[RecordedRequest] = []
        self._log_routes: list[str | None] = []
        self._counts: dict[str, int] = {}
        self._handler_errors: list[str] = []
        self._streams: list[StreamRecord] = []
        self._cache_seen: set[str] = set()
        self._rl_every = 0
        self._rl_retry_after: float | None = None
        self._rl_routes: frozenset[str] = MODEL_ROUTES
        self._rl_seen = 0
        self._rl_hits = 0

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeOpenAI:
        """Bind and serve in a daemon thread.  After ``close()`` it rebinds the same port."""
        if self._server is not None:
            return self
        self._stop.clear()
        server = _HTTPServer(("127.0.0.1", self._requested_port), self)
        self._server = server
        self._port = server.server_port
        self._requested_port = self._port  # a restart keeps base_url stable
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-openai-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the listening socket and every open connection.  Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()  # wakes handlers sleeping on latency / Fault.timeout
        server.shutdown()
        server.server_close()
        with self._conn_cond:
            handler_threads = list(self._conns.values())
            for conn in list(self._conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._conn_cond.wait_for(lambda: not self._conns, timeout=2.0)
        deadline = time.monotonic() + 2.0
        for thread in handler_threads:  # so no handler thread outlives close()
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def restart(self) -> FakeOpenAI:
        """Close and start again on the same port (state in ``state_dir``/memory survives)."""
        self.close()
        return self.start()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The bound port (raises if never started)."""
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass as ``base_url`` to ``openai.OpenAI``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def memvault_config(self, path: Any = None, **llm: Any) -> dict[str, Any]:
        """A memvault config whose LLM is this server (``path``: the store file, optional);
        ``llm`` overrides the client settings (no retries and a 5 s timeout by default)."""
        config = {
            "model": "gpt-4o-mini",
            "openai_base_url": self.base_url,
            "api_key": "sk-test",
            "max_retries": 0,
            "timeout": 5,
            **llm,
        }
        out: dict[str, Any] = {"llm": {"provider": "openai", "config": config}}
        if path is not None:
            out["path"] = str(path)
        return out

    @property
    def running(self) -> bool:
        return self._server is not None

    def env(self) -> dict[str, str]:
        """Environment variables pointing an unmodified openai client (or subprocess) here."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "sk-fake-memvault"}

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """A real ``openai.OpenAI`` aimed at this server (kwargs override, e.g. max_retries)."""
        import openai

        kwargs.setdefault("api_key", "sk-fake-memvault")
        return openai.OpenAI(base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """A real ``openai.AsyncOpenAI`` aimed at this server.  Close it (``async with``)."""
        import openai

        kwargs.setdefault("api_key", "sk-fake-memvault")
        return openai.AsyncOpenAI(base_url=self.base_url, **kwargs)

    # ----------------------------------------------------------------- scripting

    def enqueue(self, *items: HandlerResult, endpoint: str | None = None) -> None:
        """Append reactions to the FIFO; each request consumes at most one.

        ``endpoint=None``: consumed by the next chat.completions *or* responses request
        (including batch lines).  Otherwise only by that route, e.g. ``"embeddings"`` or
        ``"batches.retrieve"`` (non-LLM routes accept only HTTP-level faults).
        Items: str / dict / list (content), :class:`Reply`, or :class:`Fault`.
        """
        route = normalize_route(endpoint) if endpoint is not None else None
        converted: list[tuple[str | None, ScriptItem]] = []
        for item in items:
            if item is None:
                raise TypeError("enqueue(None) is meaningless; use the default reply instead")
            script = item if isinstance(item, Reply | Fault) else Reply(_dump(item))
            if route is not None and route not in LLM_ROUTES:
                allowed = {"http_error", "timeout", "malformed_body", "disconnect"}
                if not isinstance(script, Fault) or script.kind not in allowed:
                    raise TypeError(f"route {route!r} only accepts HTTP-level Faults, got {item!r}")
            converted.append((route, script))
        with self._lock:
            self._queue.extend(converted)

    @property
    def pending(self) -> int:
        """Number of scripted items not yet consumed (assert 0 to prove the script ran)."""
        with self._lock:
            return len(self._queue)

    def rate_limit(
        self,
        every_n: int | None = 3,
        retry_after: float | None = 0.05,
        *,
        endpoint: str | None = None,
    ) -> None:
        """Every ``every_n``-th request (to model routes, or just ``endpoint``) gets a 429.

        ``every_n=None`` or ``0`` turns the limiter off.  Counting restarts on each call.
        """
        with self._lock:
            self._rl_every = every_n or 0
            self._rl_retry_after = retry_after
            self._rl_routes = (
                frozenset({normalize_route(endpoint)}) if endpoint is not None else MODEL_ROUTES
            )
            self._rl_seen = 0

    @property
    def rate_limited_count(self) -> int:
        """How many 429s the ``rate_limit`` mode has issued."""
        with self._lock:
            return self._rl_hits

    def reset(self) -> None:
        """Forget scripts, log, counters, limiter and the prompt-cache simulation."""
        with self._lock:
            self._queue.clear()
            self._log.clear()
            self._log_routes.clear()
            self._counts.clear()
            self._handler_errors.clear()
            self._streams.clear()
            self._cache_seen.clear()
            self._rl_every = self._rl_seen = self._rl_hits = 0

    # ----------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every API request so far: ``(method, path, json_body, headers)``."""
        with self._lock:
            return list(self._log)

    def requests_for(self, endpoint: str) -> list[RecordedRequest]:
        """The logged requests that hit one route (e.g. ``"chat.completions"``)."""
        route = normalize_route(endpoint)
        with self._lock:
            return [r for r, name in zip(self._log, self._log_routes, strict=True) if name == route]

    @property
    def counts(self) -> dict[str, int]:
        """Requests per route; batch lines executed count as ``"batch_line.<route>"``."""
        with self._lock:
            return dict(self._counts)

    def count(self, endpoint: str) -> int:
        """Requests seen by one route (aliases like ``"/v1/embeddings"`` accepted)."""
        key = endpoint if endpoint.startswith("batch_line.") else normalize_route(endpoint)
        with self._lock:
            return self._counts.get(key, 0)

    @property
    def handler_errors(self) -> list[str]:
        """Tracebacks from scripted handlers that raised (they surface to clients as 500s)."""
        with self._lock:
            return list(self._handler_errors)

    @property
    def streams(self) -> list[StreamRecord]:
        """Every streamed answer so far, in order (``record.done.wait()`` for its end)."""
        with self._lock:
            return list(self._streams)

    def wait_for_requests(self, n: int, timeout: float = 5.0, endpoint: str | None = None) -> bool:
        """Block until ``n`` requests (optionally to one route) arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = len(self.requests) if endpoint is None else self.count(endpoint)
            if seen >= n:
                return True
            time.sleep(0.005)
        return False

    @staticmethod
    def embed(text: str, dim: int) -> list[float]:
        """The vector the server returns for ``text`` at ``dim`` (for expected values)."""
        return embed_text(text, dim)

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        """Batch object without advancing its state machine (unlike ``batches.retrieve``)."""
        batch = self._store.get_batch(batch_id)
        return _public(batch) if batch else None

    def force_batch_status(self, batch_id: str, status: str) -> None:
        """Jump a batch to ``failed``/``expired``/``cancelled``/... to test recovery paths."""
        with self._store.lock:
            batch = self._store.get_batch(batch_id)
            if batch is None:
                raise KeyError(batch_id)
            batch["status"] = status
            stamp = {
                "failed": "failed_at",
                "expired": "expired_at",
                "cancelled": "cancelled_at",
                "in_progress": "in_progress_at",
                "completed": "completed_at",
            }.get(status)
            if stamp:
                batch[stamp] = int(time.time())
            self._store.put_batch(batch)

    # ----------------------------------------------------------------- internals: plumbing

    def _conn_opened(self, conn: socket.socket) -> None:
        with self._conn_cond:
            self._conns[conn] = threading.current_thread()

    def _conn_closed(self, conn: socket.socket) -> None:
        with self._conn_cond:
            self._conns.pop(conn, None)
            self._conn_cond.notify_all()

    def _sleep(self, seconds: float) -> bool:
        """Interruptible sleep; True if the server is shutting down."""
        return self._stop.wait(seconds) if seconds > 0 else self._stop.is_set()

    def _record(
        self, method: str, path: str, body: Any, headers: dict[str, str], route: str | None
    ) -> None:
        with self._lock:
            self._log.append(RecordedRequest(method, path, body, headers))
            self._log_routes.append(route)
            key = route or "unknown"
            self._counts[key] = self._counts.get(key, 0) + 1

    def _next_item(self, route: str) -> ScriptItem | None:
        with self._lock:
            for i, (target, item) in enumerate(self._queue):
                if target == route or (target is None and route in LLM_ROUTES):
                    del self._queue[i]
                    return item
        return None

    def _limited(self, route: str) -> bool:
        with self._lock:
            if not self._rl_every or route not in self._rl_routes:
                return False
            self._rl_seen += 1
            if self._rl_seen % self._rl_every:
                return False
            self._rl_hits += 1
            return True

    # ----------------------------------------------------------------- internals: dispatch

    def _serve(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Outcome:
        """Handle one HTTP request end to end (called from a handler thread)."""
        try:
            return self._serve_unchecked(method, raw_path, headers, body)
        except _BadRequest as exc:
            return _error(400, exc.message, param=exc.param)
        except Exception:  # a bug in the fake itself: answer 500 and make it visible
            tb = traceback.format_exc()
            with self._lock:
                self._handler_errors.append(tb)
            logger.error("fake_openai internal error:\n%s", tb)
            return _error(
                500, "FakeOpenAI internal error; see handler_errors", error_type="server_error"
            )

    def _serve_unchecked(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> _Outcome:
        path = raw_path.partition("?")[0].rstrip("/") or "/"
        if path.startswith("/_fake/"):
            return self._admin(method, path, body)

        route, params = None, {}
        for m, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match and m == method:
                route, params = name, match.groupdict()
                break

        payload: Any = None
        upload: tuple[dict[str, str], dict[str, tuple[str, bytes]]] | None = None
        bad_json = False
        ctype = headers.get("content-type", "")
        if route == "files.create" and ctype.startswith("multipart/form-data"):
            try:
                upload = _parse_multipart(ctype, body)
                fields, files = upload
                payload = dict(fields) | {
                    name: {"filename": fn, "bytes": len(data)} for name, (fn, data) in files.items()
                }
            except (ValueError, UnicodeDecodeError):
                bad_json = True
        elif body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload, bad_json = body.decode("utf-8", "replace"), True
        self._record(method, raw_path, payload, headers, route)

        if route is None:
            if any(p.match(path) for _, p, _ in _ROUTES):
                return _error(405, f"Method {method} not allowed for {path}")
            return _error(404, f"Unknown request URL: {method} {path}.", code="unknown_url")
        if bad_json:
            return _error(400, "We could not parse the body of your request.")
        if self._sleep(self.latency_ms / 1000.0):
            return _Outcome(disconnect=True)
        if self._limited(route):
            return _fault_outcome(Fault.rate_limit(retry_after=self._rl_retry_after))

        if route in MODEL_ROUTES:  # validate before consuming a scripted item
            if not isinstance(payload, dict):
                return _error(400, "Request body must be a JSON object.")
            if payload.get("stream") and route != "chat.completions":
                return _error(400, f"stream=True is not supported for {route}.", param="stream")
        item = self._next_item(route)
        if route in MODEL_ROUTES:
            assert isinstance(payload, dict)
            status, result = self._model_call(route, payload, item, live=True)
            if isinstance(result, _Outcome):
                return result
            return _Outcome.json(result, status=status)
        # Files / batches / models: only HTTP-level faults (enforced by enqueue).
        if isinstance(item, Fault):
            if item.kind != "timeout":
                return self._http_fault(item) or _error(500, f"bad fault {item.kind}")
            if self._sleep(item.seconds):
                return _Outcome(disconnect=True)
        return self._resource(route, params, payload, upload)

    def _http_fault(self, fault: Fault) -> _Outcome | None:
        """Turn a Fault into a wire outcome; None if it only changes the content."""
        if fault.kind == "http_error":
            return _fault_outcome(fault)
        if fault.kind == "malformed_body":
            raw = _MALFORMED_BODY if fault.body is None else fault.body.encode()
            return _Outcome(200, raw, content_type=fault.content_type)
        if fault.kind == "disconnect":
            return _Outcome(disconnect=True)
        if fault.kind == "malformed_stream":
            return _Outcome(200, _MALFORMED_BODY)
        return None

    def _resolve(
        self, route: str, request: dict[str, Any], item: ScriptItem | None
    ) -> Reply | Fault:
        """Queue item, else handler, else default reply -> a Reply (or a Fault to apply)."""
        if item is not None:
            return item
        handler = self.responses_handler if route == "responses" else None
        handler = handler or self.chat_handler
        value = handler(request) if handler is not None else None
        if value is None:
            return Reply(_dump(self.default_reply))
        if isinstance(value, Fault) and value.kind == "timeout" and value.then is None:
            return Fault.timeout(value.seconds, then=self.default_reply)  # avoid re-asking
        return _as_script(value)

    def _model_call(
        self, route: str, request: dict[str, Any], item: ScriptItem | None, *, live: bool
    ) -> tuple[int, dict[str, Any] | _Outcome]:
        """Produce (status, body) for a model route; shared by HTTP and Batch execution.

        For live HTTP calls a Fault may come back as an ``_Outcome``; for batch lines it comes
        back as an OpenAI error body with its status code.
        """
        try:
            script: ScriptItem | None = (
                item if route == "embeddings" else self._resolve(route, request, item)
            )
            while isinstance(script, Fault) and script.kind == "timeout":
                if live and self._sleep(script.seconds):
                    return 0, _Outcome(disconnect=True)
                if script.then is not None:
                    script = _as_script(script.then)
                else:  # "then whatever the handler says" (handler timeouts carry a then)
                    script = None if route == "embeddings" else self._resolve(route, request, None)
            if isinstance(script, Fault) and script.kind == "malformed_content":
                script = Reply(script.message)
            streamed = live and bool(request.get("stream"))
            if isinstance(script, Fault) and script.kind == "malformed_stream" and streamed:
                return 200, self._events(request, _PIECE_RE.findall(script.message), broken=True)
            if isinstance(script, Fault):
                if live:
                    outcome = self._http_fault(script) or _error(500, f"bad fault {script.kind}")
                    return outcome.status, outcome
                status = script.status if script.kind == "http_error" else 500
                message = script.message or f"Injected {script.kind} fault."
                return status, _error_body(message, script.error_type, script.code)
            if route == "embeddings":
                return 200, self._embeddings(request)
            reply = script if isinstance(script, Reply) else Reply(_dump(self.default_reply))
            if route == "responses":
                return 200, self._responses_body(request, reply)
            body = self._chat_body(request, reply)
            if live and request.get("stream") and not reply.ignore_stream:
                return 200, self._chat_stream(request, body, reply)
            return 200, body
        except _BadRequest:
            raise
        except Exception:  # a buggy test handler must be visible, not a silent retry loop
            tb = traceback.format_exc()
            with self._lock:
                self._handler_errors.append(tb)
            logger.error("fake_openai scripted handler raised:\n%s", tb)
            fault = Fault.server_error(message="FakeOpenAI handler raised; see handler_errors")
            if live:
                return 500, _fault_outcome(fault)
            return 500, _error_body(fault.message, fault.error_type, None)

    # ----------------------------------------------------------------- model bodies

    def _prompt_usage(self, model: str, texts: list[str]) -> tuple[int, int]:
        """(prompt_tokens, cached_tokens), simulating OpenAI's automatic prefix caching."""
        tokens = _tokens("\n".join(texts))
        if not self.simulate_prompt_cache or len(tokens) < _CACHE_MIN_TOKENS:
            return len(tokens), 0
        digest = hashlib.sha1(model.encode())
        boundaries: list[tuple[int, str]] = []
        for i, tok in enumerate(tokens, start=1):
            digest.update(tok.encode() + b"\x00")
            if i >= _CACHE_MIN_TOKENS and (i - _CACHE_MIN_TOKENS) % _CACHE_STEP == 0:
                boundaries.append((i, digest.hexdigest()))
        with self._lock:
            cached = max((n for n, h in boundaries if h in self._cache_seen), default=0)
            if len(self._cache_seen) > _CACHE_MAX_ENTRIES:
                self._cache_seen.clear()
            self._cache_seen.update(h for _, h in boundaries)
        return len(tokens), cached

    def _usage_numbers(
        self, request: dict[str, Any], texts: list[str], reply: Reply
    ) -> dict[str, int]:
        prompt, cached = self._prompt_usage(str(request.get("model", "")), texts)
        reasoning = len(_tokens(reply.reasoning_content or ""))
        completion = len(_tokens(reply.content or "")) + reasoning
        numbers = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cached_tokens": cached,
            "reasoning_tokens": reasoning,
        }
        numbers.update(reply.usage or {})
        return numbers

    def _chat_body(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        messages = request.get("messages") or []
        u = self._usage_numbers(request, _collect_text(messages), reply)
        if "prompt_tokens" not in (reply.usage or {}):
            u["prompt_tokens"] += 3 * len(messages)  # per-message framing, as tiktoken counts it
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content,
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning_content is not None:
            message["reasoning_content"] = reply.reasoning_content
        n = int(request.get("n") or 1)
        return {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "gpt-fake"),
            "choices": [
                {
                    "index": i,
                    "message": dict(message),
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": u["prompt_tokens"],
                "completion_tokens": u["completion_tokens"] * n,
                "total_tokens": u["prompt_tokens"] + u["completion_tokens"] * n,
                "prompt_tokens_details": {
                    "cached_tokens": u["cached_tokens"],
                    "cache_write_tokens": 0,
                    "audio_tokens": 0,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": u["reasoning_tokens"] * n,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": request.get("service_tier") or "default",
            "system_fingerprint": "fp_memvault_fake",
        }

    def _chat_stream(self, request: dict[str, Any], body: dict[str, Any], reply: Reply) -> _Outcome:
        """``body`` as a stream: the content in token-ish pieces, as a server streams it."""
        content = reply.content or ""
        return self._events(
            request,
            _PIECE_RE.findall(content),
            finish_reason=reply.finish_reason,
            usage=body["usage"],
            delay=reply.stream_delay,
        )

    def _events(
        self,
        request: dict[str, Any],
        pieces: list[str],
        *,
        finish_reason: str = "stop",
        usage: dict[str, Any] | None = None,
        delay: float = 0.0,
        broken: bool = False,
    ) -> _Outcome:
        """SSE events of a chat completion: a role chunk, one chunk per piece, the finish
        chunk, the usage chunk when ``stream_options.include_usage`` asks, ``[DONE]``.
        ``broken``: the finish chunk is cut mid-JSON instead."""
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model", "gpt-fake"),
            "system_fingerprint": "fp_memvault_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                out["usage"] = None
            return out

        data = [chunk({"role": "assistant", "content": "", "refusal": None})]
        data += [chunk({"content": piece}) for piece in pieces]
        events = [b"data: " + json.dumps(d).encode() + b"\n\n" for d in data]
        if broken:
            events.append(b'data: {"id": "chatcmpl-broken", "choices": [{"index": 0, "del\n\n')
        else:
            events.append(b"data: " + json.dumps(chunk({}, finish_reason)).encode() + b"\n\n")
        if include_usage and usage is not None and not broken:
            events.append(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode())
            events[-1] += b"\n\n"
        events.append(b"data: [DONE]\n\n")
        record = StreamRecord(len(events))
        with self._lock:
            self._streams.append(record)
        return _Outcome(200, events=events, event_delay=delay, record=record)

    def _responses_body(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        texts = _collect_text(request.get("instructions") or "") + _collect_text(
            request.get("input") or ""
        )
        u = self._usage_numbers(request, texts, reply)
        output: list[dict[str, Any]] = []
        if reply.reasoning_content is not None:
            output.append(
                {
                    "type": "reasoning",
                    "id": _new_id("rs_"),
                    "summary": [{"type": "summary_text", "text": reply.reasoning_content}],
                }
            )
        output.append(
            {
                "type": "message",
                "id": _new_id("msg_"),
                "status": "completed" if reply.finish_reason == "stop" else "incomplete",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": reply.content or "",
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        )
        now = time.time()
        incomplete = reply.finish_reason == "length"
        return {
            "id": _new_id("resp_"),
            "object": "response",
            "created_at": int(now),
            "completed_at": None if incomplete else int(now),
            "status": "incomplete" if incomplete else "completed",
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "metadata": request.get("metadata") or {},
            "model": request.get("model", "gpt-fake"),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": request.get("service_tier") or "default",
            "store": request.get("store", True),
            "temperature": request.get("temperature", 1.0),
            "text": request.get("text") or {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "user": None,
            "usage": {
                "input_tokens": u["prompt_tokens"],
                # cache_write_tokens is required by openai>=2.5x's pydantic model.
                "input_tokens_details": {
                    "cached_tokens": u["cached_tokens"],
                    "cache_write_tokens": 0,
                },
                "output_tokens": u["completion_tokens"],
                "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
                "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
            },
        }

    def _embeddings(self, request: dict[str, Any]) -> dict[str, Any]:
        raw = request.get("input")
        if isinstance(raw, str):
            texts = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            texts = [" ".join(map(str, raw))]  # a single pre-tokenized input
        elif isinstance(raw, list) and raw:
            texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw]
        else:
            raise _BadRequest("'input' must be a non-empty string or array", "input")
        dim = request.get("dimensions")
        dim = self.embedding_dim if dim is None else dim
        if not isinstance(dim, int) or dim <= 0:
            raise _BadRequest("'dimensions' must be a positive integer", "dimensions")
        as_base64 = request.get("encoding_format") == "base64"
        handler = self.embedding_handler or embed_text
        data = []
        for i, text in enumerate(texts):
            vec = [float(x) for x in handler(text, dim)]
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if as_base64 else vec
            )
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(len(_tokens(t)) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": request.get("model", "text-embedding-3-small"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    # ----------------------------------------------------------------- files, batches, models

    def _resource(
        self,
        route: str,
        params: dict[str, str],
        payload: Any,
        upload: tuple[dict[str, str], dict[str, tuple[str, bytes]]] | None,
    ) -> _Outcome:
        now = int(time.time())
        if route == "models.list":
            return _Outcome.json({"object": "list", "data": [self._model(m) for m in self.models]})
        if route == "models.retrieve":
            if params["id"] not in self.models:
                return _error(
                    404,
                    f"The model '{params['id']}' does not exist",
                    code="model_not_found",
                    param="model",
                )
            return _Outcome.json(self._model(params["id"]))
        if route == "files.create":
            if upload is None or "file" not in upload[1]:
                return _error(400, "Expected a multipart upload with a 'file' part.", param="file")
            fields, files = upload
            filename, data = files["file"]
            meta = self._file_meta(filename, data, fields.get("purpose", "batch"))
            self._store.put_file(meta, data)
            return _Outcome.json(meta)
        if route == "files.list":
            files_ = self._store.list_files()
            return _Outcome.json(
                {
                    "object": "list",
                    "data": files_,
                    "has_more": False,
                    "first_id": files_[0]["id"] if files_ else None,
                    "last_id": files_[-1]["id"] if files_ else None,
                }
            )
        if route in ("files.retrieve", "files.content", "files.delete"):
            meta = self._store.get_file(params["id"])
            if meta is None:
                return _error(404, f"No such File object: {params['id']}", param="id")
            if route == "files.retrieve":
                return _Outcome.json(meta)
            if route == "files.delete":
                self._store.delete_file(params["id"])
                return _Outcome.json({"id": params["id"], "object": "file", "deleted": True})
            data = self._store.file_data(params["id"]) or b""
            return _Outcome(200, data, content_type="application/octet-stream")
        if route == "batches.create":
            return self._create_batch(payload if isinstance(payload, dict) else {}, now)
        if route == "batches.list":
            batches = [_public(b) for b in self._store.list_batches()]
            return _Outcome.json(
                {
                    "object": "list",
                    "data": batches,
                    "has_more": False,
                    "first_id": batches[0]["id"] if batches else None,
                    "last_id": batches[-1]["id"] if batches else None,
                }
            )
        if route in ("batches.retrieve", "batches.cancel"):
            with self._store.lock:
                batch = self._store.get_batch(params["id"])
                if batch is None:
                    return _error(404, f"No batch found with id '{params['id']}'.", param="id")
                if route == "batches.retrieve":
                    self._advance(batch)
                elif batch["status"] in BATCH_TERMINAL:
                    return _error(409, f"Cannot cancel a batch with status '{batch['status']}'.")
                elif batch["status"] != "cancelling":
                    batch["status"], batch["cancelling_at"] = "cancelling", now
                self._store.put_batch(batch)
                return _Outcome.json(_public(batch))
        return _error(404, f"Unhandled route {route}")  # pragma: no cover - table is exhaustive

    def _model(self, model_id: str) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "memvault-fake",
        }

    def _file_meta(self, filename: str, data: bytes, purpose: str) -> dict[str, Any]:
        return {
            "id": _new_id("file-"),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }

    def _create_batch(self, req: dict[str, Any], now: int) -> _Outcome:
        file_id = req.get("input_file_id")
        endpoint = req.get("endpoint")
        if endpoint not in BATCH_ENDPOINTS:
            return _error(
                400, f"Unsupported endpoint {endpoint!r} for FakeOpenAI batches.", param="endpoint"
            )
        if req.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'.", param="completion_window")
        if not isinstance(file_id, str) or self._store.get_file(file_id) is None:
            return _error(
                400,
                f"Invalid input_file_id {file_id!r}: no such file.",
                param="input_file_id",
                code="invalid_file",
            )
        batch: dict[str, Any] = {
            "id": _new_id("batch_"),
            "object": "batch",
            "endpoint": endpoint,
            "model": None,
            "errors": None,
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": req.get("metadata"),
            "usage": None,
            "_polls": 0,
            "_step_at": time.time(),
        }
        self._store.put_batch(batch)
        return _Outcome.json(_public(batch))

    def _advance(self, batch: dict[str, Any]) -> None:
        """One retrieve = one poll; move the state machine by polls or by elapsed time."""
        now = time.time()
        if batch["status"] == "cancelling":
            batch["status"], batch["cancelled_at"] = "cancelled", int(now)
            return
        if batch["status"] in BATCH_TERMINAL:
            return
        if self.batch_step_seconds is None:
            batch["_polls"] += 1
            if batch["_polls"] >= self.batch_step_polls:
                batch["_polls"] = 0
                self._step(batch)
            return
        while (
            batch["status"] not in BATCH_TERMINAL
            and now - batch["_step_at"] >= self.batch_step_seconds
        ):
            batch["_step_at"] += self.batch_step_seconds
            self._step(batch)

    def _step(self, batch: dict[str, Any]) -> None:
        now = int(time.time())
        status = batch["status"]
        if status == "validating":
            lines, errors = self._validate_batch(batch)
            if errors:
                batch.update(
                    status="failed", failed_at=now, errors={"object": "list", "data": errors[:50]}
                )
            else:
                batch.update(status="in_progress", in_progress_at=now)
                batch["request_counts"]["total"] = len(lines)
        elif status == "in_progress":
            self._execute_batch(batch)
            if self.batch_finalizing:
                batch.update(status="finalizing", finalizing_at=now)
            else:
                batch.update(status="completed", finalizing_at=now, completed_at=now)
        elif status == "finalizing":
            batch.update(status="completed", completed_at=now)

    def _batch_lines(self, batch: dict[str, Any]) -> list[Any]:
        data = self._store.file_data(batch["input_file_id"]) or b""
        out: list[Any] = []
        for raw in data.decode("utf-8", "replace").splitlines():
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append(raw)  # keep the broken line so validation reports it by number
        return out

    def _validate_batch(self, batch: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]]]:
        """Mirror the real API: any invalid line fails the whole batch during validation."""
        lines = self._batch_lines(batch)
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()

        def err(line: int, code: str, message: str, param: str | None = None) -> None:
            errors.append({"code": code, "message": message, "param": param, "line": line})

        if not lines:
            err(0, "empty_file", "The input file is empty.")
        for n, line in enumerate(lines, start=1):
            if not isinstance(line, dict):
                err(n, "invalid_json_line", f"Line {n} is not a valid JSON object.")
                continue
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str):
                err(n, "missing_required_parameter", "Missing custom_id.", "custom_id")
            elif custom_id in seen:
                err(n, "duplicate_custom_id", f"Duplicate custom_id {custom_id!r}.", "custom_id")
            else:
                seen.add(custom_id)
            if line.get("url") != batch["endpoint"]:
                err(
                    n,
                    "mismatched_endpoint",
                    f"Line url {line.get('url')!r} does not match batch endpoint.",
                    "url",
                )
            if str(line.get("method", "")).upper() != "POST":
                err(n, "invalid_method", "Batch lines must use method POST.", "method")
            if not isinstance(line.get("body"), dict):
                err(n, "missing_required_parameter", "Missing or invalid body.", "body")
        return lines, errors

    def _execute_batch(self, batch: dict[str, Any]) -> None:
        """Run every line through the live handlers (so scripts apply) and write result files."""
        route = BATCH_ENDPOINTS[batch["endpoint"]]
        ok_lines: list[str] = []
        err_lines: list[str] = []
        usage = {"input": 0, "cached": 0, "output": 0, "reasoning": 0}
        models: set[str] = set()
        for line in self._batch_lines(batch):
            with self._lock:
                key = f"batch_line.{route}"
                self._counts[key] = self._counts.get(key, 0) + 1
            body = line["body"]
            models.add(str(body.get("model", "")))
            item = self._next_item(route)  # scripted faults/replies apply to lines too
            try:
                status, result = self._model_call(route, body, item, live=False)
            except _BadRequest as exc:
                status, result = (
                    400,
                    _error_body(exc.message, "invalid_request_error", None, exc.param),
                )
            assert isinstance(result, dict)
            record = {
                "id": _new_id("batch_req_"),
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": _new_id("req_"), "body": result},
                "error": None,
            }
            (ok_lines if status == 200 else err_lines).append(json.dumps(record))
            if status == 200:
                u = result.get("usage") or {}
                usage["input"] += u.get("prompt_tokens", u.get("input_tokens", 0))
                usage["output"] += u.get("completion_tokens", u.get("output_tokens", 0))
                details = u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}
                usage["cached"] += details.get("cached_tokens", 0)
                out_details = (
                    u.get("completion_tokens_details") or u.get("output_tokens_details") or {}
                )
                usage["reasoning"] += out_details.get("reasoning_tokens", 0)
        if self.shuffle_batch_output:
            random.Random(batch["id"]).shuffle(ok_lines)
        for lines, suffix, attr in (
            (ok_lines, "output", "output_file_id"),
            (err_lines, "error", "error_file_id"),
        ):
            if lines:
                data = ("\n".join(lines) + "\n").encode()
                meta = self._file_meta(f"{batch['id']}_{suffix}.jsonl", data, "batch_output")
                self._store.put_file(meta, data)
                batch[attr] = meta["id"]
        batch["request_counts"] = {
            "total": len(ok_lines) + len(err_lines),
            "completed": len(ok_lines),
            "failed": len(err_lines),
        }
        batch["model"] = next(iter(models)) if len(models) == 1 else batch.get("model")
        batch["usage"] = {
            "input_tokens": usage["input"],
            "input_tokens_details": {"cached_tokens": usage["cached"]},
            "output_tokens": usage["output"],
            "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
            "total_tokens": usage["input"] + usage["output"],
        }

    # ----------------------------------------------------------------- cross-process admin

    def _admin(self, method: str, path: str, body: bytes) -> _Outcome:
        """Tiny control plane for tests driving a server in another process.

        GET /_fake/stats, POST /_fake/reset, POST /_fake/enqueue {"endpoint", "items": [...]},
        POST /_fake/rate_limit {"every_n", "retry_after", "endpoint"}.  Items are
        ``{"content": ...}``, ``{"reply": {Reply fields}}`` or ``{"fault": {Fault fields}}``.
        """
        try:
            req = json.loads(body) if body else {}
            if method == "GET" and path == "/_fake/stats":
                return _Outcome.json(
                    {
                        "counts": self.counts,
                        "requests": len(self.requests),
                        "pending": self.pending,
                        "rate_limited": self.rate_limited_count,
                        "handler_errors": self.handler_errors,
                    }
                )
            if method == "POST" and path == "/_fake/reset":
                self.reset()
                return _Outcome.json({"ok": True})
            if method == "POST" and path == "/_fake/enqueue":
                self.enqueue(
                    *(_item_from_json(i) for i in req.get("items", [])),
                    endpoint=req.get("endpoint"),
                )
                return _Outcome.json({"ok": True, "pending": self.pending})
            if method == "POST" and path == "/_fake/rate_limit":
                self.rate_limit(
                    req.get("every_n"), req.get("retry_after", 0.05), endpoint=req.get("endpoint")
                )
                return _Outcome.json({"ok": True})
        except (ValueError, TypeError, KeyError) as exc:
            return _error(400, f"bad admin request: {exc}")
        return _error(404, f"Unknown admin URL {method} {path}")


class _BadRequest(Exception):
    """A request the real API would reject with 400 (raised inside body builders)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param


def _item_from_json(item: Mapping[str, Any]) -> HandlerResult:
    if "fault" in item:
        return Fault(**item["fault"])
    if "reply" in item:
        return Reply(**item["reply"])
    return item["content"]


def item_to_json(item: Reply | Fault | str | dict[str, Any] | list[Any]) -> dict[str, Any]:
    """Serialize a script item for ``POST /_fake/enqueue`` on a server in another process."""
    if isinstance(item, Fault):
        return {"fault": asdict(item)}
    if isinstance(item, Reply):
        return {"reply": {**asdict(item), "usage": dict(item.usage) if item.usage else None}}
    return {"content": item}


# --------------------------------------------------------------------------------------------
# Standalone process mode
# --------------------------------------------------------------------------------------------


def _load_script(spec: str) -> ModuleType:
    """Load ``--script``: a .py file path, or a dotted module name importable from sys.path."""
    path = Path(spec)
    if path.suffix == ".py" or path.exists():
        module_spec = importlib.util.spec_from_file_location(
            f"_fake_openai_script_{path.stem}", path
        )
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load script {spec!r}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def _write_port_file(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, path)  # readers never see an empty or partial file


def main(argv: Sequence[str] | None = None) -> int:
    """Run a FakeOpenAI in this process until SIGTERM/SIGINT.

    The script module (``--script``) may define ``chat_handler(request)``,
    ``responses_handler(request)``, ``embedding_handler(text, dim)``, ``DEFAULT_REPLY`` and
    ``configure(server)`` (called before serving, e.g. to enqueue faults).
    """
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_openai",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--port-file",
        type=Path,
        required=True,
        help="write the bound port here (atomically) once serving",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: ephemeral)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit-every", type=int, default=0, metavar="N")
    parser.add_argument("--rate-limit-retry-after", type=float, default=0.05, metavar="S")
    parser.add_argument("--script", help="a .py file or module name providing chat_handler()")
    parser.add_argument("--state-dir", type=Path, help="persist files/batches here")
    parser.add_argument("--embedding-dim", type=int, default=1536)
    parser.add_argument("--batch-step-polls", type=int, default=1)
    parser.add_argument("--batch-step-seconds", type=float, default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="fake_openai %(levelname)s %(message)s",
    )

    # A stale file from an earlier run must not be mistaken for ours.
    with contextlib.suppress(FileNotFoundError):
        args.port_file.unlink()
    srv = FakeOpenAI(
        port=args.port,
        latency_ms=args.latency_ms,
        state_dir=args.state_dir,
        embedding_dim=args.embedding_dim,
        batch_step_polls=args.batch_step_polls,
        batch_step_seconds=args.batch_step_seconds,
    )
    if args.script:
        module = _load_script(args.script)
        srv.chat_handler = getattr(module, "chat_handler", None)
        srv.responses_handler = getattr(module, "responses_handler", None)
        srv.embedding_handler = getattr(module, "embedding_handler", None)
        if hasattr(module, "DEFAULT_REPLY"):
            srv.default_reply = module.DEFAULT_REPLY
        if hasattr(module, "configure"):
            module.configure(srv)
    if args.rate_limit_every:
        srv.rate_limit(args.rate_limit_every, args.rate_limit_retry_after)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    srv.start()
    try:
        _write_port_file(args.port_file, srv.port)
        print(
            f"fake_openai serving {srv.base_url} (pid {os.getpid()})", file=sys.stderr, flush=True
        )
        while not stop.wait(0.2):
            pass
    finally:
        srv.close()
    return 0


def parse_jsonl(data: bytes | str) -> Iterator[dict[str, Any]]:
    """Parse JSONL (batch output / error files); blank lines are skipped."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


if __name__ == "__main__":
    raise SystemExit(main())
