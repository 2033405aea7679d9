"""langchain-tests standard suites: the memory tools and the retriever."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import RetrieversIntegrationTests, ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from memvault import Memory
from memvault_langgraph import (
    MemvaultRetriever,
    MemvaultStore,
    create_forget_tool,
    create_recall_tool,
    create_remember_tool,
)

FACTS = [
    "Sam drinks green tea in the morning",
    "Sam drinks mint tea after dinner",
    "Sam dislikes iced tea",
    "Sam's tea kettle is electric",
    "Sam plays the violin",
]


class _WithMemory:
    """Each test gets a fresh store file with a few memories (standard suites build tools
    from properties, so the fixture stashes the memory on the test instance)."""

    memory: Memory

    @pytest.fixture(autouse=True)
    def _memory(self, memory: Memory) -> None:
        for fact in FACTS:
            memory.add(fact, user_id="sam")
        self.memory = memory


class _Remember(_WithMemory):
    @property
    def tool_constructor(self) -> BaseTool:
        return create_remember_tool(self.memory, user_id="sam")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"content": "Sam is learning Portuguese"}


class _Recall(_WithMemory):
    @property
    def tool_constructor(self) -> BaseTool:
        return create_recall_tool(self.memory, user_id="sam")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "tea", "limit": 2}


class _Forget(_WithMemory):
    @property
    def tool_constructor(self) -> BaseTool:
        return create_forget_tool(self.memory, user_id="sam")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        # every invocation forgets a memory that exists (the fixture adds them per test)
        return {"memory_id": self.memory.get_all(user_id="sam")["results"][0]["id"]}


class TestRememberToolUnit(_Remember, ToolsUnitTests):
    pass


class TestRememberToolIntegration(_Remember, ToolsIntegrationTests):
    pass


class TestRecallToolUnit(_Recall, ToolsUnitTests):
    pass


class TestRecallToolIntegration(_Recall, ToolsIntegrationTests):
    pass


class TestForgetToolUnit(_Forget, ToolsUnitTests):
    pass


class TestForgetToolIntegration(_Forget, ToolsIntegrationTests):
    pass


class TestMemvaultRetriever(_WithMemory, RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[MemvaultRetriever]:
        return MemvaultRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.memory, "user_id": "sam"}

    @property
    def retriever_query_example(self) -> str:
        return "what tea does Sam drink"


class TestMemvaultRetrieverOverStore(TestMemvaultRetriever):
    """The same, with the retriever reading through a MemvaultStore (sync + async twins)."""

    @pytest.fixture(autouse=True)
    def _store(self, _memory: None) -> Any:
        with MemvaultStore(memory=self.memory) as store:
            self.store = store
            yield

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.store, "user_id": "sam"}


def test_retriever_documents_carry_memory_metadata(memory: Memory) -> None:
    memory.add("Sam plays the violin", user_id="sam", metadata={"topic": "music"})
    docs = MemvaultRetriever(memory=memory, user_id="sam", k=1).invoke("instrument")
    assert docs[0].page_content == "Sam plays the violin"
    assert docs[0].metadata["user_id"] == "sam" and docs[0].metadata["score"] > 0
    assert docs[0].metadata["metadata"] == {"topic": "music"} and docs[0].id
    filtered = MemvaultRetriever(memory=memory, user_id="sam").invoke(
        "instrument", filters={"topic": "sports"}
    )
    assert filtered == []
    with pytest.raises(TypeError, match="scope is fixed"):
        MemvaultRetriever(memory=memory, user_id="sam").invoke("x", user_id="other")
