"""Memory tools for CrewAI agents: ``RememberTool``, ``RecallTool``, ``ForgetTool``.

Why tools next to the storage backend: CrewAI's ``Memory`` (with
:class:`~memvault_crewai.MemvaultStorage` under it) runs CrewAI's own analysis and
stores what it decides, verbatim. These tools call memvault directly instead:
``RememberTool`` goes through ``memvault.Memory.add(infer=True)``, so with an LLM
configured in memvault, memvault extracts the facts and reconciles them with what
it already knows (a changed preference supersedes the old one, duplicates are
not stored twice, every change lands in the history).

Why the scope is fixed at construction: a scope id the model could choose is a
prompt injection away from another user's memories. The model only ever passes
content (``content``, ``query``, ``memory_id``); ``user_id`` / ``agent_id`` /
``run_id`` come from the developer, and ``ForgetTool`` can only delete inside them.
"""

from __future__ import annotations

from typing import Any

from crewai.tools import BaseTool
from pydantic import BaseModel, Field, PrivateAttr

from memvault import AsyncMemory, Memory, NotFoundError, ScopeError, ValidationError
from memvault.adapterkit import Call, MemoryHandles, Plan
from memvault.scope import check_id
from memvault_crewai.storage import MemvaultStorage

__all__ = [
    "ForgetTool",
    "RecallTool",
    "RememberTool",
    "create_memory_tools",
    "format_memories",
]

REMEMBER_DESCRIPTION = (
    "Save something worth knowing in later conversations: the user's preferences, personal "
    "details, plans, decisions, or corrections to what you knew. Pass the fact in plain "
    "language. Do not save small talk."
)
RECALL_DESCRIPTION = (
    "Search long-term memory about the user (preferences, facts, earlier decisions) before "
    "answering anything that depends on them. Returns matching memories with their ids."
)
FORGET_DESCRIPTION = (
    "Delete one memory by its id (as shown by the recall tool) when the user asks you to "
    "forget it or it is wrong."
)


def _never_cache(_args: Any = None, _result: Any = None) -> bool:
    """CrewAI caches tool results by input; a memory read must see the latest writes."""
    return False


def format_memories(results: list[dict[str, Any]], *, with_ids: bool = True) -> str:
    """memvault search results as a compact bullet list for a model to read."""
    return "\n".join(
        f"- [{r['id']}] {r['memory']}" if with_ids else f"- {r['memory']}" for r in results
    )


def _format_add(result: dict[str, Any]) -> str:
    changes = [r for r in result.get("results", []) if r.get("event") != "NONE"]
    if not changes:
        return "Already known; nothing new to remember."
    verbs = {"ADD": "Remembered", "UPDATE": "Updated", "DELETE": "Dropped (no longer true)"}
    return "\n".join(f"{verbs.get(r['event'], r['event'])}: {r['memory']}" for r in changes)


class RememberArgs(BaseModel):
    """What the model may pass to ``remember``: the fact, nothing about whose it is."""

    content: str = Field(
        ..., description="The fact to remember, in plain language (e.g. 'Prefers window seats')."
    )


class RecallArgs(BaseModel):
    """What the model may pass to ``recall``."""

    query: str = Field(..., description="What to look for, in plain language.")
    limit: int = Field(5, ge=1, le=20, description="How many memories to return (1-20).")


class ForgetArgs(BaseModel):
    """What the model may pass to ``forget``."""

    memory_id: str = Field(..., description="The id of the memory, as shown by recall.")


