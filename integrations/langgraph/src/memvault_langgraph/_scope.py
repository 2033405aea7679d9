"""Where tools, hooks and retrievers get their memvault scope and memory from.

Why from the run and never from the model: a scope id chosen by the model is a
prompt-injection away from another user's memories. The scope comes from the
LangGraph runtime context (``create_agent(context_schema=...)``,
``graph.invoke(..., context=...)``), then from ``config["configurable"]``, then
from defaults the developer fixed when building the tool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import get_runtime

from memvault import AsyncMemory, Memory, ScopeError
from memvault_langgraph.store import MemvaultStore

SCOPE_KEYS = ("user_id", "agent_id", "run_id")

MemorySource = Memory | AsyncMemory | MemvaultStore


@dataclass(frozen=True, slots=True)
class Scope:
    """A memvault scope: the ids passed to ``add`` / ``search`` / ``delete``."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def kwargs(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id}

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.user_id, self.agent_id, self.run_id))


def runtime_of_run() -> Any:
    """The LangGraph ``Runtime`` (context, store) of the current run, or None outside one."""
    try:
        return get_runtime()
    except (RuntimeError, KeyError):  # outside a graph run / a config without "configurable"
        return None


def _lookup(source: Any, key: str) -> Any:
    if source is None:
        return None
    if isinstance(source, Mapping):
        return source.get(key)
    return getattr(source, key, None)


def resolve_scope(config: RunnableConfig | None, defaults: Scope, runtime: Any = None) -> Scope:
    """Scope ids from the runtime context, then ``configurable``, then ``defaults``.

    Raises ``ScopeError`` when none is found, naming where to put one.
    """
    runtime = runtime if runtime is not None else runtime_of_run()
    context = getattr(runtime, "context", None)
    configurable = (config or {}).get("configurable") or {}
    ids: dict[str, str | None] = {}
    for key in SCOPE_KEYS:
        value = _lookup(context, key)
        if value is None:
            value = configurable.get(key)
        if value is None:
            value = getattr(defaults, key)
        ids[key] = None if value is None else str(value)
    scope = Scope(**ids)
    if not scope:
        raise ScopeError(
            "no memory scope for this run: pass config={'configurable': {'user_id': ...}}, "
            "a runtime context with a user_id, or a default user_id when building the tool"
        )
    return scope


def resolve_memory(source: MemorySource | None, runtime: Any = None) -> MemorySource:
    """The memory to use: the one given, else the run's store when it is a MemvaultStore."""
    if source is not None:
        return source
    runtime = runtime if runtime is not None else runtime_of_run()
    store = getattr(runtime, "store", None)
    if isinstance(store, MemvaultStore):
        return store
    raise TypeError(
        "no memvault memory: pass memory= (a memvault Memory or MemvaultStore) or run inside "
        f"a graph whose store is a MemvaultStore (got {type(store).__name__})"
    )


def sync_memory(source: MemorySource) -> Memory:
    """A synchronous handle for ``source``."""
    if isinstance(source, MemvaultStore):
        return source.memory
    if isinstance(source, Memory):
        return source
    raise TypeError(
        "a synchronous call needs a memvault Memory or MemvaultStore, "
        "not an AsyncMemory (use the async API: ainvoke)"
    )


async def acall(source: MemorySource, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` on an async handle for ``source`` (a worker thread for a plain Memory)."""
    if isinstance(source, MemvaultStore):
        return await getattr(source.amemory, method)(*args, **kwargs)
    if isinstance(source, AsyncMemory):
        return await getattr(source, method)(*args, **kwargs)
    return await asyncio.to_thread(getattr(source, method), *args, **kwargs)
