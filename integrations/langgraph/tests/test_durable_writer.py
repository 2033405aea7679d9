"""``MemoryWriter`` keeps its queue in the store: a crash loses no turn, none is added twice.

The queue is ``memvault.deferred.DeferredAdds`` (journal rows). These tests stop a
process the hard way (``os._exit``) with turns still debouncing, and interrupt the
queue between its steps, then check every turn is remembered exactly once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from langchain_core.messages import HumanMessage

from memvault import Memory
from memvault.deferred import DeferredAdds
from memvault.embedding import LocalEmbedder
from memvault_langgraph import MemoryWriter

CRASH = textwrap.dedent(
    """
    import os, sys
    from langchain_core.messages import HumanMessage
    from memvault import Memory
    from memvault_langgraph import MemoryWriter
    memory = Memory(path=sys.argv[1])
    writer = MemoryWriter(memory, debounce_seconds=3600, max_delay_seconds=3600)
    cfg = {"configurable": {"thread_id": "t", "user_id": "ana"}}
    writer.record([HumanMessage("I moved to Porto", id="1")], cfg)
    writer.record([HumanMessage("I adopted a cat called Miso", id="2")], cfg)
    print("recorded", flush=True)
    os._exit(0)  # no flush, no close: the process dies with both turns debouncing
    """
)


def test_turns_survive_a_crash(tmp_path: Path, embedder: LocalEmbedder) -> None:
    db = tmp_path / "app.db"
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(db)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "recorded" in proc.stdout, proc.stderr[-3000:]
    with Memory(path=db, embedder=embedder) as memory:
        assert len(DeferredAdds(memory).pending()) == 2  # committed before record() returned
        writer = MemoryWriter(memory, debounce_seconds=0, max_delay_seconds=0)
        try:
            assert writer.recover() == 2
            writer.record([HumanMessage("later", id="3")], {"configurable": {"user_id": "ana"}})
            assert writer.flush(timeout=30)
        finally:
            writer.close()
        texts = sorted(m["memory"] for m in memory.get_all(user_id="ana")["results"])
        assert texts == ["I adopted a cat called Miso", "I moved to Porto", "later"]
        assert DeferredAdds(memory).pending() == []


def test_a_new_writer_recovers_by_itself(memory: Memory) -> None:
    queue = DeferredAdds(memory)
    queue.enqueue([{"role": "user", "content": "left behind"}], user_id="bo")
    writer = MemoryWriter(memory, debounce_seconds=0, max_delay_seconds=0)
    try:
        writer.record([HumanMessage("fresh", id="1")], {"configurable": {"user_id": "bo"}})
        assert writer.flush(timeout=30)
    finally:
        writer.close()
    texts = sorted(m["memory"] for m in memory.get_all(user_id="bo")["results"])
    assert texts == ["fresh", "left behind"]


def test_each_step_of_the_queue_can_be_interrupted(memory: Memory) -> None:
    queue = DeferredAdds(memory)
    keys = [
        queue.enqueue([{"role": "user", "content": text}], user_id="cy") for text in ("one", "two")
    ]
    # 1. claimed, then the process died before the add: recover runs the same batch
    (batch,) = queue._claim(keys)
    assert queue.run(keys) == 0  # claimed rows are not run twice by a live writer
    assert queue.recover() == 2
    # 2. the add committed, then the process died before the rows were marked done:
    #    the batch's idempotency key makes the replay apply nothing
    more = [queue.enqueue([{"role": "user", "content": "three"}], user_id="cy")]
    (batch,) = queue._claim(more)
    memory.add([{"role": "user", "content": "three"}], user_id="cy", idempotency_key=batch)
    assert queue.recover() == 1
    texts = [m["memory"] for m in memory.get_all(user_id="cy")["results"]]
    assert sorted(texts) == ["one", "three", "two"]
    assert queue.pending() == [] and queue.failed() == []


def test_a_batch_is_one_add_in_order(memory: Memory) -> None:
    queue = DeferredAdds(memory)
    keys = [
        queue.enqueue([{"role": "user", "content": f"turn {i}"}], user_id="di") for i in range(3)
    ]
    keys.append(queue.enqueue([{"role": "user", "content": "other"}], user_id="ed"))
    assert queue.run(keys) == 4
    # one add per scope: the three turns of di are one raw add, kept in order
    texts = [m["memory"] for m in memory.get_all(user_id="di", order_by="created_at")["results"]]
    assert sorted(texts) == ["turn 0", "turn 1", "turn 2"]
    assert [m["memory"] for m in memory.get_all(user_id="ed")["results"]] == ["other"]
