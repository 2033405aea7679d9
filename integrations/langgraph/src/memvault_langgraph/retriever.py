"""``MemvaultRetriever``: memvault's hybrid memory search as a LangChain retriever.

Why: RAG chains, ``create_retriever_tool`` and anything else that takes a
``BaseRetriever`` can then read a user's memories with no glue code. The scope
is fixed when the retriever is built (one retriever per user/agent/run), so a
query can never widen it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from memvault_langgraph._scope import MemorySource, acall, sync_memory

__all__ = ["MemvaultRetriever"]

#: Record fields copied into ``Document.metadata`` when present.
_METADATA_FIELDS = (
    "id",
    "score",
    "user_id",
    "agent_id",
    "run_id",
    "created_at",
    "updated_at",
    "categories",
    "importance",
    "namespace",
    "key",
    "role",
    "actor_id",
)


class MemvaultRetriever(BaseRetriever):
    """Retrieve the memories of one scope that best match a query.

    Example:
        ``MemvaultRetriever(memory=Memory(), user_id="alice", k=5).invoke("drinks")``

    ``k``, ``filters`` and ``threshold`` can also be passed per call:
    ``retriever.invoke("drinks", k=1)``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any = Field(description="memvault Memory, AsyncMemory or MemvaultStore")
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    k: int = Field(default=4, ge=1, description="how many memories to return")
    filters: dict[str, Any] | None = Field(
        default=None, description="memvault metadata filters (see memvault.filters)"
    )
    threshold: float | None = Field(default=None, description="minimum score, 0..1")

    def _search_kwargs(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = set(overrides) - {"k", "filters", "threshold"}
        if unknown:
            raise TypeError(
                f"unexpected search arguments {sorted(unknown)}; "
                "the scope is fixed when the retriever is built"
            )
        return {
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "run_id": self.run_id,
            "limit": overrides.get("k", self.k),
            "filters": overrides.get("filters", self.filters),
            "threshold": overrides.get("threshold", self.threshold),
        }

    @staticmethod
    def _documents(found: dict[str, Any]) -> list[Document]:
        docs = []
        for r in found.get("results", []):
            meta = {f: r[f] for f in _METADATA_FIELDS if r.get(f) is not None}
            if r.get("metadata"):
                meta["metadata"] = r["metadata"]
            docs.append(Document(page_content=r["memory"], metadata=meta, id=r["id"]))
        return docs

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        memory: MemorySource = self.memory
        return self._documents(sync_memory(memory).search(query, **self._search_kwargs(kwargs)))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        found = await acall(self.memory, "search", query, **self._search_kwargs(kwargs))
        return self._documents(found)
