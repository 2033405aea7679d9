"""MemvaultMemory against the real core on a real store: reads, writes, scopes, async."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.llms import ChatMessage, TextBlock
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import Memory as LlamaIndexMemory
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context, JsonSerializer

from memvault import AsyncMemory, ConfigError, Memory
from memvault.embedding import LocalEmbedder
from memvault_llamaindex import DEFAULT_INTRO, DEFAULT_OUTRO, MemvaultContext, MemvaultMemory
from tests.support.fake_openai import FakeOpenAI

# llama-index-workflows inspects agents with inspect.getmembers, tripping pydantic's
# deprecation warnings for every agent built; they are upstream's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def injected(messages: list[ChatMessage]) -> list[str]:
    """The memory lines of the injected block ([] when nothing was injected)."""
    system = [m for m in messages if m.role == "system" and DEFAULT_INTRO in (m.content or "")]
    if not system:
        return []
    assert len(system) == 1, "memories must be injected once"
    section = (system[0].content or "").split(DEFAULT_INTRO, 1)[1].split(DEFAULT_OUTRO, 1)[0]
    return [line[2:] for line in section.splitlines() if line.startswith("- ")]


def memories(store: Memory, **scope: str) -> list[str]:
    return sorted(r["memory"] for r in store.get_all(**scope)["results"])


# -- reads ------------------------------------------------------------------------------------


def test_get_injects_relevant_memories_as_a_system_message(mv: Memory) -> None:
    mv.add("I am allergic to peanuts", user_id="alice")
    mv.add("My favourite city is Lisbon", user_id="alice")
    memory = MemvaultMemory(memory=mv, context={"user_id": "alice"}, top_k=1)
    memory.primary_memory.put(user("Can you suggest a snack for me?"))

    messages = memory.get()

    assert messages[0].role == "system"
    assert injected(messages) == ["I am allergic to peanuts"]  # best hit; top_k respected
    assert messages[1:] == memory.get_all()  # the chat history follows, unchanged
    # Mem0Memory's framing, verbatim, so prompts written for mem0 keep working.
    assert (messages[0].content or "").startswith(DEFAULT_INTRO)
    assert (messages[0].content or "").endswith(DEFAULT_OUTRO)


async def test_aget_uses_the_input_and_recent_messages_as_query(amv: AsyncMemory) -> None:
    await amv.add("Alice's dog is called Rex", user_id="alice")
    await amv.add("Alice works as a nurse", user_id="alice")
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"}, top_k=1)

    assert injected(await memory.aget(input="what is my dog called?")) == [
        "Alice's dog is called Rex"
    ]
    await memory.aput(user("Tell me about my job"))
    assert injected(await memory.aget()) == ["Alice works as a nurse"]


async def test_injection_merges_into_an_existing_system_message(amv: AsyncMemory) -> None:
    await amv.add("I prefer answers in French", user_id="alice")
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    await memory.aset([ChatMessage(role="system", content="You are helpful."), user("Hello!")])

    first = await memory.aget()
    assert [m.role for m in first] == ["system", "user"]
    assert (first[0].content or "").startswith("You are helpful.")
    assert injected(first) == ["I prefer answers in French"]

    # History set from an earlier get() carries the old block: it is replaced, not repeated.
    await memory.aset(first)
    again = await memory.aget()
    assert [m.role for m in again] == ["system", "user"]
    assert (again[0].content or "").count(DEFAULT_INTRO) == 1
    assert injected(again) == ["I prefer answers in French"]


async def test_nothing_retrieved_means_nothing_injected(amv: AsyncMemory) -> None:
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    assert await memory.aget() == []  # empty history, no input: no query at all
    await memory.aput(user("Hi"))
    got = await memory.aget()
    # The message just put is in the prompt already; it is not echoed back as a memory.
    assert [m.role for m in got] == ["user"] and injected(got) == []


async def test_messages_already_in_the_prompt_are_not_repeated(amv: AsyncMemory) -> None:
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    await memory.aput(user("I have two cats"))
    await memory.aput(assistant("Two cats, noted!"))
    assert injected(await memory.aget(input="Do I have pets?")) == []
    # A new session (fresh chat history) does get them from long-term memory.
    later = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    assert "I have two cats" in injected(await later.aget(input="Do I have pets?"))


# -- writes -----------------------------------------------------------------------------------


def test_put_writes_every_turn_at_once(mv: Memory) -> None:
    memory = MemvaultMemory(memory=mv, context={"user_id": "alice"}, metadata={"app": "demo"})
    memory.put(user("I live in Oslo"))
    stored = mv.get_all(user_id="alice")["results"]
    assert [r["memory"] for r in stored] == ["I live in Oslo"]  # no FIFO flush needed
    assert stored[0]["role"] == "user"
    assert stored[0]["metadata"] == {"app": "demo", "session_id": memory.primary_memory.session_id}

    memory.put(assistant("Oslo is lovely in spring."))
    memory.put(ChatMessage(role="system", content="You are terse."))  # not remembered
    memory.put(ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "c1"}))
    memory.put(assistant(""))  # tool-call turns carry no text
    assert memories(mv, user_id="alice") == ["I live in Oslo", "Oslo is lovely in spring."]
    assert len(memory.get_all()) == 5  # the chat history keeps everything


async def test_aput_messages_writes_the_scratchpad_in_one_call(
    llm_config: dict[str, Any], srv: FakeOpenAI, embedder: LocalEmbedder
) -> None:
    srv.default_reply = {"memories": []}
    async with AsyncMemory(llm_config, embedder=embedder) as store:
        memory = MemvaultMemory(memory=store, context={"user_id": "alice"})
        call = ToolSelection(tool_id="c1", tool_name="weather", tool_kwargs={})
        await memory.aput_messages(
            [
                ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [call]}),
                ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c1"}),
                assistant("It is sunny in Oslo."),
                assistant("Take sunglasses."),
            ]
        )
    assert srv.count("chat.completions") == 1  # one LLM extraction for the whole batch
    prompt = json.dumps(srv.requests_for("chat.completions")[0].body["messages"])
    assert "It is sunny in Oslo." in prompt and "Take sunglasses." in prompt
    assert 'sunny\\"' not in prompt  # the tool output was not sent as a message


def test_put_goes_through_llm_extraction_when_configured(
    llm_config: dict[str, Any], srv: FakeOpenAI, embedder: LocalEmbedder, store_path: Path
) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "Alice is vegetarian"}]})
    memory = MemvaultMemory.from_config(
        {"user_id": "alice"}, llm_config, embedder=embedder, search_msg_limit=3
    )
    try:
        memory.put(user("Hi, I'm Alice and I stopped eating meat years ago."))
        assert srv.count("chat.completions") == 1
        body = srv.requests_for("chat.completions")[0].body
        assert "I stopped eating meat" in json.dumps(body["messages"])
        # The extracted fact is stored, not the raw message.
        assert memories(memory.memory, user_id="alice") == ["Alice is vegetarian"]
        assert memory.store_path == str(store_path)
        # ...and it is what a later session retrieves.
        later = MemvaultMemory(memory=memory.memory, context={"user_id": "alice"})
        assert injected(later.get(input="what should I cook for dinner?")) == [
            "Alice is vegetarian"
        ]
    finally:
        memory.close()


async def test_aput_goes_through_llm_extraction_and_infer_false_bypasses_it(
    llm_config: dict[str, Any], srv: FakeOpenAI, embedder: LocalEmbedder
) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "Bob plays the cello"}]})
    memory = MemvaultMemory.from_config({"user_id": "bob"}, llm_config, embedder=embedder)
    raw = MemvaultMemory.from_config({"user_id": "bob"}, llm_config, embedder=embedder, infer=False)
    try:
        await memory.aput(user("I've been practising my cello every evening"))
        await raw.aput(user("I also sing in a choir"))
        assert srv.count("chat.completions") == 1  # only the infer=True write asked the LLM
        got = await memory.amemory.get_all(user_id="bob")
        assert sorted(r["memory"] for r in got["results"]) == [
            "Bob plays the cello",
            "I also sing in a choir",
        ]
    finally:
        await memory.aclose()
        await raw.aclose()


async def test_aset_remembers_only_new_messages(amv: AsyncMemory) -> None:
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    history = [user("I am Alice"), assistant("Hi Alice")]
    await memory.aset(history)
    await memory.aset([*history, user("I like jazz")])  # what FunctionAgent does with chat_history
    got = await amv.get_all(user_id="alice")
    assert sorted(r["memory"] for r in got["results"]) == ["Hi Alice", "I am Alice", "I like jazz"]
    assert len(await memory.aget_all()) == 3


def test_set_and_reset(mv: Memory) -> None:
    memory = MemvaultMemory(memory=mv, context={"user_id": "alice"})
    memory.set([user("I am Alice")])
    memory.set([user("I am Alice"), assistant("Welcome")])
    assert memories(mv, user_id="alice") == ["I am Alice", "Welcome"]
    memory.reset()  # chat history only
    assert memory.get_all() == []
    assert memories(mv, user_id="alice") == ["I am Alice", "Welcome"]


async def test_areset_keeps_long_term_memories(amv: AsyncMemory) -> None:
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    await memory.aput(user("My birthday is in May"))
    await memory.areset()
    assert await memory.aget_all() == []
    assert injected(await memory.aget(input="when is my birthday?")) == ["My birthday is in May"]


# -- scopes -----------------------------------------------------------------------------------


async def test_two_users_never_see_each_others_memories(amv: AsyncMemory) -> None:
    alice = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    bob = MemvaultMemory(memory=amv, context={"user_id": "bob"})
    await alice.aput(user("My bank PIN hint is the blue door"))
    await bob.aput(user("I like the colour blue"))

    for question in ("What is my PIN hint?", "blue door bank PIN", "blue"):
        for_bob = injected(
            await MemvaultMemory(memory=amv, context={"user_id": "bob"}).aget(input=question)
        )
        assert for_bob and all("PIN" not in m for m in for_bob)
    fresh_alice = MemvaultMemory(memory=amv, context={"user_id": "alice"})  # a new session
    for_alice = injected(await fresh_alice.aget(input="blue"))
    assert for_alice == ["My bank PIN hint is the blue door"]
    assert (await amv.count(user_id="alice"), await amv.count(user_id="bob")) == (1, 1)


def test_agent_and_run_ids_scope_reads_and_writes(mv: Memory) -> None:
    ctx = {"user_id": "alice", "agent_id": "travel", "run_id": "trip-1"}
    memory = MemvaultMemory(memory=mv, context=ctx)
    memory.put(user("Book window seats"))
    stored = mv.get_all(user_id="alice")["results"][0]
    assert (stored["user_id"], stored["agent_id"], stored["run_id"]) == (
        "alice",
        "travel",
        "trip-1",
    )
    other_agent = MemvaultMemory(memory=mv, context={"user_id": "alice", "agent_id": "food"})
    assert injected(other_agent.get(input="seats")) == []
    same_agent = MemvaultMemory(memory=mv, context={"user_id": "alice", "agent_id": "travel"})
    assert injected(same_agent.get(input="seats")) == ["Book window seats"]


def test_context_is_required_and_checked(mv: Memory) -> None:
    with pytest.raises(ValueError, match="needs a context"):
        MemvaultMemory(memory=mv)
    with pytest.raises(ValueError, match="at least one"):
        MemvaultMemory(memory=mv, context={})
    with pytest.raises(ValueError, match="whitespace"):
        MemvaultMemory(memory=mv, context={"user_id": "alice smith"})
    with pytest.raises(TypeError, match="context must be"):
        MemvaultMemory(memory=mv, context="alice")
    assert MemvaultContext.coerce({"run_id": "r1"}).scope() == {"run_id": "r1"}


# -- async is native --------------------------------------------------------------------------


async def test_async_methods_never_use_thread_wrappers(
    amv: AsyncMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_threads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("asyncio.to_thread used: the async path must be native")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    await memory.aset([user("I am Alice")])
    await memory.aput(user("I collect stamps"))
    await memory.aput_messages([assistant("Stamps are great"), user("Old ones")])
    await memory.aget(input="hobbies")
    await memory.aget_all()
    await memory.areset()
    assert await amv.count(user_id="alice") == 4
    assert memory.handles._sync is None  # the sync handle was never needed, nor opened


# -- constructors and handles -----------------------------------------------------------------


async def test_a_sync_handle_gets_an_async_twin_over_the_same_store(
    mv: Memory, embedder: LocalEmbedder
) -> None:
    memory = MemvaultMemory(memory=mv, context={"user_id": "alice"})
    memory.put(user("I drink oat milk"))  # sync: the given Memory
    await memory.aput(user("I drink green tea"))  # async: a twin over the same file
    assert isinstance(memory.amemory, AsyncMemory) and memory.memory is mv
    assert memory.amemory.path == mv.path
    assert memory.amemory.embedder is embedder  # one loaded model, shared
    assert memories(mv, user_id="alice") == ["I drink green tea", "I drink oat milk"]
    await memory.aclose()  # closes the twin it opened, not the caller's Memory
    assert mv.count(user_id="alice") == 2


async def test_from_defaults_forwards_to_the_primary_memory(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    memory = MemvaultMemory.from_defaults(
        user_id="alice",
        path=store_path,
        embedder=embedder,
        session_id="chat-7",
        chat_history=[user("Earlier message")],
        token_limit=5000,
        top_k=3,
    )
    try:
        assert memory.primary_memory.session_id == "chat-7"
        assert memory.primary_memory.token_limit == 5000
        assert memory.top_k == 3 and memory.context.scope() == {"user_id": "alice"}
        assert [m.content for m in await memory.aget_all()] == ["Earlier message"]
        assert memory.store_path == str(store_path)
        await memory.aput(user("Hello"))
        assert (await memory.amemory.count(user_id="alice")) == 1
    finally:
        await memory.aclose()

    with pytest.raises(ValueError, match="not both"):
        MemvaultMemory.from_defaults({"user_id": "a"}, user_id="b")
    with pytest.raises(ValueError, match="not both"):
        MemvaultMemory.from_defaults(
            user_id="a", primary_memory=LlamaIndexMemory.from_defaults(), token_limit=10
        )
    with pytest.raises(ValueError, match="not both"):
        MemvaultMemory.from_defaults(user_id="a", memory=object(), path=store_path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"memvault\.Memory or memvault\.AsyncMemory"):
        MemvaultMemory.from_defaults(user_id="a", memory=object())  # type: ignore[arg-type]


def test_from_config_takes_mem0_shaped_configs(tmp_path: Path, embedder: LocalEmbedder) -> None:
    mem0_config = {"version": "v1.1", "history_db_path": str(tmp_path / "mem0.db")}
    memory = MemvaultMemory.from_config({"user_id": "alice"}, mem0_config, embedder=embedder)
    try:
        memory.put(user("I am learning Go"))
        assert memory.memory.path == str(tmp_path / "mem0.db")
        assert memory.search_msg_limit == 5
    finally:
        memory.close()
    with pytest.raises(ConfigError, match="graph_store"):
        MemvaultMemory.from_config({"user_id": "a"}, {"graph_store": {"provider": "neo4j"}})


def test_default_store_lives_under_memvault_home(tmp_path: Path, embedder: LocalEmbedder) -> None:
    memory = MemvaultMemory(context={"user_id": "alice"}, embedder=embedder)
    try:
        memory.put(user("I use the default store"))
        assert Path(memory.memory.path).is_relative_to(tmp_path / "memvault-home")
    finally:
        memory.close()


async def test_serialized_memory_reopens_the_same_store(
    amv: AsyncMemory, embedder: LocalEmbedder
) -> None:
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"}, top_k=4)
    await memory.aput(user("My passport expires in 2031"))
    data = memory.to_dict()
    assert data["class_name"] == "MemvaultMemory" and data["store_path"] == amv.path
    json.dumps(data)  # JSON-serializable (no handles, no secrets)

    restored = MemvaultMemory.from_dict(data)
    try:
        assert restored.top_k == 4 and restored.context == memory.context
        assert injected(await restored.aget(input="passport")) == ["My passport expires in 2031"]
    finally:
        await restored.aclose()


# -- inside agents ----------------------------------------------------------------------------


def echo_llm(prompts: list[list[ChatMessage]]) -> MockFunctionCallingLLM:
    """A function-calling mock that records each prompt and calls the `note` tool once."""

    def respond(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        prompts.append(list(messages))
        if messages[-1].role == "user" and "note" in (messages[-1].content or ""):
            call = ToolSelection(tool_id="t1", tool_name="note", tool_kwargs={"text": "x"})
            return ChatMessage(
                role="assistant", content="", additional_kwargs={"tool_calls": [call]}
            )
        return assistant("Done.")

    return MockFunctionCallingLLM(response_generator=respond)


def note(text: str) -> str:
    """Take a note."""
    return f"noted {text}"


async def test_function_agent_reads_and_writes_every_turn(amv: AsyncMemory) -> None:
    await amv.add("Alice's manager is called Priya", user_id="alice")
    prompts: list[list[ChatMessage]] = []
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(note)], llm=echo_llm(prompts))
    memory = MemvaultMemory(memory=amv, context={"user_id": "alice"})
    ctx = Context(agent)

    await agent.run(user_msg="Please note that Priya is my manager", memory=memory, ctx=ctx)
    # Every LLM call (before and after the tool call) saw the retrieved memory.
    assert len(prompts) == 2
    assert all(injected(p) == ["Alice's manager is called Priya"] for p in prompts)
    got = {r["memory"]: r["role"] for r in (await amv.get_all(user_id="alice"))["results"]}
    assert got == {
        "Alice's manager is called Priya": "user",  # a plain string add
        "Please note that Priya is my manager": "user",
        "Done.": "assistant",
    }
    # The workflow Context (with the memory in its store) serializes and restores.
    restored = Context.from_dict(agent, ctx.to_dict(serializer=JsonSerializer()))
    again = await restored.store.get("memory")
    assert isinstance(again, MemvaultMemory) and again.store_path == amv.path
    await again.aclose()


async def test_agent_workflow_takes_it_too(amv: AsyncMemory) -> None:
    await amv.add("Bob's favourite colour is green", user_id="bob")
    prompts: list[list[ChatMessage]] = []
    workflow = AgentWorkflow(
        agents=[FunctionAgent(name="helper", description="helps", tools=[], llm=echo_llm(prompts))],
        root_agent="helper",
    )
    memory = MemvaultMemory(memory=amv, context={"user_id": "bob"})
    await workflow.run(user_msg="Which colour do I like?", memory=memory)
    assert injected(prompts[0]) == ["Bob's favourite colour is green"]
    assert await amv.count(user_id="bob") == 3


def test_text_of_multi_block_messages_is_used(mv: Memory) -> None:
    memory = MemvaultMemory(memory=mv, context={"user_id": "alice"})
    memory.put(
        ChatMessage(role="user", blocks=[TextBlock(text="Part one."), TextBlock(text="Part two.")])
    )
    assert memories(mv, user_id="alice") == ["Part one.\nPart two."]


async def test_sequential_memories_sharing_an_embedder_in_one_loop(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    # A server handling one request after another on one loop, one memory per request.
    for request in range(2):
        memory = MemvaultMemory.from_defaults(
            user_id="alice", path=tmp_path / "shared.db", embedder=embedder
        )
        try:
            await memory.aput(user(f"request {request}"))
        finally:
            await memory.aclose()
