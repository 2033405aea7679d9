"""A fake CrewAI LLM for the memory tests (the only thing faked: the remote model)."""

from __future__ import annotations

from typing import Any

from crewai.llms.base_llm import BaseLLM


class UnhelpfulLLM(BaseLLM):
    """Answers every prompt with non-JSON, so CrewAI's memory analysis falls back to defaults.

    That is the documented degraded mode (scope ``/``, the whole content as one
    memory): the tests then see exactly what the storage was asked to do.
    """

    calls: int = 0

    def call(
        self,
        messages: str | list[Any],
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        self.calls += 1
        return "I cannot produce JSON."

    def get_input_tokens_count(
        self, messages: Any, tools: Any = None, response_model: Any = None
    ) -> int:
        return 1

    def supports_function_calling(self) -> bool:
        return False

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 8192
