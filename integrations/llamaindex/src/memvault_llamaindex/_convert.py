"""Translation between LlamaIndex chat messages and memvault calls.

Everything here is pure (no I/O) so the sync and async paths of the memory classes
share it: which messages become memvault writes, what text becomes the search query,
and how retrieved memories are rendered back into the prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.bridge.pydantic import BaseModel, ConfigDict, model_validator

from memvault.scope import SCOPE_FIELDS, check_id

#: What ``Mem0Memory`` (llama-index-memory-mem0) writes around retrieved memories;
#: kept verbatim so prompts written for mem0 keep working after the switch.
DEFAULT_INTRO = (
    "Below are a set of relevant preferences retrieved from potentially several memory sources:"
)
DEFAULT_OUTRO = "This is the end of the retrieved preferences."

#: Roles whose text is remembered, as in ``Mem0Memory``: tool output and system prompts are
#: not facts about the user.
DEFAULT_WRITE_ROLES: tuple[str, ...] = ("user", "assistant")


class MemvaultContext(BaseModel):
    """Who the long-term memories belong to: memvault's scope (user / agent / run ids).

    Same fields as ``Mem0Context``. memvault refuses unscoped reads and writes, so at least
    one id is required, and the ids are checked here (not on the first agent turn).
    """

    model_config = ConfigDict(frozen=True)

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    @model_validator(mode="after")
    def _check(self) -> MemvaultContext:
        ids = self.scope()
        if not ids:
            raise ValueError("a memvault context needs at least one of user_id, agent_id, run_id")
        for field, value in ids.items():
            check_id(value, field)
        return self

    def scope(self) -> dict[str, str]:
        """The ids that are set, as keyword arguments for memvault calls."""
        return {f: v for f in SCOPE_FIELDS if (v := getattr(self, f)) is not None}

    @classmethod
    def coerce(cls, value: Any) -> MemvaultContext:
        """Accept a ``MemvaultContext``, a dict, or a ``Mem0Context`` (for migrations)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls.model_validate(value)
        if isinstance(value, BaseModel) and all(hasattr(value, f) for f in SCOPE_FIELDS):
            return cls.model_validate({f: getattr(value, f) for f in SCOPE_FIELDS})
        raise TypeError(
            f"context must be a MemvaultContext or a dict of user_id/agent_id/run_id, got {value!r}"
        )


def message_text(message: ChatMessage) -> str:
    """The text of a message (its text blocks; images, tool calls etc. carry none)."""
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock) and b.text)


def to_memvault_messages(
    messages: Iterable[ChatMessage], roles: Sequence[str]
) -> list[dict[str, str]]:
    """The ``{"role", "content"}`` dicts memvault's ``add`` takes, for the roles we keep."""
    out = []
    for m in messages:
        role = m.role.value if isinstance(m.role, MessageRole) else str(m.role)
        text = message_text(m)
        if role in roles and text.strip():
            out.append({"role": role, "content": text})
    return out


def build_query(
    messages: Sequence[ChatMessage],
    input: str | ChatMessage | None,
    *,
    limit: int,
    max_chars: int,
) -> str:
    """The search query: the last ``limit`` user/assistant texts plus the new input.

    Like ``Mem0Memory``'s, but without system messages (LlamaIndex puts its own memory
    blocks there, which would echo old memories back into the query), tool output and
    role labels (noise for keyword scoring). Capped at ``max_chars``, keeping the most
    recent text, because the recent turns are what the memories must be relevant to.
    """
    texts = [c["content"] for c in to_memvault_messages(messages, DEFAULT_WRITE_ROLES)]
    texts = texts[-limit:] if limit > 0 else []
    if isinstance(input, ChatMessage):
        input = message_text(input)
    if input and input.strip():
        texts.append(input)
    query = "\n".join(texts).strip()
    return query[-max_chars:].strip() if len(query) > max_chars else query


def exclude_in_prompt(
    messages: Sequence[ChatMessage], input: str | ChatMessage | None
) -> dict[str, Any] | None:
    """A memvault filter leaving out memories whose text is already in the prompt.

    Why: writes happen per turn, so without it the message just ``put`` (and, without an
    LLM, every raw message of the live history) would come back as a "retrieved memory"
    next to itself. Memories told in earlier sessions, or flushed out of the history,
    still come back; so do extracted facts (their text differs from the messages').
    """
    texts = [t for m in messages if (t := message_text(m)).strip()]
    if isinstance(input, ChatMessage):
        input = message_text(input)
    if input and input.strip():
        texts.append(input)
    texts = list(dict.fromkeys(texts))
    return {"memory": {"nin": texts}} if texts else None


def format_memory(result: dict[str, Any]) -> str:
    """One memory line, with its categories in front as ``Mem0Memory`` shows them."""
    categories = result.get("categories")
    text = str(result.get("memory", ""))
    return f"[{', '.join(categories)}] : {text}" if categories else text


def memory_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """Retrieved memories as bullet lines, best first (memvault's ranking is kept)."""
    return [f"- {format_memory(r)}" for r in results]


def inject_memories(
    messages: list[ChatMessage], results: Sequence[dict[str, Any]], *, intro: str, outro: str
) -> list[ChatMessage]:
    """Put the retrieved memories into the first system message (creating one if needed).

    A block from an earlier injection (e.g. history that was ``set`` from a previous
    ``get``) is replaced, not repeated. Nothing is added when nothing was retrieved.
    """
    if not results:
        return messages
    text = "\n".join([intro, *memory_lines(results), outro])
    block = TextBlock(text=text)
    if messages and messages[0].role == MessageRole.SYSTEM:
        first = messages[0].model_copy()
        kept = [b for b in first.blocks if not (isinstance(b, TextBlock) and intro in b.text)]
        first.blocks = [*kept, block]
        return [first, *messages[1:]]
    return [ChatMessage(role=MessageRole.SYSTEM, blocks=[block]), *messages]
