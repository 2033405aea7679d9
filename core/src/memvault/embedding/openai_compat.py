"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint.

Why one class for many providers: OpenAI, Azure-style proxies, Ollama, vLLM,
LM Studio and LiteLLM all speak the same request/response shape, so only the
base URL, key and model differ. Only ``client.embeddings.create`` is used,
which is stable across openai 2.x and 3.x.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from memvault.errors import ConfigError, EmbeddingError

from ._common import check_input, to_vectors
from .base import Vectors

#: Native widths of OpenAI's own models, so ``dims`` needs no request for them.
KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
#: Local servers ignore the key, but the openai client refuses to start without one.
PLACEHOLDER_KEY = "not-needed"


class OpenAIEmbedder:
    """Remote embeddings through the ``openai`` client (sync ``embed``, async ``aembed``).

    ``dims``: when not given, it comes from :data:`KNOWN_DIMS`, else from the
    first embed call; reading ``.dims`` before any call makes one one-word probe
    request. When ``dims`` is given it is sent as the ``dimensions`` parameter
    only to models known to support it (``text-embedding-3*``, or force it with
    ``send_dimensions=True``); every response is checked against it.

    The key is ``api_key`` or ``$OPENAI_API_KEY``. Without either, a placeholder
    is sent when a ``base_url`` is set (``$OPENAI_BASE_URL`` counts), because
    local servers such as Ollama or vLLM ignore keys; against OpenAI itself that
    is a :class:`ConfigError`.

    Clients are created on first use, so constructing makes no connection.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dims: int | None = None,
        batch_size: int = 256,
        timeout: float = 60.0,
        max_retries: int = 2,
        send_dimensions: bool | None = None,
        name: str | None = None,
    ) -> None:
        if not model:
            raise ConfigError("OpenAIEmbedder needs a model name, e.g. 'text-embedding-3-small'")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if dims is not None and dims < 1:
            raise ConfigError(f"dims must be >= 1, got {dims}")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if api_key is None:
            if base_url is None:
                raise ConfigError(
                    "no API key for OpenAI embeddings: set OPENAI_API_KEY or pass api_key=, "
                    "or pass base_url= for a local OpenAI-compatible server"
                )
            api_key = PLACEHOLDER_KEY
        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self._client_args: dict[str, Any] = {
            "api_key": api_key,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        if base_url is not None:  # else the client's own default (api.openai.com)
            self._client_args["base_url"] = base_url
        if send_dimensions is None:
            send_dimensions = model.startswith("text-embedding-3")
        self._send_dims = dims is not None and send_dimensions
        self._dims = dims if dims is not None else KNOWN_DIMS.get(model)
        # The width is part of the space: a 256-d text-embedding-3 cut is not the 1536-d one.
        self.name = name or (f"openai:{model}" + (f":{dims}" if dims is not None else ""))
        self._lock = threading.Lock()
        self._client: Any = None
        self._aclient: Any = None

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def dims(self) -> int:
        """Vector width; may cost one probe request when the model is unknown."""
        if self._dims is None:
            self.embed(["dimension probe"])
        assert self._dims is not None
        return self._dims

    # -- clients ---------------------------------------------------------------

    def _sync_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from openai import OpenAI

                self._client = OpenAI(**self._client_args)
            return self._client

    def _async_client(self) -> Any:
        with self._lock:
            if self._aclient is None:
                from openai import AsyncOpenAI

                self._aclient = AsyncOpenAI(**self._client_args)
            return self._aclient

    # -- embedding -------------------------------------------------------------

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        """Embed in requests of ``batch_size`` texts; ``kind`` is ignored (symmetric models)."""
        texts = check_input(texts, kind)
        if not texts:
            return self._empty()
        import openai

        client = self._sync_client()
        parts = []
        for batch in self._batches(texts):
            try:
                response = client.embeddings.create(**self._request(batch))
            except (openai.OpenAIError, ValueError) as exc:  # ValueError: empty response
                raise self._wrap(exc) from exc
            parts.append(self._vectors(response, len(batch)))
        return np.concatenate(parts)

    async def aembed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        """Async twin of :meth:`embed` (``AsyncOpenAI``; batches go one after another)."""
        texts = check_input(texts, kind)
        if not texts:
            return self._empty()
        import openai

        client = self._async_client()
        parts = []
        for batch in self._batches(texts):
            try:
                response = await client.embeddings.create(**self._request(batch))
            except (openai.OpenAIError, ValueError) as exc:  # ValueError: empty response
                raise self._wrap(exc) from exc
            parts.append(self._vectors(response, len(batch)))
        return np.concatenate(parts)

    def _batches(self, texts: list[str]) -> list[list[str]]:
        return [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

    def _request(self, batch: list[str]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "input": batch}
        if self._send_dims:
            request["dimensions"] = self._dims
        return request

    def _empty(self) -> Vectors:
        # Width unknown until the first real call: (0, 0) rather than a request for nothing.
        return np.zeros((0, self._dims or 0), dtype=np.float32)

    def _vectors(self, response: Any, n: int) -> Vectors:
        """Response rows in request order (sorted by ``index``), checked and normalised."""
        try:
            rows = [d.embedding for d in sorted(response.data, key=lambda d: d.index)]
        except (AttributeError, TypeError) as exc:
            raise EmbeddingError(
                f"{self._where()} returned a malformed embeddings response: {exc}"
            ) from exc
        vectors = to_vectors(rows, n=n, dims=self._dims, space=self.name)
        if self._dims is None:
            self._dims = int(vectors.shape[1])  # first call fixes the width
        return vectors

    def _where(self) -> str:
        return f"embedding endpoint {self.base_url or 'api.openai.com'} (model {self.model!r})"

    def _wrap(self, exc: Exception) -> EmbeddingError:
        """An openai failure as EmbeddingError, with a hint at the usual cause."""
        import openai

        hint = ""
        if isinstance(exc, openai.AuthenticationError):
            hint = "; check OPENAI_API_KEY / api_key="
        elif isinstance(exc, openai.APIConnectionError):
            hint = "; is the server running and base_url right?"
        elif isinstance(exc, openai.NotFoundError):
            hint = "; is the model name right (and pulled, for Ollama)?"
        return EmbeddingError(f"{self._where()} failed: {type(exc).__name__}: {exc}{hint}")
