"""A LangGraph agent that learns a preference in one thread and uses it in another.

Fully offline: the chat model is scripted (no API key, no network) and memvault
embeds with its bundled model. What is real is the memory path:

- ``MemvaultStore`` is the agent's LangGraph store; the ``remember`` / ``recall``
  / ``forget`` tools find memvault through it and take the user from the run's
  config, never from the model;
- ``MemvaultMiddleware`` puts the user's relevant memories into the system prompt
  before every model call, and records each finished run in the background.

Thread ``t1``: Alice says she prefers green tea; the model calls ``remember``.
Thread ``t2`` (a new conversation, so no shared messages): Alice asks what to
drink; the memory arrives in the system prompt and the model answers with it.
Afterwards the memory is in the store file, for the CLI as for any app::

    python examples/langgraph_agent.py --path ./demo.db
    memvault --path ./demo.db search "what does alice drink" --user alice
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver

from memvault.embedding import Embedder
from memvault_langgraph import MemoryWriter, MemvaultMiddleware, MemvaultStore, create_memory_tools

Step = AIMessage | Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """A fake chat model that plays a script: fixed replies, or functions of its input.

    Like ``GenericFakeChatModel`` (which cannot bind tools), plus steps that look
    at the messages they are given, so a reply can depend on the system prompt.
    """

    script: list[Any]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self  # the script already knows which tools it calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if not self.script:
            raise RuntimeError("the scripted model ran out of replies")
        step = self.script.pop(0)
        reply = step(messages) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=reply)])


def answer_from_memory(messages: list[BaseMessage]) -> AIMessage:
    """Thread 2's reply: built only from what the system prompt says about the user."""
    system = next((m for m in messages if isinstance(m, SystemMessage)), None)
    facts = [
        line[2:] for line in (system.text if system else "").splitlines() if line.startswith("- ")
    ]
    if not facts:
        return AIMessage("I don't know your taste yet. What do you usually like?")
    return AIMessage(f"From what I remember ({facts[0]}), I'd suggest exactly that this afternoon.")


def script() -> list[Step]:
    return [
        # t1, turn 1: the model decides the preference is worth keeping.
        AIMessage(
            "",
            tool_calls=[
                {
                    "name": "remember",
                    "id": "call-1",
                    "args": {"content": "Alice prefers green tea over coffee"},
                }
            ],
        ),
        AIMessage("Noted: green tea rather than coffee."),
        # t2, turn 1: a new thread; the memory comes from the middleware, not the messages.
        answer_from_memory,
    ]


def run(path: str | Path, *, embedder: Embedder | None = None) -> dict[str, Any]:
    """Run both threads against the store at ``path``; returns what the test checks."""
    with MemvaultStore(path=path, embedder=embedder) as store:
        # No LLM is configured here, so Memory.add stores messages verbatim: record only
        # what the user said. With an LLM (config "llm"), keep both roles: it extracts facts.
        writer = MemoryWriter(store, debounce_seconds=0.2, roles=("user",))
        middleware = MemvaultMiddleware(store, writer=writer, limit=3)
        agent = create_agent(
            ScriptedChatModel(script=script()),
            tools=create_memory_tools(),  # memory=None: the tools use the agent's store
            system_prompt="You are a helpful assistant.",
            middleware=[middleware],
            checkpointer=InMemorySaver(),
            store=store,
        )
        try:
            first = agent.invoke(
                {"messages": [{"role": "user", "content": "I prefer green tea over coffee."}]},
                {"configurable": {"thread_id": "t1", "user_id": "alice"}},
            )
            writer.flush(timeout=30)  # the demo waits for the background write; apps need not
            second = agent.invoke(
                {"messages": [{"role": "user", "content": "What should I drink this afternoon?"}]},
                {"configurable": {"thread_id": "t2", "user_id": "alice"}},
            )
        finally:
            middleware.close()
        memories = store.memory.get_all(user_id="alice")["results"]
    return {
        "thread1": first["messages"][-1].text,
        "thread2": second["messages"][-1].text,
        "thread2_messages": len(second["messages"]),
        "memories": [m["memory"] for m in memories],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="store file (default: a temporary directory)")
    args = parser.parse_args()
    path = args.path or str(Path(tempfile.mkdtemp(prefix="memvault-langgraph-")) / "demo.db")
    out = run(path)
    print(f"thread t1 > {out['thread1']}")
    print(f"thread t2 > {out['thread2']}")
    print("memories of alice:", *(f"  - {m}" for m in out["memories"]), sep="\n")
    print(f'\nsee them with: memvault --path {path} search "what does alice drink" --user alice')


if __name__ == "__main__":
    main()
