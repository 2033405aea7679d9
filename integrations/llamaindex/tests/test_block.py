"""MemvaultMemoryBlock inside LlamaIndex's Memory: rendering, scopes, flush writes, budget."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import Memory, StaticMemoryBlock
from llama_index.core.storage.chat_store.sql import MessageStatus

from memvault import AsyncMemory
from memvault import Memory as MemvaultMemory
from memvault.embedding import LocalEmbedder
from memvault_llamaindex import MemvaultMemoryBlock

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

FOODS = [
    "Alice loves spicy Thai food",
    "Alice is allergic to shellfish",
    "Alice cooks pasta on Sundays",
    "Alice dislikes olives",
    "Alice drinks her coffee black",
]


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def section(messages: list[ChatMessage], name: str) -> list[str] | None:
    """The lines of block ``name`` in the rendered <memory> system message (None: absent)."""
    system = messages[0].content or "" if messages and messages[0].role == "system" else ""
    found = re.search(rf"<{name}>\n(.*?)\n</{name}>", system, re.DOTALL)
    if found is None:
        return None
    return [line.strip() for line in found.group(1).splitlines() if line.strip()]


async def archived(memory: Memory) -> list[str | None]:
    """The messages the FIFO queue flushed out of the short-term history."""
    gone = await memory.sql_store.get_messages(memory.session_id, status=MessageStatus.ARCHIVED)
    return [m.content for m in gone]


@pytest.fixture
async def alice_foods(amv: AsyncMemory) -> AsyncMemory:
    for fact in FOODS:
        await amv.add(fact, user_id="alice")
    return amv


async def test_block_renders_retrieved_memories_in_the_memory_template(
    alice_foods: AsyncMemory,
) -> None:
    block = MemvaultMemoryBlock(memory=alice_foods, context={"user_id": "alice"}, top_k=2)
    memory = Memory.from_defaults(memory_blocks=[block])
    await memory.aput(user("What seafood should I avoid?"))
    lines = section(await memory.aget(), "memvault")
    assert lines is not None and lines[0] == "- Alice is allergic to shellfish"
    assert len(lines) == 2  # top_k


async def test_block_is_scoped(alice_foods: AsyncMemory) -> None:
    await alice_foods.add("Bob is allergic to shellfish too", user_id="bob")
    block = MemvaultMemoryBlock(memory=alice_foods, context={"user_id": "bob"})
    memory = Memory.from_defaults(memory_blocks=[block])
    got = section(await memory.aget(input="allergies? thai? pasta? olives? coffee?"), "memvault")
    assert got == ["- Bob is allergic to shellfish too"]


async def test_flushed_messages_are_written_in_the_session_scope(amv: AsyncMemory) -> None:
    block = MemvaultMemoryBlock(memory=amv)  # no context: run_id = the Memory's session_id
    memory = Memory.from_defaults(
        session_id="chat-1", token_limit=40, token_flush_size=10, memory_blocks=[block]
    )
    turns = [
        ("My sister Maria lives in Madrid", "Madrid is a great city."),
        ("I am training for a marathon", "Good luck with the training!"),
        ("I want to visit Japan next year", "Japan is beautiful in spring."),
    ]
    for said, answered in turns:
        await memory.aput(user(said))
        await memory.aput(ChatMessage(role="assistant", content=answered))

    flushed = (await amv.get_all(run_id="chat-1"))["results"]
    assert flushed, "the FIFO queue flushed into the block"
    assert {r["metadata"]["session_id"] for r in flushed} == {"chat-1"}
    assert any(r["memory"] == "My sister Maria lives in Madrid" for r in flushed)
    assert {r["memory"] for r in flushed} == set(await archived(memory))  # exactly those
    # The same session recalls what left its short-term history ...
    lines = section(await memory.aget(input="Where does my sister live?"), "memvault")
    assert lines is not None and "- My sister Maria lives in Madrid" in lines
    # ... another session does not.
    other = Memory.from_defaults(
        session_id="chat-2", memory_blocks=[MemvaultMemoryBlock(memory=amv)]
    )
    assert section(await other.aget(input="Where does my sister live?"), "memvault") is None


async def test_accept_short_term_memory_false_writes_nothing_on_flush(amv: AsyncMemory) -> None:
    block = MemvaultMemoryBlock(
        memory=amv, context={"user_id": "alice"}, accept_short_term_memory=False
    )
    memory = Memory.from_defaults(token_limit=40, token_flush_size=10, memory_blocks=[block])
    for i in range(4):
        await memory.aput(user(f"Message number {i} with a few words in it"))
        await memory.aput(ChatMessage(role="assistant", content=f"Answer number {i}"))
    assert await archived(memory), "the FIFO queue flushed"
    assert await amv.count(user_id="alice") == 0
    await block.aput([user("Told directly")])  # a direct put still writes
    assert await amv.count(user_id="alice") == 1


async def test_truncation_drops_lowest_ranked_memories_first(alice_foods: AsyncMemory) -> None:
    block = MemvaultMemoryBlock(memory=alice_foods, context={"user_id": "alice"}, priority=1)
    profile = StaticMemoryBlock(name="profile", static_content="Name: Alice", priority=0)
    question = user("What food does Alice like?")
    full = await block.aget([question])
    full_lines = full.splitlines()
    assert len(full_lines) == 5

    probe = Memory.from_defaults(memory_blocks=[profile, block])
    await probe.aput(question)
    used = (
        probe._estimate_token_count(question)
        + probe._estimate_token_count("Name: Alice")
        + probe._estimate_token_count(full)
    )

    # One token over budget: only the last (lowest-ranked) memory goes.
    tight = Memory.from_defaults(token_limit=used - 1, memory_blocks=[profile, block])
    await tight.aput(question)
    got = await tight.aget()
    assert section(got, "memvault") == full_lines[:-1]
    assert section(got, "profile") == ["Name: Alice"]

    # Over budget by more than the block: it goes whole; priority 0 is never truncated.
    over = probe._estimate_token_count(full) + 5
    tiny = Memory.from_defaults(token_limit=used - over, memory_blocks=[profile, block])
    await tiny.aput(question)
    got = await tiny.aget()
    assert section(got, "memvault") is None
    assert section(got, "profile") == ["Name: Alice"]

    # A memvault block with priority 0 is kept whole, however tight the budget.
    keep = MemvaultMemoryBlock(memory=alice_foods, context={"user_id": "alice"}, priority=0)
    kept = Memory.from_defaults(token_limit=used - over, memory_blocks=[keep])
    await kept.aput(question)
    assert section(await kept.aget(), "memvault") == full_lines


async def test_atruncate_directly(amv: AsyncMemory) -> None:
    block = MemvaultMemoryBlock(memory=amv, context={"user_id": "alice"})
    content = "- one\n- two\n- three"
    last = len(block.tokenizer_fn("- three")) + 1  # the line and its newline
    assert await block.atruncate(content, 0) == content
    assert await block.atruncate(content, 1) == "- one\n- two"
    assert await block.atruncate(content, last) == "- one\n- two"
    assert await block.atruncate(content, last + 1) == "- one"
    assert await block.atruncate(content, 1000) is None


async def test_block_in_a_function_agent(alice_foods: AsyncMemory) -> None:
    prompts: list[list[ChatMessage]] = []

    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        prompts.append(list(messages))
        return ChatMessage(role="assistant", content="Avoid shellfish.")

    agent = FunctionAgent(tools=[], llm=MockFunctionCallingLLM(response_generator=respond))
    block = MemvaultMemoryBlock(memory=alice_foods, context={"user_id": "alice"}, top_k=1)
    memory = Memory.from_defaults(session_id="s1", memory_blocks=[block])
    await agent.run(user_msg="Any seafood I should skip?", memory=memory)
    assert section(prompts[0], "memvault") == ["- Alice is allergic to shellfish"]


async def test_block_constructors(
    mv: MemvaultMemory, store_path: Path, embedder: LocalEmbedder
) -> None:
    mv.add("Carol plays chess", user_id="carol")
    over_sync = MemvaultMemoryBlock(memory=mv, context={"user_id": "carol"})
    assert await over_sync.aget([user("chess?")]) == "- Carol plays chess"
    assert over_sync.amemory.embedder is embedder  # async twin shares the model

    from_config = MemvaultMemoryBlock.from_config(
        {"path": str(store_path)}, context={"user_id": "carol"}, embedder=embedder, name="lt"
    )
    try:
        assert from_config.name == "lt"
        assert await from_config.aget([user("chess?")]) == "- Carol plays chess"
    finally:
        await from_config.aclose()
        await over_sync.aclose()
    assert mv.count(user_id="carol") == 1  # the caller's handle stays open

    no_scope = MemvaultMemoryBlock(memory=mv)
    with pytest.raises(ValueError, match="no context"):
        await no_scope.aget([user("chess?")])
    await no_scope.aclose()
