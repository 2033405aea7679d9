"""memvault's own LangChain tools: ``remember``, ``recall``, ``forget``.

Why not only langmem's tools (which also work, against ``MemvaultStore``):
langmem writes whatever text the model chose, verbatim. ``remember`` goes
through ``Memory.add(infer=True)``: with an LLM configured, memvault extracts the
facts and reconciles them with what it already knows (a changed preference
supersedes the old one; nothing is silently duplicated), and every change lands
in the history. The model only ever sees content arguments: the scope comes from
the run (runtime context or ``config["configurable"]``), never from the model.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, ToolException

from memvault import NotFoundError, ValidationError
from memvault_langgraph._scope import (
    MemorySource,
    Scope,
    acall,
    resolve_memory,
    resolve_scope,
    sync_memory,
)

__all__ = [
    "create_forget_tool",
    "create_memory_tools",
    "create_recall_tool",
    "create_remember_tool",
    "format_memories",
]

REMEMBER_DESCRIPTION = (
    "Save something worth knowing in future conversations: the user's preferences, "
    "personal details, plans, decisions, or corrections to what you knew. Pass the fact "
    "in plain language. Memory is kept across conversations; do not save small talk."
)
RECALL_DESCRIPTION = (
    "Search long-term memory about the user (preferences, facts, earlier decisions) "
    "before answering questions that depend on them. Returns matching memories with ids."
)
FORGET_DESCRIPTION = (
    "Delete one memory by its id (as shown by the recall tool) when the user asks you to "
    "forget it or it is wrong."
)


def format_memories(results: list[dict[str, Any]], *, with_ids: bool = True) -> str:
    """Memories as a compact bullet list for a model to read."""
    lines = []
    for r in results:
        head = f"[{r['id']}] " if with_ids else ""
        lines.append(f"- {head}{r['memory']}")
    return "\n".join(lines)


def _describe_add(result: dict[str, Any]) -> str:
    changes = [r for r in result.get("results", []) if r.get("event") != "NONE"]
    if not changes:
        return "Nothing new to remember: this is already known."
    verbs = {"ADD": "Remembered", "UPDATE": "Updated", "DELETE": "Forgot"}
    return "\n".join(
        f"{verbs.get(r['event'], r['event'])}: {r['memory']} (id {r['id']})" for r in changes
    )


def _defaults(user_id: str | None, agent_id: str | None, run_id: str | None) -> Scope:
    return Scope(user_id=user_id, agent_id=agent_id, run_id=run_id)


def create_remember_tool(
    memory: MemorySource | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    infer: bool = True,
    name: str = "remember",
    description: str = REMEMBER_DESCRIPTION,
) -> BaseTool:
    """A tool that stores what the model wants kept, through ``Memory.add(infer=...)``.

    Args:
        memory: a memvault ``Memory`` / ``AsyncMemory`` / ``MemvaultStore``; ``None``
            uses the run's store (which must then be a ``MemvaultStore``).
        user_id, agent_id, run_id: default scope, used for ids the run does not set.
        infer: let memvault's LLM (when configured) extract and reconcile facts.
    """
    defaults = _defaults(user_id, agent_id, run_id)

    def remember(content: str, config: RunnableConfig) -> str:
        scope = resolve_scope(config, defaults)
        mem = sync_memory(resolve_memory(memory))
        return _describe_add(mem.add(content, infer=infer, **scope.kwargs()))

    async def aremember(content: str, config: RunnableConfig) -> str:
        scope = resolve_scope(config, defaults)
        result = await acall(resolve_memory(memory), "add", content, infer=infer, **scope.kwargs())
        return _describe_add(result)

    return StructuredTool.from_function(
        func=remember, coroutine=aremember, name=name, description=description
    )


def create_recall_tool(
    memory: MemorySource | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    default_limit: int = 5,
    name: str = "recall",
    description: str = RECALL_DESCRIPTION,
) -> BaseTool:
    """A tool that searches the run's memories with memvault's hybrid retrieval."""
    defaults = _defaults(user_id, agent_id, run_id)

    def _format(found: dict[str, Any]) -> str:
        results = found.get("results", [])
        return format_memories(results) if results else "No relevant memories."

    def recall(query: str, config: RunnableConfig, limit: int = default_limit) -> str:
        scope = resolve_scope(config, defaults)
        mem = sync_memory(resolve_memory(memory))
        return _format(mem.search(query, limit=max(1, limit), **scope.kwargs()))

    async def arecall(query: str, config: RunnableConfig, limit: int = default_limit) -> str:
        scope = resolve_scope(config, defaults)
        return _format(
            await acall(
                resolve_memory(memory), "search", query, limit=max(1, limit), **scope.kwargs()
            )
        )

    return StructuredTool.from_function(
        func=recall, coroutine=arecall, name=name, description=description
    )


def create_forget_tool(
    memory: MemorySource | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    name: str = "forget",
    description: str = FORGET_DESCRIPTION,
) -> BaseTool:
    """A tool that deletes one memory of the run's scope (its history is kept).

    An id outside the scope is reported to the model as not found, exactly like
    an id that does not exist: the model cannot probe other users' memories.
    """
    defaults = _defaults(user_id, agent_id, run_id)

    def forget(memory_id: str, config: RunnableConfig) -> str:
        scope = resolve_scope(config, defaults)
        mem = sync_memory(resolve_memory(memory))
        try:
            mem.delete(memory_id, **scope.kwargs())
        except (NotFoundError, ValidationError) as exc:  # bad or foreign id: not found
            raise ToolException(f"No memory with id {memory_id!r} to forget.") from exc
        return f"Forgot memory {memory_id}."

    async def aforget(memory_id: str, config: RunnableConfig) -> str:
        scope = resolve_scope(config, defaults)
        try:
            await acall(resolve_memory(memory), "delete", memory_id, **scope.kwargs())
        except (NotFoundError, ValidationError) as exc:  # bad or foreign id: not found
            raise ToolException(f"No memory with id {memory_id!r} to forget.") from exc
        return f"Forgot memory {memory_id}."

    return StructuredTool.from_function(
        func=forget, coroutine=aforget, name=name, description=description, handle_tool_error=True
    )


def create_memory_tools(
    memory: MemorySource | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    infer: bool = True,
) -> list[BaseTool]:
    """``[remember, recall, forget]`` over one memory source and default scope."""
    scope = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
    return [
        create_remember_tool(memory, infer=infer, **scope),
        create_recall_tool(memory, **scope),
        create_forget_tool(memory, **scope),
    ]
