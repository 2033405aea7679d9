"""One LLM client for sync, async and Batch-API use, over the ``openai`` package.

Why the official client: it already does connection pooling, ``Retry-After``-aware
retries on 429/5xx/timeouts and both APIs (chat completions, responses) for any
OpenAI-compatible server. We add: one request shape shared by live calls and
Batch-API lines, usage accounting (prompt / completion / cached tokens) and typed
errors (``LLMError``) that say what happened. With ``LLMSettings.stop_repeats`` a chat
completion is streamed and cut as soon as the answer repeats itself (see ``_Streamed``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from memvault.effects import Call, Op, run_async, run_sync
from memvault.errors import LLMError
from memvault.llm.config import LLMSettings
from memvault.llm.repeats import is_looping

log = logging.getLogger("memvault")

#: Characters per token when a prompt's tokens must be estimated (English prose, BPE).
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class Usage:
    """Token usage of one or more calls.

    ``estimated_calls``: how many of ``calls`` have estimated token counts, because a
    streamed answer ended without the server's usage report (cut when it looped, or a
    server that ignores ``stream_options``, as llama-cpp-python does). Their completion
    tokens are the content chunks received (servers stream about one token a chunk) and
    their prompt tokens the prompt's characters / ``CHARS_PER_TOKEN``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 0
    estimated_calls: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.calls += other.calls
        self.estimated_calls += other.estimated_calls
        return self

    def as_dict(self) -> dict[str, int]:
        """The counts; ``estimated_calls`` only when some are (so exact usage reads as before)."""
        out = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "calls": self.calls,
        }
        if self.estimated_calls:
            out["estimated_calls"] = self.estimated_calls
        return out


@dataclass(slots=True)
class Completion:
    text: str
    usage: Usage = field(default_factory=Usage)
    model: str | None = None


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def usage_from(api: str, usage: Any) -> Usage:
    """Read usage from a chat-completions or responses payload (object or dict)."""
    if usage is None:
        return Usage(calls=1)
    if api == "responses":
        details = _get(usage, "input_tokens_details")
        return Usage(
            int(_get(usage, "input_tokens", 0) or 0),
            int(_get(usage, "output_tokens", 0) or 0),
            int(_get(details, "cached_tokens", 0) or 0),
            1,
        )
    details = _get(usage, "prompt_tokens_details")
    return Usage(
        int(_get(usage, "prompt_tokens", 0) or 0),
        int(_get(usage, "completion_tokens", 0) or 0),
        int(_get(details, "cached_tokens", 0) or 0),
        1,
    )


def completion_from_body(api: str, body: Any) -> Completion:
    """Text + usage from a response body (live object, or a Batch-API JSON dict)."""
    if api == "responses":
        text = _get(body, "output_text")
        if text is None:  # dicts (batch output) carry no convenience property
            parts = []
            for item in _get(body, "output", []) or []:
                for c in _get(item, "content", []) or []:
                    if _get(c, "type") in ("output_text", "text"):
                        parts.append(_get(c, "text", ""))
            text = "".join(parts)
    else:
        choices = _get(body, "choices", []) or []
        if not choices:
            raise LLMError("the LLM response has no choices", raw_output=str(body)[:2000])
        text = _get(_get(choices[0], "message"), "content")
    if text is None:
        raise LLMError("the LLM response has no text content", raw_output=str(body)[:2000])
    return Completion(str(text), usage_from(api, _get(body, "usage")), _get(body, "model"))


