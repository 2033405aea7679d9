"""A CrewAI crew that learns a user's preference in one session and uses it in the next.

Fully offline: the LLM is scripted (a ``crewai.llms.base_llm.BaseLLM`` speaking
CrewAI's ReAct text protocol; no API key, no network) and both CrewAI and memvault
embed with memvault's bundled model. What is real is the memory path, twice over:

- the agent's ``remember`` / ``recall`` tools (``memvault_crewai``) call memvault
  directly, in the scope ``user_id="dana"`` fixed when the tools are built: the
  model only passes the fact or the query, never whose memory it is;
- the crew's own ``crewai.Memory(storage=MemvaultStorage())`` stores what CrewAI
  extracts after each task in memvault, under the scope path the (scripted)
  analysis picks, ``/user/dana/preferences``, and recalls it into the next task's
  prompt ("Relevant memories: ...").

Session 1: Dana says she always wants a window seat; the agent calls ``remember``.
Session 2 (new crew, new storage object, same store file): the agent is asked to
book a flight, calls ``recall`` and answers with the window seat; CrewAI's memory
has put the same fact into the task prompt. Afterwards both memories are in one
memvault store, readable mem0-style::

    python examples/crewai_crew.py --home ./crew-demo
    MEMVAULT_HOME=./crew-demo memvault search "seat" --user dana
"""

from __future__ import annotations

import os

# CrewAI's telemetry and tracing would only time out offline; set before crewai is imported.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.memory import Memory as CrewMemory

from memvault_crewai import MemvaultStorage, create_memory_tools, embedding_function

USER = "dana"
FACT = "Dana prefers a window seat on flights."


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, list):  # content parts
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


class ScriptedLLM(BaseLLM):
    """A fake LLM that plays a script in CrewAI's ReAct text protocol.

    ``actions`` are the tool calls the agent makes, in order; after the last
    observation it answers with ``final`` (``{observation}`` is filled in).
    CrewAI's memory analysis prompts (fact extraction, save analysis, query
    analysis, consolidation) get the JSON those steps ask for: ``facts`` are the
    memories extracted from a finished task, stored under ``scope``.
    """

    actions: list[tuple[str, dict[str, Any]]] = []
    final: str = "Done."
    facts: list[str] = []
    scope: str = "/"
    prompts: list[str] = []

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
        msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else messages
        system = next((_text(m) for m in msgs if m.get("role") == "system"), "")
        if system.startswith("You extract discrete, reusable memory statements"):
            return json.dumps({"memories": self.facts})
        if system.startswith("You analyze content to be stored"):
            return json.dumps(
                {
                    "suggested_scope": self.scope,
                    "categories": ["preferences", "travel"],
                    "importance": 0.9,
                    "extracted_metadata": {"entities": ["Dana"], "dates": [], "topics": ["travel"]},
                }
            )
        if system.startswith("You analyze a query for searching memory"):
            query = _text(msgs[-1])[:200]
            return json.dumps({"complexity": "simple", "recall_queries": [query]})
        if system.startswith("You are comparing new content against existing memories"):
            return json.dumps({"actions": [], "insert_new": True})
        # The agent itself.
        self.prompts.append("\n".join(_text(m) for m in msgs))
        observations = [
            _text(m).split("Observation:", 1)[1].strip()
            for m in msgs
            if m.get("role") == "assistant" and "Observation:" in _text(m)
        ]
        if len(observations) < len(self.actions):
            tool, args = self.actions[len(observations)]
            return (
                f"Thought: I should use {tool}.\nAction: {tool}\nAction Input: {json.dumps(args)}"
            )
        last = observations[-1] if observations else ""
        return f"Thought: I now know the final answer.\nFinal Answer: {self.final.format(observation=last)}"

    def get_input_tokens_count(
        self,
        messages: str | list[Any],
        tools: list[dict[str, Any]] | None = None,
        response_model: Any = None,
    ) -> int:
        # CrewAI's fallback estimate, without its "no native token count" warning.
        text = messages if isinstance(messages, str) else "".join(_text(m) for m in messages)
        return (len(text) + 3) // 4

    def supports_function_calling(self) -> bool:
        return False  # force the ReAct text protocol

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 8192


def run_session(
    *,
    request: str,
    expected: str,
    actions: list[tuple[str, dict[str, Any]]],
    final: str,
    facts: list[str],
) -> tuple[str, ScriptedLLM]:
    """One crew run over a fresh ``MemvaultStorage()`` (memvault's default store)."""
    llm = ScriptedLLM(
        model="scripted",
        actions=actions,
        final=final,
        facts=facts,
        scope=f"/user/{USER}/preferences",
        prompts=[],
    )
    storage = MemvaultStorage()  # the embedded default store, under $MEMVAULT_HOME
    memory = CrewMemory(storage=storage, llm=llm, embedder=embedding_function(storage))
    # The tools share the storage's store; their scope is fixed here, not by the model.
    remember, recall, forget = create_memory_tools(storage, user_id=USER)
    agent = Agent(
        role="Travel assistant",
        goal="Book travel the way each traveller likes it",
        backstory="You remember what travellers tell you and use it next time.",
        llm=llm,
        tools=[remember, recall, forget],
        verbose=False,
    )
    task = Task(description=request, expected_output=expected, agent=agent)
    try:
        result = Crew(agents=[agent], tasks=[task], memory=memory, verbose=False).kickoff()
        memory.drain_writes()  # CrewAI saves the extracted memories in the background
    finally:
        memory.close()  # closes the storage (and the store it opened)
    return str(result.raw), llm


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--home",
        type=Path,
        help="memvault home for the store (default: a fresh temporary directory)",
    )
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="memvault-crewai-"))
    os.environ["MEMVAULT_HOME"] = str(home)  # MemvaultStorage() and memvault's CLI read it

    print("== session 1: Dana states a preference")
    answer1, _ = run_session(
        request=f"{USER.title()} says: 'I always want a window seat when I fly.' Keep it in mind.",
        expected="A confirmation that the preference is saved",
        actions=[("remember", {"content": FACT})],
        final="Noted: {observation}",
        facts=[FACT],
    )
    print(answer1)

    print("== session 2: a new crew books a flight")
    answer2, llm2 = run_session(
        request=f"Book a flight to Lisbon for {USER.title()} and choose her seat.",
        expected="The booking with the seat chosen",
        actions=[("recall", {"query": "seat preference on flights"})],
        final="Booked Lisbon for Dana with a window seat, because memory says: {observation}",
        facts=[],
    )
    print(answer2)
    in_prompt = any("Relevant memories" in p and "window seat" in p for p in llm2.prompts)
    print(f"crewai Memory put the preference into the task prompt: {in_prompt}")

    # The same store, read the mem0 way: the tool's memory (user_id=dana) and the crew
    # memory's record (agent_id=crewai, user_id=dana from its /user/dana/... scope path).
    with MemvaultStorage() as storage:
        found = storage.memory.get_all(user_id=USER)["results"]
    print(f"== memvault get_all(user_id={USER!r}): {len(found)} memories")
    for m in found:
        where = "crew memory " + m["value"]["scope"] if m.get("namespace") else "remember tool"
        print(f"- {m['memory']}  [{where}]")
    ok = (
        "window seat" in answer2
        and in_prompt
        and {m["memory"] for m in found} == {FACT}
        and len(found) == 2
    )
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
