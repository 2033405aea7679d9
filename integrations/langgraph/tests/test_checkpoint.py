"""``MemvaultSaver`` under real graphs: interrupts, time travel, restarts, shared stores.

LangGraph's own checkpointer tests and the conformance suite run in
``test_upstream.py``; these check what they do not: a ``StateGraph`` that pauses
on ``interrupt()`` and resumes in *another process*, ``get_state_history`` and
forking from a past checkpoint, one file holding a thread and its long-term
memories, and payloads larger than one memvault record.
"""

from __future__ import annotations

import operator
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault_langgraph import MemvaultSaver, MemvaultStore
from memvault_langgraph.checkpoint import CHECKPOINT_CATEGORY, run_id_for


class State(TypedDict):
    steps: Annotated[list[str], operator.add]
    approved: bool


def plan(state: State) -> dict[str, Any]:
    return {"steps": ["plan"]}


def review(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "approve the plan?"})
    return {"steps": [f"review:{answer}"], "approved": answer == "yes"}


def act(state: State) -> dict[str, Any]:
    return {"steps": ["act" if state["approved"] else "stop"]}


def build(saver: MemvaultSaver, store: MemvaultStore | None = None) -> Any:
    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("review", review)
    graph.add_node("act", act)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "review")
    graph.add_edge("review", "act")
    graph.add_edge("act", END)
    return graph.compile(checkpointer=saver, store=store)


CONFIG = {"configurable": {"thread_id": "t-1"}}