class _Streamed:
    """One streamed chat completion being read: its text, usage, and when to stop.

    Why a reader object: the sync and async clients differ only in ``for`` vs
    ``async for``; everything they do with a chunk lives here, once.
    """

    def __init__(self, system: str, user: str, timeout: float) -> None:
        self.prompt_chars = len(system) + len(user)
        #: The whole answer must arrive by then: the HTTP timeout alone only bounds the
        #: gap between chunks, and a looping model that never repeats exactly streams on.
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.parts: list[str] = []
        self.content_chunks = 0
        self.chunks = 0
        self.saw_choice = False
        self.cut = False
        self.usage: Usage | None = None
        self.model: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, chunk: Any) -> bool:
        """Take one chunk; True when the answer loops and reading should stop.

        The check runs only when a chunk holds a ``}``: an item can only complete there,
        so the stop comes right at the first looping item's end, at the cost of one scan
        of the answer so far per item.
        """
        self.chunks += 1
        if time.monotonic() > self.deadline:
            raise LLMError(
                f"the LLM answer took longer than the timeout ({self.timeout:g} s) to stream",
                raw_output=self.text or None,
            )
        self.model = self.model or _get(chunk, "model")
        if _get(chunk, "usage") is not None:
            self.usage = usage_from("chat", _get(chunk, "usage"))
        piece = ""
        for choice in _get(chunk, "choices", []) or []:
            if (_get(choice, "index", 0) or 0) != 0:
                continue
            self.saw_choice = True
            piece = _get(_get(choice, "delta"), "content") or ""
        if not piece:
            return False
        self.parts.append(piece)
        self.content_chunks += 1
        if any(c in piece for c in "}.!?") and is_looping(self.text):
            self.cut = True
            log.info(
                "LLM answer repeats itself: stopped reading after %d chunks",
                self.chunks,
                extra={"cut_after_chunks": self.chunks},  # counted by the write-path benchmark
            )
            return True
        return False

    @property
    def unstreamed(self) -> bool:
        """No event at all: the endpoint (or a proxy) answered with a plain body, which the
        SDK's stream reader skips. The call is then made again without streaming."""
        return self.chunks == 0

    def completion(self) -> Completion:
        """The answer so far; usage from the server, else estimated (``Usage``)."""
        if not self.saw_choice:
            raise LLMError(
                f"the LLM stream had no choices ({self.chunks} chunk(s))", raw_output=self.text
            )
        usage = self.usage  # the server's report comes last: never there when we cut
        if usage is None:
            usage = Usage(
                prompt_tokens=-(-self.prompt_chars // CHARS_PER_TOKEN),
                completion_tokens=self.content_chunks,
                calls=1,
                estimated_calls=1,
            )
        return Completion(self.text, usage, self.model)


def _read(resp: Any, streamed: _Streamed) -> None:
    """Read a stream until it ends or loops; leaving ``with`` closes it, which stops the
    server generating."""
    with resp:
        for chunk in resp:
            if streamed.feed(chunk):
                break


async def _aread(resp: Any, streamed: _Streamed) -> None:
    async with resp:
        async for chunk in resp:
            if streamed.feed(chunk):
                break


#: ``run_async`` wants a pool for blocking effects; ``LLMClient.call`` has none.
_NO_POOL = ThreadPoolExecutor(max_workers=1)


def _transport_errors() -> tuple[type[Exception], ...]:
    """What reading a stream may raise besides ``openai.OpenAIError``.

    openai 2.x lets httpx's errors (a dropped connection, a read timeout mid-stream)
    through while iterating; 3.x wraps them. ``ValueError``: a chunk that is not JSON.
    """
    import openai

    errors: tuple[type[Exception], ...] = (openai.OpenAIError, ValueError)
    try:
        import httpx
    except ImportError:  # pragma: no cover - openai 3.x without httpx 0.x installed
        return errors
    return (*errors, httpx.HTTPError)


class LLMClient:
    """Sync and async access to one configured model."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._sync: Any = None
        self._async: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        #: False once the endpoint refused JSON mode (``response_format``): asked without.
        self.json_supported = True
        #: False once the endpoint refused streaming (``stop_repeats``): asked without.
        self.stream_supported = True

    def _kwargs(self) -> dict[str, Any]:
        s = self.settings
        return {
            "api_key": s.resolved_api_key(),
            "base_url": s.base_url,
            "timeout": s.effective_timeout,
            "max_retries": s.max_retries,
            "default_headers": s.extra_headers or None,
        }

    def sync_client(self) -> Any:
        with self._lock:
            if self._sync is None:
                import openai

                self._sync = openai.OpenAI(**self._kwargs())
            return self._sync

    def async_client(self) -> Any:
        """One AsyncOpenAI per event loop: its connection pool belongs to the loop that
        opened it (``Memory.ingest`` runs a fresh loop per call)."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                import openai

                client = self._async[loop] = openai.AsyncOpenAI(**self._kwargs())
            return client

    def request(self, system: str, user: str) -> dict[str, Any]:
        """The request body (also used verbatim as a Batch-API line body)."""
        s = self.settings
        body: dict[str, Any] = {"model": s.model}
        if s.api == "responses":
            body["instructions"] = system
            body["input"] = user
            if s.max_tokens is not None:
                body["max_output_tokens"] = s.max_tokens
            if s.json_mode:
                body["text"] = {"format": {"type": "json_object"}}
            if s.reasoning_effort:
                body["reasoning"] = {"effort": s.reasoning_effort}
        else:
            body["messages"] = [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ]
            if s.max_tokens is not None:
                body["max_tokens"] = s.max_tokens
            if s.json_mode:
                body["response_format"] = {"type": "json_object"}
            if s.reasoning_effort:
                body["reasoning_effort"] = s.reasoning_effort
        if s.temperature is not None:
            body["temperature"] = s.temperature
        if s.top_p is not None:
            body["top_p"] = s.top_p
        if s.service_tier:
            body["service_tier"] = s.service_tier
        return body

    @property
    def endpoint(self) -> str:
        return "/v1/responses" if self.settings.api == "responses" else "/v1/chat/completions"

    def _wrap(self, e: Exception, streamed: _Streamed | None = None) -> LLMError:
        """A typed error; a stream's text so far is kept as its raw output."""
        raw = streamed.text if streamed is not None and streamed.parts else None
        return LLMError(
            f"LLM call to {self.settings.model!r} failed: {type(e).__name__}: {e}",
            raw_output=raw,
        )

    def _json_refused(self, e: Exception, body: dict[str, Any]) -> bool:
        """Whether a 400/422 is the endpoint refusing JSON mode (then we ask without it).

        Why: JSON mode keeps small models' answers parseable (no fences, no prose), so it is
        on by default, but some OpenAI-compatible servers reject ``response_format``.
        """
        import openai

        if "response_format" not in body and "text" not in body:
            return False
        if not isinstance(e, openai.BadRequestError | openai.UnprocessableEntityError):
            return False
        return any(w in str(e).lower() for w in ("response_format", "json", "format"))

    def _stream_refused(self, e: Exception, body: dict[str, Any]) -> bool:
        """Whether a 400/422 is the endpoint refusing ``stream`` or ``stream_options``."""
        import openai

        if not body.get("stream"):
            return False
        if not isinstance(e, openai.BadRequestError | openai.UnprocessableEntityError):
            return False
        return "stream" in str(e).lower()

    def _without_json(self, body: dict[str, Any]) -> dict[str, Any]:
        self.json_supported = False  # remembered: later calls skip the failing attempt
        return {k: v for k, v in body.items() if k not in ("response_format", "text")}

    def _without_stream(self, body: dict[str, Any]) -> dict[str, Any]:
        self.stream_supported = False  # remembered, like JSON mode
        return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}

    def _fallback(self, e: Exception, body: dict[str, Any]) -> dict[str, Any] | None:
        """The body to ask again with after the endpoint refused part of it, else None.

        Each fallback removes a feature, so a call is retried at most twice. Streaming is
        looked at first: its refusal may well mention the answer's format too.
        """
        if self._stream_refused(e, body):
            return self._without_stream(body)
        if self._json_refused(e, body):
            return self._without_json(body)
        return None

    def _body(self, system: str, user: str) -> dict[str, Any]:
        """The live request: ``request()`` plus what only live calls use (streaming)."""
        body = self.request(system, user)
        if not self.json_supported:
            body = self._without_json(body)
        s = self.settings
        if s.stop_repeats and s.api == "chat" and self.stream_supported:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _reader(self, system: str, user: str) -> _Streamed:
        return _Streamed(system, user, self.settings.effective_timeout)

    def _create(self, client: Any) -> Any:
        api = self.settings.api
        return client.responses.create if api == "responses" else client.chat.completions.create

    def call(self, system: str, user: str) -> Op[Completion]:
        """One completion, as an operation the sync and async drivers both run.

        Written once: each request is a ``Call`` effect (the sync client's ``create`` or
        the async client's, awaited) and so is reading a stream (``for`` or ``async
        for``, :func:`_read` / :func:`_aread`); refusals and transport errors are handled
        here for both.
        """
        body = self._body(system, user)
        streamed: _Streamed | None = None
        try:
            while True:
                resp, body = yield from self._request(body)
                if not body.get("stream"):
                    return self._checked(self.settings.api, resp)
                streamed = self._reader(system, user)
                yield Call(partial(_read, resp, streamed), partial(_aread, resp, streamed))
                if not streamed.unstreamed:
                    return streamed.completion()
                # a plain body to a streamed request: ask again without streaming
                body, streamed = self._without_stream(body), None
        except _transport_errors() as e:  # ValueError: a body that is not JSON
            raise self._wrap(e, streamed) from e

    def _request(self, body: dict[str, Any]) -> Op[tuple[Any, dict[str, Any]]]:
        """Send ``body``; after a refusal of one of its features, once more without it.

        Returns the response and the body that got it.
        """
        import openai

        while True:
            try:
                return (yield self._send(body)), body
            except openai.OpenAIError as e:
                retry = self._fallback(e, body)
                if retry is None:
                    raise
                body = retry

    def _send(self, body: dict[str, Any]) -> Call:
        return Call(
            lambda: self._create(self.sync_client())(**body),
            lambda: self._create(self.async_client())(**body),
        )

    def complete(self, system: str, user: str) -> Completion:
        return run_sync(self.call(system, user))

    async def acomplete(self, system: str, user: str) -> Completion:
        # Every effect of ``call`` is a native async Call: no pool is needed.
        return await run_async(self.call(system, user), _NO_POOL)

    def _checked(self, api: str, resp: Any) -> Completion:
        if isinstance(resp, str | bytes):  # e.g. an HTML error page from a proxy
            raise LLMError(
                "the LLM endpoint returned a non-JSON body",
                raw_output=resp if isinstance(resp, str) else resp.decode(errors="replace"),
            )
        return completion_from_body(api, resp)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
