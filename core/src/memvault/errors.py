"""Typed errors: every failure a caller can act on has its own class.

Why a hierarchy: callers (and adapters) catch ``MemvaultError`` to handle all of
ours, or a precise subclass to react (e.g. retry on ``LLMError``). Each message
says what went wrong *and* what to do about it. Subclasses of ``ValueError`` /
``LookupError`` keep ``except ValueError`` code written against mem0 working.
"""

from __future__ import annotations


class MemvaultError(Exception):
    """Base class of every error raised on purpose by memvault."""


class ConfigError(MemvaultError, ValueError):
    """The configuration is invalid (unknown provider, bad option, bad path)."""


class ValidationError(MemvaultError, ValueError):
    """An argument is invalid: empty content, bad id, oversized input, bad type."""


class ScopeError(ValidationError):
    """No scope (user_id / agent_id / run_id) was given, or a scope id is malformed."""


class FilterError(ValidationError):
    """A metadata filter is malformed or uses an unknown operator."""


class NotFoundError(MemvaultError, LookupError):
    """No memory with that id exists (in the given scope)."""


class DimensionMismatchError(MemvaultError, ValueError):
    """A vector's dimension differs from the vector space it is written to or searched in."""

    def __init__(self, space: str, expected: int, got: int) -> None:
        self.space, self.expected, self.got = space, expected, got
        super().__init__(
            f"vector space {space!r} holds {expected}-dimensional vectors but got a "
            f"{got}-dimensional one; use the embedder the store was built with, or a new "
            f"named vector space (vector_space=...) for the other model"
        )


class StorageError(MemvaultError):
    """The store cannot be opened or written (path is a directory, read-only, corrupt)."""


class ConflictError(StorageError):
    """A write breaks a uniqueness rule of the store (an id, or a namespace/key, taken)."""


class EmbeddingError(MemvaultError):
    """The embedder could not be loaded or failed to embed."""


class LLMError(MemvaultError):
    """The LLM call failed or returned output that could not be parsed.

    ``raw_output`` holds what the model said, so nothing is lost silently.
    """

    def __init__(self, message: str, *, raw_output: str | None = None) -> None:
        self.raw_output = raw_output
        if raw_output is not None:
            shown = raw_output if len(raw_output) <= 500 else raw_output[:500] + "…"
            message = f"{message}; raw output: {shown!r}"
        super().__init__(message)


class RateLimitError(MemvaultError):
    """A memvault server refused the call: the API key used up its calls per minute.

    ``retry_after`` is how many seconds until the key may call again (the server's
    ``Retry-After``), so a client can wait rather than guess.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
