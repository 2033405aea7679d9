"""An embedding function for CrewAI's ``Memory(embedder=...)`` backed by a memvault embedder.

Why: CrewAI's ``Memory`` embeds every record and query itself and defaults to
OpenAI. memvault ships an offline embedder (``memvault.embedding.LocalEmbedder``,
all-MiniLM-L6-v2 on onnxruntime), so a crew can remember with no API key and no
network. CrewAI accepts any ``list[str] -> list[list[float]]`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from memvault import AsyncMemory, Memory
from memvault.embedding import LocalEmbedder
from memvault.embedding.base import Embedder

if TYPE_CHECKING:
    from memvault_crewai.storage import MemvaultStorage

__all__ = ["EmbeddingFunction", "embedding_function"]

EmbeddingFunction = Callable[[list[str]], list[list[float]]]


def embedding_function(
    source: Embedder | Memory | AsyncMemory | MemvaultStorage | None = None,
) -> EmbeddingFunction:
    """A CrewAI embedder callable over a memvault embedder.

    ``source`` is an embedder, or a memvault ``Memory`` / ``MemvaultStorage`` whose
    embedder is reused (the model is then loaded once); None means a new
    ``LocalEmbedder``. The vectors go to CrewAI, which hands them back to the
    storage: they live in their own memvault vector space (``crewai:<dims>``).
    """
    from memvault_crewai.storage import MemvaultStorage

    model: Embedder
    if source is None:
        model = LocalEmbedder()
    elif isinstance(source, MemvaultStorage | Memory | AsyncMemory):
        model = source.embedder
    else:
        model = source

    def embed(texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return [[float(x) for x in v] for v in model.embed(list(texts), kind="passage")]

    return embed
