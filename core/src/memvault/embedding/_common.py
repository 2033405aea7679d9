"""Checks and post-processing shared by every embedder.

Why one place: each backend returns vectors in its own shape and scale; the core
relies on exactly one contract (float32, ``(n, dims)``, unit rows), so it is
enforced here once rather than re-implemented per backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memvault.errors import DimensionMismatchError, EmbeddingError, ValidationError

from .base import Vectors

KINDS = ("passage", "query")


def check_input(texts: Sequence[str], kind: str) -> list[str]:
    """Validate an embed call's arguments and return the texts as a list.

    A bare ``str`` is rejected on purpose: iterating it would silently embed
    one vector per character.
    """
    if isinstance(texts, str):
        raise ValidationError("embed() takes a list of texts, not a single str; wrap it: [text]")
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {KINDS}, got {kind!r}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise ValidationError(f"texts[{i}] is {type(text).__name__}, expected str")
    return out


def l2_normalise(vectors: np.ndarray) -> Vectors:
    """Rows scaled to unit length, as float32 (an all-zero row stays zero, never NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def to_vectors(raw: Any, *, n: int, dims: int | None, space: str) -> Vectors:
    """Turn what a backend returned into checked, normalised ``(n, dims)`` float32.

    ``dims=None`` accepts any width (used while a remote model's width is still
    unknown). A wrong width raises :class:`DimensionMismatchError` so callers can
    tell "wrong model" apart from "backend broken".
    """
    try:
        arr = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:  # ragged lists, non-numbers
        raise EmbeddingError(
            f"embedder {space!r} returned something that is not a list of equal-length "
            f"float vectors: {exc}"
        ) from exc
    if n == 0 and arr.size == 0:
        return np.zeros((0, dims or 0), dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise EmbeddingError(
            f"embedder {space!r} returned shape {arr.shape} for {n} texts; "
            f"expected one vector per text"
        )
    if dims is not None and arr.shape[1] != dims:
        raise DimensionMismatchError(space=space, expected=dims, got=int(arr.shape[1]))
    if not np.isfinite(arr).all():
        raise EmbeddingError(f"embedder {space!r} returned NaN or infinite values")
    return l2_normalise(arr)
