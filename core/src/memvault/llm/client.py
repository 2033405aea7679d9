"""One LLM client for sync, async and Batch-API use, over the ``openai`` package.

Why the official client: it already does connection pooling, ``Retry-After``-aware
retries on 429/5xx/timeouts and both APIs (chat completions, responses) for any
OpenAI-compatible server. We add: one request shape shared by live calls and
Batch-API lines, usage accounting (prompt / completion / cached tokens) and typed
errors (``LLMError``) that say what happened.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from memvault.effects import Call
from memvault.errors import LLMError
from memvault.llm.config import LLMSettings


@dataclass(slots=True)
class Usage:
    """Token usage of one or more calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.calls += other.calls
        return self

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "calls": self.calls,
        }


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


class LLMClient:
    """Sync and async access to one configured model."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._sync: Any = None
        self._async: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        #: False once the endpoint refused JSON mode (``response_format``): asked without.
        self.json_supported = True

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

    def _wrap(self, e: Exception) -> LLMError:
        return LLMError(f"LLM call to {self.settings.model!r} failed: {type(e).__name__}: {e}")

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

    def _without_json(self, body: dict[str, Any]) -> dict[str, Any]:
        self.json_supported = False  # remembered: later calls skip the failing attempt
        return {k: v for k, v in body.items() if k not in ("response_format", "text")}

    def _body(self, system: str, user: str) -> dict[str, Any]:
        body = self.request(system, user)
        return body if self.json_supported else self._without_json(body)

    def complete(self, system: str, user: str) -> Completion:
        import openai

        body = self._body(system, user)
        api = self.settings.api
        try:
            client = self.sync_client()
            create = (
                client.responses.create if api == "responses" else client.chat.completions.create
            )
            try:
                resp = create(**body)
            except openai.OpenAIError as e:
                if not self._json_refused(e, body):
                    raise
                resp = create(**self._without_json(body))
        except (openai.OpenAIError, ValueError) as e:  # ValueError: a body that is not JSON
            raise self._wrap(e) from e
        return self._checked(api, resp)

    def _checked(self, api: str, resp: Any) -> Completion:
        if isinstance(resp, str | bytes):  # e.g. an HTML error page from a proxy
            raise LLMError(
                "the LLM endpoint returned a non-JSON body",
                raw_output=resp if isinstance(resp, str) else resp.decode(errors="replace"),
            )
        return completion_from_body(api, resp)

    async def acomplete(self, system: str, user: str) -> Completion:
        import openai

        body = self._body(system, user)
        api = self.settings.api
        try:
            client = self.async_client()
            create = (
                client.responses.create if api == "responses" else client.chat.completions.create
            )
            try:
                resp = await create(**body)
            except openai.OpenAIError as e:
                if not self._json_refused(e, body):
                    raise
                resp = await create(**self._without_json(body))
        except (openai.OpenAIError, ValueError) as e:
            raise self._wrap(e) from e
        return self._checked(api, resp)

    def call(self, system: str, user: str) -> Call:
        """An effect performing this completion (sync or natively async)."""
        return Call(lambda: self.complete(system, user), lambda: self.acomplete(system, user))

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
