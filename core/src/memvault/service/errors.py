"""Typed errors as HTTP answers: ``{"error": {"type": ..., "message": ...}}`` with a 4xx/5xx.

Why one body shape for everything (our errors, FastAPI's validation errors, 401/403/404/
413): a client handles one format, and ``RemoteMemory`` turns it back into the same
exception class the library would have raised (``type`` is the class name).
"""

from __future__ import annotations

from typing import Any

from memvault import errors as E
from memvault.service.tenancy import Forbidden

#: Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (Forbidden, 403),
    (E.RateLimitError, 429),
    (E.NotFoundError, 404),
    (E.DimensionMismatchError, 400),
    (E.ScopeError, 400),
    (E.FilterError, 400),
    (E.ValidationError, 400),
    (E.ConfigError, 400),
    (E.LLMError, 502),
    (E.EmbeddingError, 503),
    (E.StorageError, 503),
    (E.MemvaultError, 500),
)


def status_of(error: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 500


def body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}
