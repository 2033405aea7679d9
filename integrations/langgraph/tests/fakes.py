"""A scripted chat model for offline agent tests (the only fake: memvault parts are real)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class ScriptedChatModel(BaseChatModel):
    """Plays ``script`` in order: ``AIMessage``s, or callables of the input messages.

    ``seen`` keeps every input it was given, so a test can check what reached the model.
    """

    script: list[Any]
    seen: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        step = self.script.pop(0)
        reply = step(messages) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=reply)])


def call(name: str, call_id: str, **args: Any) -> AIMessage:
    """An AI message calling one tool."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def system_text(messages: Sequence[BaseMessage]) -> str:
    """The text of the system messages a model call received."""
    return "\n".join(str(m.text) for m in messages if isinstance(m, SystemMessage))
