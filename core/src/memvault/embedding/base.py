"""The embedder contract every vector source satisfies.

Why a protocol and not a base class: the core only needs three things from an
embedder (a name, a dimension, a batch embed), and user-supplied callables
(LangGraph's ``IndexConfig.embed``, CrewAI's precomputed vectors) must fit
without inheriting from anything of ours.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    An embedder may also define ``async def aembed(texts, *, kind="passage")``
    with the same contract (remote APIs do). It is deliberately not part of the
    protocol, so plain sync embedders still match; async callers go through
    :func:`memvault.embedding.aembed`, which falls back to a worker thread.
    """

    #: Stable identifier of the model (stored with the vector space, so a store
    #: built with one model refuses to be searched with another).
    name: str

    @property
    def dims(self) -> int:
        """Vector dimension (may load the model lazily to find out)."""
        ...

    def embed(self, texts: list[str], *, kind: str = "passage") -> Vectors:
        """Embed a batch; ``kind`` is ``"passage"`` (stored) or ``"query"``.

        Returns an array of shape ``(len(texts), dims)``, float32, rows L2-normalised.
        """
        ...