class _ScopedMemoryTool(BaseTool):
    """A tool bound to one memvault store and one scope, both fixed at construction.

    ``memory`` is a ``memvault.Memory`` / ``AsyncMemory``, a
    :class:`~memvault_crewai.MemvaultStorage` (its store is shared), or None for
    memvault's embedded default store.
    """

    memory: Any = Field(default=None, exclude=True, description="the memvault store")
    user_id: str | None = Field(default=None, description="memvault user_id (fixed)")
    agent_id: str | None = Field(default=None, description="memvault agent_id (fixed)")
    run_id: str | None = Field(default=None, description="memvault run_id (fixed)")
    changed_by: str | None = Field(
        default="crewai", description="recorded in memvault's history for each change"
    )
    cache_function: Any = _never_cache
    _handles: MemoryHandles = PrivateAttr()
    _owns_handles: bool = PrivateAttr(default=False)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        scope = self.scope
        for key, value in scope.items():
            if value is not None:
                check_id(value, key)
        if not any(scope.values()):
            raise ScopeError(
                f"{type(self).__name__} needs a fixed scope: pass user_id=, agent_id= and/or "
                "run_id= when building the tool (the model never chooses it)"
            )
        source = self.memory
        if isinstance(source, MemoryHandles):
            self._handles, self._owns_handles = source, True
        elif isinstance(source, MemvaultStorage):
            self._handles = source.handles  # the storage owns (and closes) them
        elif source is None or isinstance(source, Memory | AsyncMemory):
            self._handles, self._owns_handles = MemoryHandles(source), True
        else:
            raise TypeError(
                "memory must be a memvault Memory / AsyncMemory or a MemvaultStorage, "
                f"got {type(source).__name__}"
            )

    @property
    def scope(self) -> dict[str, str | None]:
        """The memvault scope ids every call of this tool uses."""
        return {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id}

    def close(self) -> None:
        """Close the memvault handles this tool opened (a storage's are left to it)."""
        if self._owns_handles:
            self._handles.close()

    def _plan(self, *args: Any, **kwargs: Any) -> Plan[str]:
        """The tool's one implementation: the memvault calls it makes and its reply."""
        raise NotImplementedError

    def _run(self, *args: Any, **kwargs: Any) -> str:
        return self._handles.run(self._plan(*args, **kwargs))

    async def _arun(self, *args: Any, **kwargs: Any) -> str:
        return await self._handles.arun(self._plan(*args, **kwargs))


class RememberTool(_ScopedMemoryTool):
    """Save a fact through ``memvault.Memory.add(infer=True)`` in the tool's fixed scope.

    With an LLM in the memvault config the core extracts and reconciles facts;
    without one the text is stored as it is (exact duplicates are skipped).
    ``metadata`` is stored with every memory this tool writes.
    """

    name: str = "remember"
    description: str = REMEMBER_DESCRIPTION
    args_schema: type[BaseModel] = RememberArgs
    metadata: dict[str, Any] | None = Field(
        default=None, description="metadata stored with every memory"
    )

    def _add_kwargs(self) -> dict[str, Any]:
        return {
            **self.scope,
            "infer": True,
            "metadata": self.metadata,
            "changed_by": self.changed_by,
        }

    def _plan(self, content: str) -> Plan[str]:  # type: ignore[override]
        try:
            return _format_add((yield Call("add", (content,), self._add_kwargs())))
        except ValidationError as e:
            return f"Nothing remembered: {e}"


class RecallTool(_ScopedMemoryTool):
    """Search the tool's fixed scope with memvault's hybrid retrieval."""

    name: str = "recall"
    description: str = RECALL_DESCRIPTION
    args_schema: type[BaseModel] = RecallArgs

    @staticmethod
    def _format(result: dict[str, Any]) -> str:
        found = result.get("results", [])
        return format_memories(found) if found else "No matching memories."

    def _plan(self, query: str, limit: int = 5) -> Plan[str]:  # type: ignore[override]
        try:
            return self._format((yield Call("search", (query,), {"top_k": limit, **self.scope})))
        except ValidationError as e:
            return f"Cannot search memory: {e}"


class ForgetTool(_ScopedMemoryTool):
    """Delete one memory by id, only inside the tool's fixed scope (history keeps it)."""

    name: str = "forget"
    description: str = FORGET_DESCRIPTION
    args_schema: type[BaseModel] = ForgetArgs

    def _plan(self, memory_id: str) -> Plan[str]:  # type: ignore[override]
        try:
            yield Call("delete", (memory_id,), {"changed_by": self.changed_by, **self.scope})
        except NotFoundError:
            return f"No memory {memory_id!r} here; nothing was forgotten."
        except ValidationError as e:
            return f"Nothing forgotten: {e}"
        return f"Forgot memory {memory_id}."


def create_memory_tools(
    memory: Memory | AsyncMemory | MemvaultStorage | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[BaseTool]:
    """``[RememberTool, RecallTool, ForgetTool]`` over one store and one fixed scope.

    The three share their memvault handles (one async twin at most); closing any
    of them closes those handles.
    """
    source: Any = memory
    if not isinstance(memory, MemvaultStorage):
        source = MemoryHandles(memory)
    scope = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
    return [
        RememberTool(memory=source, metadata=metadata, **scope),
        RecallTool(memory=source, **scope),
        ForgetTool(memory=source, **scope),
    ]
