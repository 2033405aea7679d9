"""``memvault.Memory`` as the ``client=`` of llama-index-memory-mem0's ``Mem0Memory``, unchanged.

How Mem0Memory 2.1.0 drives its client (llama_index/memory/mem0/base.py):
* ``put(msg)`` / ``set(msgs)`` -> ``client.add(messages=[{"role", "content"}, ...], **context)``
  (user/assistant messages with content only; nothing when none is left);
* ``get(input)`` -> ``client.search(query="<role>: <text>\\n...", filters=context)`` and reads
  ``result["results"][i]["memory"]`` / ``["categories"]``.
These tests run exactly that code against a real memvault store.
"""

from __future__ import annotations

import inspect
from typing import Any

import mem0
import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import Memory as LlamaIndexMemory
from llama_index.memory.mem0 import Mem0Memory
from llama_index.memory.mem0.base import Mem0Context
from llama_index.memory.mem0.utils import DEFAULT_INTRO_PREFERENCES
from mem0.memory.main import _validate_and_trim_search_query

import memvault
from memvault import ValidationError
from memvault_llamaindex import DEFAULT_INTRO, MemvaultMemory

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")


def mem0_memory(client: Any, **context: str) -> Mem0Memory:
    return Mem0Memory(
        primary_memory=LlamaIndexMemory.from_defaults(), context=context, client=client
    )


def system_text(messages: list[ChatMessage]) -> str:
    assert messages[0].role == "system"
    return messages[0].content or ""


def test_put_and_get_round_trip(mv: memvault.Memory) -> None:
    memory = mem0_memory(mv, user_id="alice")
    memory.put(ChatMessage(role="user", content="I am vegetarian"))
    memory.put(ChatMessage(role="assistant", content="Noted, no meat."))
    memory.put(ChatMessage(role="system", content="ignored"))  # Mem0Memory filters it out
    stored = mv.get_all(user_id="alice")["results"]
    assert sorted((r["role"], r["memory"]) for r in stored) == [
        ("assistant", "Noted, no meat."),
        ("user", "I am vegetarian"),
    ]

    later = mem0_memory(mv, user_id="alice")  # a new session
    text = system_text(later.get(input="What should I cook tonight?"))
    assert DEFAULT_INTRO_PREFERENCES in text and "I am vegetarian" in text


def test_categories_are_rendered_as_mem0_renders_them(mv: memvault.Memory) -> None:
    mv.add("Likes jazz", user_id="alice", categories=["music", "hobbies"], infer=False)
    text = system_text(mem0_memory(mv, user_id="alice").get(input="music?"))
    assert "[music, hobbies] : Likes jazz" in text


def test_scopes_from_the_mem0_context(mv: memvault.Memory) -> None:
    alice = mem0_memory(mv, user_id="alice", agent_id="coach")
    bob = mem0_memory(mv, user_id="bob", agent_id="coach")
    alice.put(ChatMessage(role="user", content="I run 10k every Sunday"))
    bob.put(ChatMessage(role="user", content="I swim on Mondays"))
    stored = mv.get_all(user_id="alice")["results"]
    assert [(r["memory"], r["agent_id"]) for r in stored] == [("I run 10k every Sunday", "coach")]
    text = system_text(mem0_memory(mv, user_id="bob", agent_id="coach").get(input="sport"))
    assert "I swim on Mondays" in text and "10k" not in text


def test_set_adds_only_new_messages(mv: memvault.Memory) -> None:
    memory = mem0_memory(mv, run_id="r1")
    memory.set([ChatMessage(role="user", content="first")])
    memory.set(
        [ChatMessage(role="user", content="first"), ChatMessage(role="user", content="second")]
    )
    assert sorted(r["memory"] for r in mv.get_all(run_id="r1")["results"]) == ["first", "second"]


async def test_in_a_function_agent(mv: memvault.Memory) -> None:
    mv.add("Alice's daughter is called Zoe", user_id="alice")
    prompts: list[list[ChatMessage]] = []

    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        prompts.append(list(messages))
        return ChatMessage(role="assistant", content="Zoe, of course.")

    agent = FunctionAgent(tools=[], llm=MockFunctionCallingLLM(response_generator=respond))
    memory = mem0_memory(mv, user_id="alice")
    answer = await agent.run(user_msg="What's my daughter's name?", memory=memory)
    assert str(answer) == "Zoe, of course."
    assert "Alice's daughter is called Zoe" in system_text(prompts[0])
    assert sorted(r["memory"] for r in mv.get_all(user_id="alice")["results"]) == [
        "Alice's daughter is called Zoe",
        "What's my daughter's name?",
        "Zoe, of course.",
    ]


def test_memvault_accepts_every_keyword_mem0_oss_takes() -> None:
    """The signature contract behind "change the import": mem0 OSS kwargs all exist."""
    known_gaps = {"search": {"reference_date"}}  # platform-only in mem0; OSS raises on it
    for name in ("add", "search", "get_all", "get", "update", "delete", "delete_all", "history"):
        ours = inspect.signature(getattr(memvault.Memory, name)).parameters
        theirs = inspect.signature(getattr(mem0.Memory, name)).parameters
        missing = {
            p
            for p, spec in theirs.items()
            if p != "self" and spec.kind is not inspect.Parameter.VAR_KEYWORD and p not in ours
        }
        assert missing == known_gaps.get(name, set()), name


def test_migrating_from_mem0memory_keeps_the_context_and_framing(mv: memvault.Memory) -> None:
    context = Mem0Context(user_id="alice")
    memory = MemvaultMemory(memory=mv, context=context)  # a Mem0Context is accepted as is
    assert memory.context.scope() == {"user_id": "alice"}
    assert DEFAULT_INTRO == DEFAULT_INTRO_PREFERENCES
    mem0_memory(mv, user_id="alice").put(ChatMessage(role="user", content="I like tea"))
    assert "I like tea" in system_text(memory.get(input="drinks?"))


def test_get_on_an_empty_history_fails_as_with_mem0(mv: memvault.Memory) -> None:
    # With no history and no input, Mem0Memory searches for "". mem0 2.2.1 refuses that
    # with a ValueError (mem0.memory.main._validate_and_trim_search_query); memvault with its
    # ValidationError, also a ValueError. (MemvaultMemory skips the search instead; agents
    # always put the user message before the first get.)
    with pytest.raises(ValueError, match="empty"):
        _validate_and_trim_search_query("")
    with pytest.raises(ValidationError, match="empty"):
        mem0_memory(mv, user_id="alice").get()
