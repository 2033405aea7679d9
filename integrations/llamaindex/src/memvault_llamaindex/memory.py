"""``MemvaultMemory``: LlamaIndex chat memory with memvault long-term memory behind it.

Why a ``BaseMemory`` and not only a memory block: a block's ``_aput`` only ever sees
messages when LlamaIndex's FIFO queue flushes them (after thousands of tokens), so a fact
told in a short session would never reach long-term memory. Wrapping ``BaseMemory`` --
as ``Mem0Memory`` does -- lets every ``put`` write to memvault on the turn it happens,
while the short-term history stays exactly LlamaIndex's own ``Memory``.
"""

from __future__ import annotations

import os
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import (
    Field,
    PrivateAttr,
    SerializeAsAny,
    field_serializer,
    field_validator,
)
from llama_index.core.memory import BaseMemory
from llama_index.core.memory import Memory as LlamaIndexMemory

from memvault import MemoryConfig
from memvault.adapterkit import HandlesMixin, MemoryHandles, MemoryLike
from memvault.embedding.base import Embedder
from memvault_llamaindex._convert import (
    DEFAULT_INTRO,
    DEFAULT_OUTRO,
    DEFAULT_WRITE_ROLES,
    MemvaultContext,
    build_query,
    exclude_in_prompt,
    inject_memories,
    to_memvault_messages,
)

_PRIMARY_KWARGS = (
    "session_id",
    "chat_history",
    "token_limit",
    "memory_blocks",
    "tokenizer_fn",
    "chat_history_token_ratio",
    "token_flush_size",
    "memory_blocks_template",
    "insert_method",
    "image_token_size_estimate",
    "audio_token_size_estimate",
    "video_token_size_estimate",
    "chat_store",
    "table_name",
    "async_database_uri",
    "async_engine",
    "db_schema",
)


