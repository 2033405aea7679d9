"""A LangGraph agent whose short-term and long-term memory live in one memvault file.

Fully offline (no model, no network): the graph is a small booking flow. What is
real is the memory:

- ``MemvaultSaver`` is the graph's checkpointer: each thread's state, its pending
  ``interrupt()`` and its history (``get_state_history``) are memvault records;
- ``MemvaultStore`` is the graph's store: the preferences it learns are memvault
  memories (searchable, in the history, in the CLI);
- both share one store file, so one backup, one export, one ``delete_thread``.

Run 1 (a process of its own): Alice asks for a flight and mentions she prefers
window seats; the graph remembers that, then stops at ``interrupt()`` for her
approval, and the process exits.
Run 2 (a new process, same file): the paused thread is found and resumed where it
stopped; a new thread books another trip with the preference from long-term memory.

    python examples/langgraph_restart.py --path ./trips.db
"""

from __future__ import annotations

import argparse
import operator
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from memvault_langgraph import MemvaultSaver, MemvaultStore


class Trip(TypedDict):
    messages: Annotated[list[str], operator.add]
    destination: str


def note(state: Trip, runtime: Runtime) -> dict[str, Any]:
    """Long-term memory: keep what the user says about their preferences."""
    said = state["messages"][-1]
    if "prefer" in said.lower():
        preference = said.split("prefer", 1)[1].split(".")[0].strip()
        runtime.store.put(
            ("memories", "alice"), str(uuid.uuid4()), {"content": f"prefers {preference}"}
        )
    return {}


def approve(state: Trip) -> dict[str, Any]:
    """Short-term memory: the thread waits here, across processes, for a human answer."""
    answer = interrupt(f"Book the flight to {state['destination']}?")
    return {"messages": [f"approval: {answer}"]}


def book(state: Trip, runtime: Runtime) -> dict[str, Any]:
    found = runtime.store.search(("memories", "alice"), query="seat preference", limit=1)
    seat = found[0].value["content"].removeprefix("prefers ") if found else "any seat"
    return {"messages": [f"booked {state['destination']} with {seat}"]}


def build(saver: MemvaultSaver, store: MemvaultStore) -> Any:
    graph = StateGraph(Trip)
    graph.add_node("note", note)
    graph.add_node("approve", approve)
    graph.add_node("book", book)
    graph.add_edge(START, "note")
    graph.add_edge("note", "approve")
    graph.add_edge("approve", "book")
    graph.add_edge("book", END)
    return graph.compile(checkpointer=saver, store=store)


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def first_run(path: str) -> None:
    with MemvaultStore(path=path) as store:
        graph = build(MemvaultSaver(memory=store), store)
        out = graph.invoke(
            {
                "messages": ["I prefer a window seat. Book me a flight to Lisbon."],
                "destination": "Lisbon",
            },
            thread("trip-1"),
        )
        print(f"run 1: paused, asking: {out['__interrupt__'][0].value!r}")


def second_run(path: str) -> None:
    with MemvaultStore(path=path) as store:
        graph = build(MemvaultSaver(memory=store), store)
        paused = graph.get_state(thread("trip-1"))
        print(f"run 2: trip-1 is waiting at {paused.next}, messages {paused.values['messages']}")
        done = graph.invoke(Command(resume="yes"), thread("trip-1"))
        print(f"run 2: trip-1 -> {done['messages'][-1]}")
        steps = len(list(graph.get_state_history(thread("trip-1"))))
        print(f"run 2: trip-1 has {steps} checkpoints to travel back to")
        graph.invoke(
            {"messages": ["Book me a flight to Oslo."], "destination": "Oslo"}, thread("trip-2")
        )
        done = graph.invoke(Command(resume="yes"), thread("trip-2"))
        print(f"run 2: trip-2 (a new thread) -> {done['messages'][-1]}")
        memories = store.memory.get_all(user_id="alice")["results"]
        print("long-term memories of alice:", [m["memory"] for m in memories])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="store file (default: a temporary directory)")
    parser.add_argument("--run", choices=["first", "second"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run == "first":
        return first_run(args.path)
    if args.run == "second":
        return second_run(args.path)
    path = args.path or str(Path(tempfile.mkdtemp(prefix="memvault-restart-")) / "trips.db")
    for run in ("first", "second"):  # two processes: nothing survives but the file
        subprocess.run([sys.executable, __file__, "--path", path, "--run", run], check=True)
    print(f"\nsee the memories with: memvault --path {path} search 'seat' --user alice")


if __name__ == "__main__":
    main()
