"""Request bodies of the HTTP API (pydantic): what each route accepts, with bounds.

Why explicit models rather than ``**kwargs`` passed through: the HTTP edge is where
untrusted input arrives, so each route names the fields it takes (unknown fields are
refused with a message naming them), caps sizes that cost work (``top_k``, batch
lengths), and the OpenAPI page documents all of it. Values are then checked again by
the engine, which owns the meaning (ids, metadata, times).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Id = str | int | None
Json = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scoped(_Body):
    """The scope ids every scoped call names (or takes from a key limited to one id)."""

    user_id: Id = None
    agent_id: Id = None
    run_id: Id = None

    def ids(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id}


class AddRequest(Scoped):
    """``POST /memories`` (mem0 server's body, plus memvault's add options)."""

    messages: Any = Field(description="a string, a message dict, or a list of them")
    metadata: Json | None = None
    infer: bool = True
    expiration_date: Any = None
    timestamp: Any = None
    embeddings: list[Any] | None = None
    vector_space: str | None = None
    categories: list[str] | None = None
    importance: float | None = None
    changed_by: str | None = None
    prompt: str | None = None
    memory_type: str | None = None
    idempotency_key: str | None = None

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"messages", "user_id", "agent_id", "run_id"})


class SearchRequest(Scoped):
    """``POST /search`` (mem0 server's body, plus memvault's search options)."""

    query: str | None = None
    filters: Json | None = None
    top_k: int = Field(20, ge=0, le=1000)
    limit: int | None = Field(None, ge=0, le=1000)
    offset: int = Field(0, ge=0, le=100_000)
    threshold: float | None = None
    explain: bool = False
    include_superseded: bool = False
    as_of: Any = None
    show_expired: bool = False
    vector: list[float] | None = None
    vector_space: str | None = None
    namespace_prefix: list[str] | None = None
    touch: bool = False
    retrieval: Json | None = None
    dedupe: bool = True
    rerank: bool = False
    ranking: str = "hybrid"
    include_unranked: bool = False

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"query", "filters", "user_id", "agent_id", "run_id"})


class ListRequest(Scoped):
    """``POST /memories/list``: ``get_all`` with every option (filters, as_of, paging)."""

    filters: Json | None = None
    top_k: int = Field(100, ge=0, le=10_000)
    limit: int | None = Field(None, ge=0, le=10_000)
    offset: int = Field(0, ge=0)
    include_superseded: bool = False
    as_of: Any = None
    show_expired: bool = False
    namespace_prefix: list[str] | None = None
    order_by: str = "created_at"
    touch: bool = False
    include_vectors: bool = False

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"filters", "user_id", "agent_id", "run_id"})


class CountRequest(Scoped):
    filters: Json | None = None
    namespace_prefix: list[str] | None = None
    include_superseded: bool = False
    show_expired: bool = False


class DeleteAllRequest(Scoped):
    filters: Json | None = None
    namespace_prefix: list[str] | None = None
    changed_by: str | None = None


class UpdateRequest(_Body):
    """``PUT /memories/{id}`` (mem0: ``text``, ``metadata``, ``expiration_date``)."""

    text: str | None = None
    data: str | None = None
    metadata: Json | None = None
    expiration_date: Any = None
    changed_by: str | None = None
    # Accepted (a mem0 client may send its scope) and checked like any by-id call's.
    user_id: Id = None
    agent_id: Id = None
    run_id: Id = None


class TouchRequest(_Body):
    memory_ids: list[str] = Field(max_length=10_000)


class PutRecord(Scoped):
    """``PUT /records``: create or replace the memory under ``(namespace, key)``."""

    namespace: list[str]
    key: str
    value: Any = None
    text: str | None = None
    index: list[str] | bool | None = None
    embeddings: list[Any] | None = None
    vector_space: str | None = None
    metadata: Json | None = None
    categories: list[str] | None = None
    importance: float | None = None
    ttl_seconds: float | None = None
    timestamp: Any = None
    changed_by: str | None = None

    def options(self) -> dict[str, Any]:
        return self.model_dump(
            exclude={"namespace", "key", "value", "user_id", "agent_id", "run_id"}
        )


class RecordRef(Scoped):
    namespace: list[str]
    key: str
    touch: bool = False
    show_expired: bool = False
    include_vectors: bool = False
    changed_by: str | None = None


class NamespacesRequest(Scoped):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1)
    # The engine reads the scope's records whatever the limit; the answer is at most one
    # entry per distinct namespace. Adapters ask for "all" (CrewAI's storage: 1,000,000).
    limit: int = Field(100, ge=0, le=1_000_000)
    offset: int = Field(0, ge=0)


class IngestRequest(_Body):
    """``POST /ingest``: rows as ``Memory.ingest`` takes them; runs as a background job."""

    rows: list[Json] = Field(max_length=100_000)
    concurrency: int = Field(8, ge=1, le=64)
    mode: str = "live"
    row_retries: int = Field(5, ge=0, le=20)


class EmbedRequest(_Body):
    texts: list[str] = Field(max_length=256)
    kind: str = "passage"
