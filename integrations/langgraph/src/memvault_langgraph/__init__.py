"""memvault for LangGraph and LangChain.

- :class:`MemvaultStore`: a ``langgraph.store.base.BaseStore`` whose items are
  memvault memories (``graph.compile(store=...)``, ``create_agent(store=...)``,
  langmem's memory tools).
- :func:`create_memory_tools`: ``remember`` / ``recall`` / ``forget`` tools that
  use memvault's LLM extraction, scoped by the run, never by the model.
- :func:`create_memory_hook` (``pre_model_hook``), :class:`MemoryWriter`
  (background recording) and :class:`MemvaultMiddleware` (both, for
  ``langchain.agents.create_agent``; needs the ``agents`` extra).
- :class:`MemvaultRetriever`: memory search as a LangChain retriever.
- :class:`MemvaultSaver`: a LangGraph checkpointer, so a graph's threads live in
  the same memvault store as its long-term memory.
"""

from typing import TYPE_CHECKING, Any

from memvault_langgraph.checkpoint import MemvaultSaver
from memvault_langgraph.hooks import MemoryWriter, create_memory_hook, memory_block
from memvault_langgraph.retriever import MemvaultRetriever
from memvault_langgraph.store import DEFAULT_AGENT_ID, MemvaultStore
from memvault_langgraph.tools import (
    create_forget_tool,
    create_memory_tools,
    create_recall_tool,
    create_remember_tool,
)

if TYPE_CHECKING:
    from memvault_langgraph.middleware import MemvaultMiddleware

__all__ = [
    "DEFAULT_AGENT_ID",
    "MemoryWriter",
    "MemvaultMiddleware",
    "MemvaultRetriever",
    "MemvaultSaver",
    "MemvaultStore",
    "create_forget_tool",
    "create_memory_hook",
    "create_memory_tools",
    "create_recall_tool",
    "create_remember_tool",
    "memory_block",
]


def __getattr__(name: str) -> Any:
    # The middleware needs `langchain` (the `agents` extra): import it only when asked for.
    if name == "MemvaultMiddleware":
        from memvault_langgraph.middleware import MemvaultMiddleware

        return MemvaultMiddleware
    raise AttributeError(f"module 'memvault_langgraph' has no attribute {name!r}")