class MemvaultMemory(HandlesMixin, BaseMemory):
    """Chat memory for LlamaIndex agents with memvault long-term memory.

    Pass it as ``FunctionAgent.run(..., memory=...)`` / ``AgentWorkflow.run(memory=...)``.

    * Short-term: the conversation lives in ``primary_memory``, a plain LlamaIndex
      ``Memory`` (FIFO, token limits, memory blocks all work as usual).
    * Long-term reads: every ``get``/``aget`` searches memvault in ``context``'s scope with
      the last ``search_msg_limit`` user/assistant messages plus ``input`` and puts the
      hits into the first system message, framed as ``Mem0Memory`` frames them.
    * Long-term writes: every ``put``/``aput`` (and ``put_messages``/``aput_messages``, one
      memvault call per batch) writes the user/assistant text to memvault right away,
      with ``infer`` -- memvault's LLM extraction when the store has an LLM configured,
      the raw messages otherwise.

    Sync methods run on ``memvault.Memory``, async ones natively on ``memvault.AsyncMemory``
    over the same store; the one not given is opened on first use.

    Construct with ``MemvaultMemory(memory=<memvault Memory or AsyncMemory>, context=...)``,
    ``MemvaultMemory.from_defaults(user_id=..., path=...)`` or
    ``MemvaultMemory.from_config(context, config)`` (the ``Mem0Memory.from_config`` shape).
    ``reset`` clears the chat history only; long-term memories stay.
    """

    primary_memory: SerializeAsAny[LlamaIndexMemory] = Field(
        default_factory=LlamaIndexMemory.from_defaults,
        description="Short-term chat history (LlamaIndex Memory).",
    )
    context: MemvaultContext = Field(description="memvault scope of the long-term memories.")
    search_msg_limit: int = Field(
        default=5, ge=0, description="Recent messages used (with the input) as the search query."
    )
    top_k: int = Field(default=10, ge=1, description="At most this many memories are injected.")
    threshold: float | None = Field(
        default=None, description="Minimum memvault score (0..1) of an injected memory."
    )
    infer: bool = Field(
        default=True,
        description="Write through memvault's LLM extraction when the store has an LLM.",
    )
    write_roles: tuple[str, ...] = Field(
        default=DEFAULT_WRITE_ROLES, description="Roles whose messages are remembered."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Metadata stored with every memory written."
    )
    max_query_chars: int = Field(default=2000, ge=1, description="Cap on the search query.")
    memory_intro: str = Field(default=DEFAULT_INTRO, min_length=1)
    memory_outro: str = Field(default=DEFAULT_OUTRO)
    store_path: str | None = Field(
        default=None,
        description="The memvault store file (set on construction). Serialized so that a "
        "restored workflow Context reopens the same store, not the default one; the "
        "config (LLM, API keys) is not serialized.",
    )

    _handles: MemoryHandles | None = PrivateAttr(default=None)

    def __init__(
        self,
        memory: MemoryLike | None = None,
        *,
        context: MemvaultContext | dict[str, Any] | Any = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        path: str | os.PathLike[str] | None = None,
        embedder: Embedder | None = None,
        **data: Any,
    ) -> None:
        """``memory`` is an open memvault handle; or give ``config``/``path``/``embedder``
        to open one (none of them: memvault's default store under ``$MEMVAULT_HOME``)."""
        if context is None:
            raise ValueError(
                "MemvaultMemory needs a context: e.g. context={'user_id': 'alice'} "
                "(memvault keeps every memory in a user/agent/run scope)"
            )
        if memory is None and config is None and path is None:
            path = data.get("store_path")  # restored from a serialized dict
        handles = MemoryHandles(memory, config=config, path=path, embedder=embedder, eager=False)
        super().__init__(context=context, **{**data, "store_path": handles.path})
        self._handles = handles

    @field_validator("context", mode="before")
    @classmethod
    def _coerce_context(cls, value: Any) -> MemvaultContext:
        return MemvaultContext.coerce(value)

    @field_serializer("primary_memory")
    def _dump_primary(self, primary: LlamaIndexMemory) -> dict[str, Any]:
        # The template and enum do not round-trip through JSON (Mem0Memory drops them too).
        return primary.model_dump(exclude={"memory_blocks_template", "insert_method"})

    @classmethod
    def class_name(cls) -> str:
        return "MemvaultMemory"

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        context: MemvaultContext | dict[str, Any] | None = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        memory: MemoryLike | None = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        path: str | os.PathLike[str] | None = None,
        embedder: Embedder | None = None,
        primary_memory: LlamaIndexMemory | None = None,
        **kwargs: Any,
    ) -> MemvaultMemory:
        """Build in LlamaIndex style.

        Scope: ``context`` or ``user_id``/``agent_id``/``run_id``. Store: ``memory`` or
        ``config``/``path``/``embedder``. Short-term: ``primary_memory``, or any
        ``Memory.from_defaults`` argument (``session_id``, ``chat_history``, ``token_limit``,
        ``memory_blocks``, ``chat_store``...). Other keywords set fields (``top_k``,
        ``search_msg_limit``, ``infer``, ``metadata``...).
        """
        ids = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
        if context is not None and any(v is not None for v in ids.values()):
            raise ValueError("pass either context= or user_id=/agent_id=/run_id=, not both")
        if context is None and any(v is not None for v in ids.values()):
            context = {k: v for k, v in ids.items() if v is not None}
        primary_kwargs = {k: kwargs.pop(k) for k in _PRIMARY_KWARGS if k in kwargs}
        if primary_memory is not None and primary_kwargs:
            raise ValueError(
                f"pass either primary_memory= or {', '.join(primary_kwargs)}, not both"
            )
        if primary_memory is None:
            primary_memory = LlamaIndexMemory.from_defaults(**primary_kwargs)
        return cls(
            memory,
            context=context,
            config=config,
            path=path,
            embedder=embedder,
            primary_memory=primary_memory,
            **kwargs,
        )

    @classmethod
    def from_config(
        cls,
        context: MemvaultContext | dict[str, Any],
        config: dict[str, Any] | MemoryConfig,
        search_msg_limit: int = 5,
        **kwargs: Any,
    ) -> MemvaultMemory:
        """``Mem0Memory.from_config(context, config, search_msg_limit)`` with memvault.

        ``config`` is a memvault config dict, or the mem0 ``Memory.from_config`` dict
        memvault accepts. Further keywords go to :meth:`from_defaults`.
        """
        return cls.from_defaults(
            context, config=config, search_msg_limit=search_msg_limit, **kwargs
        )

    # -- the memvault handles -------------------------------------------------------------------
    @property
    def handles(self) -> MemoryHandles:
        if self._handles is None:  # built by model_validate: the default store
            self._handles = MemoryHandles(eager=False)
        return self._handles

    # -- the translation, shared by both paths --------------------------------------------------
    def _query(self, messages: list[ChatMessage], input: str | ChatMessage | None) -> str:
        return build_query(
            messages, input, limit=self.search_msg_limit, max_chars=self.max_query_chars
        )

    def _search_kwargs(
        self, messages: list[ChatMessage], input: str | ChatMessage | None
    ) -> dict[str, Any]:
        return {
            **self.context.scope(),
            "filters": exclude_in_prompt(messages, input),
            "top_k": self.top_k,
            "threshold": self.threshold,
        }

    def _inject(self, messages: list[ChatMessage], result: dict[str, Any]) -> list[ChatMessage]:
        return inject_memories(
            messages,
            result.get("results", []),
            intro=self.memory_intro,
            outro=self.memory_outro,
        )

    def _write_kwargs(self, messages: list[ChatMessage]) -> dict[str, Any] | None:
        """memvault ``add`` arguments for ``messages``; None when none is worth remembering."""
        converted = to_memvault_messages(messages, self.write_roles)
        if not converted:
            return None
        metadata = {"session_id": self.primary_memory.session_id, **self.metadata}
        return {
            "messages": converted,
            **self.context.scope(),
            "metadata": metadata,
            "infer": self.infer,
        }

    # -- sync API (memvault.Memory) -------------------------------------------------------------
    def get(self, input: str | ChatMessage | None = None, **kwargs: Any) -> list[ChatMessage]:  # type: ignore[override]
        """Chat history with the relevant long-term memories in the system message."""
        messages = self.primary_memory.get(input=input, **kwargs)
        query = self._query(messages, input)
        if not query:
            return messages
        return self._inject(
            messages, self.memory.search(query, **self._search_kwargs(messages, input))
        )

    def get_all(self) -> list[ChatMessage]:
        """The whole chat history (no long-term memories)."""
        return self.primary_memory.get_all()

    def put(self, message: ChatMessage) -> None:
        """Remember ``message`` long-term (if its role is kept) and add it to the history."""
        self.put_messages([message])

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Like :meth:`put`, with one memvault write (one LLM call) for the whole batch."""
        write = self._write_kwargs(messages)
        if write is not None:
            self.memory.add(**write)
        self.primary_memory.put_messages(messages)

    def set(self, messages: list[ChatMessage]) -> None:
        """Replace the history; only messages beyond the current history are remembered."""
        known = len(self.primary_memory.get_all())
        write = self._write_kwargs(messages[known:])
        if write is not None:
            self.memory.add(**write)
        self.primary_memory.set(messages)

    def reset(self) -> None:
        """Clear the chat history. Long-term memories are kept (delete them in memvault)."""
        self.primary_memory.reset()

    # -- async API (memvault.AsyncMemory, natively) ---------------------------------------------
    async def aget(  # type: ignore[override]
        self, input: str | ChatMessage | None = None, **kwargs: Any
    ) -> list[ChatMessage]:
        """Async :meth:`get`."""
        messages = await self.primary_memory.aget(input=input, **kwargs)
        query = self._query(messages, input)
        if not query:
            return messages
        return self._inject(
            messages, await self.amemory.search(query, **self._search_kwargs(messages, input))
        )

    async def aget_all(self) -> list[ChatMessage]:
        """Async :meth:`get_all`."""
        return await self.primary_memory.aget_all()

    async def aput(self, message: ChatMessage) -> None:
        """Async :meth:`put`."""
        await self.aput_messages([message])

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`put_messages`."""
        write = self._write_kwargs(messages)
        if write is not None:
            await self.amemory.add(**write)
        await self.primary_memory.aput_messages(messages)

    async def aset(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`set`."""
        known = len(await self.primary_memory.aget_all())
        write = self._write_kwargs(messages[known:])
        if write is not None:
            await self.amemory.add(**write)
        await self.primary_memory.aset(messages)

    async def areset(self) -> None:
        """Async :meth:`reset`."""
        await self.primary_memory.areset()