def test_interrupt_resume_and_history(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with MemvaultSaver(path=tmp_path / "app.db", embedder=embedder) as saver:
        graph = build(saver)
        out = graph.invoke({"steps": [], "approved": False}, CONFIG)
        assert out["__interrupt__"][0].value == {"question": "approve the plan?"}
        assert graph.get_state(CONFIG).next == ("review",)

        done = graph.invoke(Command(resume="yes"), CONFIG)
        assert done["steps"] == ["plan", "review:yes", "act"]

        history = list(graph.get_state_history(CONFIG))
        assert history[0].values["steps"] == ["plan", "review:yes", "act"]
        assert history[-1].metadata["source"] == "input"
        # time travel: fork the checkpoint taken before the review, run on, answer "no"
        before_review = next(h for h in history if h.next == ("review",))
        fork = graph.update_state(before_review.config, {"steps": ["edited"]})
        assert graph.invoke(None, fork)["__interrupt__"]
        out = graph.invoke(Command(resume="no"), CONFIG)
        assert out["steps"] == ["plan", "edited", "review:no", "stop"]
        assert len(list(graph.get_state_history(CONFIG))) == len(history) + 3
        # the original branch is still there, checkpoint by checkpoint
        assert graph.get_state(history[0].config).values["steps"] == ["plan", "review:yes", "act"]


async def test_async_graph(tmp_path: Path, embedder: LocalEmbedder) -> None:
    saver = MemvaultSaver(path=tmp_path / "app.db", embedder=embedder)
    try:
        graph = build(saver)
        await graph.ainvoke({"steps": [], "approved": False}, CONFIG)
        done = await graph.ainvoke(Command(resume="yes"), CONFIG)
        assert done["steps"] == ["plan", "review:yes", "act"]
        states = [s async for s in graph.aget_state_history(CONFIG)]
        assert len(states) == len(list(saver.list(CONFIG)))
    finally:
        await saver.aclose()


RESUME = textwrap.dedent(
    """
    import sys
    from langgraph.types import Command
    from memvault_langgraph import MemvaultSaver
    sys.path.insert(0, sys.argv[2])
    from test_checkpoint import CONFIG, build
    with MemvaultSaver(path=sys.argv[1]) as saver:
        graph = build(saver)
        if graph.get_state(CONFIG).next != ("review",):
            raise SystemExit("the interrupted thread was not found")
        print(graph.invoke(Command(resume="yes"), CONFIG)["steps"])
    """
)


def test_resume_after_a_process_restart(tmp_path: Path, embedder: LocalEmbedder) -> None:
    db = tmp_path / "app.db"
    with MemvaultSaver(path=db, embedder=embedder) as saver:
        build(saver).invoke({"steps": [], "approved": False}, CONFIG)
    # Another interpreter opens the file and finishes the paused run.
    proc = subprocess.run(
        [sys.executable, "-c", RESUME, str(db), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "['plan', 'review:yes', 'act']" in proc.stdout


def test_one_store_for_threads_and_memories(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with MemvaultStore(path=tmp_path / "app.db", embedder=embedder) as store:
        saver = MemvaultSaver(memory=store, delete_memories=True)
        assert saver.handles is store.handles  # one engine, one file
        build(saver, store).invoke({"steps": [], "approved": False}, CONFIG)
        run = run_id_for("t-1")
        store.memory.add("Alice approves plans quickly", user_id="alice", run_id=run)
        store.memory.add("Alice likes tea", user_id="alice")
        store.put(("memories", "alice"), "k", {"content": "lives in Lyon"})
        # checkpoints are records of the thread's run, kept apart from the store's items
        records = store.memory.get_all(run_id=run)["results"]
        assert any(CHECKPOINT_CATEGORY in (r.get("categories") or []) for r in records)
        assert store.search(("memories",)) and not store.list_namespaces(prefix=("checkpoint",))

        saver.delete_thread("t-1")  # checkpoints and the run's memories go; the rest stays
        assert saver.get_tuple(CONFIG) is None
        left = {m["memory"] for m in store.memory.get_all(user_id="alice")["results"]}
        assert left == {"Alice likes tea", "lives in Lyon"}  # the store item is alice's too
        assert store.get(("memories", "alice"), "k") is not None
        saver.close()  # the store's handles stay open
        assert store.get(("memories", "alice"), "k") is not None


def test_delete_thread_keeps_memories_by_default(memory: Memory) -> None:
    saver = MemvaultSaver(memory=memory)
    build(saver).invoke({"steps": [], "approved": False}, CONFIG)
    memory.add("keep me", run_id="t-1")
    saver.delete_thread("t-1")
    assert saver.get_tuple(CONFIG) is None
    assert [m["memory"] for m in memory.get_all(run_id="t-1")["results"]] == ["keep me"]


def test_payloads_larger_than_one_record(memory: Memory) -> None:
    saver = MemvaultSaver(memory=memory)
    big = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(900_000))  # ~2.7 MB UTF-8
    graph = StateGraph(State)
    graph.add_node("plan", lambda s: {"steps": [big]})
    graph.add_edge(START, "plan")
    graph.add_edge("plan", END)
    out = graph.compile(checkpointer=saver).invoke({"steps": ["x"], "approved": False}, CONFIG)
    assert out["steps"][1] == big
    tup = saver.get_tuple(CONFIG)
    assert tup is not None and tup.checkpoint["channel_values"]["steps"][1] == big
    saver.copy_thread("t-1", "t-2")
    copied = saver.get_tuple({"configurable": {"thread_id": "t-2"}})
    assert copied is not None and copied.checkpoint["channel_values"]["steps"][1] == big
    saver.prune(["t-1"], strategy="delete")
    assert saver.get_tuple(CONFIG) is None
    assert not memory.get_all(**saver.scope_for("t-1"))["results"]  # parts went too


@pytest.mark.parametrize("thread_id", ["has spaces", "x" * 300, 42])
def test_any_thread_id(memory: Memory, thread_id: Any) -> None:
    saver = MemvaultSaver(memory=memory)
    config = {"configurable": {"thread_id": thread_id}}
    build(saver).invoke({"steps": [], "approved": False}, config)
    tup = saver.get_tuple(config)
    assert tup is not None and tup.config["configurable"]["thread_id"] == str(thread_id)
    saver.delete_thread(thread_id)
    assert saver.get_tuple(config) is None
