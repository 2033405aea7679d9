"""memvault: long-term memory for AI agents — scoped, auditable, hybrid-searchable, offline.

``from memvault import Memory`` is all a mem0 user needs to change.
"""

from memvault.config import MemoryConfig
from memvault.errors import (
    ConfigError,
    DimensionMismatchError,
    EmbeddingError,
    FilterError,
    LLMError,
    MemvaultError,
    NotFoundError,
    RateLimitError,
    ScopeError,
    StorageError,
    ValidationError,
)
from memvault.memory import AsyncMemory, Memory

__version__ = "0.1.0"
__all__ = [
    "AsyncMemory",
    "ConfigError",
    "DimensionMismatchError",
    "EmbeddingError",
    "FilterError",
    "LLMError",
    "Memory",
    "MemoryConfig",
    "MemvaultError",
    "NotFoundError",
    "RateLimitError",
    "ScopeError",
    "StorageError",
    "ValidationError",
]
