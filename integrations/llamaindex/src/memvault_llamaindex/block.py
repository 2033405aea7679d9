"""``MemvaultMemoryBlock``: memvault as a long-term block of LlamaIndex's ``Memory``.

Why a block as well as ``MemvaultMemory``: users who already compose
``Memory.from_defaults(memory_blocks=[...])`` (static profile, extracted facts, vector
recall) get memvault's scoped hybrid retrieval as one more block, rendered in LlamaIndex's
``<memory>`` template and subject to its token budget: blocks with ``priority`` 0 are
never cut, the others are cut lowest-priority first through :meth:`atruncate`, which
drops the lowest-ranked memories before giving the block up.

Writes follow LlamaIndex's block contract: ``_aput`` receives the messages the FIFO queue
flushes (or whatever is ``aput`` directly). For a write on every turn, use
``MemvaultMemory``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_validator
from llama_index.core.memory import BaseMemoryBlock
from llama_index.core.utils import get_tokenizer

from memvault import AsyncMemory, MemoryConfig
from memvault.adapterkit import MemoryHandles, MemoryLike
from memvault.embedding.base import Embedder
from memvault_llamaindex._convert import (
    DEFAULT_WRITE_ROLES,
    MemvaultContext,
    build_query,
    exclude_in_prompt,
    memory_lines,
    to_memvault_messages,
)


class MemvaultMemoryBlock(BaseMemoryBlock[str]):
    """A ``BaseMemoryBlock[str]`` that retrieves from (and on flush, writes to) memvault.

    Scope: ``context`` (user/agent/run ids); without one, the ``Memory``'s ``session_id``
    is used as memvault ``run_id``, so the block recalls what this chat session flushed
    -- as ``VectorMemoryBlock`` does. The block content is one ``- memory`` line per hit,
    best first.
    """

    name: str = Field(default="memvault", description="The name of the memory block.")
    description: str | None = Field(
        default="Long-term memories retrieved from memvault, most relevant first."
    )
    context: MemvaultContext | None = Field(
        default=None, description="memvault scope; None: run_id = the Memory's session_id."
    )
    search_msg_limit: int = Field(default=5, ge=0)
    top_k: int = Field(default=10, ge=1)
    threshold: float | None = Field(default=None)
    infer: bool = Field(default=True)
    write_roles: tuple[str, ...] = Field(default=DEFAULT_WRITE_ROLES)
    metadata: dict[str, Any] = Field(default_factory=dict)
    max_query_chars: int = Field(default=2000, ge=1)
    tokenizer_fn: Callable[[str], list[Any]] = Field(
        default_factory=get_tokenizer,
        exclude=True,
        description="Token counter for atruncate (LlamaIndex's default, as Memory uses).",
    )

    _handles: MemoryHandles | None = PrivateAttr(default=None)

    def __init__(
        self,
        memory: MemoryLike | None = None,
        *,
        config: dict[str, Any] | MemoryConfig | None = None,
        path: str | os.PathLike[str] | None = None,
        embedder: Embedder | None = None,
        **data: Any,
    ) -> None:
        """``memory``: an open memvault handle (an ``AsyncMemory`` is used as is; for a
        ``Memory`` its async twin is opened); or ``config``/``path``/``embedder``."""
        super().__init__(**data)
        self._handles = MemoryHandles(
            memory, config=config, path=path, embedder=embedder, eager=False
        )

    @field_validator("context", mode="before")
    @classmethod
    def _coerce_context(cls, value: Any) -> MemvaultContext | None:
        return None if value is None else MemvaultContext.coerce(value)

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any] | MemoryConfig,
        context: MemvaultContext | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> MemvaultMemoryBlock:
        """A block over the store a memvault (or mem0-shaped) config dict describes."""
        return cls(config=config, context=context, **kwargs)

    @property
    def amemory(self) -> AsyncMemory:
        """The ``memvault.AsyncMemory`` the block reads and writes through."""
        if self._handles is None:
            self._handles = MemoryHandles(eager=False)
        return self._handles.asynchronous

    async def aclose(self) -> None:
        """Close the memvault handles this block opened (not one passed as ``memory``)."""
        if self._handles is not None:
            await self._handles.aclose()

    def _scope(self, session_id: str | None) -> dict[str, str]:
        if self.context is not None:
            return self.context.scope()
        if session_id is None:
            raise ValueError(
                f"memory block {self.name!r} has no context and got no session_id: "
                "pass context={'user_id': ...} or use it inside a llama_index Memory"
            )
        return MemvaultContext(run_id=session_id).scope()

    async def _aget(
        self,
        messages: list[ChatMessage] | None = None,
        session_id: str | None = None,
        **block_kwargs: Any,
    ) -> str:
        """The memories relevant to the recent ``messages`` (which end with the input)."""
        query = build_query(
            messages or [], None, limit=self.search_msg_limit, max_chars=self.max_query_chars
        )
        if not query:
            return ""
        result = await self.amemory.search(
            query,
            **self._scope(session_id),
            filters=exclude_in_prompt(messages or [], None),
            top_k=self.top_k,
            threshold=self.threshold,
        )
        return "\n".join(memory_lines(result.get("results", [])))

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Remember the user/assistant text of ``messages`` (one memvault write)."""
        converted = to_memvault_messages(messages, self.write_roles)
        if not converted:
            return
        session_id = next(
            (
                m.additional_kwargs["session_id"]
                for m in messages
                if "session_id" in m.additional_kwargs
            ),
            None,
        )
        metadata = dict(self.metadata)
        if session_id is not None:
            metadata = {"session_id": session_id, **metadata}
        await self.amemory.add(
            converted, **self._scope(session_id), metadata=metadata, infer=self.infer
        )

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the lowest-ranked memories until ``tokens_to_truncate`` tokens are saved.

        Returns None (the block is dropped) when nothing would be left.
        """
        lines = content.splitlines()
        saved = 0
        while lines and saved < tokens_to_truncate:
            saved += len(self.tokenizer_fn(lines.pop())) + 1  # + the newline
        return "\n".join(lines) if lines else None
