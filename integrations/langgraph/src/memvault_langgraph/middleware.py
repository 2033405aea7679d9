"""``MemvaultMiddleware``: memvault memory for ``langchain.agents.create_agent``.

Why a middleware: ``create_agent`` has no ``pre_model_hook``; its extension
point is ``AgentMiddleware``. This one does both halves of
``memvault_langgraph.hooks``: memories into the system prompt before each model
call, and each finished run's messages to a background :class:`MemoryWriter`.
Needs the ``agents`` extra (``langchain``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config

from memvault import Memory
from memvault_langgraph._scope import Scope
from memvault_langgraph.hooks import (
    DEFAULT_HEADER,
    Injector,
    MemoryWriter,
    state_messages,
    with_memories,
)
from memvault_langgraph.store import MemvaultStore

__all__ = ["MemvaultMiddleware"]


class MemvaultMiddleware(AgentMiddleware):
    """``langchain.agents.create_agent`` middleware: memories in, conversations out.

    Before every model call the scope's most relevant memories are appended to
    the system prompt (``inject``); after the agent finishes a run, the run's new
    messages go to a :class:`MemoryWriter` (``record``). Call :meth:`close` (or
    ``writer.close()``) at shutdown to flush what is still queued.
    """

    def __init__(
        self,
        memory: Memory | MemvaultStore | None = None,
        *,
        limit: int = 5,
        threshold: float | None = None,
        header: str = DEFAULT_HEADER,
        inject: bool = True,
        record: bool = True,
        writer: MemoryWriter | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__()
        defaults = Scope(user_id, agent_id, run_id)
        self._injector = Injector(memory, defaults, limit, threshold, header) if inject else None
        if record and writer is None:
            writer = MemoryWriter(memory, user_id=user_id, agent_id=agent_id, run_id=run_id)
        self.writer = writer if record else None

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        if self._injector is not None:
            block = self._injector.block(request.messages, _config(), request.runtime)
            if block:
                request = request.override(
                    system_message=with_memories(request.system_message, block)
                )
        return handler(request)

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        if self._injector is not None:
            block = await self._injector.ablock(request.messages, _config(), request.runtime)
            if block:
                request = request.override(
                    system_message=with_memories(request.system_message, block)
                )
        return await handler(request)

    def after_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if self.writer is not None:
            self.writer.record(state_messages(state), _config(), runtime)
        return None

    async def aafter_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.after_agent(state, runtime)  # only queues: safe on the event loop

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush and stop the writer."""
        return self.writer.close(timeout) if self.writer is not None else True


def _config() -> RunnableConfig | None:
    try:
        return get_config()
    except RuntimeError:
        return None
