"""A LlamaIndex ``FunctionAgent`` that remembers a user across sessions with memvault.

Session 1: Sam tells the agent about a peanut allergy. Session 2 is a brand-new chat
(new short-term memory, new session id, new agent) -- the only link is memvault, scoped to
``user_id="sam"``. When Sam asks which kitchen snacks are safe, ``MemvaultMemory`` has
already put the allergy into the system prompt, and the agent filters the tool's answer.

Runs offline: the model is LlamaIndex's ``MockFunctionCallingLLM`` with a scripted
``response_generator`` that only reads what it is given (it knows nothing of memvault),
and memvault uses its bundled local embedder with no LLM (messages are stored as they are;
configure ``llm`` in the memvault config to store extracted facts instead).

    python examples/llamaindex_agent.py            # a throwaway store
    python examples/llamaindex_agent.py --store ./sam.db
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

from memvault import AsyncMemory
from memvault.embedding.base import Embedder
from memvault_llamaindex import DEFAULT_INTRO, DEFAULT_OUTRO, MemvaultMemory

SNACKS = ["peanut butter cookies", "apple slices", "trail mix with peanuts", "rice crackers"]


def list_snacks() -> str:
    """List the snacks in the office kitchen."""
    return ", ".join(SNACKS)


def recalled_memories(messages: Sequence[ChatMessage]) -> list[str]:
    """The memories MemvaultMemory injected into the system message (what the model sees)."""
    for m in messages:
        text = m.content or ""
        if m.role == "system" and DEFAULT_INTRO in text:
            section = text.split(DEFAULT_INTRO, 1)[1].split(DEFAULT_OUTRO, 1)[0]
            return [line[2:] for line in section.splitlines() if line.startswith("- ")]
    return []


def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """The scripted model: acknowledge facts, call the tool for snacks, answer from memory."""
    last = messages[-1]
    if last.role == "tool":  # the snack list came back: filter it by what we remember
        allergies = [m for m in recalled_memories(messages) if "allergic" in m.lower()]
        offered = [s for s in SNACKS if s in (last.content or "")]
        if any("peanut" in m.lower() for m in allergies):
            safe = [s for s in offered if "peanut" not in s]
            return ChatMessage(
                role="assistant",
                content=f"You told me before that you are allergic to peanuts, so: {', '.join(safe)}.",
            )
        return ChatMessage(role="assistant", content=f"All of them: {', '.join(offered)}.")
    if "snack" in (last.content or "").lower():
        call = ToolSelection(tool_id="call_snacks", tool_name="list_snacks", tool_kwargs={})
        return ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [call]})
    return ChatMessage(role="assistant", content="Thanks, Sam. I will keep that in mind.")


def scripted_llm(prompts: list[list[ChatMessage]]) -> MockFunctionCallingLLM:
    """The mock model, recording each prompt so the example can show what was recalled."""

    def generate(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        prompts.append(list(messages))
        return respond(messages, **kwargs)

    return MockFunctionCallingLLM(response_generator=generate)


async def session(store: AsyncMemory, user_msg: str) -> tuple[str, list[str]]:
    """One chat session: a fresh agent and fresh short-term memory over the shared store."""
    prompts: list[list[ChatMessage]] = []
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(list_snacks)],
        llm=scripted_llm(prompts),
        system_prompt="You are Sam's office assistant.",
    )
    memory = MemvaultMemory(memory=store, context={"user_id": "sam"})
    answer = await agent.run(user_msg=user_msg, memory=memory)
    return str(answer), recalled_memories(prompts[-1])


async def main(store_path: str | Path, embedder: Embedder | None = None) -> dict[str, Any]:
    """Run both sessions against the store at ``store_path``; returns what happened."""
    store = AsyncMemory(path=store_path, embedder=embedder)
    try:
        first, _ = await session(store, "Hi! I'm Sam, and I'm allergic to peanuts.")
        second, recalled = await session(store, "Which snacks in the kitchen are safe for me?")
    finally:
        await store.close()
    return {"session_1": first, "session_2": second, "recalled": recalled}


def cli(argv: Sequence[str] | None = None) -> None:
    """Command line: run the two sessions and print what the agent recalled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", type=Path, help="memvault store file (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(main(args.store or Path(tmp) / "memvault.db"))
    print("session 1 agent:", out["session_1"])
    print("session 2 recalled from memvault:")
    for line in out["recalled"]:
        print("  -", line)
    print("session 2 agent:", out["session_2"])


if __name__ == "__main__":
    cli()
